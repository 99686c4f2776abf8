"""Benchmarks for :class:`trine.RateLimiter` and :class:`trine.SlidingWindowLimiter`.

``rate_acquire``: 100,000 ``await limiter.acquire()`` at a rate that never
makes anyone wait, against the same loop with ``await trio.lowlevel.checkpoint()``
in its place (the baseline): both checkpoint exactly once per iteration, so
the ratio is the cost of the GCRA bookkeeping on the fast path. Variants: an
unlimited (``math.inf``) rate, a huge finite rate, 1,000 rotating keys, and
``SlidingWindowLimiter`` with a huge limit. For reference, ``aiolimiter``'s
``AsyncLimiter`` at a huge rate on asyncio (``acquire()`` plus
``asyncio.sleep(0)``, since its fast path does not yield) and the bare
asyncio loop.

``rate_achieved_*``: the rate a limiter *delivers* under saturating demand, in
real time, at 1,000, 20,000 and 100,000 per second (the goal: within 2 %) and
at an everyday 100 per second: tasks call ``acquire()`` in a loop for 2 s and
the admissions are counted. The baseline is the configured rate itself (not run: ``N / rate``
seconds for ``N = 2 s * rate`` admissions); each variant's time is how long
``N`` admissions take at the rate it achieved, so its ratio is
configured / achieved. ``rate_achieved`` at the end prints achieved /
configured for every variant (median of the runs) and how late Trio woke
sleeping tasks meanwhile (``timer_slack``). Trio sleeps in the I/O wait, whose
timeout is whole milliseconds rounded up: a task due in 50 us wakes ~1 ms
late. With ``burst=1`` that lateness is lost on every admission (strict
spacing: about one admission per timer tick); the default burst,
``max(1, ceil(rate / per * 0.003))``, whose tolerance (``burst - 1``
intervals) is at least 2 ms from 1,000 per second up, lets a late waiter's
missed slots go at once when it wakes, so the configured rate is delivered. The hand-written
token bucket (a ``trio.Lock`` for FIFO, refill on each look, sleep for the
deficit) with the same burst is the strongest pattern a Trio user writes.

Measured for ``rate_achieved`` (``--repeat 5``, 2 cores, quiet machine, with
the 3 ms default burst):

- ``timer_slack``: Trio woke sleepers 0.69 ms late at the median, 1.26 ms at
  the 99th percentile (10 ms at most, in 3,000 sleeps).
- achieved / configured: 100/s (default burst 1) 0.95 with one task, 0.94
  with 64, with ``burst=2`` 1.00; 1,000/s (burst 3) 0.995 and 0.996 (the
  hand-written bucket with the same burst 0.993); 20,000/s (burst 60) 0.998
  and 0.998 (bucket 0.999; ``burst=1`` 0.149); 100,000/s (burst 300) 0.999
  with 64 tasks (bucket 0.445), 0.927 with one task, which is CPU-bound: its
  loop costs 10.7 us of CPU per admission, more than the 10 us interval.
  Every default-burst row at 1,000/s and above is within 2 % of the rate
  except that one-task row at 100,000/s.
- 2026-12-02, a 2-core virtual machine with CPU steal (up to 11 %;
  wake-ups 1.5 to 3.0 ms late at the 99th percentile, 5 to 15 ms at most):
  1,000/s with 64 tasks 0.967, 0.992, 0.987 and 0.994 in four runs (one
  task 0.978, 0.990, 0.993, 0.988; the bucket 0.960 to 0.996): a stall of
  10 ms is more than any 3 ms burst repays. With a burst spanning 4 ms
  (``_BURST_SPAN = 0.004``: burst 4, 3 ms of tolerance) two runs gave 0.997
  and 0.965, no better. 20,000/s 0.990 and 0.996; 100,000/s 0.999 with 64
  tasks, 0.884 with one (CPU-bound, 11.3 us per admission).
- Later on 2026-12-02, the same machine (wake-ups 0.65 ms late at the
  median, 1.19 ms at the 99th percentile, 3.6 ms at most): 1,000/s 0.991
  with 64 tasks and 0.976 with one (the bucket 0.987); 20,000/s 0.991 and
  0.995 (bucket 0.987, ``burst=1`` 0.182); 100,000/s 1.000 with 64 tasks,
  0.948 with one (10.5 us of CPU per admission; the bucket 0.466). Three
  traces of the one task at 1,000/s (0.997, 0.989 and 0.981 of the rate)
  lost their admissions in 27 to 76 gaps of more than 2 ms between two
  admissions, most of 3 to 4 ms, past the 2 ms of tolerance. Why such gaps
  come more often in that loop than wake-ups that late in the 3,000 sleeps
  of ``timer_slack`` is not known.
- A freshly booted machine of the same kind, three runs (the second while
  the machine was noisier: wake-ups 3.83 ms late at the 99th percentile,
  11.7 ms at most, against 1.50 and 1.20 ms, 6.5 and 5.5 ms in the others):
  1,000/s with one task 0.989, 0.969 and 0.997, with 64 tasks 0.987, 0.951
  and 0.996 (the bucket 0.995, 0.960, 0.997); 20,000/s 0.997, 0.971, 0.992
  with one task, 0.993, 0.984, 0.991 with 64 (``burst=1`` about 0.06);
  100,000/s 1.000, 0.987, 0.998 with one task (9.3 to 9.6 us of CPU per
  admission), 1.000, 0.991, 1.000 with 64 (the bucket 0.66 to 0.78). Every
  default-burst row at 1,000/s and above is within 2 % of the rate in the
  first and third runs; in the second, three are not (1,000/s with one and
  with 64 tasks, 20,000/s with one), and neither is the hand-written
  bucket's 1,000/s row (its 20,000/s row is, at 0.992).
- A fourth machine, a session later (wake-ups 0.75 ms late at the median,
  3.90 ms at the 99th percentile, 10.6 ms at most), one run: 1,000/s 0.972
  with one task and 0.963 with 64 (the bucket 0.960); 20,000/s 0.963 and
  0.936 (the bucket 0.918, ``burst=1`` 0.054); 100,000/s 1.000 and 1.001
  (the bucket 0.924); 100/s, with the default burst, 0.93 with one task and
  0.92 with 64, and 1.00 with ``burst=2``. Of the rows at 1,000/s and above,
  only trine's two at 100,000/s are within 2 % of the rate: lateness past
  the tolerance is lost, by trine and the bucket alike.
- A fifth machine (wake-ups 0.67 ms late at the median, 1.32 ms at the 99th
  percentile, 2.51 ms at most), one run (``--repeat 3``): 1,000/s 0.999
  with one task and with 64 (the bucket 0.997); 20,000/s 1.000 and 0.999
  (the bucket 0.998, ``burst=1`` 0.250); 100,000/s 0.999 with 64 tasks (the
  bucket 0.431), 0.859 with one, CPU-bound (11.6 us of CPU per admission);
  100/s 0.94 and 0.93 with the default burst, 1.00 with ``burst=2``. Every
  default-burst row at 1,000/s and above is within 2 % of the rate except
  the one-task row at 100,000/s.
- The burst spanning 2 ms that came before (2 at 1,000/s, a tolerance of
  1 ms) gave 0.92 at 1,000/s on the same quiet machine: a sleep shorter than
  a millisecond lasts a whole one plus the wake-up's cost, so the schedule
  slipped by that cost on every admission and lost it whenever it passed the
  tolerance.

Measured for ``rate_acquire`` (``--repeat 5``; 2 cores shared with other jobs
and loaded, load average about 3):

- per iteration: checkpoint loop 15.1 us (baseline);
  ``RateLimiter(math.inf)`` 1.04x; ``RateLimiter(1e12)`` 0.99x; 1,000
  rotating keys 1.33x; ``SlidingWindowLimiter(10**9, 1.0)`` 1.13x;
  ``trio.CapacityLimiter`` acquire + release 1.40x. One step per iteration
  for every variant. (A quiet run before this change: 3.23 us baseline,
  1.30x, 1.30x, 1.48x, 1.35x, 1.48x.)

The fast path is one dictionary look-up, a few float operations and the one
checkpoint Trio's own ``CapacityLimiter.acquire`` takes: about 1 us on top of
the scheduler trip, less than a ``CapacityLimiter`` round trip. (A first
version that validated the cost with the general helper and went through one
more coroutine frame measured 1.46x; the quick ``type(cost) is int`` test and
the inlined fast path took it to 1.30x.)
"""

