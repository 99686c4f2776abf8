"""Checked by mypy --strict, never run by pytest: the public API's types."""

from __future__ import annotations

from typing import assert_type

import trine
import trine.testing

assert_type(trine.__version__, str)
assert_type(trine.TrineError("x"), trine.TrineError)
probe = trine.testing.ConcurrencyProbe()
assert_type(probe.peak, int)


async def _retry_types() -> None:
    retry = trine.Retry(3, on=OSError, backoff=trine.Backoff.constant(1.0))

    async def fetch(url: str, *, limit: float = 1.0) -> bytes:
        return b""

    assert_type(await retry.call(fetch, "u"), bytes)
    decorated = retry(fetch)
    assert_type(await decorated("u", limit=2.0), bytes)
    async for attempt in retry:
        assert_type(attempt, trine.RetryAttempt)
        assert_type(attempt.number, int)
        with attempt:
            pass
    assert_type(retry.statistics(), trine.RetryStatistics)
    assert_type(trine.RetryBudget().try_withdraw(), bool)
    assert_type(trine.RetryBudget().statistics(), trine.RetryBudgetStatistics)


async def _retry_call_checks_arguments() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    assert_type(await trine.Retry().call(add, 1, 2), int)
    await trine.Retry().call(add, 1, "2")  # type: ignore[arg-type]
