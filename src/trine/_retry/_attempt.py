"""A call's state across its attempts (``_Run``, used by every way of retrying), and
one attempt of an ``async for attempt in retry:`` loop, with the loop's iterator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, final

import attrs
import trio

from .._util import NotAwaitableError
from .._waits import deliberate
from ._constructor import _NoPublicConstructor

if TYPE_CHECKING:
    from ._retry import Retry

__all__ = ["RetryAttempt"]


@attrs.define(eq=False)
class _Run:
    """The state of one call across its attempts."""

    previous: float
    """The last backoff delay (for decorrelated jitter)."""
    deadline: float | None
    attempt: int = 1
    last_error: Exception | None = None


@final
class RetryAttempt(metaclass=_NoPublicConstructor):
    """One attempt of an ``async for attempt in retry:`` loop; use it as ``with attempt:``.

    Leaving the ``with`` block with a retryable error swallows the error and
    the loop retries after the backoff; leaving it normally ends the loop;
    giving up lets the error out of the ``with`` (with its note). With a
    timeout, the block runs inside a :class:`trio.CancelScope` whose deadline
    is the call's; if it passes, the ``with`` raises :exc:`trio.TooSlowError`.
    """

    __slots__ = ("_iterator", "_number", "_scope")

    def __init__(self, iterator: _RetryIterator, number: int) -> None:
        self._iterator = iterator
        self._number = number
        self._scope: trio.CancelScope | None = None

    @property
    def number(self) -> int:
        """Which attempt this is, from 1."""
        return self._number

    def __repr__(self) -> str:
        return f"<trine.RetryAttempt number={self._number}>"

    def __enter__(self) -> None:
        iterator = self._iterator
        if iterator.entered:
            raise RuntimeError("a RetryAttempt can be entered only once")
        iterator.entered = True
        deadline = iterator.run.deadline
        if deadline is not None:
            self._scope = trio.CancelScope(deadline=deadline)
            self._scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        iterator = self._iterator
        run = iterator.run
        retry = iterator.retry
        scope, self._scope = self._scope, None
        if scope is not None and scope.__exit__(exc_type, exc, traceback):
            # The call's deadline cancelled the block.
            iterator.finished = True
            raise retry._timed_out(run) from run.last_error
        if exc is None or not isinstance(exc, Exception):
            # Success ends the loop; Cancelled and other BaseExceptions pass unchanged.
            iterator.finished = True
            return False
        if _awaited_a_non_awaitable(exc):
            iterator.finished = True
            raise NotAwaitableError(
                "the block of `async for attempt in retry:` awaited something that cannot be "
                f"awaited ({exc}): the function it calls must be defined with async def"
            ) from exc
        delay = retry._after_failure(exc, run)
        if delay is None:
            iterator.finished = True
            return False
        iterator.delay = delay
        return True


def _awaited_a_non_awaitable(error: Exception) -> bool:
    """Whether *error* is Python's own TypeError for ``await`` on something not awaitable.

    Raised by the ``await`` in the block itself (no deeper frame), with one of
    the interpreter's two messages; a TypeError from the called code is
    an ordinary failure.
    """
    if type(error) is not TypeError:
        return False
    traceback = error.__traceback__
    if traceback is None or traceback.tb_next is not None:
        return False
    message = str(error)
    return message.endswith("can't be used in 'await' expression") or message.startswith(
        "__await__() returned"
    )


@final
class _RetryIterator(AsyncIterator[RetryAttempt]):
    """What ``async for`` iterates: it starts the call, then sleeps between attempts."""

    __slots__ = ("delay", "entered", "finished", "retry", "run", "started")

    def __init__(self, retry: Retry) -> None:
        self.retry = retry
        self.run = _Run(retry.backoff.initial, None)
        self.started = False
        self.delay = 0.0
        self.entered = False
        self.finished = False

    async def __anext__(self) -> RetryAttempt:
        retry = self.retry
        if not self.started:
            self.started = True
            self.run = retry._start()
            return RetryAttempt._create(self, 1)
        if self.finished:
            raise StopAsyncIteration
        if not self.entered:
            self.finished = True
            raise RuntimeError(
                "the body of `async for attempt in retry:` must run inside `with attempt:`"
            )
        await trio.sleep(deliberate(self.delay))
        self.run.attempt += 1
        retry._counts.retries += 1
        self.entered = False
        return RetryAttempt._create(self, self.run.attempt)
