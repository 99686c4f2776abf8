"""flat_map: each item becomes every item of what the function returns, handed on as it comes.

The worker takes an item and calls the function as :mod:`._transform` does,
then iterates the result -- an iterable, or an async iterable -- handing on
each output at once (nothing is collected first, so a long or endless result
holds one output at a time). A generator the function returned is closed by
the worker, in its own task, when it ends or fails or the run is cancelled.
In an ordered stage, the outputs go through the reorder window
(:meth:`~._ordered.ReorderWindow.hand_on`).
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

import trio

from ._call import Blocked

if TYPE_CHECKING:
    from ._buffer import Buffer
    from ._ordered import ReorderWindow
    from ._stage import StageRun

__all__ = ["flat_map_worker"]


async def flat_map_worker(stage: StageRun, inputs: Buffer) -> None:
    """Expand the items of *inputs* one by one until it ends."""
    inputs.arrived()
    window = stage.window
    items = inputs.items
    now = trio.lowlevel.current_clock().current_time
    record = stage.latency.record
    started = now()
    while True:
        # Take the next item (in an ordered stage, if the window has room for it).
        if window is not None and not window.reserve():
            await window.wait_for_room()
            started = now()
            continue
        if not items:
            if not await inputs.wait_item():
                if window is not None:
                    window.leave()
                return
            started = now()
        number = 0
        if window is not None:
            number = window.claim()
            window.kept[number] = deque()
        item = inputs.take()
        stage.items_in += 1
        # Call the function, then hand on what it produces.
        try:
            produced = stage.call_item(item)
            if type(produced) is Blocked:
                produced = await produced.finish(stage, inputs)
            await _expand(stage, inputs, produced, window, number)
        except Exception as exc:
            record(now() - started)
            if not await stage.fail_item(item, exc, inputs):
                return
        else:
            record(now() - started)
        if window is not None:
            # What the item kept and was not handed on yet goes on in its turn.
            await window.finish(number, window.kept.pop(number))
        started = now()


async def _expand(
    stage: StageRun, inputs: Buffer, produced: object, window: ReorderWindow | None, number: int
) -> None:
    """Hand on each output of *produced* as it comes; close it if it is a generator."""
    keep_at_most = stage.stage.buffer

    async def hand_on(output: Any) -> None:
        if window is None:
            await stage.deliver(output, inputs)
        else:
            await window.hand_on(number, output, keep_at_most)

    try:
        if isinstance(produced, AsyncIterable):
            stage.hand_off(inputs)  # iterating may block
            stage.busy += 1
            try:
                async for output in produced:
                    await hand_on(output)
            finally:
                stage.busy -= 1
        else:
            for output in produced:  # type: ignore[attr-defined]  # a TypeError is the item's failure
                await hand_on(output)
    finally:
        # Finalized here, in the worker, not later by the garbage collector.
        # Not shielded: if its clean-up blocks, a cancelled pipeline does not wait.
        if inspect.isasyncgen(produced):
            await produced.aclose()
        elif inspect.isgenerator(produced):
            produced.close()
