"""Checked by mypy --strict, never run by pytest: the public API's types."""

from __future__ import annotations

from typing import assert_type

import trine
import trine.testing

assert_type(trine.__version__, str)
assert_type(trine.TrineError("x"), trine.TrineError)
probe = trine.testing.ConcurrencyProbe()
assert_type(probe.peak, int)


async def _pipeline_types() -> None:
    async def fetch(url: str) -> bytes:
        return url.encode()

    pipe = trine.Pipeline.source(["a", "b"]).map(fetch).map(len)
    assert_type(pipe, trine.Pipeline[int])
    assert_type(await pipe.collect(), list[int])
    assert_type(pipe.batch(2), trine.Pipeline[list[int]])
    assert_type(pipe.enumerate(), trine.Pipeline[tuple[int, int]])
    assert_type(trine.Pipeline.source(["a"]).flat_map(list), trine.Pipeline[str])
    assert_type(trine.merge(pipe, pipe), trine.Pipeline[int])
    async with pipe.open() as out:
        async for item in out:
            assert_type(item, int)
    assert_type(pipe.statistics(), trine.PipelineStatistics)
