"""Guards shared by every process through Redis, and Redis Streams sources and sinks for pipelines.

trine's own guards are exact inside one process; ten processes behind one API
quota would let ten times the rate through. The guards here keep their state
in Redis and decide in one Lua script per step, timed by the server's clock,
so a whole fleet shares one rate, one breaker, one set of slots and one retry
budget, with the guarantees stated on each class. They have the shapes the
local guards have (``Policy(rate=..., breaker=..., limiter=...)``, ``policy=``
on maps, stages and graph nodes), and each says what it does when the server
is out of reach (``on_unavailable=``).

Needs the ``redis`` extra (``pip install "trine[redis]"``: coredis, which runs
on Trio) and a Redis server (5 or newer; 6.2 or newer for the stream source,
which reclaims with ``XAUTOCLAIM``). The client is yours: make it, and use the
guards inside its ``async with``::

    async with coredis.Redis(host="redis.internal") as client:
        quota = trine.redis.RateLimiter(client, "partner-api", 200)
        breaker = trine.redis.CircuitBreaker(client, "partner-api")
        policy = trine.Policy(rate=quota, breaker=breaker, timeout=2.0)
"""

from __future__ import annotations

try:
    import coredis as _coredis
except ImportError as exc:  # pragma: no cover - the extra is part of the test install
    raise ImportError('trine.redis needs coredis: pip install "trine[redis]"') from exc

from ._breaker import CircuitBreaker as CircuitBreaker
from ._breaker import CircuitBreakerStatistics as CircuitBreakerStatistics
from ._breaker import FleetBreakerState as FleetBreakerState
from ._budget import RetryBudget as RetryBudget
from ._budget import RetryBudgetSyncStatistics as RetryBudgetSyncStatistics
from ._entry import StreamEntry as StreamEntry
from ._errors import LeaseLost as LeaseLost
from ._errors import RedisUnavailable as RedisUnavailable
from ._gcra import RateLimiter as RateLimiter
from ._gcra import RateLimiterStatistics as RateLimiterStatistics
from ._semaphore import Lease as Lease
from ._semaphore import Semaphore as Semaphore
from ._semaphore import SemaphoreStatistics as SemaphoreStatistics
from ._sink import StreamSink as StreamSink
from ._sink import StreamSinkStatistics as StreamSinkStatistics
from ._sink import stream_sink as stream_sink
from ._source import StreamSource as StreamSource
from ._source import StreamSourceStatistics as StreamSourceStatistics
from ._source import stream_source as stream_source
from ._window import SlidingWindowLimiter as SlidingWindowLimiter
from ._window import SlidingWindowLimiterStatistics as SlidingWindowLimiterStatistics

del _coredis

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerStatistics",
    "FleetBreakerState",
    "Lease",
    "LeaseLost",
    "RateLimiter",
    "RateLimiterStatistics",
    "RedisUnavailable",
    "RetryBudget",
    "RetryBudgetSyncStatistics",
    "Semaphore",
    "SemaphoreStatistics",
    "SlidingWindowLimiter",
    "SlidingWindowLimiterStatistics",
    "StreamEntry",
    "StreamSink",
    "StreamSinkStatistics",
    "StreamSource",
    "StreamSourceStatistics",
    "stream_sink",
    "stream_source",
]


def _fixup_module_metadata(module_name: str, namespace: dict[str, object]) -> None:
    """Make every public name report ``trine.redis`` as its module, as trine's own do."""
    for name in namespace["__all__"]:  # type: ignore[attr-defined]
        obj = namespace[name]
        if getattr(obj, "__module__", "").startswith("trine.redis."):
            obj.__module__ = module_name


_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
