"""What :meth:`TaskPool.statistics` reports."""

from __future__ import annotations

import attrs

from .._stats import LatencySummary

__all__ = ["TaskPoolStatistics"]


@attrs.frozen
class TaskPoolStatistics:
    """A snapshot of a :class:`TaskPool`, from :meth:`TaskPool.statistics`."""

    limit: int
    """The most tasks that may run at once."""
    running: int
    """Tasks running now, each holding one of the *limit* slots."""
    waiting: int
    """:meth:`~TaskPool.start` calls waiting for their task to start (from the pool or outside)."""
    paused: int
    """Tasks of the pool inside :meth:`~TaskPool.start` that gave up their slot while they wait."""
    started: int
    """Tasks started in all."""
    finished: int
    """Tasks that returned or raised (the failed ones included)."""
    failed: int
    """Tasks that raised an :exc:`Exception`."""
    cancelled: int
    """Tasks that ended by a cancellation (or ``KeyboardInterrupt``), without a result."""
    unread: int
    """Results waiting to be read (in an ordered pool, also those held for an earlier one)."""
    dropped: int
    """Results never read: still unread when the pool's block ended, or finished after it."""
    latency: LatencySummary
    """How long the finished tasks took, from their start to their end."""
