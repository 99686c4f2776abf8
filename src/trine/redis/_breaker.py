"""CircuitBreaker on Redis: one breaker for every process, decided by Lua on the server's clock.

The state (closed, open, half-open, forced open), the failure window, the
transitions and the admission of half-open probes are all kept in Redis and
changed only by the scripts in ``lua/breaker_*.lua``, so each decision is one
atomic step on the server:

* ``breaker_enter`` admits a call or refuses it (one round trip per call);
* ``breaker_record`` counts how an admitted call ended (one more);
* ``breaker_control`` reads the state, forces it open or resets it.

With ``sync_interval`` the breaker trades exactness for round trips: it keeps
the state it last saw and, while that is *closed* and younger than
``sync_interval``, admits calls without asking and counts their successes
locally, sending them with its next round trip; failures are sent at once.
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar, TypeVarTuple, final

import attrs
import trio

import trine

from .._hooks import CallRejected, CircuitStateChanged, Hook, call_hooks, check_hooks
from .._util import (
    ExceptionFilter,
    NotAwaitableError,
    check_async_callable,
    check_awaitable,
    check_number,
    check_optional_number,
    check_sync_callable,
    exception_matcher,
)
from ._errors import RedisUnavailable
from ._link import (
    Client,
    OnUnavailable,
    _Link,
    check_name,
    check_on_unavailable,
    decode,
    microseconds,
    seconds,
)

__all__ = ["CircuitBreaker", "CircuitBreakerStatistics", "FleetBreakerState"]

_T = TypeVar("_T")
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")

_STATES = {state.value: state for state in trine.CircuitState}

# How a finished call is reported.
_SUCCESS = "success"
_FAILURE = "failure"
_RELEASE = "release"  # ignored, cancelled, or not awaitable: counts nothing

# In cached mode, successes counted locally are sent at the latest once this
# many have piled up (the server counts them one by one, in one script).
_MOST_PENDING = 1000


@attrs.frozen
class CircuitBreakerStatistics:
    """What :meth:`CircuitBreaker.statistics` reports: this process's calls, the state seen last."""

    state: trine.CircuitState
    """The state this process saw on its last round trip (see :meth:`CircuitBreaker.fleet_state`
    for the server's view now)."""
    calls: int
    """Calls this process was admitted for."""
    successes: int
    """Admitted calls that returned, or raised an exception outside ``record``."""
    failures: int
    """Admitted calls that raised an exception matching ``record`` (and not ``ignore``)."""
    slow_calls: int
    """Successes and failures that took at least ``slow_call_duration``."""
    ignored: int
    """Admitted calls that raised an exception matching ``ignore``."""
    cancelled: int
    """Admitted calls ended by :exc:`trio.Cancelled` (or another non-``Exception``)."""
    rejections: int
    """Calls refused with :exc:`~trine.CircuitOpenError`."""
    in_flight: int
    """Admitted calls of this process that have not finished."""
    round_trips: int
    """Scripts run on the server."""
    local_admissions: int
    """Calls admitted from the cached state without a round trip (``sync_interval``)."""
    unrecorded: int
    """Outcomes that could not be sent because the server was out of reach (they count nowhere)."""
    unavailable: int
    """Round trips that failed because the server was out of reach."""
    fallbacks: int
    """Calls decided by the local twin because the server was out of reach."""


@attrs.frozen
class FleetBreakerState:
    """The shared breaker as the server holds it, from :meth:`CircuitBreaker.fleet_state`."""

    state: trine.CircuitState
    """The state now (the reset timeout has been applied)."""
    epoch: int
    """How many state changes the breaker has been through."""
    window_calls: int
    """Successes and failures in the shared window (only while CLOSED; else 0)."""
    window_failures: int
    """Failures among them."""
    window_slow_calls: int
    """Slow calls among them."""
    consecutive_failures: int
    """Failures since the last success, fleet-wide, while CLOSED."""
    half_open_in_flight: int
    """Probes in flight now, fleet-wide (only while HALF_OPEN)."""
    half_open_successes: int
    """Successful probes in this HALF_OPEN spell."""
    retry_after: float
    """Seconds until a probe would be admitted (``math.inf`` while forced open)."""


@final
@attrs.frozen
class _Permit:
    """The right to make one call: where it came from and what to report."""

    epoch: int
    probe: str  # '' unless a half-open probe
    start: float
    local: bool = False  # admitted by the local twin (failing open)


