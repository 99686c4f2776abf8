"""Semaphore on Redis: slots held as leases with a time to live, each with a fencing token.

A holder's slot is a lease the server keeps for ``ttl`` seconds; a task in the
holder's ``async with`` renews it every ``ttl / 3`` seconds. A holder that
crashes stops renewing, and its slot comes free when the lease expires. Every
lease carries a *fencing token*, a number larger than every token handed out
before it, so the resource the semaphore protects can refuse a write from a
holder whose lease has ended (Kleppmann's rule for any lease-based lock: a
paused or partitioned holder cannot know that it lost its lease, so the
resource must check).

Waiters queue on the server in order of arrival and poll; a release in this
process wakes this process's waiters at once.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import final

import attrs
import trio

import trine

from .._errors import BulkheadFull
from .._util import check_int, check_number, check_optional_number
from ._errors import LeaseLost, RedisUnavailable
from ._link import (
    Client,
    OnUnavailable,
    _Link,
    check_name,
    check_on_unavailable,
    decode,
    microseconds,
)

__all__ = ["Lease", "Semaphore", "SemaphoreStatistics"]


@final
@attrs.frozen
class Lease:
    """A slot of a :class:`Semaphore` held by this process: ``async with sem.hold() as lease``.

    Pass :attr:`token` along with every write to the protected resource, and
    have the resource refuse a token lower than the highest it has seen for
    :attr:`slot` (for a lock, ``limit=1``, the slot is always 0)::

        async with db_lock.hold() as lease:
            await db.write(record, fence=lease.token)   # the db refuses older tokens
    """

    name: str
    """The semaphore's name."""
    slot: int | None
    """Which slot (``0`` to ``limit - 1``), or ``None`` when the local twin granted it."""
    token: int | None
    """The fencing token: larger than the token of every lease granted before
    it by this semaphore, even across a restart of the server that lost its
    data (tokens start above the server's clock in microseconds). ``None``
    when the local twin granted the lease (``on_unavailable="fail_open"``
    during an outage): nothing fences it."""

    @property
    def fenced(self) -> bool:
        """Whether the server granted the lease (so :attr:`token` fences it)."""
        return self.token is not None


@attrs.frozen
class SemaphoreStatistics:
    """What :meth:`Semaphore.statistics` reports about this process's use of the semaphore."""

    limit: int
    """How many slots the fleet shares."""
    held: int
    """Leases this process holds now."""
    tasks_waiting: int
    """Tasks of this process waiting for a slot now."""
    acquired: int
    """Leases this process was granted (by the server or, failing open, its local twin)."""
    timeouts: int
    """Acquisitions refused with :exc:`~trine.BulkheadFull` (``max_wait`` passed)."""
    renewals: int
    """Leases renewed on the server."""
    lost: int
    """Leases that ended while held (:exc:`~trine.redis.LeaseLost` was raised)."""
    round_trips: int
    """Scripts run on the server."""
    unavailable: int
    """Round trips that failed because the server was out of reach."""
    fallbacks: int
    """Leases granted by the local twin because the server was out of reach."""


