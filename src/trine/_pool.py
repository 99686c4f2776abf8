"""ResourcePool: a bounded set of reusable resources (connections), handed out one holder at a time.

How it works. The pool counts *slots*: one per resource that exists -- idle,
in use, being health-checked or being closed -- and one per connect under
way. A slot is taken before ``connect`` is called and given back only when
that connect has failed or the resource's ``close`` has finished, so the
count never exceeds ``max_size`` whatever is cancelled or fails, and a
resource is never in two places.

:meth:`ResourcePool.acquire` takes the most recently returned idle resource
(LIFO: the busy ones stay warm, the spare ones age and are reaped), or takes
a free slot and calls ``connect`` in the caller's own task, or parks in a
FIFO queue. A returned resource goes straight to the first parked task (no
barging past the queue); a slot freed by a close or a failed connect goes to
it too, and it connects. Each caller draws a ticket as it begins; one whose
health check of a resource failed parks again in its ticket's place, ahead of
those who came later (they went on waiting while its check ran). Parking is
:func:`trio.lowlevel.wait_task_rescheduled`, so a cancelled waiter leaves the
queue at once and takes nothing.

Background work lives in the pool's one nursery (:class:`~trine._service.ServiceNursery`):
the warmer that keeps ``min_size`` resources, the reaper that closes the
ones idle past ``max_idle``, and every ``close`` of a discarded resource, so
that a holder leaving its block never waits for a close. Leaving the
``async with`` stops the warmer and reaper, closes the idle resources and
waits for the closes; a resource returned after that is closed by the task
returning it.
"""

from __future__ import annotations

import inspect
import types
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Generic, TypeVar, final

