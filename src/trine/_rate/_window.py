"""SlidingWindowLimiter: at most *limit* in any *window* seconds, from a log of admissions."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from typing import final

import attrs
import trio
from trio.lowlevel import enable_ki_protection

from .. import _created
from .._util import check_int, check_name, check_number
from ._admissions import _Admissions, _Queue, _unhashable

__all__ = ["SlidingWindowLimiter", "SlidingWindowLimiterStatistics"]


@attrs.define(eq=False, slots=True)
class _WindowState(_Queue):
    """One key's sliding log: ``(admission time, cost)`` for admissions still in the window."""

    log: deque[tuple[float, int]] = attrs.field(factory=deque)
    used: int = 0


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
    waited: int = 0
    """How many acquisitions were admitted after waiting in ``acquire``."""
    wait_time: float = 0.0
    """The seconds those acquisitions waited, added up."""


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
    nothing. When the head of the queue wakes, every waiter that then fits is
    admitted in that same instant. Lateness itself cannot be repaid here: an
    admission counts from the moment it happened, so if Trio wakes the head a
    millisecond after a slot freed, the next window's worth of admissions
    starts a millisecond late (under 0.1 % of a 1 s window; for windows of a
    few milliseconds, use :class:`RateLimiter`, whose burst absorbs it). Keys,
    ``try_acquire``, ``acquire_nowait`` and the dropping of idle keys work as
    for :class:`RateLimiter`::

        limiter = trine.SlidingWindowLimiter(100, window=60.0)

        async def call(api_key, request):
            await limiter.acquire(key=api_key)
            return await send(request)

    Args:
      limit: the most cost in any window (an int >= 1).
      window: the window's length in seconds (a finite number > 0).
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError: if *limit* is not an int or *window* not a number.
      ValueError: if an argument is out of range.

    ``limit`` and ``window`` can be changed at run time through their
    properties; the log is kept, so the new rule applies to the admissions
    already made.
    """

    _limit: int = attrs.field(init=False)
    _window: float = attrs.field(init=False)
    name: str | None = attrs.field(init=False, default=None)
    """The name given to the constructor (metrics and events carry it)."""

    def __init__(self, limit: int, window: float, *, name: str | None = None) -> None:
        self.__attrs_init__()
        self.limit = limit
        self.window = window
        self.name = check_name(name)
        if _created.watchers:
            _created.announce(self, None)

    @property
    def limit(self) -> int:
        """The most cost admitted in any :attr:`window`; settable, never below a waiting cost."""
        return self._limit

    @limit.setter
    @enable_ki_protection
    def limit(self, value: int) -> None:
        limit = check_int("limit", value, minimum=1)
        largest = self._largest_waiting_cost()
        if limit < largest:
            raise ValueError(
                f"limit must be >= {largest!r}, the cost of a waiting acquire, got {limit!r}"
            )
        self._limit = limit
        self._serve_every_key()

    @property
    def window(self) -> float:
        """The window's length in seconds; settable."""
        return self._window

    @window.setter
    @enable_ki_protection
    def window(self, value: float) -> None:
        self._window = check_number("window", value, minimum=0.0, exclusive=True)
        self._serve_every_key()

    # -- the rule -------------------------------------------------------------

    def _new_state(self) -> _WindowState:
        return _WindowState()

    def _copy_state(self, state: _WindowState) -> _WindowState:
        return _WindowState(log=deque(state.log), used=state.used)

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

    @enable_ki_protection
    async def acquire(self, cost: int = 1, *, key: Hashable = None) -> None:
        """Wait until *cost* fits in the window for *key*, then take it.

        Always a checkpoint; waiters of one key are admitted in arrival order;
        if cancelled (or interrupted by Ctrl-C) while waiting, nothing was taken.

        Args:
          cost: how many units this call uses (an int >= 1, at most :attr:`limit`).
          key: which independent window to use (any hashable; default ``None``).

        Raises:
          TypeError: if *cost* is not an int or *key* is not hashable.
          ValueError: if *cost* is below 1 or above :attr:`limit`.
        """
        if type(cost) is not int or not 0 < cost <= self._limit:  # a quick test first
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
    def try_acquire(self, cost: int = 1, *, key: Hashable = None) -> bool:
        """Take *cost* for *key* if it fits right now and nobody is queued; never waits.

        Not a checkpoint. Arguments and errors as for :meth:`acquire`.
        """
        return self._try_acquire(self._check_cost(cost), key)

    @enable_ki_protection
    def acquire_nowait(self, cost: int = 1, *, key: Hashable = None) -> None:
        """Like :meth:`try_acquire`, but raise instead of returning ``False``.

        Raises:
          RateLimitExceeded: with ``retry_after``, the seconds :meth:`acquire`
            would wait if called instead, were nothing to change meanwhile.
          TypeError, ValueError: as for :meth:`acquire`.
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
            waited=self._waited,
            wait_time=self._waited_seconds,
        )

    def __repr__(self) -> str:
        return (
            f"<trine.SlidingWindowLimiter limit={self._limit} window={self._window:g}s: "
            f"{self._waiting_summary()}>"
        )
