"""One run of a pipeline: wiring, lifecycle, and the one exception it raises.

A :class:`Run` is made by :meth:`Pipeline.open` from the description:

1. **Wiring** (:meth:`Run.__init__`): one :class:`~._buffer.Buffer` in front
   of every stage and one for the caller, each told how many tasks will
   write it -- the stage before it, or every source of a merge, or every
   branch of a broadcast. A zip's inputs each write a buffer of their own,
   read by the zip's task (:mod:`._join`), which runs them in its nursery.
2. **Lifecycle** (:meth:`Run.running`): one nursery holds a task per source
   and per stage; each stage's task opens a nursery for its workers. The
   ``async with pipe.open()`` block runs inside it; leaving the block stops
   the run (:meth:`Run.stop`).
3. **Errors** (:func:`merge_errors`): workers never raise for an item's
   failure -- they record it (:meth:`Run.fail`) and cancel the run -- so what
   the nursery raises is the block's own exception, an exception that is not
   an :exc:`Exception` (``KeyboardInterrupt``) from a stage, or the
   cancellations that follow either. The run raises the one that matters,
   bare.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, final

import trio

from .._block import leaves
from ._buffer import Buffer
from ._join import JOIN_BUFFER, JoinRun, run_join
from ._output import PipelineOutput
from ._source import read_source
from ._stage import StageRun
from ._statistics import PipelineStatistics

if TYPE_CHECKING:
    from .._errors import StageError
    from .._util import NotAwaitableError
    from ._description import SourceState, Stage

__all__ = ["Run", "merge_errors"]


def merge_errors(
    raised: BaseException,
    failure: StageError | NotAwaitableError | None,
    block_error: BaseException | None,
) -> BaseException:
    """The one exception a run raises, given what its nursery *raised*.

    - Cancellations are dropped: they only follow the real error (and a
      cancelled caller is still cancelled: its scope sees the next checkpoint).
    - The stage's *failure*, the block's own exception *block_error* (the
      object the block raised, even if it is a group: Trio rebuilds groups
      as they pass a cancel scope, so it is found by its leaves) and any other
      error (a ``KeyboardInterrupt`` from a stage) are raised bare when there
      is one of them, in one :exc:`BaseExceptionGroup` when there are several.
    - If there was nothing but cancellations: the block's own
      :exc:`trio.Cancelled`, if it raised one (it comes out as itself, as
      from :func:`trine.amap`); else *raised* itself, for the cancel scope
      that caused them.
    """
    errors: list[BaseException] = [] if failure is None else [failure]
    from_block: set[int] = set()
    if block_error is not None:
        block_leaves = list(leaves(block_error))
        from_block = {id(leaf) for leaf in block_leaves}
        if not all(isinstance(leaf, trio.Cancelled) for leaf in block_leaves):
            errors.append(block_error)
    errors.extend(
        leaf
        for leaf in leaves(raised)
        if id(leaf) not in from_block and not isinstance(leaf, trio.Cancelled)
    )
    if not errors:
        return raised if block_error is None else block_error
    if len(errors) == 1:
        return errors[0]
    if failure is not None and block_error is not None and block_error in errors:
        message = "a pipeline stage failed and the open() block raised"
    else:
        message = "a pipeline run ended with several errors"
    return BaseExceptionGroup(message, errors)


@final
class Run:
    """One execution of a pipeline description."""

    def __init__(
        self,
        stages: tuple[Stage, ...],
        source: SourceState,
        output_buffer: int,
        *,
        conflate_output: bool = False,
    ) -> None:
        self.failure: StageError | NotAwaitableError | None = None
        self.finished = False
        self.cancel_scope: trio.CancelScope | None = None
        self.stage_runs: list[StageRun] = []
        """Every stage, branches and merged pipelines included (for statistics)."""
        self.stages: list[StageRun] = []
        """The stages the run's own nursery starts (branch stages are their broadcast's,
        a zip's inputs' are the zip's)."""
        self.sources: list[tuple[SourceState, Buffer]] = []
        self.joins: list[JoinRun] = []
        """The zips the run's own nursery starts."""
        self.join_runs: list[JoinRun] = []
        """Every zip and zip_latest, nested ones included (for the tests' checks)."""
        self.output_dropped = 0
        if conflate_output:  # latest() at the end: the caller reads the newest result
            self.output_buffer = Buffer(1)
            self.output_buffer.drop_when_full("drop_oldest", self._drop_output)
        else:
            self.output_buffer = Buffer(output_buffer)
        self.output = PipelineOutput[Any](self, self.output_buffer)
        self._wire(source, stages, self.output_buffer, self)

    # -- wiring -----------------------------------------------------------------

    def _wire(
        self, source: SourceState, stages: tuple[Stage, ...], output: Buffer, tasks: Run | JoinRun
    ) -> None:
        """Wire *stages* to write *output*, and the source (merged or zipped pipelines) to
        feed them; what has a task of its own goes to *tasks*, the nursery's list."""
        entry = self._wire_chain(stages, output, tasks.stages)
        if source.kind == "merge":
            for pipeline in source.items:  # type: ignore[attr-defined]  # a tuple of Pipelines
                self._wire(pipeline._source_state, pipeline._stages, entry, tasks)
        elif source.kind in ("zip", "zip_latest"):
            spec: Any = source.items  # a JoinSource
            join = JoinRun(source.kind, entry, partial=spec.partial, default=spec.default)
            entry.add_writer()  # the join's task
            for pipeline in spec.pipelines:
                # Each input writes a buffer of its own, which the join reads.
                buffer = Buffer(JOIN_BUFFER)
                join.inputs.append(buffer)
                self._wire(pipeline._source_state, pipeline._stages, buffer, join)
            tasks.joins.append(join)
            self.join_runs.append(join)
        else:
            entry.add_writer()  # the source's task
            tasks.sources.append((source, entry))

    def _wire_chain(
        self, stages: tuple[Stage, ...], output: Buffer, into: list[StageRun]
    ) -> Buffer:
        """Wire *stages* in order, the last writing *output*; return what the first reads."""
        buffers = [*(Buffer(stage.buffer) for stage in stages), output]
        for stage, inputs, stage_output in zip(stages, buffers, buffers[1:], strict=False):
            stage_run = StageRun(self, stage, inputs, stage_output)
            self.stage_runs.append(stage_run)
            into.append(stage_run)
            if stage.kind != "broadcast":
                stage_output.add_writer()  # the stage's task
                continue
            for branch in stage.branches:
                # Each branch reads what the distributor hands it and writes the
                # broadcast's output (a branch with no stages: the distributor does).
                branch_runs: list[StageRun] = []
                entry = self._wire_chain(branch, stage_output, branch_runs)
                entry.add_writer()  # the distributor
                stage_run.branch_entries.append(entry)
                stage_run.branch_runs.append(branch_runs)
        return buffers[0]

    # -- lifecycle --------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncGenerator[PipelineOutput[Any], None]:
        """Run in one nursery while the caller's block runs; raise what merge_errors says."""
        block_error: BaseException | None = None
        error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._start(nursery)
                try:
                    yield self.output
                except BaseException as exc:
                    block_error = exc
                    raise
                finally:
                    self.stop()
        except BaseException as raised:
            error = merge_errors(raised, self.failure, block_error)
        else:
            error = self.failure
        finally:
            self.finished = True
            self.output._closed = True
        if error is not None:
            # Outside the except clause, so that its cause and context stay its own.
            raise error

    def _start(self, nursery: trio.Nursery) -> None:
        self.cancel_scope = nursery.cancel_scope
        self.start_tasks(nursery, self)

    def start_tasks(self, nursery: trio.Nursery, tasks: Run | JoinRun) -> None:
        """Start the sources, stages and joins of *tasks* (the run's, or a join's) in *nursery*."""
        for source, entry in tasks.sources:
            nursery.start_soon(read_source, self, source, entry, name="trine.Pipeline source")
        for stage_run in tasks.stages:
            nursery.start_soon(
                stage_run.run_stage, name=f"trine.Pipeline stage {stage_run.stage.name!r}"
            )
        for join in tasks.joins:
            nursery.start_soon(run_join, self, join, name=f"trine.Pipeline {join.kind}")

    def stop(self) -> None:
        """Cancel every task of the run; a reader still waiting is told it was cut short."""
        self.output_buffer.abort()
        assert self.cancel_scope is not None
        self.cancel_scope.cancel()

    def fail(self, error: StageError, cause: BaseException) -> None:
        """Record the run's failure (the first one counts) and stop the run."""
        error.__cause__ = cause
        if self.failure is None:
            self.failure = error
        self.stop()

    def fail_misused(self, error: NotAwaitableError) -> None:
        """A function that must be async was not: record *error* as the run's failure, and stop.

        A programming error, not an item's failure: the run raises it bare
        (once, however many workers met it), as the source does.
        """
        if self.failure is None:
            self.failure = error
        self.stop()

    def _drop_output(self, _: object) -> None:
        self.output_dropped += 1

    # -- statistics -------------------------------------------------------------

    def statistics(self) -> PipelineStatistics:
        return PipelineStatistics(
            stages=tuple(stage_run.statistics() for stage_run in self.stage_runs),
            running=self.cancel_scope is not None and not self.finished,
            output_buffer_used=len(self.output_buffer.items),
            output_dropped=self.output_dropped,
        )
