"""batch: items grouped into lists, by size, by time since a list's first item, or at the end."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from ._stage import StageRun

__all__ = ["batch_worker"]


async def batch_worker(stage: StageRun) -> None:
    """The batch stage's one worker: fill a list, hand it on when it is full or its time is up."""
    size = stage.stage.size
    timeout = math.inf if stage.stage.timeout is None else stage.stage.timeout
    inputs = stage.inputs
    items = inputs.items
    now = trio.lowlevel.current_clock().current_time
    record = stage.latency.record
    batch: list[Any] = []
    first_at = 0.0

    async def hand_on() -> None:
        nonlocal batch
        ready, batch = batch, []
        await stage.deliver(ready, inputs)
        record(now() - first_at)

    while True:
        if not items:
            if not batch:
                more = await inputs.wait_item()
            else:
                with trio.move_on_at(first_at + timeout) as waiting:
                    more = await inputs.wait_item()
                if waiting.cancelled_caught:  # a partial list's time is up
                    await hand_on()
                    continue
            if not more:
                break
        item = inputs.take()
        stage.items_in += 1
        if not batch:
            first_at = now()
        batch.append(item)
        if len(batch) >= size:
            await hand_on()
    if batch:
        await hand_on()
