"""Checked by mypy --strict, never run by pytest: the public API's types."""

from __future__ import annotations

from typing import assert_type

import trine
import trine.testing

assert_type(trine.__version__, str)
assert_type(trine.TrineError("x"), trine.TrineError)
probe = trine.testing.ConcurrencyProbe()
assert_type(probe.peak, int)


async def _policy_types() -> None:
    async def fetch(url: str, retries: int) -> bytes:
        return b""

    policy = trine.Policy(timeout=1.0)
    assert_type(await policy.call(fetch, "u", 3), bytes)
    wrapped = policy(fetch)
    assert_type(await wrapped("u", retries=3), bytes)
    assert_type(policy.evolve(timeout=2.0), trine.Policy)
    assert_type(policy.layers, tuple[str, ...])
    await policy.call(fetch, "u")  # type: ignore[arg-type]  # a missing argument is caught
