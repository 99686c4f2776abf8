"""One run of :func:`map_all` or :func:`for_each`: the worker loops, with no consumer.

Also :class:`_Settling`, the ``fn`` that makes each call's result its
outcome for :func:`map_settled`, and the ordered result list's upkeep.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator
from typing import Any, Final, Literal, TypeAlias, final

import outcome
import trio

from .._util import NotAwaitableError
from ._sources import _AsyncSource, _close_source, _is_async
from ._workers import _MISSING, _YIELD_EVERY, _CoroutineType, _Workers

__all__ = ["_Run"]

_Mode: TypeAlias = Literal["ordered", "unordered", "discard"]

# map_all preallocates its result list up to this many slots when the input
# says how long it is; past it (or for a generator) the list grows by doubling.
_MOST_PREALLOCATED: Final = 1 << 16


@final
class _Run(_Workers):
    """One run of :func:`map_all` or :func:`for_each`: at most *limit* workers, no consumer.

    Each worker takes the next item straight from the shared iterator, awaits
    ``fn(item)`` and stores the result; there is one worker function per way
    of storing (*mode*), so an item costs its call of ``fn`` and nothing the
    hand-written worker loop would not also pay. ``"ordered"`` writes each
    result at its item's position (the items are numbered by one shared
    :func:`enumerate`), ``"unordered"`` appends it, ``"discard"`` drops it.
    """

    __slots__ = (
        "_async_source",
        "_fn",
        "_limit",
        "_mode",
        "_numbered",
        "_settling",
        "_source",
        "_taken",
        "results",
    )

    def __init__(
        self,
        fn: Callable[[Any], Awaitable[Any]],
        items: Iterable[Any] | AsyncIterable[Any],
        limit: int,
        mode: _Mode,
        *,
        settle: bool = False,
    ) -> None:
        super().__init__()
        # With settle, each call's result is its outcome (map_settled).
        self._settling = _Settling(fn, self) if settle else None
        self._fn = fn if self._settling is None else self._settling
        self._limit = limit
        self._mode = mode
        self._taken = 0  # items taken from an async source
        self._source: Iterator[Any] | None = None
        self._numbered: Iterator[tuple[int, Any]] | None = None  # the items numbered, if used
        self._async_source: _AsyncSource[Any] | None = None
        self.results: list[Any] | None = None if mode == "discard" else []
        if _is_async(items):
            self._async_source = _AsyncSource(aiter(items))  # type: ignore[arg-type]
        else:
            self._source = iter(items)  # type: ignore[arg-type]
            if mode == "ordered":
                self.results = [_MISSING] * _known_length(items)

    @property
    def taken(self) -> int:
        """How many items were taken and called (counted only with ``settle``)."""
        assert self._settling is not None
        return self._settling.started

    async def run(self) -> None:
        try:
            async with trio.open_nursery() as nursery:
                if self._async_source is not None:
                    self._limit -= 1
                    nursery.start_soon(self._async_worker, nursery)
                elif not self._start_sync_workers(nursery):
                    # An empty input starts no task; the call is still a checkpoint.
                    await trio.lowlevel.checkpoint()
        finally:
            await _close_source(self._source, self._async_source)
        if self._mode == "ordered":
            _drop_spare_slots(self.results)  # type: ignore[arg-type]

    def _start_sync_workers(self, nursery: trio.Nursery) -> int:
        """Start a worker for each of the first *limit* items (fewer if there are fewer)."""
        source = self._source
        assert source is not None
        started = 0
        if self._mode == "unordered":
            for item in source:
                nursery.start_soon(self._unordered_worker, item)
                started += 1
                if started == self._limit:
                    break
        else:
            worker = self._ordered_worker if self._mode == "ordered" else self._discard_worker
            numbered = self._numbered = enumerate(source)
            for index, item in numbered:
                nursery.start_soon(worker, index, item)
                started += 1
                if started == self._limit:
                    break
        return started

    # The three sync workers differ only in their store line. Each takes the
    # next item with a for loop over the shared iterator (its C-level next,
    # cheaper than calling next()). ``left`` counts down the worker's own
    # items to the next _YIELD_EVERY check, and ``mark`` is how far the shared
    # count (item numbers, or results appended) had got when the stretch began.

    async def _ordered_worker(self, index: int, item: Any) -> None:
        fn = self._fn
        numbered = self._numbered
        results = self.results
        assert numbered is not None
        assert results is not None
        left = _YIELD_EVERY
        mark = index
        while True:
            awaitable = fn(item)
            if type(awaitable) is not _CoroutineType:
                awaitable = self._awaitable(awaitable)
            result = await awaitable
            try:
                results[index] = result
            except IndexError:
                _grow(results, index)
                results[index] = result
            left -= 1
            if not left:
                if index - mark < _YIELD_EVERY:  # no one else took an item: we never yielded
                    await trio.lowlevel.checkpoint()
                left = _YIELD_EVERY
                mark = index + 1
            for index, item in numbered:  # noqa: B007  # takes the next item, cheaper than next()
                break
            else:
                return

    async def _unordered_worker(self, item: Any) -> None:
        fn = self._fn
        source = self._source
        results = self.results
        assert source is not None
        assert results is not None
        left = _YIELD_EVERY
        mark = len(results)
        while True:
            awaitable = fn(item)
            if type(awaitable) is not _CoroutineType:
                awaitable = self._awaitable(awaitable)
            results.append(await awaitable)
            left -= 1
            if not left:
                if len(results) - mark <= _YIELD_EVERY:  # no one else finished one
                    await trio.lowlevel.checkpoint()
                left = _YIELD_EVERY
                mark = len(results)
            for item in source:  # noqa: B007  # takes the next item, cheaper than next()
                break
            else:
                return

    async def _discard_worker(self, index: int, item: Any) -> None:
        fn = self._fn
        numbered = self._numbered
        assert numbered is not None
        left = _YIELD_EVERY
        mark = index
        while True:
            awaitable = fn(item)
            if type(awaitable) is not _CoroutineType:
                awaitable = self._awaitable(awaitable)
            await awaitable
            left -= 1
            if not left:
                if index - mark < _YIELD_EVERY:  # no one else took an item: we never yielded
                    await trio.lowlevel.checkpoint()
                left = _YIELD_EVERY
                mark = index + 1
            for index, item in numbered:  # noqa: B007  # takes the next item, cheaper than next()
                break
            else:
                return

    async def _async_worker(self, nursery: trio.Nursery) -> None:
        """Take turns at the async source; start the next worker once an item came."""
        fn = self._fn
        source = self._async_source
        results = self.results
        mode = self._mode
        assert source is not None
        left = _YIELD_EVERY
        while True:
            await source.acquire()
            try:
                if source.exhausted:
                    return
                try:
                    item = await source.next()
                except StopAsyncIteration:
                    return
            finally:
                source.release()
            index = self._taken
            self._taken += 1
            if self._limit:
                self._limit -= 1
                nursery.start_soon(self._async_worker, nursery)
            awaitable = fn(item)
            if type(awaitable) is not _CoroutineType:
                awaitable = self._awaitable(awaitable)
            result = await awaitable
            if mode == "ordered":
                assert results is not None
                if index >= len(results):
                    _grow(results, index)
                results[index] = result
            elif mode == "unordered":
                assert results is not None
                results.append(result)
            left -= 1
            if not left:
                left = _YIELD_EVERY
                await trio.lowlevel.checkpoint()


@final
class _Settling:
    """``fn`` for :func:`map_settled`: each call returns its outcome, and calls are counted.

    A worker calls it with the item it has just taken, before it awaits
    anything, so :attr:`started` is the number of items taken, and in an
    ordered run the last index taken plus one.
    """

    __slots__ = ("_fn", "_workers", "started")

    def __init__(self, fn: Callable[[Any], Awaitable[Any]], workers: _Workers) -> None:
        self._fn = fn
        self._workers = workers
        self.started = 0

    def __call__(self, item: Any) -> Awaitable[outcome.Outcome[Any]]:
        self.started += 1
        return self._settle(item)

    async def _settle(self, item: Any) -> outcome.Outcome[Any]:
        try:
            awaitable = self._fn(item)
            if type(awaitable) is not _CoroutineType:
                awaitable = self._workers._awaitable(awaitable)
            return outcome.Value(await awaitable)
        except NotAwaitableError:
            raise  # a programming error, never an item's outcome
        except Exception as exc:  # not BaseException: Cancelled and KeyboardInterrupt propagate
            return outcome.Error(exc)


def _known_length(items: object) -> int:
    """How many slots to preallocate: ``len(items)`` for a list, tuple or range, up to a cap."""
    if type(items) in (list, tuple, range):
        try:
            return min(len(items), _MOST_PREALLOCATED)  # type: ignore[arg-type]
        except OverflowError:  # a range longer than sys.maxsize
            return _MOST_PREALLOCATED
    return 0


def _grow(results: list[Any], index: int) -> None:
    """Make room for slot *index* (at least doubling, so growing costs O(1) per item)."""
    results.extend([_MISSING] * max(index + 1 - len(results), len(results)))


def _drop_spare_slots(results: list[Any]) -> None:
    """Cut the unfilled slots off the end of a finished ordered result list.

    Every item's slot is filled once the run ends, so the filled slots are a
    prefix: a binary search finds its end.
    """
    low, high = 0, len(results)
    while low < high:
        middle = (low + high) // 2
        if results[middle] is _MISSING:
            high = middle
        else:
            low = middle + 1
    del results[low:]
