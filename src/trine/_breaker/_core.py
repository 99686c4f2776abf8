"""The synchronous core of a :class:`~trine.CircuitBreaker`: its fields, state machine and books.

``_admit`` hands out a :class:`_Permit` and ``_finish`` records how the call
ended; a state change goes through ``_change``, which applies one change at
a time, so callbacks always see a chain of changes in order. Nothing here
awaits, so admission is atomic under Trio: the async front ends
(:mod:`._breaker`) take the permit before their first ``await``, and no two
tasks can both see a free half-open slot.

:class:`_BreakerCore` is the base of :class:`~trine.CircuitBreaker` (not a
separate object), so the front ends' fast path reads the same attributes it
always did, with no call in between.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Literal, final

import attrs
import trio
from trio.lowlevel import enable_ki_protection

from .. import _created
from .._errors import CircuitOpenError
from .._hooks import CallRejected, CircuitStateChanged, Hook, call_hooks, check_hooks
from .._util import (
    ExceptionFilter,
    NotAwaitableError,
    check_choice,
    check_int,
    check_number,
    check_sync_callable,
    check_sync_result,
    check_time_width,
    exception_matcher,
)
from .._values import ReadOnlyValue
from .._waits import deliberate
from ._state import CircuitState
from ._windows import _TIME_BUCKETS, _CountWindow, _TimeWindow

__all__ = ["_BreakerCore", "_Permit"]

# How a finished call is classified. Kept as small ints: this is the hot path.
_SUCCESS = 0
_FAILURE = 1
_IGNORED = 2
_CANCELLED = 3  # trio.Cancelled or any other BaseException that is not an Exception
_NOT_AWAITABLE = 4  # fn was not an async function: a programming error, never an outcome


def _check_rate(name: str, value: object) -> float:
    rate = check_number(name, value, minimum=0.0, exclusive=True)
    if rate > 1.0:
        raise ValueError(f"{name} must be <= 1, got {value!r}")
    return rate


@final
@attrs.define(eq=False, slots=True)
class _Permit:
    """The right to make one call, handed out by :meth:`CircuitBreaker._admit`.

    Exactly one of :meth:`finish` must be called when the call ends.
    """

    _breaker: _BreakerCore
    epoch: int
    """The breaker's epoch when admitted: a result from an older epoch is stale."""
    start: float
    probe: bool
    """Whether this call holds a half-open probe slot."""

    def finish(self, error: BaseException | None) -> None:
        """Record that the call returned (*error* ``None``) or raised *error*."""
        self._breaker._finish(self, error)


@attrs.define(eq=False, repr=False)
class _BreakerCore:
    """What a :class:`~trine.CircuitBreaker` knows, and its synchronous decisions.

    The fields are the breaker's arguments (validated here) and its state;
    the public class adds the documentation, the read-only properties and
    the async front ends.
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
            window = check_number("window", self._window, minimum=0.0, exclusive=True)
            self._window = check_time_width("window", window, _TIME_BUCKETS)
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

    # ------------------------------------------------------------ state machine

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
