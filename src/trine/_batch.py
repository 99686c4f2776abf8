"""Batcher: many single loads coalesced into one call of a batch function (DataLoader).

How it works. :meth:`Batcher.load` puts its key into the *open* batch (one
item per distinct key with ``dedupe``) and parks until the item's result is
handed to it. The open batch is closed when it reaches ``max_size`` items --
by the load that filled it, synchronously -- or ``max_wait`` seconds after
its first item, by a timer task that sleeps in a cancel scope whose deadline
is moved to each new batch's (so a stream of full batches costs the timer no
wake-up at all). A closed batch is sent at once if fewer than
``max_concurrent`` batch calls are in flight, or queued; a sender task,
started in the batcher's nursery, calls the batch function and then takes
the next queued batch itself, so a busy batcher starts no task per batch.
A batch call runs in a copy of the context of the load that opened its batch
(contextvars such as :func:`trine.testing.no_waits`), whichever task sends it.

A load costs one park and one wake-up; a batch, one call of the function and
at most one task start. A waiter's cancellation removes it from its item;
an item nobody waits for any more is dropped from a batch not yet sent, and
a sent batch nobody waits for any more is cancelled.
"""

from __future__ import annotations

import collections
import types
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from contextvars import copy_context
from types import MappingProxyType, TracebackType
from typing import Any, Final, Generic, TypeAlias, TypeVar, final, overload

