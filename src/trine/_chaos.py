"""Chaos: faults, delays and substitute results injected into a fraction of calls.

Polly's Simmy idea for Trio: a guard that, instead of protecting a call,
sometimes sabotages it, so the guards around it (a retry, a breaker, a
fallback, a timeout) can be seen doing their job in a test or on a staging
deployment. Each call draws its fate from one injectable ``random.Random``,
so a seeded run injects the same faults every time, and an injected delay is
a Trio sleep, exact on the fake clock.
"""

from __future__ import annotations

import functools
import random
import types
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, TypeVarTuple, final

import attrs
import trio

from ._calls import mark_pass_through
from ._errors import InjectedFault
from ._util import (
    check_async_callable,
    check_awaitable,
    check_bool,
    check_number,
    check_sync_callable,
    check_sync_result,
)

__all__ = ["Chaos", "ChaosStatistics"]

_T = TypeVar("_T")
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")

# Types that are certainly callables and not coroutine objects: call() skips
# the full check_async_callable for them.
_PLAIN_CALLABLES = frozenset({types.FunctionType, types.MethodType, functools.partial})


@attrs.frozen
class ChaosStatistics:
    """What a :class:`Chaos` did, from :meth:`Chaos.statistics`."""

    calls: int
    """Calls that went through the Chaos (injected into or not)."""
    disabled: int
    """Calls that passed untouched because ``enabled`` was false for them."""
    delays: int
    """Calls delayed by ``latency`` seconds before going on."""
    faults: int
    """Calls that raised the injected error instead of running."""
    substitutes: int
    """Calls that returned ``result`` instead of running."""
    passed: int
    """Calls whose function was called (delayed or not)."""


def _check_fraction(name: str, value: object) -> float:
    fraction = check_number(name, value)
    if fraction > 1.0:
        raise ValueError(f"{name} must be <= 1, got {value!r}")
    return fraction


# One converter per field (attrs runs it on construction and on assignment),
# typed with what the field accepts, so type checkers see the real signature.
def _check_fault(value: float) -> float:
    return _check_fraction("fault", value)


def _check_slow(value: float) -> float:
    return _check_fraction("slow", value)


def _check_substitute(value: float) -> float:
    return _check_fraction("substitute", value)


def _check_latency(value: float) -> float:
    return check_number("latency", value)


def _check_slow_pair(slow: float, latency: float, *, assigned: str | None = None) -> None:
    """*slow* above zero needs a *latency*: refused at construction and on assignment."""
    if slow > 0.0 and latency == 0.0:
        hint = "set slow to 0 first" if assigned == "latency" else "say how long a slow call waits"
        raise ValueError(f"latency must be > 0 when slow is, got {latency!r}: {hint}")


def _slow_set(chaos: Chaos, attribute: attrs.Attribute[float], value: float) -> float:
    _check_slow_pair(value, chaos.latency)
    return value


def _latency_set(chaos: Chaos, attribute: attrs.Attribute[float], value: float) -> float:
    _check_slow_pair(chaos.slow, value, assigned="latency")
    return value


def _check_error(
    error: type[Exception] | Callable[[], BaseException] | None,
) -> Callable[[], BaseException] | None:
    given: object = error
    if given is None:
        return None
    if isinstance(given, type):
        if not issubclass(given, Exception):
            raise TypeError(
                f"error must be an Exception subclass or a function that builds an exception, "
                f"got {given!r}: trio.Cancelled and other BaseExceptions are not failures"
            )
        return given
    if isinstance(given, BaseException):
        raise TypeError(
            f"error must be an exception class or a function that builds an exception, "
            f"got the instance {given!r}: one instance raised many times would pile up "
            "tracebacks; pass its class or a lambda that builds a new one"
        )
    if not callable(given):
        raise TypeError(
            f"error must be an exception class or a function that builds an exception, "
            f"got {given!r}"
        )
    builder: Callable[[], BaseException] = check_sync_callable("error", given)
    return builder


def _check_enabled(enabled: bool | Callable[[], bool]) -> bool | Callable[[], bool]:
    given: object = enabled
    if callable(given):
        function: Callable[[], bool] = check_sync_callable("enabled", given)
        return function
    return check_bool("enabled", given)


