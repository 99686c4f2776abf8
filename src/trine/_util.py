"""Argument checks shared by every module.

Every public constructor and function validates its arguments at the door
with these helpers, so messages have one style everywhere: the parameter's
name, the rule, and the value given, lower-case and without a final period,
e.g. ``limit must be >= 1, got 0``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

__all__ = [
    "ExceptionFilter",
    "check_async_callable",
    "check_choice",
    "check_int",
    "check_number",
    "check_optional_number",
    "close_unawaited",
    "exception_matcher",
]

_T = TypeVar("_T")


def check_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Return *value* if it is an ``int`` that is at least *minimum*.

    Raises:
      TypeError: if *value* is not an ``int`` (``bool`` is refused too).
      ValueError: if *value* is less than *minimum*.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
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
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"{name} must not be NaN, got {value!r}")
    if math.isinf(number) and not (allow_inf and number > 0):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if exclusive and number <= minimum:
        raise ValueError(f"{name} must be > {minimum:g}, got {value!r}")
    if not exclusive and number < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")
    return number


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
    and its answer taken as true or false.

    Args:
      name: the parameter's name, for the message.
      value: what the caller passed.
      only_exceptions: refuse classes that are not :class:`Exception`
        subclasses (where trio.Cancelled and KeyboardInterrupt never arrive).
      allow_empty: accept ``()``, which matches nothing.

    Raises:
      TypeError: if *value* is none of those shapes, naming *name*.
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
            if isinstance(error, classes):
                return True
            if isinstance(error, BaseExceptionGroup):
                _, rest = error.split(classes)
                return rest is None
            return False

        return matches
    if callable(value):
        predicate = value
        return lambda error: bool(predicate(error))
    raise TypeError(
        f"{name} must be an exception class, a tuple of them, or a predicate, got {value!r}"
    )