import attrs
import trio
from trio.lowlevel import (
    Abort,
    Task,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from . import _created
from ._errors import BatcherFull
from ._flight import hashable_key
from ._policy import SupportsCall, _check_call_guard
from ._service import ServiceNursery, closed_error
from ._stats import LatencyHistogram, LatencySummary
from ._util import (
    check_async_function,
    check_awaitable,
    check_bool,
    check_int,
    check_name,
    check_number,
    describe,
)

__all__ = ["Batcher", "BatcherStatistics"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")

BatchResults: TypeAlias = Sequence[_V | Exception] | Mapping[_K, _V | Exception]
"""What a batch function returns: one result per key in order, or a mapping by key."""

_CoroutineType = types.CoroutineType
_current_time = trio.current_time

# A batch's states.
_OPEN: Final = 0  # taking items
_QUEUED: Final = 1  # closed, waiting for a free batch call
_SENT: Final = 2  # its batch call is running or done


@final
class _Item:
    """One key in one batch, and the tasks waiting for its result."""

    __slots__ = ("error", "key", "result", "traceback", "waiters")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.waiters: list[Task] = []
        self.result: Any = None
        self.error: BaseException | None = None
        self.traceback: TracebackType | None = None


@final
class _Batch:
    """Items collected for one call of the batch function."""

    __slots__ = ("context", "deadline", "items", "live", "scope", "sent", "state")

    def __init__(self, deadline: float) -> None:
        self.context = copy_context()
        """The context of the load that opened the batch, which its call runs in."""
        self.items: dict[object, _Item] = {}
        """By key (with dedupe) or by arrival number."""
        self.deadline = deadline
        self.state = _OPEN
        self.sent: list[_Item] = []
        """The items as sent, in the order of the keys passed to the function."""
        self.live = 0
        """Sent items that still have a waiter; at 0 the call is cancelled."""
        self.scope = trio.CancelScope()


@attrs.frozen
class BatcherStatistics:
    """A snapshot of a :class:`Batcher`, from :meth:`Batcher.statistics`."""

    items: int
    """Loads that joined a batch (refused and already-cancelled ones not counted)."""
    deduplicated: int
    """Loads whose key was already waiting in the open batch, so it was not sent again."""
    batches: int
    """Batch calls started."""
    failed_batches: int
    """Batch calls that raised (every item of the batch failed with the exception)."""
    batch_sizes: Mapping[int, int]
    """How many batches were sent with each number of keys: ``{size: batches}``."""
    waiting: int
    """Items waiting to be sent now (in the open batch and in queued ones)."""
    in_flight: int
    """Batch calls running now."""
    batch_latency: LatencySummary
    """How long batch calls took (cancelled ones not counted)."""


@final
@attrs.define(eq=False, repr=False, init=False)
class Batcher(Generic[_K, _V]):
    """Coalesce single loads into calls of a batch function, as Facebook's DataLoader does.

    ::

        async def load_users(ids: list[int]) -> list[User | Exception]: ...

        async with trine.Batcher(load_users, max_size=100, max_wait=0.005) as users:
            user = await users.load(user_id)   # one of the ids of one load_users call

    Each :meth:`load` adds its key to the batch being filled and waits for
    that key's result. A batch is sent -- ``await load_many(keys)`` in the
    batcher's nursery -- when it holds *max_size* keys or *max_wait* seconds
    after its first key arrived, whichever comes first: a batch never waits
    to be full once *max_wait* has passed. At most *max_concurrent* batch
    calls run at once; closed batches wait in line for one, and a load is
    refused with :exc:`~trine.BatcherFull` while *max_waiting* keys already
    wait to be sent.

    The batch function gets the keys as a list and returns either a
    sequence with one result per key, in the same order, or a mapping from
    key to result. A result that is an :exc:`Exception` *instance* fails
    that key's loads only (DataLoader's convention); a key missing from a
    mapping fails with :exc:`KeyError`, and one that cannot be looked up in
    it (an unhashable key, with ``dedupe=False``) with :exc:`TypeError`; a
    sequence of the wrong length, or anything else, fails every load of the
    batch with a message saying what was wrong, and so do results that raise
    while being matched to the keys (that exception, with a note); a batch
    call that raises fails every load of the batch with
    that exception (the same object, raised again from its traceback as
    :meth:`SingleFlight.call` does).

    With *dedupe* (the default) equal keys waiting in the open batch are sent
    once and every load of the key gets its result.

    Cancellation: a cancelled load leaves its batch. If nobody else waits for
    its key and the batch has not been sent, the key is dropped from it; if
    the batch was sent, the result for it is discarded, and a batch call
    nobody waits for any more is cancelled. :exc:`trio.Cancelled` is never
    handed to a load as a result. Leaving the ``async with`` cancels the
    batch calls still running; a load from outside the block still waiting
    gets :exc:`trio.ClosedResourceError`.

    Args:
      load_many: an async function ``load_many(keys: list) -> list | dict``.
      max_size: the most keys in one batch (``int >= 1``).
      max_wait: seconds a batch may wait for more keys after its first one
        (``>= 0``; ``0`` sends what arrived by the time the timer task next
        runs, DataLoader's "one tick").
      max_concurrent: the most batch calls running at once (``int >= 1``).
      max_waiting: the most keys waiting to be sent (``int >= 1``).
      dedupe: send equal keys of one batch once (``True``) or once per load.
      policy: a :class:`~trine.Policy` (or anything with
        ``async call(fn, *args)``) that each batch call goes through:
        ``await policy.call(load_many, keys)`` (retry, breaker, timeout).
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError: if an argument has the wrong type.
      ValueError: if an argument is out of range.
    """

    _load_many: Callable[[list[_K]], Awaitable[BatchResults[_K, _V]]]
    _max_size: int
    _max_wait: float
    _max_concurrent: int
    _max_waiting: int
    _dedupe: bool
    _policy: SupportsCall | None
    _service: ServiceNursery
    _nursery: trio.Nursery | None
    _open: _Batch | None
    _queue: collections.deque[_Batch]
    _timer: trio.CancelScope | None
    _timer_task: Task | None
    _waiting: int
    _in_flight: int
    _arrivals: int
    _items: int
    _deduplicated: int
    _batches: int
    _failed_batches: int
    _sizes: dict[int, int]
    _latency: LatencyHistogram

    name: str | None
    """The name given to the constructor (metrics and events carry it)."""

    # Two overloads, so that type checkers infer the key and value types from
    # either shape of batch function.
    @overload
    def __init__(
        self,
        load_many: Callable[[list[_K]], Awaitable[Sequence[_V | Exception]]],
        *,
        max_size: int = 100,
        max_wait: float = 0.0,
        max_concurrent: int = 1,
        max_waiting: int = 10_000,
        dedupe: bool = True,
        policy: SupportsCall | None = None,
        name: str | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self,
        load_many: Callable[[list[_K]], Awaitable[Mapping[_K, _V | Exception]]],
        *,
        max_size: int = 100,
        max_wait: float = 0.0,
        max_concurrent: int = 1,
        max_waiting: int = 10_000,
        dedupe: bool = True,
        policy: SupportsCall | None = None,
        name: str | None = None,
    ) -> None: ...

    def __init__(
        self,
        load_many: Callable[[list[_K]], Awaitable[Any]],
        *,
        max_size: int = 100,
        max_wait: float = 0.0,
        max_concurrent: int = 1,
        max_waiting: int = 10_000,
        dedupe: bool = True,
        policy: SupportsCall | None = None,
        name: str | None = None,
    ) -> None:
        check_async_function("load_many", load_many)
        self._load_many = load_many
        self._max_size = check_int("max_size", max_size)
        self._max_wait = check_number("max_wait", max_wait)
        self._max_concurrent = check_int("max_concurrent", max_concurrent)
        self._max_waiting = check_int("max_waiting", max_waiting)
        self._dedupe = check_bool("dedupe", dedupe)
        if policy is not None:
            _check_call_guard("policy", policy)
        self._policy = policy
        self._service = ServiceNursery("Batcher")
        self._nursery = None
        self._open = None
        self._queue = collections.deque()
        self._timer = None
        self._timer_task = None
        self._waiting = self._in_flight = self._arrivals = 0
        self._items = self._deduplicated = self._batches = self._failed_batches = 0
        self._sizes = {}
        self._latency = LatencyHistogram()
        self.name = check_name(name)
        if _created.watchers:
            _created.announce(self, None)

    def __repr__(self) -> str:
        return (
            f"<trine.Batcher at {id(self):#x}, {self._service.state}, {self._waiting} waiting, "
            f"{self._in_flight}/{self._max_concurrent} batch calls in flight>"
        )

    async def __aenter__(self) -> Batcher[_K, _V]:
        nursery = await self._service.open()
        nursery.start_soon(self._time_batches, name="trine.Batcher timer")
        self._nursery = nursery
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        nursery, self._nursery = self._nursery, None
        assert nursery is not None
        try:
            return await self._service.close(nursery, exc_type, exc, tb)
        finally:
            # Loads from outside the block still waiting in a batch never sent.
            batches = list(self._queue)
            if self._open is not None:
                batches.append(self._open)
            self._queue.clear()
            self._open = None
            for batch in batches:
                for item in batch.items.values():
                    _fail(item, closed_error("Batcher"), None)
            self._waiting = 0

    # -- loading -----------------------------------------------------------------------

    async def load(self, key: _K) -> _V:
        """Return *key*'s result from a call of the batch function with a batch of keys.

        Every load is a checkpoint and waits at least until its batch is sent.

        Args:
          key: what to load; hashable when *dedupe* is on.

        Returns:
          the batch function's result for *key*.

        Raises:
          BatcherFull: at once, if *max_waiting* keys already wait to be sent.
          TypeError: if *key* is not hashable (with *dedupe*).
          RuntimeError: outside the ``async with`` block.
          trio.ClosedResourceError: after the block, or if it ends while this
            load (made from outside it) waits.
          Exception: the exception instance the batch function returned for
            *key*, the exception the batch call raised, :exc:`KeyError` for a
            key missing from a returned mapping, or a :exc:`ValueError` or
            :exc:`TypeError` saying how the returned results were malformed.
        """
        if self._nursery is None:
            raise self._service.not_open()
        await checkpoint_if_cancelled()
        batch = self._open
        if batch is None:
            batch = self._open_batch()
        if self._dedupe:
            slot: object = key
            try:
                item = batch.items.get(key)
            except TypeError:
                if not batch.items:
                    self._open = None  # as a cancelled load leaves it: the next opens afresh
                await cancel_shielded_checkpoint()
                raise hashable_key(key) from None
        else:
            slot = self._arrivals = self._arrivals + 1
            item = None
        if item is None:
            if self._waiting >= self._max_waiting:
                if not batch.items:
                    self._open = None
                await cancel_shielded_checkpoint()
                raise BatcherFull(self._max_waiting)
            item = batch.items[slot] = _Item(key)
            self._waiting += 1
            if len(batch.items) >= self._max_size:
                self._close_open_batch()
        else:
            self._deduplicated += 1
        self._items += 1
        task = current_task()
        item.waiters.append(task)

        def abort(_: object) -> Abort:
            self._leave(batch, slot, item, task)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)
        error = item.error
        if error is not None:
            raise error.with_traceback(item.traceback)
        result: _V = item.result
        return result

    def _leave(self, batch: _Batch, slot: object, item: _Item, task: Task) -> None:
        """A waiting load was cancelled: take it out, and its item or batch if now unwanted."""
        item.waiters.remove(task)
        if item.waiters:
            return
        if batch.state == _SENT:
            batch.live -= 1
            if not batch.live:
                batch.scope.cancel()  # nobody waits for any of its results
            return
        del batch.items[slot]
        self._waiting -= 1
        if not batch.items and batch is self._open:
            self._open = None  # the next load opens a batch with a fresh max_wait

    # -- batches -----------------------------------------------------------------------

    def _open_batch(self) -> _Batch:
        batch = self._open = _Batch(_current_time() + self._max_wait)
        task = self._timer_task
        if task is not None:
            self._timer_task = None
            reschedule(task)  # the timer was idle: it arms itself for this batch
        elif self._timer is not None:
            self._timer.deadline = batch.deadline
        return batch

    def _close_open_batch(self) -> None:
        batch = self._open
        assert batch is not None
        self._open = None
        batch.state = _QUEUED
        if self._in_flight < self._max_concurrent:
            self._in_flight += 1
            # Closed by the timer or by the load that filled it, the batch's
            # call starts in (a copy of) the context of the load that opened it.
            batch.context.run(self._start_sender, batch)
        else:
            self._queue.append(batch)

    def _start_sender(self, batch: _Batch) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._send, batch, name="trine.Batcher call")

    async def _time_batches(self) -> None:
        """The timer task: close the open batch *max_wait* after its first key."""
        while True:
            batch = self._open
            if batch is None:
                self._timer_task = current_task()
                await wait_task_rescheduled(self._abort_timer)
                continue
            with trio.CancelScope(deadline=batch.deadline) as timer:
                self._timer = timer
                await trio.sleep_forever()
            self._timer = None
            batch = self._open
            if batch is not None and batch.deadline <= _current_time():
                self._close_open_batch()

    def _abort_timer(self, _: object) -> Abort:
        self._timer_task = None
        return Abort.SUCCEEDED

    async def _send(self, batch: _Batch) -> None:
        """A sender task: call the batch function for *batch*, then for each queued batch."""
        task = current_task()
        try:
            while True:
                if batch.items:
                    await self._call(batch)
                if not self._queue:
                    return
                batch = self._queue.popleft()
                # Call it in the context of the load that opened it, as a new
                # sender would: a task's context can change only between steps.
                task.context = batch.context
                await cancel_shielded_checkpoint()
        finally:
            self._in_flight -= 1

    async def _call(self, batch: _Batch) -> None:
        items = batch.sent = list(batch.items.values())
        batch.state = _SENT
        batch.live = len(items)
        self._waiting -= len(items)
        self._batches += 1
        self._sizes[len(items)] = self._sizes.get(len(items), 0) + 1
        keys: list[Any] = [item.key for item in items]
        started = _current_time()
        try:
            with batch.scope:
                try:
                    policy = self._policy
                    if policy is None:
                        coro = self._load_many(keys)
                        if type(coro) is not _CoroutineType:
                            coro = check_awaitable("load_many", coro)
                    else:
                        coro = policy.call(self._load_many, keys)
                    results = await coro
                except Exception as exc:
                    self._failed_batches += 1
                    for item in items:
                        _fail(item, exc, exc.__traceback__)
                else:
                    try:
                        _deliver(items, results)
                    except Exception as exc:
                        # The results themselves raised while being matched (a
                        # sequence or mapping of the user's making): that is this
                        # batch's failure, never the batcher's.
                        exc.add_note("raised while matching load_many's results to the keys")
                        for item in items:
                            if item.waiters:
                                _fail(item, exc, exc.__traceback__)
            if not batch.scope.cancelled_caught:
                self._latency.record(max(_current_time() - started, 0.0))
        finally:
            # Cancelled by the batcher's exit (or interrupted): the loads still
            # waiting learn that it closed, never the Cancelled itself.
            for item in items:
                if item.waiters:
                    _fail(item, closed_error("Batcher"), None)

    def statistics(self) -> BatcherStatistics:
        """Return a snapshot of the loads, batches and waiting keys so far."""
        return BatcherStatistics(
            items=self._items,
            deduplicated=self._deduplicated,
            batches=self._batches,
            failed_batches=self._failed_batches,
            batch_sizes=MappingProxyType(dict(sorted(self._sizes.items()))),
            waiting=self._waiting,
            in_flight=self._in_flight,
            batch_latency=self._latency.summary(),
        )


