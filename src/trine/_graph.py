"""Task graphs: run async functions as soon as the functions they depend on have succeeded.

A :class:`TaskGraph` is built with :meth:`TaskGraph.add` (each call returns a
:class:`Node`) and run with :meth:`TaskGraph.run`, which returns a
:class:`GraphResult` holding one :class:`NodeResult` per node.

How it schedules: every node of a run is one Trio task in one nursery, started
only once the node may actually run. The scheduler is not a task of its own:
it is a plain function called by the task that just finished (and once by
:meth:`TaskGraph.run` at the start), so a completion costs no extra trip
through Trio's scheduler. It pops ready nodes from heaps (higher priority
first, then insertion order) while a slot under ``limit`` is free, takes each
node's resources with the limiters' non-blocking methods, and starts the node.
Ready nodes that take the same resources share one heap, so one pass looks at
the best node of each such group only, however many are waiting. Each node
and each edge is touched a constant number of times: O(V + E), plus O(log V)
per heap operation and O(groups) per pass when resources are used.
"""

from __future__ import annotations

import enum
import functools
import heapq
import types
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any, Generic, Literal, TypeVar, final

import attrs
import trio

from . import _created
from ._errors import CycleError
from ._limit import KeyedLimiter, LimiterLike, WeightedSemaphore, _check_limiter, open_hold
from ._policy import SupportsCall, _check_call_guard
from ._util import check_async_callable, check_int, check_name
from ._values import ReadOnlyValue

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

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)

# Types that are callable and can never be awaitable themselves: add() needs
# no further check for them, which keeps adding 100,000 nodes cheap.
_PLAIN_CALLABLES = frozenset(
    {types.FunctionType, types.MethodType, types.BuiltinFunctionType, functools.partial}
)

# A heap key is (-priority << _INDEX_BITS) + index: one int compares faster
# than a tuple, and orders by priority (higher first), then insertion order.
_INDEX_BITS = 40
_INDEX_MASK = (1 << _INDEX_BITS) - 1


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


@final
@attrs.frozen(eq=False, repr=False)
class Node(Generic[_T_co]):
    """A handle on one node of a :class:`TaskGraph`, returned by :meth:`TaskGraph.add`.

    Pass it in another node's ``deps`` and look its result up in the
    :class:`GraphResult` (``result[node]``). Nodes compare and hash by
    identity; their attributes are read-only.
    """

    name: str
    """The node's name, unique within its graph."""
    deps: tuple[Node[Any], ...]
    """The nodes whose results are appended to the function's arguments, in order."""
    priority: int
    """Among ready nodes, higher priorities start first."""
    _graph: TaskGraph = attrs.field(alias="graph")
    _index: int = attrs.field(alias="index")

    def __repr__(self) -> str:
        return f"<trine.Node {self.name!r}>"


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
        if isinstance(index, int) and index < len(run.status) and run.graph._nodes[index] is node:
            return run.result_of(index)
        raise KeyError(node)

    def __iter__(self) -> Iterator[NodeResult[Any]]:
        run = self._run
        return (run.result_of(index) for index in range(len(run.status)))

    def __len__(self) -> int:
        return len(self._run.status)

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
        return self._run.counts[_SUCCEEDED] == len(self)

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


# --------------------------------------------------------------------------
# Resources: how the scheduler takes a named limiter without waiting

_Release = Callable[[BaseException | None], None]


def _no_release(error: BaseException | None) -> None:
    return None


