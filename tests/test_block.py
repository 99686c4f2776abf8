"""The block of amap, a Pipeline, a TaskPool and the services: what it raised leaves as itself."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
import trio
import trio.testing

import trine


async def _slow(item: object) -> object:
    await trio.sleep(10.0)
    return item


async def _load_many(keys: list[int]) -> list[int]:
    return keys


async def _start_one(pool: trine.TaskPool[Any, Any]) -> None:
    await pool.start(_slow, 1)


def _amap() -> AbstractAsyncContextManager[object]:
    return trine.amap(_slow, range(5), limit=2)


def _pipeline() -> AbstractAsyncContextManager[object]:
    return trine.Pipeline.source(range(5)).map(_slow, workers=2).open()


BLOCKS: dict[str, Callable[[], AbstractAsyncContextManager[Any]]] = {
    "amap": _amap,
    "Pipeline.open": _pipeline,
    "TaskPool": lambda: trine.TaskPool(limit=2),
    "Batcher": lambda: trine.Batcher(_load_many),
    "SingleFlight": trine.SingleFlight,
    "AsyncCache": lambda: trine.AsyncCache(maxsize=10),
}


@pytest.mark.parametrize("name", list(BLOCKS))
async def test_an_exception_group_the_block_raises_leaves_as_that_object(
    name: str, autojump_clock: trio.testing.MockClock
) -> None:
    """A group from the block is the object the block raised, not the copy a cancel scope makes.

    Trio rebuilds a group as it passes a cancel scope (to take out its own
    Cancelled), so the block's group is found by its leaves, and the
    original object, the one the caller can compare, leaves.
    """
    mine = ExceptionGroup("mine", [KeyError(1), OSError(2)])

    async def block() -> None:
        async with BLOCKS[name]() as opened:
            if isinstance(opened, trine.TaskPool):
                await _start_one(opened)
            await trio.sleep(1.0)
            raise mine

    with pytest.raises(ExceptionGroup) as info:
        await block()
    assert info.value is mine


@pytest.mark.parametrize("name", list(BLOCKS))
async def test_the_blocks_cancelled_leaves_as_itself(
    name: str, autojump_clock: trio.testing.MockClock
) -> None:
    """Cancelled from outside while background work runs, the block leaves with a bare Cancelled."""
    seen: list[BaseException] = []
    with trio.move_on_after(1.0) as scope:
        try:
            async with BLOCKS[name]() as opened:
                if isinstance(opened, trine.TaskPool):
                    await _start_one(opened)
                await trio.sleep(5.0)
        except BaseException as error:  # recorded and re-raised: the scope must catch it
            seen.append(error)
            raise
    assert scope.cancelled_caught
    assert [type(error) for error in seen] == [trio.Cancelled]
    assert trio.current_time() == 1.0
