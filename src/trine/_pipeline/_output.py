"""The caller's end of a run: :class:`PipelineOutput`, read inside ``async with pipe.open()``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

import trio

from .._values import ReadOnlyValue
from ._statistics import PipelineStatistics

if TYPE_CHECKING:
    from ._buffer import Buffer
    from ._run import Run

__all__ = ["PipelineOutput"]

T_co = TypeVar("T_co", covariant=True)


@final
class PipelineOutput(Generic[T_co]):
    """The results of a running pipeline: ``async for item in output``.

    Also :meth:`receive` (raising :exc:`trio.EndOfChannel` at the end), as a
    :class:`trio.abc.ReceiveChannel` does. Every item checks for cancellation;
    the scheduler is visited whenever no result is waiting, which is at least
    once every ``buffer`` results (the stages cannot refill the buffer while
    your loop runs without yielding). Several tasks may read one output; each
    result goes to one of them. Once :meth:`Pipeline.open` has exited, reading
    raises :exc:`trio.ClosedResourceError`, as a closed channel does; so does
    reading from another task once the run was stopped before its end.
    """

    __slots__ = ("_buffer", "_closed", "_delivered", "_delivered_view", "_run")

    def __init__(self, run: Run, buffer: Buffer) -> None:
        self._run = run
        self._buffer = buffer
        self._closed = False
        self._delivered = 0
        # delivered_value, made when first asked for (None: nothing updates it)
        self._delivered_view: ReadOnlyValue[int] | None = None

    def __aiter__(self) -> PipelineOutput[T_co]:
        return self

    async def __anext__(self) -> T_co:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError(
                "this pipeline run has ended: read its output inside `async with pipe.open()`"
            )
        buffer = self._buffer
        if not buffer.items and not await buffer.wait_item():
            if buffer.aborted:
                raise trio.ClosedResourceError("this pipeline run was stopped before its end")
            raise StopAsyncIteration
        item = buffer.take()
        if buffer._getters:  # another reader waits, and our caller may block next
            buffer.hand_off()
        self._delivered += 1
        if self._delivered_view is not None:
            self._delivered_view._set(self._delivered)
        return item  # type: ignore[no-any-return]  # buffers hold Any

    async def receive(self) -> T_co:
        """The next result.

        Raises:
          trio.EndOfChannel: when the pipeline has delivered everything.
          trio.ClosedResourceError: after :meth:`Pipeline.open` has exited, or
            (to a task reading from outside the block) when the run was
            stopped before its end.
        """
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise trio.EndOfChannel from None

    async def _drain(self, sink: Callable[[Iterable[Any]], object] | None) -> None:
        """Hand every result to *sink* (or drop it), as many at a time as wait."""
        buffer = self._buffer
        while await buffer.wait_item():
            buffer.take_all(sink)

    @property
    def delivered_value(self) -> ReadOnlyValue[int]:
        """How many results this output has handed out, as a read-only
        :class:`trio_util.AsyncValue` to wait on::

            async with pipe.open() as out:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(report, out.delivered_value)
                    async for result in out: ...

            async def report(delivered):
                async for count in delivered.eventual_values():
                    print(f"{count} done")

        It counts the results read from this output (``async for``,
        :meth:`receive`), by any task.
        """
        view = self._delivered_view
        if view is None:
            view = self._delivered_view = ReadOnlyValue(self._delivered, "delivered_value")
        return view

    def statistics(self) -> PipelineStatistics:
        """The same as :meth:`Pipeline.statistics` for this run."""
        return self._run.statistics()
