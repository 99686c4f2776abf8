"""Bounded concurrent maps: :func:`amap`, :func:`map_all`, :func:`map_settled`, :func:`for_each`.

How it works, and why it is fast. The obvious Trio map spawns a task per item
behind a :class:`trio.CapacityLimiter`, or feeds a pool of workers through a
memory channel; either way every item costs extra trips through the scheduler
(a spawn, a limiter wake-up, a channel send and receive). Here, at most
``limit`` worker tasks are started (fewer when the input is shorter), and each
one loops: take the next item, ``await fn(item)``, store the result, repeat.

* A sync source is shared by calling ``next()`` on one iterator from every
  worker. That is safe: Trio runs one task at a time and ``next()`` cannot
  yield in the middle. An async source's ``__anext__`` can yield, so workers
  take turns through a flag and a :class:`trio.lowlevel.ParkingLot`.
* Results go straight into a dict keyed by input position (ordered) or a
  deque (unordered). :func:`map_all` and :func:`for_each` have no consumer:
  one worker function per way of storing a result (at its item's number in
  the list, appended, or dropped), so their per-item loop is the hand-written
  shared-iterator worker's, plus one type check of what ``fn`` returned.
  The consumer is woken only when it is parked and the result it is waiting
  for arrived, so it drains every ready result per wake-up.
* Backpressure is a window: a worker takes a new item only while fewer than
  ``2 * limit`` items have been taken and not yet yielded to the consumer.
  Workers that hit the window park until the consumer catches up.

So an item costs one call of ``fn`` plus bookkeeping, and no extra scheduler
trip of its own; see ``benchmarks/bench_map.py`` for the numbers.

One module per piece: ``_arguments`` (the checks every map makes at the
call), ``_sources`` (sharing an async iterator between workers, closing a
source, its length), ``_workers`` (what every map's workers share),
``_stream`` (:func:`amap` and its results iterator), ``_run`` (the worker
loops of :func:`map_all` and :func:`for_each`) and ``_map_all``
(:func:`map_all`, :func:`map_settled`, :func:`for_each`).
"""

from ._map_all import for_each as for_each
from ._map_all import map_all as map_all
from ._map_all import map_settled as map_settled
from ._stream import _MapResults as _MapResults
from ._stream import amap as amap

__all__ = ["_MapResults", "amap", "for_each", "map_all", "map_settled"]
