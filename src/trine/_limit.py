"""Concurrency limiters: how many calls may run at once, and in which order.

Every limiter here has the same shape, ``async with limiter.hold(...)``, so
anything that takes a limiter (``Policy(limiter=...)``, ``amap``, pipeline
stages, graph nodes) takes any of them, and a plain :class:`trio.CapacityLimiter`,
:class:`trio.Semaphore` or :class:`trio.Lock` too, through :func:`open_hold`.

All of them share Trio's habits:

* entering ``hold()`` is a checkpoint (``checkpoint_if_cancelled`` then a
  cancel-shielded schedule point on the fast path), leaving it is not;
* a freed slot is handed directly to the waiter it belongs to, so a task that
  arrives later cannot barge in front of one that is already waiting;
* a cancelled waiter leaves the queue and never takes a slot; a cancelled
  holder gives its slot back on the way out; nothing is ever lost;
* ``hold_nowait()`` is the non-blocking twin: a plain ``with`` block that
  raises :exc:`trio.WouldBlock` if it cannot enter at once;
* ``statistics()`` returns a fresh frozen object with ``borrowed_tokens`` and
  ``tasks_waiting`` beside what is particular to the limiter.
"""

from __future__ import annotations

import heapq
import inspect
import math
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar, final

import attrs
import trio
from trio.lowlevel import (
    Abort,
    Task,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    enable_ki_protection,
    reschedule,
    wait_task_rescheduled,
)

from ._errors import BulkheadFull
from ._util import check_choice, check_int, check_number, check_optional_number

__all__ = [
    "AdaptiveLimiter",
    "AdaptiveLimiterStatistics",
    "AdaptivePermit",
    "Bulkhead",
    "BulkheadStatistics",
    "KeyedLimiter",
    "KeyedLimiterStatistics",
    "Limiter",
    "LimiterLike",
    "PriorityLimiter",
    "PriorityLimiterStatistics",
    "WeightedSemaphore",
    "WeightedSemaphoreStatistics",
    "acquire_all",
    "hold_opener",
    "open_hold",
]

_T = TypeVar("_T")


# --------------------------------------------------------------------------
# The protocol and the adapter every consumer of limiters goes through


class Limiter(Protocol):
    """Anything with a ``hold()`` method returning an async context manager.

    Every trine limiter is one (a :class:`KeyedLimiter` through
    :meth:`KeyedLimiter.for_key`), and so is your own class if it has such a
    method. Functions that take a limiter accept a :data:`LimiterLike`: a
    :class:`Limiter`, or a :class:`trio.CapacityLimiter`,
    :class:`trio.Semaphore` or :class:`trio.Lock`, which are async context
    managers themselves.
    """

    def hold(self) -> AbstractAsyncContextManager[object]:
        """Return an async context manager that holds a slot while inside it."""
        ...


LimiterLike: TypeAlias = (
    Limiter | trio.CapacityLimiter | trio.Semaphore | trio.Lock | trio.StrictFIFOLock
)
"""What functions that take a limiter accept (see :func:`open_hold`)."""

_TRIO_LIMITERS = (trio.CapacityLimiter, trio.Semaphore, trio.Lock, trio.StrictFIFOLock)


def _check_limiter(limiter: object, name: str) -> None:
    if isinstance(limiter, _TRIO_LIMITERS):
        return
    if callable(getattr(limiter, "hold", None)):
        return
    raise TypeError(
        f"{name} must be a limiter (an object with a hold() method, or a "
        f"trio.CapacityLimiter, trio.Semaphore or trio.Lock), got {limiter!r}"
    )


def _takes_no_arguments(method: Callable[..., object]) -> bool:
    try:
        inspect.signature(method).bind()
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): trust it
        return True
    return True


def hold_opener(
    limiter: LimiterLike, *, name: str = "limiter"
) -> Callable[[], AbstractAsyncContextManager[object]]:
    """Check *limiter* once; return a function that holds one slot of it per call.

    For callers that hold the same limiter many times (a Policy, a pipeline
    stage): the check, including that ``hold()`` needs no arguments, happens
    here, at construction, not on every call.

    Raises:
      TypeError: naming *name*, if *limiter* is not a :data:`LimiterLike` or
        its ``hold()`` needs arguments (a :class:`KeyedLimiter`: pass
        ``keyed.for_key(key)``).
    """
    if isinstance(limiter, _TRIO_LIMITERS):
        return lambda: limiter
    _check_limiter(limiter, name)
    candidate: object = limiter  # for the KeyedLimiter hint, which the static type rules out
    if not _takes_no_arguments(limiter.hold):
        raise TypeError(
            f"{name} must be a limiter whose hold() takes no arguments, got {limiter!r}"
            + ("; pass keyed.for_key(key)" if isinstance(candidate, KeyedLimiter) else "")
        )
    return limiter.hold


def open_hold(
    limiter: LimiterLike, *, name: str = "limiter"
) -> AbstractAsyncContextManager[object]:
    """Return the async context manager that holds one slot of *limiter*.

    This is how everything in trine that takes a limiter uses it::

        async with open_hold(limiter):
            await fn(*args)

    Args:
      limiter: a :class:`Limiter` (its ``hold()`` is called with no
        arguments), or a :class:`trio.CapacityLimiter`, :class:`trio.Semaphore`,
        :class:`trio.Lock` or :class:`trio.StrictFIFOLock` (returned as they
        are: they are async context managers themselves).
      name: the caller's parameter name, used in the error message.

    Raises:
      TypeError: if *limiter* is none of those, naming *name*.
    """
    if isinstance(limiter, _TRIO_LIMITERS):
        return limiter
    _check_limiter(limiter, name)
    return limiter.hold()


