"""Checked by mypy --strict, never run by pytest: the public API's types."""

from __future__ import annotations

from typing import assert_type

import trine
import trine.testing

assert_type(trine.__version__, str)
assert_type(trine.TrineError("x"), trine.TrineError)
probe = trine.testing.ConcurrencyProbe()
assert_type(probe.peak, int)


async def _check_map() -> None:
    from collections.abc import AsyncIterator

    async def length(text: str) -> int:
        return len(text)

    async def words() -> AsyncIterator[str]:
        yield "a"

    async with trine.amap(length, ["a", "bb"], limit=2) as lengths:
        assert_type(lengths, AsyncIterator[int])
        async for n in lengths:
            assert_type(n, int)
    async with trine.amap(length, words(), limit=2, ordered=False) as streamed:
        assert_type(streamed, AsyncIterator[int])
    assert_type(await trine.map_all(length, ["a"], limit=2), list[int])
    assert_type(await trine.map_all(length, words(), limit=2, ordered=False), list[int])
    assert_type(await trine.for_each(length, ["a"], limit=2), None)
