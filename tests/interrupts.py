"""KeyboardInterrupt at every point of a guard's code, for tests (not collected by pytest).

A real SIGINT lands between two bytecodes of whatever frame is running, and
Trio's handler then raises :exc:`KeyboardInterrupt` right there, unless the
frame is KI-protected (:func:`trio.lowlevel.enable_ki_protection`), in which
case it is delivered at the main task's next checkpoint. :func:`interrupt_at`
does exactly that, deterministically: it traces opcodes and, at the *n*-th
one executed in the watched files, calls Trio's SIGINT handler with that
frame, as the signal would. Trying every *n* tries every place a Ctrl-C can
land (every opcode, which is more places than CPython checks for signals).

:func:`interrupt_points` saves most of those runs: an interrupt deferred from
anywhere in a stretch of protected opcodes that no suspension or call
boundary breaks is delivered at the same checkpoint, so only the first of
each stretch needs a run. With ``signal_checks_only=True`` it keeps only the
opcodes where CPython 3.11 runs signal handlers at all (:func:`_checks_signals`):
code whose frames are not protected relies on exactly that, as every
``async with lock:`` in a Trio program does.
"""

from __future__ import annotations

import dis
import functools
import gc
import pathlib
import signal
import sys
from collections.abc import Callable, Iterable
from types import CodeType, FrameType, ModuleType
from typing import Any

import trio
import trio.lowlevel
import trio.testing


def _run(main: Callable[[], Any], tracer: Callable[..., object]) -> None:
    # No collection during the run: a finalizer of an earlier run's garbage
    # would run (and count opcodes) at a random point of this one.
    gc.disable()
    sys.settrace(tracer)
    try:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        sys.settrace(None)
        gc.enable()


@functools.cache
def _instructions(code: CodeType) -> dict[int, dis.Instruction]:
    return {instruction.offset: instruction for instruction in dis.get_instructions(code)}


_CALLS = frozenset({"CALL", "CALL_FUNCTION_EX"})


def _checks_signals(instruction: dis.Instruction, previous: str | None) -> bool:
    """Whether CPython 3.11 may run a signal handler just before *instruction*.

    It does so at a function's start and after a ``yield`` (``RESUME`` with
    arg 0 or 1, not after an ``await``), on a loop's backward jump, and after
    a call returns (only C calls really, but every call is counted here).
    """
    name = instruction.opname
    return (
        (name == "RESUME" and instruction.arg is not None and instruction.arg < 2)
        or name == "JUMP_BACKWARD"
        or previous in _CALLS
    )


def interrupt_points(
    main: Callable[[], Any], files: Iterable[str], *, signal_checks_only: bool = False
) -> list[int]:
    """Run *main* once, untouched, and return the opcode numbers worth interrupting at."""
    watched = set(files)
    points: list[int] = []
    count = 0
    stretch_open = False  # inside a stretch of protected opcodes already represented
    previous: dict[int, str] = {}  # the last opcode each frame ran

    def local(frame: FrameType, event: str, arg: object) -> object:
        nonlocal count, stretch_open
        if event == "opcode":
            count += 1
            instruction = _instructions(frame.f_code)[frame.f_lasti]
            before = previous.get(id(frame))
            previous[id(frame)] = instruction.opname
            if signal_checks_only and not _checks_signals(instruction, before):
                return local
            protected = trio.lowlevel.currently_ki_protected()  # sees the traced frame
            if not protected:
                points.append(count)
                stretch_open = False
            elif not stretch_open:
                points.append(count)
                stretch_open = True
        else:  # the frame suspends, resumes or returns: a new stretch
            stretch_open = False
            if event == "return":
                previous.pop(id(frame), None)
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> object:
        nonlocal stretch_open
        if frame.f_code.co_filename not in watched:
            return None
        stretch_open = False
        frame.f_trace_opcodes = True
        return local

    _run(main, tracer)
    return points


def interrupt_at(n: int, main: Callable[[], Any], files: Iterable[str]) -> None:
    """``trio.run(main)``, with a SIGINT landing at the *n*-th opcode run in *files*.

    The run's KeyboardInterrupt (bare, or from a task in a nursery) is
    caught here; the caller checks what the interrupt left behind.
    """
    watched = set(files)
    count = 0
    fired = False

    def local(frame: FrameType, event: str, arg: object) -> object:
        nonlocal count, fired
        if event == "opcode" and not fired:
            count += 1
            if count == n:
                fired = True
                handler = signal.getsignal(signal.SIGINT)
                assert callable(handler), "trio.run installs its SIGINT handler"
                handler(signal.SIGINT, frame)  # raises here unless the frame is protected
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> object:
        if fired or frame.f_code.co_filename not in watched:
            return None
        frame.f_trace_opcodes = True
        return local

    try:
        _run(main, tracer)
    except* KeyboardInterrupt:
        pass
    assert fired, f"the run has fewer than {n} opcodes in the watched files"


def source_files(module: ModuleType) -> list[str]:
    """The files of *module*'s code: its own, or every module's of a package."""
    path = pathlib.Path(module.__file__ or "")
    if path.name != "__init__.py":
        return [str(path)]
    return sorted(str(file) for file in path.parent.glob("*.py"))
