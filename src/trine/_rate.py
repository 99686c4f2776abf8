"""Rate limiters: how many calls may *start* per unit of time.

Two limiters share one shape (``await acquire(cost=1, key=None)``,
``try_acquire(...) -> bool``, ``acquire_nowait(...)``):

* :class:`RateLimiter` -- the generic cell rate algorithm (GCRA): evenly spaced
  admissions with an optional burst, O(1) memory per key.
* :class:`SlidingWindowLimiter` -- "at most *limit* in any *window* seconds",
  exactly, from a log of recent admissions (O(limit) memory per key).

Both serve waiters strictly first in, first out per key, and a waiter that is
cancelled never took anything, so it cannot delay the ones behind it: nothing
is reserved for a task until the moment it is admitted. Only the head of a
key's queue sleeps on the clock; the others wait for it to leave.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar, final

import attrs
import trio

from ._errors import RateLimitExceeded
from ._util import check_int, check_number

__all__ = [
    "RateLimiter",
    "RateLimiterStatistics",
    "SlidingWindowLimiter",
    "SlidingWindowLimiterStatistics",
]

# Below this many keys the state table is never swept; above it, a sweep runs
# whenever the table has doubled since the last one (amortised O(1) per key).
_SWEEP_MINIMUM = 64


@attrs.define(eq=False, slots=True)
class _Waiter:
    """One task queued in :meth:`_Admissions._acquire`."""

    cost: float
    wakeup: trio.Event = attrs.field(factory=trio.Event)


@attrs.define(eq=False, slots=True)
class _GcraState:
    """One key's GCRA state: the theoretical arrival time ``anchor + units * per / rate``.

    Keeping the TAT as an anchor plus a count of cost units (rather than adding
    ``per / rate`` again and again) keeps admission times exact: with
    ``rate=3`` they are ``0, 1/3, 2/3, 1.0`` to the last bit, not a drifting sum.
    """

    anchor: float = -math.inf
    units: float = 0.0
    waiters: deque[_Waiter] = attrs.field(factory=deque)


@attrs.define(eq=False, slots=True)
class _WindowState:
    """One key's sliding log: ``(admission time, cost)`` for admissions still in the window."""

    log: deque[tuple[float, int]] = attrs.field(factory=deque)
    used: int = 0
    waiters: deque[_Waiter] = attrs.field(factory=deque)


_State = TypeVar("_State", _GcraState, _WindowState)


