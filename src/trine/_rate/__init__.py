"""Rate limiters: how many calls may *start* per unit of time.

Two limiters share one shape (``await acquire(cost=1, key=None)``,
``try_acquire(...) -> bool``, ``acquire_nowait(...)``):

* :class:`RateLimiter` (``_gcra``) -- the generic cell rate algorithm: evenly
  spaced admissions with a burst, O(1) memory per key.
* :class:`SlidingWindowLimiter` (``_window``) -- "at most *limit* in any
  *window* seconds", exactly, from a log of recent admissions (O(limit)
  memory per key).

Both serve waiters strictly first in, first out per key, through the queue in
``_admissions``: a waiter that is cancelled never took anything, so it cannot
delay the ones behind it, and only the head of a key's queue sleeps on the
clock.
"""

from ._gcra import RateLimiter as RateLimiter
from ._gcra import RateLimiterStatistics as RateLimiterStatistics
from ._window import SlidingWindowLimiter as SlidingWindowLimiter
from ._window import SlidingWindowLimiterStatistics as SlidingWindowLimiterStatistics

__all__ = [
    "RateLimiter",
    "RateLimiterStatistics",
    "SlidingWindowLimiter",
    "SlidingWindowLimiterStatistics",
]
