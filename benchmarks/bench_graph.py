"""Benchmarks for :class:`trine.TaskGraph` scheduling overhead, at four sizes.

For n = 10**3, 10**4, 10**5 and 10**6 trivial nodes (``async def f(*deps):
return 1``), each depending on three random earlier nodes (about 3n edges,
drawn once with ``random.Random(0)``), four ways of doing the same work:

- **bare nursery** (the baseline): n trivial tasks started in one
  hand-written nursery, with no dependencies at all (the drawn lists are
  held while it runs, unused, so every variant runs with the same memory).
- **TaskGraph build+run**: the n ``graph.add`` calls (validation and edges)
  and ``await graph.run()``. Such a run (no limit, priorities or resources)
  lets the task of a node that succeeds run the first dependent it makes
  ready itself, so it starts 0.46 to 0.48 tasks per node.
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
a 2-core virtual machine, the order of the variants changing every round
(see ``_harness.run_case``), CPU time per node, ratio to the bare nursery
(the fourth machine these were run on, the fastest at 10^3 to 10^5)::

    n          nursery   TaskGraph         hand-written     hand, reusing tasks
    1,000       4.6 us    4.9 us (1.05x)    5.4 us (1.16x)   3.1 us (0.66x)
    10,000      5.5 us    5.7 us (1.04x)    6.5 us (1.18x)   3.9 us (0.72x)
    100,000    11.7 us   10.8 us (0.92x)   13.5 us (1.15x)   8.1 us (0.69x)
    1,000,000  14.4 us   19.0 us (1.31x)   21.6 us (1.50x)  14.2 us (0.98x)

A run at 10^6 earlier in the same session (``--repeat 3``) gave 1.26x
(nursery 14.2 us, TaskGraph 17.9, hand-written 1.60x and 1.01x). Earlier
runs at 10^6, on three other machines: 1.34x, 1.37x and 1.47x on the first
(signed arrays of indices; 1.10x, 1.16x and 1.19x at 10^3 to 10^5); 1.54x on
the second before the arrays were unsigned (``"Q"``, see ``_node.py``), then
1.43x (1.05x, 1.07x and 1.08x at 10^3 to 10^5) and 1.16x after; 1.57x on the
third (nursery 22.8 us, TaskGraph 35.7). Later, on a fifth machine: 1.43x
(``--repeat 3``; nursery 20.6 us, TaskGraph 29.3, hand-written 1.74x and
1.16x), and 1.11x, 1.10x and 1.13x at 10^3 to 10^5 (``--repeat 5``). On a
seventh, all at ``--repeat 5``: 1.14x, 1.08x, 1.07x and 1.13x at 10^3 to
10^6 (nursery 5.9, 6.1, 9.8 and 13.5 us, TaskGraph 6.7, 6.6, 10.5 and 15.3;
a run at 10^6 with ``--repeat 3`` earlier in the session gave 1.19x), the
one full run in which the ratio at 10^6 was no higher than at 10^3 (it still
rose from 10^5, by 0.06). On one machine the ratios move by up to 0.3 from
run to run, at 10^6 mostly with the nursery's own time. Before a node's
function was called with up to three dependencies' values read one by one
(instead of a slice of the edges mapped to their values), three runs gave
1.49x, 1.57x and 1.57x at 10^6.

Steps per node: 1.0 for the nursery and the hand-written scheduler, 0.46 to
0.48 for TaskGraph and the hand-written one that reuses tasks. Python calls
per node: 22 to 22.6, 13.7 to 14.0, 23 to 23.9 and 11.4 to 11.8.
Noise-free, under callgrind (the instructions of a run of 40,000 nodes less
those of 20,000, less the drawing of the dependencies, on the second
machine): 55,300 machine instructions per node, 0.94x the nursery's 58,700;
with signed arrays 58,500 to 59,100 in three measurements (on the first
machine, 57,400 against the nursery's 56,800). ``add()`` checks each
dependency and records the edge both ways in a Python loop, more bytecodes
but fewer instructions and less time than the same work through ``map()``
and ``operator`` getters in C.

Issue 19's goal is build+run <= 1.5x the bare nursery at every size, the
ratio not growing with n. The bound held at every size in the fourth
machine's table and in the first, second, fifth, sixth and seventh machines'
full runs, and in eleven of the thirteen runs at 10^6 since the values were
read one by one (not in the second machine's 1.54x before the unsigned
arrays, nor in the third machine's 1.57x). With dependencies anywhere
earlier, the ratio still grows at 10^6; with dependencies a bounded distance
back, it does not (below). A graph costs 0.80x to 0.90x the plain
hand-written scheduler in the fourth machine's table, and 1.7 to 4.7 us per
node (from the unrounded medians) more than the one that reuses tasks (9.6
at 10^6 on the third machine): mostly Python work, an ``add()`` call per
node and the statuses, times and names a run keeps, and the cyclic GC.

Most of the ratio's growth comes from how far back dependencies reach, not
from n itself: with a bounded reach, the graph's ratio stops growing. The
``graph_near_*`` cases (opt-in: name them) draw each node's three
dependencies among the 1,000 nodes just before it, the same graph as
``graph_1000`` at 10^3. On a sixth machine, one session, CPU time per node,
ratio to the bare nursery (``--repeat 5``, ``--repeat 3`` at 10^6)::

    n          any earlier node                  the 1,000 nodes before
               TaskGraph        reusing tasks    TaskGraph        reusing tasks
    1,000      11.8 us (0.99x)   7.9 us (0.66x)  12.1 us (1.01x)   7.9 us (0.66x)
    10,000     14.4 us (1.11x)   9.5 us (0.73x)   8.1 us (1.05x)   5.0 us (0.64x)
    100,000    15.0 us (1.12x)  10.9 us (0.81x)  10.2 us (0.86x)   5.6 us (0.47x)
    1,000,000  17.4 us (1.42x)  15.7 us (1.28x)  10.5 us (0.87x)   7.2 us (0.60x)

The nursery took 11.9 to 13.4 us per task in every case but one: in the
near case at 10^4 all four variants ran faster (the nursery 7.7 us), in a
quicker spell of the machine, and that case's ratios come from the same
spell. With dependencies 1,000 nodes back, the graph's ratio does not grow
from 10^4 to 10^6 (1.05x, 0.86x, 0.87x). The hand-written schedulers'
ratios still rise from 10^5 to 10^6 (the plain one from 0.80x to 0.97x, the
one that reuses tasks from 0.47x to 0.60x), by less than with dependencies
anywhere earlier (1.30x to 1.79x, 0.81x to 1.28x), and end below their
values at 10^4 (1.25x, 0.64x). Measured apart, in fresh processes (one
process per variant, the variants in turn in each round; each process's
time the mean of its two runs; the figure the median over rounds of the
graph's ratio to the nursery): with dependencies 1,000 nodes back, 0.83x at
10^5 and 0.79x at 10^6 (three rounds each, from 0.51x to 0.91x and from
0.78x to 0.85x); 100,000 back, 1.26x at 10^6 (three rounds, 1.17x to
1.75x); anywhere earlier, 1.11x at 10^5 and 1.40x at 10^6 (six rounds each,
0.91x to 1.35x and 1.22x to 1.43x). On the seventh machine, in one process,
``graph_near_1000000`` gave 0.76x (reusing tasks 0.51x) where
``graph_1000000`` gave 1.19x (0.90x), both ``--repeat 3``.

Two things grow with the reach, both set by the graph's shape: the memory a
node's reads and writes land in at random (its dependencies' values, its
dependents' counts), and how many nodes are ready or running at once, each
a waiting Trio task of about 1 KB. Counted in the TaskGraph run with a
``trio.abc.Instrument`` (Trio's own tasks included), at most 173 and 180
tasks were alive at once at 10^5 and 10^6 with dependencies 1,000 nodes
back (the longest chains of dependencies 739 and 7,159 nodes), 11,776 at
10^6 with dependencies 100,000 back (longest chain 136), and 6,152 and
65,404 at 10^5 and 10^6 with dependencies anywhere earlier (longest chains
66 and 83). A bare nursery reads nothing at random, and runs its tasks in
the order it made them.

Which cost of the hardware (caches, address translation, ...) grows with the
reach is not fully known. With dependencies anywhere earlier, the ratio
grows at 10^6 for every scheduler of dependencies (from 10^5 by 0.39 for the
graph, 0.29 and 0.35 for the hand-written ones, in the fourth machine's
table), which read the state of random earlier nodes, where a bare nursery
reads none. Against the strongest of them, the scheduler that reuses tasks,
the graph's ratio does not grow from 10^5 to 10^6: 1.33x and 1.33x in the
fourth machine's table, 1.23x and 1.23x on the fifth machine. Both grow per
node by the same factor (1.75x and 1.46x), against the nursery's 1.23x and
1.16x, so the graph's own extra grows with them (from 2.7 to 4.7 us per node
over that scheduler in the fourth machine's table). The cyclic GC is not the
difference. In one fresh process each at 10^6, on the fourth machine, with
``gc.callbacks`` timing every collection, the collections took 4.9 us per
node for the graph (0.8 in the youngest generation, 1.3 in the middle one,
2.7 in the seven full ones), 4.5 for the hand-written scheduler that reuses
tasks and 6.1 for the nursery, whose full collections scan a million waiting
tasks. The graph keeps two tracked containers per node, its Node and the
Node's array of dependents (CPython 3.11 tracks arrays), where that
scheduler keeps one list; its young collections ran 3,335 times against
2,036. Under cachegrind with a 4 MB last-level cache (runs of 100,000 nodes
less 50,000, less the drawing of the dependencies, each process ending
before Python's collection at exit, as the harness collects a graph's cycles
outside its timing), the graph ran 57,200 instructions per node and missed
that cache 215 times, 8,400 of the instructions and 155 of the misses in the
GC; the hand-written scheduler that reuses tasks 35,600 and 121 (3,500 and
79 in the GC); the nursery 66,200 and 427 (16,200 and 380 in the GC).
Outside the GC the graph missed 60 times per node, that scheduler 42 and the
nursery 47, so a simulated cache of that size does not show the growth
either. Nor does the kernel's work for new memory, measured on the fifth
machine with ``resource.getrusage`` around the first run in a fresh process,
two processes each at 10^5 and 10^6 (where at 10^6 the graph took 1.22x and
1.24x the nursery, not the harness's 1.43x): page faults per node did not
change with n (0.12 to 0.13 for the graph, 0.26 for the nursery, 0.06 for
the scheduler that reuses tasks), and system time per node grew less for the
graph (from 0.3 and 0.8 us to 1.4) than for the nursery (from 1.1 and 1.0 us
to 3.0 and 3.5). Address translation may be part of the growth at 10^6.
Python's own allocator takes memory in 1 MiB arenas, too small for 2 MiB
huge pages (with transparent huge pages set to ``always``, only 110 to 148
MiB of the graph's memory went into them, and its time did not move). Under
the system allocator instead (``PYTHONMALLOC=malloc``), glibc can be asked
for them (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``, transparent huge pages
on ``madvise``), and about 772 MiB of the graph's memory and 1,210 MiB of
the nursery's then lay in huge pages. In five rounds at 10^6 on the fifth
machine (fresh processes in turn, the mean of two runs in each), huge pages
took the graph's median from 42.6 to 35.8 us per node and the nursery's from
28.3 to 27.1, and the median of the per-round ratios from 1.45x to 1.25x
(the rounds: 1.51x, 1.56x, 1.44x, 1.45x and 1.25x without, 1.25x, 1.21x,
1.24x, 1.28x and 1.46x with, so the two overlap). In two rounds at 10^5 the
ratio did not move (0.82x and 0.99x without, 0.84x and 0.96x with). That
machine has no hardware counters, so this is indirect evidence, not a count
of TLB misses. With the GC off, the graph's 16,700 instructions per node
more than that scheduler are mostly building it: under cProfile at 10^5 (GC
off, times inflated by the profiler), ``add()`` and its seven array appends
per node took 4.7 us per node, and the graph's task 1.6 us per node more
than the hand-written scheduler's (6.5 against 4.9). (The graph keeps no set
of default names: a set of a million names added about 0.13 s to each full
collection.)

Tried and dropped (on the second machine unless said otherwise, fresh
processes in turn, five rounds at 10^6; that machine's noise there is about
10 %): each node's dependents turned around in ``run()`` into two flat
arrays instead of recorded by ``add()`` on the dependency's Node (one
tracked object per node fewer): 6,200 instructions per node more, 18.9
against 18.9 us at 10^6; dependents in a tuple while they are few (the
collector stops tracking a tuple of ints): 3,400 instructions fewer, 17.7
against 17.6 us at 10^6, since each new tuple touches the int of every
dependent already in it; the arrays of indices and counts in 4-byte unsigned
ints (``"I"``, half the memory of ``"Q"``), measured apart, on the third
machine (three fresh processes each, in turn, the faster of two runs of
TaskGraph alone in each): 29.4, 31.7 and 32.4 us at 10^6 against 30.9, 30.6
and 29.6, no faster.
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
NEAR = 1_000  # how far back a dependency reaches in the graph_near_* cases


async def _trivial(*deps: object) -> int:
    return 1


# One shape at a time: a cached million lists, all GC-tracked, slow every
# case run after them in the same process. Each variant draws (or finds) its
# case's lists before its timing starts, so all of a case's variants run with
# the same lists alive; the case's teardown drops them.
@functools.lru_cache(maxsize=1)
def _dep_lists(nodes: int, reach: int | None) -> list[list[int]]:
    """Each node's dependencies: up to three distinct random earlier nodes (drawn once).

    With *reach*, they are drawn among the *reach* nodes just before it;
    without, among all the nodes before it.
    """
    rng = random.Random(0)
    lists = []
    for index in range(nodes):
        first = 0 if reach is None else max(0, index - reach)
        lists.append(rng.sample(range(first, index), min(EDGES_PER_NODE, index - first)))
    return lists


def _nursery(nodes: int, reach: int | None) -> float:
    _dep_lists(nodes, reach)  # unused: held, as the other variants hold them

    async def main() -> float:
        start = time.process_time()
        async with trio.open_nursery() as nursery:
            for _ in range(nodes):
                nursery.start_soon(_trivial)
        return time.process_time() - start

    return run_trio(main)


def _graph(nodes: int, reach: int | None) -> float:
    dep_lists = _dep_lists(nodes, reach)

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


def _hand_written(nodes: int, reach: int | None) -> float:
    dep_lists = _dep_lists(nodes, reach)

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


def _hand_written_reusing_tasks(nodes: int, reach: int | None) -> float:
    dep_lists = _dep_lists(nodes, reach)

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


def _case(nodes: int, reach: int | None) -> Case:
    if reach is None:
        name = f"graph_{nodes}"
        shape = "all earlier nodes"
    else:
        name = f"graph_near_{nodes}"
        shape = f"the {reach:,} nodes before each"
    return Case(
        name=name,
        description=(
            f"{nodes:,} trivial nodes, ~{nodes * EDGES_PER_NODE:,} edges"
            f" (dependencies among {shape}), build+run"
        ),
        per=nodes,
        variants=[
            Variant(
                f"bare nursery, {nodes:,} tasks (baseline)",
                functools.partial(_nursery, nodes, reach),
                baseline=True,
            ),
            Variant("TaskGraph build+run", functools.partial(_graph, nodes, reach)),
            Variant(
                "hand-written scheduler (extra: no features)",
                functools.partial(_hand_written, nodes, reach),
            ),
            Variant(
                "hand-written, reusing finished tasks (extra)",
                functools.partial(_hand_written_reusing_tasks, nodes, reach),
            ),
        ],
        opt_in=reach is not None,
        count_calls=True,
        teardown=_dep_lists.cache_clear,
    )


# Issue 19's goal is measured on the first shape; the second, opt-in, shows
# how much of the ratio's growth with n comes from how far back dependencies reach.
CASES = [_case(nodes, None) for nodes in SIZES] + [_case(nodes, NEAR) for nodes in SIZES]
