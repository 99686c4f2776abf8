"""KeyedLimiter: a limit per key and, optionally, in total."""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Hashable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, final

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
    # Waiters whose key has room, by arrival: they wait only for `total`.
    # Cancelled ones are skipped when popped.
    _ready: list[tuple[int, _Waiter]] = attrs.field(factory=list, init=False)
    # acquire_all's order for distinct keys whose hashes are equal: key ->
    # [rank, entered acquire_alls using it]. A key keeps its rank while any of
    # them is entered, so every task that can wait for such keys together
    # orders them the same way; a key nobody uses is forgotten.
    _tie_ranks: dict[Hashable, list[int]] = attrs.field(factory=dict, init=False)
    _ranked: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        check_name(self.name)
        check_int("per_key", self._per_key)
        if self._total is not None:
            check_int("total", self._total)
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

    def _rank(self, key: Hashable) -> int:
        """Take *key*'s place in acquire_all's order among keys of an equal hash."""
        entry = self._tie_ranks.get(key)
        if entry is None:
            self._ranked += 1
            entry = self._tie_ranks[key] = [self._ranked, 0]
        entry[1] += 1
        return entry[0]

    def _unrank(self, key: Hashable) -> None:
        """Give back a place :meth:`_rank` took."""
        entry = self._tie_ranks[key]
        entry[1] -= 1
        if not entry[1]:
            del self._tie_ranks[key]

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
