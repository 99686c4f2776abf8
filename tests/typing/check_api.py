"""Checked by mypy --strict, never run by pytest: the public API's types."""

from __future__ import annotations

from typing import assert_type

import trio

import trine
import trine.testing

assert_type(trine.__version__, str)
assert_type(trine.TrineError("x"), trine.TrineError)
probe = trine.testing.ConcurrencyProbe()
assert_type(probe.peak, int)

limiter: trine.Limiter = trine.PriorityLimiter(1)
limiter = trine.KeyedLimiter(1).for_key("k")
limiter = trine.Bulkhead(1)
limiter = trine.WeightedSemaphore(1)
limiter = trine.AdaptiveLimiter(initial=1, max_limit=2)
assert_type(trine.WeightedSemaphore(2).statistics().borrowed_tokens, int)
assert_type(trine.KeyedLimiter(2).statistics().total_tokens, int | None)


async def _limiters() -> None:
    async with trine.AdaptiveLimiter(initial=1, max_limit=2).hold() as permit:
        assert_type(permit, trine.AdaptivePermit)
    async with trine.acquire_all(trio.Lock(), trine.Bulkhead(1)) as nothing:
        assert_type(nothing, None)
    with trine.WeightedSemaphore(3).hold_nowait(2) as held:
        assert_type(held, None)
