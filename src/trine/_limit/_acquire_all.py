"""acquire_all: several limiters at once, taken in one global order."""

from __future__ import annotations

import itertools
from collections.abc import Coroutine, Hashable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, final

import trio
from trio.lowlevel import enable_ki_protection

from ._adaptive import AdaptiveLimiter
from ._bulkhead import Bulkhead
from ._hold import _DONE, _TRIO_LIMITERS, _Hold, _TrioHold
from ._keyed import _KeyedLimiterKeys, _KeyedLimiterView
from ._priority import PriorityLimiter
from ._protocol import LimiterLike, _check_holdable
from ._weighted import WeightedSemaphore

__all__ = ["acquire_all"]

# Limiters whose hold() is a trine _Hold entered as None: with one of them
# alone, acquire_all hands out that hold itself.
_PLAIN_HOLDS: frozenset[type] = frozenset(
    {Bulkhead, PriorityLimiter, WeightedSemaphore, _KeyedLimiterView}
)
# Every trine limiter whose hold() takes no argument: nothing to check.
_TRINE_LIMITERS: frozenset[type] = _PLAIN_HOLDS | {AdaptiveLimiter}


_Ordered = list[tuple[int, int, LimiterLike]]
"""``(order, position, limiter)``: the order is the identity (for keys, their KeyedLimiter's)."""


def _keys_of_one(views: list[tuple[int, _KeyedLimiterView]]) -> tuple[int, int, LimiterLike]:
    """What acquire_all takes for the keys of one KeyedLimiter passed to it (at their places).

    One key is that key's own hold. Several are one hold of them all, taken in
    one step: each key takes a slot of ``total``, so taking them one by one
    could leave two tasks each holding part of ``total`` and waiting for the
    rest. Equal keys are refused as one limiter passed twice, and more keys
    than ``total`` as a set that could never be held.
    """
    first, view = views[0]
    limiter = view.limiter
    if len(views) == 1:
        return (id(limiter), first, view)
    places: dict[Hashable, int] = {}
    for index, view in views:
        place = places.setdefault(view.key, index)
        if place != index:
            raise ValueError(
                f"limiters[{index}] is the same limiter as limiters[{place}]: pass each one once"
            )
    total = limiter.total
    if total is not None and len(views) > total:
        *others, last = (f"limiters[{index}]" for index, _ in views)
        names = f"{', '.join(others)} and {last}"
        raise ValueError(
            f"{names} are {len(views)} keys of one KeyedLimiter whose total is {total}: "
            "they can never be held at once"
        )
    return (id(limiter), first, _KeyedLimiterKeys(limiter, tuple(places)))


def acquire_all(*limiters: LimiterLike) -> AbstractAsyncContextManager[None]:
    """Hold one slot of every limiter at once, taken in one global order.

    Two tasks that take the same locks in different orders can deadlock
    (each holds one and waits for the other's). ``acquire_all`` sorts its
    arguments into an order that is the same for every task (by object
    identity), takes them one by one, and releases them in reverse::

        async with trine.acquire_all(account_lock[b], account_lock[a]):
            transfer(a, b)

    Several keys of one :class:`KeyedLimiter` (:meth:`KeyedLimiter.for_key`)
    are taken in one step, all or none: a slot of each key and as many of its
    ``total``, which they share. (Taken one by one, two tasks could each hold
    part of the total and wait for the rest.) That step is FIFO: a task owed
    several slots of the total is served before later tasks needing fewer.

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
      TypeError: if an argument is not a limiter, or one whose ``hold()``
        needs arguments (a :class:`KeyedLimiter` itself: pass
        ``keyed.for_key(key)``; a class: pass an instance), naming its position.
      ValueError: if the same limiter is passed twice (for
        :meth:`KeyedLimiter.for_key` views: equal keys of one KeyedLimiter),
        or more keys of one KeyedLimiter than its ``total``, which could never
        be held at once.
    """
    if len(limiters) == 1:  # the fast path: nothing to order, no second layer
        (limiter,) = limiters
        if isinstance(limiter, _TRIO_LIMITERS):
            return _TrioHold(limiter)
        if type(limiter) in _PLAIN_HOLDS:
            return limiter.hold()  # type: ignore[return-value]  # a _Hold entered as None
        if type(limiter) is not AdaptiveLimiter:
            _check_holdable(limiter, "limiters[0]", read_signature=False)
        # Yours, or an AdaptiveLimiter: the general path, which enters as None
        # and never lets the hold's __aexit__ swallow an error.
        return _AcquireAll([limiter])
    ordered: _Ordered = []
    keyed: dict[int, list[tuple[int, _KeyedLimiterView]]] | None = None
    for index, limiter in enumerate(limiters):
        if type(limiter) is _KeyedLimiterView:
            if keyed is None:
                keyed = {}
            keyed.setdefault(id(limiter.limiter), []).append((index, limiter))
            continue
        if not isinstance(limiter, _TRIO_LIMITERS) and type(limiter) not in _TRINE_LIMITERS:
            _check_holdable(limiter, f"limiters[{index}]", read_signature=False)
        ordered.append((id(limiter), index, limiter))
    if keyed is not None:
        ordered.extend(_keys_of_one(views) for views in keyed.values())
    ordered.sort()  # by identity; equal identities end up side by side, by position
    for (order, first, _), (next_order, index, _) in itertools.pairwise(ordered):
        if order == next_order:
            raise ValueError(
                f"limiters[{index}] is the same limiter as limiters[{first}]: pass each one once"
            )
    return _AcquireAll([limiter for _, _, limiter in ordered])


@final
class _AcquireAll:
    """The context manager :func:`acquire_all` returns.

    What it has taken is a list of Trio primitives (left by ``release()``),
    trine holds (left by their synchronous ``__aexit__``) and your limiters'
    holds (left by awaiting their ``__aexit__``).
    """

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
        if self._leave_at_once:
            # Trio's primitives and trine's holds are left synchronously (see
            # _hold), so everything is given back inside this call.
            _release_now(holds, exc_type, exc_value, traceback)
            return _DONE
        return _release_all(holds, exc_value)


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
