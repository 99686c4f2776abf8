"""What a :class:`~trine.Balancer` knows of one endpoint: a plain, slotted record."""

from __future__ import annotations

from typing import Any, final

from .._breaker import CircuitBreaker

__all__ = ["_Endpoint"]


@final
class _Endpoint:
    """What the balancer knows of one endpoint."""

    __slots__ = (
        "back_at",
        "breaker",
        "calls",
        "checking",
        "consecutive",
        "current",
        "down",
        "ejected_until",
        "ejections",
        "ewma",
        "failures",
        "key",
        "level",
        "pending",
        "removed",
        "stamp",
        "started",
        "weight",
    )

    def __init__(self, key: Any, weight: float, breaker: CircuitBreaker | None) -> None:
        self.key = key
        self.weight = weight
        self.breaker = breaker
        self.pending = 0
        self.started = 0.0
        """The start times of the pending calls, summed (their mean age is a latency floor)."""
        self.ewma: float | None = None
        self.stamp = 0.0
        """When :attr:`ewma` was last updated."""
        self.calls = 0
        self.failures = 0
        self.consecutive = 0
        self.ejected_until: float | None = None
        self.ejections = 0
        self.level = 0
        """Ejections counted towards the next ejection's length."""
        self.back_at: float | None = None
        self.current = 0.0
        """Smooth weighted round robin's running weight."""
        self.down = False
        self.checking = False
        self.removed = False
