"""What a run of a task graph reports: statuses, per-node results, events, statistics."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, final

import attrs

if TYPE_CHECKING:
    from ._node import Node
    from ._scheduler import _Run

__all__ = ["GraphResult", "GraphStatistics", "NodeEvent", "NodeResult", "NodeStatus"]

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class NodeStatus(enum.StrEnum):
    """How a node of a :class:`TaskGraph` run ended."""

    SUCCEEDED = "succeeded"
    """Its function returned; :attr:`NodeResult.value` is what it returned."""
    FAILED = "failed"
    """Its function raised an :exc:`Exception`; :attr:`NodeResult.error` is it."""
    SKIPPED = "skipped"
    """It never started because a dependency failed or was skipped."""
    CANCELLED = "cancelled"
    """The run was cancelled (from outside, or by ``fail_fast``) before it finished."""


# Status codes in a run's list of statuses (small ints, cheap to store and
# count); the order of _STATUSES maps a code to its NodeStatus.
_SUCCEEDED = 0
_FAILED = 1
_SKIPPED = 2
_CANCELLED = 3
_UNFINISHED = 4
_STATUSES = (NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.CANCELLED)


@final
@attrs.frozen(repr=False)
class NodeResult(Generic[_T_co]):
    """What happened to one node in one :meth:`TaskGraph.run`."""

    node: Node[_T_co]
    """The node this is the result of."""
    status: NodeStatus
    """How it ended."""
    value: _T_co | None
    """What its function returned (``None`` unless :attr:`status` is ``succeeded``)."""
    error: BaseException | None
    """The exception it raised if it failed, else ``None``."""
    started_at: float | None
    """:func:`trio.current_time` when it started, that is when the scheduler gave it a
    slot and its resources (``None`` if it never started). A node may still wait
    after that for a resource taken in its own task (see :class:`TaskGraph`)."""
    finished_at: float | None
    """When it finished, was skipped, or was marked cancelled."""
    attempts: int
    """How many times its function was called: 1 for a node that started, 0 for one
    that did not. With a ``policy``, the calls the policy made (a retry makes more,
    a breaker that rejects or a fallback that answers instead makes fewer)."""
    skipped_because: Node[Any] | None
    """For a skipped node, the failed node that caused the skip (possibly through
    skipped nodes between them); else ``None``."""

    @property
    def name(self) -> str:
        """The node's name."""
        return self.node.name

    @property
    def duration(self) -> float | None:
        """``finished_at - started_at``, or ``None`` if it never started."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def __repr__(self) -> str:
        detail = ""
        if self.status is NodeStatus.FAILED:
            detail = f" error={self.error!r}"
        elif self.status is NodeStatus.SKIPPED and self.skipped_because is not None:
            detail = f" because {self.skipped_because.name!r} failed"
        return f"<trine.NodeResult {self.node.name!r} {self.status.value}{detail}>"


@final
@attrs.frozen
class NodeEvent:
    """What ``on_event`` gets: a node started, or finished (in any way).

    Every node of a run produces exactly one ``"finished"`` event (skipped and
    never-started cancelled nodes included), and a ``"started"`` event before
    it if it started.
    """

    kind: Literal["started", "finished"]
    """``"started"`` or ``"finished"``."""
    node: Node[Any]
    """The node."""
    time: float
    """:func:`trio.current_time` when it happened."""
    result: NodeResult[Any] | None
    """The node's result for ``"finished"``; ``None`` for ``"started"``."""


@final
@attrs.frozen(repr=False, eq=False)
class GraphResult:
    """The results of one :meth:`TaskGraph.run`: one :class:`NodeResult` per node.

    ``result[node]`` is that node's result; iterating gives every result in the
    order the nodes were added. (Each :class:`NodeResult` is built when first
    asked for, so a run of 100,000 nodes whose results are mostly unread
    costs little.)
    """

    _run: _Run = attrs.field(alias="run")

    def __getitem__(self, node: Node[_T]) -> NodeResult[_T]:
        run = self._run
        index = getattr(node, "_index", None)
        if isinstance(index, int) and index < run.count and run.nodes[index] is node:
            return run.result_of(index)
        raise KeyError(node)

    def __iter__(self) -> Iterator[NodeResult[Any]]:
        run = self._run
        return (run.result_of(index) for index in range(run.count))

    def __len__(self) -> int:
        return self._run.count

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{count} {status.value}"
            for status, count in zip(_STATUSES, self._run.counts, strict=True)
            if count
        )
        return f"<trine.GraphResult of {len(self)} nodes: {counts or 'empty'}>"

    def _with(self, code: int) -> list[NodeResult[Any]]:
        run = self._run
        return [run.result_of(index) for index, status in enumerate(run.status) if status == code]

    @property
    def succeeded(self) -> list[NodeResult[Any]]:
        """The results of the nodes that succeeded, in insertion order."""
        return self._with(_SUCCEEDED)

    @property
    def failed(self) -> list[NodeResult[Any]]:
        """The results of the nodes that failed, in insertion order."""
        return self._with(_FAILED)

    @property
    def skipped(self) -> list[NodeResult[Any]]:
        """The results of the nodes that were skipped, in insertion order."""
        return self._with(_SKIPPED)

    @property
    def cancelled(self) -> list[NodeResult[Any]]:
        """The results of the nodes that were cancelled, in insertion order."""
        return self._with(_CANCELLED)

    @property
    def ok(self) -> bool:
        """``True`` if every node succeeded."""
        return self._run.status.count(_SUCCEEDED) == len(self)

    def raise_for_failures(self) -> None:
        """Raise an :exc:`ExceptionGroup` of the failures, if any node failed.

        The message names the failed nodes (``2 nodes failed: 'fetch', 'clean'``);
        the exceptions are in insertion order. Skipped nodes are not failures.
        """
        failed = self.failed
        if not failed:
            return
        names = ", ".join(repr(result.node.name) for result in failed)
        noun = "node" if len(failed) == 1 else "nodes"
        raise ExceptionGroup(
            f"{len(failed)} {noun} failed: {names}",
            [result.error for result in failed if isinstance(result.error, Exception)],
        )


@final
@attrs.frozen
class GraphStatistics:
    """A snapshot of a :class:`TaskGraph`, from :meth:`TaskGraph.statistics`.

    During a run it describes that run; after it, the last run; before any
    run, every node is pending.
    """

    nodes: int
    """How many nodes the graph has."""
    pending: int
    """Nodes waiting for a dependency to finish."""
    ready: int
    """Nodes whose dependencies have succeeded, waiting for a slot or a resource."""
    running: int
    """Nodes whose function is running (or waiting for a blocking resource)."""
    succeeded: int
    """Nodes that succeeded."""
    failed: int
    """Nodes that failed."""
    skipped: int
    """Nodes that were skipped."""
    cancelled: int
    """Nodes that were cancelled."""
