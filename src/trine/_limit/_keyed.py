"""KeyedLimiter: a limit per key and, optionally, in total."""

from __future__ import annotations

import heapq
import sys
from collections import OrderedDict
from collections.abc import Coroutine, Hashable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any, final

import attrs
import trio
from trio.lowlevel import (
    Abort,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    wait_task_rescheduled,
)

from .. import _created
from .._util import check_hashable, check_int, check_name
from ._hold import _GONE, _WAITING, _grant, _Hold, _HoldNowait, _sweep, _Waiter

if TYPE_CHECKING:
    from ._protocol import Limiter

__all__ = ["KeyedLimiter", "KeyedLimiterStatistics"]

_UNLIMITED = sys.maxsize


def _several(waiter: _Waiter) -> tuple[Hashable, ...]:
    """The keys of a waiter taking several (its weight is how many): see _acquire_keys."""
    return waiter.key  # type: ignore[return-value]  # a tuple when its weight is > 1


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
        # In arrival order. The value is read only for a task taking several
        # keys at once: whether this key's window has reached it (_mark_ready).
        self.waiters: OrderedDict[_Waiter, bool] = OrderedDict()


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
    arrival order). :func:`~trine.acquire_all` takes several keys in one
    step: it queues for each of them, and once all have room it waits for
    as many slots of *total*, ahead of later tasks needing fewer.

    To pass one key's limit where a :class:`Limiter` is expected, use
    :meth:`for_key`.

    Args:
      per_key: how many may hold a slot for one key at once (``int`` >= 1).
      total: how many may hold a slot over all keys (``int`` >= 1), or
        ``None`` for no overall limit.
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError: if *per_key* or *total* is not an ``int``.
      ValueError: if either is < 1.
    """

    _per_key: int = attrs.field(alias="per_key")
    _total: int | None = attrs.field(default=None, kw_only=True, alias="total")
    name: str | None = attrs.field(default=None, kw_only=True)
    """The name given to the constructor (metrics and events carry it)."""
    _keys: dict[Hashable, _KeyState] = attrs.field(factory=dict, init=False)
    _borrowed: int = attrs.field(default=0, init=False)
    _waiting: int = attrs.field(default=0, init=False)
    _arrivals: int = attrs.field(default=0, init=False)
    # Waiters whose keys have room, by arrival: they wait only for `total`.
    # Cancelled ones are skipped when popped.
    _ready: list[tuple[int, _Waiter]] = attrs.field(factory=list, init=False)
    # A newcomer takes a slot at once only while `_borrowed` is below this:
    # `total` (no total: _UNLIMITED), or 0 while `_ready` holds a live waiter,
    # which is owed the next slots (FIFO, even when it needs several).
    _admit_below: int = attrs.field(default=_UNLIMITED, init=False)

    def __attrs_post_init__(self) -> None:
        check_name(self.name)
        check_int("per_key", self._per_key)
        if self._total is not None:
            check_int("total", self._total)
            self._admit_below = self._total
        if _created.watchers:
            _created.announce(self, None)

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
        return _Hold(self, check_hashable("key", key))

    def hold_nowait(self, key: Hashable) -> AbstractContextManager[None]:
        """Like :meth:`hold`, but a plain ``with`` that never waits.

        Raises:
          TypeError: if *key* is not hashable.
          trio.WouldBlock: on entry, if *key* or the total is full, or tasks
            are already waiting for *key*.
        """
        return _HoldNowait(self, check_hashable("key", key))

    def for_key(self, key: Hashable) -> Limiter:
        """Return a :class:`Limiter` whose ``hold()`` is ``self.hold(key)``.

        For passing one key's limit where a limiter is expected::

            await policy_with(limiter=per_host.for_key("example.com"))

        Raises:
          TypeError: if *key* is not hashable.
        """
        return _KeyedLimiterView(self, check_hashable("key", key))

    def statistics(self) -> KeyedLimiterStatistics:
        """Return a snapshot of the slots borrowed, the keys active and the tasks waiting."""
        return KeyedLimiterStatistics(
            borrowed_tokens=self._borrowed,
            total_tokens=self._total,
            per_key=self._per_key,
            keys=len(self._keys),
            tasks_waiting=self._waiting,
        )

    def _acquire_nowait(self, key: Hashable) -> None:
        state = self._keys.get(key)
        if state is None:
            if self._borrowed >= self._admit_below:
                raise trio.WouldBlock
            state = self._keys[key] = _KeyState()
        elif state.waiters or state.holders >= self._per_key or self._borrowed >= self._admit_below:
            raise trio.WouldBlock
        state.holders += 1
        self._borrowed += 1

    async def _acquire(self, key: Hashable) -> None:
        await checkpoint_if_cancelled()
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
        # The key has room for one more if its holders and waiters leave it:
        # waiters within its room can only be tasks taking several keys, held
        # up by another of theirs, and they do not hold this one up. (`not
        # state.waiters` first: the common case, decided without len().)
        if (
            (not state.waiters and state.holders < self._per_key)
            or state.holders + len(state.waiters) < self._per_key
        ) and self._borrowed < self._admit_below:
            state.holders += 1
            self._borrowed += 1
            await cancel_shielded_checkpoint()
            return
        self._arrivals += 1
        waiter = _Waiter(current_task(), key=key, arrival=self._arrivals)
        state.waiters[waiter] = False
        self._waiting += 1
        self._mark_ready(state)
        # Only reached when the key has no room, `total` is full or a ready
        # waiter is ahead (one that needs more of `total` than is free), so
        # nobody to wake.

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

    async def _acquire_keys(self, keys: tuple[Hashable, ...]) -> None:
        """Take a slot of each of *keys* (two or more, distinct) in one step: all, or none.

        For :func:`~trine.acquire_all`. The *len(keys)* slots of ``total`` are
        taken together, so tasks taking several keys never each hold part of
        ``total`` while waiting for the rest. The task queues for every key at
        once, in its arrival order; once each key's room reaches it, it waits
        only for ``total``, first in line among the ready ones.
        """
        await checkpoint_if_cancelled()
        per_key = self._per_key
        states: list[_KeyState] = []
        room = True
        for key in keys:
            state = self._keys.get(key)
            if state is None:
                state = self._keys[key] = _KeyState()
            states.append(state)
            room = room and state.holders + len(state.waiters) < per_key  # as in _acquire
        if room and self._borrowed + len(keys) <= self._admit_below:
            for state in states:
                state.holders += 1
            self._borrowed += len(keys)
            await cancel_shielded_checkpoint()
            return
        self._arrivals += 1
        waiter = _Waiter(current_task(), weight=len(keys), key=keys, arrival=self._arrivals)
        for state in states:
            state.waiters[waiter] = False
        self._waiting += 1
        for state in states:
            self._mark_ready(state)
        # As in _acquire, nobody to wake: had it fitted, it would have taken its slots.

        def abort(_: object) -> Abort:
            reached = [state for state in states if state.waiters.pop(waiter)]
            self._waiting -= 1
            waiter.state = _GONE
            if reached:  # it leaves room in those keys' windows
                for state in reached:
                    self._mark_ready(state)
                self._wake()
            for key, state in zip(keys, states, strict=True):
                self._forget_if_idle(key, state)
            _sweep(self._ready, self._waiting)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def _release_keys(self, keys: tuple[Hashable, ...]) -> None:
        """Give back what :meth:`_acquire_keys` took."""
        states = [self._keys[key] for key in keys]
        for state in states:
            state.holders -= 1
        self._borrowed -= len(keys)
        if self._waiting:
            for state in states:
                if state.waiters:
                    self._mark_ready(state)
            self._wake()
        for key, state in zip(keys, states, strict=True):
            self._forget_if_idle(key, state)

    def _mark_ready(self, state: _KeyState) -> None:
        # Invariant: the first (per_key - holders) waiters of a key, its window,
        # have been reached. A waiter reached by the windows of all its keys is
        # ready, i.e. in the `_ready` heap: only `total` stands between it and
        # its slots. (A window only shrinks by granting a waiter in it.)
        room = self._per_key - state.holders
        if room <= 0:
            return
        reached: list[_Waiter] | None = None
        for waiter, seen in state.waiters.items():
            if waiter.weight == 1:  # one key: this one
                if not waiter.ready:
                    self._make_ready(waiter)
            elif not seen:
                if reached is None:
                    reached = []
                reached.append(waiter)
            room -= 1
            if not room:
                break
        if reached is not None:
            keys = self._keys
            for waiter in reached:
                state.waiters[waiter] = True
                if all(keys[key].waiters[waiter] for key in _several(waiter)):
                    self._make_ready(waiter)

    def _make_ready(self, waiter: _Waiter) -> None:
        waiter.ready = True
        heapq.heappush(self._ready, (waiter.arrival, waiter))
        self._admit_below = 0  # it is owed the next slots: no newcomer takes them

    def _wake(self) -> None:
        # The heap is ordered by arrival, so the longest-waiting task whose
        # keys have room goes first, and per-key FIFO holds. One that needs
        # more of `total` than is free waits for more, and those behind it
        # wait too, so it is never starved by tasks needing less.
        ready = self._ready
        total = self._total
        while ready:
            waiter = ready[0][1]
            if waiter.state != _WAITING:
                heapq.heappop(ready)
                continue
            if total is not None and self._borrowed + waiter.weight > total:
                return  # _admit_below stays 0
            heapq.heappop(ready)
            if waiter.weight == 1:
                state = self._keys[waiter.key]
                del state.waiters[waiter]
                state.holders += 1
            else:
                for key in _several(waiter):
                    state = self._keys[key]
                    del state.waiters[waiter]
                    state.holders += 1
            self._borrowed += waiter.weight
            self._waiting -= 1
            _grant(waiter)
        self._admit_below = _UNLIMITED if total is None else total


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


@final
@attrs.define(eq=False, repr=False)
class _KeyedLimiterKeys:
    """Two or more distinct keys of a :class:`KeyedLimiter`, as one :class:`Limiter`.

    Its ``hold()`` takes a slot of every key in one step, all or none
    (:meth:`KeyedLimiter._acquire_keys`): what :func:`~trine.acquire_all`
    enters for several keys of one KeyedLimiter.
    """

    limiter: KeyedLimiter
    keys: tuple[Hashable, ...]

    def __repr__(self) -> str:
        return f"<{self.limiter!r} for keys {self.keys!r}>"

    def hold(self) -> AbstractAsyncContextManager[None]:
        return _Hold(self, self.keys)

    def _acquire(self, keys: tuple[Hashable, ...]) -> Coroutine[Any, Any, None]:
        return self.limiter._acquire_keys(keys)

    def _acquire_nowait(self, keys: tuple[Hashable, ...]) -> None:
        raise NotImplementedError  # never called: only hold() is offered

    def _release(self, keys: tuple[Hashable, ...], held: None, error: BaseException | None) -> None:
        self.limiter._release_keys(keys)
