"""Instrumentation hooks: how guards report what they do.

A hook is any callable that takes one event object. Guards that make
decisions a user wants to see (a retry scheduled, a breaker changing state, a
call rejected, an attempt timed out, a fallback used) accept ``hooks=``, a
sequence of hooks, and call each with a frozen, slotted event. The default is
no hooks, so nothing is logged or measured unless you ask::

    def log_event(event: trine.GuardEvent) -> None:
        match event:
            case trine.RetryScheduled(attempt=attempt, delay=delay):
                logger.warning("attempt %d failed, retrying in %.2fs", attempt, delay)
            case trine.CircuitStateChanged(name=name, old=old, new=new):
                logger.error("breaker %s: %s -> %s", name, old, new)

    retry = trine.Retry(attempts=5, hooks=[log_event])

Hooks run synchronously at the moment of the event, after the guard's state
has been updated; an exception from a hook propagates to the caller (a
broken metrics hook should be seen, not hidden).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, TypeAlias

import attrs

from ._util import check_sync_callable, check_sync_result, close_unawaited

__all__ = [
    "AttemptTimedOut",
    "CallRejected",
    "CircuitStateChanged",
    "FallbackUsed",
    "GuardEvent",
    "Hook",
    "RetryGaveUp",
    "RetryScheduled",
    "call_hooks",
    "check_hooks",
]


@attrs.frozen
class RetryScheduled:
    """An attempt failed with a retryable error; the next one starts after *delay*."""

    name: str | None
    """The retrying guard's name, if it was given one; else the name of the
    :class:`~trine.Policy` it runs in, if that has one."""
    attempt: int
    """The number of the attempt that failed, from 1."""
    delay: float
    """Seconds until the next attempt."""
    error: BaseException
    """The error that the failed attempt raised."""
    call: str | None = None
    """The qualified name of the function being called (``"fetch"``,
    ``"Client.get"``), or ``None`` where the guard does not know it."""
    item: str | None = None
    """The call's only argument as :func:`reprlib.repr` shows it (a pipeline
    stage's or a map's item), or ``None`` if it had not exactly one."""


@attrs.frozen
class RetryGaveUp:
    """The retrying guard stopped and re-raises *error*."""

    name: str | None
    attempts: int
    """How many attempts were made in all."""
    error: BaseException
    """The last attempt's error, which is re-raised."""
    reason: str
    """Why it stopped: ``"attempts"`` (none left), ``"budget"`` (the retry budget
    refused), ``"timeout"`` (the overall timeout would pass) or ``"not_retryable"``."""
    call: str | None = None
    """The qualified name of the function being called (``"fetch"``,
    ``"Client.get"``), or ``None`` where the guard does not know it."""
    item: str | None = None
    """The call's only argument as :func:`reprlib.repr` shows it (a pipeline
    stage's or a map's item), or ``None`` if it had not exactly one."""


@attrs.frozen
class CircuitStateChanged:
    """A circuit breaker moved from *old* to *new* (``"closed"``, ``"open"``, ``"half_open"``)."""

    name: str | None
    old: str
    new: str


@attrs.frozen
class CallRejected:
    """A guard refused a call without running it."""

    guard: str
    """Which kind of guard: ``"breaker"``, ``"bulkhead"`` or ``"rate"``."""
    name: str | None
    error: BaseException
    """The exception the caller receives (a :class:`~trine.TrineError`)."""
    call: str | None = None
    """The qualified name of the function being called (``"fetch"``,
    ``"Client.get"``), or ``None`` where the guard does not know it."""
    item: str | None = None
    """The call's only argument as :func:`reprlib.repr` shows it (a pipeline
    stage's or a map's item), or ``None`` if it had not exactly one."""


@attrs.frozen
class AttemptTimedOut:
    """An attempt ran past its timeout and was cancelled."""

    name: str | None
    timeout: float
    """The timeout that passed, in seconds."""
    call: str | None = None
    """The qualified name of the function being called (``"fetch"``,
    ``"Client.get"``), or ``None`` where the guard does not know it."""
    item: str | None = None
    """The call's only argument as :func:`reprlib.repr` shows it (a pipeline
    stage's or a map's item), or ``None`` if it had not exactly one."""


@attrs.frozen
class FallbackUsed:
    """The inner layers failed with *error* and the fallback's value is returned instead."""

    name: str | None
    error: BaseException
    call: str | None = None
    """The qualified name of the function being called (``"fetch"``,
    ``"Client.get"``), or ``None`` where the guard does not know it."""
    item: str | None = None
    """The call's only argument as :func:`reprlib.repr` shows it (a pipeline
    stage's or a map's item), or ``None`` if it had not exactly one."""


GuardEvent: TypeAlias = (
    RetryScheduled
    | RetryGaveUp
    | CircuitStateChanged
    | CallRejected
    | AttemptTimedOut
    | FallbackUsed
)
"""Every event a hook can receive."""


class Hook(Protocol):
    """A callable that receives every :data:`GuardEvent` of the guard it is given to."""

    def __call__(self, event: GuardEvent, /) -> None: ...


def check_hooks(hooks: Iterable[Hook] | None) -> tuple[Hook, ...]:
    """Validate a ``hooks=`` argument and return it as a tuple.

    Raises:
      TypeError: naming ``hooks``, for a single callable instead of a
        sequence, something that is not iterable, an element that is not
        callable, and an async or generator function (``hooks[i]``), which
        trine would call without awaiting, so it would never run.
    """
    if hooks is None:
        return ()
    if callable(hooks):
        raise TypeError(f"hooks must be a sequence of callables, got the single callable {hooks!r}")
    try:
        result = tuple(hooks)
    except TypeError:
        close_unawaited(hooks)  # a coroutine object is not iterable either
        raise TypeError(f"hooks must be a sequence of callables, got {hooks!r}") from None
    for index, hook in enumerate(result):
        if not callable(hook):
            raise TypeError(f"hooks must contain only callables, got {hook!r}")
        check_sync_callable(f"hooks[{index}]", hook)
    return result


def call_hooks(hooks: tuple[Hook, ...], event: GuardEvent) -> None:
    """Give *event* to every hook, in order.

    Raises:
      TypeError: if a hook returned a coroutine (a lambda calling an async
        function): it would never run.
    """
    for hook in hooks:
        call: Callable[[GuardEvent], object] = hook  # typed to return None; may not
        result = call(event)
        if result is not None:
            check_sync_result("hooks", result)
