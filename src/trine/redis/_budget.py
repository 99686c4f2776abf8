"""RetryBudget on Redis: one cap on retries for every process, synced every ``sync_interval``.

:class:`trine.Retry` asks its budget synchronously, between a failed attempt
and the sleep before the next, so a shared budget cannot ask the server each
time. Instead each process counts its requests and retries locally and, in a
task that lives inside ``async with budget:``, sends them to the server every
``sync_interval`` seconds and reads back the fleet's totals for the window.
A retry is allowed when the fleet's totals as last read, plus what this
process counted since, stay within the budget's rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import final

import attrs
import trio

import trine

from .._util import check_number
from ._errors import RedisUnavailable
from ._link import (
    Client,
    OnUnavailable,
    _Link,
    check_name,
    check_on_unavailable,
    microseconds,
)

__all__ = ["RetryBudget", "RetryBudgetSyncStatistics"]


@attrs.frozen
class RetryBudgetSyncStatistics:
    """What :meth:`RetryBudget.sync_statistics` reports about this process's syncing."""

    syncs: int
    """Syncs that reached the server."""
    unavailable: int
    """Syncs that failed because the server was out of reach."""
    seconds_since_sync: float
    """Seconds since the fleet's totals were last read (``math.inf`` before the first)."""
    unsynced_requests: int
    """Requests counted here and not yet sent."""
    unsynced_retries: int
    """Retries counted here and not yet sent."""
    local_decisions: int
    """Retries decided without the fleet's totals: by the local twin (failing
    open) or refused (failing closed), while the server was out of reach."""


