"""The handle on one node of a task graph."""

from __future__ import annotations

import functools
from array import array
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast, final

if TYPE_CHECKING:
    from ._taskgraph import TaskGraph

__all__ = ["_INDEX_TYPE", "Node", "_new_node"]

_T_co = TypeVar("_T_co", covariant=True)

# The typecode of every array of node indices and counts of a graph and its
# runs (edges, starts, dependents, counts still to succeed): one, since an
# array takes a slice only of its own typecode. Unsigned because CPython 3.11
# stores an int in a signed array through its argument parser, and a store
# costs about 1.7 times what it costs in an unsigned one.
_INDEX_TYPE = "Q"


@final
class Node(Generic[_T_co]):
    """A handle on one node of a :class:`TaskGraph`, returned by :meth:`TaskGraph.add`.

    Pass it in another node's ``deps`` and look its result up in the
    :class:`GraphResult` (``result[node]``). Nodes compare and hash by
    identity; their attributes are read-only.
    """

    # The node's own record: what add() was given, and the nodes that depend
    # on it (read by a run right after the node ran). Everything else about
    # the node (its name, its dependencies, its priority if not 0) lives in
    # the graph, flat, so a node costs one small object and one array.
    __slots__ = ("_args", "_dependents", "_fn", "_graph", "_index")

    _graph: TaskGraph
    _index: int
    _fn: Callable[..., Awaitable[Any]]
    _args: tuple[Any, ...]
    _dependents: array[int]  # the nodes that depend on this one, in the order they were added

    def __new__(cls, *args: object, **kwargs: object) -> Self:
        raise TypeError("trine.Node cannot be created directly: TaskGraph.add() returns nodes")

    @property
    def name(self) -> str:
        """The node's name, unique within its graph."""
        names = self._graph._node_names
        if self._index >= len(names):
            self._graph._name_nodes()
        return names[self._index]

    @property
    def deps(self) -> tuple[Node[Any], ...]:
        """The nodes whose results are appended to the function's arguments, in order."""
        graph = self._graph
        starts = graph._starts
        nodes = graph._nodes
        return tuple(
            nodes[dep] for dep in graph._edges[starts[self._index] : starts[self._index + 1]]
        )

    @property
    def priority(self) -> int:
        """Among ready nodes, higher priorities start first."""
        return self._graph._priorities.get(self._index, 0)

    def __repr__(self) -> str:
        return f"<trine.Node {self.name!r}>"


# add() builds nodes with object.__new__ and sets the slots itself: Node()
# refuses users, and a Python __init__ would cost a call per node (a partial
# of a builtin costs none).
_new_node = cast(
    "Callable[[], Node[Any]]",
    functools.partial(object.__new__, Node),
)
