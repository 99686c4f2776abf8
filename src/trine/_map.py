"""Bounded concurrent maps: :func:`amap`, :func:`map_all` and :func:`for_each`.

How it works, and why it is fast. The obvious Trio map spawns a task per item
behind a :class:`trio.CapacityLimiter`, or feeds a pool of workers through a
memory channel; either way every item costs extra trips through the scheduler
(a spawn, a limiter wake-up, a channel send and receive). Here, at most
``limit`` worker tasks are started (fewer when the input is shorter), and each
one loops: take the next item, ``await fn(item)``, store the result, repeat.

* A sync source is shared by calling ``next()`` on one iterator from every
  worker. That is safe: Trio runs one task at a time and ``next()`` cannot
  yield in the middle. An async source's ``__anext__`` can yield, so workers
  take turns through a flag and a :class:`trio.lowlevel.ParkingLot`.
* Results go straight into a dict keyed by input position (ordered) or a
  deque (unordered); :func:`map_all` writes into its result list by index.
  The consumer is woken only when it is parked and the result it is waiting
  for arrived, so it drains every ready result per wake-up.
* Backpressure is a window: a worker takes a new item only while fewer than
  ``2 * limit`` items have been taken and not yet yielded to the consumer.
  Workers that hit the window park until the consumer catches up.

So an item costs one call of ``fn`` plus bookkeeping, and no extra scheduler
trip of its own; see ``benchmarks/bench_map.py`` for the numbers.
"""

from __future__ import annotations

import functools
import inspect
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, Generic, TypeVar, final

import trio

from ._policy import SupportsCall, _check_call_guard
from ._util import check_async_callable, check_int

__all__ = ["amap", "for_each", "map_all"]

_T = TypeVar("_T")
_R = TypeVar("_R")

_MISSING: Final[Any] = object()

# A worker whose ``fn`` never yields would otherwise run the whole input
# without letting another task (or a deadline, or Ctrl-C) in. Every this many
# items of its own it passes through a full checkpoint; with a ``fn`` that
# does yield this costs a fraction of a percent.
_YIELD_EVERY: Final = 64


def _check_items(items: object) -> None:
    if not isinstance(items, Iterable | AsyncIterable):
        raise TypeError(f"items must be an iterable or an async iterable, got {items!r}")


def _check_arguments(
    fn: Callable[[_T], Awaitable[_R]], items: object, limit: object, policy: SupportsCall | None
) -> Callable[[_T], Awaitable[_R]]:
    """Validate the arguments; return the function the workers call for each item."""
    check_async_callable("fn", fn)
    check_int("limit", limit)
    _check_items(items)
    if policy is None:
        return fn
    _check_call_guard("policy", policy)
    # Each item's call goes through the policy: policy.call(fn, item).
    return functools.partial(policy.call, fn)


class _AsyncSource(Generic[_T]):
    """Lets many workers take turns at one async iterator's ``__anext__``.

    ``__anext__`` may yield to the scheduler, and an async generator raises if
    a second task enters it meanwhile, so workers hold a turn around it: a
    flag, and a :class:`trio.lowlevel.ParkingLot` for those waiting.
    """

    __slots__ = ("_busy", "_turns", "exhausted", "iterator")

    def __init__(self, iterator: AsyncIterator[_T]) -> None:
        self.iterator = iterator
        self._busy = False
        self._turns = trio.lowlevel.ParkingLot()
        self.exhausted = False

    async def acquire(self) -> None:
        """Wait for the turn; pair with :meth:`release` on every path."""
        while self._busy:
            await self._turns.park()
        self._busy = True

    def release(self) -> None:
        self._busy = False
        if self._turns:
            self._turns.unpark()

    async def next(self) -> _T:
        """The next item (the caller holds the turn)."""
        try:
            return await self.iterator.__anext__()
        except StopAsyncIteration:
            self.exhausted = True
            raise


def _is_async(items: Iterable[_T] | AsyncIterable[_T]) -> bool:
    return not isinstance(items, Iterable) or isinstance(items, AsyncIterable)