from __future__ import annotations

import math
import random
import statistics
import time

import trio

import trine
from benchmarks._harness import Case, Variant, installed, run_trio, timed

ITERATIONS = 100_000
KEYS = 1_000


def _trio_loop(acquire: object | None) -> float:
    async def main() -> None:
        if acquire is None:
            for _ in range(ITERATIONS):
                await trio.lowlevel.checkpoint()
        else:
            for _ in range(ITERATIONS):
                await acquire()  # type: ignore[operator]

    return timed(lambda: run_trio(main))


def _checkpoint_loop() -> float:
    return _trio_loop(None)


def _rate_unlimited() -> float:
    return _trio_loop(trine.RateLimiter(math.inf).acquire)


def _rate_huge() -> float:
    return _trio_loop(trine.RateLimiter(1e12).acquire)


def _rate_keyed() -> float:
    limiter = trine.RateLimiter(math.inf)

    async def main() -> None:
        for index in range(ITERATIONS):
            await limiter.acquire(key=index % KEYS)

    return timed(lambda: run_trio(main))


def _sliding_window_huge() -> float:
    return _trio_loop(trine.SlidingWindowLimiter(10**9, 1.0).acquire)


def _capacity_limiter() -> float:
    limiter = trio.CapacityLimiter(1)

    async def main() -> None:
        for _ in range(ITERATIONS):
            await limiter.acquire()
            limiter.release()

    return timed(lambda: run_trio(main))


