"""Benchmarks for :class:`trine.TaskGraph` scheduling overhead, at four sizes.

For n = 10**3, 10**4, 10**5 and 10**6 trivial nodes (``async def f(*deps):
return 1``), each depending on three random earlier nodes (about 3n edges,
drawn once with ``random.Random(0)``), three ways of doing the same work:

- **bare nursery** (the baseline): n trivial tasks started in one
  hand-written nursery, with no dependencies at all. A graph cannot start
  fewer tasks than this, so the ratio is everything the graph adds.
- **TaskGraph build+run**: the n ``graph.add`` calls (validation and edges)
  and ``await graph.run()``.
- **hand-written scheduler** (an extra row): the strongest graph a Trio
  user writes by hand -- count each node's remaining dependencies, keep a
  list of dependents per node, and start a node from the task whose
  completion brings its count to zero -- with the building of those lists
  timed too. It has no priorities, limit, resources, statuses, times,
  skips or events.

Each case prints Trio task steps and Python calls per node beside the time.

Measured with ``python -m benchmarks graph_1000 graph_10000 graph_100000
--repeat 6`` on a quiet 2-core machine, the order of the variants changing
every round (see ``_harness.run_case``), CPU time per node, ratio to the bare
nursery, three runs::

    n          TaskGraph build+run     hand-written (extra)
    1,000      1.75 / 1.74 / 1.87x     1.34 / 1.16 / 1.24x
    10,000     1.53 / 1.92 / 1.77x     1.28 / 1.24 / 1.08x
    100,000    1.88 / 1.70 / 1.85x     1.33 / 1.17 / 1.27x

(the bare nursery took 8.4-14.3 us per task at 10^3, 13.2-14.7 us at 10^4,
15.6-17.7 us at 10^5). At 10^6 (``--repeat 3``): nursery 17.3 us, TaskGraph
40.8 us (2.35x), hand-written 27.0 us (1.56x).

Steps per node: 1.0 (1.01 at 10^3) in all three. Python calls per node:
22 (nursery), 25-26 (TaskGraph), 23-24 (hand-written). Noise-free, at
20,000 nodes: 868 bytecodes per node against the nursery's 556 and the
hand-written scheduler's 675 (1.56x and 1.21x), and under callgrind 1.45x
the nursery's machine instructions (the hand-written one 1.03x). CPU time
grows past that at 10^5 nodes: with the collector off in both, the graph's
run went from 16 to 25 us per node between 10^4 and 10^5 nodes (the nursery
from 10 to 13), and random dependencies cost about a quarter more than
near ones: the per-node data a run touches no longer fits the caches.
Issue 19's goal (build+run <= 1.5x the bare nursery at every size) is not
met.
"""

from __future__ import annotations

import functools
import random
import time

import trio

import trine
from benchmarks._harness import Case, Variant, run_trio

SIZES = (1_000, 10_000, 100_000, 1_000_000)
EDGES_PER_NODE = 3


async def _trivial(*deps: object) -> int:
    return 1


@functools.cache
def _dep_lists(nodes: int) -> list[list[int]]:
    """Each node's dependencies: up to three distinct random earlier nodes (drawn once)."""
    rng = random.Random(0)
    return [rng.sample(range(index), min(EDGES_PER_NODE, index)) for index in range(nodes)]


def _nursery(nodes: int) -> float:
    async def main() -> float:
        start = time.process_time()
        async with trio.open_nursery() as nursery:
            for _ in range(nodes):
                nursery.start_soon(_trivial)
        return time.process_time() - start

    return run_trio(main)


def _graph(nodes: int) -> float:
    dep_lists = _dep_lists(nodes)

    async def main() -> float:
        start = time.process_time()
        graph = trine.TaskGraph()
        handles: list[trine.Node[int]] = []
        add = graph.add
        append = handles.append
        get = handles.__getitem__
        for deps in dep_lists:
            append(add(_trivial, deps=list(map(get, deps))))
        result = await graph.run()
        elapsed = time.process_time() - start
        assert len(result) == nodes
        return elapsed

    return run_trio(main)


def _hand_written(nodes: int) -> float:
    dep_lists = _dep_lists(nodes)

    async def main() -> float:
        start = time.process_time()
        remaining = list(map(len, dep_lists))
        dependents: list[list[int]] = [[] for _ in range(nodes)]
        for index, deps in enumerate(dep_lists):
            for dep in deps:
                dependents[dep].append(index)
        results: list[object] = [None] * nodes
        result_of = results.__getitem__

        async def run(index: int) -> None:
            results[index] = await _trivial(*map(result_of, dep_lists[index]))
            for dependent in dependents[index]:
                left = remaining[dependent] - 1
                remaining[dependent] = left
                if not left:
                    nursery.start_soon(run, dependent)

        async with trio.open_nursery() as nursery:
            for index in range(nodes):
                if not remaining[index]:
                    nursery.start_soon(run, index)
        elapsed = time.process_time() - start
        assert None not in results
        return elapsed

    return run_trio(main)


def _hand_written_reusing_tasks(nodes: int) -> float:
    dep_lists = _dep_lists(nodes)

    async def main() -> float:
        start = time.process_time()
        remaining = list(map(len, dep_lists))
        dependents: list[list[int]] = [[] for _ in range(nodes)]
        for index, deps in enumerate(dep_lists):
            for dep in deps:
                dependents[dep].append(index)
        results: list[object] = [None] * nodes
        result_of = results.__getitem__

        async def run(index: int) -> None:
            while index >= 0:
                results[index] = await _trivial(*map(result_of, dep_lists[index]))
                following = -1
                for dependent in dependents[index]:
                    left = remaining[dependent] - 1
                    remaining[dependent] = left
                    if not left:
                        if following < 0:
                            following = dependent
                        else:
                            nursery.start_soon(run, dependent)
                index = following

        async with trio.open_nursery() as nursery:
            for index in range(nodes):
                if not remaining[index]:
                    nursery.start_soon(run, index)
        elapsed = time.process_time() - start
        assert None not in results
        return elapsed

    return run_trio(main)


def _case(nodes: int) -> Case:
    return Case(
        name=f"graph_{nodes}",
        description=f"{nodes:,} trivial nodes, ~{nodes * EDGES_PER_NODE:,} edges, build+run",
        per=nodes,
        variants=[
            Variant(
                f"bare nursery, {nodes:,} tasks (baseline)",
                functools.partial(_nursery, nodes),
                baseline=True,
            ),
            Variant("TaskGraph build+run", functools.partial(_graph, nodes)),
            Variant(
                "hand-written scheduler (extra: no features)",
                functools.partial(_hand_written, nodes),
            ),
            Variant(
                "hand-written, a finished task runs one ready dependent (extra)",
                functools.partial(_hand_written_reusing_tasks, nodes),
            ),
        ],
        count_calls=True,
    )


CASES = [_case(nodes) for nodes in SIZES]
