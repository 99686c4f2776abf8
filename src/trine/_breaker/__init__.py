"""CircuitBreaker: stop calling a service that is failing, and probe it before trusting it again."""

from ._breaker import CircuitBreaker as CircuitBreaker
from ._breaker import CircuitBreakerStatistics as CircuitBreakerStatistics
from ._breaker import CircuitState as CircuitState

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerStatistics",
    "CircuitState",
]
