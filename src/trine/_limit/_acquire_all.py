"""acquire_all: several limiters at once, taken in one global order."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import final

import trio

from ._keyed import _KeyedLimiterView
from ._protocol import LimiterLike, _check_limiter, open_hold

__all__ = ["acquire_all"]


def _order_key(limiter: object) -> tuple[int, int]:
    if isinstance(limiter, _KeyedLimiterView):
        return (id(limiter.limiter), hash(limiter.key))
    return (id(limiter), 0)


def acquire_all(*limiters: LimiterLike) -> AbstractAsyncContextManager[None]:
    """Hold one slot of every limiter at once, taken in one global order.

    Two tasks that take the same locks in different orders can deadlock
    (each holds one and waits for the other's). ``acquire_all`` sorts its
    arguments into an order that is the same for every task (by object
    identity), takes them one by one, and releases them in reverse::

        async with trine.acquire_all(account_lock[b], account_lock[a]):
            transfer(a, b)

    If taking one of them is cancelled or fails, the ones already taken are
    released before the error propagates. Entering is a checkpoint even with
    no limiters. An error inside the block always propagates (a limiter's
    ``__aexit__`` cannot swallow it here).

    Args:
      limiters: anything :func:`open_hold` accepts, each at most once.

    Raises:
      TypeError: if an argument is not a limiter, naming its position.
      ValueError: if the same limiter is passed twice.
    """
    seen: dict[tuple[int, int], int] = {}
    for index, limiter in enumerate(limiters):
        _check_limiter(limiter, f"limiters[{index}]")
        key = _order_key(limiter)
        if key in seen:
            raise ValueError(
                f"limiters[{index}] is the same limiter as limiters[{seen[key]}]: "
                "pass each one once"
            )
        seen[key] = index
    ordered = sorted(limiters, key=_order_key)
    return _AcquireAll(ordered)


@final
class _AcquireAll:
    """The context manager :func:`acquire_all` returns."""

    __slots__ = ("_holds", "_limiters")

    def __init__(self, limiters: list[LimiterLike]) -> None:
        self._limiters = limiters
        self._holds: list[AbstractAsyncContextManager[object]] = []

    async def __aenter__(self) -> None:
        if not self._limiters:
            await trio.lowlevel.checkpoint()
            return
        holds: list[AbstractAsyncContextManager[object]] = []
        try:
            for limiter in self._limiters:
                hold = open_hold(limiter)
                await hold.__aenter__()
                holds.append(hold)
        except BaseException as error:
            await _release_all(holds, error)
            raise
        self._holds = holds

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        holds, self._holds = self._holds, []
        await _release_all(holds, exc_value)


async def _release_all(
    holds: list[AbstractAsyncContextManager[object]], error: BaseException | None
) -> None:
    """Leave *holds* last first; every one is left even if leaving another raises."""
    if not holds:
        return
    hold = holds.pop()
    try:
        await hold.__aexit__(
            None if error is None else type(error),
            error,
            None if error is None else error.__traceback__,
        )
    finally:
        await _release_all(holds, error)