@final
class _Resource:
    """A named resource of a graph, with the way to take it without waiting."""

    __slots__ = ("blocking", "capacity", "limiter", "name", "weighted")

    def __init__(self, name: str, limiter: LimiterLike) -> None:
        self.name = name
        self.limiter = limiter
        self.weighted = isinstance(limiter, WeightedSemaphore)
        # Trio's Lock must be released by the task that took it, and a limiter
        # with only hold() cannot be taken without waiting: those are taken by
        # the node's own task, after it has its slot.
        self.blocking = isinstance(limiter, trio.Lock | trio.StrictFIFOLock) or not (
            isinstance(limiter, trio.CapacityLimiter | trio.Semaphore)
            or callable(getattr(limiter, "hold_nowait", None))
        )
        capacity: int | None = None
        if isinstance(limiter, WeightedSemaphore):
            capacity = limiter.capacity
        elif isinstance(limiter, trio.CapacityLimiter):
            capacity = int(limiter.total_tokens)
        self.capacity = capacity

    def take_nowait(self, weight: int) -> _Release:
        """Take *weight* of the resource now and return its release, or raise WouldBlock."""
        limiter = self.limiter
        if isinstance(limiter, trio.CapacityLimiter):
            borrower = object()
            limiter.acquire_on_behalf_of_nowait(borrower)
            return lambda error: limiter.release_on_behalf_of(borrower)
        if isinstance(limiter, trio.Semaphore):
            limiter.acquire_nowait()
            return lambda error: limiter.release()
        hold = limiter.hold_nowait(weight) if self.weighted else limiter.hold_nowait()  # type: ignore[union-attr]
        hold.__enter__()

        def release(error: BaseException | None) -> None:
            if error is None:
                hold.__exit__(None, None, None)
            else:
                hold.__exit__(type(error), error, error.__traceback__)

        return release

    def hold(self, weight: int) -> Any:
        """The async context manager that takes *weight* of the resource, waiting."""
        if self.weighted:
            assert isinstance(self.limiter, WeightedSemaphore)
            return self.limiter.hold(weight)
        return open_hold(self.limiter)


def _take_all_nowait(needs: tuple[tuple[_Resource, int], ...]) -> list[_Release] | None:
    """Take every resource in *needs* now, or none of them (returning ``None``)."""
    releases: list[_Release] = []
    for resource, weight in needs:
        if resource.blocking:
            continue
        try:
            releases.append(resource.take_nowait(weight))
        except trio.WouldBlock:
            _release_all(releases, None)
            return None
    return releases


def _release_all(releases: list[_Release], error: BaseException | None) -> None:
    """Release in reverse order; every release runs even if one raises."""
    while releases:
        release = releases.pop()
        try:
            release(error)
        except BaseException:
            _release_all(releases, error)
            raise


# --------------------------------------------------------------------------
# Cycle detection, also useful to anyone building a graph from names


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return a cycle of *deps* as ``[a, b, ..., a]``, or ``None`` if there is none.

    *deps* maps each name to the names it depends on; a dependency that is
    not a key of *deps* is ignored here. Iterative depth-first search, O(V + E).
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(deps, white)
    for root in deps:
        if colour[root] != white:
            continue
        colour[root] = grey
        path = [root]
        stack = [iter(deps[root])]
        while stack:
            for dep in stack[-1]:
                state = colour.get(dep)
                if state is None or state == black:
                    continue
                if state == grey:
                    return [*path[path.index(dep) :], dep]
                colour[dep] = grey
                path.append(dep)
                stack.append(iter(deps[dep]))
                break
            else:
                colour[path.pop()] = black
                stack.pop()
    return None