# --------------------------------------------------------------------------
# Shared machinery: waiters, and the two context managers hold()/hold_nowait()

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

    __slots__ = ("arrival", "key", "ready", "state", "task", "weight")

    def __init__(self, task: Task, weight: int = 1, key: Hashable = None, arrival: int = 0) -> None:
        self.task = task
        self.weight = weight
        self.key = key
        self.arrival = arrival
        self.state = _WAITING
        self.ready = False


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
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._core._release(self._arg, self._held, exc_value)


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


# --------------------------------------------------------------------------
# WeightedSemaphore


@attrs.frozen
class WeightedSemaphoreStatistics:
    """A snapshot of a :class:`WeightedSemaphore`, from :meth:`WeightedSemaphore.statistics`."""

    borrowed_tokens: int
    """The sum of the weights held now."""
    total_tokens: int
    """The capacity."""
    tasks_waiting: int
    """How many tasks are queued in :meth:`WeightedSemaphore.hold`."""


@final
@attrs.define(eq=False, repr=False)
class WeightedSemaphore:
    """A sack of *capacity* tokens where each holder takes as many as it weighs.

    Use it when calls cost different amounts of one resource: a download
    holds as many tokens as it has megabytes, a query as many as it has rows
    to fetch, and the total held never exceeds *capacity*::

        memory = trine.WeightedSemaphore(1024)

        async def load(blob):
            async with memory.hold(weight=blob.megabytes):
                return await fetch(blob)

    Waiters are served in strict arrival order, as Go's ``semaphore.Weighted``
    does: if the first waiter does not fit yet, lighter ones behind it wait
    too, so a heavy waiter is never starved by a stream of light ones. When
    the first waiter is cancelled, the ones behind it that now fit enter at
    once.

    Args:
      capacity: how many tokens there are (an ``int`` >= 1).

    Raises:
      TypeError: if *capacity* is not an ``int``.
      ValueError: if *capacity* < 1.
    """

    _capacity: int = attrs.field(alias="capacity")
    _borrowed: int = attrs.field(default=0, init=False)
    _waiters: OrderedDict[_Waiter, None] = attrs.field(factory=OrderedDict, init=False)

    def __attrs_post_init__(self) -> None:
        check_int("capacity", self._capacity)

    def __repr__(self) -> str:
        return (
            f"<trine.WeightedSemaphore at {id(self):#x}, "
            f"{self._borrowed}/{self._capacity} borrowed with {len(self._waiters)} waiting>"
        )

    @property
    def capacity(self) -> int:
        """How many tokens the sack holds in all."""
        return self._capacity

    def _check_weight(self, weight: object) -> int:
        weight = check_int("weight", weight)
        if weight > self._capacity:
            raise ValueError(f"weight must be <= capacity ({self._capacity}), got {weight!r}")
        return weight

    def hold(self, weight: int = 1) -> AbstractAsyncContextManager[None]:
        """Hold *weight* tokens inside ``async with``, waiting for them first.

        Args:
          weight: how many tokens to hold, from 1 to the capacity.

        Raises:
          TypeError: if *weight* is not an ``int``.
          ValueError: if *weight* < 1 or *weight* > capacity (it could never
            fit; refusing it beats waiting for ever).
        """
        return _Hold(self, self._check_weight(weight))

    def hold_nowait(self, weight: int = 1) -> AbstractContextManager[None]:
        """Like :meth:`hold`, but a plain ``with`` that never waits.

        Raises:
          trio.WouldBlock: on entry, if *weight* tokens are not free or other
            tasks are already waiting (they come first).
        """
        return _HoldNowait(self, self._check_weight(weight))

    def statistics(self) -> WeightedSemaphoreStatistics:
        """Return a snapshot of the tokens borrowed and the tasks waiting."""
        return WeightedSemaphoreStatistics(
            borrowed_tokens=self._borrowed,
            total_tokens=self._capacity,
            tasks_waiting=len(self._waiters),
        )

    def _acquire_nowait(self, weight: int) -> None:
        if self._waiters or self._borrowed + weight > self._capacity:
            raise trio.WouldBlock
        self._borrowed += weight

    async def _acquire(self, weight: int) -> None:
        await checkpoint_if_cancelled()
        if not self._waiters and self._borrowed + weight <= self._capacity:
            self._borrowed += weight
            await cancel_shielded_checkpoint()
            return
        waiter = _Waiter(current_task(), weight)
        self._waiters[waiter] = None

        def abort(_: object) -> Abort:
            result = _fifo_abort(self._waiters, waiter)
            # The head may have been what held the others back (Go's bug).
            self._wake()
            return result

        await wait_task_rescheduled(abort)

    def _release(self, weight: int, held: None, error: BaseException | None) -> None:
        self._borrowed -= weight
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = next(iter(waiters))
            if self._borrowed + waiter.weight > self._capacity:
                return  # strict FIFO: nobody passes the head
            del waiters[waiter]
            self._borrowed += waiter.weight
            _grant(waiter)


# --------------------------------------------------------------------------
# PriorityLimiter


@attrs.frozen
class PriorityLimiterStatistics:
    """A snapshot of a :class:`PriorityLimiter`, from :meth:`PriorityLimiter.statistics`."""

    borrowed_tokens: int
    """How many tasks hold a slot now."""
    total_tokens: int
    """The limit."""
    tasks_waiting: int
    """How many tasks are queued in :meth:`PriorityLimiter.hold`."""


def _check_priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {priority!r}")
    return priority


