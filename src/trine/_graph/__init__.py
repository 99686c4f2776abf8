"""Task graphs: run async functions as soon as the functions they depend on have succeeded.

A :class:`TaskGraph` is built with :meth:`TaskGraph.add` (each call returns a
:class:`Node`) and run with :meth:`TaskGraph.run`, which returns a
:class:`GraphResult` holding one :class:`NodeResult` per node.

The package's modules, in the order a graph meets them: ``_taskgraph``
(what ``add()`` records, flat, and ``run()``), ``_node`` (the node handle),
``_resources`` (taking a named limiter without waiting), ``_scheduler`` (one
run: who waits for whom, which ready node starts), ``_results`` (what a run
reports), ``_order`` (cycles and topological order over names).
"""

from __future__ import annotations

from ._node import Node
from ._order import find_cycle, topological_order
from ._results import GraphResult, GraphStatistics, NodeEvent, NodeResult, NodeStatus
from ._taskgraph import TaskGraph

__all__ = [
    "GraphResult",
    "GraphStatistics",
    "Node",
    "NodeEvent",
    "NodeResult",
    "NodeStatus",
    "TaskGraph",
    "find_cycle",
    "topological_order",
]
