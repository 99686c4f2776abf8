"""Benchmarks for :class:`trine.TaskGraph` scheduling overhead, at four sizes.

For n = 10**3, 10**4, 10**5 and 10**6 trivial nodes (``async def f(*deps):
return 1``), each depending on three random earlier nodes (about 3n edges,
drawn once with ``random.Random(0)``), four ways of doing the same work:

- **bare nursery** (the baseline): n trivial tasks started in one
  hand-written nursery, with no dependencies at all.
- **TaskGraph build+run**: the n ``graph.add`` calls (validation and edges)
  and ``await graph.run()``. Such a run (no limit, priorities or resources)
  lets the task of a node that succeeds run the first dependent it makes
  ready itself, so it starts 0.47 to 0.48 tasks per node.
- **hand-written scheduler** (an extra row): the graph a Trio user writes
  by hand -- count each node's remaining dependencies, keep a list of
  dependents per node, and start a node from the task whose completion
  brings its count to zero -- with the building of those lists timed too.
  It has no priorities, limit, resources, statuses, times, skips or events.
- **hand-written, reusing finished tasks** (an extra row, the strongest):
  the same, with the finished task running one ready dependent itself, as
  TaskGraph does.

Each case prints Trio task steps and Python calls per node beside the time.

Measured with ``python -m benchmarks graph_1000 --repeat 20``,
``graph_10000 graph_100000 --repeat 6`` and ``graph_1000000 --repeat 5`` on
a 2-core machine, the order of the variants changing every round (see
``_harness.run_case``), CPU time per node, ratio to the bare nursery (a
freshly booted virtual machine, faster than the previous day's)::

    n          nursery   TaskGraph         hand-written     hand, reusing tasks
    1,000       7.0 us    7.4 us (1.05x)    9.0 us (1.28x)   4.3 us (0.62x)
    10,000      7.4 us    7.9 us (1.07x)    9.3 us (1.25x)   5.9 us (0.80x)
    100,000    13.5 us   14.5 us (1.08x)   14.9 us (1.11x)   9.8 us (0.73x)
    1,000,000  13.0 us   18.6 us (1.43x)   22.9 us (1.76x)  14.1 us (1.08x)

That is with the graph's arrays of indices and counts unsigned (``"Q"``, see
``_taskgraph.py``); a second run at 10^6 with them (``--repeat 3``) gave
1.16x (nursery 15.6 us, TaskGraph 18.1, hand-written 1.41x and 0.95x): the
graph's time moved little, the nursery's a lot. The same morning, before
that change, one run at 10^6 gave 1.54x (nursery 12.6 us, TaskGraph 19.4,
hand-written 1.77x and 1.11x). On the slower machine of the day before,
with signed arrays: 1.10x, 1.16x, 1.19x and 1.47x at 10^3..10^6 (nursery
12.8 to 19.4 us per task), and two more runs at 10^6 gave 1.34x and 1.37x.
On one machine the ratios move by up to 0.3 from run to run, at 10^6 mostly
with the nursery's own time (12.6 to 19.5 us per task over twelve runs on
those two machines). A session later, on a third machine, slower again, one
run at 10^6 with the unsigned arrays (``--repeat 3``) gave 1.57x (nursery
22.8 us, TaskGraph 35.7, hand-written 1.76x and 1.14x). Before a
node's function was called with up to three dependencies' values read one by
one (instead of a slice of the edges mapped to their values), three runs
gave 1.49x, 1.57x and 1.57x at 10^6.

Steps per node: 1.0 for the nursery and the hand-written scheduler, 0.47 to
0.48 for TaskGraph and the hand-written one that reuses tasks. Python calls
per node: 22, 13.7 to 14.0, 23 and 11.5. Noise-free, under callgrind (the
instructions of a run of 40,000 nodes less those of 20,000, less the drawing
of the dependencies, on the freshly booted machine): 55,300 machine
instructions per node, 0.94x the nursery's 58,700; with signed arrays 58,500
to 59,100 in three measurements (the day before, on the other machine,
57,400 against the nursery's 56,800). ``add()`` checks each dependency and
records the edge both ways in a Python loop, more bytecodes but fewer
instructions and less time than the same work through ``map()`` and
``operator`` getters in C.

Issue 19's goal is build+run <= 1.5x the bare nursery at every size, the
ratio not growing with n. The bound held at every size in the table's run
(by 0.07 at 10^6), in the previous day's full run and at 10^6 in its two
more runs, but not in the run at 10^6 before the unsigned arrays (1.54x),
nor in the third machine's run at 10^6 with them (1.57x); the ratio still
grows at 10^6. The graph's extra cost over the hand-written
scheduler that reuses tasks is 2 to 5 us per node at every size in the
table's run (5 to 9 on the machine of the day before, 9.6 at 10^6 on the
third machine), and mostly Python work: an
``add()`` call per node, and the statuses, times and names a run keeps (in
the same loop of rounds with the cyclic GC off, at 10^4: nursery 10.2 us,
TaskGraph 13.0, reusing 8.3, on the slower machine with the slices). What
grows at 10^6 is what every scheduler of dependencies pays there and a bare
nursery does not: each dependency read is a cache miss. The cyclic GC costs
them all about the same there, the nursery included, whose million waiting
tasks its full collections scan: in two runs at 10^6 on the slower machine
(the first before the values were read one by one), 5.0 and 4.4 us per node
for the graph, 4.3 and 5.2 for the hand-written scheduler that reuses tasks,
5.2 and 5.7 for the nursery. (The graph keeps no set of default names: a
set of a million names added about 0.13 s to each full collection.) So the
plain hand-written scheduler's ratio grows more than the graph's (by 0.65
from 10^5 to 10^6 in the table's run), the one that reuses tasks as much
(0.35, the graph's too).

Tried and dropped (fresh processes in turn, five rounds at 10^6; the
machine's noise there is about 10 %): each node's dependents turned around
in ``run()`` into two flat arrays instead of recorded by ``add()`` on the
dependency's Node (one tracked object per node fewer): 6,200 instructions
per node more, 18.9 against 18.9 us at 10^6; dependents in a tuple while
they are few (the collector stops tracking a tuple of ints): 3,400
instructions fewer, 17.7 against 17.6 us at 10^6, since each new tuple
touches the int of every dependent already in it; the arrays of indices
and counts in 4-byte unsigned ints (``"I"``, half the memory of ``"Q"``),
measured apart, on the third machine (three fresh processes each, in turn,
the faster of two runs of TaskGraph alone in each): 29.4, 31.7 and 32.4 us
at 10^6 against 30.9, 30.6 and 29.6, no faster.
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
                "hand-written, reusing finished tasks (extra)",
                functools.partial(_hand_written_reusing_tasks, nodes),
            ),
        ],
        count_calls=True,
    )


CASES = [_case(nodes) for nodes in SIZES]
