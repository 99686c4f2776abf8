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

The breaker's decisions are made by a small synchronous core
(:meth:`CircuitBreaker._admit` hands out a :class:`_Permit`, and
``_Permit.finish`` records how the call ended). The async front ends
(``call``, ``async with``, the decorator) only wrap the user's function in it,
so admission is atomic under Trio: the permit is taken before the first
``await``, and no two tasks can both see a free half-open slot.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar, TypeVarTuple, final

import attrs
import trio

from ._errors import CircuitOpenError
from ._hooks import CallRejected, CircuitStateChanged, Hook, call_hooks, check_hooks
from ._util import (
    ExceptionFilter,
    check_async_callable,
    check_choice,
    check_int,
    check_number,
    exception_matcher,
)

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
    """The outcomes of the last *size* calls: a ring buffer with running sums."""

    size: int
    _ring: list[int] = attrs.field(init=False)
    _next: int = attrs.field(default=0, init=False)
    calls: int = attrs.field(default=0, init=False)
    failures: int = attrs.field(default=0, init=False)
    slow: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self._ring = [0] * self.size

    def add(self, now: float, failed: bool, slow: bool) -> None:
        # Each slot holds bit 0 = failed, bit 1 = slow, bit 2 = occupied.
        old = self._ring[self._next]
        if old:
            self.calls -= 1
            self.failures -= old & 1
            self.slow -= (old >> 1) & 1
        self._ring[self._next] = 4 | (2 if slow else 0) | (1 if failed else 0)
        self._next = (self._next + 1) % self.size
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def clear(self) -> None:
        self._ring = [0] * self.size
        self._next = 0
        self.calls = self.failures = self.slow = 0


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

    def add(self, now: float, failed: bool, slow: bool) -> None:
        self.expire(now)
        assert self._head is not None
        slot = self._head % _TIME_BUCKETS
        self._calls[slot] += 1
        self._failures[slot] += failed
        self._slow[slot] += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

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
    probe gives its slot back.

    **Results that arrive late.** Each state change starts a new *epoch*. A
    call admitted in one epoch that finishes in another is counted in the
    lifetime statistics but does not touch the new state: a slow call started
    while closed cannot reopen a breaker that has since closed again, nor
    close a half-open one, nor take or free a probe slot it never held.

    **No background task.** The move from open to half-open is computed from
    :func:`trio.current_time` when the breaker is next used or its
    :attr:`state` is read, so the state-change callbacks for it run then.

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
      on_state_change: a function ``(old, new)`` called synchronously on every
        state change, with :class:`CircuitState` members.
      hooks: callables given a :class:`~trine.CircuitStateChanged` on every
        state change and a :class:`~trine.CallRejected` on every refusal.

    Raises:
      TypeError, ValueError: for an invalid argument.

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
    _state: CircuitState = attrs.field(default=CircuitState.CLOSED, init=False)
    _epoch: int = attrs.field(default=0, init=False)
    _opened_at: float | None = attrs.field(default=None, init=False)
    _consecutive_failures: int = attrs.field(default=0, init=False)
    _half_open_in_flight: int = attrs.field(default=0, init=False)
    _half_open_successes: int = attrs.field(default=0, init=False)
    _calls: int = attrs.field(default=0, init=False)
    _successes: int = attrs.field(default=0, init=False)
    _failures: int = attrs.field(default=0, init=False)
    _slow_calls: int = attrs.field(default=0, init=False)
    _ignored: int = attrs.field(default=0, init=False)
    _cancelled: int = attrs.field(default=0, init=False)
    _rejections: int = attrs.field(default=0, init=False)
    # Permits of `async with breaker:` blocks, per task (a list: blocks may nest).
    _held: dict[trio.lowlevel.Task, list[_Permit]] = attrs.field(factory=dict, init=False)

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
        self._is_recorded = exception_matcher("record", self._record)
        self._is_ignored = exception_matcher("ignore", self._ignore)
        if self._on_state_change is not None and not callable(self._on_state_change):
            raise TypeError(
                f"on_state_change must be callable or None, got {self._on_state_change!r}"
            )
        self._hook_tuple = check_hooks(self._hooks)
        if self._window_type == "count":
            size = int(self._window)
            self._outcomes = _CountWindow(size)
            # As Resilience4j does: a count window can never hold more than its size.
            self._minimum = min(self._minimum_calls, size)
        else:
            self._outcomes = _TimeWindow(self._window)
            self._minimum = self._minimum_calls

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

    def _refresh(self) -> None:
        if self._state is CircuitState.OPEN:
            assert self._opened_at is not None
            if self._clock() >= self._opened_at + self._reset_timeout:
                self._transition(CircuitState.HALF_OPEN)

    def _transition(self, new: CircuitState) -> None:
        """Enter *new*: a new epoch, a clean slate, then the callbacks."""
        old = self._state
        self._state = new
        self._epoch += 1
        self._outcomes.clear()
        self._consecutive_failures = 0
        self._half_open_in_flight = 0
        self._half_open_successes = 0
        if new is CircuitState.OPEN or new is CircuitState.FORCED_OPEN:
            self._opened_at = self._clock()
        elif new is CircuitState.CLOSED:
            self._opened_at = None
        # State is consistent before any user code runs, so callbacks may read it.
        if old is not new:
            if self._on_state_change is not None:
                self._on_state_change(old, new)
            if self._hook_tuple:
                call_hooks(self._hook_tuple, CircuitStateChanged(self._name, old, new))

    def force_open(self) -> None:
        """Reject every call from now on, until :meth:`reset`.

        The breaker moves to :attr:`CircuitState.FORCED_OPEN`, where the reset
        timeout does not apply. Calls in flight finish normally; their outcomes
        are not counted towards any state.
        """
        if self._state is not CircuitState.FORCED_OPEN:
            self._transition(CircuitState.FORCED_OPEN)

    def reset(self) -> None:
        """Close the breaker and forget every outcome in the window.

        Works from any state. Calls in flight finish normally; their outcomes
        are not counted towards the fresh window. Lifetime statistics are kept.
        """
        self._transition(CircuitState.CLOSED)

    def _retry_after(self) -> float:
        state = self._state
        if state is CircuitState.OPEN:
            assert self._opened_at is not None
            return max(0.0, self._opened_at + self._reset_timeout - self._clock())
        if state is CircuitState.FORCED_OPEN:
            return math.inf
        return 0.0

    def statistics(self) -> CircuitBreakerStatistics:
        """Return a fresh :class:`CircuitBreakerStatistics` snapshot.

        Like reading :attr:`state`, this applies a reset timeout that has
        passed (moving OPEN to HALF_OPEN and running the callbacks).
        """
        self._refresh()
        window = self._outcomes
        if isinstance(window, _TimeWindow):  # count windows do not age
            window.expire(self._clock())
        enough = window.calls >= self._minimum and window.calls > 0
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
            window_calls=window.calls,
            failure_rate=window.failures / window.calls if enough else None,
            slow_call_rate=window.slow / window.calls if enough else None,
            consecutive_failures=self._consecutive_failures,
            half_open_in_flight=self._half_open_in_flight,
            half_open_successes=self._half_open_successes,
            opened_at=self._opened_at,
            retry_after=self._retry_after(),
        )

    # -------------------------------------------------------- synchronous core

    def _admit(self) -> _Permit:
        """Take the right to make one call now, or raise :exc:`CircuitOpenError`.

        Never awaits, so the check and the taking of a probe slot are one
        atomic step under Trio.
        """
        self._refresh()
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
        if self._is_ignored(error):
            return _IGNORED
        if self._is_recorded(error):
            return _FAILURE
        return _SUCCESS

    async def _enter(self) -> _Permit:
        """Admit a call or raise :exc:`CircuitOpenError`; either way a checkpoint.

        Cancellation is checked before admission, so a cancelled task never
        takes a probe slot; a refusal still yields, so a loop of refused calls
        cannot starve other tasks.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            return self._admit()
        except CircuitOpenError:
            await trio.lowlevel.cancel_shielded_checkpoint()
            raise

    def _finish(self, permit: _Permit, error: BaseException | None) -> None:
        """Record how an admitted call ended (the other half of :meth:`_admit`)."""
        kind = self._classify(error)
        if kind == _CANCELLED:
            self._cancelled += 1
        elif kind == _IGNORED:
            self._ignored += 1
        if kind >= _IGNORED:
            if permit.probe and permit.epoch == self._epoch:
                self._half_open_in_flight -= 1
            return
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
        if permit.epoch != self._epoch:
            return  # stale: admitted before the last state change
        if permit.probe:
            self._half_open_in_flight -= 1
            if failed or slow:
                self._transition(CircuitState.OPEN)
            else:
                self._half_open_successes += 1
                if self._half_open_successes >= self._success_threshold:
                    self._transition(CircuitState.CLOSED)
            return
        # CLOSED (the only other state that admits calls).
        window = self._outcomes
        window.add(now, failed, slow)
        if failed:
            self._consecutive_failures += 1
        else:
            self._consecutive_failures = 0
        if self._failure_rate is None:
            trip = self._consecutive_failures >= self._failure_threshold
        else:
            # Compare the quotient, as statistics() reports it (0.3 * 10 > 3.0 in floats).
            trip = window.calls >= self._minimum and (
                window.failures / window.calls >= self._failure_rate
            )
        if not trip and self._slow_call_duration is not None:
            trip = window.calls >= self._minimum and (
                window.slow / window.calls >= self._slow_call_rate
            )
        if trip:
            self._transition(CircuitState.OPEN)

    # ------------------------------------------------------------ async front

    async def call(self, fn: Callable[[*_Ts], Awaitable[_T]], *args: *_Ts) -> _T:
        """Call ``await fn(*args)`` through the breaker and return its result.

        Raises:
          CircuitOpenError: at once, without calling *fn*, if the breaker
            refuses the call.
          Exception: whatever *fn* raises, unchanged, after counting it.

        A cancelled caller is stopped (with :exc:`trio.Cancelled`) before it
        can take a probe slot. A refusal is a full Trio checkpoint, so a loop
        of refused calls cannot starve other tasks; an admitted call adds no
        schedule point of its own beyond those *fn* makes.
        """
        given: object = fn  # typed callers always pass a callable; untyped ones may not
        if not callable(given):  # e.g. a coroutine object: the helper says what to do
            check_async_callable("fn", given)
        permit = await self._enter()
        try:
            result = await fn(*args)
        except BaseException as exc:
            self._finish(permit, exc)
            raise
        self._finish(permit, None)
        return result

    async def __aenter__(self) -> None:
        """Enter a guarded block; raises :exc:`CircuitOpenError` if refused."""
        permit = await self._enter()
        task = trio.lowlevel.current_task()
        held = self._held.get(task)
        if held is None:
            self._held[task] = [permit]
        else:
            held.append(permit)

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
        self._finish(permit, exc_value)

    def __call__(self, fn: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
        """Decorate an async function so that every call goes through the breaker."""
        check_async_callable("fn", fn)

        @functools.wraps(fn)
        async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            permit = await self._enter()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                self._finish(permit, exc)
                raise
            self._finish(permit, None)
            return result

        return guarded
