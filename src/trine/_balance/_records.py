"""What a :class:`~trine.Balancer` records of each call: pending counts, latency, ejection.

:class:`_Records` is a base of :class:`~trine.Balancer` (not a separate
object): a call's bookkeeping is reached as ``self._succeeded`` and
``self._finish``, as it always was, with no call in between.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import trio

from .._util import NotAwaitableError
from ._ejection import OutlierEjection
from ._endpoint import _Endpoint

__all__ = ["_Records"]

_current_time: Final = trio.current_time
_exp: Final = math.exp


class _Records:
    """The balancer's books of each endpoint's calls, latency estimate and ejection."""

    __slots__ = ()

    _decay: float
    _draining: list[_Endpoint]
    _eject_matches: Callable[[BaseException], bool] | None
    _ejection: OutlierEjection | None
    _endpoints: list[_Endpoint]

    # ------------------------------------------------------------ bookkeeping

    def _begin(self, endpoint: _Endpoint, now: float) -> None:
        endpoint.pending += 1
        endpoint.started += now
        endpoint.calls += 1

    def _forget(self, endpoint: _Endpoint, start: float) -> None:
        """Undo :meth:`_begin` for a call that never ran."""
        endpoint.calls -= 1
        self._unpend(endpoint, start)

    def _unpend(self, endpoint: _Endpoint, start: float) -> None:
        pending = endpoint.pending = endpoint.pending - 1
        endpoint.started = endpoint.started - start if pending else 0.0
        if not pending and endpoint.removed and endpoint in self._draining:
            self._draining.remove(endpoint)

    def _succeeded(self, endpoint: _Endpoint, start: float) -> None:
        """:meth:`_finish` for a call that returned, with its helpers inlined (every
        successful call takes this path)."""
        now = _current_time()
        pending = endpoint.pending = endpoint.pending - 1
        if pending:
            endpoint.started -= start
        else:
            endpoint.started = 0.0
            if endpoint.removed and endpoint in self._draining:
                self._draining.remove(endpoint)
        endpoint.consecutive = 0
        elapsed = now - start
        ewma = endpoint.ewma
        if ewma is None:
            endpoint.ewma = elapsed
        else:
            weight = _exp((endpoint.stamp - now) / self._decay)
            current = ewma * weight
            endpoint.ewma = elapsed if elapsed > current else current + elapsed * (1.0 - weight)
        endpoint.stamp = now

    def _finish(self, endpoint: _Endpoint, start: float, error: BaseException | None) -> None:
        """Record how a call on *endpoint* that started at *start* ended."""
        if error is None:
            self._succeeded(endpoint, start)
            return
        now = _current_time()
        self._unpend(endpoint, start)
        elapsed = now - start
        if not isinstance(error, Exception) or isinstance(error, NotAwaitableError):
            return  # cancelled, interrupted, or a programming error: not the endpoint's doing
        endpoint.failures += 1
        self._observe(endpoint, now, elapsed, success=False)
        matches = self._eject_matches
        if matches is not None:
            if matches(error):
                endpoint.consecutive += 1
                assert self._ejection is not None
                if endpoint.consecutive >= self._ejection.consecutive_failures:
                    self._eject(endpoint, now)
            else:
                endpoint.consecutive = 0

    def _observe(self, endpoint: _Endpoint, now: float, elapsed: float, *, success: bool) -> None:
        """Fold one call's latency into the endpoint's peak EWMA."""
        ewma = endpoint.ewma
        if ewma is None:
            # The first answer sets the estimate. A first call that failed must not
            # leave the endpoint looking free to try: it is taken to be as slow as
            # the slowest endpoint known (or as its own failure, if slower).
            endpoint.ewma = elapsed if success else max(elapsed, self._slowest(now))
            endpoint.stamp = now
            return
        weight = _exp((endpoint.stamp - now) / self._decay)
        current = ewma * weight
        if elapsed > current:
            endpoint.ewma = elapsed  # the peak: a slower answer counts at once
        elif success:
            endpoint.ewma = current + elapsed * (1.0 - weight)
        else:
            return  # a fast failure says nothing about the latency
        endpoint.stamp = now

    def _slowest(self, now: float) -> float:
        """The highest latency estimate among the endpoints, decayed to *now* (0 if none)."""
        decay = self._decay
        return max(
            (
                other.ewma * _exp((other.stamp - now) / decay)
                for other in self._endpoints
                if other.ewma is not None
            ),
            default=0.0,
        )

    def _eject(self, endpoint: _Endpoint, now: float) -> None:
        rule = self._ejection
        assert rule is not None
        if endpoint.removed or endpoint.ejected_until is not None:
            return
        ejected = sum(
            1
            for other in self._endpoints
            if other.ejected_until is not None and now < other.ejected_until
        )
        if ejected >= max(1, int(rule.max_ejected * len(self._endpoints))):
            return  # too many out already: it stays in (and ejects at its next failure)
        if endpoint.back_at is not None:
            served = now - endpoint.back_at
            endpoint.level = max(0, endpoint.level - int(served // rule.base_time))
        endpoint.level += 1
        endpoint.ejected_until = now + min(rule.base_time * endpoint.level, rule.max_time)
        endpoint.ejections += 1
        endpoint.consecutive = 0
