"""The calls a TaskPool holds: a start waiting in line, a call made early, its checks."""

from __future__ import annotations

import contextvars
import types
from collections.abc import Awaitable, Callable
from typing import Any, Final, final

import trio

from .._util import check_awaitable, close_unawaited

__all__ = ["_Made", "_Request", "_checked", "_close"]

_CoroutineType: Final = types.CoroutineType


@final
class _Request:
    """A :meth:`TaskPool.start` call waiting in line: its caller and the task to start."""

    __slots__ = ("args", "context", "fn", "name", "task")

    def __init__(
        self, task: trio.lowlevel.Task, fn: Callable[..., Any], args: tuple[Any, ...], name: object
    ) -> None:
        self.task = task
        self.fn = fn
        self.args = args
        self.name = name
        self.context = contextvars.copy_context()
        """The caller's context: the task starts from it, whichever task admits it."""


@final
class _Made:
    """A call already made (its awaitable), for the task to await; closable if never started."""

    __slots__ = ("awaitable",)

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self.awaitable = awaitable

    def __call__(self) -> Awaitable[Any]:
        return self.awaitable


def _checked(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """*fn*, with what each call returns checked to be awaitable (NotAwaitableError if not)."""

    def call(*args: Any) -> Awaitable[Any]:
        awaitable = fn(*args)
        if type(awaitable) is not _CoroutineType:
            awaitable = check_awaitable("fn", awaitable)
        return awaitable  # type: ignore[no-any-return]  # checked just above

    return call


def _close(fn: object) -> None:
    """Close the coroutine of a call made but never started (no "never awaited" warning)."""
    if type(fn) is _Made:
        close_unawaited(fn.awaitable)
