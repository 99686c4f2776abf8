"""Each trine limiter against ``trio.CapacityLimiter``, side by side in one run.

``limit_uncontended``: one task enters and leaves the limiter N times with
nothing else running, so the cost is the limiter's own bookkeeping plus the
one schedule point every entry makes (``checkpoint_if_cancelled`` +
``cancel_shielded_checkpoint``, as Trio's own primitives do). The baseline is
``async with trio.CapacityLimiter`` in the same run; the goal is <= 1.5x.
``acquire_all`` with one limiter is compared with entering that limiter
alone; with two, with the hand-written ``async with a, b:`` in a fixed order.

``limit_contended``: 8 tasks share 2 slots and each holds its slot across one
checkpoint, so every release hands the slot to a waiter: the queue, the
hand-off and the wake-up. One step per entry is the waiter's wake-up; the
checkpoint inside the hold is another.

Results (``python -m benchmarks limit --repeat 5``, 2 cores shared with other
jobs, under load; medians; per entry, ratio to the baseline, steps per entry):

  =========================================  ========  =====  =====
  limit_uncontended                          per item  ratio  steps
  =========================================  ========  =====  =====
  trio.CapacityLimiter (baseline)             5.24 us  1.00x  1.000
  WeightedSemaphore.hold()                    4.38 us  0.84x  1.000
  PriorityLimiter.hold()                      4.28 us  0.82x  1.000
  KeyedLimiter.hold(key)                      4.87 us  0.93x  1.000
  Bulkhead.hold()                             4.18 us  0.80x  1.000
  AdaptiveLimiter.hold() (aimd)               5.32 us  1.02x  1.000
  AdaptiveLimiter.hold() (gradient)           6.30 us  1.20x  1.000
  acquire_all(CapacityLimiter)                7.58 us  1.45x  1.000
  =========================================  ========  =====  =====

Every limiter meets the 1.5x goal: the schedule point dominates, and trine's
``hold()`` object does one method call each way where CapacityLimiter goes
through ``acquire`` -> ``acquire_on_behalf_of`` -> ``acquire_on_behalf_of_nowait``
and a borrower set; leaving a trine hold is a plain call (no coroutine: see
``_limit/_hold.py``). AdaptiveLimiter reads the clock at entry and at exit
of an uncontended hold (a duration needs both ends); when a release hands
the slot to a waiter, that one reading ends one sample and starts the next.
``acquire_all`` of one limiter is that limiter's own hold (or, for a Trio
primitive, a thin hold that leaves it synchronously); it was 1.45x with
sorting and a second context-manager layer, and 2.02x with
``asynccontextmanager`` + ``AsyncExitStack`` before that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import trio

import trine
from benchmarks._harness import Case, Variant, run_trio

N = 20_000
TASKS = 8
SLOTS = 2

Enter = Callable[[], AbstractAsyncContextManager[object]]


def _run(make: Callable[[], Enter]) -> float:
    """Seconds for N entries by one task, timed inside trio.run so start-up is left out."""

    async def main() -> float:
        enter = make()
        start = time.perf_counter()
        for _ in range(N):
            async with enter():
                pass
        return time.perf_counter() - start

    return float(run_trio(main))


def _run_contended(make: Callable[[], Enter]) -> float:
    """Seconds for N entries by TASKS tasks sharing the limiter, holding across a checkpoint."""

    async def main() -> float:
        enter = make()

        async def worker() -> None:
            for _ in range(N // TASKS):
                async with enter():
                    await trio.lowlevel.checkpoint()

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(TASKS):
                nursery.start_soon(worker)
        return time.perf_counter() - start

    return float(run_trio(main))


def _capacity_limiter(slots: int) -> Enter:
    limiter = trio.CapacityLimiter(slots)
    return lambda: limiter


def _keyed(slots: int) -> Enter:
    limiter = trine.KeyedLimiter(slots, total=slots)
    return lambda: limiter.hold("k")


def _limiters(slots: int) -> list[tuple[str, Callable[[], Enter]]]:
    return [
        ("WeightedSemaphore.hold()", lambda: trine.WeightedSemaphore(slots).hold),
        ("PriorityLimiter.hold()", lambda: trine.PriorityLimiter(slots).hold),
        ("KeyedLimiter.hold(key)", lambda: _keyed(slots)),
        ("Bulkhead.hold()", lambda: trine.Bulkhead(slots, max_waiting=TASKS).hold),
        (
            "AdaptiveLimiter.hold() (aimd)",
            lambda: trine.AdaptiveLimiter(initial=slots, max_limit=slots).hold,
        ),
        (
            "AdaptiveLimiter.hold() (gradient)",
            lambda: (
                trine.AdaptiveLimiter(initial=slots, max_limit=slots, algorithm="gradient").hold
            ),
        ),
    ]


def _acquire_all_of(*make: Callable[[], object]) -> Callable[[], Enter]:
    def build() -> Enter:
        limiters = [m() for m in make]
        return lambda: trine.acquire_all(*limiters)  # type: ignore[arg-type]

    return build


def _nested_by_hand() -> Enter:
    """``async with a, b:``, in one fixed order: what acquire_all saves you writing."""
    first, second = trio.CapacityLimiter(10), trio.Lock()

    class Both:
        async def __aenter__(self) -> None:
            await first.acquire()
            try:
                await second.acquire()
            except BaseException:
                first.release()
                raise

        async def __aexit__(self, *exc_info: object) -> None:
            second.release()
            first.release()

    return Both


def _uncontended() -> list[Variant]:
    variants = [
        Variant(
            "trio.CapacityLimiter (baseline)",
            lambda: _run(lambda: _capacity_limiter(10)),
            baseline=True,
        )
    ]
    variants += [Variant(label, lambda make=make: _run(make)) for label, make in _limiters(10)]
    variants += [
        Variant(
            "acquire_all(CapacityLimiter)",
            lambda: _run(_acquire_all_of(lambda: trio.CapacityLimiter(10))),
        ),
        Variant(
            "acquire_all(WeightedSemaphore)",
            lambda: _run(_acquire_all_of(lambda: trine.WeightedSemaphore(10))),
        ),
        Variant(
            "hand-written: async with CapacityLimiter, Lock",
            lambda: _run(_nested_by_hand),
        ),
        Variant(
            "acquire_all(CapacityLimiter, Lock)",
            lambda: _run(_acquire_all_of(lambda: trio.CapacityLimiter(10), trio.Lock)),
        ),
    ]
    return variants


def _contended() -> list[Variant]:
    variants = [
        Variant(
            "trio.CapacityLimiter (baseline)",
            lambda: _run_contended(lambda: _capacity_limiter(SLOTS)),
            baseline=True,
        )
    ]
    variants += [
        Variant(label, lambda make=make: _run_contended(make)) for label, make in _limiters(SLOTS)
    ]
    variants.append(
        Variant(
            "acquire_all(CapacityLimiter)",
            lambda: _run_contended(_acquire_all_of(lambda: trio.CapacityLimiter(SLOTS))),
        )
    )
    return variants


CASES = [
    Case(
        name="limit_uncontended",
        description=f"{N} uncontended async-with entries, one task",
        per=N,
        variants=_uncontended(),
    ),
    Case(
        name="limit_contended",
        description=f"{N} entries by {TASKS} tasks sharing {SLOTS} slots, a checkpoint inside",
        per=N,
        variants=_contended(),
    ),
]
