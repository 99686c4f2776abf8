"""PriorityLimiter: a limit whose waiters are served by priority, then arrival."""

from __future__ import annotations

import heapq
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import final

import attrs
import trio
from trio.lowlevel import (
    Abort,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    wait_task_rescheduled,
)

from .. import _created
from .._util import check_int, check_name
from ._hold import _GONE, _WAITING, _grant, _Hold, _HoldNowait, _sweep, _Waiter

__all__ = ["PriorityLimiter", "PriorityLimiterStatistics"]


@attrs.frozen
class PriorityLimiterStatistics:
    """A snapshot of a :class:`PriorityLimiter`, from :meth:`PriorityLimiter.statistics`."""

    borrowed_tokens: int
    """How many tasks hold a slot now."""
    total_tokens: int
    """The limit."""
    tasks_waiting: int
    """How many tasks are queued in :meth:`PriorityLimiter.hold`."""


def _check_priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {priority!r}")
    return priority


@final
@attrs.define(eq=False, repr=False)
class PriorityLimiter:
    """At most *total* holders at once; waiters with a lower priority number go first.

    Use it when some callers matter more than others for the same scarce
    slots: interactive requests before batch jobs, health checks before
    everything::

        db = trine.PriorityLimiter(10)

        async with db.hold(priority=0):   # a user is waiting
            ...
        async with db.hold(priority=5):   # background refresh
            ...

    Among waiters of equal priority the earliest served first. A freed slot
    goes to the best waiter at that moment; holders are never pre-empted.
    A steady stream of urgent work can starve less urgent work: that is the
    point of priorities, so size *total* for it.

    Args:
      total: how many may hold a slot at once (an ``int`` >= 1).
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError: if *total* is not an ``int``.
      ValueError: if *total* < 1.
    """

    _total: int = attrs.field(alias="total")
    name: str | None = attrs.field(default=None, kw_only=True)
    """The name given to the constructor (metrics and events carry it)."""
    _borrowed: int = attrs.field(default=0, init=False)
    # (priority, arrival number, waiter); cancelled waiters stay in the heap
    # marked _GONE and are skipped when popped, or swept out when they are many.
    _heap: list[tuple[int, int, _Waiter]] = attrs.field(factory=list, init=False)
    _waiting: int = attrs.field(default=0, init=False)
    _arrivals: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        check_name(self.name)
        check_int("total", self._total)
        if _created.watchers:
            _created.announce(self, None)

    def __repr__(self) -> str:
        return (
            f"<trine.PriorityLimiter at {id(self):#x}, "
            f"{self._borrowed}/{self._total} borrowed with {self._waiting} waiting>"
        )

    @property
    def total(self) -> int:
        """How many may hold a slot at once."""
        return self._total

    def hold(self, priority: int = 0) -> AbstractAsyncContextManager[None]:
        """Hold a slot inside ``async with``, waiting behind better priorities.

        Args:
          priority: lower numbers are served first (any ``int``, negative too).

        Raises:
          TypeError: if *priority* is not an ``int``.
        """
        return _Hold(self, _check_priority(priority))

    def hold_nowait(self, priority: int = 0) -> AbstractContextManager[None]:
        """Like :meth:`hold`, but a plain ``with`` that never waits.

        Raises:
          trio.WouldBlock: on entry, if no slot is free.
        """
        return _HoldNowait(self, _check_priority(priority))

    def statistics(self) -> PriorityLimiterStatistics:
        """Return a snapshot of the slots borrowed and the tasks waiting."""
        return PriorityLimiterStatistics(
            borrowed_tokens=self._borrowed,
            total_tokens=self._total,
            tasks_waiting=self._waiting,
        )

    def _acquire_nowait(self, priority: int) -> None:
        # A free slot means nobody waits: every release hands its slot on.
        if self._borrowed >= self._total:
            raise trio.WouldBlock
        self._borrowed += 1

    async def _acquire(self, priority: int) -> None:
        await checkpoint_if_cancelled()
        if self._borrowed < self._total:
            self._borrowed += 1
            await cancel_shielded_checkpoint()
            return
        waiter = _Waiter(current_task())
        self._arrivals += 1
        heapq.heappush(self._heap, (priority, self._arrivals, waiter))
        self._waiting += 1

        def abort(_: object) -> Abort:
            waiter.state = _GONE
            self._waiting -= 1
            _sweep(self._heap, self._waiting)
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def _release(self, priority: int, held: None, error: BaseException | None) -> None:
        heap = self._heap
        while heap:
            waiter = heapq.heappop(heap)[2]
            if waiter.state == _WAITING:
                self._waiting -= 1
                if not self._waiting:
                    heap.clear()  # only cancelled entries can be left
                _grant(waiter)  # the slot passes straight to it
                return
        self._borrowed -= 1
