"""Checked by mypy --strict, never run by pytest: the public API's types."""

from __future__ import annotations

from typing import assert_type

import trine
import trine.testing

assert_type(trine.__version__, str)
assert_type(trine.TrineError("x"), trine.TrineError)
probe = trine.testing.ConcurrencyProbe()
assert_type(probe.peak, int)


async def _int() -> int:
    return 1


async def _str_of(x: int) -> str:
    return str(x)


async def _fan_types() -> None:
    import functools

    import outcome

    assert_type(await trine.gather(_int, _int), list[int])
    assert_type(await trine.gather(functools.partial(_str_of, 1)), list[str])
    assert_type(await trine.settle(_int), list[outcome.Outcome[int]])
    assert_type(await trine.race(_int, _int), int)
    assert_type(await trine.hedge(_str_of, 1, delay=0.1), str)
