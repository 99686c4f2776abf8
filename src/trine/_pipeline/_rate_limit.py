"""rate_limit: items let through at a rate, by the run's own :class:`~trine.RateLimiter`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from .._rate import RateLimiter
from ._buffer import END

if TYPE_CHECKING:
    from ._stage import StageRun

__all__ = ["rate_worker"]


async def rate_worker(stage: StageRun) -> None:
    """The rate_limit stage's one worker: take an item, wait for a token, hand it on."""
    assert stage.stage.rate is not None
    rate, per, burst = stage.stage.rate
    # burst=None leaves the rate limiter's own default in force.
    limiter = RateLimiter(rate, per) if burst is None else RateLimiter(rate, per, burst=burst)
    inputs = stage.inputs
    now = trio.lowlevel.current_clock().current_time
    record = stage.latency.record
    while (item := await inputs.get()) is not END:
        stage.items_in += 1
        taken_at = now()
        if not limiter.try_acquire():
            await limiter.acquire()
        await stage.deliver(item, inputs)
        record(now() - taken_at)
