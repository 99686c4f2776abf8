"""What a guard's event says was being called: the function's name, its item, the Policy.

Guards build events only when they have hooks, on the paths that report
something (a failure, a refusal, a timeout), so what is computed here never
touches a call that succeeds. Inside a :class:`~trine.Policy` a guard is
handed a Policy *layer* and the user's ``(fn, args)`` as its arguments; the
Policy marks its layers (:func:`mark_layer`), so :func:`describe_call` can see
through them to the user's function, and tell the guard which Policy it runs
in, whose name its events then carry when it has none of its own.
"""

from __future__ import annotations

import functools
import reprlib
import types
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

__all__ = ["CallDescription", "describe_call", "mark_layer", "mark_pass_through"]

_F = TypeVar("_F", bound=Callable[..., Any])

_LAYER = "__trine_policy_layer__"
"""Attribute of a Policy layer: ``(policy name,)``. A layer is called
``layer(fn, args)``, or ``layer(fn, args, *more)`` by a breaker."""
_PASS_THROUGH = "__trine_passes_through__"
"""Attribute of a callable called as ``through(fn, *args)`` that calls ``fn(*args)`` (Chaos)."""

_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60


@attrs.frozen
class CallDescription:
    policy: tuple[str | None] | None
    """``(name,)`` of the Policy the call went through, or ``None`` outside one."""
    call: str | None
    """The function's qualified name."""
    item: str | None
    """Its only argument as :mod:`reprlib` shows it, or ``None`` unless it had exactly one."""


def mark_layer(layer: _F, policy_name: str | None, *, shared: tuple[object, ...] = ()) -> _F:
    """Mark *layer* as one of a Policy's layers (a copy of it if it is in *shared*)."""
    if layer in shared and isinstance(layer, types.FunctionType):
        # A module-level layer several Policies use: this Policy gets its own
        # function object, with the same code (so the same cost per call).
        copy = types.FunctionType(
            layer.__code__, layer.__globals__, layer.__name__, layer.__defaults__, layer.__closure__
        )
        copy.__qualname__ = layer.__qualname__
        layer = copy  # type: ignore[assignment]  # the same signature
    setattr(layer, _LAYER, (policy_name,))
    return layer


def mark_pass_through(fn: _F) -> _F:
    """Mark *fn* (called ``fn(target, *args)``) as calling ``target(*args)``."""
    setattr(fn, _PASS_THROUGH, True)
    return fn


def _qualname(fn: object) -> str:
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__qualname__", None)
    if isinstance(name, str):
        return name
    return type(fn).__qualname__  # a callable object


def describe_call(fn: object, args: tuple[Any, ...]) -> CallDescription:
    """Describe ``fn(*args)`` as a guard saw it: through any Policy layer to the user's call."""
    policy = getattr(fn, _LAYER, None)
    if policy is not None and len(args) >= 2 and isinstance(args[1], tuple):
        fn, args = args[0], args[1]
    while getattr(fn, _PASS_THROUGH, False) and args:
        fn, args = args[0], args[1:]
    item = _repr.repr(args[0]) if len(args) == 1 else None
    return CallDescription(policy, _qualname(fn), item)
