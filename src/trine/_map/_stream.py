"""amap: the results streamed to an ``async for``, with backpressure; its workers and consumer."""

from __future__ import annotations

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
from typing import Any, Generic, TypeVar, final

import trio

from .._block import exception_leaving_the_block
from .._policy import SupportsCall
from ._arguments import _check_arguments
from ._sources import _AsyncSource, _close_source, _is_async, _length
from ._workers import _MISSING, _YIELD_EVERY, _CoroutineType, _Workers

__all__ = ["_MapResults", "amap"]

_T = TypeVar("_T")
_R = TypeVar("_R")


@final
class _MapResults(_Workers, Generic[_R]):
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
        "_total",
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
        super().__init__()
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
        self._total: int | None = None  # len(items), for trine.progress

    # -- starting -------------------------------------------------------------

    def start(self, items: Iterable[Any] | AsyncIterable[Any]) -> None:
        self._total = _length(items)
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
        left = _YIELD_EVERY
        while True:
            awaitable = fn(item)
            if type(awaitable) is not _CoroutineType:
                awaitable = self._awaitable(awaitable)
            self._deliver(index, await awaitable)
            left -= 1
            if not left:
                left = _YIELD_EVERY
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
        left = _YIELD_EVERY
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
            awaitable = fn(item)
            if type(awaitable) is not _CoroutineType:
                awaitable = self._awaitable(awaitable)
            self._deliver(index, await awaitable)
            left -= 1
            if not left:
                left = _YIELD_EVERY
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

    def _progress_counts(self) -> tuple[int, int, int | None]:
        """Calls done, calls running and ``len(items)`` (or ``None``), for trine.progress."""
        done = self._yielded + len(self._ready_in_order if self._ordered else self._ready)
        return done, self._taken - done, self._total


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

    An exception raised by the block itself is another matter: the block is
    a context manager's body, not a nursery's, so its exception cancels the
    calls and then leaves the block as itself, bare, with its own traceback,
    ``__cause__`` and ``__context__`` -- as from :meth:`Pipeline.open()
    <trine.Pipeline.open>`. (Only when ``fn`` failed too, at the same time,
    does the nursery's group come out, holding both.)

    Each step of ``async for`` is a cancellation point; it yields to the
    scheduler when it has to wait for a result.

    Args:
      fn: an async function of one argument (pass the function, not ``fn(x)``),
        or any callable returning an awaitable (``lambda x: fetch(x, retries=2)``).
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
      TypeError: at the call, if *fn* is not callable (or is a coroutine
        object), *limit* is not an int, *ordered* is not a bool, or *items*
        is not iterable (a coroutine given as *items* is closed). In the
        block's :exc:`ExceptionGroup`, once, if calling *fn* returned
        something that cannot be awaited (*fn* is not an async function).
      ValueError: *limit* is less than 1.
      ExceptionGroup: from the block, holding the first exception that *fn*
        or *items* raised.
    """
    call = _check_arguments(fn, items, limit, policy, ordered)
    return _amap(call, items, limit=limit, ordered=ordered)


@asynccontextmanager
async def _amap(
    fn: Callable[[_T], Awaitable[_R]],
    items: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    ordered: bool,
) -> AsyncGenerator[AsyncIterator[_R]]:
    results: _MapResults[_R] | None = None
    raised: BaseException | None = None  # what the block itself raised
    try:
        async with trio.open_nursery() as nursery:
            results = _MapResults(fn, limit=limit, ordered=ordered, nursery=nursery)
            try:
                results.start(items)
                try:
                    yield results
                except BaseException as exc:
                    raised = exc
                    raise
            finally:
                results._close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The block is read as a context manager's, not a nursery's: when the
        # group holds the block's own exception and otherwise only the
        # workers' Cancelled (an outer scope's cancellation, which goes on),
        # that exception leaves as itself, below; with no exception from the
        # block, one Cancelled does. A failure of fn or items keeps the
        # group, as a nursery gives it.
        leaving = exception_leaving_the_block(group, raised)
        if leaving is None:
            raise
        raised = leaving
    finally:
        if results is not None:
            await _close_source(results._source, results._async_source)
    if raised is not None:
        # Outside the except clause, so its __context__ stays its own. The
        # nursery may have absorbed it (a Cancelled): it is raised all the same.
        raise raised
