"""Argument checks shared by every module.

Every public constructor and function validates its arguments at the door
with these helpers, so messages have one style everywhere: the parameter's
name, the rule, and the value given, lower-case and without a final period,
e.g. ``limit must be >= 1, got 0``.
"""

from __future__ import annotations

import functools
import inspect
import math
import signal
import sys
import types
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

__all__ = [
    "ExceptionFilter",
    "NotAwaitableError",
    "check_async_callable",
    "check_async_function",
    "check_awaitable",
    "check_bool",
    "check_choice",
    "check_hashable",
    "check_int",
    "check_name",
    "check_number",
    "check_optional_number",
    "check_sync_callable",
    "check_sync_result",
    "check_time_width",
    "close_unawaited",
    "describe",
    "exception_matcher",
    "generator_function_error",
    "signal_name",
]

_T = TypeVar("_T")

# Ints with more digits than this are described by their size, not printed:
# 10**400 would fill a screen (and past 4,300 digits str() itself refuses).
_LONGEST_PRINTED_INT = 10**30


def describe(value: object) -> str:
    """``repr(value)``, except that a huge int is given by its size: ``an int of about 10**400``."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and abs(value) >= _LONGEST_PRINTED_INT
    ):
        sign = "-" if value < 0 else ""
        return f"an int of about {sign}10**{int(abs(value).bit_length() * math.log10(2))}"
    return repr(value)


def signal_name(signum: int) -> str:
    """The name of signal number *signum*, as ``kill -l`` and Python's :mod:`signal` know it.

    ``SIGTERM`` for 15; a real-time signal without a name of its own is
    counted from ``SIGRTMIN`` (``SIGRTMIN+6`` for 40 on Linux, as
    ``signal.SIGRTMIN + 6``); any other number is ``signal 99``.
    """
    try:
        return signal.Signals(signum).name
    except ValueError:
        pass
    first = getattr(signal, "SIGRTMIN", None)
    last = getattr(signal, "SIGRTMAX", None)
    if first is not None and last is not None and first < signum < last:
        return f"SIGRTMIN+{signum - first}"
    return f"signal {signum}"


def check_int(name: str, value: object, *, minimum: int = 1, maximum: int = sys.maxsize) -> int:
    """Return *value* if it is an ``int`` with ``minimum <= value <= maximum``.

    The default *maximum*, :data:`sys.maxsize`, is the largest size Python can
    index, so a count that passes can size a deque or a range.

    Raises:
      TypeError: if *value* is not an ``int`` (``bool`` is refused too).
      ValueError: if *value* is less than *minimum* or more than *maximum*.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {describe(value)}")
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {describe(value)}")
    return value


def check_bool(name: str, value: object) -> bool:
    """Return *value* if it is a ``bool``.

    ``0``, ``None`` and ``"yes"`` are refused rather than read as truth
    values: a flag set by mistake to the wrong thing should be seen.

    Raises:
      TypeError: if *value* is not ``True`` or ``False``.
    """
    if value is True or value is False:
        return value
    raise TypeError(f"{name} must be True or False, got {value!r}")


def check_hashable(name: str, value: _T) -> _T:
    """Return *value* if it can be a dict key.

    Raises:
      TypeError: naming the parameter, if ``hash(value)`` fails.
    """
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"{name} must be hashable, got {value!r}") from None
    return value


