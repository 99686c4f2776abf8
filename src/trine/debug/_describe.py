"""What a blocked task waits on, in words: one describer per trine and Trio type.

:func:`describe_wait` reads a task's await chain from the innermost frame
outwards, up to the first frame of user code:

- the innermost frame whose ``self`` is a public trine object (a limiter, a
  breaker, a service, a pipeline's output) names the wait, from that object's
  ``statistics()``: ``waiting in Bulkhead 'db' (10/10 in use, 3 waiting)``;
- otherwise the outermost Trio primitive in that stretch does (a Lock rather
  than the ParkingLot inside it): ``waiting for a Lock held by 'writer'``, or a
  Trio function (``sleeping until t=12.5 (in 2.5 s)``), or one of a pipeline's
  buffers (``waiting for an item``);
- otherwise the innermost user frame: ``in fetch (app.py:12)``.

Describers read only ``statistics()`` and public attributes, so they hold
however the objects work inside.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any, TypeAlias

import trio

import trine

from ._frames import await_frames, is_plumbing, location, where

__all__ = ["describe_wait", "seconds", "time"]

Describer: TypeAlias = Callable[[Any, types.FrameType, "str | None"], str]
"""``describer(obj, frame, inner)``: *inner* describes the Trio wait inside, if any."""


def time(t: float) -> str:
    """A Trio clock reading as the tree prints it: ``12.5``, ``3``, ``0.001``."""
    text = f"{t:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def seconds(s: float) -> str:
    """A duration as the tree prints it: ``2.5 s``."""
    return f"{time(s)} s"


def _named(obj: object) -> str:
    """``Bulkhead 'db'``: the type, and the name if the object has one."""
    name = getattr(obj, "name", None)
    kind = type(obj).__name__
    return f"{kind} {name!r}" if isinstance(name, str) else kind


def _with(text: str, inner: str | None) -> str:
    return text if inner is None else f"{text}: {inner}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# -- trine's objects ------------------------------------------------------------------


def _in_use(obj: Any, frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    verb = "waiting in" if isinstance(obj, trine.Bulkhead) else "waiting for"
    return (
        f"{verb} {_named(obj)} ({stats.borrowed_tokens}/{stats.total_tokens} in use, "
        f"{stats.tasks_waiting} waiting)"
    )


def _keyed(obj: trine.KeyedLimiter, frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    total = "" if stats.total_tokens is None else f"/{stats.total_tokens}"
    return (
        f"waiting for {_named(obj)} ({stats.per_key} per key; {stats.borrowed_tokens}{total} in "
        f"use over {_plural(stats.keys, 'key')}, {stats.tasks_waiting} waiting)"
    )


def _adaptive(obj: trine.AdaptiveLimiter, frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    return (
        f"waiting for {_named(obj)} ({stats.borrowed_tokens}/{stats.limit} in use, "
        f"{stats.tasks_waiting} waiting)"
    )


def _rate(obj: trine.RateLimiter, frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    return (
        f"waiting for {_named(obj)} ({time(stats.rate)} per {seconds(stats.per)}, "
        f"{stats.tasks_waiting} waiting)"
    )


def _window(obj: trine.SlidingWindowLimiter, frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    return (
        f"waiting for {_named(obj)} ({stats.limit} per {seconds(stats.window)}, "
        f"{stats.tasks_waiting} waiting)"
    )


def _breaker(obj: trine.CircuitBreaker, frame: types.FrameType, inner: str | None) -> str:
    return _with(f"calling through {_named(obj)} ({obj.statistics().state.value})", inner)


def _retry(obj: trine.Retry, frame: types.FrameType, inner: str | None) -> str:
    # No user frame inside: the Retry is between attempts, sleeping its backoff.
    return _with(f"backing off in {_named(obj)}", inner)


def _flight(obj: trine.SingleFlight, frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    return (
        f"waiting for a shared run of {_named(obj)} ({_plural(stats.in_flight, 'run')} in "
        f"flight, {stats.waiting} waiting)"
    )


def _cache(obj: trine.AsyncCache[Any, Any], frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    return f"waiting for a load of {_named(obj)} ({stats.loading} loading, {stats.size} cached)"


def _batcher(obj: trine.Batcher[Any, Any], frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    return (
        f"waiting for a batch of {_named(obj)} ({_plural(stats.waiting, 'item')} waiting, "
        f"{_plural(stats.in_flight, 'batch call')} running)"
    )


def _output(obj: trine.PipelineOutput[Any], frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    busy = ", ".join(f"{stage.name}: {stage.busy_workers}" for stage in stats.stages)
    return f"waiting for the pipeline's next result (busy workers {busy})"


def _graph(obj: trine.TaskGraph, frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    done = stats.succeeded + stats.failed + stats.skipped + stats.cancelled
    return (
        f"running TaskGraph ({stats.running} running, {stats.ready} ready, "
        f"{stats.pending} pending, {done}/{stats.nodes} done)"
    )


def _chaos(obj: trine.Chaos, frame: types.FrameType, inner: str | None) -> str:
    return _with(f"in {_named(obj)}", inner)


# -- Trio's ---------------------------------------------------------------------------


def _event(obj: trio.Event, frame: types.FrameType, inner: str | None) -> str:
    return "waiting for an Event"


def _lock(obj: trio.Lock, frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    owner = "" if stats.owner is None else f" held by {stats.owner.name!r}"
    return f"waiting for a {type(obj).__name__}{owner} ({stats.tasks_waiting} waiting)"


def _semaphore(obj: trio.Semaphore, frame: types.FrameType, inner: str | None) -> str:
    return f"waiting for a Semaphore (value {obj.value}, {obj.statistics().tasks_waiting} waiting)"


def _capacity(obj: trio.CapacityLimiter, frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    return (
        f"waiting for a CapacityLimiter ({stats.borrowed_tokens}/{stats.total_tokens} in use, "
        f"{stats.tasks_waiting} waiting)"
    )


def _condition(obj: trio.Condition, frame: types.FrameType, inner: str | None) -> str:
    return "waiting on a Condition"


def _receive(obj: trio.MemoryReceiveChannel[Any], frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    senders = _plural(stats.open_send_channels, "sender")
    return (
        f"waiting to receive from a memory channel ({stats.current_buffer_used}/"
        f"{_size(stats.max_buffer_size)} buffered, {senders} open)"
    )


def _send(obj: trio.MemorySendChannel[Any], frame: types.FrameType, inner: str | None) -> str:
    stats = obj.statistics()
    return (
        f"waiting to send on a memory channel ({stats.current_buffer_used}/"
        f"{_size(stats.max_buffer_size)} buffered, {stats.tasks_waiting_receive} receiving)"
    )


def _size(size: float) -> str:
    return "inf" if size == math.inf else str(int(size))


def _parking_lot(obj: trio.lowlevel.ParkingLot, frame: types.FrameType, inner: str | None) -> str:
    return f"parked in a ParkingLot ({obj.statistics().tasks_waiting} parked)"


def _nursery(obj: trio.Nursery, frame: types.FrameType, inner: str | None) -> str:
    return f"waiting for {_plural(len(obj.child_tasks), 'child task')} to finish"


def _process(obj: trio.Process, frame: types.FrameType, inner: str | None) -> str:
    return f"waiting for process {obj.pid} to exit"


def _socket_stream(obj: trio.SocketStream, frame: types.FrameType, inner: str | None) -> str:
    verb = "send on" if frame.f_code.co_name.startswith("send") else "receive from"
    return f"waiting to {verb} a socket (fd {obj.socket.fileno()})"


_TRINE: dict[type, Describer] = {
    trine.Bulkhead: _in_use,
    trine.WeightedSemaphore: _in_use,
    trine.PriorityLimiter: _in_use,
    trine.KeyedLimiter: _keyed,
    trine.AdaptiveLimiter: _adaptive,
    trine.RateLimiter: _rate,
    trine.SlidingWindowLimiter: _window,
    trine.CircuitBreaker: _breaker,
    trine.Retry: _retry,
    trine.SingleFlight: _flight,
    trine.AsyncCache: _cache,
    trine.Batcher: _batcher,
    trine.PipelineOutput: _output,
    trine.TaskGraph: _graph,
    trine.Chaos: _chaos,
}
"""By the type of a frame's ``self``: trine's public objects."""

_TRIO: dict[type, Describer] = {
    trio.Event: _event,
    trio.Lock: _lock,
    trio.StrictFIFOLock: _lock,
    trio.Semaphore: _semaphore,
    trio.CapacityLimiter: _capacity,
    trio.Condition: _condition,
    trio.MemoryReceiveChannel: _receive,
    trio.MemorySendChannel: _send,
    trio.lowlevel.ParkingLot: _parking_lot,
    trio.Nursery: _nursery,
    trio.Process: _process,
    trio.SocketStream: _socket_stream,
}
"""By the type of a frame's ``self``: Trio's primitives."""


def _sleep_until(frame: types.FrameType) -> str:
    deadline = frame.f_locals.get("deadline")
    if not isinstance(deadline, float | int) or deadline == math.inf:
        return "sleeping forever"
    return f"sleeping until t={time(deadline)} (in {seconds(deadline - trio.current_time())})"


def _fd_wait(ready: str) -> Callable[[types.FrameType], str]:
    def describe(frame: types.FrameType) -> str:
        sock = frame.f_locals.get("sock")
        fd = sock if isinstance(sock, int) else getattr(sock, "fileno", lambda: "?")()
        return f"waiting for fd {fd} to be {ready}"

    return describe


_TRIO_FUNCTIONS: dict[types.CodeType, Callable[[types.FrameType], str]] = {
    trio.sleep_until.__code__: _sleep_until,
    trio.sleep_forever.__code__: lambda frame: "sleeping forever",
    trio.lowlevel.wait_readable.__code__: _fd_wait("readable"),
    trio.lowlevel.wait_writable.__code__: _fd_wait("writable"),
}
"""By code object: Trio functions that wait."""


_TRINE_INTERNALS: dict[tuple[str, str], str] = {
    ("Buffer", "wait_item"): "waiting for an item",
    ("Buffer", "get"): "waiting for an item",
    ("Buffer", "put"): "waiting for room downstream",
}
"""By (class name, method name): the waits of a pipeline's private buffers. Matched by
name, so that a change inside the pipeline falls back to the frame's location."""


