"""TaskGraph: what add() records, and run(), which hands the graph to a scheduler.

How a graph is stored, so that adding a node costs little Python work and
few objects the cyclic GC must scan: each node is one slotted :class:`Node`
(its function and arguments, and its dependents), and the edges are flat,
in two C arrays of ints: ``_edges`` holds every node's dependencies one
node after the other, and node *i*'s are
``_edges[_starts[i]:_starts[i + 1]]``. add() records each edge the other
way round too, in the dependency's ``Node._dependents`` (an array), while
that node is at hand: a run reads them as they are, on the node it has
just run. What few nodes have -- a name given by the caller, a priority
other than 0, a policy, resources -- is kept in dicts keyed by the node's
index. Default names (``fetch-2``) are only worked out when something asks
for one, at the latest when :meth:`TaskGraph.run` names the nodes' tasks,
for a run of nodes of one function at a time.

(Arrays, not lists: they hold no int object per node or edge, and a run
reads them as they are, without a copy. The cyclic GC tracks an array but
never looks inside it, so a big graph adds two small tracked objects per
node, its Node and its array of dependents (and the tuple of its own
arguments, if it has any), and none per edge or name.)
"""

from __future__ import annotations

import functools
import inspect
import itertools
import operator
import types
from array import array
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, final

import attrs
import trio

from .. import _created
from .._errors import CycleError
from .._limit import KeyedLimiter, LimiterLike, _check_limiter
from .._policy import SupportsCall, _check_call_guard
from .._util import (
    check_async_callable,
    check_int,
    check_name,
    check_sync_callable,
    generator_function_error,
)
from .._values import ReadOnlyValue
from ._node import _INDEX_TYPE, Node, _new_node
from ._order import find_cycle
from ._resources import _Resource
from ._results import GraphResult, GraphStatistics, NodeEvent
from ._scheduler import _Run

__all__ = ["TaskGraph"]

_T = TypeVar("_T")

# Types that are callable and can never be awaitable themselves: add() needs
# no further check for them, which keeps adding 100,000 nodes cheap.
_PLAIN_CALLABLES = frozenset(
    {types.FunctionType, types.MethodType, types.BuiltinFunctionType, functools.partial}
)

_FunctionType = types.FunctionType
# Calling a generator or async generator function never makes an awaitable:
# add() refuses one at once (any other plain function may return one, as a
# lambda wrapping an async function does, so only its first call can tell).
_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR

_Needs = tuple[tuple[_Resource, int], ...]
_NO_RESOURCES: tuple[()] = ()


_fn_of = operator.attrgetter("_fn")
_NO_FUNCTION: Any = object()  # what add() has found plain before its first call


def _default_name(fn: Callable[..., Any]) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) and name else type(fn).__name__


def _check_fn(fn: object) -> None:
    """Refuse what add() can tell is not an async function (a plain function is checked inline)."""
    if type(fn) not in _PLAIN_CALLABLES:
        check_async_callable("fn", fn)
    # A generator function, or a partial, method or object calling one.
    error = generator_function_error("fn", fn)
    if error is not None:
        raise error


def _check_priority(priority: object) -> None:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {priority!r}")


