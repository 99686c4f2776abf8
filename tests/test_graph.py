"""TaskGraph: dependencies, priorities, limits, resources, failures and cancellation."""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import pathlib
import re
import textwrap
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine._graph import find_cycle, topological_order
from trine.testing import ConcurrencyProbe, assert_takes


def _sleeper(
    probe: ConcurrencyProbe | None = None,
) -> Callable[..., Awaitable[Any]]:
    async def work(label: str, seconds: float, *deps: Any) -> str:
        if probe is None:
            await trio.sleep(seconds)
        else:
            with probe.track(label):
                await trio.sleep(seconds)
        return label

    return work


async def _value(value: Any, *deps: Any) -> Any:
    await trio.lowlevel.checkpoint()
    return (value, *deps)


async def _fail(message: str, *deps: Any) -> None:
    await trio.sleep(1)
    raise KeyError(message)


# --------------------------------------------------------------------------
# Scheduling


async def test_exact_start_times_with_limit_resources_and_priorities(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Nodes start as soon as deps, a limit slot and their resources allow, best priority first."""
    probe = ConcurrencyProbe()
    work = _sleeper(probe)
    graph = trine.TaskGraph(limit=2, resources={"db": trine.WeightedSemaphore(2)})
    a = graph.add(work, "a", 1, name="a")
    b = graph.add(work, "b", 2, name="b")
    c = graph.add(work, "c", 1, name="c", deps=[a], resources={"db": 2})
    d = graph.add(work, "d", 1, name="d", priority=5)
    graph.add(work, "e", 1, name="e", deps=[c], priority=1, resources=["db"])
    graph.add(work, "f", 1, name="f", resources={"db": 1})
    with assert_takes(4):
        result = await graph.run()
    assert result.ok
    assert probe.times("enter") == {"d": 0, "a": 0, "b": 1, "c": 1, "e": 2, "f": 3}
    assert probe.peak == 2
    assert result[d].started_at == 0
    assert result[d].finished_at == 1
    assert result[b].started_at == 1
    assert result[b].finished_at == 3
    assert result[b].duration == 2


async def test_blocked_node_reserves_its_resources(autojump_clock: trio.testing.MockClock) -> None:
    """A ready node that cannot have its resources keeps lighter, lower-priority users out.

    Nodes that need none of its resources start meanwhile.
    """
    probe = ConcurrencyProbe()
    work = _sleeper(probe)
    graph = trine.TaskGraph(resources={"db": trine.WeightedSemaphore(3)})
    graph.add(work, "first", 2, resources={"db": 2}, priority=10)
    graph.add(work, "heavy", 1, resources={"db": 3}, priority=5)
    graph.add(work, "light", 1, resources={"db": 1})
    graph.add(work, "free", 1)
    with assert_takes(4):
        await graph.run()
    assert probe.times("enter") == {"first": 0, "free": 0, "heavy": 2, "light": 3}


async def test_insertion_order_breaks_priority_ties(autojump_clock: trio.testing.MockClock) -> None:
    """Under limit=1, equal priorities run in insertion order and higher priorities first."""
    order: list[str] = []

    async def record(label: str) -> None:
        order.append(label)
        await trio.sleep(1)

    graph = trine.TaskGraph(limit=1)
    for label, priority in [("a", 0), ("b", 1), ("c", 0), ("d", 1), ("e", -1)]:
        graph.add(record, label, name=label, priority=priority)
    await graph.run()
    assert order == ["b", "d", "a", "c", "e"]


async def test_results_of_deps_are_appended_in_deps_order() -> None:
    """``fn`` gets ``*args`` then the results of ``deps`` in the order given."""
    graph = trine.TaskGraph()
    one = graph.add(_value, 1)
    two = graph.add(_value, 2)
    both = graph.add(_value, "x", deps=[two, one])
    again = graph.add(_value, "y", deps=[one, one])
    result = await graph.run()
    assert result[both].value == ("x", (2,), (1,))
    assert result[again].value == ("y", (1,), (1,))


@pytest.mark.parametrize("limit", [None, 2])
async def test_any_number_of_deps_is_passed_in_order_with_or_without_args(
    limit: int | None,
) -> None:
    """Up to three dependencies are passed one by one, more through a map: the values and
    their order are the same either way, after any ``*args``, on both schedulers."""

    async def arguments(*values: Any) -> tuple[Any, ...]:
        return values

    graph = trine.TaskGraph(limit=limit)
    roots = [graph.add(arguments, index) for index in range(5)]
    bare: dict[int, trine.Node[tuple[Any, ...]]] = {}
    with_args: dict[int, trine.Node[tuple[Any, ...]]] = {}
    for count in range(6):
        deps = roots[::-1][:count]
        bare[count] = graph.add(arguments, deps=deps)
        with_args[count] = graph.add(arguments, "a", "b", deps=deps)
    result = await graph.run()
    for count in range(6):
        expected = tuple((index,) for index in range(4, 4 - count, -1))
        assert result[bare[count]].value == expected
        assert result[with_args[count]].value == ("a", "b", *expected)


async def test_node_starts_when_its_last_dependency_succeeds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A node does not wait for unrelated nodes, only for its own deps."""
    work = _sleeper()
    graph = trine.TaskGraph()
    slow = graph.add(work, "slow", 5)
    fast = graph.add(work, "fast", 1)
    after_fast = graph.add(work, "after_fast", 1, deps=[fast])
    after_both = graph.add(work, "after_both", 1, deps=[fast, slow])
    result = await graph.run()
    assert result[after_fast].started_at == 1
    assert result[after_both].started_at == 5
    assert result[after_both].finished_at == 6


async def test_trio_lock_resource_is_taken_in_the_node_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A trio.Lock resource serialises its users; so does a CapacityLimiter or Semaphore."""
    probe = ConcurrencyProbe()
    work = _sleeper(probe)
    graph = trine.TaskGraph(
        resources={
            "lock": trio.Lock(),
            "cap": trio.CapacityLimiter(1),
            "sem": trio.Semaphore(1),
            "prio": trine.PriorityLimiter(1),
        }
    )
    for name in ["lock", "cap", "sem", "prio"]:
        graph.add(work, f"{name}1", 1, resources=[name])
        graph.add(work, f"{name}2", 1, resources=[name])
    with assert_takes(2):
        result = await graph.run()
    assert result.ok
    assert probe.peak == 4
    enter = probe.times("enter")
    assert sorted(
        enter[f"{name}{i}"] for name in ["lock", "cap", "sem", "prio"] for i in (1, 2)
    ) == [
        0,
        0,
        0,
        0,
        1,
        1,
        1,
        1,
    ]


async def test_an_infinite_capacity_limiter_is_an_unbounded_resource(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``trio.CapacityLimiter(math.inf)`` is accepted and never holds a node back."""
    probe = ConcurrencyProbe()
    work = _sleeper(probe)
    limiter = trio.CapacityLimiter(math.inf)
    graph = trine.TaskGraph(resources={"io": limiter})
    for label in ["a", "b", "c"]:
        graph.add(work, label, 1, name=label, resources=["io"])
    graph.add(work, "d", 1, name="d", resources={"io": 1})
    with assert_takes(1):
        result = await graph.run()
    assert result.ok
    assert probe.peak == 4
    assert probe.times("enter") == {"a": 0, "b": 0, "c": 0, "d": 0}
    assert limiter.borrowed_tokens == 0


async def test_resource_held_outside_the_graph_is_waited_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When every ready node waits for a resource held outside, the best one waits for it."""
    probe = ConcurrencyProbe()
    work = _sleeper(probe)
    semaphore = trine.WeightedSemaphore(2)
    graph = trine.TaskGraph(resources={"db": semaphore})
    graph.add(work, "heavy", 1, resources={"db": 2})
    graph.add(work, "light", 1, resources={"db": 1})

    async def outside() -> None:
        async with semaphore.hold(1):
            await trio.sleep(3)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(outside)
        await trio.testing.wait_all_tasks_blocked()
        result = await graph.run()
    assert result.ok
    assert probe.times("enter") == {"heavy": 3, "light": 4}


async def test_reservation_spans_groups_that_share_a_resource(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A blocked node reserves each of its resources against lower-priority users of any of them."""
    probe = ConcurrencyProbe()
    work = _sleeper(probe)
    graph = trine.TaskGraph(
        resources={"db": trine.WeightedSemaphore(2), "gpu": trine.WeightedSemaphore(1)}
    )
    graph.add(work, "holder", 2, resources=["gpu"], priority=9)
    graph.add(work, "both", 1, resources={"db": 2, "gpu": 1}, priority=5)
    graph.add(work, "db_only", 1, resources=["db"], priority=1)
    graph.add(work, "unrelated", 1)
    with assert_takes(4):
        await graph.run()
    assert probe.times("enter") == {"holder": 0, "unrelated": 0, "both": 2, "db_only": 3}


async def test_cancelled_while_waiting_for_an_outside_resource(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A node waiting for a resource held outside is cancelled cleanly and leaves no waiter."""
    semaphore = trine.WeightedSemaphore(1)
    graph = trine.TaskGraph(resources={"db": semaphore})
    node = graph.add(_value, 1, resources=["db"])
    events: list[trine.NodeEvent] = []
    async with semaphore.hold(1):
        with trio.move_on_after(2):
            await graph.run(on_event=events.append)
        assert semaphore.statistics().tasks_waiting == 0
    assert semaphore.statistics().borrowed_tokens == 0
    finished = events[-1].result
    assert finished is not None
    assert finished.node is node
    assert finished.status is trine.NodeStatus.CANCELLED
    assert (finished.started_at, finished.finished_at, finished.attempts) == (0, 2, 0)


async def test_fail_fast_releases_every_resource(autojump_clock: trio.testing.MockClock) -> None:
    """After a fail_fast run raises, every resource is back and nothing waits."""
    semaphore = trine.WeightedSemaphore(3)
    capacity = trio.CapacityLimiter(2)
    graph = trine.TaskGraph(fail_fast=True, resources={"db": semaphore, "cap": capacity})
    graph.add(_fail, "boom", resources={"db": 1, "cap": 1})
    graph.add(_sleeper(), "long", 5, resources={"db": 2, "cap": 1})
    with pytest.RaisesGroup(KeyError):
        await graph.run()
    assert semaphore.statistics().borrowed_tokens == 0
    assert capacity.borrowed_tokens == 0


async def test_on_event_errors_cancel_the_run_and_propagate() -> None:
    """An exception from on_event cancels the run and reaches the caller."""
    graph = trine.TaskGraph()
    graph.add(_value, 1)
    graph.add(_sleeper(), "slow", 10)

    def explode(event: trine.NodeEvent) -> None:
        if event.kind == "finished" and event.node.name == "_value":
            raise RuntimeError("display broke")

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="^display broke$")):
        await graph.run(on_event=explode)
    assert graph.statistics().cancelled == 1


@pytest.mark.parametrize("limit", [None, 10])
async def test_nothing_starts_after_on_event_raised(limit: int | None) -> None:
    """Once on_event has raised, no node starts, though a node already running (one that
    never checkpoints) still finishes and would make its dependent ready."""
    graph = trine.TaskGraph(limit=limit)

    async def quick(*deps: Any) -> int:
        return 1

    first = graph.add(quick, name="first")
    graph.add(_value, 1, name="second")
    graph.add(quick, deps=[first], name="third")
    events: list[str] = []

    def explode(event: trine.NodeEvent) -> None:
        events.append(f"{event.kind} {event.node.name}")
        if (event.kind, event.node.name) == ("started", "second"):
            raise RuntimeError("display broke")

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="^display broke$")):
        await graph.run(on_event=explode)
    assert "started third" not in events
    stats = graph.statistics()
    assert (stats.succeeded, stats.cancelled, stats.pending, stats.running) == (1, 2, 0, 0)


@pytest.mark.parametrize("limit", [None, 10])
async def test_on_event_error_while_the_rest_is_cancelled(
    limit: int | None, autojump_clock: trio.testing.MockClock
) -> None:
    """on_event raising for a node marked cancelled after the run's nursery closed: every
    unfinished node is still marked and reported once, and the first error propagates."""
    graph = trine.TaskGraph(limit=limit)
    work = _sleeper()
    slow = graph.add(work, "slow", 5, name="slow")
    graph.add(work, "a", 1, deps=[slow], name="a")
    graph.add(work, "b", 1, deps=[slow], name="b")
    finished: list[str] = []

    def explode(event: trine.NodeEvent) -> None:
        if event.kind == "finished":
            finished.append(event.node.name)
            if event.node.name == "a":
                raise RuntimeError("display broke")

    with trio.move_on_after(2):
        with pytest.raises(RuntimeError, match=r"^display broke$"):
            await graph.run(on_event=explode)
    assert sorted(finished) == ["a", "b", "slow"]
    assert graph.statistics() == trine.GraphStatistics(
        nodes=3, pending=0, ready=0, running=0, succeeded=0, failed=0, skipped=0, cancelled=3
    )


@pytest.mark.parametrize("kind", ["started", "finished"])
async def test_on_event_error_between_two_nodes_of_one_task(kind: str) -> None:
    """on_event raising for the node a finished node's task was to run next (or for the
    finished one) propagates, and leaves the node cancelled and nothing counted running."""
    graph = trine.TaskGraph()
    first = graph.add(_value, 1, name="first")
    graph.add(_value, 2, deps=[first], name="second")

    def explode(event: trine.NodeEvent) -> None:
        if event.kind == kind and event.node.name == ("second" if kind == "started" else "first"):
            raise RuntimeError("display broke")

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="^display broke$")):
        await graph.run(on_event=explode)
    assert graph.statistics() == trine.GraphStatistics(
        nodes=2, pending=0, ready=0, running=0, succeeded=1, failed=0, skipped=0, cancelled=1
    )


async def _statistics_seen_by_on_event(limit: int | None) -> list[tuple[Any, ...]]:
    # No two tasks wake at one instant, so what each event sees is the same in both runs.
    work = _sleeper()
    graph = trine.TaskGraph(limit=limit)
    root = graph.add(work, "root", 1, name="root")
    other = graph.add(work, "other", 4, name="other")
    first = graph.add(work, "first", 1, deps=[root], name="first")
    graph.add(work, "second", 2, deps=[root], name="second")
    graph.add(work, "last", 1, deps=[first, other], name="last")
    seen: list[tuple[Any, ...]] = []

    def record(event: trine.NodeEvent) -> None:
        stats = graph.statistics()
        # (Whether a node that is about to start counts as pending or ready
        # depends on the order the scheduler counts it down in, so not said.)
        seen.append((event.kind, event.node.name, stats.pending + stats.ready, stats.running))
        assert stats.pending >= 0

    await graph.run(on_event=record)
    return sorted(seen)


async def test_statistics_in_on_event_of_a_lean_run_count_a_finished_node_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """In a run whose tasks go on to the next node, on_event sees the statistics a run with
    a task per node shows: a finished node no longer running, pending never below 0."""
    assert await _statistics_seen_by_on_event(None) == await _statistics_seen_by_on_event(10**9)


async def test_statistics_in_on_event_for_a_root_count_it_running_not_ready() -> None:
    """When a run without a limit starts its first nodes, on_event sees each started node as
    running and no longer ready (pending never below 0)."""
    graph = trine.TaskGraph()
    graph.add(_value, 1, name="a")
    graph.add(_value, 2, name="b")
    seen: list[tuple[str, int, int, int]] = []

    def record(event: trine.NodeEvent) -> None:
        if event.kind == "started":
            stats = graph.statistics()
            seen.append((event.node.name, stats.pending, stats.ready, stats.running))

    await graph.run(on_event=record)
    assert seen == [("a", 0, 1, 1), ("b", 0, 0, 2)]


async def test_run_is_a_checkpoint_even_when_empty() -> None:
    """run() of an empty graph still checkpoints, as every Trio blocking call does."""
    with trio.testing.assert_checkpoints():
        await trine.TaskGraph().run()


# --------------------------------------------------------------------------
# Failures


async def test_dependents_of_a_failure_are_skipped_and_others_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Without fail_fast, descendants of a failure are skipped, independent nodes still run."""
    work = _sleeper()
    graph = trine.TaskGraph()
    fetch = graph.add(_fail, "boom", name="fetch")
    clean = graph.add(work, "clean", 1, deps=[fetch], name="clean")
    report = graph.add(work, "report", 1, deps=[clean], name="report")
    other = graph.add(work, "other", 3, name="other")
    mixed = graph.add(work, "mixed", 1, deps=[other, clean], name="mixed")
    result = await graph.run()
    assert not result.ok
    assert [r.name for r in result.failed] == ["fetch"]
    assert [r.name for r in result.skipped] == ["clean", "report", "mixed"]
    assert [r.name for r in result.succeeded] == ["other"]
    assert result[report].skipped_because is fetch
    assert result[mixed].skipped_because is fetch
    assert result[report].status is trine.NodeStatus.SKIPPED
    assert result[report].started_at is None
    assert result[report].finished_at == 1
    assert result[report].attempts == 0
    assert result[fetch].attempts == 1
    assert isinstance(result[fetch].error, KeyError)
    assert result[fetch].value is None
    assert result[other].finished_at == 3
    with pytest.raises(ExceptionGroup, match=r"^1 node failed: 'fetch'$") as info:
        result.raise_for_failures()
    assert info.value.exceptions == (result[fetch].error,)


async def test_raise_for_failures_names_every_failure_in_order() -> None:
    """The group's message lists the failed nodes; nothing is raised when none failed."""
    graph = trine.TaskGraph()
    graph.add(_fail, "1", name="a")
    graph.add(_value, 1, name="b")
    graph.add(_fail, "2", name="c")
    result = await graph.run()
    with pytest.raises(ExceptionGroup, match=r"^2 nodes failed: 'a', 'c'$"):
        result.raise_for_failures()
    ok_graph = trine.TaskGraph()
    ok_graph.add(_value, 1)
    (await ok_graph.run()).raise_for_failures()


async def test_fail_fast_cancels_everything_and_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """fail_fast: the first failure cancels running and waiting nodes and propagates."""
    work = _sleeper()
    events: list[trine.NodeEvent] = []
    graph = trine.TaskGraph(fail_fast=True, limit=2)
    fails = graph.add(_fail, "boom", name="fails")
    graph.add(work, "long", 10, name="long")
    graph.add(work, "waiting", 1, name="waiting")
    graph.add(work, "after", 1, deps=[fails], name="after")
    with assert_takes(1), pytest.RaisesGroup(pytest.RaisesExc(KeyError, match="boom")):
        await graph.run(on_event=events.append)
    finished = {e.node.name: e.result for e in events if e.kind == "finished"}
    assert {name: r.status.value for name, r in finished.items() if r} == {
        "fails": "failed",
        "long": "cancelled",
        "waiting": "cancelled",
        "after": "cancelled",
    }
    assert finished["long"] is not None
    assert finished["long"].started_at == 0
    assert finished["waiting"] is not None
    assert finished["waiting"].started_at is None
    stats = graph.statistics()
    assert (stats.failed, stats.cancelled, stats.running, stats.ready) == (1, 3, 0, 0)


async def test_cancel_from_outside_propagates_and_leaves_nothing_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelling around run() cancels every node; Cancelled is not recorded as a failure."""
    work = _sleeper()
    events: list[trine.NodeEvent] = []
    graph = trine.TaskGraph(limit=1)
    first = graph.add(work, "first", 1, name="first")
    graph.add(work, "second", 5, deps=[first], name="second")
    graph.add(work, "third", 1, name="third")

    async def check_tasks() -> None:
        await trio.sleep(2)
        assert len(_graph_tasks()) == 1

    with trio.move_on_after(3) as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(check_tasks)
            await graph.run(on_event=events.append)
    assert scope.cancelled_caught
    assert trio.current_time() == 3
    statuses = {e.node.name: e.result.status.value for e in events if e.result is not None}
    assert statuses == {"first": "succeeded", "second": "cancelled", "third": "cancelled"}
    started = [e.node.name for e in events if e.kind == "started"]
    assert started == ["first", "second"]
    stats = graph.statistics()
    assert stats == trine.GraphStatistics(
        nodes=3, pending=0, ready=0, running=0, succeeded=1, failed=0, skipped=0, cancelled=2
    )
    assert _graph_tasks() == []


def _graph_tasks() -> list[str]:
    """The names of every live task that runs a graph node."""
    found: list[str] = []
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        assert task is not None
        if task.name in {"first", "second", "third"}:
            found.append(task.name)
        stack.extend(child for nursery in task.child_nurseries for child in nursery.child_tasks)
    return found


async def test_graph_runs_again_with_fresh_results() -> None:
    """A second run() calls every node again and reports only its own results."""
    calls: list[int] = []

    async def count() -> int:
        calls.append(1)
        await trio.lowlevel.checkpoint()
        return len(calls)

    graph = trine.TaskGraph()
    node = graph.add(count)
    first = await graph.run()
    second = await graph.run()
    assert (first[node].value, second[node].value) == (1, 2)


async def test_policy_calls_are_counted_as_attempts() -> None:
    """A node with a policy calls fn through it; attempts counts the calls made."""

    class RetryTwice:
        async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
            try:
                return await fn(*args)
            except KeyError:
                return await fn(*args)

    tries: list[int] = []

    async def flaky(x: int) -> int:
        tries.append(x)
        await trio.lowlevel.checkpoint()
        if len(tries) == 1:
            raise KeyError("first")
        return x * 2

    graph = trine.TaskGraph()
    node = graph.add(flaky, 21, policy=RetryTwice())
    result = await graph.run()
    assert result[node].value == 42
    assert result[node].attempts == 2


async def test_attempts_through_a_real_policy(autojump_clock: trio.testing.MockClock) -> None:
    """With trine.Policy(retry=...), attempts counts every call the retry made."""
    calls: list[float] = []

    async def flaky() -> str:
        calls.append(trio.current_time())
        await trio.sleep(1)
        if len(calls) < 3:
            raise ConnectionError("try again")
        return "ok"

    graph = trine.TaskGraph()
    policy = trine.Policy(retry=trine.Retry(5, backoff=trine.Backoff.constant(2.0)))
    node = graph.add(flaky, policy=policy)
    result = await graph.run()
    assert result[node].value == "ok"
    assert result[node].attempts == 3
    assert calls == [0, 3, 6]
    assert (result[node].started_at, result[node].finished_at) == (0, 7)


async def test_statistics_during_a_run(autojump_clock: trio.testing.MockClock) -> None:
    """statistics() reports pending, ready and running nodes while the graph runs."""
    work = _sleeper()
    graph = trine.TaskGraph(limit=1)
    assert graph.statistics().pending == 0
    a = graph.add(work, "a", 2)
    graph.add(work, "b", 2)
    graph.add(work, "c", 2, deps=[a])
    assert graph.statistics().pending == 3
    seen: list[trine.GraphStatistics] = []

    async def watch() -> None:
        await trio.sleep(1)
        seen.append(graph.statistics())
        await trio.sleep(2)
        seen.append(graph.statistics())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await graph.run()
    assert seen == [
        trine.GraphStatistics(
            nodes=3, pending=1, ready=1, running=1, succeeded=0, failed=0, skipped=0, cancelled=0
        ),
        trine.GraphStatistics(
            nodes=3, pending=0, ready=1, running=1, succeeded=1, failed=0, skipped=0, cancelled=0
        ),
    ]


async def test_on_event_reports_start_and_finish_of_every_node(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """on_event gets one started (if it started) and one finished event per node."""
    graph = trine.TaskGraph()
    fails = graph.add(_fail, "x", name="fails")
    graph.add(_value, 1, deps=[fails], name="skipped")
    events: list[tuple[str, str, float, str | None]] = []
    await graph.run(
        on_event=lambda e: events.append(
            (e.kind, e.node.name, e.time, e.result.status.value if e.result else None)
        )
    )
    assert events == [
        ("started", "fails", 0, None),
        ("finished", "fails", 1, "failed"),
        ("finished", "skipped", 1, "skipped"),
    ]


async def test_empty_graph_returns_an_empty_result() -> None:
    """Running a graph with no nodes returns at once with no results."""
    result = await trine.TaskGraph().run()
    assert len(result) == 0
    assert result.ok
    assert list(result) == []


# --------------------------------------------------------------------------
# Cycles


def test_cycle_error_names_the_cycle() -> None:
    """CycleError is a ValueError whose message and .cycle name the cycle."""
    with pytest.raises(trine.CycleError, match=r"^cycle: a -> b -> a$") as info:
        topological_order({"a": ["b"], "b": ["a"], "c": []})
    assert info.value.cycle == ["a", "b", "a"]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, trine.TrineError)


def test_find_cycle_and_topological_order() -> None:
    """find_cycle returns None for a DAG; topological_order keeps the given order where free."""
    deps = {"report": ["clean", "analyse"], "fetch": [], "clean": ["fetch"], "analyse": ["clean"]}
    assert find_cycle(deps) is None
    assert topological_order(deps) == ["fetch", "clean", "analyse", "report"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"x": ["a"], "a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    with pytest.raises(ValueError, match=r"^'a' depends on unknown 'z'$"):
        topological_order({"a": ["z"]})


async def test_run_rejects_a_cycle_before_starting_anything() -> None:
    """A cycle cannot be built through add(); if the lists were tampered with, run() refuses."""
    started: list[str] = []

    async def work(name: str, *deps: Any) -> None:
        started.append(name)

    graph = trine.TaskGraph()
    graph.add(work, "free", name="free")
    a = graph.add(work, "a", name="a")
    graph.add(work, "b", name="b", deps=[a])
    graph._deps[1] = (2,)  # simulate a back edge b -> a
    with pytest.raises(trine.CycleError, match=r"^cycle: a -> b -> a$"):
        await graph.run()
    assert started == []


async def test_run_follows_rewritten_edges(autojump_clock: trio.testing.MockClock) -> None:
    """Edges rewritten without a cycle (how tests build odd graphs) are what the run follows."""

    async def after(seconds: float, value: str, *deps: Any) -> tuple[Any, ...]:
        await trio.sleep(seconds)
        return (value, *deps)

    graph = trine.TaskGraph()
    a = graph.add(after, 0, "a", name="a")
    b = graph.add(after, 0, "b", deps=[a], name="b")
    graph.add(after, 2, "c", name="c")
    graph._deps[1] = (2,)  # b now waits for c, a later node, and no longer for a
    result = await graph.run()
    assert result[b].value == ("b", ("c",))
    assert result[b].started_at == 2.0


# --------------------------------------------------------------------------
# Validation


def test_node_names_default_to_the_function_and_are_unique() -> None:
    """Default names come from __name__ (through partials) with -2, -3 suffixes."""
    graph = trine.TaskGraph()
    first = graph.add(_value, 1)
    second = graph.add(_value, 2)
    third = graph.add(functools.partial(_value, 3))
    named = graph.add(_value, 4, name="_value-4")
    fourth = graph.add(_value, 5)
    assert [first.name, second.name, third.name, named.name, fourth.name] == [
        "_value",
        "_value-2",
        "_value-3",
        "_value-4",
        "_value-5",
    ]
    assert repr(first) == "<trine.Node '_value'>"
    assert first.deps == ()
    assert hash(first) != hash(second) or first is not second
    assert len(graph) == 5
    assert graph.nodes[0] is first


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"limit": 0}, ValueError, r"^limit must be >= 1, got 0$"),
        ({"limit": 1.5}, TypeError, r"^limit must be an int, got 1.5$"),
        ({"fail_fast": 1}, TypeError, r"^fail_fast must be a bool, got 1$"),
        (
            {"resources": ["db"]},
            TypeError,
            r"^resources must be a mapping of names to limiters, got \['db'\]$",
        ),
        (
            {"resources": {1: trio.Lock()}},
            TypeError,
            r"^resources keys must be non-empty strings, got 1$",
        ),
        (
            {"resources": {"db": 3}},
            TypeError,
            r"^resources\['db'\] must be a limiter \(an object with a hold\(\) method, or a "
            r"trio.CapacityLimiter, trio.Semaphore or trio.Lock\), got 3$",
        ),
        (
            {"resources": {"api": trine.KeyedLimiter(1)}},
            TypeError,
            r"^resources\['api'\] is a KeyedLimiter, which needs a key: "
            r"pass limiter.for_key\(key\)$",
        ),
    ],
)
def test_constructor_validation(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every bad constructor argument is refused with a message naming it."""
    with pytest.raises(error, match=message):
        trine.TaskGraph(**kwargs)


def _graph_for_validation() -> tuple[trine.TaskGraph, trine.Node[Any]]:
    graph = trine.TaskGraph(
        resources={
            "db": trine.WeightedSemaphore(2),
            "lock": trio.Lock(),
            "cap": trio.CapacityLimiter(3),
        }
    )
    return graph, graph.add(_value, 1, name="first")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"name": "first"},
            ValueError,
            r"^name 'first' is already used by another node of this graph$",
        ),
        ({"name": ""}, TypeError, r"^name must be a non-empty string, got ''$"),
        ({"priority": 1.0}, TypeError, r"^priority must be an int, got 1.0$"),
        ({"priority": True}, TypeError, r"^priority must be an int, got True$"),
        (
            {"policy": object()},
            TypeError,
            r"^policy must have an async call\(fn, \*args\) method, "
            r"got <object object at 0x[0-9a-f]+>$",
        ),
        ({"deps": "first"}, TypeError, r"^deps must be a sequence of nodes, got 'first'$"),
        ({"deps": [1]}, TypeError, r"^deps\[0\] must be a Node, got 1$"),
        (
            {"name": "x", "resources": ["gpu"]},
            ValueError,
            r"^node 'x' uses unknown resource 'gpu' "
            r"\(the graph's resources: 'db', 'lock', 'cap'\)$",
        ),
        (
            {"name": "x", "resources": "db"},
            TypeError,
            r"^resources must be a sequence of resource names or a mapping of name to weight, "
            r"got 'db'$",
        ),
        (
            {"name": "x", "resources": {"db": 3}},
            ValueError,
            r"^node 'x' needs weight 3 of resource 'db', whose capacity is 2$",
        ),
        (
            {"name": "x", "resources": {"db": 0}},
            ValueError,
            r"^resources\['db'\] must be >= 1, got 0$",
        ),
        (
            {"name": "x", "resources": {"lock": 2}},
            ValueError,
            r"^node 'x' needs weight 2 of resource 'lock', but only a WeightedSemaphore "
            r"can be held with a weight above 1$",
        ),
        (
            {"name": "x", "resources": ["db", "db"]},
            ValueError,
            r"^node 'x' lists resource 'db' twice$",
        ),
    ],
)
def test_add_validation(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    """Every bad add() argument is refused with a message naming it."""
    graph, _ = _graph_for_validation()
    with pytest.raises(error, match=message):
        graph.add(_value, 1, **kwargs)
    assert len(graph) == 1


def test_add_refuses_coroutines_and_foreign_nodes() -> None:
    """A coroutine object for fn and a node of another graph are refused."""
    graph, _ = _graph_for_validation()
    other = trine.TaskGraph()
    foreign = other.add(_value, 1, name="foreign")
    with pytest.raises(ValueError, match=r"^deps\[1\] is <trine.Node 'foreign'> of another graph$"):
        graph.add(_value, 2, deps=[graph.nodes[0], foreign])
    with pytest.raises(TypeError, match=r"^fn must be an async function, got 3$"):
        graph.add(3)  # type: ignore[arg-type]
    coroutine = _value(1)
    with pytest.raises(TypeError, match=r"pass the function and its arguments"):
        graph.add(coroutine)  # type: ignore[arg-type]


async def test_a_refused_add_leaves_no_edge_behind(autojump_clock: trio.testing.MockClock) -> None:
    """An add() refused after some of its deps were recorded takes them back.

    Had the refused node stayed a dependent of ``fast``, the next node added
    (which gets the same index) would be counted down when ``fast`` finishes
    and start at 0.0, before its real dependency, with no value for it.
    """

    async def after(seconds: float, value: str, *deps: Any) -> tuple[Any, ...]:
        await trio.sleep(seconds)
        return (value, *deps)

    graph, _ = _graph_for_validation()
    slow = graph.add(after, 1, "slow", name="slow")
    fast = graph.add(after, 0, "fast", name="fast")
    with pytest.raises(TypeError, match=r"^deps\[2\] must be a Node, got 3$"):
        graph.add(_value, "refused", deps=[fast, fast, 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"unknown resource 'gpu'"):
        graph.add(_value, "refused", deps=[fast], name="x", resources=["gpu"])
    late = graph.add(after, 0, "late", deps=[slow], name="late")
    result = await graph.run()
    assert result[late].value == ("late", ("slow",))
    assert result[late].started_at == 1.0
    assert [node.name for node in late.deps] == ["slow"]


async def test_an_add_stopped_by_a_deps_own_error_leaves_no_edge_behind() -> None:
    """An object in deps whose attribute lookup raises something else than
    AttributeError (here KeyError, as attribute dicts do) stops add() with that
    error, after a good dependency was recorded: it is taken back all the same."""

    class AttributeDict(dict[str, Any]):
        def __getattr__(self, key: str) -> Any:
            return self[key]

    graph = trine.TaskGraph()
    first = graph.add(_value, "first", name="first")
    with pytest.raises(KeyError, match=r"^'_graph'$"):
        graph.add(_value, "refused", deps=[first, first, AttributeDict()])  # type: ignore[list-item]
    second = graph.add(_value, "second", name="second")
    assert second.deps == ()
    result = await graph.run()
    assert result[second].value == ("second",)


async def test_add_and_run_are_refused_while_running() -> None:
    """A running graph cannot grow or start a second run."""
    graph = trine.TaskGraph()
    errors: list[str] = []

    async def meddle() -> None:
        with pytest.raises(RuntimeError) as add_error:
            graph.add(_value, 1)
        errors.append(str(add_error.value))
        with pytest.raises(RuntimeError) as run_error:
            await graph.run()
        errors.append(str(run_error.value))

    graph.add(meddle)
    result = await graph.run()
    assert result.ok
    assert errors == ["cannot add nodes to a graph while it runs", "this graph is already running"]


async def test_result_lookup_refuses_foreign_nodes() -> None:
    """result[node] is a KeyError for a node of another graph or added after the run."""
    graph = trine.TaskGraph()
    graph.add(_value, 1)
    result = await graph.run()
    late = graph.add(_value, 2)
    with pytest.raises(KeyError):
        result[late]
    assert repr(result) == "<trine.GraphResult of 1 nodes: 1 succeeded>"


# --------------------------------------------------------------------------
# Properties


@st.composite
def _graphs(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(1, 12))
    deps = [
        sorted(draw(st.sets(st.integers(0, index - 1), max_size=3))) if index else []
        for index in range(size)
    ]
    capacities = draw(st.lists(st.integers(1, 3), min_size=2, max_size=2))
    return {
        "deps": deps,
        "durations": draw(st.lists(st.integers(0, 3), min_size=size, max_size=size)),
        "failing": draw(st.sets(st.integers(0, size - 1))),
        "priorities": draw(st.lists(st.integers(-2, 2), min_size=size, max_size=size)),
        "limit": draw(st.none() | st.integers(1, 4)),
        "capacities": capacities,
        "weights": [
            [draw(st.integers(0, capacity)) for capacity in capacities] for _ in range(size)
        ],
        "cancel_at": draw(st.none() | st.integers(0, 12).map(lambda t: t + 0.5)),
        "fail_fast": draw(st.booleans()),
        "lock_users": draw(st.sets(st.integers(0, size - 1))),
    }


@given(_graphs())
def test_random_graphs_respect_deps_limits_resources_and_skips(spec: dict[str, Any]) -> None:
    """Every node runs at most once after its deps; limit and capacities hold; failures skip
    exactly their descendants (or, with fail_fast, cancel the rest and raise); cancellation
    at any time leaves every node accounted for and every resource given back."""
    deps: list[list[int]] = spec["deps"]
    size = len(deps)
    names = [f"n{index}" for index in range(size)]
    semaphores = [trine.WeightedSemaphore(capacity) for capacity in spec["capacities"]]
    probes = [ConcurrencyProbe() for _ in semaphores]
    running = ConcurrencyProbe()
    lock_probe = ConcurrencyProbe()
    lock = trio.Lock()
    log: list[tuple[str, int]] = []
    used: list[int] = [0, 0]
    peaks: list[int] = [0, 0]
    wrong_values: list[int] = []

    async def work(index: int, *dep_values: Any) -> int:
        log.append(("start", index))
        if list(dep_values) != deps[index]:
            wrong_values.append(index)
        weights = spec["weights"][index]
        for r, weight in enumerate(weights):
            used[r] += weight
            peaks[r] = max(peaks[r], used[r])
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(running.track(index))
                if index in spec["lock_users"]:
                    stack.enter_context(lock_probe.track(index))
                for r, weight in enumerate(weights):
                    if weight:
                        stack.enter_context(probes[r].track(index))
                await trio.sleep(spec["durations"][index])
                if index in spec["failing"]:
                    raise KeyError(index)
        finally:
            for r, weight in enumerate(weights):
                used[r] -= weight
            log.append(("end", index))
        return index

    async def main() -> None:
        resources: dict[str, trine.LimiterLike] = {f"r{r}": sem for r, sem in enumerate(semaphores)}
        resources["lock"] = lock
        graph = trine.TaskGraph(
            limit=spec["limit"], fail_fast=spec["fail_fast"], resources=resources
        )
        nodes: list[trine.Node[int]] = []
        for index in range(size):
            uses = {f"r{r}": w for r, w in enumerate(spec["weights"][index]) if w}
            if index in spec["lock_users"]:
                uses["lock"] = 1
            nodes.append(
                graph.add(
                    work,
                    index,
                    name=names[index],
                    deps=[nodes[d] for d in deps[index]],
                    priority=spec["priorities"][index],
                    resources=uses,
                )
            )
        events: list[trine.NodeEvent] = []
        result: trine.GraphResult | None = None
        raised: ExceptionGroup[Exception] | None = None
        with trio.move_on_after(spec["cancel_at"] or 1e9):
            try:
                result = await graph.run(on_event=events.append)
            except ExceptionGroup as group:
                raised = group
        finals = {e.node.name: e.result for e in events if e.kind == "finished"}
        assert sorted(finals) == sorted(names)
        statuses = {name: r.status for name, r in finals.items() if r is not None}

        assert wrong_values == []
        starts = [index for kind, index in log if kind == "start"]
        assert len(starts) == len(set(starts))
        position = {(kind, index): at for at, (kind, index) in enumerate(log)}
        for index in starts:
            for dep in deps[index]:
                assert position[("end", dep)] < position[("start", index)]
                assert statuses[names[dep]] is trine.NodeStatus.SUCCEEDED
        if spec["limit"] is not None:
            assert running.peak <= spec["limit"]
        for r, capacity in enumerate(spec["capacities"]):
            assert peaks[r] <= capacity
            assert probes[r].peak <= capacity
            assert semaphores[r].statistics().borrowed_tokens == 0
            assert semaphores[r].statistics().tasks_waiting == 0
        assert lock_probe.peak <= 1
        assert not lock.locked()
        assert running.current == 0

        if raised is not None:  # fail_fast: the failures propagate, the rest is cancelled
            assert spec["fail_fast"]
            assert all(isinstance(error, KeyError) for error in raised.exceptions)
            failed = {n for n, status in statuses.items() if status is trine.NodeStatus.FAILED}
            assert failed == {f"n{error.args[0]}" for error in raised.exceptions}
            assert trine.NodeStatus.SKIPPED not in statuses.values()
            return

        if result is None:  # cancelled: nothing is left running, nothing counted as failed wrongly
            assert spec["cancel_at"] is not None
            for name, status in statuses.items():
                if status is trine.NodeStatus.FAILED:
                    assert int(name[1:]) in spec["failing"]
            return
        assert spec["cancel_at"] is None or trio.current_time() < spec["cancel_at"]
        # Expected statuses: a failing node fails unless an ancestor failed first.
        expected: dict[int, trine.NodeStatus] = {}
        for index in range(size):
            if any(expected[d] is not trine.NodeStatus.SUCCEEDED for d in deps[index]):
                expected[index] = trine.NodeStatus.SKIPPED
            elif index in spec["failing"]:
                expected[index] = trine.NodeStatus.FAILED
            else:
                expected[index] = trine.NodeStatus.SUCCEEDED
        if spec["fail_fast"]:
            assert trine.NodeStatus.SKIPPED not in expected.values()
        assert {int(n[1:]): s for n, s in statuses.items()} == expected
        # Exactly the nodes that were not skipped ran, each exactly once.
        assert sorted(starts) == [i for i in range(size) if expected[i] is not SKIPPED]
        for index, node in enumerate(nodes):
            node_result = result[node]
            assert node_result.status is expected[index]
            if node_result.status is trine.NodeStatus.SKIPPED:
                because = node_result.skipped_because
                assert because is not None
                assert result[because].status is trine.NodeStatus.FAILED
        stats = graph.statistics()
        assert (stats.pending, stats.ready, stats.running) == (0, 0, 0)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


SKIPPED = trine.NodeStatus.SKIPPED


@st.composite
def _dags(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(1, 30))
    return {
        "deps": [
            draw(st.lists(st.integers(0, index - 1), max_size=4)) if index else []
            for index in range(size)
        ],
        "durations": draw(st.lists(st.integers(0, 4), min_size=size, max_size=size)),
        "failing": draw(st.sets(st.integers(0, size - 1), max_size=size // 3)),
        "priorities": draw(st.none() | st.lists(st.integers(-2, 2), min_size=size, max_size=size)),
    }


def _reference_run(spec: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a naive scheduler with no limit reports per node, in insertion order.

    (status, value, started_at, finished_at, attempts, the failed nodes that
    could be skipped_because): a node starts when its last dependency
    succeeds; it is skipped when the first of its dependencies fails or is
    skipped (because of the failure that reached that dependency first).
    """
    rows: list[tuple[Any, ...]] = []
    for index, deps in enumerate(spec["deps"]):
        bad = [rows[d] for d in deps if rows[d][0] is not trine.NodeStatus.SUCCEEDED]
        if bad:
            when = min(row[3] for row in bad)
            because = frozenset().union(*(row[5] for row in bad if row[3] == when))
            rows.append((SKIPPED, None, None, when, 0, because))
            continue
        start = max((rows[d][3] for d in deps), default=0)
        end = start + spec["durations"][index]
        if index in spec["failing"]:
            rows.append((trine.NodeStatus.FAILED, None, start, end, 1, frozenset({index})))
        else:
            value = (index, *(rows[d][1] for d in deps))
            rows.append((trine.NodeStatus.SUCCEEDED, value, start, end, 1, frozenset()))
    return rows


def _assert_results_are(
    result: trine.GraphResult, nodes: list[trine.Node[Any]], expected: list[tuple[Any, ...]]
) -> None:
    """Every node's result is the reference's row (see _reference_run)."""
    for index, node in enumerate(nodes):
        got = result[node]
        status, value, started, finished, attempts, causes = expected[index]
        assert (got.status, got.value, got.started_at, got.finished_at, got.attempts) == (
            status,
            value,
            started,
            finished,
            attempts,
        ), index
        if status is trine.NodeStatus.FAILED:
            assert isinstance(got.error, KeyError)
            assert got.error.args == (index,)
        else:
            assert got.error is None
        if status is SKIPPED:
            assert got.skipped_because is not None
            assert got.skipped_because._index in causes
        else:
            assert got.skipped_because is None


@given(_dags())
def test_results_equal_a_naive_reference_scheduler(spec: dict[str, Any]) -> None:
    """Without a limit, every node's status, value, times, attempts and skip cause are what a
    naive scheduler computes, with priorities (the heap) or without (nodes start at once)."""

    async def work(index: int, *dep_values: Any) -> Any:
        await trio.sleep(spec["durations"][index])
        if index in spec["failing"]:
            raise KeyError(index)
        return (index, *dep_values)

    async def main() -> None:
        graph = trine.TaskGraph()
        nodes: list[trine.Node[Any]] = []
        for index, deps in enumerate(spec["deps"]):
            priority = 0 if spec["priorities"] is None else spec["priorities"][index]
            nodes.append(graph.add(work, index, deps=[nodes[d] for d in deps], priority=priority))
        events: list[trine.NodeEvent] = []
        result = await graph.run(on_event=events.append)
        expected = _reference_run(spec)
        _assert_results_are(result, nodes, expected)
        finished_events = [e for e in events if e.kind == "finished"]
        assert sorted(e.node._index for e in finished_events) == list(range(len(nodes)))
        assert all(e.result is result[e.node] for e in finished_events)
        for e in events:
            if e.kind == "started":
                assert e.time == result[e.node].started_at
        stats = graph.statistics()
        assert (stats.succeeded, stats.failed, stats.skipped) == tuple(
            sum(row[0] is status for row in expected)
            for status in (trine.NodeStatus.SUCCEEDED, trine.NodeStatus.FAILED, SKIPPED)
        )

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


class _Named:
    """A callable with a __name__ of our choosing, such as one that looks like a default name."""

    def __init__(self, name: str) -> None:
        self.__name__ = name

    async def __call__(self, *deps: Any) -> None:
        raise AssertionError("never run")  # pragma: no cover


async def _f(*deps: Any) -> None:
    raise AssertionError("never run")  # pragma: no cover


async def _g(*deps: Any) -> None:
    raise AssertionError("never run")  # pragma: no cover


# Bases that look like default names: _f-2 (the name of _f's second node
# too), f-2 (a given name's), _f-1 and _f-02 (which no counter of _f's makes).
_FNS: list[Callable[..., Any]] = [
    _f,
    _g,
    _Named("_f-2"),
    _Named("f-2"),
    functools.partial(_f, 1),
    _Named("_f-1"),
    _Named("_f-02"),
]
_FN_BASES = ["_f", "_g", "_f-2", "f-2", "_f", "_f-1", "_f-02"]
_GIVEN_NAMES = [
    "_f",
    "_f-2",
    "_f-3",
    "_g-2",
    "f-2",
    "f-2-2",
    "x",
    "_f-1",
    "_f-02",
    "_f-1-2",
    "_g",
    "-2",
    "_f-²",
]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["default", "named", "read"]),
            st.integers(0, len(_FNS) - 1),
            st.integers(0, len(_GIVEN_NAMES) - 1),
        ),
        max_size=40,
    )
)
def test_default_names_are_those_given_one_add_at_a_time(
    steps: list[tuple[str, int, int]],
) -> None:
    """Names worked out late, in bulk, are the ones add() would have given at once:
    the function's name, then -2, -3, ..., skipping every name already taken."""
    graph = trine.TaskGraph()
    nodes: list[trine.Node[Any]] = []
    expected: list[str] = []
    taken: set[str] = set()
    counters: dict[str, int] = {}
    for kind, fn_number, name_number in steps:
        if kind == "read":
            if nodes:
                assert nodes[name_number % len(nodes)].name == expected[name_number % len(nodes)]
            continue
        if kind == "named":
            name = _GIVEN_NAMES[name_number]
            if name in taken:
                with pytest.raises(ValueError, match="is already used"):
                    graph.add(_f, name=name)
                continue
            nodes.append(graph.add(_f, name=name))
        else:
            base = _FN_BASES[fn_number]
            counter = counters.get(base, 1)
            name = base if counter == 1 else f"{base}-{counter}"
            while name in taken:
                counter += 1
                name = f"{base}-{counter}"
            counters[base] = counter + 1
            nodes.append(graph.add(_FNS[fn_number]))
        expected.append(name)
        taken.add(name)
    assert [node.name for node in nodes] == expected


@pytest.mark.parametrize(
    ("fns", "names"),
    [
        ([_f, _f, _Named("_f-2"), _Named("_f-2")], ["_f", "_f-2", "_f-2-2", "_f-2-3"]),
        ([_Named("_f-2"), _f, _f, _f], ["_f-2", "_f", "_f-3", "_f-4"]),
        ([_f, _Named("_f-3"), _f, _f, _f], ["_f", "_f-3", "_f-2", "_f-4", "_f-5"]),
    ],
)
def test_default_names_of_bases_that_look_like_default_names(
    fns: list[Callable[..., Any]], names: list[str]
) -> None:
    """A function named like another one's default name (``_f-2``) gets a name of
    its own, and so do the other function's nodes, whichever comes first."""
    graph = trine.TaskGraph()
    nodes = [graph.add(fn) for fn in fns]
    assert [node.name for node in nodes] == names
    for name in names:
        with pytest.raises(ValueError, match="is already used"):
            graph.add(_g, name=name)


def test_a_refused_add_names_its_node_as_it_would_have_been_named() -> None:
    """The error of an add() refused for its resources names the node by the default
    name it would have had, past another function's nodes that took that name."""
    graph = trine.TaskGraph()
    graph.add(_f)
    graph.add(_f)  # _f-2
    with pytest.raises(ValueError, match=r"^node '_f-2-2' uses unknown resource 'nope'"):
        graph.add(_Named("_f-2"), resources=["nope"])
    assert graph.add(_Named("_f-2")).name == "_f-2-2"


def test_default_names_are_not_kept_in_a_set() -> None:
    """A graph whose nodes have default names keeps no set of them (a graph of
    a million nodes would keep a million names for the collector to scan),
    and still refuses each of them as a given name."""
    graph = trine.TaskGraph()
    for _ in range(100):
        graph.add(_f)
    graph.add(_g, name="mine")
    assert graph._names == {"mine"}
    for taken in ["_f", "_f-2", "_f-100", "mine"]:
        with pytest.raises(ValueError, match="is already used"):
            graph.add(_g, name=taken)
    for free in ["_f-1", "_f-101", "_f-02", "_g", "_f-" + "9" * 5000]:
        graph.add(_g, name=free)


# --------------------------------------------------------------------------
# Functions that are not async, and callbacks that are (issue 11, the door)


def _returns_one(*deps: Any) -> int:
    return 1


def _generator(*deps: Any) -> Any:
    yield 1


async def _async_generator(*deps: Any) -> Any:
    yield 1


class _Generators:
    async def method(self, *deps: Any) -> Any:
        yield 1


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (
            _generator,
            r"^fn must be an async function, got the generator function <function .*>: "
            r"define it with async def and no yield$",
        ),
        (
            _async_generator,
            r"^fn must be an async function, got the async generator function <function .*>: "
            r"define it without yield \(an async generator is iterated with async for\)$",
        ),
        (functools.partial(_generator, 1), r"^fn must be an async function, got the generator"),
        (_Generators().method, r"^fn must be an async function, got the async generator"),
    ],
)
def test_add_refuses_generator_functions(fn: Callable[..., Any], message: str) -> None:
    """add() refuses a generator or async generator function at once (and partials, methods)."""
    graph = trine.TaskGraph()
    with pytest.raises(TypeError, match=message):
        graph.add(fn)
    assert len(graph) == 0


async def test_sync_fn_makes_run_raise_type_error_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A node whose fn is not async makes run() raise the TypeError bare, cancelling the run.

    It is a programming error, not a failure of the node: nothing is failed
    or skipped, every node still gets its one finished event.
    """
    graph = trine.TaskGraph()
    long = graph.add(_sleeper(), "long", 5, name="long")
    bad = graph.add(_returns_one, name="bad")
    after = graph.add(_value, 1, deps=[bad], name="after")
    events: list[trine.NodeEvent] = []
    with pytest.raises(
        TypeError,
        match=r"^fn must be an async function, but calling it returned 1, an int: "
        r"define it with async def$",
    ):
        await graph.run(on_event=events.append)
    assert trio.current_time() == 0
    finished = {e.node: e.result for e in events if e.kind == "finished"}
    assert {node: r.status for node, r in finished.items() if r} == {
        long: trine.NodeStatus.CANCELLED,
        bad: trine.NodeStatus.CANCELLED,
        after: trine.NodeStatus.CANCELLED,
    }
    stats = graph.statistics()
    assert (stats.failed, stats.skipped, stats.cancelled, stats.running) == (0, 0, 3, 0)


async def test_sync_fn_error_wins_over_fail_fast_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The programming error is raised as itself even when a failure cancels the run too."""

    async def fail_now() -> None:
        raise KeyError("boom")

    graph = trine.TaskGraph(fail_fast=True)
    graph.add(fail_now)
    graph.add(_returns_one)
    with pytest.raises(TypeError, match=r"^fn must be an async function"):
        await graph.run()


async def test_sync_fn_through_a_policy_is_called_once_and_raised() -> None:
    """Through policy=, a fn that is not async is not retried, and run() raises it bare."""
    calls: list[int] = []

    def counted() -> int:
        calls.append(1)
        return 1

    policy = trine.Policy(retry=trine.Retry(3, backoff=trine.Backoff.constant(0.0)))
    graph = trine.TaskGraph()
    node = graph.add(counted, policy=policy)
    with pytest.raises(TypeError, match=r"^fn must be an async function"):
        await graph.run()
    assert calls == [1]
    assert graph._run is not None
    assert graph._run.result_of(node._index).status is trine.NodeStatus.CANCELLED


async def test_lambda_returning_a_coroutine_is_a_valid_fn() -> None:
    """fn may be any callable that returns an awaitable, such as a lambda."""
    graph = trine.TaskGraph()
    one = graph.add(_value, 1)
    two = graph.add(lambda *deps: _value(2, *deps), deps=[one])
    result = await graph.run()
    assert result[two].value == (2, (1,))


@pytest.mark.parametrize(
    ("on_event", "message"),
    [
        (_value, r"^on_event must be a plain function, got the async function .*"),
        (_generator, r"^on_event must be a plain function, got the generator function .*"),
        (_async_generator, r"^on_event must be a plain function, got the generator function .*"),
        (1, r"^on_event must be a callable, got 1$"),
    ],
)
async def test_on_event_must_be_a_plain_function(on_event: Any, message: str) -> None:
    """run(on_event=) refuses what it could not call as a plain callback, before anything runs."""
    started: list[int] = []

    async def work() -> None:
        started.append(1)

    graph = trine.TaskGraph()
    graph.add(work)
    with pytest.raises(TypeError, match=message):
        await graph.run(on_event=on_event)
    assert started == []
    assert graph.statistics().pending == 1


async def test_on_event_returning_a_coroutine_makes_run_raise_type_error() -> None:
    """A callback that returns a coroutine (it would never run) cancels the run; run() raises."""

    async def log(event: trine.NodeEvent) -> None:
        raise AssertionError("never awaited")  # pragma: no cover

    graph = trine.TaskGraph()
    graph.add(_sleeper(), "slow", 10)
    with pytest.raises(
        TypeError,
        match=r"^on_event must be a plain function, but calling it returned <coroutine .*>: "
        r"trine calls it without awaiting$",
    ):
        await graph.run(on_event=lambda event: log(event))
    assert graph.statistics().cancelled == 1


def test_node_cannot_be_created_directly() -> None:
    """Nodes come from TaskGraph.add; Node() says so."""
    with pytest.raises(TypeError, match=r"^trine.Node cannot be created directly"):
        trine.Node()


def test_node_attributes_come_from_the_graph() -> None:
    """A node's deps, priority and name read what add() was given, and are read-only."""
    graph = trine.TaskGraph()
    a = graph.add(_value, 1, name="a")
    b = graph.add(_value, 2, priority=-3)
    c = graph.add(_value, 3, deps=[b, a, b])
    assert (a.deps, b.deps, c.deps) == ((), (), (b, a, b))
    assert (a.priority, b.priority, c.priority) == (0, -3, 0)
    assert (a.name, b.name, c.name) == ("a", "_value", "_value-2")
    with pytest.raises(AttributeError):
        c.name = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------
# A run without limit, priorities or resources: dependents start at once


async def test_unbounded_run_starts_what_a_completion_readies_in_insertion_order() -> None:
    """The nodes one completion lets start, start in the order they were added."""
    graph = trine.TaskGraph()
    root = graph.add(_value, 0, name="root")
    for name in ["d", "b", "c", "a"]:
        graph.add(_value, name, deps=[root], name=name)
    events: list[str] = []
    await graph.run(on_event=lambda e: events.append(f"{e.kind} {e.node.name}"))
    assert [e for e in events if e.startswith("started")] == [
        "started root",
        "started d",
        "started b",
        "started c",
        "started a",
    ]


async def test_statistics_during_an_unbounded_run(autojump_clock: trio.testing.MockClock) -> None:
    """statistics() counts pending and running nodes of a run without a limit."""
    work = _sleeper()
    graph = trine.TaskGraph()
    a = graph.add(work, "a", 2)
    b = graph.add(work, "b", 4)
    graph.add(work, "c", 2, deps=[a, b])
    graph.add(work, "d", 1, deps=[a])
    seen: list[trine.GraphStatistics] = []

    async def watch() -> None:
        for at in [1.5, 2.5, 4.5]:
            await trio.sleep_until(at)
            seen.append(graph.statistics())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await graph.run()
    assert [(s.pending, s.ready, s.running, s.succeeded) for s in seen] == [
        (2, 0, 2, 0),  # 1.5: a and b run
        (1, 0, 2, 1),  # 2.5: a is done, b and d run
        (0, 0, 1, 3),  # 4.5: b and d are done, c runs
    ]


class _Spawns(trio.abc.Instrument):
    """Counts the tasks spawned, and keeps their names."""

    def __init__(self) -> None:
        self.spawned = 0
        self.names: list[str] = []

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1
        self.names.append(task.name)


async def test_a_finished_node_runs_one_dependent_in_its_own_task() -> None:
    """Without limit, priorities, resources, policies or on_event, the task of a node that
    succeeds runs the first dependent it makes ready, renamed after it; the others get tasks."""
    seen: list[tuple[str, str]] = []
    tasks: dict[str, trio.lowlevel.Task] = {}

    async def work(label: str, *deps: Any) -> str:
        task = trio.lowlevel.current_task()
        seen.append((label, task.name))
        tasks[label] = task
        await trio.lowlevel.checkpoint()
        return label

    graph = trine.TaskGraph()
    root = graph.add(work, "root", name="root")
    first = graph.add(work, "first", deps=[root], name="first")
    graph.add(work, "second", deps=[root], name="second")
    graph.add(work, "third", deps=[first], name="third")
    spawns = _Spawns()
    trio.lowlevel.add_instrument(spawns)
    try:
        result = await graph.run()
    finally:
        trio.lowlevel.remove_instrument(spawns)
    assert result.ok
    assert sorted(seen) == [(label, label) for label in ["first", "root", "second", "third"]]
    assert tasks["root"] is tasks["first"] is tasks["third"]
    assert tasks["second"] is not tasks["root"]
    assert spawns.spawned == 2  # root's task (which also runs first and third) and second's
    assert result[first].started_at == result[root].finished_at


def test_a_chain_of_nodes_that_never_checkpoint_still_yields() -> None:
    """One task runs at most 33 nodes in a row: a long chain of nodes that never checkpoint
    gives the scheduler back after every 33 of them, in a new task."""
    order: list[str] = []

    class Steps(_Spawns):
        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            order.append("step")

    async def node_fn(index: int, *deps: Any) -> int:
        order.append("node")
        return index

    async def main() -> None:
        graph = trine.TaskGraph()
        node = graph.add(node_fn, 0)
        for index in range(1, 99):
            node = graph.add(node_fn, index, deps=[node])
        result = await graph.run()
        assert result.ok
        assert result[node].value == 98

    spawns = Steps()
    trio.run(main, instruments=[spawns])
    # Three tasks for the chain, each named after the first node it runs...
    assert [name for name in spawns.names if name.startswith("node_fn")] == [
        "node_fn",
        "node_fn-34",
        "node_fn-67",
    ]
    # ... and each runs its 33 nodes in one step.
    per_step = [len(list(group)) for kind, group in itertools.groupby(order) if kind == "node"]
    assert per_step == [33, 33, 33]


@st.composite
def _lean_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(_dags())
    spec["priorities"] = None
    spec["cancel_at"] = draw(st.none() | st.integers(0, 12).map(lambda t: t + 0.5))
    return spec


@given(_lean_specs())
def test_lean_runs_equal_the_reference_and_count_what_runs(spec: dict[str, Any]) -> None:
    """A run with none of limit, priorities, resources, policies or on_event reports what the
    naive scheduler computes; while it runs, statistics() counts as running exactly the
    nodes whose dependencies have all succeeded and which have not finished; every node
    runs in a task named after it; cancelled at any time, every node is accounted for and
    nothing is left running."""
    deps: list[list[int]] = spec["deps"]
    succeeded: set[int] = set()
    finished: set[int] = set()
    wrong: list[tuple[int, Any]] = []
    graph = trine.TaskGraph()

    async def work(index: int, *dep_values: Any) -> Any:
        name = trio.lowlevel.current_task().name
        if name != f"n{index}":
            wrong.append((index, name))
        running = graph.statistics().running
        expected = sum(
            1
            for node, node_deps in enumerate(deps)
            if node not in finished and succeeded.issuperset(node_deps)
        )
        if running != expected:
            wrong.append((index, ("running", running, expected)))
        try:
            await trio.sleep(spec["durations"][index])
            if index in spec["failing"]:
                raise KeyError(index)
        finally:
            finished.add(index)
        succeeded.add(index)
        return (index, *dep_values)

    async def main() -> None:
        nodes: list[trine.Node[Any]] = []
        for index, deps in enumerate(spec["deps"]):
            nodes.append(graph.add(work, index, deps=[nodes[d] for d in deps], name=f"n{index}"))
        result: trine.GraphResult | None = None
        with trio.move_on_after(spec["cancel_at"] or 1e9):
            result = await graph.run()
        assert wrong == []
        stats = graph.statistics()
        assert (stats.pending, stats.ready, stats.running) == (0, 0, 0)
        assert stats.succeeded + stats.failed + stats.skipped + stats.cancelled == len(nodes)
        if result is None:
            assert spec["cancel_at"] is not None
            assert stats.cancelled > 0
            return
        _assert_results_are(result, nodes, _reference_run(spec))

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


# --------------------------------------------------------------------------
# The guide's examples run as written (on the fake clock)

_GUIDE = pathlib.Path(__file__).parent.parent / "docs" / "guide" / "graphs.rst"


def _guide_examples() -> list[str]:
    blocks = re.findall(
        r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", _GUIDE.read_text(), re.M
    )
    return [textwrap.dedent(block) for block in blocks]


def test_guide_has_examples() -> None:
    """The graphs guide has its three examples (so the test below runs them)."""
    assert len(_guide_examples()) == 3


@pytest.mark.parametrize("source", _guide_examples())
def test_guide_examples_run(source: str) -> None:
    """Every ``code-block:: python`` in docs/guide/graphs.rst runs and its asserts hold."""
    assert source.rstrip().endswith("trio.run(main)")
    namespace: dict[str, Any] = {}
    exec(compile(source.rstrip().removesuffix("trio.run(main)"), str(_GUIDE), "exec"), namespace)
    trio.run(namespace["main"], clock=trio.testing.MockClock(autojump_threshold=0))