@final
class _MapResults(Generic[_R]):
    """The async iterator that :func:`amap` yields; also the workers' shared state."""

    __slots__ = (
        "_async_source",
        "_consumer",
        "_exhausted",
        "_fn",
        "_iterated",
        "_nursery",
        "_open",
        "_ordered",
        "_ready",
        "_ready_in_order",
        "_room",
        "_running",
        "_source",
        "_taken",
        "_window",
        "_workers_left",
        "_yielded",
    )

    def __init__(
        self,
        fn: Callable[[Any], Awaitable[_R]],
        *,
        limit: int,
        ordered: bool,
        nursery: trio.Nursery,
    ) -> None:
        self._fn = fn
        self._ordered = ordered
        self._nursery = nursery
        self._window = 2 * limit
        self._workers_left = limit  # how many more workers may still be started
        self._running = 0
        self._taken = 0  # items taken from the source
        self._yielded = 0  # results handed to the consumer
        self._exhausted = False
        self._ready_in_order: dict[int, _R] = {}
        self._ready: deque[_R] = deque()
        self._room = trio.lowlevel.ParkingLot()  # workers waiting for the window
        self._consumer: trio.lowlevel.Task | None = None
        self._source: Iterator[Any] | None = None
        self._async_source: _AsyncSource[Any] | None = None
        self._open = True
        self._iterated = False

    # -- starting -------------------------------------------------------------

    def start(self, items: Iterable[Any] | AsyncIterable[Any]) -> None:
        if _is_async(items):
            self._async_source = _AsyncSource(aiter(items))  # type: ignore[arg-type]
            # Async workers start one another, each after it got an item, so a
            # short input starts only as many workers as it has items.
            self._spawn(self._async_worker)
        else:
            source = self._source = iter(items)  # type: ignore[arg-type]
            for item in source:
                self._spawn(self._sync_worker, self._taken, item)
                self._taken += 1
                if not self._workers_left:
                    break
            else:
                self._exhausted = True

    def _spawn(self, worker: Callable[..., Awaitable[None]], *args: object) -> None:
        self._workers_left -= 1
        self._running += 1
        self._nursery.start_soon(worker, *args)

    # -- workers --------------------------------------------------------------

    def _deliver(self, index: int, result: _R) -> None:
        if self._ordered:
            self._ready_in_order[index] = result
            if index != self._yielded:
                return  # the consumer waits for an earlier one
        else:
            self._ready.append(result)
        consumer = self._consumer
        if consumer is not None:
            self._consumer = None
            trio.lowlevel.reschedule(consumer)

    def _worker_done(self) -> None:
        self._running -= 1
        if not self._running:
            consumer = self._consumer
            if consumer is not None:
                self._consumer = None
                trio.lowlevel.reschedule(consumer)

    async def _sync_worker(self, index: int, item: Any) -> None:
        fn = self._fn
        source = self._source
        assert source is not None
        count = 0
        while True:
            self._deliver(index, await fn(item))
            count += 1
            if count % _YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
            while self._taken - self._yielded >= self._window and not self._exhausted:
                await self._room.park()
            if self._exhausted:
                break
            try:
                item = next(source)
            except StopIteration:
                self._exhausted = True
                self._room.unpark_all()
                break
            index = self._taken
            self._taken += 1
        self._worker_done()

    async def _async_worker(self) -> None:
        fn = self._fn
        source = self._async_source
        assert source is not None
        count = 0
        while True:
            await source.acquire()
            try:
                while self._taken - self._yielded >= self._window and not source.exhausted:
                    await self._room.park()
                if source.exhausted:
                    break
                try:
                    item = await source.next()
                except StopAsyncIteration:
                    break
            finally:
                source.release()
            index = self._taken
            self._taken += 1
            if self._workers_left:
                self._spawn(self._async_worker)
            self._deliver(index, await fn(item))
            count += 1
            if count % _YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
        self._exhausted = True
        self._room.unpark_all()
        self._worker_done()

    # -- the consumer ---------------------------------------------------------

    def __aiter__(self) -> _MapResults[_R]:
        if self._iterated:
            raise RuntimeError(
                "amap results can be iterated only once: "
                "open a new `async with amap(...)` to map again"
            )
        self._iterated = True
        return self

    async def __anext__(self) -> _R:
        if not self._open:
            raise RuntimeError(
                "amap results were used after their `async with amap(...)` block ended: "
                "iterate inside the block"
            )
        if self._consumer is not None:
            raise trio.BusyResourceError("another task is already waiting for the next amap result")
        # A cancellation point on every step, even when a result is ready and
        # we return without yielding; when none is ready we park, which is a
        # full checkpoint. Workers stop at the window, so the consumer parks
        # at least once every 2 * limit results.
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            if self._ordered:
                result = self._ready_in_order.pop(self._yielded, _MISSING)
                if result is not _MISSING:
                    return self._hand_over(result)
            elif self._ready:
                return self._hand_over(self._ready.popleft())
            if not self._running:
                # The end is a full checkpoint, like waiting would have been.
                await trio.lowlevel.cancel_shielded_checkpoint()
                raise StopAsyncIteration
            self._consumer = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort_wait)

    def _hand_over(self, result: _R) -> _R:
        self._yielded += 1
        if self._room:
            self._room.unpark()
        return result

    def _abort_wait(self, _: object) -> trio.lowlevel.Abort:
        self._consumer = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _close(self) -> None:
        self._open = False


