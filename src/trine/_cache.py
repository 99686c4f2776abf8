"""AsyncCache: LRU + TTL, each missing key loaded once, stale entries refreshed in the background.

How it works. Entries live in an :class:`~collections.OrderedDict` in least-
to most-recently-used order: a hit moves its entry to the end, an insertion
that overflows ``maxsize`` (or ``max_weight``) drops entries from the front.
Every operation is O(1) (eviction is O(1) per entry evicted). An entry
carries the Trio time it expires and the time it becomes due for a refresh;
both are compared with :func:`trio.current_time` on every read, so an
expired value is never returned and the fake clock makes TTLs exact.

Loads are flights (see ``_flight.py``): a miss starts a task in the cache's
nursery that runs the loader and stores what it returns, and every miss for
the same key meanwhile waits for that task. So a caller's cancellation never
cancels a load that others wait for, the last waiter leaving cancels it, and
a cancelled load stores nothing. A refresh is a flight with no waiter that is
kept running (``pinned``) until it stores its value; a miss for its key joins
it. A write (:meth:`AsyncCache.set`, :meth:`~AsyncCache.invalidate`,
:meth:`~AsyncCache.clear`) detaches the key's flight, so a load that started
before the write can never overwrite it.
"""

from __future__ import annotations

import functools
import math
import types
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, TypeVarTuple, final, overload

import attrs
import trio
from trio.lowlevel import checkpoint_if_cancelled

from . import _created
from ._flight import _PLAIN_CALLABLES, Flight, FlightTable, check_fn, hashable_key, wait
from ._policy import SupportsCall, _check_call_guard
from ._service import ServiceNursery
from ._stats import LatencyHistogram, LatencySummary
from ._util import (
    check_async_callable,
    check_async_function,
    check_awaitable,
    check_int,
    check_name,
    check_number,
    check_optional_number,
    check_sync_callable,
)

__all__ = ["AsyncCache", "AsyncCacheStatistics"]

if TYPE_CHECKING:
    # Defaults (PEP 696), so that `async with AsyncCache(maxsize=10) as cache`
    # is an AsyncCache[Any, Any] rather than an error asking for annotations,
    # while AsyncCache[str, bytes](...) keeps its types. Python 3.11's typing
    # has no default=; type checkers know typing_extensions without installing it.
    from typing_extensions import TypeVar as _TypeVarWithDefault

    _K = _TypeVarWithDefault("_K", bound=Hashable, default=Any)
    _V = _TypeVarWithDefault("_V", default=Any)
else:
    _K = TypeVar("_K", bound=Hashable)
    _V = TypeVar("_V")
_D = TypeVar("_D")
_T = TypeVar("_T")
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")

_CoroutineType = types.CoroutineType
_current_time = trio.current_time
_INF = math.inf


@final
class _Entry:
    """A cached value (or, with ``negative_ttl``, a cached failure) and its times."""

    __slots__ = ("error", "expires", "refresh_at", "traceback", "value", "weight")

    def __init__(
        self,
        value: Any,
        error: BaseException | None,
        traceback: TracebackType | None,
        expires: float,
        refresh_at: float,
        weight: int,
    ) -> None:
        self.value = value
        self.error = error
        self.traceback = traceback
        self.expires = expires
        self.refresh_at = refresh_at
        self.weight = weight


@attrs.frozen
class AsyncCacheStatistics:
    """A snapshot of an :class:`AsyncCache`, from :meth:`AsyncCache.statistics`."""

    hits: int
    """Calls of :meth:`~AsyncCache.get_or_load` answered from an entry (stale ones
    served during a refresh and cached failures included)."""
    misses: int
    """Calls of :meth:`~AsyncCache.get_or_load` that found no fresh entry and waited for a load."""
    loads: int
    """Loads (refreshes included) that returned a value."""
    load_failures: int
    """Loads (refreshes included) that raised an exception."""
    refreshes: int
    """Background refreshes started."""
    evictions: int
    """Entries dropped to make room under ``maxsize`` or ``max_weight``."""
    expirations: int
    """Entries found expired and dropped."""
    size: int
    """Entries held now."""
    weight: int
    """Their total weight (with ``weigh=``; otherwise the number of entries)."""
    loading: int
    """Loads and refreshes running now."""
    load_latency: LatencySummary
    """How long loads took, from start to value or failure (cancelled ones not counted)."""


