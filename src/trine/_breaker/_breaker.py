"""CircuitBreaker: the public class, its read-only settings and its async front ends.

``call``, ``async with`` and the decorator wrap the user's function in the
synchronous core (:mod:`._core`). ``call`` has a fast path for the common
case, a CLOSED breaker counting consecutive failures or failure rates over a
count window: one check of ``_closed_epoch`` admits the call (no permit
object), and a success is one count and one window write. Everything else
(probes, slow calls, time windows, failures) goes through the core.

**KeyboardInterrupt.** Every frame of the breaker is KI-protected
(:func:`trio.lowlevel.enable_ki_protection`), so a Ctrl-C can never land
between taking a permit and recording its outcome; the user's coroutine is
awaited in an unprotected frame (``_await_unprotected``), so it can be
interrupted as it could without the breaker, and its KeyboardInterrupt is
counted as a cancellation. Inside a :class:`~trine.Policy` that frame is the
Policy's own timeout layer (or the one that awaits fn under a limiter),
which the breaker's Policy layer (``_policy_layer``) awaits directly.
"""

from __future__ import annotations

import functools
import sys
import types
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, ParamSpec, TypeAlias, TypeVar, TypeVarTuple, final

import attrs
import trio
from trio.lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    disable_ki_protection,
    enable_ki_protection,
)

from .._errors import CircuitOpenError
from .._util import ExceptionFilter, check_async_callable, check_awaitable
from .._values import ReadOnlyValue
from ._core import _BreakerCore, _Permit
from ._state import CircuitState
from ._statistics import CircuitBreakerStatistics

__all__ = ["CircuitBreaker"]

_T = TypeVar("_T")
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")


_CoroutineType = types.CoroutineType

# A trine.Policy's layer: run fn with args through it and the layers inside it.
_Layer: TypeAlias = Callable[[Any, tuple[Any, ...]], Awaitable[Any]]
# What a held call's result is until the call returns: still it after the
# `async with`, the hold's __aexit__ swallowed the call's exception.
_SUPPRESSED: Any = object()


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
class CircuitBreaker(_BreakerCore):
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
      window: the window's size: a number of calls (count) or seconds (time;
        its 20 buckets must divide a clock reading, so not below about 1e-292).
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

    # Permits of `async with breaker:` blocks, by the frame the block is in (a
    # list: blocks may nest), with the task that entered each; the fast path's
    # permit is the epoch that admitted it. See __aenter__ for why frames.
    _held: dict[types.FrameType, list[tuple[_Permit | int, trio.lowlevel.Task]]] = attrs.field(
        factory=dict, init=False
    )

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

    def _policy_layer(
        self,
        through: _Layer,
        inner: _Layer,
        hold: Callable[[], AbstractAsyncContextManager[object]] | trio.CapacityLimiter | None,
    ) -> _Layer:
        """This breaker as a :class:`~trine.Policy`'s layer: :meth:`call` around
        *through*, in one frame with the limiter's *hold* (if any) and no frame
        of its own for the user's coroutine.

        :meth:`call` awaits what it calls in a frame that is not KI-protected,
        so that fn runs unprotected. *inner* is such a frame already (the
        Policy's timeout layer, or the one that awaits fn under a limiter) and
        *through* is ``hold()`` around *inner* (or *inner*): so on the closed
        fast path this KI-protected frame admits the call, holds the slot and
        awaits *inner* itself, and records the outcome, with no Ctrl-C landing
        between taking a permit or a slot and giving it back. Every other case
        (open, half-open, a time window, slow calls) is ``call(through, fn,
        args)``. The Policy checked fn, and *inner* checks what fn returns.
        A :class:`trio.CapacityLimiter` as *hold* is held as its ``async with``
        holds it, without that statement's frames.
        """
        call: Callable[..., Awaitable[Any]] = self.call
        slow = functools.partial(call, through)
        capacity: trio.CapacityLimiter | None = None
        open_hold: Callable[[], AbstractAsyncContextManager[object]] | None = None
        if isinstance(hold, trio.CapacityLimiter):
            capacity = hold
        else:
            open_hold = hold
        current_task = trio.lowlevel.current_task

        @enable_ki_protection
        async def breaker(fn: Any, args: tuple[Any, ...]) -> Any:
            epoch = self._closed_epoch
            if epoch < 0:
                return await slow(fn, args)
            self._calls += 1  # the fast path, as in call()
            try:
                if capacity is not None:
                    task = current_task()
                    await capacity.acquire_on_behalf_of(task)
                    try:
                        result = await inner(fn, args)
                    finally:
                        capacity.release_on_behalf_of(task)
                elif open_hold is None:
                    result = await inner(fn, args)
                else:
                    result = _SUPPRESSED
                    async with open_hold():
                        result = await inner(fn, args)
                    if result is _SUPPRESSED:  # as the Policy's limiter layer says it
                        raise RuntimeError(
                            "the limiter's context manager suppressed an exception from the call"
                        )
            except BaseException as error:
                self._finish(_Permit(self, epoch, 0.0, False), error)
                raise
            self._successes += 1
            if self._closed_epoch == epoch:
                number = self._recorded = self._recorded + 1
                if number == self._judge_at:
                    self._judge_success(number)
            return result

        return breaker

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
