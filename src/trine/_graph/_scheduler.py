"""One run of a task graph: its state, and the scheduler.

Every node of a run runs in a Trio task of one nursery, started only once
the node may actually run. The scheduler is not a task of its own: it is
plain code run by the task that just finished (and once by
:meth:`_Run.begin`), so a completion costs no extra trip through Trio's
scheduler, and the clock is read once per completion, for the node's
finishing time and the start time of the nodes it lets start. Without a
limit, priorities or resources, the task that just finished runs the first
of those nodes itself (see :func:`_lean_task`); otherwise each node has a
task of its own (:meth:`_Run.run_node`).

**Who waits for whom.** The graph keeps its edges flat, each node's
dependencies one after the other (what the node's function is called
with), and each node's dependents on its Node, in insertion order.
:meth:`_Run.begin` counts each node's dependencies still to succeed. A node
that succeeds counts its dependents down; one whose count reaches zero is
ready. A node that fails walks its dependents (and theirs) to skip them, so
a failure costs O(what it skips).

**Which ready node starts.** Without a limit, priorities or resources, a
node starts the moment it is ready: each completion starts its dependents
in insertion order, and nothing waits in a queue. Otherwise ready nodes
wait in heaps (higher priority first, then insertion order) while a slot
under ``limit`` is free; each node's resources are taken with the limiters'
non-blocking methods. Ready nodes that take the same resources share one
heap, so one pass looks at the best node of each such group only, however
many are waiting: O(log V) per heap operation and O(groups) per pass.
"""

from __future__ import annotations

import heapq
import itertools
import math
import operator
import types
from array import array
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, Literal, final

import trio

from .._util import NotAwaitableError, check_awaitable, check_sync_result
from ._node import _INDEX_TYPE, Node
from ._resources import _Release, _release_all, _Resource, _take_all_nowait
from ._results import (
    _CANCELLED,
    _FAILED,
    _SKIPPED,
    _STATUSES,
    _SUCCEEDED,
    _UNFINISHED,
    NodeEvent,
    NodeResult,
)

if TYPE_CHECKING:
    from ._taskgraph import TaskGraph

__all__ = ["_Run"]

_CoroutineType = types.CoroutineType

# A heap key is (-priority << _INDEX_BITS) + index: one int compares faster
# than a tuple, and orders by priority (higher first), then insertion order.
_INDEX_BITS = 40
_INDEX_MASK = (1 << _INDEX_BITS) - 1
# How many nodes in a row one task of a lean run may run (see _lean_task).
_HOPS = 32
_NOT_YET = (math.nan,)  # a time not yet reached, in the arrays of times


