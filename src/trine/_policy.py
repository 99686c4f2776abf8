"""Policy: the guards composed around a call in one documented order.

A :class:`Policy` holds references to guard objects (a retrier, a circuit
breaker, a rate limiter, a concurrency limiter) plus timeouts and a fallback,
and runs a call through them, outer to inner::

    total_timeout → fallback → retry → breaker → rate → limiter → timeout → fn

A Policy talks to its guards through the small structural protocols below
(:class:`SupportsCall`, :class:`SupportsAcquire`) and, for the limiter, the
:class:`~trine.Limiter` protocol every consumer of limiters shares; trine's
own guards satisfy them and so can anything else with the same shape. Only
for trine's own :class:`~trine.Retry` and :class:`~trine.CircuitBreaker`
does it take a private, leaner entry (below): same behaviour, fewer frames.

The chain of layers is built once, when the Policy is constructed: absent
layers cost nothing per call (no closure, no frame, no ``if`` test), a layer
that only hands the call on (retry, breaker without hooks) is a
:func:`functools.partial` of the guard's ``call`` (``Retry._call_layer`` for
trine's Retry without a timeout, which does not re-check the layer), so it
adds no Python frame of its own, and the per-attempt timeout, the innermost
layer whenever present, calls fn itself. What fn returned is checked once,
by the layer that calls it (``NotAwaitableError``, which every layer lets
through untouched).

trine's own CircuitBreaker, when only the limiter (or nothing) lies between
it and the layer that calls fn, is one frame with the limiter's hold
(``CircuitBreaker._policy_layer``): its admission, the slot and the outcome
in one KI-protected frame that awaits the fn layer directly. Each frame is
made, and resumed after the limiter's checkpoint, once per call, so this is
most of what a Policy costs over the same guards written by hand.

**KeyboardInterrupt.** The only pairing a Policy does itself is the
limiter's hold; that layer's frame (or the breaker's, holding it) is
KI-protected, and fn runs below it in a frame that is not (the timeout
layer, or ``_await_fn``). The rate layer and ``_call_fn`` have no KI marker
of their own, so a breaker above them awaits them through its ``call``,
whose extra frame is unprotected.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import types
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, ParamSpec, Protocol, TypeAlias, TypeVar, TypeVarTuple, final

import attrs
import trio
from trio.lowlevel import disable_ki_protection, enable_ki_protection

from . import _created
from ._breaker import CircuitBreaker
from ._calls import describe_call, mark_layer
from ._errors import TrineError
from ._hooks import AttemptTimedOut, CallRejected, FallbackUsed, Hook, call_hooks, check_hooks
from ._limit import LimiterLike, hold_opener
from ._retry import Retry
from ._util import (
    check_async_callable,
    check_awaitable,
    check_optional_number,
    exception_matcher,
)

__all__ = ["Policy", "SupportsAcquire", "SupportsCall"]

_T = TypeVar("_T")
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")


class SupportsCall(Protocol):
    """What ``retry=`` and ``breaker=`` need: ``await guard.call(fn, *args)``.

    ``trine.Retry`` and ``trine.CircuitBreaker`` have this shape.
    """

    def call(self, fn: Callable[..., Awaitable[_T]], /, *args: Any) -> Awaitable[_T]: ...


class SupportsAcquire(Protocol):
    """What ``rate=`` needs: ``await rate.acquire()`` waits for one token.

    ``trine.RateLimiter`` and ``trine.SlidingWindowLimiter`` have this shape.
    """

    def acquire(self) -> Awaitable[object]: ...


_AsyncFn: TypeAlias = Callable[..., Awaitable[Any]]
# One layer of the chain: run *fn* with *args* through this layer and those inside it.
_Layer: TypeAlias = Callable[[_AsyncFn, tuple[Any, ...]], Awaitable[Any]]
_HoldOpener: TypeAlias = Callable[[], AbstractAsyncContextManager[object]]
# How an attempt holds the limiter: ``async with open_hold():``, or, for a
# trio.CapacityLimiter itself, through its on-behalf-of methods (see _hold_of).
_Hold: TypeAlias = _HoldOpener | trio.CapacityLimiter
_ExceptionTypes: TypeAlias = type[Exception] | tuple[type[Exception], ...]
_FallbackOn: TypeAlias = _ExceptionTypes | Callable[[Exception], object]


# -- argument checks ---------------------------------------------------------------


def _check_call_guard(name: str, guard: object) -> None:
    if guard is None:
        return
    if isinstance(guard, type) or not inspect.iscoroutinefunction(getattr(guard, "call", None)):
        raise TypeError(f"{name} must have an async call(fn, *args) method, got {guard!r}")


def _check_rate(rate: object) -> None:
    if rate is None:
        return
    if isinstance(rate, type) or not inspect.iscoroutinefunction(getattr(rate, "acquire", None)):
        raise TypeError(f"rate must have an async acquire() method, got {rate!r}")


def _check_fallback(fallback: object) -> None:
    if fallback is None or (callable(fallback) and not isinstance(fallback, type)):
        return
    if inspect.iscoroutine(fallback):
        fallback.close()  # so Python does not also warn "never awaited"
        raise TypeError(
            f"fallback must be a callable taking the exception, got the coroutine object "
            f"{fallback!r}: pass the function, not the result of calling it"
        )
    raise TypeError(f"fallback must be a callable taking the exception, got {fallback!r}")


def _check_name(name: object) -> None:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str or None, got {name!r}")


# -- the layers, innermost first ---------------------------------------------------


_CoroutineType = types.CoroutineType


def _call_fn(fn: _AsyncFn, args: tuple[Any, ...]) -> Awaitable[Any]:
    # A plain function: returns fn's coroutine for the layer above to await,
    # so the innermost step adds no coroutine frame of its own. What fn
    # returned is checked here, once, for every layer above.
    coro = fn(*args)
    if type(coro) is not _CoroutineType:  # one comparison on the hot path
        return check_awaitable("fn", coro)
    return coro


@disable_ki_protection
async def _await_fn(fn: _AsyncFn, args: tuple[Any, ...]) -> Any:
    # The innermost layer under a limiter when there is no timeout: fn runs in
    # a frame that is not KI-protected, though the limiter's frame is.
    coro = fn(*args)
    if type(coro) is not _CoroutineType:
        coro = check_awaitable("fn", coro)
    return await coro


def _timeout_layer(timeout: float, name: str | None, hooks: tuple[Hook, ...]) -> _Layer:
    """The innermost layer whenever present: it calls fn itself (a frame fewer per
    attempt), in a frame that is not KI-protected, so fn can be interrupted as
    it could without a Policy."""

    def timed_out(fn: _AsyncFn, args: tuple[Any, ...]) -> trio.TooSlowError:
        if hooks:
            called = describe_call(fn, args)
            event = AttemptTimedOut(name, timeout, called.call, called.item)
            call_hooks(hooks, event)
        return trio.TooSlowError(f"the attempt took longer than timeout={timeout!r} s")

    @disable_ki_protection
    async def attempt_timeout(fn: _AsyncFn, args: tuple[Any, ...]) -> Any:
        coro = fn(*args)
        if type(coro) is not _CoroutineType:
            coro = check_awaitable("fn", coro)
        # trio.fail_after, inlined: move_on_after returns a bare CancelScope,
        # cheaper than fail_after's generator-based context manager, and lets
        # us tell our own deadline (the scope caught its Cancelled) from a
        # TooSlowError raised by fn.
        with trio.move_on_after(timeout) as scope:
            result = await coro
        if scope.cancelled_caught:
            raise timed_out(fn, args)
        return result

    return attempt_timeout


# Trio's limiters are async context managers themselves, held as they are.
_TRIO_LIMITERS = (trio.CapacityLimiter, trio.Semaphore, trio.Lock, trio.StrictFIFOLock)


def _hold_of(limiter: LimiterLike) -> _Hold:
    """How the limiter layer holds *limiter* for each attempt (checked by hold_opener).

    A :class:`trio.CapacityLimiter` (a final class) is itself the answer: the
    layer holds it as its ``async with`` does,
    ``acquire_on_behalf_of(current_task())`` and ``release_on_behalf_of``,
    without the two frames (``__aenter__``, ``acquire``) that ``async with``
    keeps suspended while the acquire checkpoints, nor ``__aexit__``'s
    coroutine and ``release``. Anything else is held with ``async with
    open_hold():``.
    """
    open_hold = hold_opener(limiter)
    if isinstance(limiter, trio.CapacityLimiter):
        return limiter
    if isinstance(limiter, _TRIO_LIMITERS):
        # The same object every time: a C-level callable returns it without a
        # Python frame per attempt.
        return itertools.repeat(limiter).__next__
    return open_hold


def _limiter_layer(
    inner: _Layer,
    hold: _Hold,
    name: str | None,
    hooks: tuple[Hook, ...],
) -> _Layer:
    """Hold one slot around *inner*, in a KI-protected frame: a Ctrl-C cannot
    land between taking the slot and the ``async with`` that gives it back
    (in unprotected code it can, right after the call that makes
    ``__aexit__``'s coroutine). *inner* is one of the unprotected layers that
    call fn, so fn itself stays interruptible."""
    if isinstance(hold, trio.CapacityLimiter):
        return _capacity_layer(inner, hold)
    open_hold = hold

    @enable_ki_protection
    async def limiter(fn: _AsyncFn, args: tuple[Any, ...]) -> Any:
        entered = False
        try:
            async with open_hold():
                entered = True
                return await inner(fn, args)
        except TrineError as exc:
            # Only a refusal to give a slot is a rejection; a TrineError that
            # fn (or a layer inside) raised is not this limiter's doing.
            if not entered and hooks:
                called = describe_call(fn, args)
                call_hooks(hooks, CallRejected("bulkhead", name, exc, called.call, called.item))
            raise
        raise RuntimeError("the limiter's context manager suppressed an exception from the call")

    return limiter


def _capacity_layer(inner: _Layer, limiter: trio.CapacityLimiter) -> _Layer:
    """:func:`_limiter_layer` for a :class:`trio.CapacityLimiter` (see :func:`_hold_of`).

    It refuses nothing with a ``TrineError``, so there is no rejection to report.
    """
    acquire = limiter.acquire_on_behalf_of
    release = limiter.release_on_behalf_of
    current_task = trio.lowlevel.current_task

    @enable_ki_protection
    async def capacity_limiter(fn: _AsyncFn, args: tuple[Any, ...]) -> Any:
        task = current_task()
        await acquire(task)
        try:
            return await inner(fn, args)
        finally:
            release(task)

    return capacity_limiter


def _rate_layer(
    inner: _Layer,
    acquire: Callable[[], Awaitable[object]],
    name: str | None,
    hooks: tuple[Hook, ...],
) -> _Layer:
    async def rate(fn: _AsyncFn, args: tuple[Any, ...]) -> Any:
        try:
            await acquire()
        except TrineError as exc:
            if hooks:
                called = describe_call(fn, args)
                call_hooks(hooks, CallRejected("rate", name, exc, called.call, called.item))
            raise
        return await inner(fn, args)

    return rate


def _breaker_layer(
    inner: _Layer,
    breaker: SupportsCall,
    name: str | None,
    hooks: tuple[Hook, ...],
    unprotected: tuple[_Layer, _Hold | None] | None,
) -> _Layer:
    """The breaker around *inner*. *unprotected* is the layer that runs fn in a
    frame that is not KI-protected, and the limiter's hold around it, when only
    the limiter lies between it and the breaker (``None`` otherwise)."""
    call = breaker.call
    if not hooks:
        if unprotected is not None and isinstance(breaker, CircuitBreaker):
            # trine's own: its admission, the limiter's hold and the outcome in
            # one KI-protected frame, which awaits the unprotected layer below.
            return breaker._policy_layer(inner, *unprotected)
        # Nobody listens for rejections: hand the call straight to the breaker
        # (a partial is called without a Python frame of its own).
        return functools.partial(call, inner)

    def admitted(fn: _AsyncFn, args: tuple[Any, ...], entered: list[None]) -> Awaitable[Any]:
        entered.append(None)
        return inner(fn, args)

    async def breaker_reporting(fn: _AsyncFn, args: tuple[Any, ...]) -> Any:
        # The breaker rejected the call iff it raised before calling `admitted`.
        entered: list[None] = []
        try:
            return await call(admitted, fn, args, entered)
        except TrineError as exc:
            if not entered:
                called = describe_call(fn, args)
                call_hooks(hooks, CallRejected("breaker", name, exc, called.call, called.item))
            raise

    return breaker_reporting


def _retry_layer(inner: _Layer, retry: SupportsCall) -> _Layer:
    # A partial is called without a Python frame of its own. trine's own
    # Retry without a timeout is given the layer and (fn, args) as they are,
    # not re-checked.
    if isinstance(retry, Retry) and retry.timeout is None:
        return functools.partial(retry._call_layer, inner)
    return functools.partial(retry.call, inner)


def _fallback_layer(
    inner: _Layer,
    fallback: Callable[[Exception], Any],
    fallback_on: _FallbackOn,
    name: str | None,
    hooks: tuple[Hook, ...],
) -> _Layer:
    matches = exception_matcher("fallback_on", fallback_on, only_exceptions=True)

    async def fallback_layer(fn: _AsyncFn, args: tuple[Any, ...]) -> Any:
        try:
            return await inner(fn, args)
        except Exception as exc:
            # `except Exception` never sees trio.Cancelled, KeyboardInterrupt or
            # a BaseExceptionGroup holding them: those always pass.
            if not matches(exc):
                raise
            value = fallback(exc)
            if inspect.isawaitable(value):
                value = await value
            if hooks:
                called = describe_call(fn, args)
                call_hooks(hooks, FallbackUsed(name, exc, called.call, called.item))
            return value

    return fallback_layer


def _chaos_layer(inner: _Layer, call: Callable[..., Awaitable[Any]]) -> _Layer:
    # Chaos acts innermost, inside the per-attempt timeout, yet costs no frame
    # per layer: the (fn, args) pair that every layer hands down unchanged is
    # rewritten once, at the top, to (chaos.call, (fn, *args)), so the innermost
    # layer calls chaos.call(fn, *args).
    def through_chaos(fn: _AsyncFn, args: tuple[Any, ...]) -> Awaitable[Any]:
        return inner(call, (fn, *args))

    return through_chaos


def _total_timeout_layer(inner: _Layer, total_timeout: float) -> _Layer:
    async def total(fn: _AsyncFn, args: tuple[Any, ...]) -> Any:
        with trio.move_on_after(total_timeout) as scope:
            result = await inner(fn, args)
        if scope.cancelled_caught:
            raise trio.TooSlowError(f"the call took longer than total_timeout={total_timeout!r} s")
        return result

    return total


# Types that are certainly callables and not coroutine objects: call() skips
# the (comparatively slow) full check_async_callable for them.
_PLAIN_CALLABLES = frozenset({types.FunctionType, types.MethodType, functools.partial})


# -- Policy ------------------------------------------------------------------------


@final
@attrs.frozen(kw_only=True, eq=False)
class Policy:
    """Run calls through a fixed stack of guards: timeouts, fallback, retry,
    circuit breaker, rate limit and concurrency limit.

    Each argument adds one layer; a layer you leave as ``None`` is not there
    at all. Layers wrap each other in this order, outer to inner::

        total_timeout            one deadline for everything below
          fallback               a value instead of the error
            retry                attempts again on failure
              breaker            refuses at once while the service is down
                rate             waits for a token
                  limiter        waits for (or is refused) a slot
                    timeout      one deadline per attempt
                      chaos      injected faults and delays (tests, staging)
                        fn(*args)

    Why this order:

    * **retry outside the breaker**: an open breaker refuses the attempt at
      once with ``CircuitOpenError``, whose ``retry_after`` tells the retrier
      how long to wait, so retries are paced by the breaker instead of
      hammering it; and each attempt is one call the breaker counts.
    * **timeout innermost**: every attempt gets its own full ``timeout``, a
      timed-out attempt is an ordinary failure for the breaker and the
      retrier, and because it sits inside the limiter, time spent queueing
      for a slot or a rate token does not eat into the attempt's time.
    * **rate before limiter**: a task waiting for a rate token does not sit
      on a concurrency slot that another task could use.
    * **fallback outside retry**: the fallback answers only once every
      attempt has failed (or the breaker refused); **total_timeout
      outermost** bounds the whole call, fallback included.

    Resilience4j's default decorator order (retry around breaker around rate
    limiter, time limiter and bulkhead) and Polly's standard resilience
    pipeline (total timeout, retry, breaker, per-attempt timeout) make the
    same choices.

    ``policy.layers`` names the layers present, outer to inner.

    A Policy is immutable and holds no state of its own, so one Policy can be
    shared by any number of concurrent calls; the guards inside it (breaker,
    limiter, rate limiter, retry budget) are shared objects, and their
    ``statistics()`` show what all the calls did together.

    Args:
      fallback: ``fallback(exc) -> value``, sync or async (an awaitable result
        is awaited), called when the layers inside fail with an exception
        matching *fallback_on*; its value becomes the call's result. Never
        called for :exc:`trio.Cancelled` or other non-:exc:`Exception`
        errors, nor for *total_timeout*, which is outside it.
      fallback_on: an :exc:`Exception` subclass, a tuple of them, or a
        predicate ``(exc) -> bool``. Default: every :exc:`Exception`.
      retry: a retrier with ``async call(fn, *args)`` (``trine.Retry``). A
        per-attempt timeout reaches it as :exc:`trio.TooSlowError`, so to
        retry timed-out attempts its ``on=`` must include that (the default
        ``(Exception,)`` does).
      breaker: a circuit breaker with ``async call(fn, *args)``
        (``trine.CircuitBreaker``).
      rate: a rate limiter with ``async acquire()`` (``trine.RateLimiter``,
        ``trine.SlidingWindowLimiter``); each attempt takes one token.
      limiter: a concurrency limiter, either with a zero-argument ``hold()``
        returning an async context manager (``trine.Bulkhead``,
        ``trine.AdaptiveLimiter``) or an async context manager itself
        (:class:`trio.CapacityLimiter`, :class:`trio.Semaphore`,
        :class:`trio.Lock`). Each attempt holds one slot while it runs.
      timeout: seconds each attempt may run (> 0), not counting the wait for
        a slot or a token; past it the attempt is cancelled and fails with
        :exc:`trio.TooSlowError`.
      chaos: a fault injector with ``async call(fn, *args)`` (:class:`trine.Chaos`),
        innermost, inside the per-attempt timeout: every layer above sees its
        injected faults as real ones (retries retry them, the breaker counts
        them, the fallback answers them) and an injected delay counts against
        the attempt's *timeout*.
      total_timeout: seconds the whole call may take (> 0), every attempt,
        backoff, wait and the fallback included; past it the call is
        cancelled and raises :exc:`trio.TooSlowError`, which no fallback
        rescues.
      name: a name for the events given to *hooks*.
      hooks: callables that receive the Policy's own events:
        ``AttemptTimedOut`` when a per-attempt timeout fires, ``FallbackUsed``
        when the fallback's value is returned, and ``CallRejected`` when the
        breaker, rate limiter or limiter refuses a call with a ``TrineError``
        before it starts (``guard`` is ``"breaker"``, ``"rate"`` or
        ``"bulkhead"``). Every event's ``name`` is this Policy's *name*. The
        guards report their own events (retries, state changes) through
        their own ``hooks=``.

    Raises:
      TypeError: naming the argument, if a guard does not have the shape
        described above, a timeout is not a number, or *fallback* or
        *fallback_on* is not of an accepted kind.
      ValueError: if a timeout is not > 0 or is NaN.

    Example::

        policy = trine.Policy(
            retry=trine.Retry(attempts=3),
            breaker=trine.CircuitBreaker(name="users"),
            limiter=trio.CapacityLimiter(10),
            timeout=2.0,
            fallback=lambda exc: None,
        )

        user = await policy.call(fetch_user, user_id)

        @policy
        async def fetch_order(order_id): ...
    """

    fallback: Callable[[Exception], Any] | None = None
    fallback_on: _FallbackOn = (Exception,)
    retry: SupportsCall | None = None
    breaker: SupportsCall | None = None
    rate: SupportsAcquire | None = None
    limiter: LimiterLike | None = None
    timeout: float | None = None
    chaos: SupportsCall | None = None
    total_timeout: float | None = None
    name: str | None = None
    hooks: tuple[Hook, ...] = attrs.field(default=None, converter=check_hooks)
    layers: tuple[str, ...] = attrs.field(init=False)
    """The names of the layers present, outer to inner, e.g.
    ``("retry", "limiter", "timeout")``: what a call goes through."""
    _run: _Layer = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        check_optional_number("timeout", self.timeout, exclusive=True, allow_inf=True)
        check_optional_number("total_timeout", self.total_timeout, exclusive=True, allow_inf=True)
        _check_fallback(self.fallback)
        exception_matcher("fallback_on", self.fallback_on, only_exceptions=True)
        _check_call_guard("retry", self.retry)
        _check_call_guard("breaker", self.breaker)
        _check_call_guard("chaos", self.chaos)
        _check_rate(self.rate)
        hold = None if self.limiter is None else _hold_of(self.limiter)
        _check_name(self.name)
        if _created.watchers:
            object.__setattr__(self, "hooks", _created.announce(self, self.hooks))

        # Build the chain once, inner to outer.
        run: _Layer = _call_fn
        layers: list[str] = []
        # The layer that runs fn in a frame that is not KI-protected, and the
        # limiter's hold around it, while no other layer is outside them.
        unprotected: tuple[_Layer, _Hold | None] | None = None
        if self.timeout is not None:
            run = _timeout_layer(float(self.timeout), self.name, self.hooks)
            layers.append("timeout")
            unprotected = (run, None)
        if hold is not None:
            if run is _call_fn:
                run = _await_fn  # fn must run in a frame that is not KI-protected
            unprotected = (run, hold)
            run = _limiter_layer(run, hold, self.name, self.hooks)
            layers.append("limiter")
        if self.rate is not None:
            unprotected = None  # the rate layer's frame has no KI marker of its own
            run = _rate_layer(run, self.rate.acquire, self.name, self.hooks)
            layers.append("rate")
        if self.breaker is not None:
            run = _breaker_layer(run, self.breaker, self.name, self.hooks, unprotected)
            layers.append("breaker")
        if self.retry is not None:
            # The Retry is handed this layer and (fn, args): marked, so its
            # events can name fn, and this Policy when the Retry has no name.
            inner = mark_layer(run, self.name, shared=(_call_fn, _await_fn))
            run = _retry_layer(inner, self.retry)
            layers.append("retry")
        if self.fallback is not None:
            run = _fallback_layer(run, self.fallback, self.fallback_on, self.name, self.hooks)
            layers.append("fallback")
        if self.total_timeout is not None:
            run = _total_timeout_layer(run, float(self.total_timeout))
            layers.append("total_timeout")
        if self.chaos is not None:
            run = _chaos_layer(run, self.chaos.call)
            layers.insert(0, "chaos")  # it acts innermost, whatever wraps it
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "layers", tuple(reversed(layers)))

    async def call(self, fn: Callable[[*_Ts], Awaitable[_T]], /, *args: *_Ts) -> _T:
        """Run ``await fn(*args)`` through the Policy's layers and return its result.

        Args:
          fn: an async function (pass the function and its arguments, not a
            coroutine object).
          *args: positional arguments for *fn*; use :func:`functools.partial`
            for keyword arguments.

        Returns:
          what *fn* returned, or the fallback's value.

        Raises:
          trio.TooSlowError: if an attempt's *timeout* (and every retry) or the
            *total_timeout* ran out, and no fallback answered.
          TypeError: if *fn* is not callable or is a coroutine object; a
            ``NotAwaitableError`` (a TypeError) if calling it returned
            something that cannot be awaited, which no layer retries, counts
            or answers with the fallback.
          Exception: whatever the last attempt raised (or a guard's
            ``TrineError`` refusal), unless the fallback answered.
        """
        if type(fn) not in _PLAIN_CALLABLES:  # those are callable, never coroutine objects
            check_async_callable("fn", fn)
        result: _T = await self._run(fn, args)
        return result

    def __call__(self, fn: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
        """Decorate an async function so every call goes through the Policy::

            @policy
            async def fetch(url: str) -> bytes: ...

        The wrapper keeps *fn*'s name and docstring (:func:`functools.wraps`);
        keyword arguments are passed through.
        """
        check_async_callable("fn", fn)
        run = self._run

        @functools.wraps(fn)
        async def through_policy(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            target = functools.partial(fn, **kwargs) if kwargs else fn
            result: _T = await run(target, args)
            return result

        return through_policy

    def evolve(self, **changes: Any) -> Policy:
        """Return a new Policy with *changes* applied, sharing every guard not changed::

            strict = policy.evolve(timeout=0.5, fallback=None)

        The new Policy is validated as the constructor would.
        """
        return attrs.evolve(self, **changes)