import attrs
import outcome
import trio
from trio.lowlevel import (
    Abort,
    Task,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from . import _created
from ._service import ServiceNursery, closed_error
from ._stats import LatencyHistogram, LatencySummary
from ._util import (
    ExceptionFilter,
    NotAwaitableError,
    check_async_function,
    check_awaitable,
    check_int,
    check_name,
    check_number,
    check_optional_number,
    exception_matcher,
)

__all__ = ["ResourcePool", "ResourcePoolStatistics"]

_R = TypeVar("_R")

_CoroutineType: Final = types.CoroutineType
_current_time: Final = trio.current_time

# The warmer's pause after a failed connect: doubling from the first to the
# last, so a dead backend is asked about every 10 s, not in a loop.
_WARM_PAUSE_FIRST: Final = 0.1
_WARM_PAUSE_LAST: Final = 10.0


@attrs.frozen
class ResourcePoolStatistics:
    """A snapshot of a :class:`ResourcePool`, from :meth:`ResourcePool.statistics`."""

    size: int
    """Slots taken now: resources that exist (idle, in use, being closed) and connects
    under way. Never more than :attr:`max_size`."""
    idle: int
    """Resources waiting in the pool to be handed out."""
    in_use: int
    """Resources handed out (or being health-checked for a caller) and not returned."""
    connecting: int
    """Calls of ``connect`` under way."""
    closing: int
    """Calls of ``close`` under way."""
    waiting: int
    """Tasks waiting in the FIFO queue for a resource or a slot."""
    max_size: int
    """The pool's ``max_size``."""
    min_size: int
    """The pool's ``min_size``."""
    created: int
    """Resources ``connect`` returned, ever."""
    closed: int
    """Resources closed, ever (``close`` returned or raised)."""
    discarded: int
    """Resources closed instead of reused because their block raised (one of
    ``discard_on``, or a cancellation)."""
    expired: int
    """Idle resources closed after ``max_idle`` seconds unused."""
    failed_connects: int
    """Calls of ``connect`` that raised an exception (cancellations not counted)."""
    failed_health_checks: int
    """Idle resources that failed their ``health_check`` and were closed."""
    failed_closes: int
    """Calls of ``close`` that raised an exception (the resource is gone anyway)."""
    wait: LatencySummary
    """Seconds each :meth:`~ResourcePool.acquire` took to hand a resource out
    (waiting, connecting and health checks included)."""


def _check_guard(policy: object) -> Any:
    if policy is None:
        return None
    if isinstance(policy, type) or not inspect.iscoroutinefunction(getattr(policy, "call", None)):
        raise TypeError(f"policy must have an async call(fn, *args) method, got {policy!r}")
    return policy


@final
class _Lease(Generic[_R]):
    """What :meth:`ResourcePool.acquire` returns: ``async with`` it to hold one resource."""

    __slots__ = ("_held", "_pool", "_resource", "_timeout")

    def __init__(self, pool: ResourcePool[_R], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._held = False
        self._resource: Any = None

    async def __aenter__(self) -> _R:
        if self._held:
            raise RuntimeError("this acquire() is already in use: call pool.acquire() again")
        pool = self._pool
        if not pool._open:
            raise pool._refusal()
        await checkpoint_if_cancelled()
        begun = _current_time()
        idle = pool._idle
        if (
            idle
            and not pool._waiters
            and (pool._health_check is None or begun - idle[-1][1] < pool._check_after)
        ):
            # The fast path, as trio.CapacityLimiter's: take it, then a
            # cancel-shielded checkpoint, so every acquire is a schedule point.
            resource = idle.pop()[0]
            pool._in_use += 1
            pool._wait.record(_current_time() - begun)
            try:
                await cancel_shielded_checkpoint()
            except BaseException:  # KeyboardInterrupt delivered here: give it back
                await pool._give_back(resource)
                raise
        else:
            resource = await pool._acquire(self._timeout, begun)
        self._resource = resource
        self._held = True
        return resource

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pool = self._pool
        resource = self._resource
        self._resource = None
        self._held = False
        pool._in_use -= 1
        if exc is None or not pool._spoils(exc):
            if pool._put_back(resource):
                return
            pool._closing += 1
        else:
            pool._discarded += 1
            if pool._close_soon(resource):
                return
        # The pool has closed: close the resource here, in the returning task.
        await pool._close(resource)


@final
class ResourcePool(Generic[_R]):
    """At most *max_size* resources (connections, sessions, clients), reused one holder at a time.

    ::

        async with trine.ResourcePool(connect, close=disconnect, max_size=50, min_size=5,
                                      max_idle=300.0, health_check=ping) as pool:
            async with pool.acquire() as conn:      # waits (FIFO) while all 50 are in use
                await conn.query(...)

    **The bound.** Never more than *max_size* resources exist at once --
    counting the ones being connected and the ones being closed -- under any
    mix of cancellations and failures: a slot is taken before ``connect`` is
    called and given back only when the connect failed or ``close`` finished.

    **Waiting.** When every slot is taken, :meth:`acquire` waits in a FIFO
    queue: a returned resource goes to the task that has waited longest, never
    to a newcomer. A caller whose health check of a resource failed keeps its
    place: it goes before the callers who came after it. ``acquire(timeout=...)``
    or a cancel scope around it bound the wait; a cancelled waiter takes nothing.

    **Failures.** A resource whose block raised an exception matching
    *discard_on* (by default any exception) is closed, in the pool's nursery,
    and never handed to the next holder: the next one gets another resource
    or connects a new one. So is one whose block was cancelled (it may be in
    the middle of a conversation). A ``connect`` that fails gives its slot
    back, and its exception goes to the caller that asked for the resource.

    **Warm, reaped and checked.** *min_size* resources are connected in the
    background as soon as the pool opens, and again whenever fewer exist. An
    idle resource unused for *max_idle* seconds is closed (never going below
    *min_size*). With *health_check*, a resource that has been idle for at
    least *check_after* seconds is checked before it is handed out, by the
    caller it goes to; with ``check_after=0`` every time, a resource returned
    straight to a waiting caller included. If the check returns ``False`` or
    raises, the resource is closed and the caller gets another, keeping its
    place in line.

    **Closing.** All background work (warming, reaping, closing discarded
    resources) runs in the pool's own nursery and ends with its ``async
    with``. Leaving the block closes every idle resource and waits for those
    closes; a resource still held then is closed when it is returned, by the
    task returning it. A caller still waiting from outside the block gets
    :exc:`trio.ClosedResourceError`.

    Args:
      connect: an async function ``() -> resource``.
      close: an async function ``(resource) -> None`` that releases it, or
        ``None`` if a resource needs no closing. Like Trio's ``aclose``, it
        should release the resource even when called in a cancelled scope.
      max_size: the most resources at once, ``>= 1``.
      min_size: resources kept connected even when idle, ``0 <= min_size <= max_size``.
      max_idle: seconds after which an idle resource is closed (down to
        *min_size*), ``> 0``, or ``None`` to keep idle resources.
      health_check: an async function ``(resource) -> bool``; returning
        ``False`` or raising means the resource is broken. ``None``: no checks.
      check_after: seconds a resource must have been idle before it is
        health-checked when handed out, ``>= 0`` (``0``: every time, also
        when a returned resource goes straight to a waiting caller).
      discard_on: exceptions that spoil a resource when its block raises
        them: a class, a tuple of classes, or a predicate ``(exc) -> bool``;
        ``()`` to reuse resources whatever their block raised.
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn,
        *args)``) every ``connect`` goes through, e.g. to retry it.
      name: a name for its metrics (a ``str`` or ``None``).

    Raises:
      TypeError, ValueError: for an argument of the wrong type or out of range
        (a generator function for *connect*, *close* or *health_check* included).
    """

    __slots__ = (
        "__weakref__",
        "_arrivals",
        "_check_after",
        "_close_fn",
        "_closed",
        "_closing",
        "_connect",
        "_connecting",
        "_created",
        "_discarded",
        "_expired",
        "_failed_checks",
        "_failed_closes",
        "_failed_connects",
        "_health_check",
        "_idle",
        "_in_use",
        "_maintenance",
        "_max_idle",
        "_max_size",
        "_min_size",
        "_nursery",
        "_open",
        "_policy",
        "_quiet",
        "_service",
        "_size",
        "_spoils",
        "_stamp",
        "_wait",
        "_waiters",
        "_warm_wake",
        "name",
    )

    def __init__(
        self,
        connect: Callable[[], Awaitable[_R]],
        *,
        close: Callable[[_R], Awaitable[object]] | None = None,
        max_size: int,
        min_size: int = 0,
        max_idle: float | None = None,
        health_check: Callable[[_R], Awaitable[object]] | None = None,
        check_after: float = 0.0,
        discard_on: ExceptionFilter = (Exception,),
        policy: Any = None,
        name: str | None = None,
    ) -> None:
        self._connect = check_async_function("connect", connect)
        self._close_fn = None if close is None else check_async_function("close", close)
        self._max_size = check_int("max_size", max_size)
        self._min_size = check_int("min_size", min_size, minimum=0)
        if self._min_size > self._max_size:
            raise ValueError(f"min_size must be <= max_size ({max_size}), got {min_size!r}")
        self._max_idle = check_optional_number("max_idle", max_idle, exclusive=True)
        self._health_check = (
            None if health_check is None else check_async_function("health_check", health_check)
        )
        self._check_after = check_number("check_after", check_after)
        matches = exception_matcher("discard_on", discard_on, only_exceptions=True)
        # A block ended by a cancellation (or KeyboardInterrupt) always spoils
        # its resource: it may be half-way through a request.
        self._spoils: Callable[[BaseException], bool] = lambda error: (
            not isinstance(error, Exception) or matches(error)
        )
        self._policy = _check_guard(policy)
        # Idle resources need a time stamp only for max_idle and check_after.
        self._stamp = self._max_idle is not None or self._health_check is not None
        self._service = ServiceNursery("ResourcePool")
        self._nursery: trio.Nursery | None = None
        self._open = False
        self._idle: deque[tuple[_R, float]] = deque()  # oldest left, newest right
        # FIFO: dicts keep insertion order. Each waiter's value is its ticket:
        # the order in which the waiters began to acquire.
        self._waiters: dict[Task, int] = {}
        self._arrivals = 0  # tickets handed out
        self._maintenance: list[trio.CancelScope] = []
        self._warm_wake: trio.Event | None = None
        self._quiet: trio.Event | None = None
        self._size = 0
        self._in_use = 0
        self._connecting = 0
        self._closing = 0
        self._created = 0
        self._closed = 0
        self._discarded = 0
        self._expired = 0
        self._failed_connects = 0
        self._failed_checks = 0
        self._failed_closes = 0
        self._wait = LatencyHistogram()
        self.name = check_name(name)  # metrics carry it
        if _created.watchers:
            _created.announce(self, None)

    def __repr__(self) -> str:
        return (
            f"<trine.ResourcePool at {id(self):#x}, {self._service.state}, "
            f"{self._size}/{self._max_size} slots taken, {len(self._idle)} idle, "
            f"{len(self._waiters)} waiting>"
        )

    # -------------------------------------------------------------- life cycle

    async def __aenter__(self) -> ResourcePool[_R]:
        nursery = self._nursery = await self._service.open()
        self._open = True
        if self._min_size:
            nursery.start_soon(self._warm, self._scope(), name="trine.ResourcePool warmer")
        if self._max_idle is not None:
            nursery.start_soon(self._reap, self._scope(), name="trine.ResourcePool reaper")
        return self

    def _scope(self) -> trio.CancelScope:
        scope = trio.CancelScope()
        self._maintenance.append(scope)
        return scope

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        nursery = self._nursery
        assert nursery is not None
        self._shut(nursery)
        interrupted: BaseException | None = None
        try:
            while self._closing:
                quiet = self._quiet = trio.Event()
                await quiet.wait()
        except BaseException as error:  # cancelled while the closes ran: they end with the nursery
            interrupted = error
        self._nursery = None
        swallowed = await self._service.close(nursery, exc_type, exc, tb)
        if interrupted is not None:
            raise interrupted
        return swallowed

    def _shut(self, nursery: trio.Nursery) -> None:
        """Refuse new work, stop warming and reaping, fail the waiters left, close the idle."""
        self._open = False
        for scope in self._maintenance:
            scope.cancel()
        waiters = self._waiters
        for task in waiters:
            reschedule(task, outcome.Error(closed_error("ResourcePool")))
        waiters.clear()
        idle = self._idle
        while idle:
            resource, _ = idle.pop()
            self._closing += 1
            nursery.start_soon(self._close, resource, name="trine.ResourcePool close")

    # ----------------------------------------------------------------- acquire

    def acquire(self, *, timeout: float | None = None) -> _Lease[_R]:
        """Hold one resource for the body of an ``async with``::

            async with pool.acquire(timeout=5.0) as conn:
                await conn.query(...)

        Entering hands out an idle resource (the most recently returned), or
        connects a new one in this task while fewer than ``max_size`` exist,
        or waits, first come first served, for one to be returned. Entering
        is a checkpoint. Leaving returns the resource to the pool -- or, if
        the block raised one of ``discard_on`` or was cancelled, closes it.

        Args:
          timeout: the most seconds to wait for a resource (connecting and
            health checks included), ``>= 0``; ``None`` waits as long as it
            takes (bound it with a cancel scope instead, if you like).

        Raises:
          TypeError, ValueError: for a bad *timeout*, at once.
          trio.TooSlowError: on entering, if *timeout* passed without a resource.
          RuntimeError: on entering, outside the pool's ``async with``.
          trio.ClosedResourceError: on entering, after the pool's block ended,
            or if it ends while this task waits.
          Exception: on entering, whatever ``connect`` raised for this caller.
        """
        if timeout is not None:
            timeout = check_number("timeout", timeout)
        return _Lease(self, timeout)

    def _refusal(self) -> Exception:
        if self._service.state == "new":
            return self._service.not_open()
        # Closed, or closing: the block has ended either way.
        return trio.ClosedResourceError("this ResourcePool is closed: its async with ended")

    async def _acquire(self, timeout: float | None, begun: float) -> _R:  # noqa: ASYNC109  # the lease's own
        """Every acquire but the fast path: check, connect or wait, under *timeout*."""
        if timeout is None:
            resource = await self._obtain()
        else:
            with trio.move_on_after(timeout) as scope:
                resource = await self._obtain()
            if scope.cancelled_caught:
                raise trio.TooSlowError(
                    f"no resource within {timeout:g} s (timeout): {self._in_use} of "
                    f"max_size={self._max_size} in use, {len(self._waiters)} waiting"
                )
        self._wait.record(_current_time() - begun)
        return resource

    async def _obtain(self) -> _R:
        """An idle resource, a new one in a free slot, or one handed over in turn."""
        ticket = self._arrivals  # the caller's place in line, should it have to wait again
        self._arrivals = ticket + 1
        # After a failed health check the caller is back in line: ahead of
        # those who came after it (they waited while its check ran).
        back = False
        while True:
            idle = self._idle
            if idle and (back or not self._waiters):
                resource, since = idle.pop()
                self._in_use += 1
                if self._due(since) and not await self._healthy(resource):
                    back = True
                    continue
                await self._checkpoint_holding(resource)
                return resource
            if self._size >= self._max_size or (self._waiters and not back):
                handed = await self._wait_turn(ticket, back)
                if handed is not None:
                    # Returned by its last holder a moment ago, or just connected:
                    # checked as an idle one would be (check_after=0: every time).
                    resource, since = handed
                    if self._due(since) and not await self._healthy(resource):
                        back = True
                        continue
                    return resource
                # A slot was handed over (and counted as connecting): connect.
            else:
                self._size += 1
                self._connecting += 1
            return await self._connect_in_slot()

    def _due(self, since: float) -> bool:
        """Whether a resource idle since *since* is health-checked before it is handed out."""
        return self._health_check is not None and _current_time() - since >= self._check_after

    async def _checkpoint_holding(self, resource: _R) -> None:
        """A cancel-shielded checkpoint, so that every acquire is a schedule point."""
        try:
            await cancel_shielded_checkpoint()
        except BaseException:  # KeyboardInterrupt delivered here: give the resource back
            await self._give_back(resource)
            raise

    async def _give_back(self, resource: _R) -> None:
        """Return a resource taken out for a caller who will not get it after all."""
        self._in_use -= 1
        if not self._put_back(resource):
            self._closing += 1
            await self._close(resource)

    async def _wait_turn(self, ticket: int, back: bool) -> tuple[_R, float] | None:
        """Park in the FIFO queue; woken with a resource and the time it was returned,
        or ``None`` for a free slot.

        A caller *back* in line after a failed health check goes before the
        waiters with later *tickets*; any other caller is the latest yet.
        """
        task = current_task()
        waiters = self._waiters
        if back:
            # Rare (a failed check while others wait), so O(waiters) is fine.
            later = [(other, place) for other, place in waiters.items() if place > ticket]
            for other, _ in later:
                del waiters[other]
            waiters[task] = ticket
            waiters.update(later)
        else:
            waiters[task] = ticket

        def abort(_: object) -> Abort:
            del waiters[task]
            return Abort.SUCCEEDED

        handed: tuple[_R, float] | None = await wait_task_rescheduled(abort)
        return handed

    def _hand(self, handed: tuple[_R, float] | None) -> None:
        """Wake the task that has waited longest with a resource (or a free slot)."""
        waiters = self._waiters
        task = next(iter(waiters))
        del waiters[task]
        reschedule(task, outcome.Value(handed))

    async def _new(self) -> _R:
        coro = self._connect() if self._policy is None else self._policy.call(self._connect)
        if type(coro) is not _CoroutineType:
            coro = check_awaitable("connect", coro)
        resource: _R = await coro
        return resource

    async def _connect_in_slot(self) -> _R:
        """Connect a resource for this caller, in the slot already counted for it."""
        try:
            resource = await self._new()
        except BaseException as error:
            self._connecting -= 1
            if isinstance(error, Exception) and not isinstance(error, NotAwaitableError):
                self._failed_connects += 1
            self._free_slot()
            raise
        self._connecting -= 1
        self._created += 1
        if not self._open:  # the pool closed while this connect ran
            self._closing += 1
            await self._close(resource)
            raise closed_error("ResourcePool")
        self._in_use += 1
        return resource

    async def _healthy(self, resource: _R) -> bool:
        """Run the health check for a caller; a failed or interrupted check discards it."""
        assert self._health_check is not None
        try:
            coro = self._health_check(resource)
            if type(coro) is not _CoroutineType:
                coro = check_awaitable("health_check", coro)
            answer = await coro
        except Exception as error:
            if isinstance(error, NotAwaitableError):
                await self._throw_away(resource)
                raise
            answer = False
        except BaseException:
            # Cancelled mid-check: what the resource has seen is unknown.
            await self._throw_away(resource)
            raise
        if answer is False:
            self._failed_checks += 1
            await self._throw_away(resource)
            return False
        return True

    async def _throw_away(self, resource: _R) -> None:
        """Close a resource this caller took out: in the background, or here if the pool closed."""
        self._in_use -= 1
        if not self._close_soon(resource):
            await self._close(resource)

    # ----------------------------------------------------------------- release

    def _put_back(self, resource: _R) -> bool:
        """Hand a good resource to the first waiter or to the idle stack.

        Returns ``False`` if the pool has closed: the caller must close it.
        """
        if not self._open:
            return False
        since = _current_time() if self._stamp else 0.0
        if self._waiters:
            self._in_use += 1
            self._hand((resource, since))
            return True
        self._idle.append((resource, since))
        return True

    def _close_soon(self, resource: _R) -> bool:
        """Close *resource* in the pool's nursery; ``False`` if there is none any more."""
        nursery = self._nursery
        self._closing += 1
        if nursery is None:
            return False
        nursery.start_soon(self._close, resource, name="trine.ResourcePool close")
        return True

    async def _close(self, resource: _R) -> None:
        """Call ``close`` (its slot is counted in ``_closing``); free the slot however it ends."""
        try:
            if self._close_fn is not None:
                coro = self._close_fn(resource)
                if type(coro) is not _CoroutineType:
                    coro = check_awaitable("close", coro)
                await coro
        except NotAwaitableError:
            raise
        except Exception:
            self._failed_closes += 1  # the resource is gone from the pool either way
        finally:
            self._closing -= 1
            self._closed += 1
            self._free_slot()
            quiet = self._quiet
            if quiet is not None and not self._closing:
                self._quiet = None
                quiet.set()

    def _free_slot(self) -> None:
        """A resource is gone (or never came): hand its slot on, or let the warmer know."""
        if self._waiters:
            self._connecting += 1  # the slot passes straight to the waiter, who connects
            self._hand(None)
            return
        self._size -= 1
        wake = self._warm_wake
        if wake is not None and self._size < self._min_size:
            self._warm_wake = None
            wake.set()

    # -------------------------------------------------------------- background

    async def _warm(self, scope: trio.CancelScope) -> None:
        """Keep at least ``min_size`` resources, connecting one at a time."""
        pause = _WARM_PAUSE_FIRST
        with scope:
            # Not past the block's end: one that ended before this task's first
            # step must not connect anything.
            while self._open:
                if self._size >= self._min_size:
                    wake = self._warm_wake = trio.Event()
                    await wake.wait()
                    continue
                self._size += 1
                self._connecting += 1
                try:
                    resource = await self._new()
                except Exception as error:
                    self._connecting -= 1
                    self._free_slot()
                    if isinstance(error, NotAwaitableError):
                        raise  # a programming error: it ends the pool's block
                    self._failed_connects += 1
                    await trio.sleep(pause)
                    pause = min(2 * pause, _WARM_PAUSE_LAST)
                    continue
                except BaseException:
                    self._connecting -= 1
                    self._free_slot()
                    raise
                self._connecting -= 1
                self._created += 1
                pause = _WARM_PAUSE_FIRST
                if not self._put_back(resource) and not self._close_soon(resource):
                    await self._close(resource)

    async def _reap(self, scope: trio.CancelScope) -> None:
        """Close idle resources unused for ``max_idle`` seconds, down to ``min_size``."""
        assert self._max_idle is not None
        max_idle = self._max_idle
        idle = self._idle
        with scope:
            while True:
                if not idle or self._size - self._closing <= self._min_size:
                    # Nothing can expire before max_idle from now: look again then.
                    # (Waking on every return instead costs the hot path a step.)
                    await trio.sleep(max_idle)
                    continue
                deadline = idle[0][1] + max_idle
                if _current_time() < deadline:
                    await trio.sleep_until(deadline)
                    continue
                resource, _ = idle.popleft()  # the least recently used
                self._expired += 1
                self._close_soon(resource)  # the nursery is open while the reaper runs

    # -------------------------------------------------------------- statistics

    def statistics(self) -> ResourcePoolStatistics:
        """Return a snapshot of the pool's resources, waiters and counters."""
        return ResourcePoolStatistics(
            size=self._size,
            idle=len(self._idle),
            in_use=self._in_use,
            connecting=self._connecting,
            closing=self._closing,
            waiting=len(self._waiters),
            max_size=self._max_size,
            min_size=self._min_size,
            created=self._created,
            closed=self._closed,
            discarded=self._discarded,
            expired=self._expired,
            failed_connects=self._failed_connects,
            failed_health_checks=self._failed_checks,
            failed_closes=self._failed_closes,
            wait=self._wait.summary(),
        )