def amap(
    fn: Callable[[_T], Awaitable[_R]],
    items: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    ordered: bool = True,
    policy: SupportsCall | None = None,
) -> AbstractAsyncContextManager[AsyncIterator[_R]]:
    """Call ``await fn(item)`` for each item, at most *limit* at once, and stream the results.

    ::

        async with trine.amap(fetch, urls, limit=10) as results:
            async for page in results:
                print(page)

    *items* is read lazily, as workers free up, so it may be a generator, an
    async generator, or infinite. Memory stays proportional to *limit*, never
    to the length of *items*: at most *limit* calls run at once, and at most
    ``2 * limit`` items are taken from *items* and not yet yielded to you
    (those running plus the results waiting for you). When the window is full,
    the workers wait for you to catch up.

    With ``ordered=True`` (the default) results come in the order of *items*.
    A slow item does not stall the others: while it runs, later items keep
    running and their results wait, until ``2 * limit`` items are outstanding.
    With ``ordered=False`` results come as the calls finish.

    Everything runs in a nursery owned by the ``async with`` block. Leaving the
    block, early or not, cancels the calls still running and, if *items* is a
    generator or async generator that amap took items from, closes it. The
    first exception from ``fn`` (or from *items*) cancels everything else and
    propagates out of the block as Trio's nurseries propagate errors: inside a
    strict :exc:`ExceptionGroup` (catch it with ``except*``).

    Each step of ``async for`` is a cancellation point; it yields to the
    scheduler when it has to wait for a result.

    Args:
      fn: an async function of one argument (pass the function, not ``fn(x)``).
      items: an iterable or async iterable of arguments for *fn*.
      limit: the most calls of *fn* to run at once (>= 1).
      ordered: yield results in the order of *items* (true) or as they finish.
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn, *args)``)
        that each item's call goes through: ``await policy.call(fn, item)``, so
        retries, timeouts, breakers and limiters shared with other code apply
        per item. *limit* still bounds the calls in flight.

    Returns:
      An async context manager whose value is an async iterator of the
      results. It can be iterated once, inside the block.

    Raises:
      TypeError: *fn* is not an async function (or is a coroutine object),
        *limit* is not an int, or *items* is not iterable.
      ValueError: *limit* is less than 1.
      ExceptionGroup: from the block, holding the first exception that *fn*
        or *items* raised.
    """
    call = _check_arguments(fn, items, limit, policy)
    return _amap(call, items, limit=limit, ordered=bool(ordered))


@asynccontextmanager
async def _amap(
    fn: Callable[[_T], Awaitable[_R]],
    items: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    ordered: bool,
) -> AsyncGenerator[AsyncIterator[_R]]:
    results: _MapResults[_R] | None = None
    try:
        async with trio.open_nursery() as nursery:
            results = _MapResults(fn, limit=limit, ordered=ordered, nursery=nursery)
            try:
                results.start(items)
                yield results
            finally:
                results._close()
                nursery.cancel_scope.cancel()
    finally:
        if results is not None:
            await _close_source(results._source, results._async_source)


async def _close_source(
    source: Iterator[Any] | None, async_source: _AsyncSource[Any] | None
) -> None:
    """Close a (async) generator that we took items from, as a ``for`` loop would."""
    if source is not None and inspect.isgenerator(source):
        source.close()
    if async_source is not None:
        iterator = async_source.iterator
        if inspect.isasyncgen(iterator):
            await iterator.aclose()


async def map_all(
    fn: Callable[[_T], Awaitable[_R]],
    items: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    ordered: bool = True,
    policy: SupportsCall | None = None,
) -> list[_R]:
    """Call ``await fn(item)`` for every item, at most *limit* at once, and return the results.

    ::

        pages = await trine.map_all(fetch, urls, limit=10)

    The list holds one result per item: in the order of *items* with
    ``ordered=True``, in the order the calls finished with ``ordered=False``.
    *items* is read lazily as workers free up (it may be a generator or an
    async generator). The first exception from ``fn`` or *items* cancels the
    other calls and propagates in an :exc:`ExceptionGroup`, as from a Trio
    nursery.

    This is the fastest way to map when you want every result: the workers
    write into the list directly, with no iterator in between.

    Args:
      fn: an async function of one argument.
      items: an iterable or async iterable of arguments for *fn*.
      limit: the most calls of *fn* to run at once (>= 1).
      ordered: keep the order of *items* (true) or the order of completion.
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn, *args)``)
        that each item's call goes through: ``await policy.call(fn, item)``, so
        retries, timeouts, breakers and limiters shared with other code apply
        per item. *limit* still bounds the calls in flight.

    Returns:
      The results of *fn*, one per item.

    Raises:
      TypeError: *fn* is not an async function (or is a coroutine object),
        *limit* is not an int, or *items* is not iterable.
      ValueError: *limit* is less than 1.
      ExceptionGroup: holding the first exception that *fn* or *items* raised.
    """
    call = _check_arguments(fn, items, limit, policy)
    results: list[_R] = []
    await _run_all(call, items, limit, results, ordered=bool(ordered))
    return results


