"""The frozen snapshots :meth:`Balancer.statistics` returns."""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

__all__ = ["BalancerStatistics", "EndpointStatistics"]

_E = TypeVar("_E")


@attrs.frozen
class EndpointStatistics(Generic[_E]):
    """One endpoint of a :class:`Balancer`, in :attr:`BalancerStatistics.endpoints`."""

    endpoint: _E
    """The endpoint itself."""
    state: str
    """``"available"``, ``"open"``, ``"half_open"`` or ``"forced_open"`` (its breaker's
    state, when that refuses calls), ``"ejected"``, ``"unhealthy"`` (its last health
    check failed) or ``"removed"`` (still finishing its calls)."""
    pending: int
    """Calls running on it now."""
    calls: int
    """Calls the strategy sent to it, ever (each hedged attempt counts)."""
    failures: int
    """Calls on it that raised an exception (cancellations not counted)."""
    latency: float | None
    """Its peak-EWMA latency estimate now, in seconds (``None`` before its first
    answer): what ``peak_ewma`` weighs, decayed since the last answer."""
    weight: float
    """Its weight (what ``weighted`` shares by)."""
    ejections: int
    """Times outlier ejection took it out."""
    ejected_for: float
    """Seconds until it is back if it is ejected now, else ``0.0``."""


@attrs.frozen
class BalancerStatistics(Generic[_E]):
    """A snapshot of a :class:`Balancer`, from :meth:`Balancer.statistics`."""

    strategy: str
    """The strategy that chooses the endpoints."""
    endpoints: tuple[EndpointStatistics[_E], ...]
    """One entry per endpoint, in the balancer's order, then the removed ones still
    finishing calls."""
    calls: int
    """Calls of :meth:`~Balancer.call` and :meth:`~Balancer.hedged_call` that got an endpoint."""
    refusals: int
    """Calls refused because no endpoint could take them."""
    rerouted: int
    """Calls that went to another endpoint than the ones this task's previous calls
    failed on (a retry outside the balancer, moved elsewhere)."""
    hedged_calls: int
    """Calls of :meth:`~Balancer.hedged_call` that started their first attempt."""
    hedges_started: int
    """Attempts started after the first, each on another endpoint."""
    hedges_won: int
    """Hedged calls answered by an attempt other than the first."""
    budget_refusals: int
    """Hedges the budget did not allow."""
