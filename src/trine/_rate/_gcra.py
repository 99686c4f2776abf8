"""RateLimiter: the generic cell rate algorithm, evenly spaced admissions with a burst."""

from __future__ import annotations

import math
import sys
from collections.abc import Hashable
from typing import final

import attrs
import trio
from trio.lowlevel import enable_ki_protection

from .. import _created
from .._util import check_int, check_name, check_number
from ._admissions import _Admissions, _Queue, _unhashable

__all__ = ["RateLimiter", "RateLimiterStatistics"]

_BURST_SPAN = 0.003
"""The default burst is the cost due in this many seconds at the rate (3 ms).

Trio sleeps in the operating system's I/O wait, whose timeout is a whole number
of milliseconds rounded up, so a task due in 50 us wakes about 1 ms later
(measured here on two quiet cores: a median of 0.7 ms, 1.3 ms at the 99th
percentile, 10 ms at most in 3,000 sleeps; the ``timer_slack`` case of
``benchmarks/bench_rate.py`` measures yours). GCRA repays lateness up to its
tolerance, ``burst - 1`` intervals, so a burst spanning 3 ms leaves a
tolerance of at least 2 ms at every rate from 1,000 per second up:
``(ceil(0.003 * r) - 1) / r >= 0.003 - 1 / r``.
"""


def _check_rate(rate: float, per: float) -> None:
    """Refuse a finite *rate* and a *per* whose ratio is not finite (1e300 per 1e-10 s)."""
    if math.isinf(rate / per) and not math.isinf(rate):
        raise ValueError(
            f"rate / per must be finite (rate=math.inf admits everything), "
            f"got rate={rate!r} and per={per!r}"
        )


def _default_burst(rate: float, per: float) -> int:
    """The burst a :class:`RateLimiter` uses when none is given: enough to cover the timer slack.

    ``max(1, ceil(rate / per * 0.003))``: 1 up to 333 per second, so
    everyday rates stay strictly spaced; 3 at 1,000 per second and 60 at
    20,000, whose tolerance (2 ms and 2.95 ms) covers a late wake-up. An
    unlimited rate gets :data:`sys.maxsize`.
    """
    if math.isinf(rate):
        return sys.maxsize
    # Rounded first, so that float error cannot lift an exact integer (700 per
    # 0.3 s spans exactly 7 admissions, computed as 7.000000000000001) to the next.
    return min(sys.maxsize, max(1, math.ceil(round(rate / per * _BURST_SPAN, 9))))


@attrs.define(eq=False, slots=True)
class _GcraState(_Queue):
    """One key's GCRA state: the theoretical arrival time ``anchor + units * per / rate``.

    Keeping the TAT as an anchor plus a count of cost units (rather than adding
    ``per / rate`` again and again) keeps admission times exact: with
    ``rate=3`` they are ``0, 1/3, 2/3, 1.0`` to the last bit, not a drifting sum.
    """

    anchor: float = -math.inf
    units: float = 0.0