async def for_each(
    fn: Callable[[_T], Awaitable[object]],
    items: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    policy: SupportsCall | None = None,
) -> None:
    """Call ``await fn(item)`` for every item, at most *limit* at once; discard the results.

    ::

        await trine.for_each(download, urls, limit=10)

    Like :func:`map_all` without keeping results: memory stays proportional to
    *limit* however long (or infinite) *items* is. The first exception from
    ``fn`` or *items* cancels the other calls and propagates in an
    :exc:`ExceptionGroup`.

    Args:
      fn: an async function of one argument.
      items: an iterable or async iterable of arguments for *fn*.
      limit: the most calls of *fn* to run at once (>= 1).
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn, *args)``)
        that each item's call goes through: ``await policy.call(fn, item)``, so
        retries, timeouts, breakers and limiters shared with other code apply
        per item. *limit* still bounds the calls in flight.

    Raises:
      TypeError: *fn* is not an async function (or is a coroutine object),
        *limit* is not an int, or *items* is not iterable.
      ValueError: *limit* is less than 1.
      ExceptionGroup: holding the first exception that *fn* or *items* raised.
    """
    call = _check_arguments(fn, items, limit, policy)
    await _run_all(call, items, limit, None, ordered=False)


async def _run_all(
    fn: Callable[[_T], Awaitable[Any]],
    items: Iterable[_T] | AsyncIterable[_T],
    limit: int,
    results: list[Any] | None,
    *,
    ordered: bool,
) -> None:
    """Run *fn* on every item in at most *limit* workers (no window, no consumer).

    With *results* a list, each result is stored in it: at the position its
    item was taken at (*ordered*), or appended as it comes. A slot is
    reserved when the item is taken, so the list is in input order.
    """
    in_order = results is not None and ordered
    placeholder: Any = None
    is_async = _is_async(items)
    source: Iterator[_T] | None = None if is_async else iter(items)  # type: ignore[arg-type]
    async_source = _AsyncSource(aiter(items)) if is_async else None  # type: ignore[arg-type]
    workers_left = limit

    async def call(index: int, item: _T) -> None:
        if results is None:
            await fn(item)
        elif in_order:
            results[index] = await fn(item)
        else:
            results.append(await fn(item))

    async def sync_worker(index: int, item: _T) -> None:
        assert source is not None
        count = 0
        while True:
            await call(index, item)
            count += 1
            if count % _YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()
            try:
                item = next(source)
            except StopIteration:
                return
            if in_order:
                index = len(results)  # type: ignore[arg-type]
                results.append(placeholder)  # type: ignore[union-attr]

    async def async_worker() -> None:
        nonlocal workers_left
        assert async_source is not None
        count = 0
        while True:
            await async_source.acquire()
            try:
                if async_source.exhausted:
                    return
                try:
                    item = await async_source.next()
                except StopAsyncIteration:
                    return
            finally:
                async_source.release()
            index = 0
            if in_order:
                index = len(results)  # type: ignore[arg-type]
                results.append(placeholder)  # type: ignore[union-attr]
            if workers_left:
                workers_left -= 1
                nursery.start_soon(async_worker)
            await call(index, item)
            count += 1
            if count % _YIELD_EVERY == 0:
                await trio.lowlevel.checkpoint()

    try:
        async with trio.open_nursery() as nursery:
            if async_source is not None:
                workers_left -= 1
                nursery.start_soon(async_worker)
            else:
                assert source is not None
                started = 0
                for item in source:
                    if in_order:
                        results.append(placeholder)  # type: ignore[union-attr]
                    nursery.start_soon(sync_worker, started, item)
                    started += 1
                    if started == limit:
                        break
                if not started:
                    # An empty input starts no task; the call is still a checkpoint.
                    await trio.lowlevel.checkpoint()
    finally:
        await _close_source(source, async_source)
