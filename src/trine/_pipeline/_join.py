"""zip and zip_latest: tuples made from the outputs of several pipelines.

A join's task writes the joined pipeline's first buffer. It opens a nursery
holding every input pipeline (its sources and stages, wired to write one
buffer per input, :data:`JOIN_BUFFER` items each) and reads those buffers:

- ``zip`` takes one item from each input in turn and hands on the tuple;
  when any input ends, so does the zip, and the inputs still running are
  cancelled (they are no longer needed), as Python's ``zip`` stops at the
  shortest input.
- ``zip_latest`` has one reader per input: each new item replaces that
  input's latest, and the tuple of every input's latest is handed on
  (once each input has one, unless ``partial``); it ends when every input
  has ended.

Either way the tuples are handed on with backpressure: a slow consumer slows
the inputs down (put :meth:`Pipeline.latest` after a ``zip_latest`` to
see only the newest tuple instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

import trio

from ._buffer import END, Buffer

if TYPE_CHECKING:
    from ._description import SourceState
    from ._run import Run
    from ._stage import StageRun

__all__ = ["JOIN_BUFFER", "JoinRun", "run_join"]

JOIN_BUFFER = 64
"""Items of one input that may wait for the join (as a stage's default buffer)."""


@final
class JoinRun:
    """One zip or zip_latest during a run: its input buffers and the tasks that write them."""

    __slots__ = ("default", "inputs", "joins", "kind", "output", "partial", "sources", "stages")

    def __init__(self, kind: str, output: Buffer, *, partial: bool, default: Any) -> None:
        self.kind = kind
        self.output = output
        """The buffer the join writes: the joined pipeline's first."""
        self.partial = partial
        self.default = default
        self.inputs: list[Buffer] = []
        """One buffer per input pipeline, in argument order."""
        # What the join's nursery starts, as the run's nursery does for the top level.
        self.sources: list[tuple[SourceState, Buffer]] = []
        self.stages: list[StageRun] = []
        self.joins: list[JoinRun] = []


async def run_join(run: Run, join: JoinRun) -> None:
    """The join's task: the input pipelines in its nursery, and the joining."""
    with join.output.producing():
        async with trio.open_nursery() as nursery:
            run.start_tasks(nursery, join)
            if join.kind == "zip":
                await _zip(join)
                nursery.cancel_scope.cancel()  # the inputs that are still running
            else:
                latest = _Latest(len(join.inputs), join.default)
                for number, buffer in enumerate(join.inputs):
                    nursery.start_soon(
                        _follow, join, latest, number, buffer, name="trine.Pipeline zip_latest"
                    )


async def _zip(join: JoinRun) -> None:
    """Hand on one tuple of one item per input, until any input ends."""
    inputs = join.inputs
    output = join.output
    while True:
        row = []
        for buffer in inputs:
            item = await buffer.get()
            if item is END:
                return
            row.append(item)
        joined = tuple(row)
        if not output.put_nowait(joined):
            await output.put(joined)


@final
class _Latest:
    """The newest item of every input of a zip_latest, and which inputs have none yet."""

    __slots__ = ("missing", "values")

    def __init__(self, count: int, default: Any) -> None:
        self.values = [default] * count
        self.missing = set(range(count))


async def _follow(join: JoinRun, latest: _Latest, number: int, buffer: Buffer) -> None:
    """zip_latest's reader of input *number*: each new item makes a new tuple."""
    values = latest.values
    missing = latest.missing
    output = join.output
    while (item := await buffer.get()) is not END:
        values[number] = item
        missing.discard(number)
        if missing and not join.partial:
            continue
        joined = tuple(values)
        if not output.put_nowait(joined):
            await output.put(joined)
