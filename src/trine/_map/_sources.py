"""The maps' sources: an async iterator shared by many workers, closing a source, its length."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sized
from typing import Any, Generic, TypeVar

import trio

__all__ = ["_AsyncSource", "_close_source", "_is_async", "_length"]

_T = TypeVar("_T")


class _AsyncSource(Generic[_T]):
    """Lets many workers take turns at one async iterator's ``__anext__``.

    ``__anext__`` may yield to the scheduler, and an async generator raises if
    a second task enters it meanwhile, so workers hold a turn around it: a
    flag, and a :class:`trio.lowlevel.ParkingLot` for those waiting.
    """

    __slots__ = ("_busy", "_turns", "exhausted", "iterator")

    def __init__(self, iterator: AsyncIterator[_T]) -> None:
        self.iterator = iterator
        self._busy = False
        self._turns = trio.lowlevel.ParkingLot()
        self.exhausted = False

    async def acquire(self) -> None:
        """Wait for the turn; pair with :meth:`release` on every path."""
        while self._busy:
            await self._turns.park()
        self._busy = True

    def release(self) -> None:
        self._busy = False
        if self._turns:
            self._turns.unpark()

    async def next(self) -> _T:
        """The next item (the caller holds the turn)."""
        try:
            return await self.iterator.__anext__()
        except StopAsyncIteration:
            self.exhausted = True
            raise


def _is_async(items: Iterable[_T] | AsyncIterable[_T]) -> bool:
    return not isinstance(items, Iterable) or isinstance(items, AsyncIterable)


async def _close_source(
    source: Iterator[Any] | None, async_source: _AsyncSource[Any] | None
) -> None:
    """Close a (async) generator that we took items from, as a ``for`` loop would."""
    if source is not None and inspect.isgenerator(source):
        source.close()
    if async_source is not None:
        iterator = async_source.iterator
        if inspect.isasyncgen(iterator):
            await iterator.aclose()


def _length(items: object) -> int | None:
    """``len(items)``, if *items* has one (and it fits in an int); else ``None``."""
    if not isinstance(items, Sized):
        return None
    try:
        return len(items)
    except OverflowError:  # a range longer than sys.maxsize
        return None
