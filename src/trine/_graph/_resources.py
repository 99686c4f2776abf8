"""Resources of a task graph: how the scheduler takes a named limiter without waiting."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, final

import trio

from .._limit import LimiterLike, WeightedSemaphore, open_hold

__all__ = ["_Release", "_Resource", "_release_all", "_take_all_nowait"]

_Release = Callable[[BaseException | None], None]


@final
class _Resource:
    """A named resource of a graph, with the way to take it without waiting.

    ``capacity`` is the most weight one node may ask of it, or ``None`` when
    there is no such bound (a limiter of unknown or infinite capacity).
    """

    __slots__ = ("blocking", "capacity", "limiter", "name", "weighted")

    def __init__(self, name: str, limiter: LimiterLike) -> None:
        self.name = name
        self.limiter = limiter
        self.weighted = isinstance(limiter, WeightedSemaphore)
        # Trio's Lock must be released by the task that took it, and a limiter
        # with only hold() cannot be taken without waiting: those are taken by
        # the node's own task, after it has its slot.
        self.blocking = isinstance(limiter, trio.Lock | trio.StrictFIFOLock) or not (
            isinstance(limiter, trio.CapacityLimiter | trio.Semaphore)
            or callable(getattr(limiter, "hold_nowait", None))
        )
        capacity: int | None = None
        if isinstance(limiter, WeightedSemaphore):
            capacity = limiter.capacity
        elif isinstance(limiter, trio.CapacityLimiter):
            total = limiter.total_tokens
            # CapacityLimiter(math.inf) is unbounded: no weight is too much for it.
            capacity = None if total == math.inf else int(total)
        self.capacity = capacity

    def take_nowait(self, weight: int) -> _Release:
        """Take *weight* of the resource now and return its release, or raise WouldBlock."""
        limiter = self.limiter
        if isinstance(limiter, trio.CapacityLimiter):
            borrower = object()
            limiter.acquire_on_behalf_of_nowait(borrower)
            return lambda error: limiter.release_on_behalf_of(borrower)
        if isinstance(limiter, trio.Semaphore):
            limiter.acquire_nowait()
            return lambda error: limiter.release()
        hold = limiter.hold_nowait(weight) if self.weighted else limiter.hold_nowait()  # type: ignore[union-attr]
        hold.__enter__()

        def release(error: BaseException | None) -> None:
            if error is None:
                hold.__exit__(None, None, None)
            else:
                hold.__exit__(type(error), error, error.__traceback__)

        return release

    def hold(self, weight: int) -> Any:
        """The async context manager that takes *weight* of the resource, waiting."""
        if self.weighted:
            assert isinstance(self.limiter, WeightedSemaphore)
            return self.limiter.hold(weight)
        return open_hold(self.limiter)


def _take_all_nowait(needs: tuple[tuple[_Resource, int], ...]) -> list[_Release] | None:
    """Take every resource in *needs* now, or none of them (returning ``None``)."""
    releases: list[_Release] = []
    for resource, weight in needs:
        if resource.blocking:
            continue
        try:
            releases.append(resource.take_nowait(weight))
        except trio.WouldBlock:
            _release_all(releases, None)
            return None
    return releases


def _release_all(releases: list[_Release], error: BaseException | None) -> None:
    """Release in reverse order; every release runs even if one raises."""
    while releases:
        release = releases.pop()
        try:
            release(error)
        except BaseException:
            _release_all(releases, error)
            raise
