"""What :meth:`Pipeline.statistics` reports: one frozen snapshot per stage, and the run's."""

from __future__ import annotations

import attrs

from .._stats import LatencySummary

__all__ = ["PipelineStatistics", "StageStatistics"]


@attrs.frozen
class StageStatistics:
    """One stage of a running (or finished) pipeline, as :meth:`Pipeline.statistics` reports it."""

    name: str
    """The stage's name (``name=``, or its position and function name)."""
    kind: str
    """``"map"``, ``"filter"``, ``"flat_map"``, ``"tap"``, ``"enumerate"``, ``"batch"``,
    ``"rate_limit"`` or ``"broadcast"``."""
    workers: int
    """How many workers the stage may run (``workers=``)."""
    items_in: int
    """Items the stage has taken from its buffer."""
    items_out: int
    """Items the stage has handed downstream (lists, for ``batch``; one per branch
    and item, for ``broadcast``)."""
    failed: int
    """Items whose function (or key function) raised, whatever ``on_error`` then did."""
    skipped: int
    """Failed items dropped by ``on_error="skip"``."""
    dead_lettered: int
    """Failed items handed to an ``on_error`` function."""
    busy_workers: int
    """Workers waiting inside the stage's function right now (for ``flat_map``, also
    iterating an async result, which includes waiting for room downstream)."""
    buffer_used: int
    """Items waiting in the stage's buffer now, and in a keyed stage's queues (not those
    a worker or the dispatcher holds)."""
    buffer_size: int
    """The bound of the stage's buffer (for a keyed stage, plus its workers' queues)."""
    latency: LatencySummary
    """Time per item in the stage: for ``map``, ``filter``, ``tap`` and ``enumerate`` the
    function call; for ``flat_map`` the call and the iteration of what it returned; for
    ``rate_limit`` how long the item was held back; for ``broadcast`` how long it took to
    hand the item to every branch; for ``batch``, one sample per list, from its first
    item to handing it on."""
    workers_started: int = 0
    """How many of its workers the stage has started. Workers start as items need
    them, so this never exceeds ``workers``, nor the most items the stage has held at once."""
    dropped: int = 0
    """Items dropped because the stage's buffer was full (``overflow="drop_oldest"`` or
    ``"drop_newest"``, or :meth:`Pipeline.latest` before the stage); each went to
    ``on_drop``, if the stage has one."""


@attrs.frozen
class PipelineStatistics:
    """A snapshot of a pipeline run, as :meth:`Pipeline.statistics` returns it."""

    stages: tuple[StageStatistics, ...]
    """One entry per stage, in order (a broadcast's branch stages follow it)."""
    running: bool
    """Whether the run is still going."""
    output_buffer_used: int
    """Results waiting for the caller now."""
    output_dropped: int = 0
    """Results dropped for the caller by a :meth:`Pipeline.latest` at the end of the pipeline."""

    def stage(self, name: str) -> StageStatistics:
        """The stage called *name*.

        Raises:
          KeyError: if no stage has that name.
        """
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)