@final
@attrs.define(eq=False, repr=False, init=False)
class CircuitBreaker:
    """A circuit breaker shared by every process that uses the name, through Redis.

    The same state machine as :class:`trine.CircuitBreaker` (closed → open →
    half-open → closed; consecutive failures or a failure rate over a count or
    time window; slow calls; ``success_threshold`` probes to close), with the
    state and the failure window in Redis, changed only by Lua scripts timed
    by the server's clock::

        breaker = trine.redis.CircuitBreaker(client, "payments", failure_threshold=5)
        receipt = await breaker.call(charge, order)

    **The fleet's guarantees.** Admission, transitions and the half-open
    probes are one atomic step on the server, so: when the breaker opens,
    every process is refused from its next call on; in each half-open spell
    at most ``half_open_max_calls`` probes are in flight across the fleet
    (a probe whose process died frees its slot after *probe_timeout*); and
    the window counts every process's outcomes. Outcomes of calls admitted
    before a state change do not count after it, as for the local breaker.

    **Round trips.** Exact (the default): one to admit or refuse each call,
    one more to record how an admitted call ended (none for a call that was
    cancelled or raised an ``ignore``-d exception while closed). With
    *sync_interval*, the state seen last is trusted for that many seconds
    while it is CLOSED: such calls are admitted without a round trip and
    their successes counted locally and sent with the next round trip; a
    failure is sent at once. A process then learns that the breaker opened up
    to *sync_interval* seconds late, and the shared window sees its
    successes up to that late; every other decision (open, half-open) still
    asks the server.

    Unlike the local breaker, reading the state and changing it take a round
    trip, so :meth:`fleet_state`, :meth:`force_open` and :meth:`reset` are
    async; :attr:`state` is the state this process saw last.

    **Settings.** *failure_threshold*, *failure_rate*, *window*,
    *window_type*, *minimum_calls*, *slow_call_duration*, *slow_call_rate*,
    *reset_timeout*, *half_open_max_calls*, *success_threshold*, *record*,
    *ignore*, *on_state_change* and *hooks* are :class:`trine.CircuitBreaker`'s,
    with its defaults; every process must give the same thresholds and window.
    Durations of calls are measured on this process's clock, the reset timeout
    and time windows on the server's. *on_state_change* and *hooks* hear of a
    state change when this process sees it.

    Args:
      client: a ``coredis.Redis`` (or ``RedisCluster``) client.
      name: the name every process uses (keys ``trine:breaker:{name}...``);
        also the breaker's name in errors and hook events.
      probe_timeout: seconds after which a probe that has not reported frees
        its half-open slot (> 0).
      sync_interval: ``None`` (exact: every call asks the server), or
        seconds (> 0) for which a CLOSED state seen is trusted.
      on_unavailable: ``"fail_closed"`` (default) raises
        :exc:`~trine.redis.RedisUnavailable` instead of admitting a call when
        the server is out of reach; ``"fail_open"`` lets :attr:`local` decide,
        a :class:`trine.CircuitBreaker` with the same settings that sees only
        this process's calls.
      timeout, recheck_interval: as for :class:`trine.redis.RateLimiter`.

    Raises:
      TypeError, ValueError: for an invalid argument, naming it.
    """

    _name: str = attrs.field(init=False)
    _local: trine.CircuitBreaker = attrs.field(init=False)
    _link: _Link = attrs.field(init=False)
    _on_unavailable: OnUnavailable = attrs.field(init=False)
    _probe_timeout: float = attrs.field(init=False)
    _sync_interval: float | None = attrs.field(init=False)
    _slow_call_duration: float | None = attrs.field(init=False)
    _is_recorded: Callable[[BaseException], bool] = attrs.field(init=False)
    _is_ignored: Callable[[BaseException], bool] = attrs.field(init=False)
    _on_state_change: Callable[[trine.CircuitState, trine.CircuitState], object] | None = (
        attrs.field(init=False)
    )
    _hooks: tuple[Hook, ...] = attrs.field(init=False)
    _keys: list[str] = attrs.field(init=False)
    _settings: list[object] = attrs.field(init=False)
    # What this process saw on its last round trip.
    _seen_state: trine.CircuitState = attrs.field(init=False, default=trine.CircuitState.CLOSED)
    _seen_epoch: int = attrs.field(init=False, default=-1)
    _seen_retry_after: float = attrs.field(init=False, default=0.0)
    _seen_at: float = attrs.field(init=False, default=-math.inf)
    # Successes counted without a round trip (cached mode), not yet sent.
    _pending: int = attrs.field(init=False, default=0)
    _pending_slow: int = attrs.field(init=False, default=0)
    _pending_epoch: int = attrs.field(init=False, default=-1)
    _held: dict[trio.lowlevel.Task, list[_Permit]] = attrs.field(init=False, factory=dict)
    _calls: int = attrs.field(init=False, default=0)
    _successes: int = attrs.field(init=False, default=0)
    _failures: int = attrs.field(init=False, default=0)
    _slow_calls: int = attrs.field(init=False, default=0)
    _ignored: int = attrs.field(init=False, default=0)
    _cancelled: int = attrs.field(init=False, default=0)
    _rejections: int = attrs.field(init=False, default=0)
    _local_admissions: int = attrs.field(init=False, default=0)
    _unrecorded: int = attrs.field(init=False, default=0)
    _fallbacks: int = attrs.field(init=False, default=0)

    def __init__(
        self,
        client: Client,
        name: str,
        *,
        failure_threshold: int = 5,
        failure_rate: float | None = None,
        window: float = 100,
        window_type: Literal["count", "time"] = "count",
        minimum_calls: int = 10,
        slow_call_duration: float | None = None,
        slow_call_rate: float = 1.0,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        probe_timeout: float = 30.0,
        record: ExceptionFilter = (Exception,),
        ignore: ExceptionFilter = (),
        on_state_change: Callable[[trine.CircuitState, trine.CircuitState], object] | None = None,
        hooks: Iterable[Hook] | None = None,
        sync_interval: float | None = None,
        on_unavailable: OnUnavailable = "fail_closed",
        timeout: float = 1.0,
        recheck_interval: float = 1.0,
    ) -> None:
        self.__attrs_init__()
        self._name = check_name(name)
        # Checked here as well as by the local twin: a filter that could
        # match a Cancelled, and a callback that cannot be called plainly.
        self._is_recorded = exception_matcher("record", record, only_exceptions=True)
        self._is_ignored = exception_matcher("ignore", ignore, only_exceptions=True)
        if on_state_change is not None:
            check_sync_callable("on_state_change", on_state_change)
        # The local twin checks every setting they share, with the same messages.
        local = trine.CircuitBreaker(
            name=name,
            failure_threshold=failure_threshold,
            failure_rate=failure_rate,
            window=window,
            window_type=window_type,
            minimum_calls=minimum_calls,
            slow_call_duration=slow_call_duration,
            slow_call_rate=slow_call_rate,
            reset_timeout=reset_timeout,
            half_open_max_calls=half_open_max_calls,
            success_threshold=success_threshold,
            record=record,
            ignore=ignore,
            on_state_change=on_state_change,
            hooks=hooks,
        )
        self._local = local
        self._probe_timeout = check_number("probe_timeout", probe_timeout, exclusive=True)
        self._sync_interval = check_optional_number("sync_interval", sync_interval, exclusive=True)
        self._on_unavailable = check_on_unavailable(on_unavailable)
        self._link = _Link(
            client, f"circuit breaker {name!r}", timeout=timeout, recheck_interval=recheck_interval
        )
        self._slow_call_duration = local.slow_call_duration
        self._on_state_change = on_state_change
        self._hooks = check_hooks(hooks)
        prefix = f"trine:breaker:{{{name}}}"
        self._keys = [prefix, f"{prefix}:probes", f"{prefix}:window"]
        counted = local.window_type == "count"
        self._settings = [
            microseconds(local.reset_timeout),
            local.half_open_max_calls,
            local.success_threshold,
            local.failure_threshold,
            -1 if local.failure_rate is None else repr(local.failure_rate),
            # As the local breaker: a count window can never hold more than its size.
            min(local.minimum_calls, int(local.window)) if counted else local.minimum_calls,
            int(local.window) if counted else microseconds(local.window),
            local.window_type,
            -1 if local.slow_call_duration is None else repr(local.slow_call_rate),
            microseconds(self._probe_timeout),
        ]

    # ------------------------------------------------------------------ settings

    @property
    def name(self) -> str:
        """The breaker's name, shared by the fleet."""
        return self._name

    @property
    def local(self) -> trine.CircuitBreaker:
        """The local twin that decides while the server is out of reach (``fail_open``)."""
        return self._local

    @property
    def sync_interval(self) -> float | None:
        """Seconds a CLOSED state seen is trusted without asking, or ``None`` (exact)."""
        return self._sync_interval

    @property
    def state(self) -> trine.CircuitState:
        """The state this process saw on its last round trip (no round trip; CLOSED before any).

        :meth:`fleet_state` asks the server.
        """
        return self._seen_state

    def __repr__(self) -> str:
        return (
            f"<trine.redis.CircuitBreaker {self._name!r} {self._seen_state.value} (as last seen) "
            f"on {self._link.server}>"
        )

    # ----------------------------------------------------------- what was seen

    def _pending_args(self) -> list[object]:
        args: list[object] = [self._pending, self._pending_slow, self._pending_epoch]
        self._pending = self._pending_slow = 0
        return args

    def _saw(self, state_text: object, epoch: object, retry_after: object) -> None:
        """Take in the state a script reported; tell the callbacks if it changed."""
        old = self._seen_state
        new = _STATES[decode(state_text)]
        self._seen_state = new
        self._seen_epoch = int(epoch)  # type: ignore[call-overload]  # an int reply
        after = seconds(retry_after)
        self._seen_retry_after = math.inf if after < 0 else after
        self._seen_at = trio.current_time()
        if new is not old:
            if self._on_state_change is not None:
                self._on_state_change(old, new)
            if self._hooks:
                call_hooks(self._hooks, CircuitStateChanged(self._name, old, new))

    def _rejected(self, state: trine.CircuitState, retry_after: float) -> trine.CircuitOpenError:
        self._rejections += 1
        error = trine.CircuitOpenError(self._name, retry_after, state.value)
        if self._hooks:
            call_hooks(self._hooks, CallRejected("breaker", self._name, error))
        return error

    # --------------------------------------------------------------- admission

    async def _enter(self) -> _Permit:
        """Admit a call or raise; always a checkpoint."""
        await trio.lowlevel.checkpoint_if_cancelled()
        now = trio.current_time()
        start = now if self._slow_call_duration is not None else 0.0
        if self._sync_interval is not None and now < self._seen_at + self._sync_interval:
            seen = self._seen_state
            if seen is trine.CircuitState.CLOSED:
                self._calls += 1
                self._local_admissions += 1
                return _Permit(self._seen_epoch, "", start)
            if seen is trine.CircuitState.FORCED_OPEN or (
                seen is trine.CircuitState.OPEN and now < self._seen_at + self._seen_retry_after
            ):
                left = self._seen_at + self._seen_retry_after - now
                await trio.lowlevel.cancel_shielded_checkpoint()
                raise self._rejected(seen, left)
        try:
            reply = await self._link.run(
                "breaker_enter", self._keys, [*self._settings, *self._pending_args()], shield=True
            )
        except RedisUnavailable:
            await trio.lowlevel.cancel_shielded_checkpoint()
            if self._on_unavailable == "fail_closed":
                raise
            self._fallbacks += 1
            await self._local.__aenter__()  # raises CircuitOpenError if it refuses
            self._calls += 1
            return _Permit(-1, "", start, local=True)
        admitted, state_text, epoch, probe, retry_after = reply
        self._saw(state_text, epoch, retry_after)
        if int(admitted) != 1:
            await trio.lowlevel.cancel_shielded_checkpoint()
            raise self._rejected(self._seen_state, self._seen_retry_after)
        self._calls += 1
        return _Permit(int(epoch), decode(probe), start)

    def _classify(self, error: BaseException | None) -> str:
        if error is None:
            self._successes += 1
            return _SUCCESS
        if not isinstance(error, Exception) or isinstance(error, NotAwaitableError):
            self._cancelled += not isinstance(error, Exception)
            return _RELEASE
        if self._is_ignored(error):
            self._ignored += 1
            return _RELEASE
        if self._is_recorded(error):
            self._failures += 1
            return _FAILURE
        self._successes += 1
        return _SUCCESS

    async def _finish(self, permit: _Permit, error: BaseException | None) -> None:
        """Report how an admitted call ended (shielded: a probe's slot must come back)."""
        outcome = self._classify(error)
        if permit.local:
            await self._local.__aexit__(
                None if error is None else type(error),
                error,
                None if error is None else error.__traceback__,
            )
            return
        duration = self._slow_call_duration
        slow = (
            outcome != _RELEASE
            and duration is not None
            and trio.current_time() - permit.start >= duration
        )
        self._slow_calls += slow
        if not permit.probe:
            if outcome == _RELEASE:
                return  # nothing to count while closed
            if (
                outcome == _SUCCESS
                and self._sync_interval is not None
                and permit.epoch == self._seen_epoch
                and self._pending < _MOST_PENDING
            ):
                if self._pending_epoch != permit.epoch:
                    self._pending = self._pending_slow = 0
                    self._pending_epoch = permit.epoch
                self._pending += 1
                self._pending_slow += slow
                return
        args = [
            *self._settings,
            *self._pending_args(),
            outcome,
            "1" if slow else "0",
            permit.epoch,
            permit.probe,
        ]
        try:
            reply = await self._link.run("breaker_record", self._keys, args, shield=True)
        except RedisUnavailable:
            self._unrecorded += 1
            return
        self._saw(*reply)

    # --------------------------------------------------------------- the front

    async def call(self, fn: Callable[[*_Ts], Awaitable[_T]], *args: *_Ts) -> _T:
        """Call ``await fn(*args)`` through the shared breaker and return its result.

        Raises:
          CircuitOpenError: at once, without calling *fn*, if the breaker refuses.
          RedisUnavailable: if the server is out of reach and the breaker fails closed.
          Exception: whatever *fn* raises, unchanged, after it was counted.
        """
        given: object = fn
        if not callable(given):
            check_async_callable("fn", given)
        permit = await self._enter()
        try:
            # Called only once admitted: Policy tells a refusal from a failure
            # by whether its function was called.
            coro = fn(*args)
            if type(coro) is not types.CoroutineType:
                coro = check_awaitable("fn", coro)
            result = await coro
        except BaseException as exc:
            await self._finish(permit, exc)
            raise
        await self._finish(permit, None)
        return result

    async def __aenter__(self) -> None:
        """Enter a guarded block; raises :exc:`~trine.CircuitOpenError` if refused."""
        permit = await self._enter()
        task = trio.lowlevel.current_task()
        self._held.setdefault(task, []).append(permit)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task = trio.lowlevel.current_task()
        held = self._held[task]
        permit = held.pop()
        if not held:
            del self._held[task]
        await self._finish(permit, exc_value)

    def __call__(self, fn: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
        """Decorate an async function so that every call goes through the shared breaker."""
        check_async_callable("fn", fn)

        @functools.wraps(fn)
        async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            return await self.call(functools.partial(fn, *args, **kwargs))

        return guarded

    # ---------------------------------------------------------------- control

    async def _control(self, op: str) -> FleetBreakerState:
        reply = await self._link.run(
            "breaker_control", self._keys, [*self._settings, *self._pending_args(), op]
        )
        state_text, epoch, retry_after = reply[:3]
        self._saw(state_text, epoch, retry_after)
        calls, failures, slow, consecutive, probes, probe_successes = (int(x) for x in reply[3:9])
        return FleetBreakerState(
            state=self._seen_state,
            epoch=self._seen_epoch,
            window_calls=calls,
            window_failures=failures,
            window_slow_calls=slow,
            consecutive_failures=consecutive,
            half_open_in_flight=probes,
            half_open_successes=probe_successes,
            retry_after=self._seen_retry_after,
        )

    async def fleet_state(self) -> FleetBreakerState:
        """Ask the server for the shared state now (one round trip).

        Like reading the local breaker's state, this applies a reset timeout
        that has passed. Raises :exc:`~trine.redis.RedisUnavailable` if the
        server is out of reach, whatever *on_unavailable* says.
        """
        return await self._control("read")

    async def force_open(self) -> None:
        """Reject every call, in every process, until :meth:`reset` (one round trip).

        Raises:
          RedisUnavailable: if the server is out of reach.
        """
        await self._control("force_open")

    async def reset(self) -> None:
        """Close the breaker for the fleet and forget its window (one round trip).

        Raises:
          RedisUnavailable: if the server is out of reach.
        """
        await self._control("reset")

    def statistics(self) -> CircuitBreakerStatistics:
        """A fresh :class:`CircuitBreakerStatistics` of this process's calls (no round trip)."""
        finished = self._successes + self._failures + self._ignored + self._cancelled
        return CircuitBreakerStatistics(
            state=self._seen_state,
            calls=self._calls,
            successes=self._successes,
            failures=self._failures,
            slow_calls=self._slow_calls,
            ignored=self._ignored,
            cancelled=self._cancelled,
            rejections=self._rejections,
            in_flight=self._calls - finished,
            round_trips=self._link.round_trips,
            local_admissions=self._local_admissions,
            unrecorded=self._unrecorded,
            unavailable=self._link.failures,
            fallbacks=self._fallbacks,
        )