@final
@attrs.define(eq=False, repr=False)
class PriorityLimiter:
    """At most *total* holders at once; waiters with a lower priority number go first.

    Use it when some callers matter more than others for the same scarce
    slots: interactive requests before batch jobs, health checks before
    everything::

        db = trine.PriorityLimiter(10)

        async with db.hold(priority=0):   # a user is waiting
            ...
        async with db.hold(priority=5):   # background refresh
            ...

    Among waiters of equal priority the earliest served first. A freed slot
    goes to the best waiter at that moment; holders are never pre-empted.
    A steady stream of urgent work can starve less urgent work: that is the
    point of priorities, so size *total* for it.

    Args:
      total: how many may hold a slot at once (an ``int`` >= 1).

    Raises:
      TypeError: if *total* is not an ``int``.
      ValueError: if *total* < 1.
    """

    _total: int = attrs.field(alias="total")
    _borrowed: int = attrs.field(default=0, init=False)
    # (priority, arrival number, waiter); cancelled waiters stay in the heap
    # marked _GONE and are skipped when popped, or swept out when they are many.
    _heap: list[tuple[int, int, _Waiter]] = attrs.field(factory=list, init=False)
    _waiting: int = attrs.field(default=0, init=False)
    _arrivals: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        check_int("total", self._total)

    def __repr__(self) -> str:
        return (
            f"<trine.PriorityLimiter at {id(self):#x}, "
            f"{self._borrowed}/{self._total} borrowed with {self._waiting} waiting>"
        )

    @property
    def total(self) -> int:
        """How many may hold a slot at once."""
        return self._total

    def hold(self, priority: int = 0) -> AbstractAsyncContextManager[None]:
        """Hold a slot inside ``async with``, waiting behind better priorities.

        Args:
          priority: lower numbers are served first (any ``int``, negative too).

        Raises:
          TypeError: if *priority* is not an ``int``.
        """
        return _Hold(self, _check_priority(priority))

    def hold_nowait(self, priority: int = 0) -> AbstractContextManager[None]:
        """Like :meth:`hold`, but a plain ``with`` that never waits.

        Raises:
          trio.WouldBlock: on entry, if no slot is free.
        """
        return _HoldNowait(self, _check_priority(priority))

    def statistics(self) -> PriorityLimiterStatistics:
        """Return a snapshot of the slots borrowed and the tasks waiting."""
        return PriorityLimiterStatistics(
            borrowed_tokens=self._borrowed,
            total_tokens=self._total,
            tasks_waiting=self._waiting,
        )

    def _acquire_nowait(self, priority: int) -> None:
        # A free slot means nobody waits: every release hands its slot on.
        if self._borrowed >= self._total:
            raise trio.WouldBlock
        self._borrowed += 1

    async def _acquire(self, priority: int) -> None:
        await checkpoint_if_cancelled()
        if self._borrowed < self._total:
            self._borrowed += 1
            await cancel_shielded_checkpoint()
            return
        waiter = _Waiter(current_task())
        self._arrivals += 1
        heapq.heappush(self._heap, (priority, self._arrivals, waiter))
        self._waiting += 1

        def abort(_: object) -> Abort:
            waiter.state = _GONE
            self._waiting -= 1
            _sweep(self._heap, self._waiting)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def _release(self, priority: int, held: None, error: BaseException | None) -> None:
        heap = self._heap
        while heap:
            waiter = heapq.heappop(heap)[2]
            if waiter.state == _WAITING:
                self._waiting -= 1
                if not self._waiting:
                    heap.clear()  # only cancelled entries can be left
                _grant(waiter)  # the slot passes straight to it
                return
        self._borrowed -= 1


# --------------------------------------------------------------------------
# KeyedLimiter


@attrs.frozen
class KeyedLimiterStatistics:
    """A snapshot of a :class:`KeyedLimiter`, from :meth:`KeyedLimiter.statistics`."""

    borrowed_tokens: int
    """How many tasks hold a slot now, over all keys."""
    total_tokens: int | None
    """The limit over all keys (``None``: no limit)."""
    per_key: int
    """The limit for each key."""
    keys: int
    """How many keys have holders or waiters now (idle keys are forgotten)."""
    tasks_waiting: int
    """How many tasks are queued in :meth:`KeyedLimiter.hold`, over all keys."""


@final
class _KeyState:
    __slots__ = ("holders", "waiters")

    def __init__(self) -> None:
        self.holders = 0
        self.waiters: OrderedDict[_Waiter, None] = OrderedDict()


def _check_key(key: object) -> Hashable:
    try:
        hash(key)
    except TypeError:
        raise TypeError(f"key must be hashable, got {key!r}") from None
    return key


