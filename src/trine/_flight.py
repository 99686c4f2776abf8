"""SingleFlight: concurrent calls with equal keys share one run of the function.

How it works. A *flight* is one run of the function for one key, and the
tasks waiting for it. The first call for a key creates the coroutine in the
caller (so a bad ``fn`` raises right there) and starts a task in the
service's nursery that awaits it; that caller and every later caller with
the same key park on the flight (:func:`trio.lowlevel.wait_task_rescheduled`)
until the task wakes them all with the outcome. Because the run is not in
any caller's task, a caller's cancellation only takes that caller out of the
flight's waiters; when the last one leaves, the run is cancelled and the key
is free for a fresh run at once. The run never hands a :exc:`trio.Cancelled`
to anyone: cancelled because nobody waits, it has nobody to tell; cancelled
because the service is closing, it tells the waiters left (outside the block)
with :exc:`trio.ClosedResourceError`.

A call costs a dict lookup, one park and one wake-up. A run costs a wake-up
of a runner task parked after an earlier run (or, when none is, a new task)
and one wake-up per waiter. Either way the run sees a copy of the context of
the call that started it (contextvars such as :func:`trine.testing.no_waits`),
as a task started by that call would: a parked runner is given one before it
is woken. A runner runs its flights inside one cancel
scope, which abandoning a run cancels (that runner then ends), so a run
needs no scope of its own. Up to 64 runners stay parked in the nursery
between runs; none outlives it.
:class:`FlightTable` and :func:`wait` are shared with :class:`~trine.AsyncCache`,
whose loads are flights too.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from contextvars import copy_context
from types import TracebackType
from typing import Any, Final, TypeAlias, TypeVar, TypeVarTuple, final

import attrs
import trio
from trio.lowlevel import (
    Abort,
    Task,
    checkpoint_if_cancelled,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from . import _created
from ._policy import SupportsCall, _check_call_guard
from ._service import ServiceNursery, closed_error
from ._util import check_async_callable, check_awaitable, check_name

__all__ = ["Flight", "FlightTable", "SingleFlight", "SingleFlightStatistics", "wait"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

_CoroutineType = types.CoroutineType
# Types that are certainly callables and never coroutine objects: call() skips
# the full check_async_callable for them.
_PLAIN_CALLABLES = frozenset({types.FunctionType, types.MethodType, functools.partial})


def check_fn(fn: object) -> None:
    """Refuse a coroutine object or a non-callable given as ``fn``."""
    if type(fn) not in _PLAIN_CALLABLES:
        check_async_callable("fn", fn)


def hashable_key(key: object) -> TypeError:
    """The error for an unhashable key."""
    return TypeError(f"key must be hashable, got {key!r}")


@final
class Flight:
    """One run of a function for one key, and the tasks waiting for its outcome."""

    __slots__ = (
        "_abandoned",
        "error",
        "finished",
        "key",
        "pinned",
        "result",
        "runner",
        "started",
        "table",
        "traceback",
        "waiters",
    )

    def __init__(self, table: FlightTable, key: Hashable) -> None:
        self.table = table
        self.key = key
        self.waiters: dict[Task, None] = {}
        self.runner: _Runner | None = None
        """The runner task running it now, whose scope cancels it."""
        self._abandoned = False
        self.finished = False
        self.pinned = False
        """Keep running with no waiter (a cache's background refresh)."""
        self.result: Any = None
        self.error: BaseException | None = None
        self.traceback: TracebackType | None = None
        self.started = 0.0
        """When the run started, for load latency (set by the cache only)."""

    def abandoned(self) -> bool:
        """Whether the run was cancelled because nobody waits for it any more."""
        return self._abandoned

    def detach(self) -> None:
        """Take the flight out of its table: the next call for its key starts a fresh run."""
        flights = self.table.flights
        if flights.get(self.key) is self:
            del flights[self.key]

    def abandon(self) -> None:
        """Nobody waits for the outcome any more: cancel the run and free the key."""
        self.detach()
        self._abandoned = True
        if self.runner is not None:
            self.runner.scope.cancel()

    def wake(self) -> None:
        """Hand the outcome (``result``, or ``error`` and ``traceback``) to every waiter."""
        self.finished = True
        waiters = self.waiters
        if waiters:
            self.table.waiting -= len(waiters)
            for task in waiters:
                reschedule(task)
            waiters.clear()


async def wait(flight: Flight) -> Any:
    """Wait for *flight*'s outcome: return its result or raise its exception.

    The exception is the one object the run raised, raised again here from
    the run's own traceback, so this waiter's traceback reads: its frames
    down to here, then the run's frames down to where the function raised.
    """
    task = current_task()
    waiters = flight.waiters
    waiters[task] = None
    flight.table.waiting += 1

    def abort(_: object) -> Abort:
        del waiters[task]
        flight.table.waiting -= 1
        if not waiters and not flight.pinned and not flight.finished:
            flight.abandon()
        return Abort.SUCCEEDED

    await wait_task_rescheduled(abort)
    error = flight.error
    if error is not None:
        raise error.with_traceback(flight.traceback)
    return flight.result


# Runner tasks kept parked for the next run, at most (a burst of distinct keys
# leaves no more idle tasks behind than this).
_IDLE_RUNNERS: Final = 64

_Work: TypeAlias = tuple["Flight", Awaitable[Any], "Callable[[Flight], None] | None"]


@final
class _Runner:
    """A task of the service's nursery that runs flights one after another.

    It runs them inside one cancel scope, so that a run costs no scope of its
    own; cancelling a run cancels that scope, and the runner ends after it.
    """

    __slots__ = ("scope", "task", "work")

    def __init__(self, task: Task) -> None:
        self.task = task
        self.scope = trio.CancelScope()
        self.work: _Work | None = None


@final
class FlightTable:
    """The flights of one service by key, its counters, and its idle runner tasks.

    A run is handed to a parked runner task when there is one (a wake-up),
    and only otherwise to a new task: starting a task costs several times
    more than waking one.
    """

    __slots__ = ("flights", "idle", "owner", "running", "task_name", "waiting")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.task_name = f"trine.{owner} run"
        self.flights: dict[Hashable, Flight] = {}
        self.running = 0
        """Runs started and not finished (detached ones included)."""
        self.waiting = 0
        """Tasks parked on a flight."""
        self.idle: list[_Runner] = []

    def start(
        self,
        nursery: trio.Nursery,
        key: Hashable,
        coro: Awaitable[Any],
        finish: Callable[[Flight], None] | None,
    ) -> Flight:
        """Start a run of *coro* for *key* in *nursery*; *finish* sees its outcome first."""
        flight = Flight(self, key)
        self.flights[key] = flight
        self.running += 1
        if self.idle:
            runner = self.idle.pop()
            runner.work = (flight, coro, finish)
            # Run it where a new task would (start_soon copies the caller's
            # context), not where the runner's last run left it: the parked
            # task's next step runs in its Task.context.
            runner.task.context = copy_context()
            reschedule(runner.task)
        else:
            nursery.start_soon(self._runner, (flight, coro, finish), name=self.task_name)
        return flight

    async def _runner(self, work: _Work) -> None:
        runner = _Runner(current_task())
        idle = self.idle

        def abort(_: object) -> Abort:  # the service is closing
            idle.remove(runner)
            return Abort.SUCCEEDED

        with runner.scope:
            while True:
                flight, coro, finish = work
                if flight.abandoned():  # before it began
                    self.running -= 1
                    if isinstance(coro, Coroutine):
                        coro.close()
                else:
                    flight.runner = runner
                    try:
                        flight.result = await coro
                    except Exception as exc:
                        flight.error = exc
                        flight.traceback = exc.__traceback__
                    except BaseException:
                        # Abandoned (no waiters), the service closing, or
                        # KeyboardInterrupt: never hand the exception on.
                        self._interrupted(flight)
                        raise
                    self._finished(flight, finish)
                if runner.scope.cancel_called or len(idle) >= _IDLE_RUNNERS:
                    return  # a cancelled scope cannot run another flight
                idle.append(runner)
                await wait_task_rescheduled(abort)
                assert runner.work is not None
                work, runner.work = runner.work, None

    def _finished(self, flight: Flight, finish: Callable[[Flight], None] | None) -> None:
        """The run returned or raised an Exception: hand that to its waiters."""
        flight.runner = None
        self.running -= 1
        if flight.abandoned():
            # Abandoned while it ran, and the function returned or raised
            # anyway: nobody asked for this outcome any more.
            return
        if finish is not None:
            finish(flight)  # while the flight is still in the table, if it was
        flight.detach()
        flight.wake()

    def _interrupted(self, flight: Flight) -> None:
        """The run was cancelled or interrupted: the waiters left (outside the block) learn
        that the service closed, never the Cancelled itself."""
        flight.runner = None
        self.running -= 1
        flight.detach()
        if flight.waiters:
            flight.error = closed_error(self.owner)
            flight.traceback = None
            flight.wake()


@attrs.frozen
class SingleFlightStatistics:
    """A snapshot of a :class:`SingleFlight`, from :meth:`SingleFlight.statistics`."""

    calls: int
    """Calls of :meth:`~SingleFlight.call` that got as far as waiting for a run."""
    runs: int
    """Runs of a function started (each a new flight)."""
    shared: int
    """Calls that joined a run another call had started (``calls - runs``)."""
    in_flight: int
    """Runs going on now (including forgotten ones and ones being cancelled)."""
    waiting: int
    """Tasks waiting for a run's outcome now."""


@final
@attrs.define(eq=False, repr=False, init=False)
class SingleFlight:
    """Concurrent calls with equal keys share one run of the function (Go's ``singleflight``).

    ::

        async with trine.SingleFlight() as flights:
            user = await flights.call(user_id, fetch_user, user_id)

    While a run for a key is going on, every :meth:`call` with an equal key
    waits for that run instead of starting another, and gets its result, or
    its exception. Once the run has finished, the next call starts a new one:
    a SingleFlight shares work in flight, it does not cache
    (:class:`AsyncCache` does).

    The run is a task in the SingleFlight's own nursery, not in the caller
    that started it, so **one caller's cancellation never cancels the run for
    the others**: the cancelled caller just stops waiting. When *every*
    caller waiting for a run has gone, the run is cancelled, and the next
    call for its key starts a fresh one. The run never hands
    :exc:`trio.Cancelled` to a waiter as its outcome.

    Leaving the ``async with`` cancels the runs still going on (their callers
    inside the block have all finished) and waits for them; a caller from
    outside the block still waiting gets :exc:`trio.ClosedResourceError`.

    Args:
      policy: a :class:`~trine.Policy` (or anything with
        ``async call(fn, *args)``) that each run goes through:
        ``await policy.call(fn, *args)``, so a retry, timeout or breaker
        applies once per shared run, not once per caller.
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError: if *policy* has no async ``call`` method.
    """

    _policy: SupportsCall | None
    _service: ServiceNursery
    _nursery: trio.Nursery | None
    _table: FlightTable
    _calls: int
    _runs: int

    name: str | None
    """The name given to the constructor (metrics and events carry it)."""

    def __init__(self, *, policy: SupportsCall | None = None, name: str | None = None) -> None:
        if policy is not None:
            _check_call_guard("policy", policy)
        self._policy = policy
        self._service = ServiceNursery("SingleFlight")
        self._nursery = None
        self._table = FlightTable("SingleFlight")
        self._calls = 0
        self._runs = 0
        self.name = check_name(name)
        if _created.watchers:
            _created.announce(self, None)

    def __repr__(self) -> str:
        return (
            f"<trine.SingleFlight at {id(self):#x}, {self._service.state}, "
            f"{self._table.running} runs in flight, {self._table.waiting} waiting>"
        )

    async def __aenter__(self) -> SingleFlight:
        self._nursery = await self._service.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        nursery, self._nursery = self._nursery, None
        assert nursery is not None
        return await self._service.close(nursery, exc_type, exc, tb)

    async def call(self, key: Hashable, fn: Callable[[*_Ts], Awaitable[_T]], /, *args: *_Ts) -> _T:
        """Return ``await fn(*args)``, sharing one run among concurrent calls with equal *key*.

        If a run for *key* is going on, wait for it and return its result (or
        raise its exception) without calling *fn*; otherwise start a run of
        ``fn(*args)`` in the SingleFlight's nursery and wait for it. Every
        call is a checkpoint.

        The same exception object is raised in every caller that shared the
        run. Each raise starts again from the run's traceback, so each
        caller's traceback reads: its own frames down to ``call``, then the
        run's frames down to where *fn* raised. (The object is shared: a
        caller that keeps it across an ``await`` may find its
        ``__traceback__`` replaced by another caller's.)

        Args:
          key: what makes two calls the same (hashable); calls with equal
            keys share a run, whatever *fn* and *args* they pass.
          fn: an async function (pass the function and its arguments, not a
            coroutine object); called only when a run starts.
          *args: positional arguments for *fn*; use :func:`functools.partial`
            for keyword arguments.

        Returns:
          what the shared run of *fn* returned.

        Raises:
          TypeError: if *key* is not hashable or *fn* is not an async function.
          RuntimeError: outside the ``async with`` block.
          trio.ClosedResourceError: after the block, or if it ends while this
            call (made from outside it) waits.
          Exception: whatever the shared run of *fn* raised.
        """
        nursery = self._nursery
        if nursery is None:
            raise self._service.not_open()
        if type(fn) not in _PLAIN_CALLABLES:
            check_async_callable("fn", fn)
        table = self._table
        try:
            flight = table.flights.get(key)
        except TypeError:
            raise hashable_key(key) from None
        if flight is None:
            # Only a call that starts a run checks for cancellation first (so an
            # already-cancelled caller starts nothing); a joiner that is already
            # cancelled leaves at once from the wait below, which is a checkpoint.
            await checkpoint_if_cancelled()
            flight = table.flights.get(key)
        if flight is None:
            policy = self._policy
            coro = fn(*args) if policy is None else policy.call(fn, *args)
            if type(coro) is not _CoroutineType:
                coro = check_awaitable("fn", coro)
            flight = table.start(nursery, key, coro, None)
            self._runs += 1
        self._calls += 1
        # wait(flight), inlined: a call is SingleFlight's hot path.
        task = current_task()
        waiters = flight.waiters
        waiters[task] = None
        table.waiting += 1

        def abort(_: object) -> Abort:
            del waiters[task]
            table.waiting -= 1
            if not waiters and not flight.pinned and not flight.finished:
                flight.abandon()
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)
        error = flight.error
        if error is not None:
            raise error.with_traceback(flight.traceback)
        result: _T = flight.result
        return result

    def forget(self, key: Hashable) -> None:
        """Make the next call for *key* start a fresh run, even if one is going on.

        The run going on keeps running for the callers already waiting for
        it; they still get its outcome. Forgetting a key with no run does
        nothing.

        Raises:
          TypeError: if *key* is not hashable.
        """
        try:
            flight = self._table.flights.get(key)
        except TypeError:
            raise hashable_key(key) from None
        if flight is not None:
            flight.detach()

    def statistics(self) -> SingleFlightStatistics:
        """Return a snapshot of the calls, runs and waiters so far."""
        return SingleFlightStatistics(
            calls=self._calls,
            runs=self._runs,
            shared=self._calls - self._runs,
            in_flight=self._table.running,
            waiting=self._table.waiting,
        )
