"""CircuitBreaker: stop calling a service that is failing, and probe it before trusting it again.

The state machine::

                 failures reach the threshold
      ┌────────┐ ─────────────────────────────▶ ┌──────┐
      │ CLOSED │                                │ OPEN │ ◀── force_open() ── FORCED_OPEN
      └────────┘ ◀──┐                           └──────┘     (until reset())
          ▲         │ success_threshold            │ reset_timeout passes
          │         │ probes succeed               ▼ (read lazily from the clock)
          │         │                        ┌───────────┐
          │         └─────────────────────── │ HALF_OPEN │
          │                                  └───────────┘
          │           any probe fails: back to OPEN, for a new reset_timeout
          └── reset() from any state

The breaker's decisions are made by a small synchronous core: ``_admit``
hands out a :class:`_Permit` and ``_finish`` records how the call ended; a
state change goes through ``_change``, which applies one change at a time, so
callbacks always see a chain of changes in order. The async front ends
(``call``, ``async with``, the decorator) only wrap the user's function in it,
so admission is atomic under Trio: the permit is taken before the first
``await``, and no two tasks can both see a free half-open slot.

``call`` has a fast path for the common case, a CLOSED breaker counting
consecutive failures or failure rates over a count window: one check of
``_closed_epoch`` admits the call (no permit object), and a success is one
count and one window write. Everything else (probes, slow calls, time
windows, failures) goes through the core.

**KeyboardInterrupt.** Every frame of the breaker is KI-protected
(:func:`trio.lowlevel.enable_ki_protection`), so a Ctrl-C can never land
between taking a permit and recording its outcome; the user's coroutine is
awaited in an unprotected frame (``_await_unprotected``), so it can be
interrupted as it could without the breaker, and its KeyboardInterrupt is
counted as a cancellation.
"""

from __future__ import annotations

import enum
import functools
import math
import sys
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Literal, ParamSpec, TypeVar, TypeVarTuple, final

import attrs
import trio
from trio.lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    disable_ki_protection,
    enable_ki_protection,
)

from .. import _created
from .._errors import CircuitOpenError
from .._hooks import CallRejected, CircuitStateChanged, Hook, call_hooks, check_hooks
from .._util import (
    ExceptionFilter,
    NotAwaitableError,
    check_async_callable,
    check_awaitable,
    check_choice,
    check_int,
    check_number,
    check_sync_callable,
    check_sync_result,
    exception_matcher,
)
from .._values import ReadOnlyValue
from .._waits import deliberate

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerStatistics",
    "CircuitState",
]

_T = TypeVar("_T")
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")


# How a finished call is classified. Kept as small ints: this is the hot path.
_SUCCESS = 0
_FAILURE = 1
_IGNORED = 2
_CANCELLED = 3  # trio.Cancelled or any other BaseException that is not an Exception
_NOT_AWAITABLE = 4  # fn was not an async function: a programming error, never an outcome

# A time window is split into this many buckets: memory is O(_TIME_BUCKETS) and a
# call stays in the window for between (1 - 1/_TIME_BUCKETS) * window and window seconds.
_TIME_BUCKETS = 20


class CircuitState(enum.StrEnum):
    """The states of a :class:`CircuitBreaker`. Each member is also its string value."""

    CLOSED = "closed"
    """Calls pass through; their outcomes are counted."""
    OPEN = "open"
    """Calls are rejected at once until ``reset_timeout`` has passed."""
    HALF_OPEN = "half_open"
    """A few probe calls are let through to test whether the service recovered."""
    FORCED_OPEN = "forced_open"
    """Opened by :meth:`CircuitBreaker.force_open`: every call is rejected until
    :meth:`CircuitBreaker.reset`; the reset timeout does not apply."""


@attrs.frozen
class CircuitBreakerStatistics:
    """A snapshot of a :class:`CircuitBreaker`, from :meth:`CircuitBreaker.statistics`.

    The lifetime counters (``calls`` to ``rejections``) count every call since
    the breaker was made, including calls that finished after the breaker had
    moved on to another state; the window fields describe only what the
    current state is deciding on.
    """

    state: CircuitState
    """The state now (the reset timeout has been applied)."""
    calls: int
    """Calls admitted, ever."""
    successes: int
    """Admitted calls that returned, or raised an exception outside ``record``."""
    failures: int
    """Admitted calls that raised an exception matching ``record`` (and not ``ignore``)."""
    slow_calls: int
    """Successes and failures that took at least ``slow_call_duration`` (0 if it is unset)."""
    ignored: int
    """Admitted calls that raised an exception matching ``ignore``."""
    cancelled: int
    """Admitted calls ended by :exc:`trio.Cancelled` (or another non-``Exception``)."""
    rejections: int
    """Calls refused with :exc:`~trine.CircuitOpenError`, ever."""
    in_flight: int
    """Admitted calls that have not finished yet."""
    window_calls: int
    """Successes and failures in the current window (only while CLOSED; else 0)."""
    failure_rate: float | None
    """Failures / calls in the window, or ``None`` while fewer than ``minimum_calls``."""
    slow_call_rate: float | None
    """Slow calls / calls in the window, or ``None`` while fewer than ``minimum_calls``."""
    consecutive_failures: int
    """Failures since the last success while CLOSED."""
    half_open_in_flight: int
    """Probe slots taken now (only while HALF_OPEN; else 0)."""
    half_open_successes: int
    """Successful probes so far in this HALF_OPEN spell (only while HALF_OPEN; else 0)."""
    opened_at: float | None
    """:func:`trio.current_time` when the breaker last opened, or ``None`` while CLOSED."""
    retry_after: float
    """Seconds until a probe would be admitted: 0 when calls are admitted now,
    ``math.inf`` while forced open."""


