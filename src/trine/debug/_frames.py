"""A task's await chain, and which of its frames are the user's own code.

A suspended Trio task is a chain of coroutine frames, outermost first, linked
by ``cr_await``, ``gi_yieldfrom`` and ``ag_await`` (as
:meth:`trio.lowlevel.Task.iter_await_frames` walks it). A chain that ends in a
frame driving a coroutine by hand (a pipeline worker resumes its function's
coroutine with ``send``, to save an ``await`` per item) goes on into the
suspended coroutine that frame holds. Frames of Trio, trine and the few modules
they are built from are *plumbing*: a wait is described by the objects they
belong to. Every other frame is user code, shown by its place in the source.
"""

from __future__ import annotations

import gc
import inspect
import os
import types
from typing import Any

import trio

__all__ = ["await_frames", "is_plumbing", "location", "where"]

# Top-level packages whose frames are machinery, not the user's code.
_PLUMBING = frozenset({"trio", "trine", "outcome", "contextlib", "functools", "trio_util"})


def await_frames(task: trio.lowlevel.Task) -> list[types.FrameType]:
    """The frames *task* is suspended in, outermost first (empty once it has finished)."""
    frames: list[types.FrameType] = []
    awaitable: Any = task.coro
    seen: set[int] = set()
    while awaitable is not None and id(awaitable) not in seen:
        seen.add(id(awaitable))
        frame, awaitable = _step(awaitable)
        if frame is None:
            break
        frames.append(frame)
        if awaitable is None:
            awaitable = _driven_by_hand(frame)
    return frames


def _step(awaitable: Any) -> tuple[types.FrameType | None, Any]:
    """One link: the awaitable's frame, and what it awaits in turn."""
    if isinstance(awaitable, types.CoroutineType):
        return awaitable.cr_frame, awaitable.cr_await
    if isinstance(awaitable, types.GeneratorType):
        return awaitable.gi_frame, awaitable.gi_yieldfrom
    if isinstance(awaitable, types.AsyncGeneratorType):
        return awaitable.ag_frame, awaitable.ag_await
    if type(awaitable).__name__ in ("async_generator_asend", "async_generator_athrow"):
        # These wrappers do not expose their generator (CPython issue 76991),
        # but hold a reference to it.
        for referent in gc.get_referents(awaitable):
            if isinstance(referent, types.AsyncGeneratorType):
                return referent.ag_frame, referent.ag_await
    return None, None


def _driven_by_hand(frame: types.FrameType) -> types.CoroutineType[Any, Any, Any] | None:
    """A suspended coroutine that *frame* (the end of a chain) holds and resumes itself."""
    for value in frame.f_locals.values():
        if (
            isinstance(value, types.CoroutineType)
            and inspect.getcoroutinestate(value) == inspect.CORO_SUSPENDED
        ):
            return value
    return None


def is_plumbing(frame: types.FrameType) -> bool:
    """Whether *frame* runs Trio's, trine's or the standard plumbing's code."""
    module = frame.f_globals.get("__name__", "")
    return isinstance(module, str) and module.partition(".")[0] in _PLUMBING


def location(frame: types.FrameType) -> str:
    """``function (file.py:12)``: a frame's function, file name and current line."""
    code = frame.f_code
    return f"{code.co_qualname} ({os.path.basename(code.co_filename)}:{frame.f_lineno})"


def where(task: trio.lowlevel.Task) -> str | None:
    """Where *task* is suspended: its innermost user frame, else its innermost frame
    outside Trio (a trine function), else its outermost frame.

    ``None`` if it has no frames (it has finished).
    """
    frames = await_frames(task)
    for frame in reversed(frames):
        if not is_plumbing(frame):
            return location(frame)
    for frame in reversed(frames):
        if not _in_trio(frame):
            return location(frame)
    return location(frames[0]) if frames else None


def _in_trio(frame: types.FrameType) -> bool:
    module = frame.f_globals.get("__name__", "")
    return isinstance(module, str) and module.partition(".")[0] == "trio"
