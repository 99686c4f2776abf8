"""Which endpoint takes a call: availability, the four strategies, and the refusal when none may.

:class:`_Choice` is a base of :class:`~trine.Balancer` (not a separate
object): ``Balancer.call`` reaches ``self._choose`` as it always did, with
no call in between, and the peak-EWMA common case stays inline in it.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Hashable
from typing import Any, Final, NoReturn

from trio.lowlevel import cancel_shielded_checkpoint

from .._breaker import CircuitBreaker, CircuitState
from .._errors import CircuitOpenError, NoEndpointError
from ._endpoint import _Endpoint

__all__ = ["_Choice"]

_CoroutineType: Final = types.CoroutineType
_exp: Final = math.exp
_CLOSED: Final = CircuitState.CLOSED
_HALF_OPEN: Final = CircuitState.HALF_OPEN


class _Choice:
    """The balancer's choice of an endpoint for each call, among the available ones."""

    # Its own state's slots (the rest are Balancer's): the strategies' cursor
    # and the count of refusals.
    __slots__ = ("_cursor", "_refusals")

    _cursor: int
    _decay: float
    _endpoints: list[_Endpoint]
    _name: str | None
    _next_sweep: float
    _random: Callable[[], float]
    _refusals: int
    _strategy: str

    # ------------------------------------------------------------ availability

    def _available(self, endpoint: _Endpoint, now: float) -> bool:
        """Whether a call may go to *endpoint* now (its breaker would admit it)."""
        if endpoint.down:
            return False
        until = endpoint.ejected_until
        if until is not None:
            if now < until:
                return False
            endpoint.ejected_until = None  # back in service, from the moment it was due
            endpoint.back_at = until
            endpoint.consecutive = 0
        breaker = endpoint.breaker
        if breaker is None:
            return True
        state = breaker.state
        if state is _CLOSED:
            return True
        if state is _HALF_OPEN:
            return breaker.statistics().half_open_in_flight < breaker.half_open_max_calls
        return False

    def _back_in(self, endpoint: _Endpoint, now: float) -> float:
        """Seconds until an unavailable *endpoint* may take a call again (the longest reason)."""
        wait = 0.0
        if endpoint.down:
            wait = max(wait, self._next_sweep - now)
        until = endpoint.ejected_until
        if until is not None and until > now:
            wait = max(wait, until - now)
        breaker = endpoint.breaker
        if breaker is not None and not self._breaker_admits(breaker):
            wait = max(wait, breaker.statistics().retry_after)
        return wait

    @staticmethod
    def _breaker_admits(breaker: CircuitBreaker) -> bool:
        state = breaker.state
        if state is _CLOSED:
            return True
        if state is _HALF_OPEN:
            return breaker.statistics().half_open_in_flight < breaker.half_open_max_calls
        return False

    # ------------------------------------------------------------------ choice

    def _cost(self, endpoint: _Endpoint, now: float) -> float:
        """peak_ewma's cost: the latency estimate times ``pending + 1``."""
        pending = endpoint.pending
        ewma = endpoint.ewma
        if ewma is None:
            # Never answered: worth trying while idle, to be avoided while busy.
            return 0.0 if not pending else math.inf
        estimate = ewma * _exp((endpoint.stamp - now) / self._decay)
        if pending:
            age = now - endpoint.started / pending
            if age > estimate:
                estimate = age
        return estimate * (pending + 1)

    def _choose(
        self,
        now: float,
        where: Callable[[Any], object] | None,
        avoid: frozenset[Hashable] | None,
        exclude: set[Hashable] | None,
    ) -> _Endpoint | None:
        """The endpoint for a call, or ``None`` if none is available.

        *avoid* is soft (used only if no other is available), *exclude* is not.
        """
        endpoints = self._endpoints
        strategy = self._strategy
        if where is None and avoid is None and exclude is None:
            # The common case, without building a list of candidates.
            count = len(endpoints)
            if strategy == "peak_ewma" and count >= 2:
                rand = self._random
                first = int(rand() * count)
                second = int(rand() * (count - 1))
                if second >= first:
                    second += 1
                one = endpoints[first]
                other = endpoints[second]
                # Available at a glance (no breaker, ejection or failed check), or asked.
                if (
                    (one.breaker is None and one.ejected_until is None and not one.down)
                    or self._available(one, now)
                ) and (
                    (other.breaker is None and other.ejected_until is None and not other.down)
                    or self._available(other, now)
                ):
                    # _cost(one) <= _cost(other), inlined: this is every call's path.
                    decay = self._decay
                    costs = []
                    for endpoint in (one, other):
                        pending = endpoint.pending
                        ewma = endpoint.ewma
                        if ewma is None:
                            costs.append(math.inf if pending else 0.0)
                            continue
                        estimate = ewma * _exp((endpoint.stamp - now) / decay)
                        if pending:
                            age = now - endpoint.started / pending
                            if age > estimate:
                                estimate = age
                        costs.append(estimate * (pending + 1))
                    return one if costs[0] <= costs[1] else other
            elif strategy == "round_robin" and count:
                cursor = self._cursor
                for step in range(count):
                    index = (cursor + step) % count
                    if self._available(endpoints[index], now):
                        self._cursor = index + 1
                        return endpoints[index]
                return None
        candidates: list[int] = []
        spare: list[int] = []
        for index, endpoint in enumerate(endpoints):
            key = endpoint.key
            if exclude is not None and key in exclude:
                continue
            if where is not None and not self._accepts(where, key):
                continue
            if not self._available(endpoint, now):
                continue
            if avoid is not None and key in avoid:
                spare.append(index)
            else:
                candidates.append(index)
        if not candidates:
            if not spare:
                return None
            candidates = spare
        return self._by_strategy(candidates, now)

    @staticmethod
    def _accepts(where: Callable[[Any], object], key: Any) -> bool:
        answer = where(key)
        if type(answer) is _CoroutineType:
            answer.close()
            raise TypeError(
                f"where must be a plain function returning true or false, but calling it "
                f"returned {answer!r}: trine calls it without awaiting"
            )
        return bool(answer)

    def _by_strategy(self, candidates: list[int], now: float) -> _Endpoint:
        endpoints = self._endpoints
        strategy = self._strategy
        if strategy == "peak_ewma":
            count = len(candidates)
            if count == 1:
                return endpoints[candidates[0]]
            rand = self._random
            first = int(rand() * count)
            second = int(rand() * (count - 1))
            if second >= first:
                second += 1
            one = endpoints[candidates[first]]
            other = endpoints[candidates[second]]
            return one if self._cost(one, now) <= self._cost(other, now) else other
        if strategy == "weighted":
            total = 0.0
            best: _Endpoint | None = None
            for index in candidates:
                endpoint = endpoints[index]
                endpoint.current += endpoint.weight
                total += endpoint.weight
                if best is None or endpoint.current > best.current:
                    best = endpoint
            assert best is not None
            best.current -= total
            return best
        cursor = self._cursor
        if strategy == "round_robin":
            chosen = next((index for index in candidates if index >= cursor), candidates[0])
        else:  # least_pending: the fewest pending, ties in turn from the cursor
            size = len(endpoints)
            chosen = min(
                candidates, key=lambda index: (endpoints[index].pending, (index - cursor) % size)
            )
        self._cursor = chosen + 1
        return endpoints[chosen]

    async def _refuse(self, now: float, where: Callable[[Any], object] | None) -> NoReturn:
        """No endpoint may take the call: say why, after a checkpoint (as a breaker does)."""
        self._refusals += 1
        error = self._refusal(now, where)
        await cancel_shielded_checkpoint()
        raise error

    def _refusal(self, now: float, where: Callable[[Any], object] | None) -> Exception:
        """Why no endpoint may take a call now: no endpoint at all, or none available."""
        matching = [
            endpoint
            for endpoint in self._endpoints
            if where is None or self._accepts(where, endpoint.key)
        ]
        error: Exception
        if not matching:
            count = len(self._endpoints)
            if where is None:
                error = NoEndpointError("the balancer has no endpoints", endpoints=count)
            else:
                error = NoEndpointError(
                    f"no endpoint of the {count} in the balancer matches where={where!r}",
                    endpoints=count,
                )
        else:
            retry_after = min(self._back_in(endpoint, now) for endpoint in matching)
            error = CircuitOpenError(self._name, retry_after, "open")
            error.add_note(
                f"none of the balancer's {len(matching)} endpoints that may take this call "
                f"is available (open, ejected or unhealthy)"
            )
        return error
