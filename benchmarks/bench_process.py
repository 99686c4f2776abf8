"""Benchmark for :func:`trine.run_commands`: many tiny commands.

1,000 ``true`` commands at limit 16, four ways: ``xargs -P 16`` (the
baseline: C, fork/exec and waitpid, nothing else), GNU ``parallel -j 16``
where it is on PATH, a hand-written Trio loop (``trio.run_process`` under a
``CapacityLimiter``, output discarded), and ``trine.run_commands`` (own
process group per command, both pipes read into bounded tails, the group
checked after exit, a frozen result per command).

Measured (``--repeat 5``, medians, 2 cores shared with other builds):
xargs -P 16 1565 ms (1.00x), hand-written Trio 837 ms (0.53x),
trine.run_commands 767 ms (0.49x), i.e. about 0.8 ms per command, all of it
fork/exec and the scheduler trips of reading two pipes and waiting; trine's
extra work (process group, tails, results) does not show against the
hand-written loop (its ``limit`` workers pulling commands in order spawn
16 tasks instead of 1,000). xargs is slower here than both: it waits for a
child to exit before starting the next through a single ``wait()`` loop,
which on this loaded machine costs more than Trio's pidfd wakeups. GNU
parallel was not installed (it is added automatically where it is on PATH).
"""

from __future__ import annotations

import shutil
import subprocess

import trio

import trine
from benchmarks._harness import Case, Variant, run_trio, timed

COMMANDS = 1_000
LIMIT = 16
TRUE = shutil.which("true") or "/bin/true"


def _trine() -> float:
    async def main() -> None:
        results = await trine.run_commands([[TRUE]] * COMMANDS, limit=LIMIT)
        assert all(result.succeeded for result in results)

    return timed(lambda: run_trio(main))


def _hand_written() -> float:
    async def main() -> None:
        limiter = trio.CapacityLimiter(LIMIT)

        async def one() -> None:
            async with limiter:
                await trio.run_process([TRUE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async with trio.open_nursery() as nursery:
            for _ in range(COMMANDS):
                nursery.start_soon(one)

    return timed(lambda: run_trio(main))


def _xargs() -> float:
    arguments = "\n".join(["x"] * COMMANDS)
    return timed(
        lambda: subprocess.run(
            ["xargs", "-P", str(LIMIT), "-n", "1", TRUE],
            input=arguments,
            text=True,
            check=True,
        )
    )


def _parallel() -> float:
    arguments = "\n".join(["x"] * COMMANDS)
    return timed(
        lambda: subprocess.run(
            ["parallel", "-j", str(LIMIT), TRUE],
            input=arguments,
            text=True,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    )


_variants = [
    Variant(f"xargs -P {LIMIT}", _xargs, baseline=True),
    Variant("hand-written trio.run_process + limiter", _hand_written),
    Variant(f"trine.run_commands(limit={LIMIT})", _trine),
]
if shutil.which("parallel"):
    _variants.insert(1, Variant(f"GNU parallel -j {LIMIT}", _parallel))

CASES = [
    Case(
        "run_commands",
        f"{COMMANDS:,} `true` commands at limit {LIMIT}",
        per=COMMANDS,
        variants=_variants,
    ),
]
