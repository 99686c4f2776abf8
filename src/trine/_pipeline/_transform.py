"""map, filter, tap and enumerate: one worker loop, per item take -> call -> keep -> deliver.

This is the pipeline's hot path. A worker takes the next waiting item, calls
the function (:mod:`._call`), decides what the item becomes (the kind's
step: ``map`` keeps the result, ``filter`` the item if the result is true,
``tap`` and ``enumerate``'s counter the item...), and hands it downstream.
It yields to Trio only when it must wait -- for an item, inside the
function, or for room downstream -- so items that are ready together move
on in one trip through the scheduler.

Unordered stages only; ``ordered=True`` is :mod:`._ordered`, ``key=`` with
several workers is :mod:`._keyed` (whose workers run this loop on their queue).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ._call import Blocked

if TYPE_CHECKING:
    from ._buffer import Buffer
    from ._stage import StageRun

__all__ = ["transform_worker"]


async def transform_worker(stage: StageRun, inputs: Buffer) -> None:
    """Process the items of *inputs* one by one until it ends."""
    inputs.arrived()
    # Locals instead of attribute look-ups, and put_nowait before deliver():
    # together about a fifth of the per-item cost in the pipeline benchmark.
    items = inputs.items
    take = inputs.take
    call_item = stage.call_item
    put_nowait = stage.output.put_nowait
    keeps_item = stage.stage.kind in ("filter", "tap")
    is_filter = stage.stage.kind == "filter"
    now = trio.lowlevel.current_clock().current_time  # trio.current_time, minus two calls
    record = stage.latency.record
    # When the current item's work began: the end of the previous item's,
    # unless the worker waited in between.
    started = now()
    while True:
        # Take the next item.
        if not items:
            if not await inputs.wait_item():
                return
            started = now()
        item = take()
        stage.items_in += 1
        # Call the function.
        try:
            result = call_item(item)
            if type(result) is Blocked:
                result = await result.finish(stage, inputs)
        except Exception as exc:
            record(now() - started)
            if not await stage.fail_item(item, exc, inputs):
                return
            started = now()
            continue
        finished = now()
        record(finished - started)
        started = finished
        # The kind's step: what goes on.
        if keeps_item:
            if is_filter and not result:
                continue
            result = item
        # Deliver it.
        if put_nowait(result):
            stage.items_out += 1
        else:
            await stage.deliver(result, inputs)
            started = now()