def topological_order(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Return the names of *deps* ordered so that each comes after its dependencies.

    Among names free to go next, the order of *deps* is kept (Kahn's algorithm
    over the keys in order), so ``graph.add`` can be called in the returned
    order. O(V + E).

    Raises:
      CycleError: naming a cycle, if there is one.
      ValueError: naming the first dependency that is not a key of *deps*.
    """
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    remaining: dict[str, int] = {}
    for name, names in deps.items():
        count = 0
        for dep in names:
            if dep not in dependents:
                raise ValueError(f"{name!r} depends on unknown {dep!r}")
            dependents[dep].append(name)
            count += 1
        remaining[name] = count
    position = {name: index for index, name in enumerate(deps)}
    ready = [position[name] for name, count in remaining.items() if count == 0]
    heapq.heapify(ready)
    keys = list(deps)
    order: list[str] = []
    while ready:
        name = keys[heapq.heappop(ready)]
        order.append(name)
        for dependent in dependents[name]:
            remaining[dependent] -= 1
            if remaining[dependent] == 0:
                heapq.heappush(ready, position[dependent])
    if len(order) < len(keys):
        cycle = find_cycle(deps)
        assert cycle is not None
        raise CycleError(cycle)
    return order


# --------------------------------------------------------------------------
# TaskGraph


def _default_name(fn: Callable[..., Any]) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) and name else type(fn).__name__


@final
@attrs.define(eq=False, repr=False)
class TaskGraph:
    """Run async functions concurrently, each once its dependencies have succeeded.

    Add nodes with :meth:`add`; each gets the results of its ``deps``
    appended to its arguments. :meth:`run` starts every node as soon as its
    dependencies have succeeded, a slot under *limit* is free and its
    resources are free, and returns a :class:`GraphResult`::

        graph = trine.TaskGraph(limit=4, resources={"db": trine.WeightedSemaphore(2)})
        raw = graph.add(fetch, "https://example.com/orders")
        rows = graph.add(clean, deps=[raw])                    # clean(raw_result)
        stats = graph.add(analyse, deps=[rows], resources=["db"])
        graph.add(report, "daily", deps=[rows, stats])         # report("daily", rows, stats)
        result = await graph.run()
        result.raise_for_failures()
        print(result[stats].value)

    A node that raises an :exc:`Exception` fails. With ``fail_fast=False``
    (the default) its dependents, and theirs, are *skipped* and every node
    that does not depend on it still runs; :meth:`run` returns normally.
    With ``fail_fast=True`` the first failure cancels the whole run and
    :meth:`run` raises, as a nursery does. :exc:`trio.Cancelled` is never a
    failure.

    **Scheduling.** Among ready nodes, higher *priority* starts first, then
    the node added first. A node's resources are taken by the scheduler
    without waiting, just before the node starts, and released when it
    finishes; a node never holds a *limit* slot while waiting for them.
    If the best ready node cannot have its resources now, it stays ready and
    keeps them *reserved*: lower-priority nodes that need any of the same
    resources wait behind it (so a heavy node is not starved by a stream of
    light ones, as in :class:`WeightedSemaphore`), while nodes that need
    none of them start.

    Resources that cannot be taken without waiting (a :class:`trio.Lock`,
    which only its holder task may release, or your own limiter with only a
    ``hold()`` method) are taken by the node's task after it has its slot;
    so is every resource of a ready node when nothing in the graph is
    running and its resources are held outside the graph (otherwise nothing
    would ever wake it). While nodes of the graph run, a resource freed by
    someone outside the graph is noticed when the next node finishes.

    Each node runs in a Trio task named after the node, in one nursery that
    :meth:`run` opens; nothing outlives :meth:`run`.

    Args:
      limit: at most this many nodes run at once (an ``int`` >= 1; ``None``:
        no limit).
      fail_fast: cancel the run and raise at the first failure, instead of
        skipping the failed node's dependents.
      resources: names for the limiters nodes may use, e.g.
        ``{"db": trine.WeightedSemaphore(4), "gpu": trio.Lock()}``: a
        :class:`WeightedSemaphore` (held with a weight), any trine limiter,
        a :class:`trio.CapacityLimiter`, :class:`trio.Semaphore` or
        :class:`trio.Lock`.
      name: a name for the graph, which its metrics carry (a ``str`` or ``None``).

    Raises:
      TypeError: if an argument has the wrong type.
      ValueError: if *limit* < 1.
    """

    _limit: int | None = attrs.field(default=None, kw_only=True, alias="limit")
    _fail_fast: bool = attrs.field(default=False, kw_only=True, alias="fail_fast")
    _given_resources: Mapping[str, LimiterLike] | None = attrs.field(
        default=None, kw_only=True, alias="resources"
    )
    name: str | None = attrs.field(default=None, kw_only=True)
    """The name given to the constructor (metrics carry it)."""
    _resources: dict[str, _Resource] = attrs.field(factory=dict, init=False)
    _nodes: list[Node[Any]] = attrs.field(factory=list, init=False)
    _fns: list[Callable[..., Awaitable[Any]]] = attrs.field(factory=list, init=False)
    _args: list[tuple[Any, ...]] = attrs.field(factory=list, init=False)
    _deps: list[tuple[int, ...]] = attrs.field(factory=list, init=False)
    _dependents: list[list[int]] = attrs.field(factory=list, init=False)
    _keys: list[int] = attrs.field(factory=list, init=False)
    _policies: list[SupportsCall | None] = attrs.field(factory=list, init=False)
    _needs: list[tuple[tuple[_Resource, int], ...]] = attrs.field(factory=list, init=False)
    _blocking: list[bool] = attrs.field(factory=list, init=False)
    # Ready nodes that take the same resources without waiting share one heap
    # (a "group"); -1: the node takes none, and only needs a slot.
    _group: list[int] = attrs.field(factory=list, init=False)
    _group_ids: dict[tuple[str, ...], int] = attrs.field(factory=dict, init=False)
    _names: dict[str, int] = attrs.field(factory=dict, init=False)
    _name_counters: dict[str, int] = attrs.field(factory=dict, init=False)
    _uses_resources: bool = attrs.field(default=False, init=False)
    _run: _Run | None = attrs.field(default=None, init=False)
    _running: bool = attrs.field(default=False, init=False)
    # finished_value, made when first asked for (None: nothing updates it)
    _finished_view: ReadOnlyValue[int] | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if self._limit is not None:
            check_int("limit", self._limit)
        if not isinstance(self._fail_fast, bool):
            raise TypeError(f"fail_fast must be a bool, got {self._fail_fast!r}")
        given: object = self._given_resources
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise TypeError(f"resources must be a mapping of names to limiters, got {given!r}")
        resources: dict[str, _Resource] = {}
        for name, limiter in given.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"resources keys must be non-empty strings, got {name!r}")
            _check_limiter(limiter, f"resources[{name!r}]")
            if isinstance(limiter, KeyedLimiter):
                raise TypeError(
                    f"resources[{name!r}] is a KeyedLimiter, which needs a key: "
                    "pass limiter.for_key(key)"
                )
            resources[name] = _Resource(name, limiter)
        self._resources = resources
        check_name(self.name)
        if _created.watchers:
            _created.announce(self, None)

    def __repr__(self) -> str:
        limit = "no limit" if self._limit is None else f"limit {self._limit}"
        return f"<trine.TaskGraph of {len(self._nodes)} nodes, {limit}>"

    def __len__(self) -> int:
        return len(self._nodes)

    @property
    def nodes(self) -> tuple[Node[Any], ...]:
        """Every node, in the order they were added."""
        return tuple(self._nodes)

    @property
    def limit(self) -> int | None:
        """At most this many nodes run at once (``None``: no limit)."""
        return self._limit

    @property
    def fail_fast(self) -> bool:
        """Whether the first failure cancels the run."""
        return self._fail_fast

    def add(
        self,
        fn: Callable[..., Awaitable[_T]],
        *args: Any,
        deps: Sequence[Node[Any]] = (),
        name: str | None = None,
        priority: int = 0,
        policy: SupportsCall | None = None,
        resources: Sequence[str] | Mapping[str, int] = (),
    ) -> Node[_T]:
        """Add a node that will call ``await fn(*args, *results_of_deps)``.

        Args:
          fn: an async function.
          *args: its first arguments.
          deps: nodes of this graph (added before this one) whose results are
            appended to *args*, in this order; the node starts once they have
            all succeeded, and is skipped if one fails or is skipped.
          name: a name unique within the graph; by default the function's
            ``__name__``, made unique with a suffix (``fetch``, ``fetch-2``, ...).
          priority: among ready nodes, higher priorities start first (any ``int``).
          policy: call *fn* through ``await policy.call(fn, *args)`` (a
            :class:`~trine.Policy`, or anything with such a method): retries, timeouts,
            breakers per node.
          resources: the graph's resources this node holds while it runs: a
            sequence of names (weight 1 each) or a mapping of name to weight.

        Returns:
          The node's handle, for other nodes' *deps* and for ``result[node]``.

        Raises:
          TypeError: if an argument has the wrong type (a coroutine object for
            *fn* included: pass the function and its arguments).
          ValueError: if *name* is taken, a dependency is not a node of this
            graph, a resource is unknown, or a weight is more than its
            resource could ever give.
          RuntimeError: if the graph is running.
        """
        if self._running:
            raise RuntimeError("cannot add nodes to a graph while it runs")
        if type(fn) not in _PLAIN_CALLABLES:
            check_async_callable("fn", fn)
        if name is None:
            base = _default_name(fn)
            counter = self._name_counters.get(base, 1)
            name = base if counter == 1 else f"{base}-{counter}"
            while name in self._names:
                counter += 1
                name = f"{base}-{counter}"
            self._name_counters[base] = counter + 1
        elif not isinstance(name, str) or not name:  # type: ignore[redundant-expr]  # untyped callers
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        elif name in self._names:
            raise ValueError(f"name {name!r} is already used by another node of this graph")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError(f"priority must be an int, got {priority!r}")
        if policy is not None:
            _check_call_guard("policy", policy)
        given_deps: object = deps
        if type(given_deps) not in (tuple, list) and (
            isinstance(given_deps, str | bytes) or not isinstance(given_deps, Iterable)
        ):
            raise TypeError(f"deps must be a sequence of nodes, got {deps!r}")
        deps = tuple(deps)
        dep_indices: list[int] = []
        for position, dep in enumerate(deps):
            if not isinstance(dep, Node):
                raise TypeError(f"deps[{position}] must be a Node, got {dep!r}")
            if dep._graph is not self:
                raise ValueError(f"deps[{position}] is {dep!r} of another graph")
            dep_indices.append(dep._index)
        needs = self._check_resources(name, resources) if resources != () else ()

        index = len(self._nodes)
        node: Node[_T] = Node(name=name, deps=deps, priority=priority, graph=self, index=index)
        self._nodes.append(node)
        self._names[name] = index
        self._fns.append(fn)
        self._args.append(args)
        self._deps.append(tuple(dep_indices))
        self._dependents.append([])
        for dep_index in dep_indices:
            self._dependents[dep_index].append(index)
        self._keys.append((-priority << _INDEX_BITS) + index)
        self._policies.append(policy)
        self._needs.append(needs)
        if not needs:
            self._blocking.append(False)
            self._group.append(-1)
            return node
        self._blocking.append(any(resource.blocking for resource, _ in needs))
        signature = tuple(resource.name for resource, _ in needs if not resource.blocking)
        if signature:
            self._uses_resources = True
            group = self._group_ids.setdefault(signature, len(self._group_ids))
        else:
            group = -1
        self._group.append(group)
        return node

    def _check_resources(
        self, node_name: str, resources: object
    ) -> tuple[tuple[_Resource, int], ...]:
        if isinstance(resources, Mapping):
            items = list(resources.items())
        elif isinstance(resources, str | bytes) or not isinstance(resources, Iterable):
            raise TypeError(
                "resources must be a sequence of resource names or a mapping of "
                f"name to weight, got {resources!r}"
            )
        else:
            items = [(resource, 1) for resource in resources]
        needs: list[tuple[_Resource, int]] = []
        seen: set[str] = set()
        for resource_name, weight in items:
            resource = None
            if isinstance(resource_name, str):
                resource = self._resources.get(resource_name)
            if resource is None:
                known = ", ".join(repr(known) for known in self._resources) or "none"
                raise ValueError(
                    f"node {node_name!r} uses unknown resource {resource_name!r} "
                    f"(the graph's resources: {known})"
                )
            if resource_name in seen:
                raise ValueError(f"node {node_name!r} lists resource {resource_name!r} twice")
            seen.add(resource_name)
            check_int(f"resources[{resource_name!r}]", weight)
            if weight > 1 and not resource.weighted:
                raise ValueError(
                    f"node {node_name!r} needs weight {weight} of resource {resource_name!r}, "
                    "but only a WeightedSemaphore can be held with a weight above 1"
                )
            if resource.capacity is not None and weight > resource.capacity:
                raise ValueError(
                    f"node {node_name!r} needs weight {weight} of resource {resource_name!r}, "
                    f"whose capacity is {resource.capacity}"
                )
            needs.append((resource, weight))
        # One global order (by name) for the blocking fallback, as acquire_all does.
        needs.sort(key=lambda need: need[0].name)
        return tuple(needs)

    @property
    def finished_value(self) -> ReadOnlyValue[int]:
        """How many nodes of the current run (or the last) have finished, in any
        way (succeeded, failed, skipped, cancelled), as a read-only
        :class:`trio_util.AsyncValue` to wait on::

            await graph.finished_value.wait_value(lambda done: done >= len(graph))

        It is 0 before the first run and goes back to 0 when a run starts.
        """
        view = self._finished_view
        if view is None:
            run = self._run
            done = 0 if run is None else sum(run.counts)
            view = self._finished_view = ReadOnlyValue(done, "finished_value")
        return view

    def statistics(self) -> GraphStatistics:
        """Return a snapshot of the current run (or of the last one, after it)."""
        run = self._run
        count = len(self._nodes)
        if run is None:
            return GraphStatistics(
                nodes=count,
                pending=count,
                ready=0,
                running=0,
                succeeded=0,
                failed=0,
                skipped=0,
                cancelled=0,
            )
        succeeded, failed, skipped, cancelled = run.counts
        ready = run.ready_count()
        finished = succeeded + failed + skipped + cancelled
        return GraphStatistics(
            nodes=len(run.status),
            pending=len(run.status) - ready - run.running - finished,
            ready=ready,
            running=run.running,
            succeeded=succeeded,
            failed=failed,
            skipped=skipped,
            cancelled=cancelled,
        )

    def _check_acyclic(self) -> None:
        # add() only accepts nodes added earlier, so each dependency's index is
        # lower than its dependent's and a cycle cannot be built through the
        # public API. Checking that costs O(E); the full search runs only if
        # the check fails (the private lists were changed behind our back).
        for index, deps in enumerate(self._deps):
            for dep in deps:
                if dep >= index:
                    names = [node.name for node in self._nodes]
                    cycle = find_cycle(
                        {names[i]: [names[d] for d in ds] for i, ds in enumerate(self._deps)}
                    )
                    if cycle is not None:
                        raise CycleError(cycle)

    async def run(self, *, on_event: Callable[[NodeEvent], object] | None = None) -> GraphResult:
        """Run every node and return their results.

        Every node runs at most once, in its own task of one nursery that
        :meth:`run` opens and waits for; a graph may be run again, each run
        starting afresh.

        Args:
          on_event: called synchronously (in the scheduler, so keep it quick)
            with a :class:`NodeEvent` when a node starts and when it finishes
            in any way, e.g. to draw a live progress display. If it raises,
            the run is cancelled and the error propagates.

        Returns:
          A :class:`GraphResult` with one :class:`NodeResult` per node. A
          failure does not raise (unless *fail_fast*): check
          :attr:`GraphResult.ok` or call :meth:`GraphResult.raise_for_failures`.

        Raises:
          CycleError: before anything starts, if the nodes' dependencies form
            a cycle.
          RuntimeError: if the graph is already running.
          ExceptionGroup: with *fail_fast*, of the failure(s) that cancelled
            the run (the rest are marked ``cancelled``).
        """
        if self._running:
            raise RuntimeError("this graph is already running")
        if on_event is not None and not callable(on_event):
            raise TypeError(f"on_event must be callable, got {on_event!r}")
        self._check_acyclic()
        if not self._nodes:
            self._run = _Run(self, on_event)
            await trio.lowlevel.checkpoint()  # an empty nursery would not be one
            return GraphResult(run=self._run)
        self._running = True
        run = self._run = _Run(self, on_event)
        try:
            async with trio.open_nursery() as nursery:
                run.nursery = nursery
                if self._uses_resources:
                    for index, deps in enumerate(self._deps):
                        if not deps:
                            run.make_ready(index)
                else:
                    keys = self._keys
                    run.ready = [keys[index] for index, deps in enumerate(self._deps) if not deps]
                heapq.heapify(run.ready)
                for group in run.groups:
                    heapq.heapify(group)
                run.dispatch()
        finally:
            self._running = False
            run.cancel_unfinished()
        return GraphResult(run=run)


# --------------------------------------------------------------------------
# One run's state, and the scheduler

# Status codes in the run's arrays (ints are cheaper than enum members to hash).
_UNFINISHED = -1
_SUCCEEDED = 0
_FAILED = 1
_SKIPPED = 2
_CANCELLED = 3
_STATUSES = (NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.CANCELLED)


@final
class _Run:
    """The state of one :meth:`TaskGraph.run`; its methods are the scheduler."""

    __slots__ = (
        "attempts",
        "counts",
        "errors",
        "finished",
        "graph",
        "groups",
        "limit",
        "nursery",
        "on_event",
        "ready",
        "remaining",
        "results",
        "running",
        "skipped_because",
        "started",
        "status",
        "stopping",
        "values",
    )

    def __init__(self, graph: TaskGraph, on_event: Callable[[NodeEvent], object] | None) -> None:
        count = len(graph._nodes)
        self.graph = graph
        self.on_event = on_event
        self.limit = graph._limit
        self.nursery: trio.Nursery | None = None
        # Heaps of the keys of ready nodes: those that take no resources, and
        # one per group of nodes that take the same resources.
        self.ready: list[int] = []
        self.groups: list[list[int]] = [[] for _ in graph._group_ids]
        self.remaining = [len(deps) for deps in graph._deps]
        self.status = [_UNFINISHED] * count
        self.values: list[Any] = [None] * count
        self.errors: list[BaseException | None] = [None] * count
        self.started: list[float | None] = [None] * count
        self.finished: list[float | None] = [None] * count
        self.attempts = [0] * count
        self.skipped_because: list[int | None] = [None] * count
        self.counts = [0, 0, 0, 0]
        self.running = 0
        self.stopping = False
        self.results: list[NodeResult[Any] | None] = [None] * count
        if graph._finished_view is not None:
            graph._finished_view._set(0)  # a new run

    def dispatch(self) -> None:
        """Start ready nodes, best first, while slots and resources allow."""
        ready = self.ready
        if self.stopping:
            return
        limit = self.limit
        nursery = self.nursery
        assert nursery is not None
        graph = self.graph
        now = trio.current_time()
        pop = heapq.heappop
        if not graph._uses_resources:
            if not ready:
                return
            started = self.started
            nodes = graph._nodes
            spawn = nursery.start_soon
            run_node = self.run_node
            on_event = self.on_event
            while ready and (limit is None or self.running < limit):
                index = pop(ready) & _INDEX_MASK
                self.running += 1
                started[index] = now
                spawn(run_node, index, None, False, name=nodes[index].name)
                if on_event is not None:
                    self.emit("started", index, now)
            return
        # With resources: the best node of each group is the only one of that
        # group worth trying (the others need the same resources, which the
        # best one reserves if it cannot have them), so a pass costs
        # O(groups), however many nodes wait.
        groups = self.groups
        heads = [(group[0], number) for number, group in enumerate(groups) if group]
        if ready:
            heads.append((ready[0], -1))
        if not heads:
            return
        heapq.heapify(heads)
        reserved: set[_Resource] = set()
        needs_of = graph._needs
        blocked: list[tuple[int, int]] = []
        while heads and (limit is None or self.running < limit):
            key, number = heads[0]
            heap = ready if number < 0 else groups[number]
            index = key & _INDEX_MASK
            releases: list[_Release] | None = None
            if number >= 0:
                needs = needs_of[index]
                if reserved and any(resource in reserved for resource, _ in needs):
                    blocked.append(heapq.heappop(heads))
                    continue
                releases = _take_all_nowait(needs)
                if releases is None:
                    reserved.update(resource for resource, _ in needs)
                    blocked.append(heapq.heappop(heads))
                    continue
            pop(heap)
            if heap:
                heapq.heapreplace(heads, (heap[0], number))
            else:
                heapq.heappop(heads)
            self.start(nursery, index, releases, False, now)
        if self.running == 0 and (heads or blocked):
            # Every ready node waits for resources held outside the graph and
            # nothing running here will free them: let the best one wait for
            # them in its own task.
            key, number = min(heads + blocked)
            pop(ready if number < 0 else groups[number])
            self.start(nursery, key & _INDEX_MASK, None, True, now)

    def start(
        self,
        nursery: trio.Nursery,
        index: int,
        releases: list[_Release] | None,
        wait_all: bool,
        now: float,
    ) -> None:
        # The start is recorded here, in priority order, not in the new task:
        # Trio runs the tasks of one batch in an unspecified order.
        self.running += 1
        self.started[index] = now
        nursery.start_soon(
            self.run_node, index, releases, wait_all, name=self.graph._nodes[index].name
        )
        if self.on_event is not None:
            self.emit("started", index, now)

    def make_ready(self, index: int) -> None:
        group = self.graph._group[index]
        (self.ready if group < 0 else self.groups[group]).append(self.graph._keys[index])

    def ready_count(self) -> int:
        return len(self.ready) + sum(len(group) for group in self.groups)

    def emit(self, kind: Literal["started", "finished"], index: int, time: float) -> None:
        on_event = self.on_event
        if on_event is not None:
            result = self.result_of(index) if kind == "finished" else None
            on_event(NodeEvent(kind, self.graph._nodes[index], time, result))

    async def run_node(self, index: int, releases: list[_Release] | None, wait_all: bool) -> None:
        graph = self.graph
        args = graph._args[index]
        deps = graph._deps[index]
        if deps:
            values = self.values
            args = (*args, *[values[dep] for dep in deps])
        try:
            if wait_all or graph._policies[index] is not None or graph._blocking[index]:
                value = await self.call(index, args, wait_all)
            else:
                self.attempts[index] = 1
                value = await graph._fns[index](*args)
        except BaseException as error:
            if releases:
                _release_all(releases, error)
            if self.stop(index, error):
                raise
            return
        if releases:
            _release_all(releases, None)
        # Success: the hot path, inlined.
        self.values[index] = value
        self.status[index] = _SUCCEEDED
        self.finished[index] = now = trio.current_time()
        self.counts[_SUCCEEDED] += 1
        self.running -= 1
        if graph._finished_view is not None:
            graph._finished_view._set(sum(self.counts))
        if self.on_event is not None:
            self.emit("finished", index, now)
        status = self.status
        remaining = self.remaining
        ready = self.ready
        keys = graph._keys
        if graph._uses_resources:
            groups = self.groups
            group_of = graph._group
            for dependent in graph._dependents[index]:
                if status[dependent] < 0:
                    left = remaining[dependent] - 1
                    remaining[dependent] = left
                    if not left:
                        group = group_of[dependent]
                        heapq.heappush(ready if group < 0 else groups[group], keys[dependent])
            self.dispatch()
        else:
            for dependent in graph._dependents[index]:
                if status[dependent] < 0:
                    left = remaining[dependent] - 1
                    remaining[dependent] = left
                    if not left:
                        heapq.heappush(ready, keys[dependent])
            if ready:
                self.dispatch()

    def stop(self, index: int, error: BaseException) -> bool:
        """Record a node that raised; return whether the error must propagate."""
        self.running -= 1
        if not isinstance(error, Exception):
            # trio.Cancelled (or KeyboardInterrupt...): never a failure, never swallowed.
            self.finish(index, _CANCELLED)
            return True
        self.errors[index] = error
        self.finish(index, _FAILED)
        if self.graph._fail_fast:
            self.stopping = True
            return True
        self.skip_dependents(index)
        self.dispatch()
        return False

    async def call(self, index: int, args: tuple[Any, ...], wait_all: bool) -> Any:
        """Call a node's function through its policy and its blocking resources."""
        graph = self.graph
        fn = graph._fns[index]
        policy = graph._policies[index]
        attempts = self.attempts

        async def attempt(*args: Any) -> Any:
            attempts[index] += 1
            return await fn(*args)

        async with AsyncExitStack() as stack:
            for resource, weight in graph._needs[index]:
                if wait_all or resource.blocking:
                    await stack.enter_async_context(resource.hold(weight))
            if policy is None:
                return await attempt(*args)
            return await policy.call(attempt, *args)

    def finish(self, index: int, status: int) -> None:
        time = trio.current_time()
        self.status[index] = status
        self.finished[index] = time
        self.counts[status] += 1
        if self.graph._finished_view is not None:
            self.graph._finished_view._set(sum(self.counts))
        if self.on_event is not None:
            self.emit("finished", index, time)

    def skip_dependents(self, failed: int) -> None:
        dependents = self.graph._dependents
        status = self.status
        stack = list(dependents[failed])
        while stack:
            index = stack.pop()
            if status[index] < 0:
                self.skipped_because[index] = failed
                self.finish(index, _SKIPPED)
                stack.extend(dependents[index])

    def cancel_unfinished(self) -> None:
        """Mark every node that did not finish as cancelled (after the nursery closed)."""
        status = self.status
        self.ready.clear()
        for group in self.groups:
            group.clear()
        if sum(self.counts) == len(status):
            return
        for index in range(len(status)):
            if status[index] < 0:
                self.finish(index, _CANCELLED)

    def result_of(self, index: int) -> NodeResult[Any]:
        result = self.results[index]
        if result is None:
            because = self.skipped_because[index]
            status = self.status[index]
            assert status >= 0
            result = self.results[index] = NodeResult(
                node=self.graph._nodes[index],
                status=_STATUSES[status],
                value=self.values[index],
                error=self.errors[index],
                started_at=self.started[index],
                finished_at=self.finished[index],
                attempts=self.attempts[index],
                skipped_because=None if because is None else self.graph._nodes[because],
            )
        return result
