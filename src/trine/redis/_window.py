"""SlidingWindowLimiter on Redis: a sorted set per key, shared by every process, on server time."""

from __future__ import annotations

from typing import Any, final

import attrs

import trine

from .._util import check_int
from ._admission import _Admissions
from ._link import Client, OnUnavailable, microseconds

__all__ = ["SlidingWindowLimiter", "SlidingWindowLimiterStatistics"]


@attrs.frozen
class SlidingWindowLimiterStatistics:
    """What :meth:`SlidingWindowLimiter.statistics` reports: this process's share of the traffic."""

    limit: int
    """The most cost admitted in any :attr:`window` seconds, per key, across the fleet."""
    window: float
    """The window's length in seconds."""
    admitted: int
    """Acquisitions this process was admitted for: a reservation counts from when the
    server made it, and is taken back if its waiter is cancelled before its time."""
    admitted_cost: int
    """The total cost of those admissions."""
    rejected: int
    """``try_acquire`` calls that returned ``False`` and ``acquire_nowait`` calls that raised."""
    refunded: int
    """Reservations given back by waiters cancelled before their time."""
    tasks_waiting: int
    """Tasks of this process sleeping until their reserved time now."""
    round_trips: int
    """Scripts run on the server (one per acquisition, one per refund)."""
    unavailable: int
    """Round trips that failed because the server was out of reach."""
    fallbacks: int
    """Calls handed to the local twin because the server was out of reach
    (``on_unavailable="fail_open"``)."""


@final
@attrs.define(eq=False, repr=False, init=False)
class SlidingWindowLimiter(_Admissions):
    """At most *limit* units of cost in any *window* seconds, across every process using the name.

    The same rule as :class:`trine.SlidingWindowLimiter`, kept in Redis as a
    sorted set of admissions per key (scored by the server's time) and decided
    by one Lua script per acquisition::

        quota = trine.redis.SlidingWindowLimiter(client, "partner-api", 100, window=60.0)
        await quota.acquire(key=api_key)

    **The guarantee, for the fleet.** For any key and any half-open interval
    ``[a, a + window)`` of the server's time, the cost admitted across every
    process is at most *limit*, as long as every process gives the same
    *limit* and *window*. An acquire that cannot go at once reserves the
    earliest time the window has room and sleeps until then (no further round
    trip); waiters go in the order their requests reached the server. A
    waiter cancelled during its sleep takes its reservation out of the log
    (one more round trip; any reservation can be taken out, since that only
    lowers every window's count). The log holds at most *limit* admissions
    per window plus the reservations of the waiters, and expires with the
    newest admission.

    Args:
      client: a ``coredis.Redis`` (or ``RedisCluster``) client.
      name: the name every process uses (keys ``trine:window:{name}...``).
      limit, window: as for :class:`trine.SlidingWindowLimiter`.
      on_unavailable, timeout, recheck_interval: as for
        :class:`trine.redis.RateLimiter`; the local twin is a
        :class:`trine.SlidingWindowLimiter` with the same settings.

    Raises:
      TypeError, ValueError: for an invalid argument, naming it.
    """

    _limit: int = attrs.field(init=False)
    _window: float = attrs.field(init=False)
    _window_us: str = attrs.field(init=False)

    _KIND = "window"
    _LABEL = "sliding window limiter"
    _ACQUIRE = "window_acquire"
    _REFUND = "window_refund"

    def __init__(
        self,
        client: Client,
        name: str,
        limit: int,
        window: float,
        *,
        on_unavailable: OnUnavailable = "fail_closed",
        timeout: float = 1.0,
        recheck_interval: float = 1.0,
    ) -> None:
        self.__attrs_init__()
        local = trine.SlidingWindowLimiter(limit, window)  # checks limit and window
        self._setup(
            client,
            name,
            local,
            on_unavailable=on_unavailable,
            timeout=timeout,
            recheck_interval=recheck_interval,
        )
        self._limit = local.limit
        self._window = local.window
        self._window_us = microseconds(self._window)

    @property
    def limit(self) -> int:
        """The most cost admitted in any :attr:`window`, across the fleet."""
        return self._limit

    @property
    def window(self) -> float:
        """The window's length in seconds."""
        return self._window

    @property
    def local(self) -> trine.SlidingWindowLimiter:
        """The local twin that ``on_unavailable="fail_open"`` admits through during an outage."""
        local: Any = self._local
        return local  # type: ignore[no-any-return]  # set to a trine.SlidingWindowLimiter in __init__

    def _check_cost(self, cost: object) -> float:
        number = check_int("cost", cost)
        if number > self._limit:
            raise ValueError(f"cost must be <= limit, got cost={cost!r} and limit={self._limit!r}")
        return number

    def _keys(self, key: str | None) -> list[str]:
        base = self._prefix if key is None else f"{self._prefix}:{key}"
        return [f"{base}:log", f"{base}:state"]

    def _acquire_args(self, cost: float, max_wait: float) -> list[object]:
        return [self._window_us, self._limit, int(cost), microseconds(max_wait)]

    def _refund_args(self, cost: float, reservation: str) -> list[object]:
        return [reservation]

    def _limit_text(self) -> str:
        return f"limit of {self._limit} per {self._window:g}s window"

    def statistics(self) -> SlidingWindowLimiterStatistics:
        """A fresh :class:`SlidingWindowLimiterStatistics` snapshot of this process's calls."""
        return SlidingWindowLimiterStatistics(
            limit=self._limit,
            window=self._window,
            admitted=self._admitted,
            admitted_cost=int(self._admitted_cost),
            rejected=self._rejected,
            refunded=self._refunded,
            tasks_waiting=self._tasks_waiting,
            round_trips=self._link.round_trips,
            unavailable=self._link.failures,
            fallbacks=self._fallbacks,
        )

    def __repr__(self) -> str:
        return (
            f"<trine.redis.SlidingWindowLimiter {self._name!r} limit={self._limit} "
            f"window={self._window:g}s on {self._link.server}>"
        )
