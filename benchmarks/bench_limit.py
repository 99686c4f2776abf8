"""Uncontended ``async with limiter.hold()`` on each trine limiter vs trio.CapacityLimiter.

One task enters and leaves the limiter N times with nothing else running, so
the cost is the limiter's own bookkeeping plus the one schedule point every
entry makes (``checkpoint_if_cancelled`` + ``cancel_shielded_checkpoint``, as
Trio's own primitives do). The baseline is ``async with trio.CapacityLimiter``
in the same run; the goal is <= 1.5x.

Results (``python -m benchmarks limit --repeat 5``, 2 cores shared with other
jobs, medians of 20,000 entries per run; per entry, and ratio to the baseline):

  ===================================  ========  =====
  variant                              per item  ratio
  ===================================  ========  =====
  trio.CapacityLimiter (baseline)       5.24 us  1.00x
  WeightedSemaphore.hold()              4.38 us  0.84x
  PriorityLimiter.hold()                4.28 us  0.82x
  KeyedLimiter.hold(key)                4.87 us  0.93x
  Bulkhead.hold()                       4.18 us  0.80x
  AdaptiveLimiter.hold() (aimd)         5.32 us  1.02x
  AdaptiveLimiter.hold() (gradient)     6.30 us  1.20x
  acquire_all(CapacityLimiter)          7.58 us  1.45x
  ===================================  ========  =====

Every limiter meets the 1.5x goal: the schedule point dominates, and trine's
``hold()`` object does one method call each way where CapacityLimiter goes
through ``acquire`` -> ``acquire_on_behalf_of`` -> ``acquire_on_behalf_of_nowait``
and a borrower set. AdaptiveLimiter pays for two clock reads and the sample
arithmetic (more for the gradient's moving average). ``acquire_all`` with a
single limiter is the worst case for it (sorting and validating its
arguments, a second context-manager layer); it was 2.02x with
``asynccontextmanager`` + ``AsyncExitStack`` and is 1.45x with the
hand-written context manager it uses now. With several limiters that
overhead is shared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import trio

import trine
from benchmarks._harness import Case, Variant, run_trio

N = 20_000

Enter = Callable[[], AbstractAsyncContextManager[object]]


def _run(make: Callable[[], Enter]) -> float:
    """Seconds for N entries, timed inside trio.run so start-up is left out."""

    async def main() -> float:
        enter = make()
        start = time.perf_counter()
        for _ in range(N):
            async with enter():
                pass
        return time.perf_counter() - start

    return run_trio(main)


def _variant(label: str, make: Callable[[], Enter], *, baseline: bool = False) -> Variant:
    return Variant(label, lambda: _run(make), baseline=baseline)


def _capacity_limiter() -> Enter:
    limiter = trio.CapacityLimiter(10)
    return lambda: limiter


def _keyed() -> Enter:
    limiter = trine.KeyedLimiter(10, total=10)
    return lambda: limiter.hold("k")


def _acquire_all() -> Enter:
    limiter = trio.CapacityLimiter(10)
    return lambda: trine.acquire_all(limiter)


CASES = [
    Case(
        name="limit_uncontended",
        description=f"{N} uncontended async-with entries, one task",
        per=N,
        variants=[
            _variant("trio.CapacityLimiter", _capacity_limiter, baseline=True),
            _variant("WeightedSemaphore.hold()", lambda: trine.WeightedSemaphore(10).hold),
            _variant("PriorityLimiter.hold()", lambda: trine.PriorityLimiter(10).hold),
            _variant("KeyedLimiter.hold(key)", _keyed),
            _variant("Bulkhead.hold()", lambda: trine.Bulkhead(10).hold),
            _variant(
                "AdaptiveLimiter.hold() (aimd)",
                lambda: trine.AdaptiveLimiter(initial=10, max_limit=10).hold,
            ),
            _variant(
                "AdaptiveLimiter.hold() (gradient)",
                lambda: trine.AdaptiveLimiter(initial=10, max_limit=10, algorithm="gradient").hold,
            ),
            _variant("acquire_all(CapacityLimiter)", _acquire_all),
        ],
    ),
]
