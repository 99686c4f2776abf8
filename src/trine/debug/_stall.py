"""watch_blocking(): report task steps that held the event loop too long, in real time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from time import perf_counter
from typing import cast, final

import attrs
import trio

from trine._util import check_number, check_sync_callable, check_sync_result

from ._frames import where

__all__ = ["Stall", "watch_blocking"]

_logger = logging.getLogger("trine.debug")


@attrs.frozen
class Stall:
    """One task step that held the event loop longer than the threshold."""

    task: str
    """The task's name."""
    seconds: float
    """How long the step took, in real (``time.perf_counter``) seconds."""
    where: str | None
    """Where the step ended: ``function (file.py:12)``, the await the task
    suspended at (its innermost frame of user code). The code that blocked ran
    between the task's previous await and this one. ``None`` if the task
    finished in that step."""

    def __str__(self) -> str:
        end = "it finished" if self.where is None else f"it stopped at {self.where}"
        return (
            f"task {self.task!r} blocked the event loop for {self.seconds:.3f} s (real time); {end}"
        )


def _log(stall: Stall) -> None:
    _logger.warning("%s", stall)


@final
class _BlockingWatch:
    """The instrument: times each task step from its start to the next step's start,
    or to the end of the scheduler pass (where Trio waits for I/O).

    One hook per step plus one per pass, not two per step (``after_task_step``
    would be the other). Not a :class:`trio.abc.Instrument` subclass: Trio
    finds the hooks by name, and as plain closures set on the instance they
    are called without binding a method or reading attributes, which halves
    what the watch adds to each step (see ``benchmarks/bench_debug.py``).
    """

    __slots__ = ("before_io_wait", "before_task_step", "error", "finish", "start")

    def __init__(self, threshold: float, on_stall: Callable[[Stall], object]) -> None:
        self.error: BaseException | None = None
        task: trio.lowlevel.Task | None = None
        # The one use of real time in trine: the fake clock cannot move while a
        # step runs (nothing else runs then), so only the host's clock can say
        # how long a step held the loop.
        started = 0.0

        def report(stalled: trio.lowlevel.Task, seconds: float) -> None:
            stall = Stall(stalled.name, seconds, where(stalled))
            try:
                check_sync_result("on_stall", on_stall(stall))
            except BaseException as error:
                # Trio logs it and removes the instrument; the block re-raises it.
                self.error = error
                raise

        def before_task_step(next_task: trio.lowlevel.Task) -> None:
            nonlocal task, started
            now = perf_counter()
            if task is not None and now - started > threshold:
                report(task, now - started)
                now = perf_counter()  # the report's own time is not the next step's
            task = next_task
            started = now

        def before_io_wait(timeout: float) -> None:
            nonlocal task
            if task is not None:
                elapsed = perf_counter() - started
                if elapsed > threshold:
                    report(task, elapsed)
                task = None

        def start() -> None:
            """Time the rest of the step that installs the watch."""
            nonlocal task, started
            task = trio.lowlevel.current_task()
            started = perf_counter()

        def finish() -> None:
            """Report the step that removes the watch, if it is already too long."""
            before_io_wait(0.0)

        self.before_task_step = before_task_step
        self.before_io_wait = before_io_wait
        self.start = start
        self.finish = finish


def watch_blocking(
    threshold: float = 0.1, *, on_stall: Callable[[Stall], object] | None = None
) -> AbstractAsyncContextManager[None]:
    """Report every task step that holds the event loop longer than *threshold* seconds.

    Inside the block, a :class:`trio.abc.Instrument` times each task step (the
    run of a task from one ``await`` that suspends to the next) in *real* time,
    and calls ``on_stall(Stall(...))`` for each step longer than *threshold*,
    naming the task and where it stopped. It catches the synchronous call
    hidden in async code -- a ``time.sleep``, a blocking socket, a CPU-bound
    loop -- that stalls every other task::

        async with trine.debug.watch_blocking(0.05, on_stall=print):
            await serve()
        # task 'handler' blocked the event loop for 0.210 s (real time);
        # it stopped at handle (app.py:31)

    Real time, because Trio's clock does not move during a step (under
    :class:`trio.testing.MockClock` it never moves while code runs), so this
    is the one place trine reads ``time.perf_counter``. Its cost is one
    Python call per task step and one per scheduler pass, what Trio charges for
    any instrument: about a quarter of a bare task step, so 3 % on a pipeline of
    trivial stages with 64-item buffers and about 18 % with 1-item buffers,
    the worst case (``benchmarks/bench_debug.py``).

    Args:
      threshold: seconds of real time a step may take before it is reported (``> 0``).
      on_stall: a plain function given each :class:`Stall`, called at once,
        inside the scheduler (so it must not block either). By default a
        warning on the ``trine.debug`` logger.

    Raises:
      TypeError: if *threshold* is not a number or *on_stall* is not a plain callable.
      ValueError: if *threshold* is not positive and finite.
      Exception: an exception from *on_stall*, when the block ends (Trio logs
        it at once and stops the watch).
    """
    checked = check_number("threshold", threshold, minimum=0.0, exclusive=True)
    report = _log if on_stall is None else check_sync_callable("on_stall", on_stall)
    return _watching(checked, report)


@contextlib.asynccontextmanager
async def _watching(threshold: float, on_stall: Callable[[Stall], object]) -> AsyncIterator[None]:
    watch = _BlockingWatch(threshold, on_stall)
    trio.lowlevel.add_instrument(cast("trio.abc.Instrument", watch))
    watch.start()
    try:
        yield
    finally:
        if watch.error is None:
            trio.lowlevel.remove_instrument(cast("trio.abc.Instrument", watch))
            watch.finish()
    if watch.error is not None:
        raise watch.error
