"""trine.testing: the probe and the elapsed-time assertion."""

from __future__ import annotations

import pytest
import trio

from trine.testing import ConcurrencyProbe, ProbeEvent, assert_takes


async def test_probe_records_peak_and_timeline(autojump_clock: trio.testing.MockClock) -> None:
    """Peak concurrency and exact enter/exit times are recorded."""
    probe = ConcurrencyProbe()

    async def job(label: str, delay: float) -> None:
        with probe.track(label):
            await trio.sleep(delay)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(job, "a", 1.0)
        nursery.start_soon(job, "b", 2.0)
    probe.mark("done")
    assert probe.peak == 2
    assert probe.current == 0
    assert probe.times("exit") == {"a": 1.0, "b": 2.0}
    assert probe.timeline[-1] == ProbeEvent(2.0, "mark", "done")


async def test_assert_takes_passes_and_fails(autojump_clock: trio.testing.MockClock) -> None:
    """The assertion holds for the exact time and fails otherwise."""
    with assert_takes(1.5):
        await trio.sleep(1.5)
    message = r"expected the block to take 1\.0 s, it took 2\.0 s"
    with pytest.raises(AssertionError, match=message), assert_takes(1.0):
        await trio.sleep(2.0)
