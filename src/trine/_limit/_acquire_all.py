"""acquire_all: several limiters at once, taken in one global order."""

from __future__ import annotations

import itertools
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, final

import trio
from trio.lowlevel import enable_ki_protection

from ._adaptive import AdaptiveLimiter
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
# Every trine limiter whose hold() takes no argument: nothing to check.
_TRINE_LIMITERS: frozenset[type] = _PLAIN_HOLDS | {AdaptiveLimiter}


def _order_key(limiter: object) -> tuple[int, int]:
    if isinstance(limiter, _KeyedLimiterView):
        return (id(limiter.limiter), hash(limiter.key))
    return (id(limiter), 0)


_Ordered = list[tuple[tuple[int, int], int, LimiterLike]]


def _hash_ties(ordered: _Ordered) -> list[tuple[int, int]]:
    """The runs of *ordered* that share an order key, as ``(start, stop)``; refuse duplicates.

    A run is one limiter passed twice, refused here, unless it is distinct
    keys of one KeyedLimiter whose hashes are equal: those are put in order
    when the block is entered (:func:`_order_ties`).
    """
    ties = []
    start = 0
    for stop in range(1, len(ordered) + 1):
        if stop < len(ordered) and ordered[stop][0] == ordered[start][0]:
            continue
        run = ordered[start:stop]
        for place, (_, first, limiter) in enumerate(run):
            for _, index, other in run[place + 1 :]:
                if not (
                    isinstance(limiter, _KeyedLimiterView)
                    and isinstance(other, _KeyedLimiterView)
                    and limiter.key is not other.key
                    and not limiter.key == other.key
                ):
                    raise ValueError(
                        f"limiters[{index}] is the same limiter as limiters[{first}]: "
                        "pass each one once"
                    )
        if len(run) > 1:
            ties.append((start, stop))
        start = stop
    return ties


def acquire_all(*limiters: LimiterLike) -> AbstractAsyncContextManager[None]:
    """Hold one slot of every limiter at once, taken in one global order.

    Two tasks that take the same locks in different orders can deadlock
    (each holds one and waits for the other's). ``acquire_all`` sorts its
    arguments into an order that is the same for every task (by object
    identity; the keys of one :class:`KeyedLimiter` by hash, and keys whose
    hashes are equal by an order the KeyedLimiter keeps for them while they
    are in use), takes them one by one, and releases them in reverse::

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
      ValueError: if the same limiter is passed twice (for
        :meth:`KeyedLimiter.for_key` views: equal keys of one KeyedLimiter).
    """
    if len(limiters) == 1:  # the fast path: nothing to order, no second layer
        (limiter,) = limiters
        if isinstance(limiter, _TRIO_LIMITERS):
            return _TrioHold(limiter)
        if type(limiter) in _PLAIN_HOLDS:
            return limiter.hold()  # type: ignore[return-value]  # a _Hold entered as None
        _check_limiter(limiter, "limiters[0]")
        # Yours, or an AdaptiveLimiter: the general path, which enters as None
        # and never lets the hold's __aexit__ swallow an error.
        return _AcquireAll([limiter])
    ordered: _Ordered = []
    for index, limiter in enumerate(limiters):
        if not isinstance(limiter, _TRIO_LIMITERS) and type(limiter) not in _TRINE_LIMITERS:
            _check_limiter(limiter, f"limiters[{index}]")
        ordered.append((_order_key(limiter), index, limiter))
    ordered.sort()  # by identity; equal identities end up side by side, by position
    ties = None
    for (key, _, _), (next_key, _, _) in itertools.pairwise(ordered):
        if key == next_key:  # a limiter passed twice, or keys whose hashes are equal
            ties = _hash_ties(ordered)
            break
    return _AcquireAll([limiter for _, _, limiter in ordered], ties)


@final
class _AcquireAll:
    """The context manager :func:`acquire_all` returns.

    What it has taken is a list of Trio primitives (left by ``release()``),
    trine holds (left by their synchronous ``__aexit__``) and your limiters'
    holds (left by awaiting their ``__aexit__``).
    """

    __slots__ = ("_holds", "_leave_at_once", "_limiters", "_ties")

    def __init__(
        self, limiters: list[LimiterLike], ties: list[tuple[int, int]] | None = None
    ) -> None:
        self._limiters = limiters
        self._ties = ties
        """Runs of *limiters* that are keys of one KeyedLimiter with equal hashes."""
        self._holds: list[AbstractAsyncContextManager[object]] = []
        self._leave_at_once = True

    @enable_ki_protection
    async def __aenter__(self) -> None:
        if not self._limiters:
            await trio.lowlevel.checkpoint()
            return
        if self._ties is not None:
            _order_ties(self._limiters, self._ties)
        holds: list[AbstractAsyncContextManager[object]] = []
        leave_at_once = True
        try:
            for limiter in self._limiters:
                if isinstance(limiter, _TRIO_LIMITERS):
                    await limiter.acquire()
                    holds.append(limiter)
                else:
                    hold = limiter.hold()
                    await hold.__aenter__()
                    holds.append(hold)
                    leave_at_once = leave_at_once and type(hold) is _Hold
        except BaseException as error:
            if self._ties is not None:
                _unorder_ties(self._limiters, self._ties)
            await _release_all(holds, error)
            raise
        self._holds = holds
        self._leave_at_once = leave_at_once

    @enable_ki_protection
    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Coroutine[Any, Any, None]:
        holds, self._holds = self._holds, []
        if self._ties is not None:
            # Leaving waits for nothing, so the order is not needed any more.
            _unorder_ties(self._limiters, self._ties)
        if self._leave_at_once:
            # Trio's primitives and trine's holds are left synchronously (see
            # _hold), so everything is given back inside this call.
            _release_now(holds, exc_type, exc_value, traceback)
            return _DONE
        return _release_all(holds, exc_value)


def _order_ties(limiters: list[LimiterLike], ties: list[tuple[int, int]]) -> None:
    """Sort each run of keys with equal hashes by their KeyedLimiter's order for them.

    Hashes cannot tell these keys apart, and equal keys may be different
    objects, so the order comes from the KeyedLimiter: each key's rank,
    given when it is first ranked and kept while any acquire_all ranking it
    is entered. Two tasks that can wait for each other are entered together,
    so they see the same ranks and take the keys in the same order.
    """
    for start, stop in ties:
        run = limiters[start:stop]
        ranked = sorted(run, key=lambda view: _keyed(view).limiter._rank(_keyed(view).key))
        limiters[start:stop] = ranked


def _unorder_ties(limiters: list[LimiterLike], ties: list[tuple[int, int]]) -> None:
    """Give back the ranks :func:`_order_ties` took."""
    for start, stop in ties:
        for view in limiters[start:stop]:
            keyed = _keyed(view)
            keyed.limiter._unrank(keyed.key)


def _keyed(limiter: LimiterLike) -> _KeyedLimiterView:
    assert isinstance(limiter, _KeyedLimiterView)  # only such views tie (_hash_ties)
    return limiter


def _release_now(
    holds: list[AbstractAsyncContextManager[object]],
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """Leave Trio primitives and trine holds, last first, each even if leaving another raises."""
    while holds:
        hold = holds.pop()
        try:
            if isinstance(hold, _TRIO_LIMITERS):
                hold.release()
            else:
                _ = hold.__aexit__(exc_type, exc_value, traceback)  # _DONE: nothing to await
        except BaseException:
            _release_now(holds, exc_type, exc_value, traceback)
            raise


@enable_ki_protection  # awaited by the caller's frame, once __aexit__ has returned it
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