@attrs.define(eq=False, repr=False, init=False, slots=True)
class _Admissions(Generic[_State]):
    """Per-key FIFO queues in front of a time-based admission rule.

    The subclasses supply the rule (:meth:`_ready_at`, :meth:`_admit`,
    :meth:`_is_idle`); this class does the queueing, the cancellation safety,
    the dropping of idle keys and the counting.
    """

    _states: dict[Hashable, _State] = attrs.field(init=False, factory=dict)
    _sweep_above: int = attrs.field(init=False, default=_SWEEP_MINIMUM)
    _admitted: int = attrs.field(init=False, default=0)
    _admitted_cost: float = attrs.field(init=False, default=0)
    _rejected: int = attrs.field(init=False, default=0)
    _tasks_waiting: int = attrs.field(init=False, default=0)

    # -- the rule, supplied by each limiter --------------------------------

    def _new_state(self) -> _State:
        raise NotImplementedError

    def _copy_state(self, state: _State) -> _State:
        raise NotImplementedError

    def _ready_at(self, state: _State, cost: float, now: float) -> float:
        """The earliest time *cost* may be admitted given *state* (may lie in the past)."""
        raise NotImplementedError

    def _admit(self, state: _State, cost: float, now: float) -> None:
        raise NotImplementedError

    def _admit_if_ready(self, state: _State, cost: float, now: float) -> bool:
        """Admit *cost* if the rule allows it at *now* (the fast path, in one call)."""
        raise NotImplementedError

    def _is_idle(self, state: _State, now: float) -> bool:
        """Whether *state* says nothing a fresh state would not (waiters aside)."""
        raise NotImplementedError

    # -- the queueing -------------------------------------------------------

    def _state_for(self, key: Hashable, now: float) -> _State:
        state = self._states.get(key)
        if state is None:
            if len(self._states) >= self._sweep_above:
                self._sweep(now)
            state = self._states[key] = self._new_state()
        return state

    def _sweep(self, now: float) -> None:
        """Forget every key that has no waiters and no admissions that still count."""
        idle = [
            key
            for key, state in self._states.items()
            if not state.waiters and self._is_idle(state, now)
        ]
        for key in idle:
            del self._states[key]
        self._sweep_above = max(_SWEEP_MINIMUM, 2 * len(self._states))

    def _record_admission(self, cost: float) -> None:
        self._admitted += 1
        self._admitted_cost += cost

    def _try_acquire(self, cost: float, key: Hashable) -> bool:
        now = trio.current_time()
        state = self._state_for(key, now)
        if not state.waiters and self._admit_if_ready(state, cost, now):
            self._record_admission(cost)
            return True
        self._rejected += 1
        return False

    def _wait_time(self, cost: float, key: Hashable) -> float:
        """Seconds an :meth:`_acquire` started now would wait, if nothing changed meanwhile."""
        now = trio.current_time()
        state = self._states.get(key)
        if state is None:
            return 0.0
        scratch = self._copy_state(state)
        admitted_at = now
        costs = [waiter.cost for waiter in state.waiters]
        costs.append(cost)
        for queued in costs:
            admitted_at = max(admitted_at, self._ready_at(scratch, queued, admitted_at))
            self._admit(scratch, queued, admitted_at)
        return admitted_at - now

    async def _wait_in_line(self, state: _State, cost: float) -> None:
        """The slow path of ``acquire``: queue behind the waiters of *state*'s key."""
        waiter = _Waiter(cost)
        state.waiters.append(waiter)
        self._tasks_waiting += 1
        try:
            while True:
                if state.waiters[0] is waiter:
                    now = trio.current_time()
                    ready_at = self._ready_at(state, cost, now)
                    if ready_at <= now:
                        self._admit(state, cost, now)
                        self._record_admission(cost)
                        return
                    # Only the head watches the clock; a setting change or a
                    # departure ahead of it sets the event so it looks again.
                    waiter.wakeup = trio.Event()
                    with trio.move_on_at(ready_at):
                        await waiter.wakeup.wait()
                else:
                    waiter.wakeup = trio.Event()
                    await waiter.wakeup.wait()
        finally:
            self._tasks_waiting -= 1
            if state.waiters[0] is waiter:
                state.waiters.popleft()
                if state.waiters:
                    state.waiters[0].wakeup.set()
            else:
                state.waiters.remove(waiter)

    def _wake_heads(self) -> None:
        """Make every queue's head recompute its time (after a setting changed)."""
        for state in self._states.values():
            if state.waiters:
                state.waiters[0].wakeup.set()

    def _largest_waiting_cost(self) -> float:
        return max(
            (waiter.cost for state in self._states.values() for waiter in state.waiters),
            default=0,
        )

    def _admit_or_raise(self, cost: float, key: Hashable, limit: str) -> None:
        """Admit *cost* now, or raise RateLimitExceeded saying when it would be admitted."""
        if not self._try_acquire(cost, key):
            retry_after = self._wait_time(cost, key)
            raise RateLimitExceeded(
                f"{limit} exceeded for key {key!r}, retry after {retry_after:g}s",
                retry_after=retry_after,
            )

    def _waiting_summary(self) -> str:
        keys = len(self._states)
        return f"{self._tasks_waiting} waiting, {keys} key{'' if keys == 1 else 's'}"


@attrs.frozen
class RateLimiterStatistics:
    """What :meth:`RateLimiter.statistics` reports."""

    rate: float
    """Admissions (of cost 1) allowed per :attr:`per` seconds, in the long run."""
    per: float
    """The period :attr:`rate` is counted over, in seconds."""
    burst: int
    """How much cost may be admitted at one instant after a quiet spell."""
    admitted: int
    """How many acquisitions were admitted, by every method and key."""
    admitted_cost: float
    """The total cost of those admissions."""
    rejected: int
    """How many :meth:`~RateLimiter.try_acquire` calls returned ``False`` plus
    :meth:`~RateLimiter.acquire_nowait` calls that raised. Cancelled waiters are
    not counted anywhere."""
    tasks_waiting: int
    """How many tasks are blocked in :meth:`~RateLimiter.acquire` now, over all keys."""
    keys: int
    """How many keys the limiter holds state for now (idle keys are dropped)."""