def _check_rate(name: str, value: object) -> float:
    rate = check_number(name, value, minimum=0.0, exclusive=True)
    if rate > 1.0:
        raise ValueError(f"{name} must be <= 1, got {value!r}")
    return rate


@final
@attrs.define(eq=False)
class _CountWindow:
    """The outcomes of the last *size* calls.

    Outcomes are numbered from 1 in each CLOSED spell (the breaker's
    ``_recorded``); the window holds numbers ``(number - size, number]``. Only
    failures and slow calls are stored, by number, so a success costs nothing
    here: the breaker's count of outcomes is the write. Memory is O(size).
    """

    size: int
    _failed: deque[int] = attrs.field(factory=deque, init=False)
    _slow: deque[int] = attrs.field(factory=deque, init=False)

    def add(self, number: int, now: float, failed: bool, slow: bool) -> None:
        """Record outcome *number* (a success needs nothing stored)."""
        if failed:
            self._failed.append(number)
        if slow:
            self._slow.append(number)

    def totals(self, number: int, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) in the window after outcome *number*."""
        oldest = number - self.size  # the newest number that has left the window
        failed, slow = self._failed, self._slow
        while failed and failed[0] <= oldest:
            failed.popleft()
        while slow and slow[0] <= oldest:
            slow.popleft()
        return min(number, self.size), len(failed), len(slow)

    def clear(self) -> None:
        self._failed.clear()
        self._slow.clear()


@final
@attrs.define(eq=False)
class _TimeWindow:
    """The outcomes of the calls of the last *duration* seconds, in fixed buckets.

    Bucket ``b`` holds calls that finished in ``[b * width, (b + 1) * width)``;
    at time ``now`` the window holds buckets ``b > floor(now / width) - buckets``.
    """

    duration: float
    _width: float = attrs.field(init=False)
    _calls: list[int] = attrs.field(init=False)
    _failures: list[int] = attrs.field(init=False)
    _slow: list[int] = attrs.field(init=False)
    _head: int | None = attrs.field(default=None, init=False)
    """The newest bucket number that slots have been cleared up to."""
    calls: int = attrs.field(default=0, init=False)
    failures: int = attrs.field(default=0, init=False)
    slow: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self._width = self.duration / _TIME_BUCKETS
        self.clear()

    def expire(self, now: float) -> None:
        """Drop the buckets that have slid out of the window by *now*."""
        bucket = math.floor(now / self._width)
        head = self._head
        if head is None:
            self._head = bucket
            return
        if bucket <= head:
            return
        # Buckets head+1 .. bucket become current; their slots held buckets that
        # are now too old. At most _TIME_BUCKETS slots need clearing.
        for number in range(max(head + 1, bucket - _TIME_BUCKETS + 1), bucket + 1):
            slot = number % _TIME_BUCKETS
            self.calls -= self._calls[slot]
            self.failures -= self._failures[slot]
            self.slow -= self._slow[slot]
            self._calls[slot] = self._failures[slot] = self._slow[slot] = 0
        self._head = bucket

    def add(self, number: int, now: float, failed: bool, slow: bool) -> None:
        """Record an outcome at *now*."""
        head = self._head
        if head is None or math.floor(now / self._width) > head:
            self.expire(now)
            head = self._head
            assert head is not None
        slot = head % _TIME_BUCKETS
        self._calls[slot] += 1
        self._failures[slot] += failed
        self._slow[slot] += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def totals(self, number: int, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) in the window at *now*."""
        head = self._head
        if head is None or math.floor(now / self._width) > head:
            self.expire(now)
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        self._calls = [0] * _TIME_BUCKETS
        self._failures = [0] * _TIME_BUCKETS
        self._slow = [0] * _TIME_BUCKETS
        self._head = None
        self.calls = self.failures = self.slow = 0


@final
@attrs.define(eq=False, slots=True)
class _Permit:
    """The right to make one call, handed out by :meth:`CircuitBreaker._admit`.

    Exactly one of :meth:`finish` must be called when the call ends.
    """

    _breaker: CircuitBreaker
    epoch: int
    """The breaker's epoch when admitted: a result from an older epoch is stale."""
    start: float
    probe: bool
    """Whether this call holds a half-open probe slot."""

    def finish(self, error: BaseException | None) -> None:
        """Record that the call returned (*error* ``None``) or raised *error*."""
        self._breaker._finish(self, error)


_CoroutineType = types.CoroutineType


@disable_ki_protection
async def _await_unprotected(coro: Awaitable[_T]) -> _T:
    """``await coro`` where a KeyboardInterrupt may land, as it may without a breaker.

    The breaker's own frames are KI-protected, and protection is inherited by
    the frames they call; this one frame turns it off again for the user's
    code. The caller creates *coro* (in a protected frame) and closes it if
    an interrupt lands here before it started, so that no "coroutine was never
    awaited" warning is left either.
    """
    return await coro


