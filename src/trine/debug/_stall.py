"""watch_blocking(): report task steps that held the event loop too long, in real time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from time import perf_counter

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


class _BlockingWatch(trio.abc.Instrument):
    """Times each task step from its start to the next step's start, or to the I/O wait.

    Two hooks per scheduler batch plus one per step, not two per step
    (``after_task_step`` would be the other): a step ends where the next one
    begins, or where the batch ends and Trio waits for I/O.
    """

    def __init__(self, threshold: float, on_stall: Callable[[Stall], object]) -> None:
        self._threshold = threshold
        self._on_stall = on_stall
        self._task: trio.lowlevel.Task | None = None
        # The one use of real time in trine: the fake clock cannot move while a
        # step runs (nothing else runs then), so only the host's clock can say
        # how long a step held the loop.
        self._start = 0.0
        self.error: BaseException | None = None

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        now = perf_counter()
        previous = self._task
        if previous is not None and now - self._start > self._threshold:
            self._report(previous, now - self._start)
            now = perf_counter()  # the report's own time is not the next step's
        self._task = task
        self._start = now

    def before_io_wait(self, timeout: float) -> None:
        previous = self._task
        if previous is not None:
            elapsed = perf_counter() - self._start
            if elapsed > self._threshold:
                self._report(previous, elapsed)
            self._task = None

    def start(self) -> None:
        """Time the rest of the step that installs the watch."""
        self._task = trio.lowlevel.current_task()
        self._start = perf_counter()

    def finish(self) -> None:
        """Report the step that removes the watch, so far, if it is already too long."""
        self.before_io_wait(0.0)

    def _report(self, task: trio.lowlevel.Task, seconds: float) -> None:
        stall = Stall(task.name, seconds, where(task))
        try:
            check_sync_result("on_stall", self._on_stall(stall))
        except BaseException as error:
            # Trio logs it and removes the instrument; the block re-raises it.
            self.error = error
            raise


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
    Python call per task step and one per scheduler pass (see
    ``benchmarks/bench_debug.py``).

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
    trio.lowlevel.add_instrument(watch)
    watch.start()
    try:
        yield
    finally:
        if watch.error is None:
            trio.lowlevel.remove_instrument(watch)
            watch.finish()
    if watch.error is not None:
        raise watch.error