@final
@attrs.define(eq=False, repr=False, init=False, slots=True)
class RateLimiter(_Admissions[_GcraState]):
    """Admit at most *rate* units of cost per *per* seconds, evenly spaced.

    Picture a conveyor belt of slots passing by, one every ``per / rate``
    seconds. Each admission takes one slot per unit of cost; a task that finds
    no free slot waits for the next one. *burst* is how many slots you may take
    ahead of the belt: after a quiet spell, up to *burst* cost is admitted at
    once, then admissions fall back to the belt's pace. This is the generic
    cell rate algorithm (GCRA), a token bucket of size *burst* refilled at
    *rate* per *per*, kept as a single time per key.

    The guarantee: for any key and any interval ``[a, a + t]`` during which the
    settings do not change, the cost admitted in it is at most
    ``burst + rate * t / per``. With the default ``burst=1`` nothing bunches
    up, not even at start-up: ``RateLimiter(10)`` admits at 0.0, 0.1, 0.2, ...
    and never ten at once. Under saturating demand (cost 1), ``n`` admissions
    take exactly ``(n - burst) * per / rate`` seconds.

    Waiters are served strictly first in, first out per key: a cheap request
    does not overtake an expensive one that came first, and :meth:`try_acquire`
    fails while anyone is queued. A cancelled waiter held nothing, so the tasks
    behind it go exactly when they would have without it.

    Every distinct *key* (any hashable, e.g. a host name) has its own,
    independent schedule under the same settings; calls without a key share
    the key ``None``. A key with no waiters whose slots have all passed carries
    no information and is forgotten, so memory follows the number of keys busy
    within the last ``burst * per / rate`` seconds, not the number ever seen::

        limiter = trine.RateLimiter(5, per=1.0, burst=2)  # 5 per second per host

        async def fetch(client, url):
            await limiter.acquire(key=url.host)
            return await client.get(url)

    Args:
      rate: how many units of cost per *per* seconds, in the long run
        (a number > 0; ``math.inf`` admits everything at once).
      per: the period in seconds (a finite number > 0).
      burst: the most cost admitted at one instant (an int >= 1).

    Raises:
      TypeError: if an argument is not a number (*burst*: not an int).
      ValueError: if an argument is out of range.

    ``rate``, ``per`` and ``burst`` can be changed at run time through their
    properties, validated the same way; queued waiters then follow the new
    settings at once, and the debt already run up is kept in units of cost
    (changing from 1/s to 10/s turns one second of waiting into a tenth).
    """

    _rate: float = attrs.field(init=False)
    _per: float = attrs.field(init=False)
    _burst: int = attrs.field(init=False)

    def __init__(self, rate: float, per: float = 1.0, *, burst: int = 1) -> None:
        self.__attrs_init__()
        self.rate = rate
        self.per = per
        self.burst = burst

    # -- settings -----------------------------------------------------------

    @property
    def rate(self) -> float:
        """Units of cost admitted per :attr:`per` seconds in the long run; settable."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        rate = check_number("rate", value, minimum=0.0, exclusive=True, allow_inf=True)
        self._change(rate, getattr(self, "_per", 1.0))

    @property
    def per(self) -> float:
        """The period :attr:`rate` is counted over, in seconds; settable."""
        return self._per

    @per.setter
    def per(self, value: float) -> None:
        per = check_number("per", value, minimum=0.0, exclusive=True)
        self._change(self._rate, per)

    @property
    def burst(self) -> int:
        """The most cost admitted at one instant; settable, but never below a waiting cost."""
        return self._burst

    @burst.setter
    def burst(self, value: int) -> None:
        burst = check_int("burst", value, minimum=1)
        largest = self._largest_waiting_cost()
        if burst < largest:
            raise ValueError(
                f"burst must be >= {largest!r}, the cost of a waiting acquire, got {burst!r}"
            )
        self._burst = burst
        self._wake_heads()

    def _change(self, rate: float, per: float) -> None:
        if self._states:
            # Keep each key's debt in units of cost: re-anchor it at now.
            now = trio.current_time()
            for state in self._states.values():
                tat = self._tat(state)
                if tat > now:
                    state.units = (tat - now) * self._rate / self._per
                    state.anchor = now
        self._rate = rate
        self._per = per
        self._wake_heads()

    # -- the rule -------------------------------------------------------------

    def _tat(self, state: _GcraState) -> float:
        return state.anchor + state.units * self._per / self._rate

    def _new_state(self) -> _GcraState:
        return _GcraState()

    def _copy_state(self, state: _GcraState) -> _GcraState:
        return _GcraState(state.anchor, state.units)

    def _ready_at(self, state: _GcraState, cost: float, now: float) -> float:
        # Conforming when TAT - burst slots + cost slots <= now.
        return state.anchor + (state.units - (self._burst - cost)) * self._per / self._rate

    def _admit(self, state: _GcraState, cost: float, now: float) -> None:
        if now > self._tat(state):
            state.anchor = now
            state.units = cost
        else:
            state.units += cost

    def _admit_if_ready(self, state: _GcraState, cost: float, now: float) -> bool:
        tat = state.anchor + state.units * self._per / self._rate
        if state.anchor + (state.units - (self._burst - cost)) * self._per / self._rate > now:
            return False
        if now > tat:
            state.anchor = now
            state.units = cost
        else:
            state.units += cost
        return True

    def _is_idle(self, state: _GcraState, now: float) -> bool:
        return self._tat(state) <= now

    # -- the API ----------------------------------------------------------------

    def _check_cost(self, cost: float) -> float:
        number = check_number("cost", cost, minimum=0.0, exclusive=True)
        if number > self._burst:
            raise ValueError(f"cost must be <= burst, got cost={cost!r} and burst={self._burst!r}")
        return number

    async def acquire(self, cost: float = 1, *, key: Hashable = None) -> None:
        """Wait until *cost* may be admitted for *key*, then take it.

        Always a checkpoint. Waiters of one key are admitted in the order they
        arrived. If cancelled while waiting, nothing was taken.

        Args:
          cost: how many units this call uses (a number > 0, at most :attr:`burst`;
            fractions are allowed, e.g. ``len(chunk) / 1024`` for kilobytes).
          key: which independent schedule to use (any hashable; default ``None``).

        Raises:
          ValueError: if *cost* is not > 0 or is larger than :attr:`burst`
            (it could never be admitted).
        """
        if type(cost) is not int or not 0 < cost <= self._burst:  # a quick test first
            cost = self._check_cost(cost)
        await trio.lowlevel.checkpoint_if_cancelled()
        now = trio.current_time()
        state = self._states.get(key)
        if state is None:
            state = self._state_for(key, now)
        if not state.waiters and self._admit_if_ready(state, cost, now):
            self._admitted += 1
            self._admitted_cost += cost
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        await self._wait_in_line(state, cost)

    def try_acquire(self, cost: float = 1, *, key: Hashable = None) -> bool:
        """Take *cost* for *key* if that is possible right now; never waits.

        Returns ``False`` (and counts a rejection) if the slots are not free
        yet or if other tasks are queued for *key* (they came first). Not a
        checkpoint. Arguments and errors as for :meth:`acquire`.
        """
        return self._try_acquire(self._check_cost(cost), key)

    def acquire_nowait(self, cost: float = 1, *, key: Hashable = None) -> None:
        """Like :meth:`try_acquire`, but raise instead of returning ``False``.

        Raises:
          RateLimitExceeded: if *cost* cannot be admitted now. Its ``retry_after``
            is how many seconds :meth:`acquire` would wait if called instead, were
            nothing to change meanwhile (so :class:`~trine.Retry` waits just long
            enough).
          ValueError: as for :meth:`acquire`.
        """
        self._admit_or_raise(
            self._check_cost(cost), key, f"rate limit of {self._rate:g} per {self._per:g}s"
        )

    def statistics(self) -> RateLimiterStatistics:
        """Return a fresh :class:`RateLimiterStatistics` snapshot."""
        return RateLimiterStatistics(
            rate=self._rate,
            per=self._per,
            burst=self._burst,
            admitted=self._admitted,
            admitted_cost=float(self._admitted_cost),
            rejected=self._rejected,
            tasks_waiting=self._tasks_waiting,
            keys=len(self._states),
        )

    def __repr__(self) -> str:
        return (
            f"<trine.RateLimiter rate={self._rate:g} per={self._per:g}s burst={self._burst}: "
            f"{self._waiting_summary()}>"
        )


@attrs.frozen
class SlidingWindowLimiterStatistics:
    """What :meth:`SlidingWindowLimiter.statistics` reports."""

    limit: int
    """The most cost admitted in any :attr:`window` seconds, per key."""
    window: float
    """The window's length in seconds."""
    admitted: int
    """How many acquisitions were admitted, by every method and key."""
    admitted_cost: int
    """The total cost of those admissions."""
    rejected: int
    """How many :meth:`~SlidingWindowLimiter.try_acquire` calls returned ``False``
    plus :meth:`~SlidingWindowLimiter.acquire_nowait` calls that raised."""
    tasks_waiting: int
    """How many tasks are blocked in :meth:`~SlidingWindowLimiter.acquire` now, over all keys."""
    keys: int
    """How many keys the limiter holds state for now (idle keys are dropped)."""