@final
class _Run:
    """The state of one :meth:`TaskGraph.run`; its methods are the scheduler."""

    __slots__ = (
        "attempts",
        "count",
        "edges",
        "errors",
        "fail_fast",
        "fast",
        "finished",
        "graph",
        "groups",
        "limit",
        "misuse",
        "names",
        "nodes",
        "now",
        "nursery",
        "on_event",
        "ready",
        "remaining",
        "results",
        "running",
        "skipped_because",
        "slow",
        "spawn",
        "started",
        "starts",
        "status",
        "stopping",
        "task",
        "value_of",
        "values",
        "watched",
    )

    def __init__(self, graph: TaskGraph, on_event: Callable[[NodeEvent], object] | None) -> None:
        count = len(graph._nodes)
        self.graph = graph
        self.nodes = graph._nodes
        self.names = graph._node_names  # every node has one: run() named them
        self.count = count
        self.on_event = on_event
        # Whether a finished node is reported: to on_event, or to finished_value
        # (which sets this when it is made during a run).
        self.watched = on_event is not None or graph._finished_view is not None
        # The run's clock, read as trio.current_time() reads it (one call, not three).
        self.now: Callable[[], float] = trio.current_time
        self.limit = graph._limit
        self.fail_fast = graph._fail_fast
        # Without a limit, priorities or resources, ready nodes need no heap.
        self.fast = graph._limit is None and not graph._priorities and not graph._uses_resources
        # The run's numbers per node and per edge are C arrays (the status a
        # byte), not lists of int and float objects: a run of 10**5 nodes then
        # touches a few contiguous megabytes instead of objects all over the heap.
        self.edges = graph._edges  # add() is refused while the graph runs
        self.starts = graph._starts
        self.slow = graph._slow
        self.nursery: trio.Nursery | None = None
        self.spawn: Callable[..., object] = _not_started
        self.task: Callable[..., Awaitable[None]] = self.run_node
        # Ready nodes: their indices (fast), or the heap keys of those that take
        # no resources, and one heap per group of nodes that take the same ones.
        self.ready: list[int] = []
        self.groups: list[list[int]] = [[] for _ in graph._group_ids]
        # Per node: one status code (a byte), and what its NodeResult is built from.
        self.status = bytearray([_UNFINISHED]) * count
        self.values: list[Any] = [None] * count
        self.value_of = self.values.__getitem__
        # When each node started and finished; NaN until then (None in results).
        self.started = array("d", _NOT_YET) * count
        self.finished = array("d", _NOT_YET) * count
        # What few nodes have: an error, a skip, counted attempts, a built result.
        self.errors: dict[int, BaseException] = {}
        self.skipped_because: dict[int, int] = {}
        self.attempts: dict[int, int] = {}
        self.results: dict[int, NodeResult[Any]] = {}
        self.running = 0
        self.stopping = False
        self.misuse: BaseException | None = None
        if graph._finished_view is not None:
            graph._finished_view._set(0)  # a new run
        # Per node, made by begin(): dependencies still to succeed. (Its
        # dependents are Node._dependents, recorded by add().)
        self.remaining = array(_INDEX_TYPE)

    # -- start and end ---------------------------------------------------------

    def begin(self, nursery: trio.Nursery) -> None:
        """Turn the edges around and start the nodes that depend on nothing."""
        self.nursery = nursery
        self.spawn = nursery.start_soon
        self.now = trio.lowlevel.current_clock().current_time
        count = self.count
        starts = self.starts
        remaining = self.remaining = array(
            _INDEX_TYPE, map(operator.sub, starts[1 : count + 1], starts)
        )
        roots = list(itertools.compress(range(count), map(operator.not_, remaining)))
        if self.fast:
            self.ready = roots
            self.task = _lean_task(self)
        else:
            for index in roots:
                key, heap = self.key_and_heap(index)
                heap.append(key)
            heapq.heapify(self.ready)
            for group in self.groups:
                heapq.heapify(group)
        self.dispatch(trio.current_time())

    def cancel_unfinished(self) -> None:
        """Mark every node that did not finish as cancelled (after the nursery closed)."""
        # Nothing runs any more, even where on_event raised before a node's
        # task could count it out.
        self.running = 0
        self.ready.clear()
        for group in self.groups:
            group.clear()
        if _UNFINISHED not in self.status:
            return
        now = trio.current_time()
        status = self.status
        unfinished = [index for index, code in enumerate(status) if code == _UNFINISHED]
        # Every one is marked before any is reported, and each is reported even
        # if on_event raises for one: then the first error propagates, after.
        for index in unfinished:
            status[index] = _CANCELLED
            self.finished[index] = now
        if not self.watched:
            return
        first_error: BaseException | None = None
        for index in unfinished:
            try:
                self.report_finished(index, now)
            except BaseException as error:
                if first_error is None:
                    first_error = error
        if first_error is not None:
            raise first_error

    def abort(self, error: BaseException) -> None:
        """Cancel the run for a programming error, which run() raises as itself."""
        if self.misuse is None:
            self.misuse = error
        self.stopping = True
        if self.nursery is not None:
            self.nursery.cancel_scope.cancel()

    # -- one node --------------------------------------------------------------

    async def run_node(
        self, index: int, releases: list[_Release] | None = None, wait_all: bool = False
    ) -> None:
        node = self.nodes[index]
        starts = self.starts
        first = starts[index]
        end = starts[index + 1]
        try:
            if wait_all or index in self.slow:
                value = await self.call(index, node, first, end, wait_all)
            else:
                coro = _call(node, self.values, self.edges, first, end)
                if type(coro) is not _CoroutineType:
                    coro = check_awaitable("fn", coro)
                value = await coro
        except BaseException as error:
            if releases:
                _release_all(releases, error)
            if self.fail(index, error):
                raise
            return
        if releases:
            _release_all(releases, None)
        # Success: the hot path, inline.
        now = self.now()
        self.values[index] = value
        self.status[index] = _SUCCEEDED
        self.finished[index] = now
        self.running -= 1
        if self.watched:
            self.report_finished(index, now)
        dependents = node._dependents
        if dependents:
            self.count_down(dependents)
        if self.ready or self.groups:
            self.dispatch(now)

    async def call(self, index: int, node: Node[Any], first: int, end: int, wait_all: bool) -> Any:
        """Call a node's function through its policy and its blocking resources."""
        args = (*node._args, *map(self.value_of, self.edges[first:end]))
        fn = node._fn
        policy = self.graph._policies.get(index)
        attempts = self.attempts
        attempts[index] = 0

        async def attempt(*args: Any) -> Any:
            attempts[index] += 1
            coro = fn(*args)
            if type(coro) is not _CoroutineType:
                coro = check_awaitable("fn", coro)
            return await coro

        async with AsyncExitStack() as stack:
            for resource, weight in self.graph._needs.get(index, ()):
                if wait_all or resource.blocking:
                    await stack.enter_async_context(resource.hold(weight))
            if policy is None:
                return await attempt(*args)
            return await policy.call(attempt, *args)

    def count_down(self, dependents: array[int]) -> None:
        """Count down the dependents of a node that succeeded; queue each that is ready."""
        remaining = self.remaining
        for dependent in dependents:
            left = remaining[dependent] - 1
            remaining[dependent] = left
            if not left:
                self.push(dependent)

    def fail(self, index: int, error: BaseException) -> bool:
        """Record a node that raised; return whether the error must propagate."""
        self.running -= 1
        now = self.now()
        if not isinstance(error, Exception):
            # trio.Cancelled (or KeyboardInterrupt...): never a failure, never swallowed.
            self.finish(index, _CANCELLED, now)
            return True
        if isinstance(error, NotAwaitableError):
            # A mistake in the program, not a failure of the node: nothing is skipped.
            self.finish(index, _CANCELLED, now)
            self.abort(error)
            return False
        self.errors[index] = error
        self.finish(index, _FAILED, now)
        if self.fail_fast:
            self.stopping = True
            return True
        self.skip_dependents(index, now)
        self.dispatch(now)
        return False

    def finish(self, index: int, status: int, now: float) -> None:
        self.status[index] = status
        self.finished[index] = now
        if self.watched:
            self.report_finished(index, now)

    def report_finished(self, index: int, now: float) -> None:
        """Tell finished_value and on_event that a node has finished."""
        view = self.graph._finished_view
        if view is not None:
            view._set(view.value + 1)
        if self.on_event is not None:
            self.emit("finished", index, now)

    def skip_dependents(self, failed: int, now: float) -> None:
        nodes = self.nodes
        status = self.status
        stack = list(nodes[failed]._dependents)
        while stack:
            index = stack.pop()
            if status[index] == _UNFINISHED:
                self.skipped_because[index] = failed
                self.finish(index, _SKIPPED, now)
                stack.extend(nodes[index]._dependents)

    # -- events and results ----------------------------------------------------

    def emit(self, kind: Literal["started", "finished"], index: int, time: float) -> None:
        on_event = self.on_event
        if on_event is None:
            return
        result = self.result_of(index) if kind == "finished" else None
        try:
            returned = on_event(NodeEvent(kind, self.nodes[index], time, result))
        except BaseException:
            # The error cancels the run: nothing more starts, on either path,
            # while the tasks still running end.
            self.stopping = True
            raise
        if returned is not None:
            try:
                check_sync_result("on_event", returned)
            except TypeError as error:
                self.abort(error)

    def result_of(self, index: int) -> NodeResult[Any]:
        result = self.results.get(index)
        if result is None:
            status = self.status[index]
            assert status != _UNFINISHED
            started: float | None = self.started[index]
            if started != started:  # NaN: it never started
                started = None
            finished = self.finished[index]
            attempts = self.attempts.get(index)
            if attempts is None:  # called directly: once if it started
                attempts = 0 if started is None else 1
            because = self.skipped_because.get(index)
            result = self.results[index] = NodeResult(
                node=self.nodes[index],
                status=_STATUSES[status],
                value=self.values[index],
                error=self.errors.get(index),
                started_at=started,
                finished_at=None if finished != finished else finished,
                attempts=attempts,
                skipped_because=None if because is None else self.nodes[because],
            )
        return result

    @property
    def counts(self) -> tuple[int, int, int, int]:
        """How many nodes succeeded, failed, were skipped and were cancelled so far."""
        status = self.status
        return (
            status.count(_SUCCEEDED),
            status.count(_FAILED),
            status.count(_SKIPPED),
            status.count(_CANCELLED),
        )

    def ready_count(self) -> int:
        return len(self.ready) + sum(len(group) for group in self.groups)

    # -- which ready node starts -------------------------------------------------

    def key_and_heap(self, index: int) -> tuple[int, list[int]]:
        """A ready node's heap key, and the heap it waits in."""
        priority = self.graph._priorities.get(index)
        key = index if priority is None else (-priority << _INDEX_BITS) + index
        group = self.graph._group.get(index)
        return key, self.ready if group is None else self.groups[group]

    def push(self, index: int) -> None:
        """Put a node that became ready on its heap."""
        key, heap = self.key_and_heap(index)
        _heappush(heap, key)

    def dispatch(self, now: float) -> None:
        """Start ready nodes, best first, while slots and resources allow."""
        if self.stopping:
            return
        if self.fast:
            self.start_all(now)
        elif not self.groups:
            ready = self.ready
            limit = self.limit
            while ready and (limit is None or self.running < limit):
                self.start(_heappop(ready) & _INDEX_MASK, None, False, now)
        else:
            self.start_with_resources(now)

    def start_all(self, now: float) -> None:
        """Start every ready node, in insertion order (no limit, priorities or resources)."""
        ready = self.ready
        started = self.started
        spawn = self.spawn
        task = self.task
        names = self.names
        # Taken off the list one at a time, so that on_event sees a started
        # node as running and no longer ready.
        ready.reverse()
        while ready:
            index = ready.pop()
            self.running += 1
            started[index] = now
            spawn(task, index, name=names[index])
            if self.on_event is not None:
                self.emit("started", index, now)

    def start_with_resources(self, now: float) -> None:
        # The best node of each group is the only one of that group worth
        # trying (the others need the same resources, which the best one
        # reserves if it cannot have them), so a pass costs O(groups),
        # however many nodes wait.
        ready = self.ready
        groups = self.groups
        limit = self.limit
        heads = [(group[0], number) for number, group in enumerate(groups) if group]
        if ready:
            heads.append((ready[0], -1))
        if not heads:
            return
        heapq.heapify(heads)
        reserved: set[_Resource] = set()
        needs_of = self.graph._needs
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
            _heappop(heap)
            if heap:
                heapq.heapreplace(heads, (heap[0], number))
            else:
                heapq.heappop(heads)
            self.start(index, releases, False, now)
        if self.running == 0 and (heads or blocked):
            # Every ready node waits for resources held outside the graph and
            # nothing running here will free them: let the best one wait for
            # them in its own task.
            key, number = min(heads + blocked)
            _heappop(ready if number < 0 else groups[number])
            self.start(key & _INDEX_MASK, None, True, now)

    def start(
        self, index: int, releases: list[_Release] | None, wait_all: bool, now: float
    ) -> None:
        # The start is recorded here, in priority order, not in the new task:
        # Trio runs the tasks of one batch in an unspecified order.
        self.running += 1
        self.started[index] = now
        self.spawn(self.task, index, releases, wait_all, name=self.names[index])
        if self.on_event is not None:
            self.emit("started", index, now)


