"""Adversarial review (review1): each test pins a behaviour the docs promise.

Every test here failed on main when it was written; each docstring says the
expected behaviour and where it is promised.
"""

from __future__ import annotations

import sys

import trine
import trine.testing


async def test_run_commands_admission_probe_failure_is_not_raised_mid_batch() -> None:
    """A load probe that fails while the batch runs costs that command, not the whole batch.

    design.rst (Commands): run_commands "raises only for malformed arguments
    (...: refused before anything starts ...) and for cancellation. Anything
    that goes wrong with one command once the batch runs is that command's
    result"; "admission= delays starts, never fails them". A probe reading
    /proc can fail at run time (a sandbox, a transient OSError).
    """
    calls = 0

    def probe() -> trine.LoadSample:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise OSError("cannot read /proc/stat")
        return trine.LoadSample(cpu_percent=10.0, free_memory=10**10)

    load = trine.SystemLoad(max_cpu_percent=90, probe=probe)
    results = await trine.run_commands(
        [[sys.executable, "-c", "pass"], [sys.executable, "-c", "pass"]], limit=1, admission=load
    )
    assert results[0].status is trine.CommandStatus.SUCCEEDED
    assert len(results) == 2
