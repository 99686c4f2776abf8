"""Checked by mypy --strict, never run by pytest: the public API's types."""

from __future__ import annotations

from typing import assert_type

import trine
import trine.testing

assert_type(trine.__version__, str)
assert_type(trine.TrineError("x"), trine.TrineError)
probe = trine.testing.ConcurrencyProbe()
assert_type(probe.peak, int)
rate_limiter = trine.RateLimiter(10, per=1.0, burst=2)
assert_type(rate_limiter.try_acquire(), bool)
assert_type(rate_limiter.try_acquire(0.5, key="host"), bool)
assert_type(rate_limiter.statistics(), trine.RateLimiterStatistics)
assert_type(rate_limiter.statistics().admitted_cost, float)
assert_type(rate_limiter.rate, float)
window_limiter = trine.SlidingWindowLimiter(100, 60.0)
assert_type(window_limiter.statistics(), trine.SlidingWindowLimiterStatistics)
assert_type(window_limiter.statistics().admitted_cost, int)
assert_type(trine.RateLimitExceeded("x", retry_after=1.0).retry_after, float)


async def _check_acquire() -> None:
    assert_type(await rate_limiter.acquire(2, key=("host", 443)), None)
    assert_type(await window_limiter.acquire(key=None), None)