@final
@attrs.define(eq=False, repr=False)
class KeyedLimiter:
    """At most *per_key* holders for each key and, if given, *total* over all keys.

    Use it for per-host, per-user or per-tenant limits where the keys are not
    known in advance::

        per_host = trine.KeyedLimiter(2, total=20)

        async def fetch(url):
            async with per_host.hold(url.host):
                return await client.get(url)

    A key's state lives only while it has holders or waiters, so memory
    follows the keys in use now, not every key ever seen.

    Order: waiters for one key are served in arrival order. When *total* is
    what blocks, a freed slot goes to the longest-waiting task *whose key has
    room*; a task whose own key is full never holds up tasks for other keys
    (it waits for its key first and then competes for *total* in its original
    arrival order).

    To pass one key's limit where a :class:`Limiter` is expected, use
    :meth:`for_key`.

    Args:
      per_key: how many may hold a slot for one key at once (``int`` >= 1).
      total: how many may hold a slot over all keys (``int`` >= 1), or
        ``None`` for no overall limit.

    Raises:
      TypeError: if *per_key* or *total* is not an ``int``.
      ValueError: if either is < 1.
    """

    _per_key: int = attrs.field(alias="per_key")
    _total: int | None = attrs.field(default=None, kw_only=True, alias="total")
    _keys: dict[Hashable, _KeyState] = attrs.field(factory=dict, init=False)
    _borrowed: int = attrs.field(default=0, init=False)
    _waiting: int = attrs.field(default=0, init=False)
    _arrivals: int = attrs.field(default=0, init=False)
    # Waiters whose key has room, by arrival: they wait only for `total`.
    # Cancelled ones are skipped when popped.
    _ready: list[tuple[int, _Waiter]] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        check_int("per_key", self._per_key)
        if self._total is not None:
            check_int("total", self._total)

    def __repr__(self) -> str:
        total = "unlimited" if self._total is None else str(self._total)
        return (
            f"<trine.KeyedLimiter at {id(self):#x}, {self._borrowed}/{total} borrowed "
            f"({self._per_key} per key) over {len(self._keys)} keys "
            f"with {self._waiting} waiting>"
        )

    @property
    def per_key(self) -> int:
        """How many may hold a slot for one key at once."""
        return self._per_key

    @property
    def total(self) -> int | None:
        """How many may hold a slot over all keys (``None``: no limit)."""
        return self._total

    def hold(self, key: Hashable) -> AbstractAsyncContextManager[None]:
        """Hold a slot for *key* inside ``async with``, waiting for one first.

        Raises:
          TypeError: if *key* is not hashable.
        """
        return _Hold(self, _check_key(key))

    def hold_nowait(self, key: Hashable) -> AbstractContextManager[None]:
        """Like :meth:`hold`, but a plain ``with`` that never waits.

        Raises:
          TypeError: if *key* is not hashable.
          trio.WouldBlock: on entry, if *key* or the total is full, or tasks
            are already waiting for *key*.
        """
        return _HoldNowait(self, _check_key(key))

    def for_key(self, key: Hashable) -> Limiter:
        """Return a :class:`Limiter` whose ``hold()`` is ``self.hold(key)``.

        For passing one key's limit where a limiter is expected::

            await policy_with(limiter=per_host.for_key("example.com"))

        Raises:
          TypeError: if *key* is not hashable.
        """
        return _KeyedLimiterView(self, _check_key(key))

    def statistics(self) -> KeyedLimiterStatistics:
        """Return a snapshot of the slots borrowed, the keys active and the tasks waiting."""
        return KeyedLimiterStatistics(
            borrowed_tokens=self._borrowed,
            total_tokens=self._total,
            per_key=self._per_key,
            keys=len(self._keys),
            tasks_waiting=self._waiting,
        )

    def _total_has_room(self) -> bool:
        return self._total is None or self._borrowed < self._total

    def _acquire_nowait(self, key: Hashable) -> None:
        state = self._keys.get(key)
        if state is None:
            if not self._total_has_room():
                raise trio.WouldBlock
            state = self._keys[key] = _KeyState()
        elif state.waiters or state.holders >= self._per_key or not self._total_has_room():
            raise trio.WouldBlock
        state.holders += 1
        self._borrowed += 1

    async def _acquire(self, key: Hashable) -> None:
        await checkpoint_if_cancelled()
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
        if not state.waiters and state.holders < self._per_key and self._total_has_room():
            state.holders += 1
            self._borrowed += 1
            await cancel_shielded_checkpoint()
            return
        self._arrivals += 1
        waiter = _Waiter(current_task(), key=key, arrival=self._arrivals)
        state.waiters[waiter] = None
        self._waiting += 1
        self._mark_ready(state)
        # Only reached when `total` is full (or the key is), so nobody to wake.

        def abort(_: object) -> Abort:
            del state.waiters[waiter]
            self._waiting -= 1
            waiter.state = _GONE
            if waiter.ready:
                self._mark_ready(state)
                self._wake()
            self._forget_if_idle(key, state)
            _sweep(self._ready, self._waiting)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def _release(self, key: Hashable, held: None, error: BaseException | None) -> None:
        state = self._keys[key]
        state.holders -= 1
        self._borrowed -= 1
        if self._waiting:
            if state.waiters:
                self._mark_ready(state)
            self._wake()
        self._forget_if_idle(key, state)

    def _forget_if_idle(self, key: Hashable, state: _KeyState) -> None:
        if not state.holders and not state.waiters:
            del self._keys[key]

    def _mark_ready(self, state: _KeyState) -> None:
        # Invariant: the first (per_key - holders) waiters of a key are ready,
        # i.e. in the `_ready` heap: only `total` stands between them and a slot.
        room = self._per_key - state.holders
        for waiter in state.waiters:
            if room <= 0:
                return
            room -= 1
            if not waiter.ready:
                waiter.ready = True
                heapq.heappush(self._ready, (waiter.arrival, waiter))

    def _wake(self) -> None:
        # The heap is ordered by arrival, so the longest-waiting task whose
        # key has room goes first, and per-key FIFO holds.
        ready = self._ready
        while ready and self._total_has_room():
            waiter = heapq.heappop(ready)[1]
            if waiter.state != _WAITING:
                continue
            state = self._keys[waiter.key]
            del state.waiters[waiter]
            state.holders += 1
            self._borrowed += 1
            self._waiting -= 1
            _grant(waiter)
        if not self._waiting:
            ready.clear()  # only cancelled entries can be left


