"""The queue every rate limiter shares: per-key FIFO waiters in front of a time-based rule.

Only the head of a key's queue watches the clock. When it is due, or when
something changes (a setting, a departure), :meth:`_Admissions._serve` admits
at that instant every waiter at the front of the queue that the rule allows and
reschedules each one already admitted, so a backlog that a late wake-up left
behind is repaid in one go, as far as the rule allows, instead of one waiter
per trip through the scheduler. The first waiter that is not due yet becomes
the head and sleeps until it is.

A waiter is admitted only by :meth:`_serve`, only while it is parked, so a
waiter that is cancelled or interrupted has taken nothing: its abort takes it
out of the queue at once (and lets the next one be served).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar, final

import attrs
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from .._errors import RateLimitExceeded
from .._util import check_hashable

# Below this many keys the state table is never swept; above it, a sweep runs
# whenever the table has doubled since the last one (amortised O(1) per key).
_SWEEP_MINIMUM = 64

_WAITING = 0
_ADMITTED = 1
_GONE = 2


@final
class _Waiter:
    """One task queued in :meth:`_Admissions._wait_in_line`."""

    __slots__ = ("cost", "parked", "scope", "state", "task")

    def __init__(self, task: Task, cost: float) -> None:
        self.task = task
        self.cost = cost
        self.state = _WAITING
        self.parked = False
        """Inside ``wait_task_rescheduled``, so it may be rescheduled."""
        self.scope: trio.CancelScope | None = None
        """The head's deadline while it sleeps on the clock."""


@attrs.define(eq=False, slots=True)
class _Queue:
    """What every key's state has: its waiters, first in first out."""

    waiters: deque[_Waiter] = attrs.field(factory=deque)


_State = TypeVar("_State", bound=_Queue)


def _unhashable(key: object) -> None:
    """Raise the error for a key the state table could not look up."""
    check_hashable("key", key)  # raises, naming the argument, if that was why


