"""Concurrency limiters: how many calls may run at once, and in which order.

Every limiter here has the same shape, ``async with limiter.hold(...)``, so
anything that takes a limiter (``Policy(limiter=...)``, ``amap``, pipeline
stages, graph nodes) takes any of them, and a plain :class:`trio.CapacityLimiter`,
:class:`trio.Semaphore` or :class:`trio.Lock` too, through :func:`open_hold`.

All of them share Trio's habits:

* entering ``hold()`` is a checkpoint (``checkpoint_if_cancelled`` then a
  cancel-shielded schedule point on the fast path), leaving it is not;
* a freed slot is handed directly to the waiter it belongs to, so a task that
  arrives later cannot barge in front of one that is already waiting;
* a cancelled waiter leaves the queue and never takes a slot; a cancelled
  holder gives its slot back on the way out; nothing is ever lost;
* ``hold_nowait()`` is the non-blocking twin: a plain ``with`` block that
  raises :exc:`trio.WouldBlock` if it cannot enter at once;
* ``statistics()`` returns a fresh frozen object with ``borrowed_tokens`` and
  ``tasks_waiting`` beside what is particular to the limiter.

One module per limiter: ``_protocol`` (the :class:`Limiter` protocol and
:func:`open_hold`), ``_hold`` (the waiters and hold context managers they
share), ``_weighted``, ``_priority``, ``_keyed``, ``_bulkhead``, ``_adaptive``
and ``_acquire_all``.
"""

from ._acquire_all import acquire_all as acquire_all
from ._adaptive import AdaptiveLimiter as AdaptiveLimiter
from ._adaptive import AdaptiveLimiterStatistics as AdaptiveLimiterStatistics
from ._adaptive import AdaptivePermit as AdaptivePermit
from ._bulkhead import Bulkhead as Bulkhead
from ._bulkhead import BulkheadStatistics as BulkheadStatistics
from ._keyed import KeyedLimiter as KeyedLimiter
from ._keyed import KeyedLimiterStatistics as KeyedLimiterStatistics
from ._priority import PriorityLimiter as PriorityLimiter
from ._priority import PriorityLimiterStatistics as PriorityLimiterStatistics
from ._protocol import Limiter as Limiter
from ._protocol import LimiterLike as LimiterLike
from ._protocol import _check_limiter as _check_limiter
from ._protocol import hold_opener as hold_opener
from ._protocol import open_hold as open_hold
from ._weighted import WeightedSemaphore as WeightedSemaphore
from ._weighted import WeightedSemaphoreStatistics as WeightedSemaphoreStatistics

__all__ = [
    "AdaptiveLimiter",
    "AdaptiveLimiterStatistics",
    "AdaptivePermit",
    "Bulkhead",
    "BulkheadStatistics",
    "KeyedLimiter",
    "KeyedLimiterStatistics",
    "Limiter",
    "LimiterLike",
    "PriorityLimiter",
    "PriorityLimiterStatistics",
    "WeightedSemaphore",
    "WeightedSemaphoreStatistics",
    "acquire_all",
    "hold_opener",
    "open_hold",
]