@final
@attrs.define(eq=False, repr=False)
class _KeyedLimiterView:
    """One key of a :class:`KeyedLimiter`, as a :class:`Limiter`."""

    limiter: KeyedLimiter
    key: Hashable

    def __repr__(self) -> str:
        return f"<{self.limiter!r} for key {self.key!r}>"

    def hold(self) -> AbstractAsyncContextManager[None]:
        return _Hold(self.limiter, self.key)

    def hold_nowait(self) -> AbstractContextManager[None]:
        return _HoldNowait(self.limiter, self.key)


# --------------------------------------------------------------------------
# Bulkhead


@attrs.frozen
class BulkheadStatistics:
    """A snapshot of a :class:`Bulkhead`, from :meth:`Bulkhead.statistics`."""

    borrowed_tokens: int
    """How many calls are inside the bulkhead now."""
    total_tokens: int
    """``max_concurrent``."""
    tasks_waiting: int
    """How many calls are queued now (at most ``max_waiting``)."""
    admitted: int
    """How many calls have entered, ever."""
    rejected: int
    """How many calls were refused with :exc:`BulkheadFull`, ever (at once or after
    ``max_wait``)."""


@final
@attrs.define(eq=False, repr=False)
class Bulkhead:
    """Admit *max_concurrent* calls, queue *max_waiting*, refuse the rest at once.

    This is load shedding: when a dependency is slow, callers get a fast
    :exc:`BulkheadFull` instead of piling up without bound, and the rest of
    the program keeps its tasks, sockets and memory::

        bulkhead = trine.Bulkhead(10, max_waiting=20, max_wait=0.5)

        try:
            async with bulkhead.hold():
                return await recommendations(user)
        except trine.BulkheadFull:
            return []   # degrade instead of queueing

    Waiters are served in arrival order. A waiter that has waited *max_wait*
    seconds leaves the queue and raises :exc:`BulkheadFull` (with
    ``timed_out=True``).

    Args:
      max_concurrent: how many calls may be inside at once (``int`` >= 1).
      max_waiting: how many calls may wait for a slot (``int`` >= 0; the
        default 0 refuses every call that cannot enter at once).
      max_wait: the longest a call may wait, in seconds (``None``: no limit).

    Raises:
      TypeError: if an argument has the wrong type.
      ValueError: if an argument is out of range.
    """

    _max_concurrent: int = attrs.field(alias="max_concurrent")
    _max_waiting: int = attrs.field(default=0, kw_only=True, alias="max_waiting")
    _max_wait: float | None = attrs.field(default=None, kw_only=True, alias="max_wait")
    _borrowed: int = attrs.field(default=0, init=False)
    _waiters: OrderedDict[_Waiter, None] = attrs.field(factory=OrderedDict, init=False)
    _admitted: int = attrs.field(default=0, init=False)
    _rejected: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        check_int("max_concurrent", self._max_concurrent)
        check_int("max_waiting", self._max_waiting, minimum=0)
        self._max_wait = check_optional_number("max_wait", self._max_wait)

    def __repr__(self) -> str:
        return (
            f"<trine.Bulkhead at {id(self):#x}, {self._borrowed}/{self._max_concurrent} "
            f"borrowed with {len(self._waiters)}/{self._max_waiting} waiting>"
        )

    @property
    def max_concurrent(self) -> int:
        """How many calls may be inside at once."""
        return self._max_concurrent

    @property
    def max_waiting(self) -> int:
        """How many calls may wait for a slot."""
        return self._max_waiting

    @property
    def max_wait(self) -> float | None:
        """The longest a call may wait, in seconds (``None``: no limit)."""
        return self._max_wait

    def hold(self) -> AbstractAsyncContextManager[None]:
        """Hold a slot inside ``async with``, waiting for one if there is room to wait.

        Raises:
          BulkheadFull: on entry, if every slot and waiting place is taken, or
            after waiting *max_wait* seconds.
        """
        return _Hold(self, None)

    def hold_nowait(self) -> AbstractContextManager[None]:
        """Like :meth:`hold`, but a plain ``with`` that never waits.

        Raises:
          trio.WouldBlock: on entry, if no slot is free (this is not counted
            as a rejection).
        """
        return _HoldNowait(self, None)

    def statistics(self) -> BulkheadStatistics:
        """Return a snapshot of the calls inside, waiting, admitted and rejected."""
        return BulkheadStatistics(
            borrowed_tokens=self._borrowed,
            total_tokens=self._max_concurrent,
            tasks_waiting=len(self._waiters),
            admitted=self._admitted,
            rejected=self._rejected,
        )

    def _full(self, *, timed_out: bool) -> BulkheadFull:
        self._rejected += 1
        return BulkheadFull(
            max_concurrent=self._max_concurrent,
            max_waiting=self._max_waiting,
            max_wait=self._max_wait,
            timed_out=timed_out,
        )

    def _acquire_nowait(self, arg: None) -> None:
        if self._borrowed >= self._max_concurrent:
            raise trio.WouldBlock
        self._borrowed += 1
        self._admitted += 1

    async def _acquire(self, arg: None) -> None:
        await checkpoint_if_cancelled()
        if self._borrowed < self._max_concurrent:
            self._borrowed += 1
            self._admitted += 1
            await cancel_shielded_checkpoint()
            return
        if len(self._waiters) >= self._max_waiting:
            error = self._full(timed_out=False)
            await cancel_shielded_checkpoint()
            raise error
        waiter = _Waiter(current_task())
        self._waiters[waiter] = None

        def abort(_: object) -> Abort:
            return _fifo_abort(self._waiters, waiter)

        if self._max_wait is None:
            await wait_task_rescheduled(abort)
            return
        with trio.move_on_after(self._max_wait) as scope:
            await wait_task_rescheduled(abort)
        if scope.cancelled_caught:
            raise self._full(timed_out=True)

    def _release(self, arg: None, held: None, error: BaseException | None) -> None:
        if self._waiters:
            waiter, _ = self._waiters.popitem(last=False)
            self._admitted += 1
            _grant(waiter)  # the slot passes straight to it
        else:
            self._borrowed -= 1


