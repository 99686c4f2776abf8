"""Bulkhead: admit some, queue a few, refuse the rest at once."""

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
from .._errors import BulkheadFull
from .._util import check_int, check_name, check_optional_number
from ._hold import _fifo_abort, _grant, _Hold, _HoldNowait, _Waiter

__all__ = ["Bulkhead", "BulkheadStatistics"]


@attrs.frozen
class BulkheadStatistics:
    """A snapshot of a :class:`Bulkhead`, from :meth:`Bulkhead.statistics`."""

    borrowed_tokens: int
    """How many calls are inside the bulkhead now."""
    total_tokens: int
    """``max_concurrent``."""
    tasks_waiting: int
    """How many calls are queued now (at most ``max_waiting``)."""
    admitted: int
    """How many calls have entered, ever."""
    rejected: int
    """How many calls were refused with :exc:`BulkheadFull`, ever (at once or after
    ``max_wait``)."""


@final
@attrs.define(eq=False, repr=False)
class Bulkhead:
    """Admit *max_concurrent* calls, queue *max_waiting*, refuse the rest at once.

    This is load shedding: when a dependency is slow, callers get a fast
    :exc:`BulkheadFull` instead of piling up without bound, and the rest of
    the program keeps its tasks, sockets and memory::

        bulkhead = trine.Bulkhead(10, max_waiting=20, max_wait=0.5)

        try:
            async with bulkhead.hold():
                return await recommendations(user)
        except trine.BulkheadFull:
            return []   # degrade instead of queueing

    Waiters are served in arrival order. A waiter that has waited *max_wait*
    seconds leaves the queue and raises :exc:`BulkheadFull` (with
    ``timed_out=True``).

    Args:
      max_concurrent: how many calls may be inside at once (``int`` >= 1).
      max_waiting: how many calls may wait for a slot (``int`` >= 0; the
        default 0 refuses every call that cannot enter at once).
      max_wait: the longest a call may wait, in seconds (``None``: no limit).
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError: if an argument has the wrong type.
      ValueError: if an argument is out of range.
    """

    _max_concurrent: int = attrs.field(alias="max_concurrent")
    _max_waiting: int = attrs.field(default=0, kw_only=True, alias="max_waiting")
    _max_wait: float | None = attrs.field(default=None, kw_only=True, alias="max_wait")
    name: str | None = attrs.field(default=None, kw_only=True)
    """The name given to the constructor (metrics and events carry it)."""
    _borrowed: int = attrs.field(default=0, init=False)
    _waiters: OrderedDict[_Waiter, None] = attrs.field(factory=OrderedDict, init=False)
    _admitted: int = attrs.field(default=0, init=False)
    _rejected: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        check_name(self.name)
        check_int("max_concurrent", self._max_concurrent)
        check_int("max_waiting", self._max_waiting, minimum=0)
        self._max_wait = check_optional_number("max_wait", self._max_wait)
        if _created.watchers:
            _created.announce(self, None)

    def __repr__(self) -> str:
        return (
            f"<trine.Bulkhead at {id(self):#x}, {self._borrowed}/{self._max_concurrent} "
            f"borrowed with {len(self._waiters)}/{self._max_waiting} waiting>"
        )

    @property
    def max_concurrent(self) -> int:
        """How many calls may be inside at once."""
        return self._max_concurrent

    @property
    def max_waiting(self) -> int:
        """How many calls may wait for a slot."""
        return self._max_waiting

    @property
    def max_wait(self) -> float | None:
        """The longest a call may wait, in seconds (``None``: no limit)."""
        return self._max_wait

    def hold(self) -> AbstractAsyncContextManager[None]:
        """Hold a slot inside ``async with``, waiting for one if there is room to wait.

        Raises:
          BulkheadFull: on entry, if every slot and waiting place is taken, or
            after waiting *max_wait* seconds.
        """
        return _Hold(self, None)

    def hold_nowait(self) -> AbstractContextManager[None]:
        """Like :meth:`hold`, but a plain ``with`` that never waits.

        Raises:
          trio.WouldBlock: on entry, if no slot is free (this is not counted
            as a rejection).
        """
        return _HoldNowait(self, None)

    def statistics(self) -> BulkheadStatistics:
        """Return a snapshot of the calls inside, waiting, admitted and rejected."""
        return BulkheadStatistics(
            borrowed_tokens=self._borrowed,
            total_tokens=self._max_concurrent,
            tasks_waiting=len(self._waiters),
            admitted=self._admitted,
            rejected=self._rejected,
        )

    def _full(self, *, timed_out: bool) -> BulkheadFull:
        self._rejected += 1
        return BulkheadFull(
            max_concurrent=self._max_concurrent,
            max_waiting=self._max_waiting,
            max_wait=self._max_wait,
            timed_out=timed_out,
        )

    def _acquire_nowait(self, arg: None) -> None:
        if self._borrowed >= self._max_concurrent:
            raise trio.WouldBlock
        self._borrowed += 1
        self._admitted += 1

    async def _acquire(self, arg: None) -> None:
        await checkpoint_if_cancelled()
        if self._borrowed < self._max_concurrent:
            self._borrowed += 1
            self._admitted += 1
            await cancel_shielded_checkpoint()
            return
        if len(self._waiters) >= self._max_waiting:
            error = self._full(timed_out=False)
            await cancel_shielded_checkpoint()
            raise error
        waiter = _Waiter(current_task())
        self._waiters[waiter] = None

        def abort(_: object) -> Abort:
            return _fifo_abort(self._waiters, waiter)

        if self._max_wait is None:
            await wait_task_rescheduled(abort)
            return
        with trio.move_on_after(self._max_wait) as scope:
            await wait_task_rescheduled(abort)
        if scope.cancelled_caught:
            raise self._full(timed_out=True)

    def _release(self, arg: None, held: None, error: BaseException | None) -> None:
        if self._waiters:
            waiter, _ = self._waiters.popitem(last=False)
            self._admitted += 1
            _grant(waiter)  # the slot passes straight to it
        else:
            self._borrowed -= 1