def _check_weigh(weigh: object, max_weight: object) -> None:
    if (weigh is None) != (max_weight is None):
        raise ValueError(
            "weigh and max_weight go together: pass both (weigh(key, value) -> int "
            f"and the total allowed), got weigh={weigh!r} and max_weight={max_weight!r}"
        )
    if weigh is not None:
        check_sync_callable("weigh", weigh)


@final
@attrs.define(eq=False, repr=False, init=False)
class AsyncCache(Generic[_K, _V]):
    """An LRU cache with a TTL on the Trio clock, whose misses are each loaded once.

    ::

        async with trine.AsyncCache(maxsize=10_000, ttl=3600.0) as cache:
            page = await cache.get_or_load(url, fetch, url)  # a miss loads once

            @cache.cached                                     # keyed on the arguments
            async def fetch_user(user_id: int) -> User: ...

    :meth:`get_or_load` returns the entry for the key if there is a fresh
    one; otherwise it runs ``fn(*args)`` and caches what it returns. While
    that load runs, every other miss for the key waits for it instead of
    loading again. The load is a task in the cache's own nursery, with
    :class:`SingleFlight`'s cancellation rules: a waiter's cancellation never
    cancels it for the others; when every waiter has gone it is cancelled,
    and nothing is cached. :exc:`trio.Cancelled` is never cached and never
    handed to another waiter.

    Bounds: at most *maxsize* entries and, with *weigh*, a total weight of at
    most *max_weight*; inserting past a bound evicts the least recently used
    entries. So memory is bounded whatever the key space. Loads in flight are
    not entries; there is at most one per key being waited for (or refreshed).

    Times, all on :func:`trio.current_time`:

    * an entry expires *ttl* seconds after it was stored; an expired value is
      never returned;
    * with *refresh_after*, an entry older than that (but not expired) is
      returned at once while **one** background refresh of it runs in the
      cache's nursery (stale-while-revalidate). A refresh that succeeds
      replaces the entry; one that fails keeps the old value, and the next
      hit tries again;
    * with *negative_ttl*, a failed load is cached too, for that long: hits
      raise the same exception again without calling the loader.

    Leaving the ``async with`` cancels the loads and refreshes still running.

    Args:
      maxsize: the most entries to hold (``int >= 1``), or ``None`` for no
        count bound (then *max_weight* bounds the cache).
      ttl: seconds an entry lives after it is stored (``> 0``), or ``None``:
        entries never expire.
      refresh_after: seconds after which a hit refreshes its entry in the
        background (``> 0`` and, with *ttl*, ``< ttl``), or ``None``.
      negative_ttl: seconds to cache a failed load (``>= 0``; ``0``, the
        default, never caches failures).
      weigh: ``weigh(key, value) -> int`` (``>= 0``), the weight of an entry,
        as Caffeine's weigher; needs *max_weight*. A value heavier than
        *max_weight* is returned but not cached. A cached failure weighs 1.
      max_weight: the most total weight to hold (``int >= 1``); needs *weigh*.
      policy: a :class:`~trine.Policy` (or anything with
        ``async call(fn, *args)``) that each load and refresh goes through.
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError: if an argument has the wrong type.
      ValueError: if an argument is out of range, neither *maxsize* nor
        *max_weight* is given, only one of *weigh* and *max_weight* is given,
        or *refresh_after* is not below *ttl*.
    """

    _maxsize: float
    _ttl: float | None
    _refresh_after: float | None
    _negative_ttl: float
    _weigh: Callable[[Any, Any], object] | None
    _max_weight: float
    _policy: SupportsCall | None
    _timed: bool
    _untimed_open: bool
    _service: ServiceNursery
    _nursery: trio.Nursery | None
    _entries: OrderedDict[Hashable, _Entry]
    _table: FlightTable
    _weight: int
    _hits: int
    _misses: int
    _loads: int
    _load_failures: int
    _refreshes: int
    _evictions: int
    _expirations: int
    _latency: LatencyHistogram

    name: str | None
    """The name given to the constructor (metrics and events carry it)."""

    def __init__(
        self,
        maxsize: int | None = None,
        *,
        ttl: float | None = None,
        refresh_after: float | None = None,
        negative_ttl: float = 0.0,
        weigh: Callable[[_K, _V], int] | None = None,
        max_weight: int | None = None,
        policy: SupportsCall | None = None,
        name: str | None = None,
    ) -> None:
        if maxsize is not None:
            check_int("maxsize", maxsize)
        if max_weight is not None:
            check_int("max_weight", max_weight)
        _check_weigh(weigh, max_weight)
        if maxsize is None and max_weight is None:
            raise ValueError("maxsize or max_weight must be given: every cache has a bound")
        ttl = check_optional_number("ttl", ttl, exclusive=True)
        refresh_after = check_optional_number("refresh_after", refresh_after, exclusive=True)
        if refresh_after is not None and ttl is not None and refresh_after >= ttl:
            raise ValueError(
                f"refresh_after must be < ttl, got refresh_after={refresh_after!r} and "
                f"ttl={ttl!r}: an entry would expire before it is due for a refresh"
            )
        negative_ttl = check_number("negative_ttl", negative_ttl)
        if policy is not None:
            _check_call_guard("policy", policy)
        self._maxsize = _INF if maxsize is None else maxsize
        self._ttl = ttl
        self._refresh_after = refresh_after
        self._negative_ttl = negative_ttl
        self._weigh = weigh
        self._max_weight = _INF if max_weight is None else max_weight
        self._policy = policy
        self._timed = ttl is not None or refresh_after is not None or negative_ttl > 0
        self._untimed_open = False  # open, and no entry ever expires: hits need no clock
        self._service = ServiceNursery("AsyncCache")
        self._nursery = None
        self._entries = OrderedDict()
        self._table = FlightTable("AsyncCache")
        self._weight = 0
        self._hits = self._misses = self._loads = self._load_failures = 0
        self._refreshes = self._evictions = self._expirations = 0
        self._latency = LatencyHistogram()
        self.name = check_name(name)
        if _created.watchers:
            _created.announce(self, None)

    def __repr__(self) -> str:
        bound = [] if self._maxsize == _INF else [f"maxsize={self._maxsize}"]
        if self._max_weight != _INF:
            bound.append(f"weight {self._weight}/{self._max_weight}")
        return (
            f"<trine.AsyncCache at {id(self):#x}, {self._service.state}, "
            f"{len(self._entries)} entries ({', '.join(bound)}), {self._table.running} loading>"
        )

    def __len__(self) -> int:
        """The number of entries held now (expired ones not yet dropped included)."""
        return len(self._entries)

    async def __aenter__(self) -> AsyncCache[_K, _V]:
        self._nursery = await self._service.open()
        self._untimed_open = not self._timed
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        nursery, self._nursery = self._nursery, None
        self._untimed_open = False
        assert nursery is not None
        return await self._service.close(nursery, exc_type, exc, tb)

    # -- reading ---------------------------------------------------------------------

    async def get_or_load(self, key: _K, fn: Callable[[*_Ts], Awaitable[_V]], /, *args: *_Ts) -> _V:
        """Return the cached value for *key*, or load it with ``await fn(*args)`` and cache it.

        A hit returns at once, without a checkpoint: awaiting one costs what
        a dict lookup does. A hit on an entry due for a refresh also starts
        the background refresh (with this call's *fn* and *args*) unless one
        is running. A miss is a checkpoint: it waits for the key's load,
        starting one in the cache's nursery if none is running.

        The same exception object is raised in every caller of a failed load
        (and by hits on a cached failure), each time from the load's own
        traceback, as :meth:`SingleFlight.call` does.

        Args:
          key: the entry's key (hashable).
          fn: an async function that loads the value (pass the function and
            its arguments, not a coroutine object); called only for a load.
          *args: positional arguments for *fn*.

        Returns:
          the cached or loaded value.

        Raises:
          TypeError: if *key* is not hashable or *fn* is not an async function.
          RuntimeError: outside the ``async with`` block.
          trio.ClosedResourceError: after the block, or if it ends while this
            call (made from outside it) waits.
          Exception: whatever the load raised (or, with *negative_ttl*, the
            cached failure).
        """
        entries = self._entries
        try:
            entry = entries.get(key)
        except TypeError:
            raise hashable_key(key) from None
        if entry is not None:
            # The hit paths first and inline: a hit is the cache's reason to be.
            if type(fn) not in _PLAIN_CALLABLES:
                check_async_callable("fn", fn)
            if self._untimed_open:
                entries.move_to_end(key)
                self._hits += 1
                value: _V = entry.value
                return value
            nursery = self._nursery
            if nursery is not None:
                now = _current_time()
                if now < entry.expires:
                    entries.move_to_end(key)
                    self._hits += 1
                    if now >= entry.refresh_at and key not in self._table.flights:
                        self._refresh(nursery, key, fn, args, now)
                    if entry.error is not None:
                        raise entry.error.with_traceback(entry.traceback)
                    value = entry.value
                    return value
        value = await self._miss(key, entry, fn, args)
        return value

    async def _miss(
        self,
        key: Hashable,
        expired: _Entry | None,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
    ) -> Any:
        """No fresh entry for *key* (or the cache is not open): wait for its load."""
        nursery = self._nursery
        if nursery is None:
            raise self._service.not_open()
        check_fn(fn)
        if expired is not None:
            self._drop(key, expired)
            self._expirations += 1
        await checkpoint_if_cancelled()
        self._misses += 1
        flight = self._table.flights.get(key)
        if flight is None:
            flight = self._table.start(nursery, key, self._load(fn, args), self._store_load)
            flight.started = _current_time()
        return await wait(flight)

    @overload
    def get(self, key: _K) -> _V | None: ...
    @overload
    def get(self, key: _K, default: _D) -> _V | _D: ...

    def get(self, key: _K, default: object = None) -> object:
        """Return the fresh cached value for *key*, or *default*: a plain peek.

        It loads nothing, refreshes nothing, counts no hit or miss and leaves
        the entry's place in the LRU order alone. An expired entry is dropped
        and *default* returned; so is *default* for a cached failure.

        Raises:
          TypeError: if *key* is not hashable.
        """
        try:
            entry = self._entries.get(key)
        except TypeError:
            raise hashable_key(key) from None
        if entry is None:
            return default
        if self._timed and _current_time() >= entry.expires:
            self._drop(key, entry)
            self._expirations += 1
            return default
        return default if entry.error is not None else entry.value

    # -- writing ---------------------------------------------------------------------

    def set(self, key: _K, value: _V) -> None:
        """Store *value* for *key*, as a load would have (with a fresh TTL).

        A load or refresh of *key* running now is detached: its callers still
        get its result, but it will not overwrite this value.

        Raises:
          TypeError: if *key* is not hashable, or *weigh* returns a non-int.
          ValueError: if *weigh* returns a negative weight.
        """
        try:
            hash(key)
        except TypeError:
            raise hashable_key(key) from None
        weight = self._weight_of(key, value)
        self._detach_flight(key)
        self._store(key, value, None, None, weight, _current_time() if self._timed else 0.0)

    def invalidate(self, key: _K) -> None:
        """Drop the entry for *key*, if there is one.

        A load or refresh of *key* running now is detached, so it cannot put
        back a value read before the invalidation; a refresh nobody waits
        for is cancelled.

        Raises:
          TypeError: if *key* is not hashable.
        """
        try:
            entry = self._entries.get(key)
        except TypeError:
            raise hashable_key(key) from None
        if entry is not None:
            self._drop(key, entry)
        self._detach_flight(key)

    def clear(self) -> None:
        """Drop every entry, and detach every load and refresh running (as :meth:`invalidate`)."""
        self._entries.clear()
        self._weight = 0
        for key in list(self._table.flights):
            self._detach_flight(key)

    def cached(self, fn: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
        """Decorate an async function so that its calls go through the cache::

            @cache.cached
            async def fetch_user(user_id: int) -> User: ...

            user = await fetch_user(42)   # cache.get_or_load(key, fetch_user, 42)

        The key is ``(fn, args)``, or ``(fn, args, sorted kwargs)`` when
        there are keyword arguments, so one cache can serve several
        functions; the arguments must be hashable. The wrapper keeps *fn*'s
        name and docstring.

        Raises:
          TypeError: if *fn* is not an async function (a generator or async
            generator function included).
        """
        check_async_function("fn", fn)
        get_or_load: Callable[..., Awaitable[Any]] = self.get_or_load
        entries = self._entries

        @functools.wraps(fn)
        async def through_cache(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            if kwargs:
                key: Any = (fn, args, tuple(sorted(kwargs.items())))
                target: Callable[..., Awaitable[Any]] = functools.partial(fn, **kwargs)
            else:
                key = (fn, args)
                target = fn
                if self._untimed_open:
                    # get_or_load's first hit path, without its coroutine.
                    try:
                        entry = entries.get(key)
                    except TypeError:
                        raise hashable_key(key) from None
                    if entry is not None:
                        entries.move_to_end(key)
                        self._hits += 1
                        value: _T = entry.value
                        return value
            result: _T = await get_or_load(key, target, *args)
            return result

        return through_cache

    def statistics(self) -> AsyncCacheStatistics:
        """Return a snapshot of the counters, the size and the load latency."""
        return AsyncCacheStatistics(
            hits=self._hits,
            misses=self._misses,
            loads=self._loads,
            load_failures=self._load_failures,
            refreshes=self._refreshes,
            evictions=self._evictions,
            expirations=self._expirations,
            size=len(self._entries),
            weight=self._weight if self._weigh is not None else len(self._entries),
            loading=self._table.running,
            load_latency=self._latency.summary(),
        )

    # -- loads -----------------------------------------------------------------------

    def _load(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> Awaitable[Any]:
        """The loader's awaitable, created in the caller so that a bad *fn* raises there."""
        policy = self._policy
        coro = fn(*args) if policy is None else policy.call(fn, *args)
        if type(coro) is not _CoroutineType:
            coro = check_awaitable("fn", coro)
        return coro

    def _refresh(
        self,
        nursery: trio.Nursery,
        key: Hashable,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        now: float,
    ) -> None:
        flight = self._table.start(nursery, key, self._load(fn, args), self._store_load)
        flight.pinned = True  # nobody waits for a refresh: it runs until it stores
        flight.started = now
        self._refreshes += 1

    def _store_load(self, flight: Flight) -> None:
        """A load finished (not cancelled): count it and cache its outcome, if still current."""
        now = _current_time()
        self._latency.record(max(now - flight.started, 0.0))
        current = self._table.flights.get(flight.key) is flight
        error = flight.error
        if error is None:
            self._loads += 1
            if current:
                self._store_result(flight, now)
            return
        self._load_failures += 1
        if current and self._negative_ttl > 0 and not flight.pinned:
            # A failed refresh keeps the old value; a failed load may be cached.
            self._store(flight.key, None, error, flight.traceback, 1, now)

    def _store_result(self, flight: Flight, now: float) -> None:
        try:
            weight = self._weight_of(flight.key, flight.result)
        except Exception as exc:
            # The waiters get the broken weigher's error, as the load's failure.
            flight.error = exc
            flight.traceback = exc.__traceback__
            return
        self._store(flight.key, flight.result, None, None, weight, now)

    def _weight_of(self, key: Hashable, value: object) -> int:
        weigh = self._weigh
        if weigh is None:
            return 1
        weight = weigh(key, value)
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise TypeError(f"weigh must return an int, got {weight!r} for key {key!r}")
        if weight < 0:
            raise ValueError(f"weigh must return an int >= 0, got {weight!r} for key {key!r}")
        return weight

    # -- entries ---------------------------------------------------------------------

    def _store(
        self,
        key: Hashable,
        value: object,
        error: BaseException | None,
        traceback: TracebackType | None,
        weight: int,
        now: float,
    ) -> None:
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            self._weight -= old.weight
        if weight > self._max_weight:
            self._evictions += 1  # too heavy to keep: returned to its callers, not cached
            return
        if error is None:
            expires = _INF if self._ttl is None else now + self._ttl
            refresh_at = _INF if self._refresh_after is None else now + self._refresh_after
        else:
            expires, refresh_at = now + self._negative_ttl, _INF
        entries[key] = _Entry(value, error, traceback, expires, refresh_at, weight)
        self._weight += weight
        while len(entries) > self._maxsize or self._weight > self._max_weight:
            evicted_key, evicted = entries.popitem(last=False)
            self._weight -= evicted.weight
            self._evictions += 1
            flight = self._table.flights.get(evicted_key)
            if flight is not None and flight.pinned and not flight.waiters:
                flight.abandon()  # refreshing an entry that is gone serves nobody

    def _drop(self, key: Hashable, entry: _Entry) -> None:
        del self._entries[key]
        self._weight -= entry.weight

    def _detach_flight(self, key: Hashable) -> None:
        flight = self._table.flights.get(key)
        if flight is None:
            return
        flight.pinned = False
        if flight.waiters:
            flight.detach()  # its callers still get its result; the cache does not
        else:
            flight.abandon()