# -- handing results to the loads -------------------------------------------------------


def _wake(item: _Item) -> None:
    for task in item.waiters:
        reschedule(task)
    item.waiters.clear()


def _fail(item: _Item, error: BaseException, traceback: TracebackType | None) -> None:
    item.error = error
    item.traceback = traceback
    _wake(item)


def _deliver(items: list[_Item], results: object) -> None:
    """Hand each item its result from what the batch function returned."""
    if isinstance(results, Mapping):
        for item in items:
            try:
                value = results[item.key]
            except KeyError:
                missing = KeyError(item.key)
                missing.add_note("load_many returned a mapping with no result for this key")
                _fail(item, missing, None)
                continue
            except Exception as exc:  # e.g. an unhashable key (dedupe=False)
                unmatched = TypeError(
                    f"load_many returned a mapping, but key {describe(item.key)} cannot be "
                    f"looked up in it: {type(exc).__name__}: {exc}"
                )
                unmatched.__cause__ = exc
                _fail(item, unmatched, None)
                continue
            _settle(item, value)
        return
    if not isinstance(results, Sequence) or isinstance(results, str | bytes | bytearray):
        error: Exception = TypeError(
            "load_many must return a sequence with one result per key, in order, "
            f"or a mapping by key, got {describe(results)}"
        )
    elif len(results) != len(items):
        error = ValueError(
            f"load_many returned {len(results)} results for {len(items)} keys: "
            "it must return one result per key, in the order of the keys (or a mapping by key)"
        )
    else:
        for item, value in zip(items, results, strict=True):
            _settle(item, value)
        return
    for item in items:
        _fail(item, error, None)


def _settle(item: _Item, value: object) -> None:
    if isinstance(value, Exception):
        item.error = value
        item.traceback = value.__traceback__
    else:
        item.result = value
    _wake(item)