@final
class RetryBudget(trine.RetryBudget):  # type: ignore[misc]  # trine.Retry accepts only trine.RetryBudget: see the class docs
    """A retry budget shared by every process that uses the name, through Redis.

    The rule of :class:`trine.RetryBudget` -- a retry is allowed while the
    retries in the window stay within ``ratio * requests + min_per_second *
    window`` -- counted over the requests and retries of the whole fleet, in
    buckets of the server's time. Use it inside ``async with``, which runs
    the task that syncs it, and give it to :class:`trine.Retry` as any budget::

        budget = trine.redis.RetryBudget(client, "partner-api", ratio=0.1)
        async with budget:
            retry = trine.Retry(attempts=4, budget=budget)
            await retry.call(fetch, url)

    **How exact.** The decision is made at once, on the fleet's totals read
    at the last sync (at most *sync_interval* seconds old) plus this
    process's own counts since. What other processes withdrew since their
    last sync is not seen, so across *n* processes the retries in a window
    can exceed the budget by what the others withdraw in one sync interval;
    a short *sync_interval* buys exactness with one round trip per interval
    per process.

    It is a :class:`trine.RetryBudget` (a subclass) so that
    :class:`trine.Retry` takes it; its :meth:`statistics` report the fleet's
    window as this process sees it.

    Args:
      client: a ``coredis.Redis`` (or ``RedisCluster``) client.
      name: the name every process uses (key ``trine:budget:{name}``).
      ratio, min_per_second, window, buckets: as for :class:`trine.RetryBudget`
        (every process must give the same).
      sync_interval: seconds between syncs (> 0).
      on_unavailable: while the server is out of reach (the last sync
        failed, or none succeeded yet): ``"fail_closed"`` (default) refuses
        every retry, so the call's own error is raised as when the budget is
        exhausted; ``"fail_open"`` lets :attr:`local` decide, a
        :class:`trine.RetryBudget` with the same settings that has counted
        this process's requests and retries all along.
      timeout, recheck_interval: as for :class:`trine.redis.RateLimiter`
        (for the sync's round trip).

    Raises:
      TypeError, ValueError: for an invalid argument, naming it.
      RuntimeError: from :meth:`deposit` and :meth:`try_withdraw` outside
        ``async with budget:`` (nothing would be shared).
    """

    def __init__(
        self,
        client: Client,
        name: str,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        window: float = 10.0,
        *,
        buckets: int = 10,
        sync_interval: float = 1.0,
        on_unavailable: OnUnavailable = "fail_closed",
        timeout: float = 1.0,
        recheck_interval: float = 1.0,
    ) -> None:
        self._name = check_name(name)
        # The local budget's checks, and its name= (metrics and events carry it).
        super().__init__(ratio, min_per_second, window, buckets=buckets, name=self._name)
        self._sync_interval = check_number("sync_interval", sync_interval, exclusive=True)
        self._on_unavailable = check_on_unavailable(on_unavailable)
        self._link = _Link(
            client, f"retry budget {name!r}", timeout=timeout, recheck_interval=recheck_interval
        )
        self._local = trine.RetryBudget(ratio, min_per_second, window, buckets=buckets)
        self._key = f"trine:budget:{{{name}}}"
        self._bucket_us = microseconds(window / buckets)
        self._open: AbstractAsyncContextManager[None] | None = None
        self._fleet: tuple[int, int] | None = None  # requests, retries at the last sync
        self._synced_at = -float("inf")
        self._available = False
        # (Names apart from trine.RetryBudget's own slots, which it keeps.)
        self._unsynced_requests = 0  # counted here since the last sync
        self._unsynced_retries = 0
        self._refused = 0
        self._syncs = 0
        self._local_decisions = 0

    @property
    def local(self) -> trine.RetryBudget:
        """The local twin that decides while the server is out of reach (``fail_open``)."""
        return self._local

    # ------------------------------------------------------------ the sync task

    async def __aenter__(self) -> RetryBudget:
        """Sync once, then keep syncing every *sync_interval* until the block ends."""
        if self._open is not None:
            raise RuntimeError(f"retry budget {self._name!r} is already open")
        opened = self._run()
        await opened.__aenter__()
        self._open = opened
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        opened, self._open = self._open, None
        assert opened is not None
        await opened.__aexit__(exc_type, exc_value, traceback)

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[None]:
        await self._sync()
        raised: BaseException | None = None
        stop = trio.CancelScope()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep_syncing, stop)
                try:
                    yield
                finally:
                    stop.cancel()
        except BaseExceptionGroup as group:
            # The sync task never raises: the group holds what the block raised.
            if len(group.exceptions) != 1:
                raise
            raised = group.exceptions[0]
        finally:
            # Hand in what was counted since the last sync (best effort).
            with trio.CancelScope(shield=True):
                await self._sync()
        if raised is not None:
            raise raised

    async def _keep_syncing(self, stop: trio.CancelScope) -> None:
        with stop:
            while True:
                await trio.sleep(self._sync_interval)
                await self._sync()

    async def _sync(self) -> None:
        requests, retries = self._unsynced_requests, self._unsynced_retries
        try:
            reply = await self._link.run(
                "budget_sync", [self._key], [self._bucket_us, self.buckets, requests, retries]
            )
        except RedisUnavailable:
            self._available = False  # the counts stay here for the next sync
            return
        # Counted meanwhile (the round trip yields): those wait for the next sync.
        self._unsynced_requests -= requests
        self._unsynced_retries -= retries
        self._fleet = (int(reply[0]), int(reply[1]))
        self._synced_at = trio.current_time()
        self._available = True
        self._syncs += 1

    # ------------------------------------------------------ what trine.Retry asks

    def _check_open(self) -> None:
        if self._open is None:
            raise RuntimeError(
                f"retry budget {self._name!r} is shared only inside `async with budget:`"
            )

    def deposit(self) -> None:
        """Count one request (a call's first attempt). :class:`trine.Retry` calls this for you.

        Raises:
          RuntimeError: outside ``async with budget:``.
        """
        self._check_open()
        self._unsynced_requests += 1
        self._local.deposit()

    def try_withdraw(self) -> bool:
        """Take one retry if the fleet's window allows it (see the class docs); never waits.

        Raises:
          RuntimeError: outside ``async with budget:``.
        """
        self._check_open()
        if not self._available or self._fleet is None:
            self._local_decisions += 1
            allowed = self._on_unavailable == "fail_open" and self._local.try_withdraw()
        else:
            fleet_requests, fleet_retries = self._fleet
            requests = fleet_requests + self._unsynced_requests
            retries = fleet_retries + self._unsynced_retries
            allowed = retries + 1 <= self.ratio * requests + self.min_per_second * self.window
            if allowed:
                self._local.try_withdraw()  # the twin keeps counting, for an outage
        if allowed:
            self._unsynced_retries += 1
        else:
            self._refused += 1
        return allowed

    def statistics(self) -> trine.RetryBudgetStatistics:
        """The fleet's window as this process sees it: last sync plus its own counts since."""
        fleet_requests, fleet_retries = self._fleet or (0, 0)
        requests = fleet_requests + self._unsynced_requests
        retries = fleet_retries + self._unsynced_retries
        balance = self.ratio * requests + self.min_per_second * self.window - retries
        return trine.RetryBudgetStatistics(requests, retries, balance, self._refused)

    def sync_statistics(self) -> RetryBudgetSyncStatistics:
        """Return a fresh :class:`RetryBudgetSyncStatistics`."""
        return RetryBudgetSyncStatistics(
            syncs=self._syncs,
            unavailable=self._link.failures,
            seconds_since_sync=trio.current_time() - self._synced_at,
            unsynced_requests=self._unsynced_requests,
            unsynced_retries=self._unsynced_retries,
            local_decisions=self._local_decisions,
        )

    def __repr__(self) -> str:
        return (
            f"<trine.redis.RetryBudget {self._name!r} ratio={self.ratio:g} "
            f"min_per_second={self.min_per_second:g} window={self.window:g}s "
            f"on {self._link.server}>"
        )