def _lookup(table: dict[type, Describer], obj: object) -> Describer | None:
    for cls in type(obj).__mro__:
        found = table.get(cls)
        if found is not None:
            return found
    return None


def _trine_internal(obj: object, frame: types.FrameType) -> str | None:
    if not type(obj).__module__.startswith("trine."):
        return None
    return _TRINE_INTERNALS.get((type(obj).__name__, frame.f_code.co_name))


def _trio_wait(frame: types.FrameType) -> str | None:
    function = _TRIO_FUNCTIONS.get(frame.f_code)
    if function is not None:
        return function(frame)
    obj = frame.f_locals.get("self")
    if obj is None:
        return None
    describer = _lookup(_TRIO, obj)
    if describer is not None:
        return describer(obj, frame, None)
    if type(obj).__name__ == "SignalReceiver" and type(obj).__module__.startswith("trio."):
        return "waiting for a signal"
    return None


def describe_wait(task: trio.lowlevel.Task) -> str:
    """What *task* is waiting for, in words (see the module docstring)."""
    frames = await_frames(task)
    if not frames:
        return "finished"
    inner: str | None = None
    for frame in reversed(frames):
        if not is_plumbing(frame):
            return inner if inner is not None else f"in {location(frame)}"
        obj = frame.f_locals.get("self")
        if obj is not None:
            describer = _lookup(_TRINE, obj)
            if describer is not None:
                return describer(obj, frame, inner)
        found = (
            _trio_wait(frame) if obj is None else _trine_internal(obj, frame) or _trio_wait(frame)
        )
        if found is not None:
            inner = found  # keep going out: the outermost primitive names the wait
    if inner is not None:
        return inner
    return f"in {where(task)}"