@final
@attrs.define(eq=False, repr=False, init=False)
class Semaphore:
    """At most *limit* holders across every process that uses the name, each holding a lease.

    ::

        jobs = trine.redis.Semaphore(client, "reports-db", 3, ttl=10.0, max_wait=30.0)

        async with jobs.hold() as lease:
            await run_report(fence=lease.token)

    **The guarantee.** While every holder's lease is alive, at most *limit*
    leases exist. A lease is alive from its grant until its holder leaves the
    block, or until *ttl* seconds (of the server's time) pass without a
    renewal reaching the server; a task inside the ``async with`` renews it
    every ``ttl / 3`` seconds, so only a holder that crashed, hung or lost
    its link to the server for about *ttl* loses its lease. Such a holder
    cannot know at once that it lost it -- a paused process resumes
    believing it still holds the slot -- which is why every lease carries a
    fencing token: a number larger than that of every earlier lease, for the
    protected resource to check. A holder that learns its lease is gone has
    its block cancelled, and :exc:`~trine.redis.LeaseLost` is raised from the
    ``async with``.

    **Waiting.** A waiter takes a place in a queue on the server, in order of
    arrival, and asks again every *poll_interval* seconds (or at once when a
    holder in this process leaves): each ask is one round trip. After
    *max_wait* seconds it gives up with :exc:`~trine.BulkheadFull`; a
    cancelled waiter leaves the queue (one shielded round trip). A waiter
    whose process died keeps its place for ``4 * poll_interval + 2 *
    timeout`` seconds, then loses it.

    **Cost.** Entering is one round trip when a slot is free, leaving is one,
    and a holder renews once every ``ttl / 3`` seconds.

    Args:
      client: a ``coredis.Redis`` (or ``RedisCluster``) client.
      name: the name every process uses (keys ``trine:semaphore:{name}:...``).
      limit: how many holders at once across the fleet (an int >= 1).
      ttl: the lease's time to live in seconds (> 0): how soon a crashed
        holder's slot comes free. Make it several times *timeout*.
      max_wait: the longest a waiter waits for a slot, in seconds (>= 0;
        ``0`` never waits), or ``None`` to wait as long as it takes.
      poll_interval: seconds between a waiter's asks (> 0).
      on_unavailable: ``"fail_closed"`` (default) raises
        :exc:`~trine.redis.RedisUnavailable` when a slot cannot be asked for;
        ``"fail_open"`` holds a slot of :attr:`local` instead, a
        :class:`trine.Bulkhead` of *limit* slots for this process alone, whose
        leases have no token. A lease already held is lost once no renewal
        has been confirmed for *ttl* seconds, either way.
      timeout, recheck_interval: as for :class:`trine.redis.RateLimiter`.

    Raises:
      TypeError, ValueError: for an invalid argument, naming it.
    """

    _name: str = attrs.field(init=False)
    _limit: int = attrs.field(init=False)
    _ttl: float = attrs.field(init=False)
    _max_wait: float | None = attrs.field(init=False)
    _poll_interval: float = attrs.field(init=False)
    _on_unavailable: OnUnavailable = attrs.field(init=False)
    _link: _Link = attrs.field(init=False)
    _local: trine.Bulkhead = attrs.field(init=False)
    _keys: list[str] = attrs.field(init=False)
    _ttl_us: str = attrs.field(init=False)
    _patience_us: str = attrs.field(init=False)
    _process: str = attrs.field(init=False)
    _ids: itertools.count[int] = attrs.field(init=False, factory=itertools.count)
    _released: trio.Event = attrs.field(init=False, factory=trio.Event)
    _held: int = attrs.field(init=False, default=0)
    _tasks_waiting: int = attrs.field(init=False, default=0)
    _acquired: int = attrs.field(init=False, default=0)
    _timeouts: int = attrs.field(init=False, default=0)
    _renewals: int = attrs.field(init=False, default=0)
    _lost: int = attrs.field(init=False, default=0)
    _fallbacks: int = attrs.field(init=False, default=0)

    def __init__(
        self,
        client: Client,
        name: str,
        limit: int,
        *,
        ttl: float = 10.0,
        max_wait: float | None = None,
        poll_interval: float = 0.05,
        on_unavailable: OnUnavailable = "fail_closed",
        timeout: float = 1.0,
        recheck_interval: float = 1.0,
    ) -> None:
        self.__attrs_init__()
        self._name = check_name(name)
        self._limit = check_int("limit", limit)
        self._ttl = check_number("ttl", ttl, exclusive=True)
        self._max_wait = check_optional_number("max_wait", max_wait)
        self._poll_interval = check_number("poll_interval", poll_interval, exclusive=True)
        self._on_unavailable = check_on_unavailable(on_unavailable)
        self._link = _Link(
            client, f"semaphore {self._name!r}", timeout=timeout, recheck_interval=recheck_interval
        )
        self._local = trine.Bulkhead(limit, max_waiting=sys.maxsize, max_wait=max_wait)
        prefix = f"trine:semaphore:{{{self._name}}}"
        self._keys = [f"{prefix}:{part}" for part in ("slots", "expiry", "queue", "polls", "meta")]
        self._ttl_us = microseconds(self._ttl)
        self._patience_us = microseconds(4 * self._poll_interval + 2 * self._link.timeout)
        # Waiter ids only need to differ between processes: not randomness
        # that shapes behaviour, so not from an injectable rng.
        self._process = secrets.token_hex(8)

    @property
    def name(self) -> str:
        """The name every process uses for this semaphore."""
        return self._name

    @property
    def limit(self) -> int:
        """How many holders at once across the fleet."""
        return self._limit

    @property
    def ttl(self) -> float:
        """A lease's time to live in seconds."""
        return self._ttl

    @property
    def local(self) -> trine.Bulkhead:
        """The local twin ``on_unavailable="fail_open"`` holds while the server is out of reach."""
        return self._local

    def hold(self) -> AbstractAsyncContextManager[Lease]:
        """Hold one slot while inside ``async with``: ``async with sem.hold() as lease:``.

        Entering waits for a slot (see the class docs) and is always a
        checkpoint; inside, a task renews the lease; leaving gives the slot
        back (shielded from cancellation, so it is given back on every path).

        Raises:
          BulkheadFull: on entry, if no slot came free within *max_wait*.
          RedisUnavailable: on entry, if the server is out of reach and the
            semaphore fails closed.
          LeaseLost: on exit, if the lease ended while the block ran (the
            block was cancelled when that was found).
        """
        return self._hold()

    @asynccontextmanager
    async def _hold(self) -> AsyncIterator[Lease]:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            lease, sent = await self._acquire()
        except RedisUnavailable:
            if self._on_unavailable == "fail_closed":
                raise
            self._fallbacks += 1
            async with self._local.hold():
                self._acquired += 1
                self._held += 1
                try:
                    yield Lease(self._name, None, None)
                finally:
                    self._held -= 1
            return
        self._acquired += 1
        self._held += 1
        lost: list[str] = []
        raised: BaseException | None = None
        # The block runs in `body`, which the renewing task cancels if the
        # lease is lost; the task itself runs in `stop`. (Cancelling the
        # nursery's own scope instead would swallow a Cancelled that the
        # block raised for an outer scope.)
        body = trio.CancelScope()
        stop = trio.CancelScope()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep, lease, sent, body, stop, lost)
                with body:
                    try:
                        yield lease
                    finally:
                        stop.cancel()
        except BaseExceptionGroup as group:
            # The renewing task never raises, so the group holds only what
            # the block raised: give it back bare, as it was raised.
            if len(group.exceptions) != 1:
                raise
            raised = group.exceptions[0]
        finally:
            self._held -= 1
            with trio.CancelScope(shield=True):
                await self._release(lease)
        if lost:
            self._lost += 1
            assert lease.slot is not None
            assert lease.token is not None
            raise LeaseLost(self._name, lease.slot, lease.token, lost[0]) from raised
        if raised is not None:
            raise raised

    async def _acquire(self) -> tuple[Lease, float]:
        """Wait for a lease on the server: (the lease, when its request was sent)."""
        waiter = f"{self._process}:{next(self._ids)}"
        max_wait = math.inf if self._max_wait is None else self._max_wait
        deadline = trio.current_time() + max_wait
        queue = "0" if max_wait == 0 else "1"
        args = [self._limit, self._ttl_us, waiter, self._patience_us, queue]
        queued = False
        self._tasks_waiting += 1
        try:
            while True:
                released = self._released
                sent = trio.current_time()
                reply = await self._link.run("semaphore_acquire", self._keys, args, shield=True)
                if int(reply[0]) == 1:
                    return Lease(self._name, int(reply[1]), int(decode(reply[2]))), sent
                queued = queue == "1"
                now = trio.current_time()
                if now >= deadline:
                    self._timeouts += 1
                    raise BulkheadFull(
                        max_concurrent=self._limit,
                        max_waiting=0,
                        max_wait=self._max_wait,
                        timed_out=max_wait > 0,
                    )
                with trio.move_on_after(min(self._poll_interval, deadline - now)):
                    await released.wait()
        except BaseException:
            if queued:
                # If the server is out of reach, the place expires when it stops polling.
                with trio.CancelScope(shield=True), contextlib.suppress(RedisUnavailable):
                    await self._link.run("semaphore_leave", self._keys, [waiter])
            raise
        finally:
            self._tasks_waiting -= 1

    async def _keep(
        self,
        lease: Lease,
        confirmed: float,
        body: trio.CancelScope,
        stop: trio.CancelScope,
        lost: list[str],
    ) -> None:
        """Renew *lease* every ttl / 3 seconds (until *stop*); on losing it, cancel *body*."""
        with stop:
            await self._renew(lease, confirmed, lost)
            body.cancel()

    async def _renew(self, lease: Lease, confirmed: float, lost: list[str]) -> None:
        renew_every = self._ttl / 3
        args = [lease.slot, lease.token, self._ttl_us]
        while True:
            # Wake at the next renewal, or at the moment the lease would run
            # out on this clock if the server cannot be reached by then.
            await trio.sleep_until(min(trio.current_time() + renew_every, confirmed + self._ttl))
            if trio.current_time() >= confirmed + self._ttl:
                lost.append(f"no renewal was confirmed within ttl={self._ttl:g} s")
                return
            sent = trio.current_time()
            try:
                renewed = await self._link.run("semaphore_renew", self._keys, args)
            except RedisUnavailable:
                continue
            if not int(renewed):
                lost.append(
                    "the server no longer holds it (it expired before a renewal came, "
                    "or the server lost it)"
                )
                return
            self._renewals += 1
            confirmed = sent

    async def _release(self, lease: Lease) -> None:
        # If the server is out of reach, the lease expires there by itself.
        with contextlib.suppress(RedisUnavailable):
            await self._link.run("semaphore_release", self._keys, [lease.slot, lease.token])
        released, self._released = self._released, trio.Event()
        released.set()

    def statistics(self) -> SemaphoreStatistics:
        """Return a fresh :class:`SemaphoreStatistics` of this process's use (no round trip)."""
        return SemaphoreStatistics(
            limit=self._limit,
            held=self._held,
            tasks_waiting=self._tasks_waiting,
            acquired=self._acquired,
            timeouts=self._timeouts,
            renewals=self._renewals,
            lost=self._lost,
            round_trips=self._link.round_trips,
            unavailable=self._link.failures,
            fallbacks=self._fallbacks,
        )

    def __repr__(self) -> str:
        return (
            f"<trine.redis.Semaphore {self._name!r} limit={self._limit} ttl={self._ttl:g}s "
            f"on {self._link.server}: {self._held} held here, {self._tasks_waiting} waiting>"
        )
