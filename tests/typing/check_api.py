"""Checked by mypy --strict, never run by pytest: the public API's types."""

from __future__ import annotations

from typing import assert_type

import trine
import trine.testing

assert_type(trine.__version__, str)
assert_type(trine.TrineError("x"), trine.TrineError)
probe = trine.testing.ConcurrencyProbe()
assert_type(probe.peak, int)

breaker = trine.CircuitBreaker(name="api")
assert_type(breaker.state, trine.CircuitState)
assert_type(breaker.statistics().failure_rate, float | None)


async def _fetch(url: str, retries: int) -> bytes:
    return b""


async def _check_breaker() -> None:
    assert_type(await breaker.call(_fetch, "https://x", 3), bytes)
    guarded = breaker(_fetch)
    assert_type(await guarded("https://x", retries=3), bytes)
    service = trine.testing.FakeService(latency=0.1)
    assert_type(await service.call("GET"), int)
    assert_type(service.statistics().peak_concurrency, int)