def _close_unstarted(coro: object) -> None:
    """Close *coro* if it is a coroutine (a no-op once it has run to its end)."""
    if type(coro) is _CoroutineType:
        coro.close()


def _to_closed() -> CircuitState:
    return CircuitState.CLOSED


@final
@attrs.define(eq=False, repr=False)
class CircuitBreaker:
    """Stop calling a failing service for a while, then probe it before trusting it again.

    Wrap calls to a service in the breaker. While the service is healthy the
    breaker is **closed** and counts outcomes. When failures reach the
    threshold it **opens**: every call is refused at once with
    :exc:`~trine.CircuitOpenError`, giving the service room to recover and
    your program a fast answer instead of a slow timeout. After
    *reset_timeout* seconds it is **half-open**: up to *half_open_max_calls*
    probe calls at a time go through; *success_threshold* successful probes
    close it, and any failed probe opens it again for another *reset_timeout*.

    ::

        breaker = trine.CircuitBreaker(name="api", failure_threshold=5, reset_timeout=30)

        response = await breaker.call(client.get, url)

        async with breaker:          # raises CircuitOpenError when refused
            response = await client.get(url)

        @breaker
        async def fetch(url: str) -> Response: ...

    An ``async with breaker:`` block may be left by another task than the
    one that entered it (an async generator holding the breaker across a
    ``yield`` is resumed or closed by whichever task iterates it): the
    block's permit is kept with the block, not with the task.

    **When it opens.** With only *failure_threshold*, after that many
    *consecutive* failures (a success resets the count). With *failure_rate*,
    when the share of failures among the calls in the window reaches it, once
    the window holds at least *minimum_calls*. The window is the last *window*
    calls (``window_type="count"``) or the calls that finished in the last
    *window* seconds (``window_type="time"``, kept in 20 buckets of
    ``window / 20`` seconds, so memory does not grow with traffic). With
    *slow_call_duration*, calls that take at least that long (on the Trio
    clock) are *slow*, and the breaker also opens when the share of slow calls
    in the window reaches *slow_call_rate*, in either mode.

    **What counts.** An exception matching *ignore* counts as nothing; one
    matching *record* (and not *ignore*) is a failure; any other exception,
    and a return, is a success. :exc:`trio.Cancelled` (and every other
    exception that is not an :exc:`Exception`) never counts: a cancelled
    probe gives its slot back. A *record* or *ignore* predicate that raises
    gives no verdict: the call counts as ignored (freeing its probe slot) and
    the predicate's exception reaches the caller, with the call's own
    exception as its ``__context__``.

    **Results that arrive late.** Each state change starts a new *epoch*. A
    call admitted in one epoch that finishes in another is counted in the
    lifetime statistics but does not touch the new state: a slow call started
    while closed cannot reopen a breaker that has since closed again, nor
    close a half-open one, nor take or free a probe slot it never held.

    **No background task.** The move from open to half-open is computed from
    :func:`trio.current_time` when the breaker is next used or its
    :attr:`state` is read, so the state-change callbacks for it run then.

    **State changes reach callbacks in order.** The callback and the hooks
    see every change start where the previous one ended. A change caused
    while they run (reading :attr:`state` once ``reset_timeout=0`` has
    passed, calling :meth:`reset`) is applied after they all return.

    **Not a failure of the service.** :exc:`trio.Cancelled` (and every
    other non-:exc:`Exception`) and ``NotAwaitableError`` (a function that
    turned out not to be async) are never counted as outcomes; a
    KeyboardInterrupt can land anywhere without leaking a permit or a slot.

    Args:
      name: shown in errors, statistics and hook events.
      failure_threshold: consecutive failures that open the breaker (used when
        *failure_rate* is ``None``).
      failure_rate: if given, open when failures / calls in the window reach
        this share, in ``(0, 1]``.
      window: the window's size: a number of calls (count) or seconds (time).
      window_type: ``"count"`` or ``"time"``.
      minimum_calls: rates are not judged until the window holds this many
        calls (a count window caps it at *window*).
      slow_call_duration: seconds from which a call is slow; ``None`` turns
        slow-call tracking off.
      slow_call_rate: the share of slow calls in the window that opens the
        breaker, in ``(0, 1]``. A slow probe counts as a failed probe.
      reset_timeout: seconds the breaker stays open before probing.
      half_open_max_calls: probes allowed in flight at once while half-open.
      success_threshold: successful probes that close the breaker.
      record: exceptions that count as failures: a type, a tuple of types, or
        a predicate ``(exc) -> bool``.
      ignore: exceptions that count as nothing; same forms; wins over *record*.
      on_state_change: a plain (not async) function ``(old, new)`` called
        synchronously on every state change, with :class:`CircuitState`
        members, before the hooks.
      hooks: callables given a :class:`~trine.CircuitStateChanged` on every
        state change and a :class:`~trine.CallRejected` on every refusal.

    Raises:
      TypeError, ValueError: for an invalid argument; a *record* or *ignore*
        class that is not an :exc:`Exception` (it would never match) and an
        async or generator *on_state_change* are TypeErrors.

    .. warning:: A probe that never finishes keeps its slot, and so the breaker
       half-open, for as long as it runs. Bound the calls you make through a
       breaker with a timeout (``Policy(timeout=...)`` puts one inside the
       breaker).
    """

    _name: str | None = attrs.field(default=None, kw_only=True)
    _failure_threshold: int = attrs.field(default=5, kw_only=True)
    _failure_rate: float | None = attrs.field(default=None, kw_only=True)
    _window: float = attrs.field(default=100, kw_only=True)
    _window_type: Literal["count", "time"] = attrs.field(default="count", kw_only=True)
    _minimum_calls: int = attrs.field(default=10, kw_only=True)
    _slow_call_duration: float | None = attrs.field(default=None, kw_only=True)
    _slow_call_rate: float = attrs.field(default=1.0, kw_only=True)
    _reset_timeout: float = attrs.field(default=30.0, kw_only=True)
    _half_open_max_calls: int = attrs.field(default=1, kw_only=True)
    _success_threshold: int = attrs.field(default=1, kw_only=True)
    _record: ExceptionFilter = attrs.field(default=(Exception,), kw_only=True)
    _ignore: ExceptionFilter = attrs.field(default=(), kw_only=True)
    _on_state_change: Callable[[CircuitState, CircuitState], object] | None = attrs.field(
        default=None, kw_only=True
    )
    _hooks: Iterable[Hook] | None = attrs.field(default=None, kw_only=True)

    # The time source of the synchronous core. Always trio.current_time in use;
    # the state-machine property test swaps in a plain function so it can drive
    # the core without a Trio run.
    _clock: Callable[[], float] = attrs.field(default=trio.current_time, init=False)
    _hook_tuple: tuple[Hook, ...] = attrs.field(init=False)
    _is_recorded: Callable[[BaseException], bool] = attrs.field(init=False)
    _is_ignored: Callable[[BaseException], bool] = attrs.field(init=False)
    _outcomes: _CountWindow | _TimeWindow = attrs.field(init=False)
    _minimum: int = attrs.field(init=False)
    _fast: bool = attrs.field(init=False)
    """Whether call() may take the closed fast path (a count window, no slow calls)."""
    _judge_at: int = attrs.field(init=False)
    """The outcome number at which a success that is not slow may trip a count
    window: the window reaching minimum_calls, when rates are judged; else 0
    (never). Later successes only lower the rates of a count window."""
    _judge_successes: bool = attrs.field(init=False)
    """Whether every success must be judged: in a time window, old calls
    leaving it can raise the rates at any time."""
    _state: CircuitState = attrs.field(default=CircuitState.CLOSED, init=False)
    _epoch: int = attrs.field(default=0, init=False)
    _closed_epoch: int = attrs.field(default=-1, init=False)
    """The epoch while CLOSED with the fast path on, else -1: the fast path's one check."""
    _opened_at: float | None = attrs.field(default=None, init=False)
    _reopen_at: float = attrs.field(default=0.0, init=False)
    """``opened_at + reset_timeout`` while OPEN: when a probe is admitted."""
    _recorded: int = attrs.field(default=0, init=False)
    """Successes and failures recorded in this CLOSED spell: the outcomes' numbers."""
    _run: int = attrs.field(default=0, init=False)
    _run_end: int = attrs.field(default=0, init=False)
    """``_run`` failures in a row ended with outcome number ``_run_end``; the
    consecutive failures are ``_run`` while no outcome came after it."""
    _half_open_in_flight: int = attrs.field(default=0, init=False)
    _half_open_successes: int = attrs.field(default=0, init=False)
    _calls: int = attrs.field(default=0, init=False)
    _successes: int = attrs.field(default=0, init=False)
    _failures: int = attrs.field(default=0, init=False)
    _slow_calls: int = attrs.field(default=0, init=False)
    _ignored: int = attrs.field(default=0, init=False)
    _cancelled: int = attrs.field(default=0, init=False)
    _rejections: int = attrs.field(default=0, init=False)
    _notifying: bool = attrs.field(default=False, init=False)
    """Whether the callbacks of a state change are running (see _change)."""
    _deferred: deque[Callable[[], CircuitState | None]] = attrs.field(factory=deque, init=False)
    # Permits of `async with breaker:` blocks, by the frame the block is in (a
    # list: blocks may nest), with the task that entered each; the fast path's
    # permit is the epoch that admitted it. See __aenter__ for why frames.
    _held: dict[types.FrameType, list[tuple[_Permit | int, trio.lowlevel.Task]]] = attrs.field(
        factory=dict, init=False
    )
    # state_value, made when first asked for (None: nobody has, and nothing updates it)
    _state_view: ReadOnlyValue[CircuitState] | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if self._name is not None and not isinstance(self._name, str):
            raise TypeError(f"name must be a str or None, got {self._name!r}")
        check_int("failure_threshold", self._failure_threshold)
        if self._failure_rate is not None:
            self._failure_rate = _check_rate("failure_rate", self._failure_rate)
        check_choice("window_type", self._window_type, ("count", "time"))
        if self._window_type == "count":
            check_int("window", self._window)
        else:
            self._window = check_number("window", self._window, minimum=0.0, exclusive=True)
        check_int("minimum_calls", self._minimum_calls)
        if self._slow_call_duration is not None:
            duration = check_number(
                "slow_call_duration", self._slow_call_duration, minimum=0.0, exclusive=True
            )
            self._slow_call_duration = duration
        self._slow_call_rate = _check_rate("slow_call_rate", self._slow_call_rate)
        self._reset_timeout = check_number("reset_timeout", self._reset_timeout)
        check_int("half_open_max_calls", self._half_open_max_calls)
        check_int("success_threshold", self._success_threshold)
        # trio.Cancelled and KeyboardInterrupt never count, so a filter naming
        # them would silently never match.
        self._is_recorded = exception_matcher("record", self._record, only_exceptions=True)
        self._is_ignored = exception_matcher("ignore", self._ignore, only_exceptions=True)
        if self._on_state_change is not None:
            check_sync_callable("on_state_change", self._on_state_change)
        self._hook_tuple = check_hooks(self._hooks)
        if self._window_type == "count":
            size = int(self._window)
            self._outcomes = _CountWindow(size)
            # As Resilience4j does: a count window can never hold more than its size.
            self._minimum = min(self._minimum_calls, size)
        else:
            self._outcomes = _TimeWindow(self._window)
            self._minimum = self._minimum_calls
        self._fast = self._window_type == "count" and self._slow_call_duration is None
        rates = self._failure_rate is not None or self._slow_call_duration is not None
        self._judge_at = self._minimum if rates else 0
        self._judge_successes = rates and self._window_type == "time"
        self._closed_epoch = self._epoch if self._fast else -1
        if _created.watchers:
            self._hook_tuple = _created.announce(self, self._hook_tuple)

    # ---------------------------------------------------------- configuration

    @property
    def name(self) -> str | None:
        """The breaker's name, shown in errors, statistics and hook events."""
        return self._name

    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that open the breaker (without *failure_rate*)."""
        return self._failure_threshold

    @property
    def failure_rate(self) -> float | None:
        """The failure share in the window that opens the breaker, if rate-based."""
        return self._failure_rate

    @property
    def window(self) -> float:
        """The window's size: calls (count window) or seconds (time window)."""
        return self._window

    @property
    def window_type(self) -> Literal["count", "time"]:
        """``"count"`` or ``"time"``."""
        return self._window_type

    @property
    def minimum_calls(self) -> int:
        """Calls the window must hold before rates are judged (as given)."""
        return self._minimum_calls

    @property
    def slow_call_duration(self) -> float | None:
        """Seconds from which a call is slow, or ``None``."""
        return self._slow_call_duration

    @property
    def slow_call_rate(self) -> float:
        """The slow-call share in the window that opens the breaker."""
        return self._slow_call_rate

    @property
    def reset_timeout(self) -> float:
        """Seconds the breaker stays open before probing."""
        return self._reset_timeout

    @property
    def half_open_max_calls(self) -> int:
        """Probes allowed in flight at once while half-open."""
        return self._half_open_max_calls

    @property
    def success_threshold(self) -> int:
        """Successful probes that close a half-open breaker."""
        return self._success_threshold

    @property
    def record(self) -> ExceptionFilter:
        """What counts as a failure, as given."""
        return self._record

    @property
    def ignore(self) -> ExceptionFilter:
        """What counts as nothing, as given."""
        return self._ignore

    @property
    def on_state_change(self) -> Callable[[CircuitState, CircuitState], object] | None:
        """The state-change callback, if any."""
        return self._on_state_change

    def __repr__(self) -> str:
        # The stored state, without reading the clock: a repr must work anywhere
        # (outside trio.run too) and must not run state-change callbacks.
        name = "" if self._name is None else f" {self._name!r}"
        return f"<trine.CircuitBreaker{name} {self._state.value} at {id(self):#x}>"

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> CircuitState:
        """The state now. Reading it moves an open breaker whose reset timeout
        has passed to half-open (and runs the state-change callbacks)."""
        self._refresh()
        return self._state

    @property
    def state_value(self) -> ReadOnlyValue[CircuitState]:
        """The state as a read-only :class:`trio_util.AsyncValue`, to wait on::

            await breaker.state_value.wait_value(trine.CircuitState.CLOSED)

        It changes when :attr:`state` does, before the state-change callbacks
        run. An open breaker moves to half-open only when a call (or a read of
        :attr:`state`, or of this attribute) finds its reset timeout passed: a
        breaker has no timer of its own, so waiting for half-open or closed
        needs calls that probe.
        """
        self._refresh()
        view = self._state_view
        if view is None:
            view = self._state_view = ReadOnlyValue(self._state, "state_value")
        return view

    def _refresh(self) -> None:
        if self._state is CircuitState.OPEN:
            self._change(self._half_open_if_due)

    def _half_open_if_due(self) -> CircuitState | None:
        if self._state is CircuitState.OPEN and self._clock() >= self._reopen_at:
            return CircuitState.HALF_OPEN
        return None

    @enable_ki_protection
    def _change(self, decide: Callable[[], CircuitState | None]) -> None:
        """Enter the state *decide* returns (``None``: stay), one change at a time.

        While the callbacks of a change run, a change they cause (reading
        :attr:`state` once the reset timeout has passed, :meth:`reset`, ...)
        is deferred: its *decide* runs once they return, against the state
        then. So every callback sees each change start where the last ended.
        If a callback raises, the changes deferred by then are dropped and the
        error propagates.
        """
        if self._notifying:
            self._deferred.append(decide)
            return
        new = decide()
        if new is None:
            return
        try:
            self._enter(new)
            while self._deferred:
                new = self._deferred.popleft()()
                if new is not None:
                    self._enter(new)
        finally:
            self._notifying = False
            self._deferred.clear()

    def _enter(self, new: CircuitState) -> None:
        """Enter *new*: a new epoch, a clean slate, then the callbacks."""
        old = self._state
        self._state = new
        self._epoch += 1
        self._closed_epoch = self._epoch if new is CircuitState.CLOSED and self._fast else -1
        self._outcomes.clear()
        self._recorded = self._run = self._run_end = 0
        self._half_open_in_flight = 0
        self._half_open_successes = 0
        if new is CircuitState.OPEN or new is CircuitState.FORCED_OPEN:
            self._opened_at = self._clock()
            # trine.testing.no_waits() makes the reset timeout take no time.
            self._reopen_at = self._opened_at + deliberate(self._reset_timeout)
        elif new is CircuitState.CLOSED:
            self._opened_at = None
        # State is consistent before any user code runs, so callbacks may read it.
        if old is not new:
            if self._state_view is not None:
                self._state_view._set(new)
            self._notifying = True
            if self._on_state_change is not None:
                check_sync_result("on_state_change", self._on_state_change(old, new))
            if self._hook_tuple:
                call_hooks(self._hook_tuple, CircuitStateChanged(self._name, old, new))
            self._notifying = False

    def _forced_open_unless_forced(self) -> CircuitState | None:
        return None if self._state is CircuitState.FORCED_OPEN else CircuitState.FORCED_OPEN

    def force_open(self) -> None:
        """Reject every call from now on, until :meth:`reset`.

        The breaker moves to :attr:`CircuitState.FORCED_OPEN`, where the reset
        timeout does not apply. Calls in flight finish normally; their outcomes
        are not counted towards any state.
        """
        self._change(self._forced_open_unless_forced)

    def reset(self) -> None:
        """Close the breaker and forget every outcome in the window.

        Works from any state. Calls in flight finish normally; their outcomes
        are not counted towards the fresh window. Lifetime statistics are kept.
        """
        self._change(_to_closed)

    def _retry_after(self) -> float:
        """Seconds until a probe is admitted, never short: ``now + retry_after >= reopen``.

        ``reopen - now`` can round down, so that sleeping it wakes one float
        step before the probe is due (opened at 0.1 with reset_timeout=3 and
        refused at 0.30000000000000004: 0.30000000000000004 + 2.8 is
        3.0999999999999996). If it does, it is one step too short (the
        rounding error is under half a step), so the next float up is enough.
        """
        state = self._state
        if state is CircuitState.OPEN:
            now = self._clock()
            reopen = self._reopen_at
            if now >= reopen:
                return 0.0
            wait = reopen - now
            if now + wait < reopen:
                wait = math.nextafter(wait, math.inf)
            return wait
        if state is CircuitState.FORCED_OPEN:
            return math.inf
        return 0.0

    @enable_ki_protection
    def statistics(self) -> CircuitBreakerStatistics:
        """Return a fresh :class:`CircuitBreakerStatistics` snapshot.

        Like reading :attr:`state`, this applies a reset timeout that has
        passed (moving OPEN to HALF_OPEN and running the callbacks).
        """
        self._refresh()
        # Count windows do not age, so reading one needs no clock (and works
        # outside trio.run).
        now = self._clock() if self._window_type == "time" else 0.0
        calls, failures, slow = self._outcomes.totals(self._recorded, now)
        enough = calls >= self._minimum and calls > 0
        return CircuitBreakerStatistics(
            state=self._state,
            calls=self._calls,
            successes=self._successes,
            failures=self._failures,
            slow_calls=self._slow_calls,
            ignored=self._ignored,
            cancelled=self._cancelled,
            rejections=self._rejections,
            in_flight=self._calls
            - self._successes
            - self._failures
            - self._ignored
            - self._cancelled,
            window_calls=calls,
            failure_rate=failures / calls if enough else None,
            slow_call_rate=slow / calls if enough else None,
            consecutive_failures=self._consecutive_failures(),
            half_open_in_flight=self._half_open_in_flight,
            half_open_successes=self._half_open_successes,
            opened_at=self._opened_at,
            retry_after=self._retry_after(),
        )

    def _consecutive_failures(self) -> int:
        return self._run if self._run_end == self._recorded else 0

    # -------------------------------------------------------- synchronous core

    @enable_ki_protection
    def _admit(self) -> _Permit:
        """Take the right to make one call now, or raise :exc:`CircuitOpenError`.

        Never awaits, so the check and the taking of a probe slot are one
        atomic step under Trio.
        """
        if self._state is CircuitState.OPEN:
            self._change(self._half_open_if_due)
        state = self._state
        if state is CircuitState.CLOSED:
            probe = False
        elif state is CircuitState.HALF_OPEN and (
            self._half_open_in_flight < self._half_open_max_calls
        ):
            self._half_open_in_flight += 1
            probe = True
        else:
            self._rejections += 1
            error = CircuitOpenError(self._name, self._retry_after(), state.value)
            if self._hook_tuple:
                call_hooks(self._hook_tuple, CallRejected("breaker", self._name, error))
            raise error
        self._calls += 1
        # Only slow-call tracking needs the start time; skip the clock read otherwise.
        start = self._clock() if self._slow_call_duration is not None else 0.0
        return _Permit(self, self._epoch, start, probe)

    def _classify(self, error: BaseException | None) -> int:
        if error is None:
            return _SUCCESS
        if not isinstance(error, Exception):
            return _CANCELLED
        if isinstance(error, NotAwaitableError):
            return _NOT_AWAITABLE
        if self._is_ignored(error):
            return _IGNORED
        if self._is_recorded(error):
            return _FAILURE
        return _SUCCESS

    @enable_ki_protection
    def _finish(self, permit: _Permit, error: BaseException | None) -> None:
        """Record how an admitted call ended (the other half of :meth:`_admit`)."""
        kind = _SUCCESS
        if error is not None:
            try:
                kind = self._classify(error)
            except BaseException:
                # A record= or ignore= predicate raised: it gave no verdict, so
                # the call counts as ignored and gives back what it took; the
                # predicate's error goes on to the caller (its context is the
                # call's error).
                self._finish_unjudged(permit, _IGNORED)
                raise
        if kind >= _IGNORED:
            self._finish_unjudged(permit, kind)
            return
        current = permit.epoch == self._epoch
        duration = self._slow_call_duration
        now = self._clock() if duration is not None or self._window_type == "time" else 0.0
        slow = duration is not None and now - permit.start >= duration
        failed = kind == _FAILURE
        if failed:
            self._failures += 1
        else:
            self._successes += 1
        if slow:
            self._slow_calls += 1
        if not current:
            return  # stale: admitted before the last state change
        if permit.probe:
            self._half_open_in_flight -= 1
            if failed or slow:
                self._move(permit.epoch, CircuitState.OPEN)
            else:
                self._half_open_successes += 1
                if self._half_open_successes >= self._success_threshold:
                    self._move(permit.epoch, CircuitState.CLOSED)
            return
        # CLOSED (the only other state that admits calls).
        number = self._recorded = self._recorded + 1
        if failed:
            self._run = self._run + 1 if self._run_end == number - 1 else 1
            self._run_end = number
            if self._failure_rate is None and self._run >= self._failure_threshold:
                self._move(permit.epoch, CircuitState.OPEN)
                return
        window = self._outcomes
        window.add(number, now, failed, slow)
        if (
            failed or slow or number == self._judge_at or self._judge_successes
        ) and self._rates_trip(*window.totals(number, now)):
            self._move(permit.epoch, CircuitState.OPEN)

    def _finish_unjudged(self, permit: _Permit, kind: int) -> None:
        """Finish a call that is not an outcome of the service: count it, free its probe slot."""
        if kind == _NOT_AWAITABLE:
            self._calls -= 1  # never a call of the service: as if never admitted
        elif kind == _CANCELLED:
            self._cancelled += 1
        else:
            self._ignored += 1
        if permit.probe and permit.epoch == self._epoch:
            self._half_open_in_flight -= 1

    @enable_ki_protection
    def _finish_closed(self, epoch: int, error: BaseException | None) -> None:
        """Record how a call the fast path admitted in *epoch* ended."""
        if error is not None:
            self._finish(_Permit(self, epoch, 0.0, False), error)
            return
        self._successes += 1
        if self._closed_epoch == epoch:  # else stale: admitted before a change
            number = self._recorded = self._recorded + 1
            if number == self._judge_at:
                self._judge_success(number)

    def _judge_success(self, number: int) -> None:
        """Open the breaker if the fast path's success *number* filled the window to a trip."""
        if self._rates_trip(*self._outcomes.totals(number, 0.0)):
            self._move(self._epoch, CircuitState.OPEN)

    def _rates_trip(self, calls: int, failures: int, slow: int) -> bool:
        """Whether a window holding these counts opens the breaker by its rates."""
        if calls < self._minimum:
            return False
        # Compare the quotient, as statistics() reports it (0.3 * 10 > 3.0 in floats).
        return (self._failure_rate is not None and failures / calls >= self._failure_rate) or (
            self._slow_call_duration is not None and slow / calls >= self._slow_call_rate
        )

    def _move(self, epoch: int, new: CircuitState) -> None:
        """Enter *new*, unless a change deferred before this one has left *epoch*."""
        self._change(lambda: new if self._epoch == epoch else None)

    # ------------------------------------------------------------ async front

    @enable_ki_protection
    async def call(self, fn: Callable[[*_Ts], Awaitable[_T]], *args: *_Ts) -> _T:
        """Call ``await fn(*args)`` through the breaker and return its result.

        Raises:
          CircuitOpenError: at once, without calling *fn*, if the breaker
            refuses the call.
          NotAwaitableError: a :exc:`TypeError`, if *fn* returned something
            that cannot be awaited (it is not an async function); the breaker
            does not count it.
          Exception: whatever *fn* raises, unchanged, after counting it.

        A cancelled caller is stopped (with :exc:`trio.Cancelled`) before it
        can take a probe slot. A refusal is a full Trio checkpoint, so a loop
        of refused calls cannot starve other tasks; an admitted call adds no
        schedule point of its own beyond those *fn* makes.
        """
        given: object = fn  # typed callers always pass a callable; untyped ones may not
        if not callable(given):  # e.g. a coroutine object: the helper says what to do
            check_async_callable("fn", given)
        epoch = self._closed_epoch
        if epoch >= 0:
            # The fast path: CLOSED, so admitted (there is no slot to take, so
            # no cancellation check either); no permit object, and a success
            # is one count and one window write.
            self._calls += 1
            coro = None
            try:
                coro = fn(*args)
                if type(coro) is not _CoroutineType:  # one comparison on the hot path
                    coro = check_awaitable("fn", coro)
                result = await _await_unprotected(coro)
            except BaseException as error:
                _close_unstarted(coro)
                self._finish(_Permit(self, epoch, 0.0, False), error)
                raise
            # _finish_closed(epoch, None), inline: this is the hot path.
            self._successes += 1
            if self._closed_epoch == epoch:  # else stale: admitted before a change
                number = self._recorded = self._recorded + 1
                if number == self._judge_at:
                    self._judge_success(number)
            return result
        await checkpoint_if_cancelled()  # so a cancelled task takes no probe slot
        try:
            permit = self._admit()
        except CircuitOpenError:
            await cancel_shielded_checkpoint()
            raise
        coro = None
        try:
            coro = fn(*args)
            if type(coro) is not _CoroutineType:
                coro = check_awaitable("fn", coro)
            result = await _await_unprotected(coro)
        except BaseException as error:
            _close_unstarted(coro)
            self._finish(permit, error)
            raise
        self._finish(permit, None)
        return result

    @enable_ki_protection
    async def __aenter__(self) -> None:
        """Enter a guarded block; raises :exc:`CircuitOpenError` if refused.

        As for :meth:`call`, a cancelled task is stopped before it can take a
        probe slot, and a refusal is a full checkpoint.
        """
        permit: _Permit | int
        epoch = self._closed_epoch
        if epoch >= 0:  # the fast path, as in call(): the permit is the epoch
            self._calls += 1
            permit = epoch
        else:
            await checkpoint_if_cancelled()
            try:
                permit = self._admit()
            except CircuitOpenError:
                await cancel_shielded_checkpoint()
                raise
        # The permit is kept under the frame of the `async with` (the frame
        # awaiting us), which its __aexit__ is awaited from too, whichever
        # task runs it: an async generator holding the breaker across a
        # yield may be resumed or closed by another task. The task is kept
        # for exits from another frame (an AsyncExitStack).
        frame = sys._getframe(1)
        entry = (permit, trio.lowlevel.current_task())
        held = self._held.get(frame)
        if held is None:
            self._held[frame] = [entry]
        else:
            held.append(entry)

    @enable_ki_protection
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        frame = sys._getframe(1)
        held = self._held.get(frame)
        if held is not None:
            permit = held.pop()[0]
            if not held:
                del self._held[frame]
        else:
            permit = self._permit_entered_elsewhere()
        if isinstance(permit, int):
            self._finish_closed(permit, exc_value)
        else:
            self._finish(permit, exc_value)

    def _permit_entered_elsewhere(self) -> _Permit | int:
        """Take the permit of a block left from a frame other than the one that entered it.

        An ``AsyncExitStack`` enters and leaves in frames of its own; the
        permit is then the one this task entered last, or failing that (the
        stack left from another task) the one entered last by anyone, so
        that every exit still gives back exactly one permit.
        """
        task = trio.lowlevel.current_task()
        for frame, held in reversed(self._held.items()):
            for index in range(len(held) - 1, -1, -1):
                if held[index][1] is task:
                    return self._take_held(frame, held, index)
        if not self._held:
            raise RuntimeError("async with breaker: left without having been entered")
        frame, held = next(reversed(self._held.items()))
        return self._take_held(frame, held, len(held) - 1)

    def _take_held(
        self,
        frame: types.FrameType,
        held: list[tuple[_Permit | int, trio.lowlevel.Task]],
        index: int,
    ) -> _Permit | int:
        permit = held.pop(index)[0]
        if not held:
            del self._held[frame]
        return permit

    def __call__(self, fn: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
        """Decorate an async function so that every call goes through the breaker.

        The wrapper keeps *fn*'s name and docstring; keyword arguments are
        passed through. A call of it is ``await breaker.call(fn, *args)``.
        """
        check_async_callable("fn", fn)
        call = self.call

        # Protected like call(), so a Ctrl-C cannot land between creating
        # call()'s coroutine and awaiting it (fn still runs unprotected).
        @functools.wraps(fn)
        @enable_ki_protection
        async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            if kwargs:
                return await call(functools.partial(fn, **kwargs), *args)
            return await call(fn, *args)

        return guarded
