"""The Limiter protocol, and the adapter every consumer of limiters goes through."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeAlias

import trio

from ._hold import _TRIO_LIMITERS
from ._keyed import KeyedLimiter

__all__ = ["Limiter", "LimiterLike", "hold_opener", "open_hold"]


class Limiter(Protocol):
    """Anything with a ``hold()`` method returning an async context manager.

    Every trine limiter is one (a :class:`KeyedLimiter` through
    :meth:`KeyedLimiter.for_key`), and so is your own class if it has such a
    method. Functions that take a limiter accept a :data:`LimiterLike`: a
    :class:`Limiter`, or a :class:`trio.CapacityLimiter`,
    :class:`trio.Semaphore` or :class:`trio.Lock`, which are async context
    managers themselves.
    """

    def hold(self) -> AbstractAsyncContextManager[object]:
        """Return an async context manager that holds a slot while inside it."""
        ...


LimiterLike: TypeAlias = (
    Limiter | trio.CapacityLimiter | trio.Semaphore | trio.Lock | trio.StrictFIFOLock
)
"""What functions that take a limiter accept (see :func:`open_hold`)."""


def _check_limiter(limiter: object, name: str) -> None:
    if isinstance(limiter, _TRIO_LIMITERS):
        return
    if callable(getattr(limiter, "hold", None)):
        return
    raise TypeError(
        f"{name} must be a limiter (an object with a hold() method, or a "
        f"trio.CapacityLimiter, trio.Semaphore or trio.Lock), got {limiter!r}"
    )


def _takes_no_arguments(method: Callable[..., object]) -> bool:
    try:
        inspect.signature(method).bind()
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): trust it
        return True
    return True


def _check_holdable(limiter: object, name: str, *, read_signature: bool) -> None:
    """Refuse, naming *name*, what is not a :data:`LimiterLike` whose ``hold()`` takes no arguments.

    A :class:`KeyedLimiter` (its ``hold()`` needs a key) and a class (its
    ``hold()`` needs an instance) are always refused, with a hint. Any other
    ``hold()``'s signature is read only with *read_signature*: for checks made
    once, at construction, not on every call.
    """
    if isinstance(limiter, _TRIO_LIMITERS):
        return
    _check_limiter(limiter, name)
    keyed = isinstance(limiter, KeyedLimiter)
    if not (read_signature or keyed or isinstance(limiter, type)):
        return
    if _takes_no_arguments(limiter.hold):  # type: ignore[attr-defined]  # checked just above
        return
    hint = "; pass keyed.for_key(key)" if keyed else ""
    if isinstance(limiter, type):
        hint = "; pass an instance, not the class"
    raise TypeError(
        f"{name} must be a limiter whose hold() takes no arguments, got {limiter!r}{hint}"
    )


def hold_opener(
    limiter: LimiterLike, *, name: str = "limiter"
) -> Callable[[], AbstractAsyncContextManager[object]]:
    """Check *limiter* once; return a function that holds one slot of it per call.

    For callers that hold the same limiter many times (a Policy, a pipeline
    stage): the check, including that ``hold()`` needs no arguments, happens
    here, at construction, not on every call.

    Raises:
      TypeError: naming *name*, if *limiter* is not a :data:`LimiterLike` or
        its ``hold()`` needs arguments (a :class:`KeyedLimiter`: pass
        ``keyed.for_key(key)``; a class: pass an instance).
    """
    if isinstance(limiter, _TRIO_LIMITERS):
        return lambda: limiter
    _check_holdable(limiter, name, read_signature=True)
    return limiter.hold


def open_hold(
    limiter: LimiterLike, *, name: str = "limiter"
) -> AbstractAsyncContextManager[object]:
    """Return the async context manager that holds one slot of *limiter*.

    This is how everything in trine that takes a limiter uses it::

        async with open_hold(limiter):
            await fn(*args)

    Args:
      limiter: a :class:`Limiter` (its ``hold()`` is called with no
        arguments), or a :class:`trio.CapacityLimiter`, :class:`trio.Semaphore`,
        :class:`trio.Lock` or :class:`trio.StrictFIFOLock` (returned as they
        are: they are async context managers themselves).
      name: the caller's parameter name, used in the error message.

    Raises:
      TypeError: if *limiter* is none of those, naming *name*.
    """
    if isinstance(limiter, _TRIO_LIMITERS):
        return limiter
    _check_limiter(limiter, name)
    return limiter.hold()