def _call(node: Node[Any], values: list[Any], edges: array[int], first: int, end: int) -> Any:
    """Call a node's function with its arguments and its dependencies' values.

    The node depends on ``edges[first:end]``. Up to three dependencies are
    read one by one: slicing the edges and mapping them costs two objects
    and a call per value more.
    """
    fn = node._fn
    args = node._args
    deps = end - first
    if args:
        return fn(*args, *map(values.__getitem__, edges[first:end])) if deps else fn(*args)
    if deps == 1:
        return fn(values[edges[first]])
    if deps == 2:
        return fn(values[edges[first]], values[edges[first + 1]])
    if deps == 3:
        return fn(values[edges[first]], values[edges[first + 1]], values[edges[first + 2]])
    if not deps:
        return fn()
    return fn(*map(values.__getitem__, edges[first:end]))


def _lean_task(run: _Run) -> Callable[[int], Awaitable[None]]:
    """The task body of a run without limit, priorities or resources.

    Such a run needs no queue: a node starts the moment its last dependency
    succeeds. This is :meth:`_Run.run_node` cut down to that, with the run's
    state in closure cells, and one saving: the task of a node that
    succeeds runs the first dependent it makes ready itself, and starts new
    tasks only for the others, so half the nodes of a typical graph cost no
    task of their own (no spawn, no trip through the scheduler). The task
    is renamed after each node it runs, and the context it runs it in is
    the one a new task would have had (a copy of the finished node's, which
    nothing reads again). One task runs at most ``1 + _HOPS`` nodes, then
    starts new tasks for the next ones, so a chain of nodes that never
    checkpoint still lets the scheduler run between every few of them.
    """
    nodes = run.nodes
    starts = run.starts
    edges = run.edges
    value_of = run.value_of
    values = run.values
    status = run.status
    finished = run.finished
    started = run.started
    remaining = run.remaining
    spawn = run.spawn
    names = run.names
    now = run.now
    slow = run.slow  # the nodes with a policy
    on_event = run.on_event

    async def lean_node(index: int) -> None:
        task: trio.lowlevel.Task | None = None
        hops = _HOPS
        while True:
            node = nodes[index]
            first = starts[index]
            end = starts[index + 1]
            try:
                if slow and index in slow:
                    value = await run.call(index, node, first, end, False)
                else:
                    # What _call does, inlined: on this path one more
                    # Python call per node is a cost that shows.
                    fn = node._fn
                    args = node._args
                    deps = end - first
                    if args:
                        coro = fn(*args, *map(value_of, edges[first:end])) if deps else fn(*args)
                    elif deps == 1:
                        coro = fn(values[edges[first]])
                    elif deps == 2:
                        coro = fn(values[edges[first]], values[edges[first + 1]])
                    elif deps == 3:
                        coro = fn(
                            values[edges[first]], values[edges[first + 1]], values[edges[first + 2]]
                        )
                    elif not deps:
                        coro = fn()
                    else:
                        coro = fn(*map(value_of, edges[first:end]))
                    if type(coro) is not _CoroutineType:
                        coro = check_awaitable("fn", coro)
                    value = await coro
            except BaseException as error:
                if run.fail(index, error):
                    raise
                return
            time = now()
            values[index] = value
            status[index] = _SUCCEEDED
            finished[index] = time
            # Counted out before it is reported, as run_node does: on_event
            # (and finished_value's waiters) may read statistics().
            run.running -= 1
            if run.watched:
                run.report_finished(index, time)
            # Dependents are in insertion order, so the nodes one completion
            # lets start, start in that order. A dependency that failed never
            # counts down, so a skipped node never gets here. While the run
            # stops, they stay pending, and are cancelled with the rest.
            following = -1
            if not run.stopping:
                for dependent in node._dependents:
                    left = remaining[dependent] - 1
                    remaining[dependent] = left
                    if not left:
                        run.running += 1
                        started[dependent] = time
                        if following < 0 and hops:
                            following = dependent  # runs next, in this task
                        else:
                            spawn(lean_node, dependent, name=names[dependent])
                        if on_event is not None:
                            run.emit("started", dependent, time)
            if following < 0:
                return
            index = following
            hops -= 1
            if task is None:
                task = trio.lowlevel.current_task()
            task.name = names[index]

    return lean_node


def _not_started(*args: object, **kwargs: object) -> None:
    raise AssertionError("the run has not begun")  # pragma: no cover


_heappush = heapq.heappush
_heappop = heapq.heappop
