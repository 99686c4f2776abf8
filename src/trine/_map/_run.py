"""Bounded concurrent maps: :func:`amap`, :func:`map_all`, :func:`map_settled`, :func:`for_each`.

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
  deque (unordered). :func:`map_all` and :func:`for_each` have no consumer:
  one worker function per way of storing a result (at its item's number in
  the list, appended, or dropped), so their per-item loop is the hand-written
  shared-iterator worker's, plus one type check of what ``fn`` returned.
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
import math
import types
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sized,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar, final

import outcome
import trio

from .._block import exception_leaving_the_block
from .._deadline import cut_off, resolve_deadline
from .._policy import SupportsCall, _check_call_guard
from .._progress._display import show_calls
from .._util import NotAwaitableError, check_async_callable, check_awaitable, check_bool, check_int

__all__ = ["amap", "for_each", "map_all", "map_settled"]

_T = TypeVar("_T")
_R = TypeVar("_R")

_MISSING: Final[Any] = object()
_CoroutineType: Final = types.CoroutineType

# A worker whose ``fn`` never yields would otherwise run the whole input
# without letting another task (or a deadline, or Ctrl-C) in. Every this many
# items of its own it passes through a full checkpoint. map_all's workers skip
# it when other workers took items meanwhile, which they can only have done
# while this worker was suspended (so it did yield): a worker never runs more
# than 2 * _YIELD_EVERY items without yielding, and with an ``fn`` that yields
# the checkpoint (a scheduler trip, ~4 % of such an item) is almost never paid.
_YIELD_EVERY: Final = 64


def _check_items(items: object) -> None:
    if isinstance(items, Iterable | AsyncIterable):
        return
    if inspect.iscoroutine(items):
        items.close()  # it will never be awaited: no "never awaited" warning on top
        raise TypeError(
            f"items must be an iterable or an async iterable, got the coroutine object {items!r}: "
            "await it to get the items, or pass an async generator"
        )
    raise TypeError(f"items must be an iterable or an async iterable, got {items!r}")


def _check_arguments(
    fn: Callable[[_T], Awaitable[_R]],
    items: object,
    limit: object,
    policy: SupportsCall | None,
    ordered: object = False,
) -> Callable[[_T], Awaitable[_R]]:
    """Validate the arguments; return the function the workers call for each item."""
    _check_items(items)  # first, so that a coroutine given as items is closed
    check_async_callable("fn", fn)
    check_int("limit", limit)
    check_bool("ordered", ordered)
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


class _Workers:
    """What every worker of one map shares about a ``fn`` that is not async."""

    __slots__ = ("_misused",)

    def __init__(self) -> None:
        self._misused = False

    def _awaitable(self, result: object) -> Awaitable[Any]:
        """*result*, what ``fn(item)`` returned when it is not a coroutine, if it can be awaited.

        Workers call this only off the fast path (``type(result)`` is not a
        coroutine). The first worker to find a non-awaitable raises
        :exc:`NotAwaitableError`, which cancels the map; a worker that finds
        one after it waits for that cancellation instead of raising the same
        error again, so the nursery's group holds it once.
        """
        try:
            return check_awaitable("fn", result)
        except NotAwaitableError:
            if self._misused:
                return trio.sleep_forever()  # noqa: ASYNC105  # the worker awaits it at once
            self._misused = True
            raise


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
    progress: bool = False,
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
      fn: an async function of one argument, or any callable returning an
        awaitable.
      items: an iterable or async iterable of arguments for *fn*.
      limit: the most calls of *fn* to run at once (>= 1).
      ordered: keep the order of *items* (true) or the order of completion.
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn, *args)``)
        that each item's call goes through: ``await policy.call(fn, item)``, so
        retries, timeouts, breakers and limiters shared with other code apply
        per item. *limit* still bounds the calls in flight.
      progress: show a live display of the calls done (of ``len(items)``,
        with a bar and an ETA, when *items* has a length) while the map runs,
        as :func:`trine.progress` does; only on a terminal with rich installed,
        and at no cost anywhere else.

    Returns:
      The results of *fn*, one per item.

    Raises:
      TypeError: at the call, if *fn* is not callable (or is a coroutine
        object), *limit* is not an int, *ordered* is not a bool, or *items*
        is not iterable (a coroutine given as *items* is closed). In an
        :exc:`ExceptionGroup`, once, if calling *fn* returned something that
        cannot be awaited (*fn* is not an async function).
      ValueError: *limit* is less than 1.
      ExceptionGroup: holding the first exception that *fn* or *items* raised.
    """
    call = _check_arguments(fn, items, limit, policy, ordered)
    check_bool("progress", progress)
    run = _Run(call, items, limit, "ordered" if ordered else "unordered")
    await (run.run() if not progress else _run_shown(run, items))
    assert run.results is not None
    return run.results