def check_number(
    name: str,
    value: object,
    *,
    minimum: float = 0.0,
    exclusive: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return *value* as a ``float`` if it is a real number within range.

    Args:
      name: the parameter's name, for the message.
      value: what the caller passed.
      minimum: the smallest value allowed.
      exclusive: if true, *minimum* itself is refused (``> minimum``).
      allow_inf: if true, ``math.inf`` is accepted.

    Raises:
      TypeError: if *value* is not an ``int`` or ``float`` (``bool`` is refused).
      ValueError: if *value* is NaN, infinite (unless *allow_inf*), or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int such as 10**400, beyond every float
        raise ValueError(
            f"{name} must be at most {sys.float_info.max:.4g}, got {describe(value)}"
        ) from None
    if math.isnan(number):
        raise ValueError(f"{name} must not be NaN, got {value!r}")
    if math.isinf(number) and not (allow_inf and number > 0):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if exclusive and number <= minimum:
        raise ValueError(f"{name} must be > {minimum:g}, got {value!r}")
    if not exclusive and number < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")
    return number


_CLOCK_HORIZON = 1e15
"""The largest clock reading, in seconds (30 million years), that a window
kept in time buckets must be able to divide by its bucket width."""


def check_time_width(name: str, value: float, buckets: int) -> float:
    """Return *value*, a window already checked ``> 0``, unless its buckets are too narrow.

    A window kept in *buckets* buckets numbers them ``floor(now / (value /
    buckets))``; a width so small that this overflows (``window=1e-320``)
    would be a bare :exc:`OverflowError` at the first call instead.

    Raises:
      ValueError: naming *name*, if a clock reading up to ``1e15`` seconds
        divided by the width would not be finite.
    """
    smallest = _CLOCK_HORIZON / sys.float_info.max * buckets
    if value < smallest:
        raise ValueError(
            f"{name} must be >= {smallest:.3g}, got {value!r}: the clock is divided "
            f"by {name} / {buckets}"
        )
    return value


def check_optional_number(
    name: str,
    value: object,
    *,
    minimum: float = 0.0,
    exclusive: bool = False,
    allow_inf: bool = False,
) -> float | None:
    """Like :func:`check_number`, but ``None`` passes through unchanged."""
    if value is None:
        return None
    return check_number(name, value, minimum=minimum, exclusive=exclusive, allow_inf=allow_inf)


def check_choice(name: str, value: _T, choices: tuple[_T, ...]) -> _T:
    """Return *value* if it is one of *choices*.

    Raises:
      ValueError: naming the parameter and listing the allowed values.
    """
    if value not in choices:
        allowed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def close_unawaited(awaitable: object) -> None:
    """Close a coroutine that will never be awaited, so Python does not warn about it."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()


def check_async_callable(name: str, fn: object) -> Callable[..., Any]:
    """Return *fn* if it can be called to start async work.

    A coroutine object (``f(x)`` instead of ``f, x``) is the classic mistake:
    it has already been created, so trine could neither run it twice nor
    cancel it cleanly. It is refused with a message that says what to do.

    Raises:
      TypeError: if *fn* is a coroutine object or is not callable.
    """
    if inspect.iscoroutine(fn) or inspect.isawaitable(fn):
        close_unawaited(fn)
        raise TypeError(
            f"{name} must be an async function, got the coroutine object {fn!r}: "
            "pass the function and its arguments (f, x), not the result of calling it (f(x))"
        )
    if not callable(fn):
        raise TypeError(f"{name} must be an async function, got {fn!r}")
    return fn


def check_async_function(name: str, fn: object) -> Callable[..., Any]:
    """Return *fn* if it can be an async function, for one stored now and called later.

    As :func:`check_async_callable`, and a generator or async generator
    function is refused too: calling it never makes an awaitable, and stored
    at construction it would fail only at its first call, far from where it
    was given.

    Raises:
      TypeError: if *fn* is a coroutine object, is not callable, or is a
        generator or async generator function (also through a
        :func:`functools.partial` or a method, or as an object's ``__call__``),
        naming *name* and saying what to pass instead.
    """
    checked = check_async_callable(name, fn)
    error = generator_function_error(name, fn)
    if error is not None:
        raise error
    return checked


def generator_function_error(name: str, fn: object) -> TypeError | None:
    """The :exc:`TypeError` for *fn* given as *name* where an async function is needed,
    if *fn* is a generator or async generator function; else ``None``."""
    if inspect.isasyncgenfunction(fn):  # inspect looks through partials and methods
        return TypeError(
            f"{name} must be an async function, got the async generator function {fn!r}: "
            f"{_NO_ASYNC_YIELD}"
        )
    if inspect.isgeneratorfunction(fn):
        return TypeError(
            f"{name} must be an async function, got the generator function {fn!r}: {_NO_YIELD}"
        )
    # An object whose __call__ is one (a class is not looked into: calling it
    # builds an instance).
    inner = fn
    while isinstance(inner, functools.partial):
        inner = inner.func
    call = type(inner).__call__ if callable(inner) and not isinstance(inner, type) else None
    if inspect.isasyncgenfunction(call):
        return TypeError(
            f"{name} must be an async function, got {fn!r}, whose __call__ is an async "
            f"generator function: {_NO_ASYNC_YIELD}"
        )
    if inspect.isgeneratorfunction(call):
        return TypeError(
            f"{name} must be an async function, got {fn!r}, whose __call__ is a generator "
            f"function: {_NO_YIELD}"
        )
    return None


_NO_YIELD = "define it with async def and no yield"
_NO_ASYNC_YIELD = "define it without yield (an async generator is iterated with async for)"


class NotAwaitableError(TypeError):
    """A function given where trine needs an async one returned something that cannot be awaited.

    It is a programming error, not a failure of the call: every guard lets it
    through untouched, as it does :exc:`trio.Cancelled` -- a retry does not
    retry it, a breaker does not count it, a fallback does not answer it, and
    :func:`~trine.settle` and :func:`~trine.race` raise it instead of
    collecting it. :func:`exception_matcher`'s predicates never match it.
    """


_CoroutineType = types.CoroutineType


def check_awaitable(name: str, result: object) -> Awaitable[Any]:
    """Return *result*, what calling the async function *name* returned, if it can be awaited.

    Hot paths test ``type(result) is types.CoroutineType`` themselves and call
    this only for anything else, so the common case costs one comparison.
    Lambdas that return a coroutine (``lambda: fetch(x)``) pass, as do
    objects with ``__await__``.

    Raises:
      NotAwaitableError: a :exc:`TypeError` naming *name*, saying what it
        returned and what to pass instead. A generator it returned is closed
        first, so Python does not also warn about it.
    """
    if type(result) is _CoroutineType or inspect.isawaitable(result):
        return result
    if inspect.isgenerator(result):
        close_unawaited(result)
        what = (
            "a generator: a function with yield is a generator function; "
            "define it with async def and no yield"
        )
    elif inspect.isasyncgen(result):
        what = (
            "an async generator: async def with yield is an async generator function; "
            "define it without yield, or iterate it with async for"
        )
    else:
        what = f"{describe(result)}, {_a(type(result).__name__)}: define it with async def"
    raise NotAwaitableError(f"{name} must be an async function, but calling it returned {what}")


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def check_sync_callable(name: str, fn: object) -> Callable[..., Any]:
    """Return *fn* if it is a plain (synchronous) callable, for callbacks trine calls in place.

    An async function given as a callback would never run: calling it only
    creates a coroutine. Generator and async generator functions are refused
    for the same reason.

    Raises:
      TypeError: if *fn* is not callable, or is an async, generator or async
        generator function (or an object whose ``__call__`` is one).
    """
    if not callable(fn):
        raise TypeError(f"{name} must be a callable, got {fn!r}")
    # An object whose __call__ is async is an async function too (a class is not:
    # calling it builds an instance).
    call = None if isinstance(fn, type) else type(fn).__call__
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call):
        raise TypeError(
            f"{name} must be a plain function, got the async function {fn!r}: "
            "trine calls it without awaiting; start async work from it in a nursery of yours"
        )
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"{name} must be a plain function, got the generator function {fn!r}")
    return fn


def check_sync_result(name: str, result: _T) -> _T:
    """Return *result*, what a sync callback *name* returned, unless it is a coroutine.

    A lambda that calls an async function (``lambda event: log(event)``) passes
    :func:`check_sync_callable` but returns a coroutine that would never run.

    Raises:
      TypeError: after closing the coroutine, so Python does not also warn.
    """
    if inspect.isawaitable(result):
        close_unawaited(result)
        raise TypeError(
            f"{name} must be a plain function, but calling it returned {result!r}: "
            "trine calls it without awaiting"
        )
    return result


ExceptionFilter: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], object]
)
"""What ``on=``, ``record=``, ``ignore=`` and ``fallback_on=`` accept: an
exception class, a tuple of them, or a predicate taking the exception."""


def exception_matcher(
    name: str, value: object, *, only_exceptions: bool = False, allow_empty: bool = True
) -> Callable[[BaseException], bool]:
    """Validate an exception filter and return the predicate it stands for.

    A class or a tuple of classes matches an exception that is an instance of
    one of them, or an exception group whose every leaf is (as ``except*``
    would catch the whole group). A predicate is called with the exception
    and its answer taken as true or false; it must be a plain function (an
    async one is refused here, and an awaitable it returns, closed, is a
    :exc:`TypeError` from the returned predicate).

    Args:
      name: the parameter's name, for the message.
      value: what the caller passed.
      only_exceptions: refuse classes that are not :class:`Exception`
        subclasses (where trio.Cancelled and KeyboardInterrupt never arrive).
      allow_empty: accept ``()``, which matches nothing.

    Raises:
      TypeError: if *value* is none of those shapes, or an async, generator
        or async generator function, naming *name*.
      ValueError: if *value* is ``()`` and *allow_empty* is false.
    """
    if isinstance(value, type):
        value = (value,)
    if isinstance(value, tuple):
        if not value and not allow_empty:
            raise ValueError(f"{name} must not be an empty tuple: it would match nothing")
        for item in value:
            if not (isinstance(item, type) and issubclass(item, BaseException)):
                raise TypeError(f"{name} must contain only exception classes, got {item!r}")
            if only_exceptions and not issubclass(item, Exception):
                raise TypeError(
                    f"{name} must contain only Exception subclasses, got {item!r}: "
                    "trio.Cancelled and other BaseExceptions never reach it"
                )
        classes: tuple[type[BaseException], ...] = value

        def matches(error: BaseException) -> bool:
            if isinstance(error, NotAwaitableError):
                return False
            if isinstance(error, classes):
                return True
            if isinstance(error, BaseExceptionGroup):
                _, rest = error.split(classes)
                return rest is None
            return False

        return matches
    if callable(value):
        # An async predicate's coroutine is always true, and never run.
        predicate = check_sync_callable(name, value)

        def answers(error: BaseException) -> bool:
            if isinstance(error, NotAwaitableError):
                return False
            answer = predicate(error)
            if answer is True or answer is False:  # the usual answer: nothing to check
                return answer
            return bool(check_sync_result(name, answer))

        return answers
    # A coroutine object here is `record=check(err)` for `record=check`: close it,
    # so Python does not also warn that it was never awaited.
    if inspect.iscoroutine(value):
        close_unawaited(value)
    raise TypeError(
        f"{name} must be an exception class, a tuple of them, or a predicate, got {value!r}"
    )


def check_name(value: object) -> str | None:
    """Validate a ``name=`` argument (a ``str`` or ``None``) and return it.

    Raises:
      TypeError: naming ``name``, for anything else.
    """
    if value is not None and not isinstance(value, str):
        raise TypeError(f"name must be a str or None, got {describe(value)}")
    return value