# --------------------------------------------------------------------------
# AdaptiveLimiter


@attrs.frozen
class AdaptiveLimiterStatistics:
    """A snapshot of an :class:`AdaptiveLimiter`, from :meth:`AdaptiveLimiter.statistics`."""

    limit: int
    """The concurrency limit in force now."""
    estimate: float
    """The algorithm's unrounded estimate; :attr:`limit` is its floor."""
    borrowed_tokens: int
    """How many calls are inside now (may exceed :attr:`limit` right after it dropped)."""
    tasks_waiting: int
    """How many calls are queued in :meth:`AdaptiveLimiter.hold`."""
    successes: int
    """Calls that finished without error (each a sample)."""
    failures: int
    """Calls that raised or were marked with :meth:`AdaptivePermit.mark_failure`."""
    slow_calls: int
    """Successful calls slower than ``latency_threshold`` (treated as drops)."""
    last_rtt: float | None
    """How long the last sampled call held its slot, in seconds."""
    long_rtt: float | None
    """The long-term average of the samples' durations (``"gradient"`` only)."""


@final
@attrs.define(eq=False, repr=False)
class AdaptivePermit:
    """One call's slot in an :class:`AdaptiveLimiter`, from ``async with lim.hold() as permit``.

    Call :meth:`mark_failure` when the call returned normally but its result
    means the service is overloaded (an HTTP 503, a "try later" reply).
    """

    _start: float
    _sequence: int
    _saturated: bool
    _failed: bool = attrs.field(default=False, init=False)

    def __repr__(self) -> str:
        state = "failed" if self._failed else "ok"
        return f"<trine.AdaptivePermit {state}>"

    def mark_failure(self) -> None:
        """Count this call as a failure (a drop) even if it returns normally."""
        self._failed = True

    @property
    def failed(self) -> bool:
        """Whether :meth:`mark_failure` was called."""
        return self._failed


def _is_cancellation(error: BaseException) -> bool:
    if isinstance(error, trio.Cancelled):
        return True
    if isinstance(error, BaseExceptionGroup):
        return error.split(trio.Cancelled)[1] is None
    return False