def _check_deps(deps: object) -> Sequence[Node[Any]]:
    """Return *deps* as a sequence if it can hold nodes (add() checks each node)."""
    if isinstance(deps, str | bytes) or not isinstance(deps, Iterable):
        raise TypeError(f"deps must be a sequence of nodes, got {deps!r}")
    return tuple(deps)


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
    failure, and neither is a function that turns out not to be async (see
    :meth:`run`).

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
    # Node i depends on _edges[_starts[i]:_starts[i + 1]] (indices of earlier nodes).
    # (C arrays: no int object per edge or node, and a run reads them as they are.)
    _edges: array[int] = attrs.field(factory=lambda: array(_INDEX_TYPE), init=False)
    _starts: array[int] = attrs.field(factory=lambda: array(_INDEX_TYPE, [0]), init=False)
    # The names of the first nodes (a node without one gets its default name
    # when something asks), the names given to add(), and per default base
    # name the next suffix. While no base could make another base's default
    # names (see _note_base), _names holds no default name: base f has handed
    # out f, f-2, ..., f-(counter - 1), so a graph of a million nodes keeps no
    # set of a million names for the collector to scan. Once one could,
    # _names_complete is set and _names holds every name handed out.
    _node_names: list[str] = attrs.field(factory=list, init=False)
    _names: set[str] = attrs.field(factory=set, init=False)
    _names_complete: bool = attrs.field(default=False, init=False)
    _name_counters: dict[str, int] = attrs.field(factory=dict, init=False)
    _priorities: dict[int, int] = attrs.field(factory=dict, init=False)
    _policies: dict[int, SupportsCall] = attrs.field(factory=dict, init=False)
    _needs: dict[int, _Needs] = attrs.field(factory=dict, init=False)
    # Nodes whose function is called through _Run.call: a policy or a blocking resource.
    _slow: set[int] = attrs.field(factory=set, init=False)
    # Ready nodes that take the same resources without waiting share one heap
    # (a "group"); a node in no group only needs a slot.
    _group: dict[int, int] = attrs.field(factory=dict, init=False)
    _group_ids: dict[tuple[str, ...], int] = attrs.field(factory=dict, init=False)
    _uses_resources: bool = attrs.field(default=False, init=False)
    _edges_rewritten: bool = attrs.field(default=False, init=False)
    _run: _Run | None = attrs.field(default=None, init=False)
    _running: bool = attrs.field(default=False, init=False)
    # finished_value, made when first asked for (None: nothing updates it)
    _finished_view: ReadOnlyValue[int] | None = attrs.field(default=None, init=False)
    # The last function add() found to be a plain async def one: not tested again.
    _plain_fn: object = attrs.field(default=_NO_FUNCTION, init=False)

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
        resources: Sequence[str] | Mapping[str, int] = _NO_RESOURCES,
    ) -> Node[_T]:
        """Add a node that will call ``await fn(*args, *results_of_deps)``.

        Args:
          fn: an async function (or any callable that returns an awaitable,
            such as ``lambda *deps: fetch(url, *deps)``). Whether it really
            is async is only known when it is called: a function that
            returns something else makes :meth:`run` raise. A generator or
            async generator function is refused at once.
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
            *fn* included: pass the function and its arguments; and a
            generator or async generator function, which cannot be awaited).
          ValueError: if *name* is taken, a dependency is not a node of this
            graph, a resource is unknown, or a weight is more than its
            resource could ever give.
          RuntimeError: if the graph is running.
        """
        # The common call (a plain function, default name and priority, a
        # list of nodes as deps) runs the fewest lines: every rarer argument
        # is checked behind one test of its default.
        if self._running:
            raise RuntimeError("cannot add nodes to a graph while it runs")
        if fn is not self._plain_fn:
            if type(fn) is not _FunctionType:
                _check_fn(fn)
            elif fn.__code__.co_flags & _GENERATOR_FLAGS:
                _check_fn(fn)  # refuses it
            else:
                self._plain_fn = fn
        if name is not None:
            self._check_name(name)
        if type(priority) is not int:
            _check_priority(priority)
        if policy is not None:
            _check_call_guard("policy", policy)
        if type(deps) is not list and type(deps) is not tuple:
            deps = _check_deps(deps)
        nodes = self._nodes
        index = len(nodes)
        edges = self._edges
        if deps:
            # Only a Node of this graph has this graph as its _graph (anything
            # else has no _graph, or another one). A loop in Python is faster
            # here than map() and operator's getters in C (a slot is read by a
            # specialised instruction). The edge is recorded both ways at once,
            # while the dependency's node is at hand; whatever stops the loop
            # (a bad dep, an odd object's own error, a KeyboardInterrupt),
            # what it recorded is taken back.
            append = edges.append
            try:
                for dep in deps:
                    if dep._graph is not self:
                        raise AttributeError
                    append(dep._index)
                    dep._dependents.append(index)
            except BaseException as error:
                self._take_back_edges()
                if isinstance(error, AttributeError):
                    raise self._bad_dep(deps) from None
                raise
        needs: _Needs = ()
        if resources is not _NO_RESOURCES:  # the default (any empty tuple is that one)
            try:
                needs = self._check_resources(name, fn, resources)
            except BaseException:
                self._take_back_edges()
                raise

        node: Node[_T] = _new_node()
        node._graph = self
        node._index = index
        node._fn = fn
        node._args = args
        node._dependents = _new_dependents()
        nodes.append(node)
        self._starts.append(len(edges))
        if name is not None:  # _check_name named every earlier node
            self._node_names.append(name)
            self._names.add(name)
        if priority:
            self._priorities[index] = priority
        if policy is not None:
            self._policies[index] = policy
            self._slow.add(index)
        if needs:
            self._add_needs(index, needs)
        return node

    def _take_back_edges(self) -> None:
        """Forget the edges a failed add() recorded for the node it did not add."""
        first = self._starts[-1]
        nodes = self._nodes
        index = len(nodes)  # the node's index, had it been added
        for dep in self._edges[first:]:
            # Its last dependent, unless add() stopped between the two appends.
            dependents = nodes[dep]._dependents
            if dependents and dependents[-1] == index:
                dependents.pop()
        del self._edges[first:]

    def _check_name(self, name: object) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        self._name_nodes()  # the default names of earlier nodes are taken too
        if name in self._names or self._is_default_name(name):
            raise ValueError(f"name {name!r} is already used by another node of this graph")

    def _is_default_name(self, name: str) -> bool:
        """Whether a node has *name* as its default name (when _names does not say)."""
        counters = self._name_counters
        if self._names_complete or not counters:
            return False  # _names has them all, or none was handed out
        if counters.get(name, 1) > 1:
            return True  # the first node of base *name*
        split = _split_suffix(name)
        # Every counter below the base's next one was handed out, to a node of
        # that base or (skipped) to a node given that name.
        return split is not None and split[1] < counters.get(split[0], 0)

    def _note_base(self, base: str) -> None:
        """Keep default names in _names from now on if *base* could make another base's.

        Bases f and f-2 would both name a node f-2; a base without a suffix
        of its own (``-2``, ``-3``, ...) can never make a name of another
        base's, so until one comes no default name needs to be in _names.
        """
        if self._names_complete or _split_suffix(base) is None:
            return
        self._names.update(self._node_names)  # every node before this base's is named
        self._names_complete = True

    def _bad_dep(self, deps: Iterable[object]) -> Exception:
        """The error for the first of *deps* that is not a node of this graph."""
        for position, dep in enumerate(deps):
            if not isinstance(dep, Node):
                return TypeError(f"deps[{position}] must be a Node, got {dep!r}")
            if dep._graph is not self:
                return ValueError(f"deps[{position}] is {dep!r} of another graph")
        raise AssertionError("every dependency is a node of this graph")  # pragma: no cover

    def _next_default_name(self, base: str) -> tuple[str, int]:
        """The default name the next node of *base* gets, and its counter."""
        self._note_base(base)
        counter = self._name_counters.get(base, 1)
        name = base if counter == 1 else f"{base}-{counter}"
        while name in self._names:
            counter += 1
            name = f"{base}-{counter}"
        return name, counter

    def _name_nodes(self) -> None:
        """Give every node added so far without a name its default name, in order."""
        first = len(self._node_names)
        if first == len(self._nodes):
            return
        # Nodes past the named ones all want a default name (add() names the
        # earlier ones before recording a given name); name them a run of
        # consecutive nodes of one function at a time.
        fns = map(_fn_of, itertools.islice(self._nodes, first, None))
        for _, run in itertools.groupby(fns, key=id):
            same_fn = list(run)
            self._name_run(_default_name(same_fn[0]), len(same_fn))

    def _name_run(self, base: str, size: int) -> None:
        """Name the next *size* nodes, whose default names come from *base*."""
        self._note_base(base)
        names = self._names
        complete = self._names_complete
        node_names = self._node_names
        counter = self._name_counters.get(base, 1)
        # The names they get when none of them is taken yet (the common case),
        # built and checked without a Python loop over the nodes.
        wanted = list(
            map(
                operator.add, itertools.repeat(f"{base}-"), map(str, range(counter, counter + size))
            )
        )
        if counter == 1:
            wanted[0] = base
        if not names or names.isdisjoint(wanted):
            if complete:
                names.update(wanted)
            node_names += wanted
            self._name_counters[base] = counter + size
            return
        for _ in range(size):  # one at a time, skipping the names taken
            name, counter = self._next_default_name(base)
            self._name_counters[base] = counter + 1
            if complete:
                names.add(name)
            node_names.append(name)

    def _check_resources(
        self, name: str | None, fn: Callable[..., Any], resources: object
    ) -> _Needs:
        if name is None:
            # The name the node will get, for the messages: nodes are named in order.
            self._name_nodes()
            name = self._next_default_name(_default_name(fn))[0]
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
                    f"node {name!r} uses unknown resource {resource_name!r} "
                    f"(the graph's resources: {known})"
                )
            if resource_name in seen:
                raise ValueError(f"node {name!r} lists resource {resource_name!r} twice")
            seen.add(resource_name)
            check_int(f"resources[{resource_name!r}]", weight)
            if weight > 1 and not resource.weighted:
                raise ValueError(
                    f"node {name!r} needs weight {weight} of resource {resource_name!r}, "
                    "but only a WeightedSemaphore can be held with a weight above 1"
                )
            if resource.capacity is not None and weight > resource.capacity:
                raise ValueError(
                    f"node {name!r} needs weight {weight} of resource {resource_name!r}, "
                    f"whose capacity is {resource.capacity}"
                )
            needs.append((resource, weight))
        # One global order (by name) for the blocking fallback, as acquire_all does.
        needs.sort(key=lambda need: need[0].name)
        return tuple(needs)

    def _add_needs(self, index: int, needs: _Needs) -> None:
        self._needs[index] = needs
        if any(resource.blocking for resource, _ in needs):
            self._slow.add(index)
        signature = tuple(resource.name for resource, _ in needs if not resource.blocking)
        if signature:
            self._uses_resources = True
            self._group[index] = self._group_ids.setdefault(signature, len(self._group_ids))

    @property
    def _deps(self) -> _DepLists:
        """Each node's dependencies as a tuple of indices (a view on the flat edges)."""
        return _DepLists(self)

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
            if run is not None:
                run.watched = True  # a run under way updates it from now on
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
            nodes=run.count,
            pending=run.count - ready - run.running - finished,
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
        # public API; only _DepLists can rewrite edges (and it sets the flag
        # that brings us here). A back edge sends us to the full search.
        deps = self._deps
        if all(dep < index for index, node_deps in enumerate(deps) for dep in node_deps):
            return
        names = [node.name for node in self._nodes]
        cycle = find_cycle({names[i]: [names[d] for d in ds] for i, ds in enumerate(deps)})
        if cycle is not None:
            raise CycleError(cycle)

    async def run(self, *, on_event: Callable[[NodeEvent], object] | None = None) -> GraphResult:
        """Run every node and return their results.

        Every node runs at most once, in a task of one nursery that
        :meth:`run` opens and waits for; a graph may be run again, each run
        starting afresh. Without *limit*, priorities or resources, the task
        of a node that succeeds goes on to run the first dependent it makes
        ready (renamed after it), instead of starting a task for it: a
        node's function must not count on having a task to itself (such as
        a :class:`trio.Lock` left held for the next node to find).

        Args:
          on_event: a plain function, called synchronously (in the scheduler,
            so keep it quick) with a :class:`NodeEvent` when a node starts and
            when it finishes in any way, e.g. to draw a live progress display.
            If it raises, the run is cancelled (no node starts after it) and the
            error propagates.

        Returns:
          A :class:`GraphResult` with one :class:`NodeResult` per node. A
          failure does not raise (unless *fail_fast*): check
          :attr:`GraphResult.ok` or call :meth:`GraphResult.raise_for_failures`.

        Raises:
          CycleError: before anything starts, if the nodes' dependencies form
            a cycle.
          RuntimeError: if the graph is already running.
          TypeError: if *on_event* is not a plain function (an async function
            would never run), or if it returns a coroutine; or if a node's
            function returns something that cannot be awaited (it was not an
            async function). Those are mistakes in the program, not failures
            of a node: the run is cancelled (the node and every unfinished
            one are ``cancelled``; nothing is ``failed`` or ``skipped``) and
            the error is raised as itself, not in an :exc:`ExceptionGroup`.
          ExceptionGroup: with *fail_fast*, of the failure(s) that cancelled
            the run (the rest are marked ``cancelled``).
        """
        if self._running:
            raise RuntimeError("this graph is already running")
        if on_event is not None:
            check_sync_callable("on_event", on_event)
        if self._edges_rewritten:
            self._check_acyclic()
        self._name_nodes()  # the nodes' tasks are named after them
        run = self._run = _Run(self, on_event)
        if not self._nodes:
            await trio.lowlevel.checkpoint()  # an empty nursery would not be one
            return GraphResult(run=run)
        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                run.begin(nursery)
        except BaseException as error:
            if run.misuse is None or not _misuse_may_replace(error):
                raise
        finally:
            self._running = False
            run.cancel_unfinished()
        if run.misuse is not None:
            raise run.misuse
        return GraphResult(run=run)