async def map_settled(
    fn: Callable[[_T], Awaitable[_R]],
    items: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    ordered: bool = True,
    policy: SupportsCall | None = None,
    deadline: float | None = None,
    timeout: float | None = None,  # noqa: ASYNC109  # partial results at the deadline, not TooSlowError
) -> list[outcome.Outcome[_R]]:
    """Like :func:`map_all`, but return one outcome per item, and stop at a deadline if asked.

    :func:`map_settled` is to :func:`map_all` what :func:`settle` is to
    :func:`gather`: a failing call is that item's :class:`outcome.Error` and
    cancels nothing; every other item is an :class:`outcome.Value`::

        results = await trine.map_settled(fetch, urls, limit=10, timeout=5.0)
        pages = [r.value for r in results if isinstance(r, outcome.Value)]

    With a *deadline* (or a *timeout*), at that moment the calls still
    running are cancelled, no further item is taken from *items* (a generator
    is closed), and :func:`map_settled` returns at once with what finished:
    each call cut off has ``outcome.Error(trine.DeadlineExceeded(deadline))``.
    Items not yet taken at the deadline have no entry, so the list has one
    outcome per item *taken*: with ``ordered=True`` they are the first
    ``len(results)`` items, in order; with ``ordered=False`` the outcomes come
    in the order the calls finished, those cut off last.

    A cancellation from outside is still a cancellation: it propagates as
    :exc:`trio.Cancelled`, never as an outcome. An exception from iterating
    *items* is not an item's outcome: it cancels the calls and propagates in
    an :exc:`ExceptionGroup`, as from :func:`map_all`.

    Args:
      fn: an async function of one argument, or any callable returning an
        awaitable.
      items: an iterable or async iterable of arguments for *fn*.
      limit: the most calls of *fn* to run at once (>= 1).
      ordered: outcomes in the order of *items* (true) or of completion.
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn, *args)``)
        that each item's call goes through; what it finally raises is the
        item's outcome.
      deadline: when to cut the calls off, as a :func:`trio.current_time`
        value (absolute, as :func:`trio.move_on_at` takes it). ``None``: never.
      timeout: the same, in seconds from the call (relative, as
        :func:`trio.move_on_after` takes it). Give *deadline* or *timeout*,
        not both.

    Returns:
      One :class:`outcome.Outcome` per item taken from *items*.

    Raises:
      TypeError: at the call, if *fn* is not callable (or is a coroutine
        object), *limit* is not an int, *ordered* is not a bool, *items* is
        not iterable, or *deadline* or *timeout* is not a number. In an
        :exc:`ExceptionGroup`, once, if calling *fn* returned something that
        cannot be awaited (a programming error, never an item's outcome).
      ValueError: *limit* is less than 1, *deadline* is NaN, *timeout* is
        negative or NaN, or both are given.
      ExceptionGroup: holding the exception that iterating *items* raised.
    """
    call = _check_arguments(fn, items, limit, policy, ordered)
    at = resolve_deadline(deadline, timeout)
    run = _Run(call, items, limit, "ordered" if ordered else "unordered", settle=True)
    with trio.CancelScope(deadline=math.inf if at is None else at) as scope:
        await run.run()
    results = run.results
    assert results is not None
    if scope.cancelled_caught:
        # Cancelled at the same moment from outside too: that one goes on.
        await trio.lowlevel.checkpoint_if_cancelled()
        assert at is not None
        _cut_off_the_rest(results, run.taken, at, ordered=ordered)
    return results


def _cut_off_the_rest(results: list[Any], taken: int, at: float, *, ordered: bool) -> None:
    """Give every item taken whose call was cancelled at *at* its :func:`cut_off` outcome."""
    if ordered:
        # The list grows as results are stored: cut spare slots, add the missing ones.
        del results[taken:]
        results.extend([_MISSING] * (taken - len(results)))
        for index in range(taken):
            if results[index] is _MISSING:
                results[index] = cut_off(at)
    else:
        results.extend(cut_off(at) for _ in range(taken - len(results)))


async def for_each(
    fn: Callable[[_T], Awaitable[object]],
    items: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    policy: SupportsCall | None = None,
    progress: bool = False,
) -> None:
    """Call ``await fn(item)`` for every item, at most *limit* at once; discard the results.

    ::

        await trine.for_each(download, urls, limit=10)

    Like :func:`map_all` without keeping results: memory stays proportional to
    *limit* however long (or infinite) *items* is. The first exception from
    ``fn`` or *items* cancels the other calls and propagates in an
    :exc:`ExceptionGroup`.

    Args:
      fn: an async function of one argument, or any callable returning an
        awaitable.
      items: an iterable or async iterable of arguments for *fn*.
      limit: the most calls of *fn* to run at once (>= 1).
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn, *args)``)
        that each item's call goes through: ``await policy.call(fn, item)``, so
        retries, timeouts, breakers and limiters shared with other code apply
        per item. *limit* still bounds the calls in flight.
      progress: show a live display of the calls done while they run, as
        :func:`map_all` does.

    Raises:
      TypeError: at the call, if *fn* is not callable (or is a coroutine
        object), *limit* is not an int, or *items* is not iterable (a
        coroutine given as *items* is closed). In an :exc:`ExceptionGroup`,
        once, if calling *fn* returned something that cannot be awaited
        (*fn* is not an async function).
      ValueError: *limit* is less than 1.
      ExceptionGroup: holding the first exception that *fn* or *items* raised.
    """
    call = _check_arguments(fn, items, limit, policy)
    check_bool("progress", progress)
    run = _Run(call, items, limit, "discard")
    await (run.run() if not progress else _run_shown(run, items))


async def _run_shown(run: _Run, items: object) -> None:
    """*run* with its calls counted for a live display, if one draws (``progress=True``)."""
    async with show_calls(_length(items)) as counts:
        if counts is not None:
            run._fn = counts.wrap(run._fn, run._awaitable)
        await run.run()


def _length(items: object) -> int | None:
    """``len(items)``, if *items* has one (and it fits in an int); else ``None``."""
    if not isinstance(items, Sized):
        return None
    try:
        return len(items)
    except OverflowError:  # a range longer than sys.maxsize
        return None


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
