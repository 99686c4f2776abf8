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
from typing import Any, TypeVar

__all__ = [
    "check_async_callable",
    "check_choice",
    "check_int",
    "check_number",
    "check_optional_number",
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


def check_async_callable(name: str, fn: object) -> Callable[..., Any]:
    """Return *fn* if it can be called to start async work.

    A coroutine object (``f(x)`` instead of ``f, x``) is the classic mistake:
    it has already been created, so trine could neither run it twice nor
    cancel it cleanly. It is refused with a message that says what to do.

    Raises:
      TypeError: if *fn* is a coroutine object or is not callable.
    """
    if inspect.iscoroutine(fn) or inspect.isawaitable(fn):
        # Close it so Python does not also warn "coroutine was never awaited".
        close = getattr(fn, "close", None)
        if close is not None:
            close()
        raise TypeError(
            f"{name} must be an async function, got the coroutine object {fn!r}: "
            "pass the function and its arguments (f, x), not the result of calling it (f(x))"
        )
    if not callable(fn):
        raise TypeError(f"{name} must be an async function, got {fn!r}")
    return fn
