"""TaskPool: a nursery with a bound, for work that is found as it runs.

:func:`~trine.gather`, :func:`~trine.amap` and pipelines need their work up
front; a crawler finds links, an agent spawns sub-tasks, a scheduler takes
jobs as they come. A :class:`TaskPool` is a nursery whose ``start`` waits
while ``limit`` tasks run (Go's ``errgroup.SetLimit``), whose tasks may start
more tasks through it, and whose results are read as they finish.

How it works. Each task of the pool holds one of ``limit`` slots while it
runs. A :meth:`~TaskPool.start` that finds a slot free (and room for a result)
starts the task at once, as ``nursery.start_soon`` would; otherwise it joins a
first-in, first-out line, and the task that frees a slot starts the next
task in line itself before waking its caller (a hand-off, as
:class:`trio.CapacityLimiter` hands its token on), so a slot is never free
while someone waits for it.

The rule that keeps a pool from deadlocking on itself: **a task of the pool
that has to wait in start gives up its slot while it waits**, and takes a
slot back before it goes on (tasks taking a slot back go before new tasks).
A task waiting in ``start`` is not running, so the pool can always run the
tasks that make progress: at ``limit=1``, the only task starting another
hands its slot over and goes on once the new task has finished or itself
waits in ``start``. A task of the pool is recognised as one by Trio: its
parent nursery is the pool's. Helper tasks that a pool task starts in a
nursery of its own are not the pool's tasks and hold no slot, so their
``start`` waits as an outsider's does.

Speed: a task costs one Trio task, as in the hand-written nursery behind a
:class:`trio.CapacityLimiter`, plus two clock reads and a list entry (its duration, folded into a
histogram in batches) for ``statistics()``; see ``benchmarks/bench_taskpool.py``.
"""

from ._pool import TaskPool
from ._statistics import TaskPoolStatistics

__all__ = ["TaskPool", "TaskPoolStatistics"]
