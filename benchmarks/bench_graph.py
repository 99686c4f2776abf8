"""Benchmarks for :class:`trine.TaskGraph` scheduling overhead.

100,000 trivial nodes (``async def f(*deps): return 1``), against the same
number of trivial tasks started in one hand-written nursery (the baseline):

- ``graph``: no edges; every node is ready at once.
- ``graph_edges``: 300,000 random edges, each node depending on up to three
  random earlier nodes, so nodes become ready one completion at a time and
  each completion walks its dependents and pushes them on the ready heap.

``run`` times ``await graph.run()`` only; ``build+run`` includes the 100,000
``graph.add`` calls (validation, names, edge lists).

Measured with ``python -m benchmarks graph graph_edges --repeat 5`` on the
shared 2-core machine, two runs (medians; the lead re-runs them):

==========================================  ===============  ===========
100,000 trivial nodes                       per node         ratio
==========================================  ===============  ===========
hand-written nursery (baseline)             7.8 / 7.9 us     1.00
``TaskGraph.run``, no edges                 11.8 / 11.5 us   1.51 / 1.46
``TaskGraph`` build+run, no edges           15.0 / 14.9 us   1.93 / 1.88
``TaskGraph.run``, 300,000 edges            13.3 / 13.3 us   1.68 / 1.72
``TaskGraph`` build+run, 300,000 edges      20.9 / 20.7 us   2.63 / 2.68
==========================================  ===============  ===========

What the numbers say: scheduling is linear (no edges and 300,000 edges cost
about the same per node, the edges about 0.5 us each), and a node costs
about 1.5x a bare task. Measured in CPU time, a minimal wrapper task that
stores its result costs 1.1x a bare task: the rest (about 3 us per node) is
the bookkeeping of a node (status, times, counters, dependents, the ready
heap, a call to the scheduler), done inline in the finishing task with no
extra trip through Trio's scheduler. Building every ``NodeResult`` eagerly
at the end of a run cost another 1.4 to 3 us per node (0.14 to 0.30 s per
100,000, measured), so results are built when first asked for. ``add()``
costs 3 to 7 us per node (validation, unique names, edge lists). With
resources, a pass of the scheduler looks at one node per group of nodes
sharing the same resources, so 40,000 nodes over two shared
``WeightedSemaphore`` resources and ``limit=8`` schedule in time linear in
the nodes (21 us per node including a checkpoint each).
"""

from __future__ import annotations

import random
import time

import trio

import trine
from benchmarks._harness import Case, Variant, run_trio

NODES = 100_000
EDGES_PER_NODE = 3


async def _trivial(*deps: object) -> int:
    return 1


def _nursery() -> float:
    async def main() -> float:
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(NODES):
                nursery.start_soon(_trivial)
        return time.perf_counter() - start

    return run_trio(main)


def _deps(rng: random.Random, index: int) -> list[int]:
    if index == 0:
        return []
    return rng.sample(range(index), min(EDGES_PER_NODE, index))


def _graph(*, edges: bool, include_build: bool) -> float:
    rng = random.Random(0)
    dep_lists = [_deps(rng, index) if edges else [] for index in range(NODES)]

    def build() -> trine.TaskGraph:
        graph = trine.TaskGraph()
        nodes: list[trine.Node[int]] = []
        for deps in dep_lists:
            nodes.append(graph.add(_trivial, deps=[nodes[d] for d in deps], name=None))
        return graph

    async def main() -> float:
        start = time.perf_counter()
        graph = build()
        if not include_build:
            start = time.perf_counter()
        result = await graph.run()
        elapsed = time.perf_counter() - start
        assert len(result) == NODES
        return elapsed

    return run_trio(main)


CASES = [
    Case(
        name="graph",
        description=f"TaskGraph of {NODES:,} trivial nodes, no edges, vs one nursery",
        per=NODES,
        variants=[
            Variant("hand-written nursery (baseline)", _nursery, baseline=True),
            Variant("TaskGraph.run", lambda: _graph(edges=False, include_build=False)),
            Variant("TaskGraph build+run", lambda: _graph(edges=False, include_build=True)),
        ],
    ),
    Case(
        name="graph_edges",
        description=f"TaskGraph of {NODES:,} trivial nodes, ~{NODES * EDGES_PER_NODE:,} edges",
        per=NODES,
        variants=[
            Variant("hand-written nursery, no edges (baseline)", _nursery, baseline=True),
            Variant("TaskGraph.run", lambda: _graph(edges=True, include_build=False)),
            Variant("TaskGraph build+run", lambda: _graph(edges=True, include_build=True)),
        ],
    ),
]
