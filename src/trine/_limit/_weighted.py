"""WeightedSemaphore: a sack of tokens where each holder takes as many as it weighs."""

from __future__ import annotations

from collections import OrderedDict
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
from ._hold import _fifo_abort, _grant, _Hold, _HoldNowait, _Waiter

__all__ = ["WeightedSemaphore", "WeightedSemaphoreStatistics"]


@attrs.frozen
class WeightedSemaphoreStatistics:
    """A snapshot of a :class:`WeightedSemaphore`, from :meth:`WeightedSemaphore.statistics`."""

    borrowed_tokens: int
    """The sum of the weights held now."""
    total_tokens: int
    """The capacity."""
    tasks_waiting: int
    """How many tasks are queued in :meth:`WeightedSemaphore.hold`."""


@final
@attrs.define(eq=False, repr=False)
class WeightedSemaphore:
    """A sack of *capacity* tokens where each holder takes as many as it weighs.

    Use it when calls cost different amounts of one resource: a download
    holds as many tokens as it has megabytes, a query as many as it has rows
    to fetch, and the total held never exceeds *capacity*::

        memory = trine.WeightedSemaphore(1024)

        async def load(blob):
            async with memory.hold(weight=blob.megabytes):
                return await fetch(blob)

    Waiters are served in strict arrival order, as Go's ``semaphore.Weighted``
    does: if the first waiter does not fit yet, lighter ones behind it wait
    too, so a heavy waiter is never starved by a stream of light ones. When
    the first waiter is cancelled, the ones behind it that now fit enter at
    once.

    Args:
      capacity: how many tokens there are (an ``int`` >= 1).
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError: if *capacity* is not an ``int``.
      ValueError: if *capacity* < 1.
    """

    _capacity: int = attrs.field(alias="capacity")
    name: str | None = attrs.field(default=None, kw_only=True)
    """The name given to the constructor (metrics and events carry it)."""
    _borrowed: int = attrs.field(default=0, init=False)
    _waiters: OrderedDict[_Waiter, None] = attrs.field(factory=OrderedDict, init=False)

    def __attrs_post_init__(self) -> None:
        check_name(self.name)
        check_int("capacity", self._capacity)
        if _created.watchers:
            _created.announce(self, None)

    def __repr__(self) -> str:
        return (
            f"<trine.WeightedSemaphore at {id(self):#x}, "
            f"{self._borrowed}/{self._capacity} borrowed with {len(self._waiters)} waiting>"
        )

    @property
    def capacity(self) -> int:
        """How many tokens the sack holds in all."""
        return self._capacity

    def _check_weight(self, weight: object) -> int:
        weight = check_int("weight", weight)
        if weight > self._capacity:
            raise ValueError(f"weight must be <= capacity ({self._capacity}), got {weight!r}")
        return weight

    def hold(self, weight: int = 1) -> AbstractAsyncContextManager[None]:
        """Hold *weight* tokens inside ``async with``, waiting for them first.

        Args:
          weight: how many tokens to hold, from 1 to the capacity.

        Raises:
          TypeError: if *weight* is not an ``int``.
          ValueError: if *weight* < 1 or *weight* > capacity (it could never
            fit; refusing it beats waiting for ever).
        """
        return _Hold(self, self._check_weight(weight))

    def hold_nowait(self, weight: int = 1) -> AbstractContextManager[None]:
        """Like :meth:`hold`, but a plain ``with`` that never waits.

        Raises:
          trio.WouldBlock: on entry, if *weight* tokens are not free or other
            tasks are already waiting (they come first).
        """
        return _HoldNowait(self, self._check_weight(weight))

    def statistics(self) -> WeightedSemaphoreStatistics:
        """Return a snapshot of the tokens borrowed and the tasks waiting."""
        return WeightedSemaphoreStatistics(
            borrowed_tokens=self._borrowed,
            total_tokens=self._capacity,
            tasks_waiting=len(self._waiters),
        )

    def _acquire_nowait(self, weight: int) -> None:
        if self._waiters or self._borrowed + weight > self._capacity:
            raise trio.WouldBlock
        self._borrowed += weight

    async def _acquire(self, weight: int) -> None:
        await checkpoint_if_cancelled()
        if not self._waiters and self._borrowed + weight <= self._capacity:
            self._borrowed += weight
            await cancel_shielded_checkpoint()
            return
        waiter = _Waiter(current_task(), weight)
        self._waiters[waiter] = None

        def abort(_: object) -> Abort:
            result = _fifo_abort(self._waiters, waiter)
            # The head may have been what held the others back (Go's bug).
            self._wake()
            return result

        await wait_task_rescheduled(abort)

    def _release(self, weight: int, held: None, error: BaseException | None) -> None:
        self._borrowed -= weight
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = next(iter(waiters))
            if self._borrowed + waiter.weight > self._capacity:
                return  # strict FIFO: nobody passes the head
            del waiters[waiter]
            self._borrowed += waiter.weight
            _grant(waiter)
