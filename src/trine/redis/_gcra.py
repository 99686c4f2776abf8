"""RateLimiter on Redis: a GCRA schedule per key, shared by every process, on the server's clock."""

from __future__ import annotations

import math
from typing import Any, final

import attrs

import trine

from .._util import check_number
from ._admission import _Admissions
from ._link import Client, OnUnavailable, microseconds

__all__ = ["RateLimiter", "RateLimiterStatistics"]


@attrs.frozen
class RateLimiterStatistics:
    """What :meth:`RateLimiter.statistics` reports: this process's share of the traffic."""

    rate: float
    """Admissions (of cost 1) allowed per :attr:`per` seconds, across the fleet."""
    per: float
    """The period :attr:`rate` is counted over, in seconds."""
    burst: int
    """The most cost admitted at one instant after a quiet spell."""
    admitted: int
    """Acquisitions this process was admitted for: a reservation counts from when the
    server made it, and is taken back if its waiter is cancelled before its time."""
    admitted_cost: float
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
class RateLimiter(_Admissions):
    """A rate limiter whose schedule lives in Redis: one rate for every process that uses the name.

    The same algorithm as :class:`trine.RateLimiter` (GCRA: a belt of slots
    passing one every ``per / rate`` seconds, *burst* of which may be taken
    ahead), kept as one number per key in Redis and updated by one Lua script
    per acquisition, timed by the server's clock (``TIME`` inside the script),
    so no two machines' clocks need to agree::

        async with coredis.Redis(host="redis.internal") as client:
            quota = trine.redis.RateLimiter(client, "partner-api", 200, per=1.0)
            await quota.acquire()        # every process shares the 200 per second

    **The guarantee, for the fleet.** For any key and any window ``[a, a + t]``
    of the server's time, the cost admitted across every process is at most
    ``burst + rate * t / per``, as long as every process gives the same
    *rate*, *per* and *burst*. An acquire that cannot go at once *reserves*
    the earliest slot and sleeps until it, so waiting costs no further round
    trip and waiters are admitted in the order their requests reached the
    server. Your calls reach the protected service a little after the time
    the server granted (by each process's reply latency and timer
    lateness), so their spacing there varies by that jitter, never by a
    clock difference.

    **Cost of a call.** One round trip per acquisition; a waiter cancelled
    during its sleep makes one more to give its slot back, which succeeds if
    nobody reserved after it (else the slot stays unused and the bound still
    holds). Keys idle for longer than their schedule expire on the server.

    Args:
      client: a ``coredis.Redis`` (or ``RedisCluster``) client; the limiter
        uses it inside your ``async with client:``.
      name: the name every process uses for this limiter (its keys are
        ``trine:rate:{name}`` and ``trine:rate:{name}:<key>``).
      rate, per, burst: as for :class:`trine.RateLimiter` (the same defaults,
        including ``math.inf`` for an unlimited rate, which needs no round trip).
      on_unavailable: ``"fail_closed"`` (default) to raise
        :exc:`~trine.redis.RedisUnavailable` when the server is out of reach;
        ``"fail_open"`` to admit through :attr:`local`, a
        :class:`trine.RateLimiter` with the same settings limiting this
        process alone (so a fleet of *n* processes may then admit up to
        *n* times the rate).
      timeout: seconds to wait for the server's reply (> 0) before treating it
        as out of reach.
      recheck_interval: seconds (>= 0) after a failed round trip during which
        the limiter does not try the server again (it fails closed or open at
        once); the first call after that tries again.

    Raises:
      TypeError, ValueError: for an invalid argument, naming it.
    """

    _rate: float = attrs.field(init=False)
    _per: float = attrs.field(init=False)
    _burst: int = attrs.field(init=False)
    _interval: str = attrs.field(init=False)

    _KIND = "rate"
    _LABEL = "rate limiter"
    _ACQUIRE = "rate_acquire"
    _REFUND = "rate_refund"

    def __init__(
        self,
        client: Client,
        name: str,
        rate: float,
        per: float = 1.0,
        *,
        burst: int | None = None,
        on_unavailable: OnUnavailable = "fail_closed",
        timeout: float = 1.0,
        recheck_interval: float = 1.0,
    ) -> None:
        self.__attrs_init__()
        # The local twin checks rate, per and burst as trine.RateLimiter does,
        # and works out the default burst the same way.
        local = trine.RateLimiter(rate, per, burst=burst)
        self._setup(
            client,
            name,
            local,
            on_unavailable=on_unavailable,
            timeout=timeout,
            recheck_interval=recheck_interval,
        )
        self._rate = local.rate
        self._per = local.per
        self._burst = local.burst
        self._interval = microseconds(self._per / self._rate)

    @property
    def rate(self) -> float:
        """Units of cost admitted per :attr:`per` seconds, across the fleet."""
        return self._rate

    @property
    def per(self) -> float:
        """The period :attr:`rate` is counted over, in seconds."""
        return self._per

    @property
    def burst(self) -> int:
        """The most cost admitted at one instant (as given, or trine.RateLimiter's default)."""
        return self._burst

    @property
    def local(self) -> trine.RateLimiter:
        """The local twin that ``on_unavailable="fail_open"`` admits through during an outage."""
        local: Any = self._local
        return local  # type: ignore[no-any-return]  # set to a trine.RateLimiter in __init__

    def _check_cost(self, cost: object) -> float:
        number = check_number("cost", cost, minimum=0.0, exclusive=True)
        if number > self._burst:
            raise ValueError(f"cost must be <= burst, got cost={cost!r} and burst={self._burst!r}")
        return number

    def _unlimited(self) -> bool:
        return math.isinf(self._rate)

    def _acquire_args(self, cost: float, max_wait: float) -> list[object]:
        return [self._interval, self._burst, repr(cost), microseconds(max_wait)]

    def _refund_args(self, cost: float, reservation: str) -> list[object]:
        return [reservation, repr(cost), self._interval]

    def _limit_text(self) -> str:
        return f"rate limit of {self._rate:g} per {self._per:g}s"

    def statistics(self) -> RateLimiterStatistics:
        """Return a fresh :class:`RateLimiterStatistics` snapshot of this process's calls.

        No round trip: the counts are this process's own (the fleet's total
        lives only in the admissions the server handed out).
        """
        return RateLimiterStatistics(
            rate=self._rate,
            per=self._per,
            burst=self._burst,
            admitted=self._admitted,
            admitted_cost=float(self._admitted_cost),
            rejected=self._rejected,
            refunded=self._refunded,
            tasks_waiting=self._tasks_waiting,
            round_trips=self._link.round_trips,
            unavailable=self._link.failures,
            fallbacks=self._fallbacks,
        )

    def __repr__(self) -> str:
        return (
            f"<trine.redis.RateLimiter {self._name!r} rate={self._rate:g} per={self._per:g}s "
            f"burst={self._burst} on {self._link.server}>"
        )