def _split_suffix(name: str) -> tuple[str, int] | None:
    """*name*'s base and counter if it has a default name's suffix (``f-2``: ``("f", 2)``)."""
    base, dash, suffix = name.rpartition("-")
    # A default name's counter is written as str(counter), from 2 up (and is
    # never longer than 18 digits, which int() also reads without a limit).
    if (
        dash
        and len(suffix) < 19
        and suffix.isascii()
        and suffix.isdigit()
        and suffix[0] != "0"
        and suffix != "1"
    ):
        return base, int(suffix)
    return None


# A new empty array of indices, without parsing a typecode.
_new_dependents = array(_INDEX_TYPE).__copy__


def _misuse_may_replace(error: BaseException) -> bool:
    """Whether a programming error in the run is raised instead of *error*.

    It replaces what its own cancellation caused and the failures that came
    with it, but not a KeyboardInterrupt or another BaseException.
    """
    if isinstance(error, BaseExceptionGroup):
        return error.split((Exception, trio.Cancelled))[1] is None
    return isinstance(error, Exception | trio.Cancelled)


@final
class _DepLists:
    """A graph's edges seen as one tuple of dependency indices per node.

    Reading is what the cycle check needs. Writing replaces a node's
    dependencies in place, which add() can never do: it is how tests build a
    back edge, and it marks the graph so that the next run looks for a cycle.
    """

    __slots__ = ("_graph",)

    def __init__(self, graph: TaskGraph) -> None:
        self._graph = graph

    def __len__(self) -> int:
        return len(self._graph._nodes)

    def __iter__(self) -> Iterator[tuple[int, ...]]:
        return (self[index] for index in range(len(self)))

    def __getitem__(self, index: int) -> tuple[int, ...]:
        starts = self._graph._starts
        return tuple(self._graph._edges[starts[index] : starts[index + 1]])

    def __setitem__(self, index: int, deps: Sequence[int]) -> None:
        graph = self._graph
        starts = graph._starts
        first, end = starts[index], starts[index + 1]
        graph._edges[first:end] = array(_INDEX_TYPE, deps)
        shift = len(deps) - (end - first)
        for later in range(index + 1, len(starts)):
            starts[later] += shift
        for node in graph._nodes:
            node._dependents = _new_dependents()
        for owner, owner_deps in enumerate(self):
            for dep in owner_deps:
                graph._nodes[dep]._dependents.append(owner)
        graph._edges_rewritten = True
