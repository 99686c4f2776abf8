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

Results (``python -m benchmarks limit --repeat 5``, 2 cores shared with
other jobs and loaded, so the times are about twice a quiet machine's and
noisy; medians; ratio to the baseline, scheduler steps per entry, Python
calls per entry from ``--calls``):

  =============================================  =====  =====  =====
  limit_uncontended                              ratio  steps  calls
  =============================================  =====  =====  =====
  trio.CapacityLimiter (baseline, 9.75 us)       1.00x  1.000     40
  WeightedSemaphore.hold()                       0.73x  1.000     33
  PriorityLimiter.hold()                         0.74x  1.000     32
  KeyedLimiter.hold(key)                         0.82x  1.000     36
  Bulkhead.hold()                                0.80x  1.000     31
  AdaptiveLimiter.hold() (aimd)                  0.78x  1.000     39
  AdaptiveLimiter.hold() (gradient)              0.87x  1.000     40
  acquire_all(CapacityLimiter)                   0.86x  1.000     42
  acquire_all(WeightedSemaphore)                 0.71x  1.000     35
  hand-written: async with CapacityLimiter, Lock 1.54x  2.000     74
  acquire_all(CapacityLimiter, Lock)             2.12x  2.000     81
  =============================================  =====  =====  =====

  =============================================  =====  =====  =====
  limit_contended                                ratio  steps  calls
  =============================================  =====  =====  =====
  trio.CapacityLimiter (baseline, 21.3 us)       1.00x  2.001     64
  WeightedSemaphore.hold()                       0.91x  2.001     57
  PriorityLimiter.hold()                         0.97x  2.001     55
  KeyedLimiter.hold(key)                         1.08x  2.001     61
  Bulkhead.hold()                                0.76x  2.001     54
  AdaptiveLimiter.hold() (aimd)                  1.31x  2.001     60
  AdaptiveLimiter.hold() (gradient)              0.89x  2.001     61
  acquire_all(CapacityLimiter)                   1.09x  2.001     66
  =============================================  =====  =====  =====

Under that load the medians of long runs move by 20-30 % from run to run
(aimd and gradient swap places between runs, with 60 and 61 calls). In
CPU time, in 60 interleaved rounds of 3,000 entries against the code before
this change (median of the per-round ratios to CapacityLimiter): the
gradient AdaptiveLimiter went from 1.19-1.21x to 1.06-1.08x, aimd from 0.97x
to 0.95x, ``acquire_all(CapacityLimiter)`` from 1.47x to 1.06x (calls per
entry 51 -> 42), WeightedSemaphore 0.83x either way.

Two later figures, on an unloaded 2-core virtual machine. A timing run
(``limit --repeat 5``): ``acquire_all(CapacityLimiter)`` 1.02x uncontended
and 1.01x contended, the gradient AdaptiveLimiter 0.98x and 0.82x, aimd
0.89x and 0.95x. And, free of noise, the machine instructions per entry
under valgrind (``--tool=cachegrind``, a run of 40,000 entries less one of
20,000): uncontended, CapacityLimiter 52,300, ``acquire_all`` of it 54,700
(1.05x), the gradient AdaptiveLimiter 55,200 (1.06x), aimd 50,700 (0.97x);
contended, 88,900, 91,200 (1.03x) and, for the gradient one, 86,600
(0.97x). The schedule point alone (a loop of bare checkpoints) is 33,300
of them.

Every limiter meets the 1.5x goal (``acquire_all`` of two limiters costs
about 1.4x the hand-written nesting of the same two: the validation, the
sort and the ordering it buys). The schedule point dominates, and trine's
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
