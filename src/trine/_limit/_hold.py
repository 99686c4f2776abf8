"""What every limiter shares: waiters, and the context managers of hold()/hold_nowait().

A limiter implements :class:`_Core` (``_acquire``, ``_acquire_nowait``,
``_release``); :class:`_Hold` and :class:`_HoldNowait` pair each acquire with
its release, with KeyboardInterrupt protection on both sides, so a Ctrl-C can
never land between taking a slot and recording that it was taken.

Leaving is synchronous, even in ``async with``: ``_Hold.__aexit__`` gives the
slot back inside the call that ``async with`` makes and returns an awaitable
that is already done. Python checks for signals right after that call and
before awaiting its result, so with an ``async def __aexit__`` a Ctrl-C
landing there would find the release not yet started, and the slot would
stay taken for ever (Trio's own primitives have that window). Here it finds
the slot already back. :class:`_TrioHold` gives Trio's primitives the same
exit where trine enters them itself (:func:`~trine.acquire_all`).
"""

from __future__ import annotations

import heapq
import types
from collections import OrderedDict
from collections.abc import Coroutine, Generator, Hashable
from types import TracebackType
from typing import Any, Generic, Protocol, TypeAlias, TypeVar, cast, final

import trio
from trio.lowlevel import Abort, Task, enable_ki_protection, reschedule

_T = TypeVar("_T")

TrioLimiter: TypeAlias = trio.CapacityLimiter | trio.Semaphore | trio.Lock | trio.StrictFIFOLock
_TRIO_LIMITERS = (trio.CapacityLimiter, trio.Semaphore, trio.Lock, trio.StrictFIFOLock)


@types.coroutine
def _finished() -> Generator[None, None, None]:
    return
    yield  # a generator function, which types.coroutine makes awaitable


_done = _finished()
for _ in _done:  # run it to the end: awaiting it again returns None at once
    pass
_DONE = cast("Coroutine[Any, Any, None]", _done)
"""What a synchronous ``__aexit__`` returns: awaiting it returns ``None`` at once.

An exhausted generator-based coroutine can be awaited any number of times by
any number of tasks (a native coroutine could be awaited only once).
"""

_WAITING = 0
_GRANTED = 1
_GONE = 2


def _sweep(heap: list[Any], waiting: int) -> None:
    """Drop cancelled waiters from a heap whose entries end with their waiter.

    Cancelled waiters are skipped lazily when popped; once they outnumber the
    live ones the heap is rebuilt, so memory stays O(waiters).
    """
    if not waiting:
        heap.clear()
    elif len(heap) > 2 * waiting + 16:
        heap[:] = [entry for entry in heap if entry[-1].state == _WAITING]
        heapq.heapify(heap)


@final
class _Waiter:
    """One task parked in a limiter's queue."""

    __slots__ = ("arrival", "key", "ready", "start", "state", "task", "weight")

    def __init__(self, task: Task, weight: int = 1, key: Hashable = None, arrival: int = 0) -> None:
        self.task = task
        self.weight = weight
        self.key = key
        self.arrival = arrival
        self.state = _WAITING
        self.ready = False
        self.start = 0.0  # when it was granted (AdaptiveLimiter)


def _grant(waiter: _Waiter) -> None:
    waiter.state = _GRANTED
    reschedule(waiter.task)


class _Core(Protocol[_T]):
    """What a limiter implements for :class:`_Hold` and :class:`_HoldNowait`."""

    async def _acquire(self, arg: Any) -> _T: ...

    def _acquire_nowait(self, arg: Any) -> _T: ...

    def _release(self, arg: Any, held: _T, error: BaseException | None) -> None: ...


@final
class _Hold(Generic[_T]):
    """``async with limiter.hold(arg)``: acquire on entry, release on every exit."""

    __slots__ = ("_arg", "_core", "_held")

    def __init__(self, core: _Core[_T], arg: Any) -> None:
        self._core = core
        self._arg = arg

    @enable_ki_protection
    async def __aenter__(self) -> _T:
        held = await self._core._acquire(self._arg)
        self._held = held
        return held

    @enable_ki_protection
    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Coroutine[Any, Any, None]:
        # Synchronous on purpose: see the module docstring.
        self._core._release(self._arg, self._held, exc_value)
        return _DONE


@final
class _TrioHold:
    """``async with`` a Trio primitive, left synchronously as :class:`_Hold` is."""

    __slots__ = ("_limiter",)

    def __init__(self, limiter: TrioLimiter) -> None:
        self._limiter = limiter

    @enable_ki_protection
    async def __aenter__(self) -> None:
        await self._limiter.acquire()

    @enable_ki_protection
    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Coroutine[Any, Any, None]:
        self._limiter.release()
        return _DONE


@final
class _HoldNowait(Generic[_T]):
    """``with limiter.hold_nowait(arg)``: enter at once or raise trio.WouldBlock."""

    __slots__ = ("_arg", "_core", "_held")

    def __init__(self, core: _Core[_T], arg: Any) -> None:
        self._core = core
        self._arg = arg

    @enable_ki_protection
    def __enter__(self) -> _T:
        held = self._core._acquire_nowait(self._arg)
        self._held = held
        return held

    @enable_ki_protection
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._core._release(self._arg, self._held, exc_value)


def _fifo_abort(queue: OrderedDict[_Waiter, None], waiter: _Waiter) -> Abort:
    del queue[waiter]
    waiter.state = _GONE
    return Abort.SUCCEEDED