@final
@attrs.define(eq=False, repr=False)
class AdaptiveLimiter:
    """A concurrency limit that finds itself from latency and failures.

    A fixed limit is either too low (wasted capacity) or too high (a slow
    service gets buried). This one moves: it grows while calls succeed with
    the limit in use, and shrinks when calls fail or slow down::

        limiter = trine.AdaptiveLimiter(initial=10, max_limit=200, latency_threshold=0.5)

        async with limiter.hold() as permit:
            response = await client.get(url)
            if response.status_code == 503:
                permit.mark_failure()

    An exception raised inside ``hold()`` is a failure; so is a call marked
    with :meth:`AdaptivePermit.mark_failure`. A cancelled call is neither:
    it is not a sample at all. Durations are measured on the Trio clock,
    from entry (after any wait) to exit.

    **In use.** A call *saw the limit in use* if, counting itself, at least
    ``limit`` calls were inside when it entered, or tasks were waiting when
    it finished. Only such calls make the limit grow: a limit that is never
    reached says nothing about whether a higher one would be safe.

    **Once per window.** A drop shrinks the limit only if its call entered
    after the previous decrease: the burst of failures that one overload
    causes among calls already in flight shrinks the limit once, not once per
    call (TCP does the same per round trip).

    ``algorithm="aimd"`` (additive increase, multiplicative decrease):

    * a success that saw the limit in use: ``limit + 1``;
    * a failure, or a success slower than *latency_threshold*:
      ``floor(limit * backoff_ratio)``;
    * anything else: unchanged.

    ``algorithm="gradient"`` follows Netflix concurrency-limits' Gradient2.
    It keeps an exponential average of durations over about *long_window*
    samples (``long_rtt``, started from the first sample; divided by 0.95
    per sample while it is more than twice the latest, so it recovers after
    an incident) and for each sample ``rtt`` computes::

        gradient = clamp(tolerance * long_rtt / rtt, 0.5, 1.0)   # 0.5 for a drop
        target   = estimate * gradient + queue_size
        estimate = estimate * (1 - smoothing) + target * smoothing

    Gradient2 adds ``queue_size`` on every sample, so under modest overload
    (latency up by less than *tolerance*, gradient near 1, while the long
    average drifts up to meet it) the limit grows for ever. Here
    ``queue_size`` is added only when the gradient is exactly 1 *and* the
    call saw the limit in use, and a sample that did not see it in use never
    raises the estimate. Growth per sample is therefore at most
    ``smoothing * queue_size``, and only while the limit is the bottleneck and
    latency is not rising.

    Either way the limit stays within ``[min_limit, max_limit]``.

    Args:
      initial: the starting limit.
      min_limit: the limit never goes below this (default 1).
      max_limit: the limit never goes above this.
      algorithm: ``"aimd"`` (default) or ``"gradient"``.
      backoff_ratio: the multiplier on a drop (AIMD), in (0, 1); default 0.9.
      latency_threshold: seconds; a successful call slower than this counts
        as a drop (default ``None``: latency alone never shrinks an AIMD limit).
      tolerance: how much slower than the long average a call may be before
        the gradient shrinks the limit (>= 1; default 1.5).
      smoothing: how far each sample moves the gradient estimate, in (0, 1]
        (default 0.2).
      queue_size: headroom added while growing (gradient; >= 0; default 4).
      long_window: about how many samples the long average spans (gradient;
        default 600).

    Raises:
      TypeError: if an argument has the wrong type.
      ValueError: if an argument is out of range, or
        ``min_limit <= initial <= max_limit`` does not hold.
    """

    _initial: int = attrs.field(kw_only=True, alias="initial")
    _min_limit: int = attrs.field(default=1, kw_only=True, alias="min_limit")
    _max_limit: int = attrs.field(kw_only=True, alias="max_limit")
    _algorithm: Literal["aimd", "gradient"] = attrs.field(
        default="aimd", kw_only=True, alias="algorithm"
    )
    _backoff_ratio: float = attrs.field(default=0.9, kw_only=True, alias="backoff_ratio")
    _latency_threshold: float | None = attrs.field(
        default=None, kw_only=True, alias="latency_threshold"
    )
    _tolerance: float = attrs.field(default=1.5, kw_only=True, alias="tolerance")
    _smoothing: float = attrs.field(default=0.2, kw_only=True, alias="smoothing")
    _queue_size: float = attrs.field(default=4, kw_only=True, alias="queue_size")
    _long_window: int = attrs.field(default=600, kw_only=True, alias="long_window")

    _limit: int = attrs.field(default=0, init=False)
    _estimate: float = attrs.field(default=0.0, init=False)
    _in_flight: int = attrs.field(default=0, init=False)
    _waiters: OrderedDict[_Waiter, None] = attrs.field(factory=OrderedDict, init=False)
    _admissions: int = attrs.field(default=0, init=False)
    _decreased_at: int = attrs.field(default=0, init=False)
    _successes: int = attrs.field(default=0, init=False)
    _failures: int = attrs.field(default=0, init=False)
    _slow_calls: int = attrs.field(default=0, init=False)
    _last_rtt: float | None = attrs.field(default=None, init=False)
    _long_rtt: float | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        check_int("initial", self._initial)
        check_int("min_limit", self._min_limit)
        check_int("max_limit", self._max_limit)
        if self._min_limit > self._max_limit:
            raise ValueError(
                f"min_limit must be <= max_limit ({self._max_limit}), got {self._min_limit!r}"
            )
        if self._initial < self._min_limit:
            raise ValueError(
                f"initial must be >= min_limit ({self._min_limit}), got {self._initial!r}"
            )
        if self._initial > self._max_limit:
            raise ValueError(
                f"initial must be <= max_limit ({self._max_limit}), got {self._initial!r}"
            )
        check_choice("algorithm", self._algorithm, ("aimd", "gradient"))
        self._backoff_ratio = check_number(
            "backoff_ratio", self._backoff_ratio, minimum=0.0, exclusive=True
        )
        if self._backoff_ratio >= 1.0:
            raise ValueError(f"backoff_ratio must be < 1, got {self._backoff_ratio!r}")
        self._latency_threshold = check_optional_number(
            "latency_threshold", self._latency_threshold, exclusive=True
        )
        self._tolerance = check_number("tolerance", self._tolerance, minimum=1.0)
        self._smoothing = check_number("smoothing", self._smoothing, exclusive=True)
        if self._smoothing > 1.0:
            raise ValueError(f"smoothing must be <= 1, got {self._smoothing!r}")
        self._queue_size = check_number("queue_size", self._queue_size)
        check_int("long_window", self._long_window)
        self._limit = self._initial
        self._estimate = float(self._initial)

    def __repr__(self) -> str:
        return (
            f"<trine.AdaptiveLimiter at {id(self):#x}, {self._algorithm} limit "
            f"{self._limit} in [{self._min_limit}, {self._max_limit}], "
            f"{self._in_flight} in flight with {len(self._waiters)} waiting>"
        )

    @property
    def limit(self) -> int:
        """The concurrency limit in force now."""
        return self._limit

    def hold(self) -> AbstractAsyncContextManager[AdaptivePermit]:
        """Hold a slot inside ``async with``, waiting for one first; yields the permit.

        The call's duration and outcome are one sample on exit (none if it
        was cancelled).
        """
        return _Hold(self, None)

    def hold_nowait(self) -> AbstractContextManager[AdaptivePermit]:
        """Like :meth:`hold`, but a plain ``with`` that never waits.

        Raises:
          trio.WouldBlock: on entry, if the limit is reached.
        """
        return _HoldNowait(self, None)

    def statistics(self) -> AdaptiveLimiterStatistics:
        """Return a snapshot of the limit and of the samples that moved it."""
        return AdaptiveLimiterStatistics(
            limit=self._limit,
            estimate=self._estimate,
            borrowed_tokens=self._in_flight,
            tasks_waiting=len(self._waiters),
            successes=self._successes,
            failures=self._failures,
            slow_calls=self._slow_calls,
            last_rtt=self._last_rtt,
            long_rtt=self._long_rtt,
        )

    def _permit(self) -> AdaptivePermit:
        self._in_flight += 1
        self._admissions += 1
        return AdaptivePermit(trio.current_time(), self._admissions, self._in_flight >= self._limit)

    def _acquire_nowait(self, arg: None) -> AdaptivePermit:
        if self._waiters or self._in_flight >= self._limit:
            raise trio.WouldBlock
        return self._permit()

    async def _acquire(self, arg: None) -> AdaptivePermit:
        await checkpoint_if_cancelled()
        if not self._waiters and self._in_flight < self._limit:
            permit = self._permit()
            await cancel_shielded_checkpoint()
            return permit
        waiter = _Waiter(current_task())
        self._waiters[waiter] = None

        def abort(_: object) -> Abort:
            return _fifo_abort(self._waiters, waiter)

        await wait_task_rescheduled(abort)
        # _wake counted us in flight and numbered us; the clock starts now, not
        # while we waited. Having waited, we saw the limit in use.
        return AdaptivePermit(trio.current_time(), waiter.arrival, True)

    def _release(self, arg: None, permit: AdaptivePermit, error: BaseException | None) -> None:
        if error is None or not _is_cancellation(error):
            failed = permit._failed or isinstance(error, Exception)
            if error is None or failed:  # KeyboardInterrupt and such: no sample
                saturated = permit._saturated or bool(self._waiters)
                self._sample(trio.current_time() - permit._start, failed, saturated, permit)
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self._in_flight < self._limit:
            waiter, _ = waiters.popitem(last=False)
            self._in_flight += 1
            self._admissions += 1
            waiter.arrival = self._admissions  # admitted before any later decrease
            _grant(waiter)

    def _sample(self, rtt: float, failed: bool, saturated: bool, permit: AdaptivePermit) -> None:
        self._last_rtt = rtt
        slow = not failed and self._latency_threshold is not None and rtt > self._latency_threshold
        if failed:
            self._failures += 1
        else:
            self._successes += 1
            if slow:
                self._slow_calls += 1
        drop = failed or slow
        if drop:
            if permit._sequence <= self._decreased_at:
                return  # this overload already shrank the limit once
            self._decreased_at = self._admissions
        estimate: float
        if self._algorithm == "aimd":
            if drop:
                estimate = math.floor(self._estimate * self._backoff_ratio)
            elif saturated:
                estimate = self._estimate + 1
            else:
                return
        else:
            estimate = self._gradient_estimate(rtt, failed, drop, saturated)
        self._estimate = float(min(max(estimate, self._min_limit), self._max_limit))
        self._limit = math.floor(self._estimate)

    def _gradient_estimate(self, rtt: float, failed: bool, drop: bool, saturated: bool) -> float:
        long_rtt = self._long_rtt
        if not failed:  # a failure's duration (often a fast error) is not a latency
            if long_rtt is None:
                long_rtt = rtt
            else:
                long_rtt += (rtt - long_rtt) * 2.0 / (self._long_window + 1)
                if rtt > 0 and long_rtt / rtt > 2.0:
                    long_rtt *= 0.95  # latency fell: let the baseline follow
            self._long_rtt = long_rtt
        estimate = self._estimate
        if drop or long_rtt is None:
            gradient = 0.5
        elif rtt <= 0:
            gradient = 1.0
        else:
            gradient = min(max(self._tolerance * long_rtt / rtt, 0.5), 1.0)
        target = estimate * gradient
        if gradient == 1.0 and saturated:
            target += self._queue_size
        if not saturated:
            target = min(target, estimate)
        return estimate * (1.0 - self._smoothing) + target * self._smoothing