@final
@attrs.define(eq=False, repr=False, init=False, slots=True)
class SlidingWindowLimiter(_Admissions[_WindowState]):
    """Admit at most *limit* units of cost in any *window* seconds, exactly.

    The limiter remembers when each admission in the last *window* seconds
    happened (a log of at most *limit* entries per key). An admission at time
    ``s`` counts against every window that contains ``s`` and frees its slot at
    ``s + window``. The guarantee: for any key and any half-open interval
    ``[a, a + window)``, the cost admitted in it is at most *limit*.

    Unlike :class:`RateLimiter` this does not space admissions out: up to
    *limit* go at once, then nothing until the oldest leaves the window. Use
    it when a service states its quota in exactly these terms ("100 requests
    per 60 s"); use :class:`RateLimiter` to smooth traffic.

    Waiters are served first in, first out per key; a cancelled waiter takes
    nothing. Keys, ``try_acquire``, ``acquire_nowait`` and the dropping of
    idle keys work as for :class:`RateLimiter`::

        limiter = trine.SlidingWindowLimiter(100, window=60.0)

        async def call(api_key, request):
            await limiter.acquire(key=api_key)
            return await send(request)

    Args:
      limit: the most cost in any window (an int >= 1).
      window: the window's length in seconds (a finite number > 0).

    Raises:
      TypeError: if *limit* is not an int or *window* not a number.
      ValueError: if an argument is out of range.

    ``limit`` and ``window`` can be changed at run time through their
    properties; the log is kept, so the new rule applies to the admissions
    already made.
    """

    _limit: int = attrs.field(init=False)
    _window: float = attrs.field(init=False)

    def __init__(self, limit: int, window: float) -> None:
        self.__attrs_init__()
        self.limit = limit
        self.window = window

    @property
    def limit(self) -> int:
        """The most cost admitted in any :attr:`window`; settable, never below a waiting cost."""
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        limit = check_int("limit", value, minimum=1)
        largest = self._largest_waiting_cost()
        if limit < largest:
            raise ValueError(
                f"limit must be >= {largest!r}, the cost of a waiting acquire, got {limit!r}"
            )
        self._limit = limit
        self._wake_heads()

    @property
    def window(self) -> float:
        """The window's length in seconds; settable."""
        return self._window

    @window.setter
    def window(self, value: float) -> None:
        self._window = check_number("window", value, minimum=0.0, exclusive=True)
        self._wake_heads()

    # -- the rule -------------------------------------------------------------

    def _new_state(self) -> _WindowState:
        return _WindowState()

    def _copy_state(self, state: _WindowState) -> _WindowState:
        return _WindowState(deque(state.log), state.used)

    def _expire(self, state: _WindowState, now: float) -> None:
        log = state.log
        while log and log[0][0] + self._window <= now:
            state.used -= log.popleft()[1]

    def _ready_at(self, state: _WindowState, cost: float, now: float) -> float:
        self._expire(state, now)
        excess = state.used + cost - self._limit
        if excess <= 0:
            return -math.inf
        # The slot frees when enough of the oldest admissions have left the window.
        for admitted_at, admitted_cost in state.log:
            excess -= admitted_cost
            if excess <= 0:
                return admitted_at + self._window
        raise AssertionError("unreachable: cost <= limit is checked at the call")

    def _admit(self, state: _WindowState, cost: float, now: float) -> None:
        self._expire(state, now)
        state.log.append((now, int(cost)))
        state.used += int(cost)

    def _admit_if_ready(self, state: _WindowState, cost: float, now: float) -> bool:
        self._expire(state, now)
        if state.used + cost > self._limit:
            return False
        state.log.append((now, int(cost)))
        state.used += int(cost)
        return True

    def _is_idle(self, state: _WindowState, now: float) -> bool:
        self._expire(state, now)
        return not state.log

    # -- the API ----------------------------------------------------------------

    def _check_cost(self, cost: int) -> int:
        check_int("cost", cost, minimum=1)
        if cost > self._limit:
            raise ValueError(f"cost must be <= limit, got cost={cost!r} and limit={self._limit!r}")
        return cost

    async def acquire(self, cost: int = 1, *, key: Hashable = None) -> None:
        """Wait until *cost* fits in the window for *key*, then take it.

        Always a checkpoint; waiters of one key are admitted in arrival order;
        if cancelled while waiting, nothing was taken.

        Args:
          cost: how many units this call uses (an int >= 1, at most :attr:`limit`).
          key: which independent window to use (any hashable; default ``None``).

        Raises:
          ValueError: if *cost* is below 1 or above :attr:`limit`.
        """
        if type(cost) is not int or not 0 < cost <= self._limit:  # a quick test first
            cost = self._check_cost(cost)
        await trio.lowlevel.checkpoint_if_cancelled()
        now = trio.current_time()
        state = self._states.get(key)
        if state is None:
            state = self._state_for(key, now)
        if not state.waiters and self._admit_if_ready(state, cost, now):
            self._admitted += 1
            self._admitted_cost += cost
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        await self._wait_in_line(state, cost)

    def try_acquire(self, cost: int = 1, *, key: Hashable = None) -> bool:
        """Take *cost* for *key* if it fits right now and nobody is queued; never waits.

        Not a checkpoint. Arguments and errors as for :meth:`acquire`.
        """
        return self._try_acquire(self._check_cost(cost), key)

    def acquire_nowait(self, cost: int = 1, *, key: Hashable = None) -> None:
        """Like :meth:`try_acquire`, but raise instead of returning ``False``.

        Raises:
          RateLimitExceeded: with ``retry_after``, the seconds :meth:`acquire`
            would wait if called instead, were nothing to change meanwhile.
          ValueError: as for :meth:`acquire`.
        """
        self._admit_or_raise(
            self._check_cost(cost), key, f"limit of {self._limit} per {self._window:g}s window"
        )

    def statistics(self) -> SlidingWindowLimiterStatistics:
        """Return a fresh :class:`SlidingWindowLimiterStatistics` snapshot."""
        return SlidingWindowLimiterStatistics(
            limit=self._limit,
            window=self._window,
            admitted=self._admitted,
            admitted_cost=int(self._admitted_cost),
            rejected=self._rejected,
            tasks_waiting=self._tasks_waiting,
            keys=len(self._states),
        )

    def __repr__(self) -> str:
        return (
            f"<trine.SlidingWindowLimiter limit={self._limit} window={self._window:g}s: "
            f"{self._waiting_summary()}>"
        )