@attrs.define(eq=False, repr=False, init=False, slots=True)
class _Admissions(Generic[_State]):
    """Per-key FIFO queues in front of a time-based admission rule.

    The subclasses supply the rule (:meth:`_ready_at`, :meth:`_admit`,
    :meth:`_admit_if_ready`, :meth:`_is_idle`); this class does the queueing,
    the cancellation safety, the dropping of idle keys and the counting.
    """

    _states: dict[Hashable, _State] = attrs.field(init=False, factory=dict)
    _sweep_above: int = attrs.field(init=False, default=_SWEEP_MINIMUM)
    _admitted: int = attrs.field(init=False, default=0)
    _admitted_cost: float = attrs.field(init=False, default=0)
    _rejected: int = attrs.field(init=False, default=0)
    _tasks_waiting: int = attrs.field(init=False, default=0)
    _waited: int = attrs.field(init=False, default=0)
    _waited_seconds: float = attrs.field(init=False, default=0.0)

    # -- the rule, supplied by each limiter --------------------------------

    def _new_state(self) -> _State:
        raise NotImplementedError

    def _copy_state(self, state: _State) -> _State:
        raise NotImplementedError

    def _ready_at(self, state: _State, cost: float, now: float) -> float:
        """The earliest time *cost* may be admitted given *state* (may lie in the past)."""
        raise NotImplementedError

    def _admit(self, state: _State, cost: float, now: float) -> None:
        raise NotImplementedError

    def _admit_if_ready(self, state: _State, cost: float, now: float) -> bool:
        """Admit *cost* if the rule allows it at *now* (the fast path, in one call)."""
        raise NotImplementedError

    def _is_idle(self, state: _State, now: float) -> bool:
        """Whether *state* says nothing a fresh state would not (waiters aside)."""
        raise NotImplementedError

    # -- the state table ----------------------------------------------------

    def _state_for(self, key: Hashable, now: float) -> _State:
        try:
            state = self._states.get(key)
        except TypeError:
            _unhashable(key)
            raise
        if state is None:
            if len(self._states) >= self._sweep_above:
                self._sweep(now)
            state = self._states[key] = self._new_state()
        return state

    def _sweep(self, now: float) -> None:
        """Forget every key that has no waiters and no admissions that still count."""
        idle = [
            key
            for key, state in self._states.items()
            if not state.waiters and self._is_idle(state, now)
        ]
        for key in idle:
            del self._states[key]
        self._sweep_above = max(_SWEEP_MINIMUM, 2 * len(self._states))

    # -- admitting without waiting --------------------------------------------

    def _try_acquire(self, cost: float, key: Hashable) -> bool:
        now = trio.current_time()
        state = self._state_for(key, now)
        if not state.waiters and self._admit_if_ready(state, cost, now):
            self._admitted += 1
            self._admitted_cost += cost
            return True
        self._rejected += 1
        return False

    def _wait_time(self, cost: float, key: Hashable) -> float:
        """Seconds an ``acquire`` started now would wait, if nothing changed meanwhile."""
        now = trio.current_time()
        state = self._states.get(key)
        if state is None:
            return 0.0
        scratch = self._copy_state(state)
        admitted_at = now
        costs = [waiter.cost for waiter in state.waiters]
        costs.append(cost)
        for queued in costs:
            admitted_at = max(admitted_at, self._ready_at(scratch, queued, admitted_at))
            self._admit(scratch, queued, admitted_at)
        return admitted_at - now

    def _admit_or_raise(self, cost: float, key: Hashable, limit: str) -> None:
        """Admit *cost* now, or raise RateLimitExceeded saying when it would be admitted."""
        if not self._try_acquire(cost, key):
            retry_after = self._wait_time(cost, key)
            raise RateLimitExceeded(
                f"{limit} exceeded for key {key!r}, retry after {retry_after:g}s",
                retry_after=retry_after,
            )

    # -- waiting in line ------------------------------------------------------

    async def _wait_in_line(self, state: _State, cost: float) -> None:
        """The slow path of ``acquire``: queue behind the waiters of *state*'s key.

        Runs KeyboardInterrupt-protected (``acquire`` is), so the queue and the
        counters change together or not at all.
        """
        waiter = _Waiter(current_task(), cost)
        waiters = state.waiters
        waiters.append(waiter)
        self._tasks_waiting += 1
        start = trio.current_time()

        def abort(_: object) -> Abort:
            waiter.parked = False
            scope = waiter.scope
            if scope is not None and scope.cancel_called:
                return Abort.SUCCEEDED  # the head's own deadline: still in line
            self._leave(state, waiter)  # cancelled or interrupted: took nothing
            return Abort.SUCCEEDED

        try:
            while waiter.state == _WAITING:
                if waiters[0] is not waiter:
                    waiter.parked = True
                    await wait_task_rescheduled(abort)  # admitted, or made the head
                    continue
                now = trio.current_time()
                ready_at = self._ready_at(state, cost, now)
                if ready_at <= now:
                    self._serve(state, now, waiter)
                    continue
                with trio.CancelScope(deadline=ready_at) as scope:
                    waiter.scope = scope
                    waiter.parked = True
                    await wait_task_rescheduled(abort)
                waiter.scope = None
            # Admitted after waiting (only this slow path reads the clock for it).
            self._waited += 1
            self._waited_seconds += trio.current_time() - start
        except BaseException:
            # Cancelled at our own deadline's instant, or a KeyboardInterrupt
            # delivered then: the abort kept us in line, so leave it now.
            if waiter.state == _WAITING:
                self._leave(state, waiter)
            raise

    def _serve(self, state: _State, now: float, running: _Waiter | None = None) -> None:
        """Admit at *now* every waiter at the front of *state*'s queue the rule allows.

        *running* is the caller's own waiter, if it is one of them. A parked
        waiter that is admitted is rescheduled; the first one that is not due
        yet becomes the head: its deadline moves, or it is woken to set one.
        A head on its way back from its deadline is left to serve itself.
        """
        waiters = state.waiters
        while waiters:
            head = waiters[0]
            if head is not running and not head.parked:
                return
            ready_at = self._ready_at(state, head.cost, now)
            if ready_at > now:
                if head is not running:
                    if head.scope is not None:
                        head.scope.deadline = ready_at
                    else:
                        head.parked = False
                        reschedule(head.task)  # the new head: it sets its deadline
                return
            waiters.popleft()
            self._admit(state, head.cost, now)
            self._admitted += 1
            self._admitted_cost += head.cost
            self._tasks_waiting -= 1
            head.state = _ADMITTED
            if head is not running:
                head.parked = False
                reschedule(head.task)

    def _leave(self, state: _State, waiter: _Waiter) -> None:
        """Take *waiter* out of the queue, having taken nothing; serve the next if it led."""
        waiters = state.waiters
        waiter.state = _GONE
        self._tasks_waiting -= 1
        if waiters[0] is waiter:
            waiters.popleft()
            if waiters:
                self._serve(state, trio.current_time())
        else:
            waiters.remove(waiter)

    def _serve_every_key(self) -> None:
        """Apply changed settings to every queue at once."""
        if self._tasks_waiting:
            now = trio.current_time()
            for state in self._states.values():
                if state.waiters:
                    self._serve(state, now)

    def _largest_waiting_cost(self) -> float:
        return max(
            (waiter.cost for state in self._states.values() for waiter in state.waiters),
            default=0,
        )

    def _waiting_summary(self) -> str:
        keys = len(self._states)
        return f"{self._tasks_waiting} waiting, {keys} key{'' if keys == 1 else 's'}"