@attrs.frozen
class RateLimiterStatistics:
    """What :meth:`RateLimiter.statistics` reports."""

    rate: float
    """Admissions (of cost 1) allowed per :attr:`per` seconds, in the long run."""
    per: float
    """The period :attr:`rate` is counted over, in seconds."""
    burst: int
    """How much cost may be admitted at one instant after a quiet spell: the burst
    given, or the default that covers the timer slack (:attr:`RateLimiter.burst`)."""
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
    waited: int = 0
    """How many acquisitions were admitted after waiting in ``acquire``."""
    wait_time: float = 0.0
    """The seconds those acquisitions waited, added up."""


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
    ``burst + rate * t / per``. Under saturating demand (cost 1), ``n``
    admissions take exactly ``(n - burst) * per / rate`` seconds.

    **The default burst covers the timer.** Trio sleeps in the operating
    system's I/O wait, whose timeout is a whole number of milliseconds rounded
    up, so it wakes a sleeping task about a millisecond late (measured here:
    0.7 ms median, 1.3 ms at the 99th percentile; ``python -m benchmarks rate``
    measures yours). A late waiter can be repaid -- the slots it missed
    admitted at once when it wakes -- only as far as its tolerance,
    ``burst - 1`` intervals, allows, so by default the burst spans 3 ms of
    admissions, ``max(1, ceil(rate / per * 0.003))``, which leaves at least
    2 ms of tolerance at every rate from 1,000 per second up. At everyday
    rates that is 1:
    ``RateLimiter(10)`` admits at 0.0, 0.1, 0.2, ... and never two at once
    (and, losing each wake-up's lateness, delivers about 99 % of its rate in
    real time; ``RateLimiter(100)`` about 95 %). At 20,000 per second it is
    60, and the limiter delivers its rate where strict spacing could not: the
    clock cannot space admissions 50 us apart, so they go in small groups at
    each wake-up instead (``benchmarks/bench_rate.py`` measures both).

    Waiters are served strictly first in, first out per key: a cheap request
    does not overtake an expensive one that came first, and :meth:`try_acquire`
    fails while anyone is queued. A cancelled waiter held nothing, so the tasks
    behind it go exactly when they would have without it. When the head of the
    queue wakes, every waiter then due is admitted in that same instant.

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
      per: the period in seconds (a finite number > 0; ``rate / per`` must be
        finite unless *rate* is ``math.inf``).
      burst: the most cost admitted at one instant (an int >= 1), or ``None``
        (the default) for enough to cover the timer slack,
        ``max(1, ceil(rate / per * 0.003))`` (:data:`sys.maxsize` for an
        unlimited rate), which follows *rate* and *per* when they change.
        ``burst=1`` asks for strict spacing, never two admissions closer than
        ``per / rate``; since every late wake-up is then lost for good, strict
        spacing caps the achieved rate at about one admission per timer tick
        (about 1,000 per second here, whatever the rate).
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError: if an argument is not a number (*burst*: not an int or ``None``).
      ValueError: if an argument is out of range.

    ``rate``, ``per`` and ``burst`` can be changed at run time through their
    properties, validated the same way; queued waiters then follow the new
    settings at once, and the debt already run up is kept in units of cost
    (changing from 1/s to 10/s turns one second of waiting into a tenth); a
    key whose slots have all passed owes nothing under the new settings either.
    """

    _rate: float = attrs.field(init=False)
    _per: float = attrs.field(init=False)
    _burst: int = attrs.field(init=False)
    _burst_given: int | None = attrs.field(init=False, default=None)
    name: str | None = attrs.field(init=False, default=None)
    """The name given to the constructor (metrics and events carry it)."""

    def __init__(
        self, rate: float, per: float = 1.0, *, burst: int | None = None, name: str | None = None
    ) -> None:
        self.__attrs_init__()
        self._rate = check_number("rate", rate, minimum=0.0, exclusive=True, allow_inf=True)
        self._per = check_number("per", per, minimum=0.0, exclusive=True)
        _check_rate(self._rate, self._per)
        self.burst = burst
        self.name = check_name(name)
        if _created.watchers:
            _created.announce(self, None)

    # -- settings -----------------------------------------------------------

    @property
    def rate(self) -> float:
        """Units of cost admitted per :attr:`per` seconds in the long run; settable."""
        return self._rate

    @rate.setter
    @enable_ki_protection
    def rate(self, value: float) -> None:
        rate = check_number("rate", value, minimum=0.0, exclusive=True, allow_inf=True)
        self._change(rate, self._per, "rate", value)

    @property
    def per(self) -> float:
        """The period :attr:`rate` is counted over, in seconds; settable."""
        return self._per

    @per.setter
    @enable_ki_protection
    def per(self, value: float) -> None:
        per = check_number("per", value, minimum=0.0, exclusive=True)
        self._change(self._rate, per, "per", value)

    @property
    def burst(self) -> int:
        """The most cost admitted at one instant: the burst given, or the default.

        Settable (``None`` restores the default), but never below the cost of
        a waiting acquire.
        """
        return self._burst

    @burst.setter
    @enable_ki_protection
    def burst(self, value: int | None) -> None:
        if value is None:
            burst = _default_burst(self._rate, self._per)
        else:
            burst = check_int("burst", value, minimum=1)
        largest = self._largest_waiting_cost()
        if burst < largest:
            raise ValueError(
                f"burst must be >= {largest!r}, the cost of a waiting acquire, got {value!r}"
            )
        self._burst = burst
        self._burst_given = value
        self._serve_every_key()

    def _change(self, rate: float, per: float, name: str, value: object) -> None:
        _check_rate(rate, per)
        burst = self._burst
        if self._burst_given is None:
            burst = _default_burst(rate, per)
            largest = self._largest_waiting_cost()
            if burst < largest:
                raise ValueError(
                    f"{name} must leave the default burst >= {largest!r}, the cost of a "
                    f"waiting acquire, got {value!r} (the default burst would be {burst})"
                )
        if self._states:
            self._reanchor(trio.current_time())
        self._rate = rate
        self._per = per
        self._burst = burst
        self._serve_every_key()

    def _reanchor(self, now: float) -> None:
        """Restate every key's TAT as *now* plus its debt in units of cost, under any settings.

        ``(anchor, units)`` only means a time under the settings that wrote
        it, so every key is rewritten, not only those in debt: a key whose TAT
        has passed owes nothing, and left as it was, its units (ten admissions
        at 100/s, a thousand at an unlimited rate) would read as a TAT far in
        the future under a lower rate. Afterwards ``units == 0`` or the TAT is
        ahead of *now*, so an idle key stays idle (and is still forgotten).
        """
        for state in self._states.values():
            owed = self._tat(state) - now
            # An unlimited rate never puts a TAT ahead of the admission that set it.
            state.units = owed * self._rate / self._per if owed > 0.0 else 0.0
            state.anchor = now

    # -- the rule -------------------------------------------------------------

    def _tat(self, state: _GcraState) -> float:
        return state.anchor + state.units * self._per / self._rate

    def _new_state(self) -> _GcraState:
        return _GcraState()

    def _copy_state(self, state: _GcraState) -> _GcraState:
        return _GcraState(anchor=state.anchor, units=state.units)

    def _ready_at(self, state: _GcraState, cost: float, now: float) -> float:
        # Conforming when TAT - burst slots + cost slots <= now.
        return state.anchor + (state.units - (self._burst - cost)) * self._per / self._rate

    def _admit(self, state: _GcraState, cost: float, now: float) -> None:
        # Past the TAT the bucket is full: lateness beyond the burst is lost
        # (repaying it would break the guarantee); within it, units carry on
        # from the schedule, not from now, so a late wake-up is repaid.
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

    @enable_ki_protection
    async def acquire(self, cost: float = 1, *, key: Hashable = None) -> None:
        """Wait until *cost* may be admitted for *key*, then take it.

        Always a checkpoint. Waiters of one key are admitted in the order they
        arrived. If cancelled (or interrupted by Ctrl-C) while waiting,
        nothing was taken.

        Args:
          cost: how many units this call uses (a number > 0, at most :attr:`burst`;
            fractions are allowed, e.g. ``len(chunk) / 1024`` for kilobytes).
          key: which independent schedule to use (any hashable; default ``None``).

        Raises:
          TypeError: if *cost* is not a number or *key* is not hashable.
          ValueError: if *cost* is not > 0 or is larger than :attr:`burst`
            (it could never be admitted).
        """
        if type(cost) is not int or not 0 < cost <= self._burst:  # a quick test first
            cost = self._check_cost(cost)
        await trio.lowlevel.checkpoint_if_cancelled()
        now = trio.current_time()
        try:
            state = self._states.get(key)
        except TypeError:
            _unhashable(key)
            raise
        if state is None:
            state = self._state_for(key, now)
        if not state.waiters and self._admit_if_ready(state, cost, now):
            self._admitted += 1
            self._admitted_cost += cost
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        await self._wait_in_line(state, cost)

    @enable_ki_protection
    def try_acquire(self, cost: float = 1, *, key: Hashable = None) -> bool:
        """Take *cost* for *key* if that is possible right now; never waits.

        Returns ``False`` (and counts a rejection) if the slots are not free
        yet or if other tasks are queued for *key* (they came first). Not a
        checkpoint. Arguments and errors as for :meth:`acquire`.
        """
        return self._try_acquire(self._check_cost(cost), key)

    @enable_ki_protection
    def acquire_nowait(self, cost: float = 1, *, key: Hashable = None) -> None:
        """Like :meth:`try_acquire`, but raise instead of returning ``False``.

        Raises:
          RateLimitExceeded: if *cost* cannot be admitted now. Its ``retry_after``
            is how many seconds :meth:`acquire` would wait if called instead, were
            nothing to change meanwhile (so :class:`~trine.Retry` waits just long
            enough).
          TypeError, ValueError: as for :meth:`acquire`.
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
            waited=self._waited,
            wait_time=self._waited_seconds,
        )

    def __repr__(self) -> str:
        return (
            f"<trine.RateLimiter rate={self._rate:g} per={self._per:g}s burst={self._burst}: "
            f"{self._waiting_summary()}>"
        )
