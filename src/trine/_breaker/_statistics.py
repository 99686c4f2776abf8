"""CircuitBreakerStatistics: the frozen snapshot :meth:`CircuitBreaker.statistics` returns."""

from __future__ import annotations

import attrs

from ._state import CircuitState

__all__ = ["CircuitBreakerStatistics"]


@attrs.frozen
class CircuitBreakerStatistics:
    """A snapshot of a :class:`CircuitBreaker`, from :meth:`CircuitBreaker.statistics`.

    The lifetime counters (``calls`` to ``rejections``) count every call since
    the breaker was made, including calls that finished after the breaker had
    moved on to another state; the window fields describe only what the
    current state is deciding on.
    """

    state: CircuitState
    """The state now (the reset timeout has been applied)."""
    calls: int
    """Calls admitted, ever."""
    successes: int
    """Admitted calls that returned, or raised an exception outside ``record``."""
    failures: int
    """Admitted calls that raised an exception matching ``record`` (and not ``ignore``)."""
    slow_calls: int
    """Successes and failures that took at least ``slow_call_duration`` (0 if it is unset)."""
    ignored: int
    """Admitted calls that raised an exception matching ``ignore``."""
    cancelled: int
    """Admitted calls ended by :exc:`trio.Cancelled` (or another non-``Exception``)."""
    rejections: int
    """Calls refused with :exc:`~trine.CircuitOpenError`, ever."""
    in_flight: int
    """Admitted calls that have not finished yet."""
    window_calls: int
    """Successes and failures in the current window (only while CLOSED; else 0)."""
    failure_rate: float | None
    """Failures / calls in the window, or ``None`` while fewer than ``minimum_calls``."""
    slow_call_rate: float | None
    """Slow calls / calls in the window, or ``None`` while fewer than ``minimum_calls``."""
    consecutive_failures: int
    """Failures since the last success while CLOSED."""
    half_open_in_flight: int
    """Probe slots taken now (only while HALF_OPEN; else 0)."""
    half_open_successes: int
    """Successful probes so far in this HALF_OPEN spell (only while HALF_OPEN; else 0)."""
    opened_at: float | None
    """:func:`trio.current_time` when the breaker last opened, or ``None`` while CLOSED."""
    retry_after: float
    """Seconds until a probe would be admitted: 0 when calls are admitted now,
    ``math.inf`` while forced open."""