def _asyncio_loop() -> float:
    import asyncio

    async def main() -> None:
        for _ in range(ITERATIONS):
            await asyncio.sleep(0)

    return timed(lambda: asyncio.run(main()))


def _aiolimiter() -> float:
    import asyncio

    from aiolimiter import AsyncLimiter

    async def main() -> None:
        limiter = AsyncLimiter(1e12, 1)
        for _ in range(ITERATIONS):
            await limiter.acquire()
            await asyncio.sleep(0)

    return timed(lambda: asyncio.run(main()))


_variants = [
    Variant("trio: checkpoint loop (baseline)", _checkpoint_loop, baseline=True),
    Variant("trine: RateLimiter(math.inf).acquire()", _rate_unlimited),
    Variant("trine: RateLimiter(1e12).acquire()", _rate_huge),
    Variant(f"trine: RateLimiter(inf), {KEYS} keys", _rate_keyed),
    Variant("trine: SlidingWindowLimiter(10**9, 1)", _sliding_window_huge),
    Variant("trio: CapacityLimiter acquire+release (ref)", _capacity_limiter),
    Variant("asyncio: sleep(0) loop (reference)", _asyncio_loop),
]
if installed("aiolimiter"):
    _variants.append(Variant("aiolimiter: AsyncLimiter + sleep(0)", _aiolimiter))


# -- the rate delivered, in real time -----------------------------------------------

SECONDS = 2.0
"""How long each achieved-rate run lasts, in real time."""
TASKS = 64
"""The tasks calling acquire() in a loop, for the many-task variants."""

_achieved: dict[str, list[tuple[float, float]]] = {}
"""(achieved / configured, CPU seconds per admission) of every run so far, by label."""
_lateness: list[float] = []


