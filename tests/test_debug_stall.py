"""trine.debug.watch_blocking: catching a deliberate time.sleep in a task.

The detector measures real time (the fake clock cannot move during a step), so
these tests block for real, briefly; they assert only what a ``time.sleep``
guarantees (a step at least that long) and what no load can make true (a
trivial step is never ten seconds long). On a loaded machine the OS can also
hold any other step past the threshold, so tests look at the stalls of the
task that blocked, not at the absence of others.
"""

from __future__ import annotations

import logging
import math
import time

import pytest
import trio
import trio.testing

import trine.debug

BLOCK = 0.06
"""Seconds a test blocks the loop for; the threshold is below it."""
THRESHOLD = 0.03


def block_the_loop() -> None:
    """The deliberate mistake: a synchronous sleep, called from async code."""
    time.sleep(BLOCK)


async def blocks_then_awaits() -> None:
    await trio.sleep(1)
    block_the_loop()
    await trio.sleep(1)  # the await the step stops at


STOP_LINE = blocks_then_awaits.__code__.co_firstlineno + 3


async def test_a_blocking_call_in_a_task_is_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The task, how long (at least the sleep) and the await its step stopped at."""
    stalls: list[trine.debug.Stall] = []
    async with (
        trine.debug.watch_blocking(THRESHOLD, on_stall=stalls.append),
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(blocks_then_awaits, name="offender")
        nursery.start_soon(trio.sleep, 5, name="innocent")
    (stall,) = [stall for stall in stalls if stall.task == "offender"]
    assert stall.seconds >= BLOCK
    assert stall.where == f"blocks_then_awaits (test_debug_stall.py:{STOP_LINE})"
    assert str(stall) == (
        f"task 'offender' blocked the event loop for {stall.seconds:.3f} s (real time); "
        f"it stopped at blocks_then_awaits (test_debug_stall.py:{STOP_LINE})"
    )


async def test_a_task_that_finishes_in_the_step_has_no_place() -> None:
    """where is None when the task ended in the step that blocked."""
    stalls: list[trine.debug.Stall] = []

    async def last_step_blocks() -> None:
        await trio.lowlevel.checkpoint()
        block_the_loop()

    async with (
        trine.debug.watch_blocking(THRESHOLD, on_stall=stalls.append),
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(last_step_blocks, name="ender")
    (stall,) = [stall for stall in stalls if stall.task == "ender"]
    assert stall.where is None
    assert str(stall).endswith("(real time); it finished")


async def test_the_steps_that_open_and_close_the_block_are_timed() -> None:
    """Blocking right after entering, or right before leaving, is caught too."""
    stalls: list[trine.debug.Stall] = []
    me = trio.lowlevel.current_task().name
    async with trine.debug.watch_blocking(THRESHOLD, on_stall=stalls.append):
        block_the_loop()
        await trio.lowlevel.checkpoint()
        block_the_loop()
    assert [stall.task for stall in stalls] == [me, me]


async def test_fast_steps_are_not_reported_and_the_watch_ends_with_the_block() -> None:
    """Nothing is reported below the threshold, nor after the block."""
    stalls: list[trine.debug.Stall] = []
    async with (
        trine.debug.watch_blocking(10.0, on_stall=stalls.append),
        trio.open_nursery() as nursery,
    ):
        for _ in range(10):
            nursery.start_soon(trio.sleep, 0)
    assert stalls == []
    async with trine.debug.watch_blocking(THRESHOLD, on_stall=stalls.append):
        pass
    reported = len(stalls)  # 0, unless the OS held that step
    block_the_loop()
    await trio.lowlevel.checkpoint()
    assert len(stalls) == reported


async def test_by_default_a_warning_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """on_stall=None logs each stall on the trine.debug logger."""
    with caplog.at_level(logging.WARNING, logger="trine.debug"):
        async with trine.debug.watch_blocking(THRESHOLD):
            block_the_loop()
            await trio.lowlevel.checkpoint()
    records = [r for r in caplog.records if r.name == "trine.debug"]
    assert records
    assert all(record.levelno == logging.WARNING for record in records)
    assert all("blocked the event loop for" in record.getMessage() for record in records)


async def test_an_error_from_on_stall_stops_the_watch_and_is_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Trio logs it and removes the instrument; the block re-raises it when it ends."""
    calls: list[trine.debug.Stall] = []

    def broken(stall: trine.debug.Stall) -> None:
        calls.append(stall)
        raise LookupError("broken hook")

    async def twice() -> None:
        async with trine.debug.watch_blocking(THRESHOLD, on_stall=broken):
            block_the_loop()
            await trio.lowlevel.checkpoint()
            block_the_loop()
            await trio.lowlevel.checkpoint()

    with pytest.raises(LookupError, match="broken hook"):
        await twice()
    assert len(calls) == 1
    assert any("Instrument has been disabled" in r.getMessage() for r in caplog.records)


async def test_arguments_are_checked_at_the_call() -> None:
    """threshold must be a positive number; on_stall a plain function."""

    async def async_hook(stall: trine.debug.Stall) -> None:
        pass

    for bad in (0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"^threshold must "):
            trine.debug.watch_blocking(bad)
    with pytest.raises(TypeError, match=r"^threshold must be"):
        trine.debug.watch_blocking("0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^on_stall must be"):
        trine.debug.watch_blocking(0.1, on_stall=async_hook)
    with pytest.raises(TypeError, match=r"^on_stall must be"):
        trine.debug.watch_blocking(0.1, on_stall=1)  # type: ignore[arg-type]


async def test_an_on_stall_that_returns_a_coroutine_is_refused() -> None:
    """A lambda around an async function is caught when first called, by name."""

    async def log(stall: trine.debug.Stall) -> None:
        pass

    async def once() -> None:
        async with trine.debug.watch_blocking(THRESHOLD, on_stall=lambda stall: log(stall)):
            block_the_loop()
            await trio.lowlevel.checkpoint()

    with pytest.raises(TypeError, match=r"^on_stall must be a plain function"):
        await once()
