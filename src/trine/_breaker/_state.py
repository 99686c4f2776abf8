"""CircuitState: the four states of a :class:`~trine.CircuitBreaker`."""

from __future__ import annotations

import enum

__all__ = ["CircuitState"]


class CircuitState(enum.StrEnum):
    """The states of a :class:`CircuitBreaker`. Each member is also its string value."""

    CLOSED = "closed"
    """Calls pass through; their outcomes are counted."""
    OPEN = "open"
    """Calls are rejected at once until ``reset_timeout`` has passed."""
    HALF_OPEN = "half_open"
    """A few probe calls are let through to test whether the service recovered."""
    FORCED_OPEN = "forced_open"
    """Opened by :meth:`CircuitBreaker.force_open`: every call is rejected until
    :meth:`CircuitBreaker.reset`; the reset timeout does not apply."""