class _TokenBucket:
    """The hand-written pattern: FIFO through a lock, refill on each look, sleep the deficit."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last: float | None = None
        self.lock = trio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = trio.current_time()
                if self.last is not None:
                    self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
                self.last = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await trio.sleep((1 - self.tokens) / self.rate)


def _saturate(label: str, rate: float, make: object, tasks: int) -> float:
    """Run *tasks* tasks acquiring in a loop for SECONDS; return the time N would take.

    N = SECONDS * rate admissions; the time is N / achieved rate, so the
    harness's ratio to the ideal baseline is configured / achieved.
    """

    async def main() -> tuple[int, float]:
        acquire = make()  # type: ignore[operator]
        admitted = 0

        async def worker() -> None:
            nonlocal admitted
            while True:
                await acquire()
                admitted += 1

        start, cpu = time.perf_counter(), time.process_time()
        with trio.move_on_after(SECONDS):
            async with trio.open_nursery() as nursery:
                for _ in range(tasks):
                    nursery.start_soon(worker)
        return admitted, time.perf_counter() - start, time.process_time() - cpu

    admitted, elapsed, cpu = run_trio(main)
    achieved = admitted / elapsed
    _achieved.setdefault(label, []).append((achieved / rate, cpu / admitted))
    return SECONDS * rate / achieved


def _achieved_case(rate: int) -> Case:
    burst = trine.RateLimiter(rate).burst
    count = int(SECONDS * rate)

    def trine_limiter(explicit_burst: int | None = None) -> object:
        return lambda: trine.RateLimiter(rate, burst=explicit_burst).acquire

    def bucket() -> object:
        return lambda: _TokenBucket(rate, burst).acquire

    rows: list[tuple[str, object, int]] = [
        (f"trine: default burst={burst}, 1 task", trine_limiter(), 1),
        (f"trine: default burst={burst}, {TASKS} tasks", trine_limiter(), TASKS),
    ]
    if burst == 1:  # an everyday rate, strictly spaced: what a burst of 2 would give
        rows.append((f"trine: burst=2, {TASKS} tasks", trine_limiter(2), TASKS))
    else:
        rows.append((f"hand-written bucket, burst={burst}, {TASKS} tasks", bucket(), TASKS))
    if rate == 20_000:
        rows.append((f"trine: burst=1 (strict), {TASKS} tasks", trine_limiter(1), TASKS))
    variants = [
        Variant(
            f"configured: {count:,} in {SECONDS:g} s (baseline)",
            lambda: SECONDS,
            baseline=True,
        )
    ]
    for label, make, tasks in rows:
        variants.append(
            Variant(
                label,
                lambda label=label, make=make, tasks=tasks: _saturate(
                    f"{rate:>7,}/s  {label}", rate, make, tasks
                ),
            )
        )
    return Case(
        f"rate_achieved_{rate}",
        f"{rate:,}/s, {SECONDS:g} s of saturating demand; ratio = configured / achieved rate",
        per=count,
        variants=variants,
    )


def _timer_slack() -> float:
    """Sleep 500 times for a random 0-1 ms; record how late each wake-up was."""
    rng = random.Random(1)

    async def main() -> None:
        for _ in range(500):
            due = trio.current_time() + rng.uniform(0.0, 0.001)
            await trio.sleep_until(due)
            _lateness.append(trio.current_time() - due)

    return timed(lambda: run_trio(main))


def _summary() -> float:
    """Print achieved / configured per variant (medians) and the timer's lateness, once."""
    if _achieved:
        print(
            "\n  achieved / configured rate, and CPU time per admission"
            " (medians of the runs above, the counting run included)"
        )
        for label, runs in _achieved.items():
            ratio = statistics.median(ratio for ratio, _ in runs)
            cpu = statistics.median(cpu for _, cpu in runs) * 1e6
            print(f"    {label:<52} {ratio:6.3f}  {cpu:6.2f} us CPU  ({len(runs)} runs)")
        _achieved.clear()
    if _lateness:
        late = sorted(_lateness)
        print(
            f"  timer lateness of trio.sleep_until here: median {statistics.median(late) * 1e3:.2f}"
            f" ms, 99th percentile {late[int(0.99 * (len(late) - 1))] * 1e3:.2f} ms,"
            f" max {late[-1] * 1e3:.2f} ms ({len(late)} sleeps)"
        )
        _lateness.clear()
    return 0.0


CASES = [
    Case(
        "rate_acquire",
        f"{ITERATIONS:,} acquires that never wait, each one checkpoint",
        per=ITERATIONS,
        variants=_variants,
    ),
    Case(
        "timer_slack",
        "500 sleeps of 0-1 ms: how late Trio wakes a task (default burst: 2 ms of tolerance)",
        per=500,
        variants=[Variant("trio.sleep_until(now + U(0, 1 ms))", _timer_slack)],
    ),
    *(_achieved_case(rate) for rate in (100, 1_000, 20_000, 100_000)),
    Case(
        "rate_achieved",
        "summary of the rate_achieved_* cases run before it",
        per=1,
        variants=[Variant("(prints the summary above)", _summary)],
    ),
]
