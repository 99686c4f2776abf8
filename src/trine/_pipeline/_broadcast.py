"""broadcast: every item to every branch, in turn, so the slowest branch sets the pace.

The broadcast stage's task opens a nursery holding a distributor and the
stages of every branch. The distributor writes each branch's first buffer;
each branch's last stage (or the distributor, for a branch with no stages)
writes the broadcast's output, so the output ends when every branch has.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

import trio

from ._buffer import END

if TYPE_CHECKING:
    from ._stage import StageRun

__all__ = ["run_broadcast"]


async def run_broadcast(stage: StageRun) -> None:
    """The broadcast stage's task: the distributor and every branch's stages."""
    async with trio.open_nursery() as nursery:
        stage.nursery = nursery
        nursery.start_soon(_distribute, stage, name=f"{stage.stage.name} distributor")
        for branch_runs in stage.branch_runs:
            for branch_run in branch_runs:
                nursery.start_soon(
                    branch_run.run_stage, name=f"trine.Pipeline stage {branch_run.stage.name!r}"
                )


async def _distribute(stage: StageRun) -> None:
    """Hand every item to every branch, in turn."""
    inputs = stage.inputs
    entries = stage.branch_entries
    now = trio.lowlevel.current_clock().current_time
    record = stage.latency.record
    with ExitStack() as writing:
        for entry in entries:
            writing.enter_context(entry.producing())
        while (item := await inputs.get()) is not END:
            stage.items_in += 1
            started = now()
            for entry in entries:
                if not entry.put_nowait(item):
                    await entry.put(item)
                stage.items_out += 1
            record(now() - started)