# --------------------------------------------------------------------------
# acquire_all


def _order_key(limiter: object) -> tuple[int, int]:
    if isinstance(limiter, _KeyedLimiterView):
        return (id(limiter.limiter), hash(limiter.key))
    return (id(limiter), 0)


def acquire_all(*limiters: LimiterLike) -> AbstractAsyncContextManager[None]:
    """Hold one slot of every limiter at once, taken in one global order.

    Two tasks that take the same locks in different orders can deadlock
    (each holds one and waits for the other's). ``acquire_all`` sorts its
    arguments into an order that is the same for every task (by object
    identity), takes them one by one, and releases them in reverse::

        async with trine.acquire_all(account_lock[b], account_lock[a]):
            transfer(a, b)

    If taking one of them is cancelled or fails, the ones already taken are
    released before the error propagates. Entering is a checkpoint even with
    no limiters. An error inside the block always propagates (a limiter's
    ``__aexit__`` cannot swallow it here).

    Args:
      limiters: anything :func:`open_hold` accepts, each at most once.

    Raises:
      TypeError: if an argument is not a limiter, naming its position.
      ValueError: if the same limiter is passed twice.
    """
    seen: dict[tuple[int, int], int] = {}
    for index, limiter in enumerate(limiters):
        _check_limiter(limiter, f"limiters[{index}]")
        key = _order_key(limiter)
        if key in seen:
            raise ValueError(
                f"limiters[{index}] is the same limiter as limiters[{seen[key]}]: "
                "pass each one once"
            )
        seen[key] = index
    ordered = sorted(limiters, key=_order_key)
    return _AcquireAll(ordered)


@final
class _AcquireAll:
    """The context manager :func:`acquire_all` returns."""

    __slots__ = ("_holds", "_limiters")

    def __init__(self, limiters: list[LimiterLike]) -> None:
        self._limiters = limiters
        self._holds: list[AbstractAsyncContextManager[object]] = []

    async def __aenter__(self) -> None:
        if not self._limiters:
            await trio.lowlevel.checkpoint()
            return
        holds: list[AbstractAsyncContextManager[object]] = []
        try:
            for limiter in self._limiters:
                hold = open_hold(limiter)
                await hold.__aenter__()
                holds.append(hold)
        except BaseException as error:
            await _release_all(holds, error)
            raise
        self._holds = holds

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        holds, self._holds = self._holds, []
        await _release_all(holds, exc_value)


async def _release_all(
    holds: list[AbstractAsyncContextManager[object]], error: BaseException | None
) -> None:
    """Leave *holds* last first; every one is left even if leaving another raises."""
    if not holds:
        return
    hold = holds.pop()
    try:
        await hold.__aexit__(
            None if error is None else type(error),
            error,
            None if error is None else error.__traceback__,
        )
    finally:
        await _release_all(holds, error)
