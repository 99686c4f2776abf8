"""acquire_all: several limiters at once, taken in one global order."""

from __future__ import annotations

from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, final

import trio
from trio.lowlevel import enable_ki_protection

from ._bulkhead import Bulkhead
from ._hold import _DONE, _TRIO_LIMITERS, _Hold, _TrioHold
from ._keyed import _KeyedLimiterView
from ._priority import PriorityLimiter
from ._protocol import LimiterLike, _check_limiter
from ._weighted import WeightedSemaphore

__all__ = ["acquire_all"]

# Limiters whose hold() is a trine _Hold entered as None: with one of them
# alone, acquire_all hands out that hold itself.
_PLAIN_HOLDS: frozenset[type] = frozenset(
    {Bulkhead, PriorityLimiter, WeightedSemaphore, _KeyedLimiterView}
)


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

    :exc:`KeyboardInterrupt` cannot leave a slot taken: entering and leaving
    are protected as Trio protects its own primitives (a Ctrl-C is delivered
    at a checkpoint, while waiting for a slot, never between taking a slot and
    recording it), and trine's limiters and Trio's are given back inside the
    call ``async with`` makes on the way out, before the point where Python
    looks for signals.

    With one limiter, ``acquire_all(limiter)`` costs what entering that
    limiter alone costs: no sorting, no second layer.

    Args:
      limiters: anything :func:`open_hold` accepts, each at most once.

    Raises:
      TypeError: if an argument is not a limiter, naming its position.
      ValueError: if the same limiter is passed twice.
    """
    if len(limiters) == 1:
        return _acquire_one(limiters[0])
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
    return _AcquireAll(sorted(limiters, key=_order_key))


def _acquire_one(limiter: LimiterLike) -> AbstractAsyncContextManager[None]:
    """The fast path of :func:`acquire_all`: one limiter, nothing to order."""
    if isinstance(limiter, _TRIO_LIMITERS):
        return _TrioHold(limiter)
    if type(limiter) in _PLAIN_HOLDS:
        return limiter.hold()  # type: ignore[return-value]  # a _Hold entered as None
    _check_limiter(limiter, "limiters[0]")
    # Yours, or an AdaptiveLimiter: one layer more, which enters as None and
    # never lets the hold's __aexit__ swallow an error.
    return _AcquireAll([limiter])


def _open(limiter: LimiterLike) -> AbstractAsyncContextManager[object]:
    if isinstance(limiter, _TRIO_LIMITERS):
        return _TrioHold(limiter)
    return limiter.hold()


@final
class _AcquireAll:
    """The context manager :func:`acquire_all` returns."""

    __slots__ = ("_holds", "_leave_at_once", "_limiters")

    def __init__(self, limiters: list[LimiterLike]) -> None:
        self._limiters = limiters
        self._holds: list[AbstractAsyncContextManager[object]] = []
        self._leave_at_once = True

    @enable_ki_protection
    async def __aenter__(self) -> None:
        if not self._limiters:
            await trio.lowlevel.checkpoint()
            return
        holds: list[AbstractAsyncContextManager[object]] = []
        try:
            for limiter in self._limiters:
                hold = _open(limiter)
                await hold.__aenter__()
                holds.append(hold)
        except BaseException as error:
            await _release_all(holds, error)
            raise
        self._holds = holds
        self._leave_at_once = all(type(hold) in (_Hold, _TrioHold) for hold in holds)

    @enable_ki_protection
    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Coroutine[Any, Any, None]:
        holds, self._holds = self._holds, []
        if self._leave_at_once:
            # trine's and Trio's holds are left synchronously (see _hold), so
            # everything is given back inside this call.
            _release_now(holds, exc_value)
            return _DONE
        return _release_all(holds, exc_value)


def _exit_details(
    error: BaseException | None,
) -> tuple[type[BaseException] | None, BaseException | None, TracebackType | None]:
    if error is None:
        return None, None, None
    return type(error), error, error.__traceback__


def _release_now(
    holds: list[AbstractAsyncContextManager[object]], error: BaseException | None
) -> None:
    """Leave holds whose ``__aexit__`` is synchronous, last first, each even if another raises."""
    if not holds:
        return
    hold = holds.pop()
    try:
        _ = hold.__aexit__(*_exit_details(error))  # returns _DONE: nothing to await
    finally:
        _release_now(holds, error)


@enable_ki_protection  # awaited by the caller's frame, once __aexit__ has returned it
async def _release_all(
    holds: list[AbstractAsyncContextManager[object]], error: BaseException | None
) -> None:
    """Leave *holds* last first; every one is left even if leaving another raises."""
    if not holds:
        return
    hold = holds.pop()
    try:
        await hold.__aexit__(*_exit_details(error))
    finally:
        await _release_all(holds, error)
