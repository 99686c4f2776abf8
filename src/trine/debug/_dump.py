"""dump_on_signal(): print the task tree whenever the process gets a signal."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol, final

import trio

from trine._service import ServiceNursery
from trine._util import describe

from ._tree import task_tree

__all__ = ["dump_on_signal"]


class _Writable(Protocol):
    def write(self, text: str, /) -> object: ...


def _check_signal(signum: object) -> int:
    if not isinstance(signum, int) or isinstance(signum, bool):
        raise TypeError(f"signum must be a signal number (an int), got {describe(signum)}")
    # valid_signals(), not signal.Signals: real-time signals (SIGRTMIN+1, ...) have no name.
    if signum not in signal.valid_signals():
        raise ValueError(f"signum must be a signal number, got {describe(signum)}")
    return signum


def dump_on_signal(
    signum: int = getattr(signal, "SIGUSR1", signal.SIGINT),
    *,
    file: _Writable | None = None,
) -> AbstractAsyncContextManager[None]:
    """Print :func:`task_tree` each time the process gets *signum*, inside the block.

    So a process that seems hung can be asked what it is doing, from outside::

        async with trine.debug.dump_on_signal(signal.SIGUSR1):
            await serve()

        # in a shell:  kill -USR1 <pid>   -> the task tree on the process's stderr

    The tree is printed by a task in the block's own nursery (it shows in the
    tree as ``trine.debug.dump_on_signal``, running), which is cancelled when
    the block ends; the block's own exception comes out as itself. Signals
    are received with :func:`trio.open_signal_receiver`, so this must run in
    the main thread, and the signal's previous handler is back after the block.

    Args:
      signum: the signal, by default ``signal.SIGUSR1`` (on Windows, which has
        none, ``SIGINT``).
      file: where to write (``write(str)`` and, if it has one, ``flush()``);
        by default :data:`sys.stderr` as it is when the signal arrives.

    Raises:
      TypeError: if *signum* is not an int, or *file* has no ``write``.
      ValueError: if *signum* is not a signal number.
      RuntimeError: on entering, outside the main thread (from
        :func:`trio.open_signal_receiver`).
    """
    checked = _check_signal(signum)
    if file is not None and not callable(getattr(file, "write", None)):
        raise TypeError(f"file must have a write method, got {describe(file)}")
    return _SignalDump(checked, file)


@final
class _SignalDump:
    def __init__(self, signum: int, file: _Writable | None) -> None:
        self._signum = signum
        self._file = file
        self._service = ServiceNursery("dump_on_signal")
        self._nursery: trio.Nursery | None = None
        self._receiver = contextlib.ExitStack()

    async def __aenter__(self) -> None:
        # The receiver is open before the block starts: a signal sent right
        # after entering is not lost.
        signals = self._receiver.enter_context(trio.open_signal_receiver(self._signum))
        try:
            nursery = self._nursery = await self._service.open()
        except BaseException:
            self._receiver.close()
            raise
        nursery.start_soon(self._print_each, signals, name="trine.debug.dump_on_signal")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._nursery is not None
        try:
            return await self._service.close(self._nursery, exc_type, exc, tb)
        finally:
            self._receiver.close()

    async def _print_each(self, signals: AsyncIterator[int]) -> None:
        async for _ in signals:
            out = self._file if self._file is not None else sys.stderr
            out.write(task_tree())
            flush = getattr(out, "flush", None)
            if callable(flush):
                flush()
