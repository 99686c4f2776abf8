"""The source task: it reads the pipeline's items into the first buffer.

Whatever the source is -- an iterable, an async iterable, a channel or a
function that returns an async iterator -- the task writes each item with
``put_nowait`` while there is room, and parks only when the buffer is full.
A source that fails is the run's failure (``StageError`` with stage
``"source"``); the task closes what it opened (a generator, an async
generator, a channel) before it ends, in its own task.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import trio

from .._errors import StageError
from .._util import NotAwaitableError, _a, close_unawaited, describe

if TYPE_CHECKING:
    from ._buffer import Buffer
    from ._description import SourceState
    from ._run import Run

__all__ = ["read_source"]


async def read_source(run: Run, source: SourceState, output: Buffer) -> None:
    """Read every item of *source* into *output*; a failure fails the run."""
    items: Any = source.items
    with output.producing():
        try:
            if source.kind in ("iterable", "iterator"):
                await _read_iterable(iter(items), output)
            elif source.kind == "channel":
                await _read_channel(items, output)
            else:
                iterator = items() if source.kind == "function" else aiter(items)
                if not isinstance(iterator, AsyncIterator):
                    # A programming error, not a failure of the source: raised as itself.
                    close_unawaited(iterator)
                    raise NotAwaitableError(
                        "items must be an iterable, an async iterable, a ReceiveChannel or a "
                        "function returning an async iterator, but the function returned "
                        f"{describe(iterator)}, {_a(type(iterator).__name__)}"
                    )
                try:
                    await _read_async(iterator, output)
                finally:
                    # An async generator is finalized here, in its own task,
                    # not later by the garbage collector. Not shielded: if its
                    # clean-up blocks, a cancelled pipeline must not wait for it.
                    if inspect.isasyncgen(iterator):
                        await iterator.aclose()
        except NotAwaitableError:
            raise
        except Exception as exc:
            run.fail(
                StageError(
                    f"the source failed: {type(exc).__name__}: {exc}", stage="source", item=None
                ),
                exc,
            )


async def _read_iterable(iterator: Iterator[Any], output: Buffer) -> None:
    put_nowait = output.put_nowait
    try:
        for item in iterator:
            if not put_nowait(item):
                await output.put(item)
    finally:
        if inspect.isgenerator(iterator):
            iterator.close()  # its finally blocks run now, not at garbage collection


async def _read_channel(channel: trio.abc.ReceiveChannel[Any], output: Buffer) -> None:
    """Read until the channel ends; the run is its consumer, so it closes it when done.

    A producer still sending then learns it at once (``BrokenResourceError``)
    instead of waiting forever. Only :exc:`trio.EndOfChannel` is the end: a
    channel closed under the run (:exc:`trio.ClosedResourceError`) is a failure.
    """
    receive_nowait = getattr(channel, "receive_nowait", None)  # memory channels have it
    put_nowait = output.put_nowait
    try:
        while True:
            try:
                if receive_nowait is None:
                    item = await channel.receive()
                else:
                    try:
                        item = receive_nowait()
                    except trio.WouldBlock:
                        item = await channel.receive()
            except trio.EndOfChannel:
                return
            if not put_nowait(item):
                await output.put(item)
    finally:
        await channel.aclose()


async def _read_async(iterator: AsyncIterator[Any], output: Buffer) -> None:
    put_nowait = output.put_nowait
    async for item in iterator:
        if not put_nowait(item):
            await output.put(item)