def _check_rng(rng: random.Random | None) -> random.Random:
    given: object = rng
    if given is None:
        return random.Random()
    if not isinstance(given, random.Random):
        raise TypeError(f"rng must be a random.Random, got {given!r}")
    return given


def _check_name(name: str | None) -> str | None:
    given: object = name
    if given is not None and not isinstance(given, str):
        raise TypeError(f"name must be a str or None, got {given!r}")
    return name


class _Counts:
    __slots__ = ("calls", "delays", "disabled", "faults", "passed", "substitutes")

    def __init__(self) -> None:
        self.calls = self.disabled = self.delays = 0
        self.faults = self.substitutes = self.passed = 0


@final
@attrs.define(eq=False, kw_only=True)
class Chaos:
    """Inject faults, delays and substitute results into a fraction of calls.

    A Chaos wraps calls like a guard, but instead of protecting them it
    sabotages some, at the rates you give, so that the retries, breakers,
    fallbacks and timeouts around the call can be seen working, in a test or
    on a staging deployment. Each call, in this order:

    1. if *enabled* is false (or returns false), runs untouched;
    2. with probability *slow*, first sleeps *latency* seconds;
    3. with probability *fault*, raises the injected error instead of running;
    4. otherwise, with probability *substitute*, returns *result* instead of running;
    5. otherwise runs ``await fn(*args)``.

    Every probability is drawn from *rng*, in the order the calls arrive, and
    only for the kinds whose rate is above zero; a disabled call draws
    nothing. So a seeded ``random.Random`` replays the same faults on the
    same sequence of calls, and under the fake clock an injected delay is
    exact. (Calls that arrive together from concurrent tasks arrive in an
    order Trio's scheduler chooses; seed and serialize them if a test needs
    each call's fate.)

    An injected fault is, by default, an :class:`~trine.InjectedFault`, a
    :exc:`ConnectionError`: retries retry it, breakers count it, fallbacks
    answer it, as they would a real one. A delayed call is cancelled by a
    timeout like a slow one. Calls through a Chaos are checkpoints even when
    the function never runs.

    Use it on its own, as a decorator, or as the innermost layer of a
    :class:`~trine.Policy`, inside the per-attempt timeout, so that every
    layer sees the injected faults::

        chaos = trine.Chaos(fault=0.1, slow=0.05, latency=2.0, rng=random.Random(7))

        page = await chaos.call(fetch, url)

        @chaos
        async def fetch_user(user_id): ...

    Args:
      fault: the fraction of calls (0 to 1) that fail with *error*.
      error: what an injected fault raises: an :exc:`Exception` subclass
        (called with no arguments) or a plain function that builds the
        exception. Default: ``InjectedFault(name)``.
      slow: the fraction of calls (0 to 1) delayed by *latency* first.
      latency: the seconds a delayed call waits (``>= 0``) before going on.
      substitute: the fraction of calls (0 to 1) that return *result*
        without running the function.
      result: what a substituted call returns (any object, returned as is).
      rng: the :class:`random.Random` every draw comes from; seed it for a
        replayable run. Default: a fresh, unseeded one.
      enabled: ``True``/``False``, or a plain function returning one, read on
        every call (e.g. ``lambda: settings.chaos_on``), so chaos can be
        switched on and off at run time.
      name: a name, for the default error's message.

    Every field may be assigned later (``chaos.fault = 0.5``) and is checked
    as the constructor checks it, *slow* and *latency* as a pair: set
    *latency* before *slow*, and *slow* to 0 before *latency*.

    Raises:
      TypeError: naming the argument, for a value of the wrong type (an
        exception *instance* as *error* included).
      ValueError: for a rate outside [0, 1] or NaN, a negative *latency*,
        or *slow* above zero with no *latency* (at construction or when
        assigned).
    """

    fault: float = attrs.field(default=0.0, converter=_check_fault)
    error: Callable[[], BaseException] | None = attrs.field(default=None, converter=_check_error)
    # Assigned, slow and latency are converted, then checked as a pair (as in __init__).
    slow: float = attrs.field(
        default=0.0,
        converter=_check_slow,
        on_setattr=[attrs.setters.convert, _slow_set],
    )
    latency: float = attrs.field(
        default=0.0,
        converter=_check_latency,
        on_setattr=[attrs.setters.convert, _latency_set],
    )
    substitute: float = attrs.field(default=0.0, converter=_check_substitute)
    result: Any = None
    rng: random.Random = attrs.field(default=None, converter=_check_rng)
    enabled: bool | Callable[[], bool] = attrs.field(default=True, converter=_check_enabled)
    name: str | None = attrs.field(default=None, converter=_check_name)

    # Counters in a plain slotted object: an assignment to an attrs field with
    # converters goes through attrs' Python-level __setattr__ (~1 us each).
    _counts: _Counts = attrs.field(factory=lambda: _Counts(), init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        _check_slow_pair(self.slow, self.latency)

    def _is_enabled(self) -> bool:
        enabled = self.enabled
        if enabled is True or enabled is False:
            return enabled
        answer = check_sync_result("enabled", enabled())
        if answer is True or answer is False:
            return answer
        raise TypeError(f"enabled must return True or False, got {answer!r}")

    def _injected_error(self) -> BaseException:
        if self.error is None:
            return InjectedFault(self.name)
        error = check_sync_result("error", self.error())
        if not isinstance(error, Exception):
            raise TypeError(f"error must build an Exception, got {error!r}")
        return error

    @mark_pass_through  # events of the guards around it name fn, not Chaos.call
    async def call(self, fn: Callable[[*_Ts], Awaitable[_T]], /, *args: *_Ts) -> _T:
        """Run ``await fn(*args)``, unless this call is picked for a fault or a substitute.

        Args:
          fn: an async function (pass the function and its arguments, not a
            coroutine object).
          *args: positional arguments for *fn*.

        Returns:
          what *fn* returned, or *result* for a substituted call.

        Raises:
          Exception: the injected error, for a call picked for a fault;
            otherwise whatever *fn* raises.
          TypeError: if *fn* is not an async function, or *enabled* or
            *error* returns the wrong kind of value.
        """
        if type(fn) not in _PLAIN_CALLABLES:  # those are callable, never coroutine objects
            check_async_callable("fn", fn)
        counts = self._counts
        counts.calls += 1
        if not self._is_enabled():
            counts.disabled += 1
            counts.passed += 1
            return await _start(fn, args)
        rng = self.rng
        if self.slow and rng.random() < self.slow:
            counts.delays += 1
            await trio.sleep(self.latency)
        if self.fault and rng.random() < self.fault:
            counts.faults += 1
            error = self._injected_error()
            await trio.lowlevel.checkpoint()
            raise error
        if self.substitute and rng.random() < self.substitute:
            counts.substitutes += 1
            await trio.lowlevel.checkpoint()
            result: _T = self.result
            return result
        counts.passed += 1
        return await _start(fn, args)

    def __call__(self, fn: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
        """Decorate an async function so every call goes through the Chaos::

            @chaos
            async def fetch(url: str) -> bytes: ...

        The wrapper keeps *fn*'s name and docstring (:func:`functools.wraps`);
        keyword arguments are passed through.
        """
        check_async_callable("fn", fn)

        @functools.wraps(fn)
        async def through_chaos(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            target = functools.partial(fn, **kwargs) if kwargs else fn
            return await self.call(target, *args)

        return through_chaos

    def statistics(self) -> ChaosStatistics:
        """Return a fresh :class:`ChaosStatistics` snapshot."""
        counts = self._counts
        return ChaosStatistics(
            calls=counts.calls,
            disabled=counts.disabled,
            delays=counts.delays,
            faults=counts.faults,
            substitutes=counts.substitutes,
            passed=counts.passed,
        )


def _start(fn: Callable[..., Awaitable[_T]], args: tuple[Any, ...]) -> Awaitable[_T]:
    # A plain function returning fn's coroutine: no coroutine frame of its own.
    coro = fn(*args)
    if type(coro) is not types.CoroutineType:
        coro = check_awaitable("fn", coro)
    return coro
