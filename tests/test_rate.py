"""Rate limiters: GCRA and sliding window, exact on the autojump clock."""

from __future__ import annotations

import math
import pickle
import sys
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine import RateLimiter, RateLimitExceeded, SlidingWindowLimiter
from trine.testing import assert_takes

Limiter = RateLimiter | SlidingWindowLimiter


def approx(values: list[float]) -> Any:
    return pytest.approx(values, abs=1e-9, rel=0)


async def sequential_times(limiter: Limiter, count: int, cost: int = 1) -> list[float]:
    times = []
    for _ in range(count):
        await limiter.acquire(cost)
        times.append(trio.current_time())
    return times


class Recorder:
    """Starts waiters in a known order and records when each was admitted."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter
        self.admitted: dict[object, float] = {}
        self.order: list[object] = []

    async def waiter(
        self,
        name: object,
        cost: int,
        key: Hashable,
        task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            await self.limiter.acquire(cost, key=key)
            self.admitted[name] = trio.current_time()
            self.order.append(name)

    async def start(
        self, nursery: trio.Nursery, name: object, cost: int = 1, *, key: Hashable = None
    ) -> trio.CancelScope:
        scope: trio.CancelScope = await nursery.start(self.waiter, name, cost, key)
        return scope


# -- RateLimiter: exact times -------------------------------------------------------


async def test_rate_spaces_admissions_evenly_from_the_start(autojump_clock: object) -> None:
    """``RateLimiter(2)`` admits at exactly 0.0, 0.5, 1.0, ... -- no start-up burst."""
    limiter = RateLimiter(2)
    assert await sequential_times(limiter, 5) == [0.0, 0.5, 1.0, 1.5, 2.0]


async def test_rate_does_not_burst_rate_at_start_up(autojump_clock: object) -> None:
    """Ten concurrent tasks at ``rate=10`` are admitted a tenth of a second apart, not at once."""
    recorder = Recorder(RateLimiter(10))
    async with trio.open_nursery() as nursery:
        for i in range(10):
            await recorder.start(nursery, i)
    assert recorder.order == list(range(10))
    assert [recorder.admitted[i] for i in range(10)] == approx([i / 10 for i in range(10)])


async def test_rate_thirds_are_exact_without_drift(autojump_clock: object) -> None:
    """Admission times are computed as anchor + n * per / rate, so ``rate=3`` does not drift."""
    limiter = RateLimiter(3)
    times = await sequential_times(limiter, 301)
    assert times == [n / 3 for n in range(301)]
    assert times[-1] == 100.0


async def test_rate_per_scales_the_interval(autojump_clock: object) -> None:
    """``RateLimiter(3, per=60)`` admits every 20 seconds."""
    assert await sequential_times(RateLimiter(3, per=60), 4) == [0.0, 20.0, 40.0, 60.0]


async def test_rate_burst_then_steady_pace(autojump_clock: object) -> None:
    """``burst=3`` lets three through at once after a quiet spell, then one per interval."""
    limiter = RateLimiter(1, burst=3)
    assert await sequential_times(limiter, 5) == [0.0, 0.0, 0.0, 1.0, 2.0]
    await trio.sleep_until(10.0)
    assert await sequential_times(limiter, 5) == [10.0, 10.0, 10.0, 11.0, 12.0]


async def test_rate_burst_refills_gradually(autojump_clock: object) -> None:
    """After using the burst, waiting 1.5 intervals buys one admission at once, not two."""
    limiter = RateLimiter(1, burst=3)
    await sequential_times(limiter, 3)
    await trio.sleep_until(1.5)
    assert await sequential_times(limiter, 3) == [1.5, 2.0, 3.0]


@pytest.mark.parametrize(("rate", "per", "burst", "count"), [(2, 1.0, 1, 9), (3, 2.0, 4, 12)])
async def test_rate_saturated_long_run(
    autojump_clock: object, rate: float, per: float, burst: int, count: int
) -> None:
    """Under saturating demand, n admissions take exactly (n - burst) * per / rate."""
    recorder = Recorder(RateLimiter(rate, per, burst=burst))
    with assert_takes((count - burst) * per / rate):
        async with trio.open_nursery() as nursery:
            for i in range(count):
                await recorder.start(nursery, i)


async def test_rate_costs_take_several_slots(autojump_clock: object) -> None:
    """A cost of 2 uses two intervals' worth of the schedule."""
    limiter = RateLimiter(1, burst=2)
    times = []
    for cost in (2, 2, 1, 2):
        await limiter.acquire(cost)
        times.append(trio.current_time())
    assert times == [0.0, 2.0, 3.0, 5.0]


async def test_rate_fractional_cost(autojump_clock: object) -> None:
    """Fractional costs are allowed and use a fraction of an interval."""
    limiter = RateLimiter(1)
    times = []
    for cost in (0.5, 0.5, 0.5, 1):
        await limiter.acquire(cost)
        times.append(trio.current_time())
    assert times == [0.0, 0.0, 0.5, 1.5]


async def test_rate_infinite_admits_everything_at_once(autojump_clock: object) -> None:
    """``rate=math.inf`` is unlimited: everything is admitted at once (still a checkpoint)."""
    limiter = RateLimiter(math.inf)
    assert await sequential_times(limiter, 100) == [0.0] * 100
    assert limiter.try_acquire()
    assert limiter.statistics().admitted == 101


async def test_rate_fifo_mixed_costs(autojump_clock: object) -> None:
    """A cheap later waiter does not overtake an expensive earlier one."""
    recorder = Recorder(RateLimiter(1, burst=3))
    await recorder.limiter.acquire(3)
    async with trio.open_nursery() as nursery:
        await recorder.start(nursery, "expensive", 3)
        await recorder.start(nursery, "cheap", 1)
    assert recorder.order == ["expensive", "cheap"]
    # On its own, "cheap" could have gone at 1.0; behind "expensive" it goes at 4.0.
    assert recorder.admitted == {"expensive": 3.0, "cheap": 4.0}


async def test_rate_cancelled_head_does_not_delay_the_next(autojump_clock: object) -> None:
    """When the head waiter is cancelled, the one behind goes exactly when it could alone."""
    recorder = Recorder(RateLimiter(1, burst=3))
    await recorder.limiter.acquire(3)
    async with trio.open_nursery() as nursery:
        expensive = await recorder.start(nursery, "expensive", 3)
        await recorder.start(nursery, "cheap", 1)
        await recorder.start(nursery, "next", 1)
        await trio.sleep_until(0.5)
        expensive.cancel()
    assert recorder.order == ["cheap", "next"]
    assert recorder.admitted == {"cheap": 1.0, "next": 2.0}
    assert recorder.limiter.statistics().admitted == 3


async def test_rate_cancelled_head_frees_the_next_at_once(autojump_clock: object) -> None:
    """If the next waiter was already due, it is admitted at the moment of the cancellation."""
    recorder = Recorder(RateLimiter(1, burst=3))
    await recorder.limiter.acquire(3)
    async with trio.open_nursery() as nursery:
        expensive = await recorder.start(nursery, "expensive", 3)
        await recorder.start(nursery, "cheap", 1)
        await trio.sleep_until(2.25)
        expensive.cancel()
    assert recorder.admitted == {"cheap": 2.25}


async def test_rate_cancelled_middle_waiter_does_not_delay(autojump_clock: object) -> None:
    """A waiter cancelled mid-queue leaves the others' times as if it never came."""
    recorder = Recorder(RateLimiter(1))
    async with trio.open_nursery() as nursery:
        await recorder.start(nursery, 0)
        await recorder.start(nursery, 1)
        middle = await recorder.start(nursery, 2)
        await recorder.start(nursery, 3)
        await trio.sleep_until(0.5)
        middle.cancel()
    assert recorder.admitted == {0: 0.0, 1: 1.0, 3: 2.0}


async def test_rate_head_cancelled_at_the_instant_it_is_due_takes_nothing(
    autojump_clock: object,
) -> None:
    """Its patience ends exactly when it is due: cancelled, it took nothing; the next goes."""
    recorder = Recorder(RateLimiter(1))
    await recorder.limiter.acquire()
    async with trio.open_nursery() as nursery:
        impatient = await recorder.start(nursery, "impatient")
        impatient.deadline = 1.0  # the instant its slot comes
        await recorder.start(nursery, "next")
    assert impatient.cancelled_caught
    assert recorder.admitted == {"next": 1.0}
    statistics = recorder.limiter.statistics()
    assert (statistics.admitted, statistics.tasks_waiting) == (2, 0)


async def test_rate_acquire_cancelled_before_it_starts_takes_nothing(
    autojump_clock: object,
) -> None:
    """An acquire in an already cancelled scope raises Cancelled and admits nothing."""
    limiter = RateLimiter(1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await limiter.acquire()
    assert scope.cancelled_caught
    assert limiter.statistics().admitted == 0
    assert limiter.try_acquire()


async def test_rate_acquire_is_always_a_checkpoint(autojump_clock: object) -> None:
    """Both the fast path and the waiting path are checkpoints."""
    limiter = RateLimiter(1)
    with trio.testing.assert_checkpoints():
        await limiter.acquire()
    with trio.testing.assert_checkpoints():
        await limiter.acquire()
    with trio.testing.assert_no_checkpoints():
        limiter.try_acquire()


async def test_rate_change_at_run_time_moves_waiters(autojump_clock: object) -> None:
    """Raising the rate makes queued waiters follow it at once; the debt is kept in cost units."""
    recorder = Recorder(RateLimiter(1))
    async with trio.open_nursery() as nursery:
        for i in range(4):
            await recorder.start(nursery, i)
        await trio.sleep_until(0.5)
        recorder.limiter.rate = 10
    # At 0.5 half a slot is owed; at 10/s that is 0.05 s, then every 0.1 s.
    assert [recorder.admitted[i] for i in range(4)] == approx([0.0, 0.55, 0.65, 0.75])


async def test_rate_lowering_at_run_time_slows_waiters(autojump_clock: object) -> None:
    """Lowering the rate (or raising ``per``) stretches the schedule of queued waiters."""
    recorder = Recorder(RateLimiter(2))
    async with trio.open_nursery() as nursery:
        for i in range(3):
            await recorder.start(nursery, i)
        recorder.limiter.per = 2.0
    assert [recorder.admitted[i] for i in range(3)] == [0.0, 1.0, 2.0]


async def test_rate_burst_change_at_run_time(autojump_clock: object) -> None:
    """Raising ``burst`` lets queued waiters use the new headroom at once."""
    recorder = Recorder(RateLimiter(1))
    async with trio.open_nursery() as nursery:
        for i in range(4):
            await recorder.start(nursery, i)
        await trio.sleep_until(0.25)
        recorder.limiter.burst = 3
    # At 0.25 one slot is owed; burst 3 leaves room for two more at once.
    assert [recorder.admitted[i] for i in range(4)] == [0.0, 0.25, 0.25, 1.0]


async def test_rate_burst_cannot_drop_below_a_waiting_cost(autojump_clock: object) -> None:
    """Setting ``burst`` below a queued cost would strand that waiter, so it is refused."""
    limiter = RateLimiter(1, burst=3)
    await limiter.acquire(3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limiter.acquire, 3)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(
            ValueError, match=r"^burst must be >= 3, the cost of a waiting acquire, got 2$"
        ):
            limiter.burst = 2
        assert limiter.burst == 3


async def test_rate_try_acquire(autojump_clock: object) -> None:
    """``try_acquire`` takes a free slot, refuses a busy one, and counts refusals."""
    limiter = RateLimiter(1, burst=2)
    assert limiter.try_acquire()
    assert limiter.try_acquire()
    assert not limiter.try_acquire()
    await trio.sleep(1)
    assert limiter.try_acquire()
    assert not limiter.try_acquire(2)
    statistics = limiter.statistics()
    assert (statistics.admitted, statistics.admitted_cost, statistics.rejected) == (3, 3.0, 2)


async def test_rate_try_acquire_does_not_overtake_waiters(autojump_clock: object) -> None:
    """While anyone is queued, ``try_acquire`` refuses even if the schedule alone would allow it."""
    limiter = RateLimiter(1, burst=2)
    await limiter.acquire(2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limiter.acquire, 2)
        await trio.sleep_until(1.0)
        assert not limiter.try_acquire(1)
    assert trio.current_time() == 2.0
    assert not limiter.try_acquire(1)
    await trio.sleep_until(3.0)
    assert limiter.try_acquire(1)


async def test_rate_acquire_nowait_raises_with_retry_after(autojump_clock: object) -> None:
    """``acquire_nowait`` raises RateLimitExceeded; retry_after is exactly the wait of acquire."""
    limiter = RateLimiter(1, burst=3)
    limiter.acquire_nowait(3)
    with pytest.raises(RateLimitExceeded) as info:
        limiter.acquire_nowait(2)
    # Three slots are owed until 3.0; cost 2 fits under burst 3 one slot earlier.
    assert info.value.retry_after == 2.0
    assert str(info.value) == "rate limit of 1 per 1s exceeded for key None, retry after 2s"
    assert isinstance(info.value, trine.TrineError)
    assert isinstance(info.value, trio.WouldBlock)
    with assert_takes(2.0):
        await limiter.acquire(2)


async def test_rate_retry_after_counts_the_queue(autojump_clock: object) -> None:
    """retry_after includes the waiters ahead, in FIFO order."""
    limiter = RateLimiter(1, burst=3)
    await limiter.acquire(3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limiter.acquire, 3)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(RateLimitExceeded) as info:
            limiter.acquire_nowait(1)
        # The queued cost 3 goes at 3.0; then cost 1 may go at 6 - 2 = 4.0.
        assert info.value.retry_after == 4.0
        with assert_takes(4.0):
            await limiter.acquire(1)


def test_rate_limit_exceeded_pickles() -> None:
    """RateLimitExceeded keeps its message and retry_after through pickling."""
    error = pickle.loads(pickle.dumps(RateLimitExceeded("slow down", retry_after=2.5)))
    assert (str(error), error.retry_after) == ("slow down", 2.5)


# -- keys ---------------------------------------------------------------------------


async def test_rate_keys_are_independent(autojump_clock: object) -> None:
    """Each key has its own schedule; the default key is ``None``."""
    recorder = Recorder(RateLimiter(1))
    async with trio.open_nursery() as nursery:
        for i in range(2):
            for key in ("a", "b", None):
                await recorder.start(nursery, (key, i), key=key)
    assert recorder.admitted == {
        ("a", 0): 0.0,
        ("b", 0): 0.0,
        (None, 0): 0.0,
        ("a", 1): 1.0,
        ("b", 1): 1.0,
        (None, 1): 1.0,
    }


@pytest.mark.parametrize(
    "make", [lambda: RateLimiter(100, burst=2), lambda: SlidingWindowLimiter(2, 0.01)]
)
async def test_idle_keys_are_forgotten(autojump_clock: object, make: Callable[[], Limiter]) -> None:
    """Memory does not grow with the number of keys ever seen, only with recently busy ones."""
    limiter = make()
    most = 0
    for key in range(5000):
        await limiter.acquire(key=key)
        assert limiter.try_acquire(key=key)
        most = max(most, limiter.statistics().keys)
        await trio.sleep(0.001)
    # About ten keys are busy at any moment; the table is swept once it passes 64.
    assert most <= 64
    await trio.sleep(1)
    limiter.try_acquire(key="last")
    assert limiter.statistics().keys <= 64
    assert limiter.statistics().admitted == 10001


async def test_rate_change_applies_to_every_key(autojump_clock: object) -> None:
    """A new rate reschedules the waiters of every key."""
    recorder = Recorder(RateLimiter(1))
    async with trio.open_nursery() as nursery:
        for key in ("a", "b"):
            for i in range(2):
                await recorder.start(nursery, (key, i), key=key)
        recorder.limiter.rate = 4
    assert recorder.admitted == {("a", 0): 0.0, ("a", 1): 0.25, ("b", 0): 0.0, ("b", 1): 0.25}


async def test_rate_decrease_gives_idle_key_no_debt(autojump_clock: object) -> None:
    """A key whose slots have all passed owes nothing after ``rate`` is lowered."""
    limiter = RateLimiter(100, burst=1)
    for _ in range(10):
        await limiter.acquire()
    assert trio.current_time() == pytest.approx(0.09)
    await trio.sleep(1.0)  # t = 1.09: every slot has passed, the key is idle
    limiter.rate = 1  # now one per second
    start = trio.current_time()
    await limiter.acquire()
    assert trio.current_time() - start == 0.0


async def test_rate_change_from_unlimited_leaves_no_debt(autojump_clock: object) -> None:
    """Lowering an unlimited rate later does not turn old admissions into debt."""
    limiter = RateLimiter(math.inf)
    for _ in range(1000):
        await limiter.acquire()
    await trio.sleep(5.0)
    limiter.rate = 10
    start = trio.current_time()
    await limiter.acquire()
    assert trio.current_time() - start == 0.0


async def test_rate_change_leaves_an_idle_key_free_for_try_acquire_and_retry_after(
    autojump_clock: object,
) -> None:
    """After a rate change an idle key admits at once, and ``retry_after`` counts only new debt."""
    limiter = RateLimiter(100)
    for _ in range(10):
        await limiter.acquire()
    await trio.sleep_until(2.0)  # the key is idle
    limiter.rate = 1
    assert limiter.try_acquire()
    with pytest.raises(RateLimitExceeded) as info:
        limiter.acquire_nowait()
    assert info.value.retry_after == 1.0


@given(
    before=st.sampled_from([1.0, 4.0, 100.0, math.inf]),
    after=st.sampled_from([0.5, 1.0, 4.0, 100.0]),
    admissions=st.integers(1, 20),
    change_per=st.booleans(),
)
def test_rate_change_on_an_idle_key_never_delays_the_next_acquire(
    before: float, after: float, admissions: int, change_per: bool
) -> None:
    """Property: once a key is idle (its slots all passed), no setting change makes it wait."""

    async def main() -> float:
        limiter = RateLimiter(before, burst=1)
        for _ in range(admissions):
            await limiter.acquire()
        await trio.sleep(admissions / before + 1.0)  # every slot has passed
        if change_per and math.isfinite(before):
            limiter.per = before / after  # the same as rate = after
        else:
            limiter.rate = after
        start = trio.current_time()
        await limiter.acquire()
        return trio.current_time() - start

    waited = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert waited == 0.0


# -- statistics and repr --------------------------------------------------------------


async def test_rate_statistics_and_repr(autojump_clock: object) -> None:
    """statistics() counts admissions, cost, refusals, waiters and keys; the repr shows them."""
    limiter = RateLimiter(2, per=3.0, burst=2)
    await limiter.acquire(2, key="a")
    assert not limiter.try_acquire(key="a")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limiter.acquire)
        nursery.start_soon(partial(limiter.acquire, 1.5, key="a"))
        nursery.start_soon(partial(limiter.acquire, 1, key="a"))
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.statistics() == trine.RateLimiterStatistics(
            rate=2.0,
            per=3.0,
            burst=2,
            admitted=2,
            admitted_cost=3.0,
            rejected=1,
            tasks_waiting=2,
            keys=2,
        )
        assert repr(limiter) == "<trine.RateLimiter rate=2 per=3s burst=2: 2 waiting, 2 keys>"
    statistics = limiter.statistics()
    assert (statistics.admitted, statistics.admitted_cost, statistics.tasks_waiting) == (4, 5.5, 0)


# -- the default burst: enough to cover the timer slack ------------------------------


@pytest.mark.parametrize(
    ("rate", "per", "burst"),
    [
        (10, 1.0, 1),
        (100, 1.0, 1),
        (333, 1.0, 1),
        (334, 1.0, 2),
        (1_000, 1.0, 3),
        (20_000, 1.0, 60),
        (100_000, 1.0, 300),
        (60_000, 60.0, 3),
        (700, 0.3, 7),  # exactly 7, though 700 * 0.003 / 0.3 is 7.000000000000001
        (190, 0.01, 57),
        (0.5, 1.0, 1),
        (1e300, 1.0, sys.maxsize),
        (math.inf, 1.0, sys.maxsize),
    ],
)
def test_rate_default_burst_is_max_1_ceil_rate_times_3_ms(
    rate: float, per: float, burst: int
) -> None:
    """Without ``burst=``, the burst is ``max(1, ceil(rate / per * 0.003))``."""
    limiter = RateLimiter(rate, per)
    assert limiter.burst == burst
    assert limiter.statistics().burst == burst
    assert f" burst={burst}: " in repr(limiter)
    assert RateLimiter(rate, per, burst=None).burst == burst


async def test_rate_default_burst_keeps_everyday_rates_strictly_spaced(
    autojump_clock: object,
) -> None:
    """At 100/s the default burst is 1: ten tasks at once are admitted 10 ms apart."""
    recorder = Recorder(RateLimiter(100))
    async with trio.open_nursery() as nursery:
        for i in range(10):
            await recorder.start(nursery, i)
    assert [recorder.admitted[i] for i in range(10)] == approx([i / 100 for i in range(10)])


async def test_rate_default_burst_follows_rate_and_per(autojump_clock: object) -> None:
    """The default burst is recomputed when the rate changes; a given burst is kept."""
    limiter = RateLimiter(1_000)
    assert limiter.burst == 3
    limiter.rate = 20_000
    assert limiter.burst == 60
    limiter.per = 4.0
    assert limiter.burst == 15
    limiter.burst = 2
    limiter.rate = 100_000
    assert limiter.burst == 2
    limiter.burst = None
    assert limiter.burst == 75


async def test_rate_change_refused_when_the_default_burst_would_strand_a_waiter(
    autojump_clock: object,
) -> None:
    """A rate whose default burst is below a queued cost would never admit it: refused."""
    limiter = RateLimiter(20_000)
    await limiter.acquire(60)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limiter.acquire, 60)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(
            ValueError,
            match=r"^rate must leave the default burst >= 60, the cost of a waiting acquire, "
            r"got 10 \(the default burst would be 1\)$",
        ):
            limiter.rate = 10
        assert (limiter.rate, limiter.burst) == (20_000, 60)


# -- late wake-ups: a timer that fires only on coarse ticks ---------------------------


async def run_on_coarse_ticks(
    clock: trio.testing.MockClock, tick: float, until: float, work: Callable[[], Awaitable[None]]
) -> None:
    """Run *work* while the fake clock moves only in steps of *tick*.

    This is an event loop whose timers fire on tick boundaries: every sleeper
    wakes at the first tick at or after its deadline, up to a tick late (Trio's
    own I/O wait rounds its timeout up to whole milliseconds). It ends when
    *work* returns, or when the clock has reached *until* and everyone is
    blocked (then *work* is cancelled).
    """
    async with trio.open_nursery() as nursery:

        async def ticker() -> None:
            while True:
                await trio.testing.wait_all_tasks_blocked()
                if trio.current_time() >= until:
                    nursery.cancel_scope.cancel()
                    return
                clock.jump(tick)

        nursery.start_soon(ticker)
        await work()
        nursery.cancel_scope.cancel()


def saturate(limiter: RateLimiter | SlidingWindowLimiter, tasks: int, times: list[float]) -> Any:
    """*tasks* tasks acquiring in a loop; each admission's time goes to *times*."""

    async def worker() -> None:
        while True:
            await limiter.acquire()
            times.append(trio.current_time())

    async def work() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(worker)

    return work


async def test_rate_late_wake_ups_within_the_burst_are_repaid(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Woken a tick late, the head and every waiter then due go at once: none is lost."""
    # Due at 0.125, 0.25, 0.375, ...; woken only at 0.25, 0.5, ...: two per tick,
    # the rate exactly, not one per tick (which resetting the schedule to the
    # late wake-up would give).
    limiter = RateLimiter(8, burst=3)
    recorder = Recorder(limiter)

    async def work() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(10):
                await recorder.start(nursery, i)

    await run_on_coarse_ticks(mock_clock, 0.25, 1.0, work)
    assert [recorder.admitted[i] for i in range(10)] == [
        *[0.0] * 3,
        *[0.25] * 2,
        *[0.5] * 2,
        *[0.75] * 2,
        1.0,
    ]


async def test_rate_default_burst_delivers_the_rate_when_every_wake_up_is_late(
    mock_clock: trio.testing.MockClock,
) -> None:
    """At 16,384/s with a timer of 1/1024 s ticks, the default burst (50) loses nothing.

    After one second exactly ``burst + rate * t`` were admitted -- the most the
    guarantee allows -- 16 at every tick.
    """
    limiter = RateLimiter(16_384)
    assert limiter.burst == 50
    times: list[float] = []
    await run_on_coarse_ticks(mock_clock, 1 / 1024, 1.0, saturate(limiter, 60, times))
    assert len(times) == 50 + 16_384
    assert times.count(0.0) == 50
    assert {times.count(k / 1024) for k in range(1, 1025)} == {16}


async def test_rate_strict_spacing_admits_one_per_tick(mock_clock: trio.testing.MockClock) -> None:
    """``burst=1`` never repays lateness: on a 1/1024 s timer, 16,384/s achieves 1,024/s."""
    limiter = RateLimiter(16_384, burst=1)
    times: list[float] = []
    await run_on_coarse_ticks(mock_clock, 1 / 1024, 1.0, saturate(limiter, 50, times))
    assert times == [k / 1024 for k in range(1025)]


async def test_rate_lateness_beyond_the_burst_is_lost_and_no_more(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A tick longer than the burst covers: a full burst per tick, never more."""
    limiter = RateLimiter(16_384)  # burst 50 covers 49 / 16,384 s; a tick is 64 / 16,384 s
    times: list[float] = []
    await run_on_coarse_ticks(mock_clock, 4 / 1024, 1.0, saturate(limiter, 60, times))
    assert len(times) == 50 * 257
    assert {times.count(k * 4 / 1024) for k in range(257)} == {50}


async def test_window_late_wake_up_admits_every_waiter_that_fits_at_once(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Woken late, the sliding window admits all that fit at that instant; the window shifts."""
    recorder = Recorder(SlidingWindowLimiter(4, 0.9))

    async def work() -> None:
        async with trio.open_nursery() as nursery:
            for i in range(10):
                await recorder.start(nursery, i)

    await run_on_coarse_ticks(mock_clock, 0.25, 2.0, work)
    # Slots free at 0.9 and, counted from the late admissions, at 1.9.
    assert [recorder.admitted[i] for i in range(10)] == [*[0.0] * 4, *[1.0] * 4, 2.0, 2.0]


# -- keys must be hashable -------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: RateLimiter(10), lambda: SlidingWindowLimiter(10, 1.0)])
async def test_unhashable_key_is_refused_naming_key(make: Callable[[], Limiter]) -> None:
    """A key that cannot be a dict key is a TypeError naming ``key``, from every method."""
    limiter = make()
    message = r"^key must be hashable, got \[1\]$"
    with pytest.raises(TypeError, match=message):
        await limiter.acquire(key=[1])
    with pytest.raises(TypeError, match=message):
        limiter.try_acquire(key=[1])
    with pytest.raises(TypeError, match=message):
        limiter.acquire_nowait(key=[1])
    assert limiter.statistics().rejected == 0


# -- validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rate": 0}, ValueError, r"^rate must be > 0, got 0$"),
        ({"rate": -1.5}, ValueError, r"^rate must be > 0, got -1.5$"),
        ({"rate": math.nan}, ValueError, r"^rate must not be NaN, got nan$"),
        ({"rate": "5"}, TypeError, r"^rate must be a number, got '5'$"),
        ({"rate": True}, TypeError, r"^rate must be a number, got True$"),
        ({"rate": 1, "per": 0}, ValueError, r"^per must be > 0, got 0$"),
        ({"rate": 1, "per": math.inf}, ValueError, r"^per must be finite, got inf$"),
        ({"rate": 1, "per": None}, TypeError, r"^per must be a number, got None$"),
        ({"rate": 1, "burst": 0}, ValueError, r"^burst must be >= 1, got 0$"),
        ({"rate": 1, "burst": 2.0}, TypeError, r"^burst must be an int, got 2.0$"),
        ({"rate": 1, "burst": "2"}, TypeError, r"^burst must be an int, got '2'$"),
        # Regression (audit): a bare OverflowError from the default burst.
        (
            {"rate": 1e300, "per": 1e-10},
            ValueError,
            r"^rate / per must be finite \(rate=math.inf admits everything\), "
            r"got rate=1e\+300 and per=1e-10$",
        ),
        (
            {"rate": 1e300, "per": 1e-10, "burst": 1},
            ValueError,
            r"^rate / per must be finite .*, got rate=1e\+300 and per=1e-10$",
        ),
    ],
)
def test_rate_limiter_validates_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Bad constructor arguments are refused with a message naming the parameter and value."""
    with pytest.raises(error, match=message):
        RateLimiter(**kwargs)


def test_rate_limiter_validates_settings_changes() -> None:
    """The property setters validate as the constructor does and keep the old value."""
    limiter = RateLimiter(5, burst=2)
    with pytest.raises(ValueError, match=r"^rate must be > 0, got -1$"):
        limiter.rate = -1
    with pytest.raises(ValueError, match=r"^per must be finite, got inf$"):
        limiter.per = math.inf
    with pytest.raises(TypeError, match=r"^burst must be an int, got 'x'$"):
        limiter.burst = "x"  # type: ignore[assignment]
    assert (limiter.rate, limiter.per, limiter.burst) == (5.0, 1.0, 2)
    limiter.rate = math.inf
    assert limiter.rate == math.inf


def test_rate_limiter_refuses_settings_whose_ratio_overflows() -> None:
    """Regression (audit): rate or per set at run time so that rate / per overflows is
    refused naming both (it was a bare OverflowError), and the settings are kept."""
    limiter = RateLimiter(1e307)
    with pytest.raises(
        ValueError, match=r"^rate / per must be finite .*, got rate=1e\+307 and per=1e-10$"
    ):
        limiter.per = 1e-10
    limiter = RateLimiter(1, per=1e-10)
    with pytest.raises(
        ValueError, match=r"^rate / per must be finite .*, got rate=1e\+300 and per=1e-10$"
    ):
        limiter.rate = 1e300
    assert (limiter.rate, limiter.per, limiter.burst) == (1.0, 1e-10, 30_000_000)
    limiter.rate = math.inf  # unlimited: no ratio to compute
    assert limiter.burst == sys.maxsize


@pytest.mark.parametrize(
    ("cost", "error", "message"),
    [
        (0, ValueError, r"^cost must be > 0, got 0$"),
        (-1, ValueError, r"^cost must be > 0, got -1$"),
        (math.inf, ValueError, r"^cost must be finite, got inf$"),
        ("1", TypeError, r"^cost must be a number, got '1'$"),
        (3, ValueError, r"^cost must be <= burst, got cost=3 and burst=2$"),
        (2.5, ValueError, r"^cost must be <= burst, got cost=2.5 and burst=2$"),
    ],
)
async def test_rate_limiter_validates_cost(cost: Any, error: type[Exception], message: str) -> None:
    """A bad cost is refused by every method at the call, never a hang."""
    limiter = RateLimiter(1, burst=2)
    with pytest.raises(error, match=message):
        await limiter.acquire(cost)
    with pytest.raises(error, match=message):
        limiter.try_acquire(cost)
    with pytest.raises(error, match=message):
        limiter.acquire_nowait(cost)
    assert limiter.statistics().rejected == 0


# -- SlidingWindowLimiter -----------------------------------------------------------


async def test_window_admits_limit_then_waits_for_the_oldest(autojump_clock: object) -> None:
    """Up to ``limit`` go at once; each later one goes when the oldest leaves the window."""
    limiter = SlidingWindowLimiter(3, 1.0)
    assert await sequential_times(limiter, 7) == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]


async def test_window_slides_with_the_admissions(autojump_clock: object) -> None:
    """A slot frees exactly ``window`` after the admission that used it."""
    limiter = SlidingWindowLimiter(2, 10.0)
    await limiter.acquire()
    await trio.sleep_until(4.0)
    await limiter.acquire()
    assert await sequential_times(limiter, 3) == [10.0, 14.0, 20.0]


async def test_window_costs_and_fifo(autojump_clock: object) -> None:
    """A cost needs that many slots; a cheap later waiter does not overtake an expensive one."""
    recorder = Recorder(SlidingWindowLimiter(3, 1.0))
    await recorder.limiter.acquire(1)
    await trio.sleep_until(0.5)
    await recorder.limiter.acquire(2)
    async with trio.open_nursery() as nursery:
        await recorder.start(nursery, "expensive", 3)
        await recorder.start(nursery, "cheap", 1)
    # "cheap" alone could have gone at 1.0; behind "expensive" (at 1.5) it waits until 2.5.
    assert recorder.admitted == {"expensive": 1.5, "cheap": 2.5}


async def test_window_cancelled_waiter_does_not_delay(autojump_clock: object) -> None:
    """A cancelled head frees the next waiter at once if the window allows it."""
    recorder = Recorder(SlidingWindowLimiter(3, 1.0))
    await recorder.limiter.acquire(1)
    await trio.sleep_until(0.5)
    await recorder.limiter.acquire(2)
    async with trio.open_nursery() as nursery:
        expensive = await recorder.start(nursery, "expensive", 3)
        await recorder.start(nursery, "cheap", 1)
        await trio.sleep_until(1.25)
        expensive.cancel()
    assert recorder.admitted == {"cheap": 1.25}


async def test_window_try_and_nowait(autojump_clock: object) -> None:
    """``try_acquire``/``acquire_nowait`` never wait; retry_after is the exact wait."""
    limiter = SlidingWindowLimiter(2, 5.0)
    assert limiter.try_acquire()
    await trio.sleep_until(1.0)
    limiter.acquire_nowait()
    assert not limiter.try_acquire()
    with pytest.raises(RateLimitExceeded) as info:
        limiter.acquire_nowait(2)
    assert info.value.retry_after == 5.0
    assert str(info.value) == "limit of 2 per 5s window exceeded for key None, retry after 5s"
    with assert_takes(5.0):
        await limiter.acquire(2)
    assert limiter.statistics() == trine.SlidingWindowLimiterStatistics(
        limit=2,
        window=5.0,
        admitted=3,
        admitted_cost=4,
        rejected=2,
        tasks_waiting=0,
        keys=1,
        waited=1,  # the acquire(2) that waited 5 s
        wait_time=5.0,
    )


async def test_window_retry_after_counts_the_queue(autojump_clock: object) -> None:
    """The sliding window's retry_after includes the waiters ahead, in FIFO order."""
    limiter = SlidingWindowLimiter(2, 1.0)
    await limiter.acquire(2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limiter.acquire, 2)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(RateLimitExceeded) as info:
            limiter.acquire_nowait(1)
        # The queued cost 2 goes at 1.0 and fills the window until 2.0.
        assert info.value.retry_after == 2.0
        with assert_takes(2.0):
            await limiter.acquire(1)


def test_window_validates_settings_changes() -> None:
    """The sliding window's setters validate as the constructor does and keep the old value."""
    limiter = SlidingWindowLimiter(3, 1.0)
    with pytest.raises(ValueError, match=r"^limit must be >= 1, got 0$"):
        limiter.limit = 0
    with pytest.raises(ValueError, match=r"^window must be > 0, got -2$"):
        limiter.window = -2
    assert (limiter.limit, limiter.window) == (3, 1.0)


async def test_statistics_are_fresh_frozen_snapshots(autojump_clock: object) -> None:
    """statistics() returns a new frozen object that later activity does not change."""
    limiter = RateLimiter(1)
    before = limiter.statistics()
    await limiter.acquire()
    assert before.admitted == 0
    assert limiter.statistics().admitted == 1
    with pytest.raises(AttributeError):
        before.admitted = 5  # type: ignore[misc]


async def test_window_settings_change_at_run_time(autojump_clock: object) -> None:
    """A larger limit or a shorter window lets queued waiters go at once."""
    recorder = Recorder(SlidingWindowLimiter(1, 10.0))
    async with trio.open_nursery() as nursery:
        for i in range(4):
            await recorder.start(nursery, i)
        await trio.sleep_until(1.0)
        recorder.limiter.limit = 2
        await trio.sleep_until(2.0)
        recorder.limiter.window = 2.5
    assert recorder.admitted == {0: 0.0, 1: 1.0, 2: 2.5, 3: 3.5}


async def test_window_limit_cannot_drop_below_a_waiting_cost(autojump_clock: object) -> None:
    """Setting ``limit`` below a queued cost is refused."""
    limiter = SlidingWindowLimiter(3, 1.0)
    await limiter.acquire(3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(limiter.acquire, 3)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(
            ValueError, match=r"^limit must be >= 3, the cost of a waiting acquire, got 1$"
        ):
            limiter.limit = 1
        assert repr(limiter) == "<trine.SlidingWindowLimiter limit=3 window=1s: 1 waiting, 1 key>"


async def test_window_acquire_is_always_a_checkpoint(autojump_clock: object) -> None:
    """The sliding window's acquire checkpoints on both paths; try_acquire never does."""
    limiter = SlidingWindowLimiter(1, 1.0)
    with trio.testing.assert_checkpoints():
        await limiter.acquire()
    with trio.testing.assert_checkpoints():
        await limiter.acquire()
    with trio.testing.assert_no_checkpoints():
        limiter.try_acquire()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"limit": 0, "window": 1}, ValueError, r"^limit must be >= 1, got 0$"),
        ({"limit": 1.5, "window": 1}, TypeError, r"^limit must be an int, got 1.5$"),
        ({"limit": 1, "window": 0}, ValueError, r"^window must be > 0, got 0$"),
        ({"limit": 1, "window": math.inf}, ValueError, r"^window must be finite, got inf$"),
        ({"limit": 1, "window": "1"}, TypeError, r"^window must be a number, got '1'$"),
    ],
)
def test_window_validates_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Bad constructor arguments are refused with the one message style."""
    with pytest.raises(error, match=message):
        SlidingWindowLimiter(**kwargs)


@pytest.mark.parametrize(
    ("cost", "error", "message"),
    [
        (0, ValueError, r"^cost must be >= 1, got 0$"),
        (1.5, TypeError, r"^cost must be an int, got 1.5$"),
        (4, ValueError, r"^cost must be <= limit, got cost=4 and limit=3$"),
    ],
)
async def test_window_validates_cost(cost: Any, error: type[Exception], message: str) -> None:
    """A bad cost is refused at the call by every method."""
    limiter = SlidingWindowLimiter(3, 1.0)
    with pytest.raises(error, match=message):
        await limiter.acquire(cost)
    with pytest.raises(error, match=message):
        limiter.try_acquire(cost)
    with pytest.raises(error, match=message):
        limiter.acquire_nowait(cost)


# -- properties -----------------------------------------------------------------------

TOLERANCE = 1e-9

arrivals = st.lists(
    st.tuples(
        st.integers(0, 24).map(lambda n: n / 16),  # gap after the previous arrival
        st.integers(1, 4),  # cost (clipped to burst/limit)
        st.one_of(st.none(), st.integers(0, 40).map(lambda n: n / 16)),  # cancel after
        st.sampled_from(["a", "b"]),  # key
    ),
    max_size=60,
)


def run_schedule(
    limiter: Limiter,
    schedule: list[tuple[float, int, float | None, str]],
    most: int,
    tick: float | None = None,
) -> tuple[list[tuple[int, float, int, str]], dict[int, float], dict[int, float]]:
    """Run waiters per *schedule*; return (admission log, arrival times, cancel times).

    With *tick*, the fake clock moves only in steps of *tick*, so every sleeper
    wakes up to a tick late (see :func:`run_on_coarse_ticks`).
    """
    log: list[tuple[int, float, int, str]] = []
    arrived: dict[int, float] = {}
    cancelled: dict[int, float] = {}

    async def waiter(
        index: int,
        cost: int,
        cancel_after: float | None,
        key: str,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        arrived[index] = trio.current_time()
        deadline = math.inf if cancel_after is None else arrived[index] + cancel_after
        with trio.move_on_at(deadline):
            await limiter.acquire(cost, key=key)
            log.append((index, trio.current_time(), cost, key))
            return
        cancelled[index] = trio.current_time()

    async def arrive() -> None:
        async with trio.open_nursery() as nursery:
            for index, (gap, cost, cancel_after, key) in enumerate(schedule):
                await trio.sleep(gap)
                await nursery.start(waiter, index, min(cost, most), cancel_after, key)

    async def main() -> None:
        # A lost waiter would hang; the fake clock turns that into TooSlowError.
        with trio.fail_after(10_000):
            if tick is None:
                await arrive()
            else:
                await run_on_coarse_ticks(clock, tick, math.inf, arrive)

    clock = trio.testing.MockClock(autojump_threshold=0 if tick is None else math.inf)
    trio.run(main, clock=clock)
    # Every waiter either was admitted or was cancelled (and never both).
    assert sorted([entry[0] for entry in log] + list(cancelled)) == list(range(len(schedule)))
    return log, arrived, cancelled


def in_arrival_order(
    log: list[tuple[int, float, int, str]], key: str
) -> list[tuple[int, float, int, str]]:
    """*key*'s admissions in arrival order, checked to be admitted in that order.

    Waiters admitted at one instant go on in the order Trio's scheduler picks,
    so the log may list them in any order; FIFO means that none was admitted
    at an earlier time than a waiter that arrived before it.
    """
    entries = sorted((entry for entry in log if entry[3] == key), key=lambda entry: entry[0])
    times = [entry[1] for entry in entries]
    assert times == sorted(times)
    return entries


def check_fifo_and_no_idle_wait(
    log: list[tuple[int, float, int, str]],
    arrived: dict[int, float],
    cancelled: dict[int, float],
    earliest: Callable[[list[tuple[float, int]], int], float],
) -> None:
    """Per key: admissions in arrival order, each as early as FIFO and the rule allow.

    An admission may only be later than ``max(arrival, previous admission,
    earliest the rule allows)`` because an earlier waiter blocked the queue
    until it was cancelled, so then it happens at that cancellation time.
    """
    for key in ("a", "b"):
        entries = in_arrival_order(log, key)
        previous = -math.inf
        history: list[tuple[float, int]] = []
        for index, time, cost, _ in entries:
            expected = max(arrived[index], previous, earliest(history, cost))
            assert time >= expected - TOLERANCE
            if time > expected + TOLERANCE:
                assert any(
                    abs(time - at) <= TOLERANCE for other, at in cancelled.items() if other < index
                ), (index, time, expected)
            previous = time
            history.append((time, cost))


def check_rate_bound(limiter: RateLimiter, log: list[tuple[int, float, int, str]]) -> None:
    """Per key, in every window [a, b] spanned by admissions: cost <= burst + rate (b - a) / per."""
    burst, rate, per = limiter.burst, limiter.rate, limiter.per
    for key in ("a", "b"):
        entries = [(time, cost) for _, time, cost, entry_key in log if entry_key == key]
        for i, (start, _) in enumerate(entries):
            total = 0
            for end, cost in entries[i:]:
                total += cost
                assert total <= burst + rate * (end - start) / per + TOLERANCE


# Rates from everyday ones (default burst 1) to ones whose default burst is 3 to 13.
RATES = st.sampled_from([0.5, 1, 2, 3, 10, 1_000, 1_500, 4_096])
BURSTS = st.one_of(st.none(), st.integers(1, 4))


@given(rate=RATES, per=st.sampled_from([0.5, 1.0, 3.0]), burst=BURSTS, schedule=arrivals)
def test_rate_property_bound_fifo_and_no_lost_waiters(
    rate: float,
    per: float,
    burst: int | None,
    schedule: list[tuple[float, int, float | None, str]],
) -> None:
    """Random arrivals, costs and cancellations: the window bound holds, FIFO, no idle waiting.

    ``burst=None`` is the default burst; the bound is checked with the burst in force.
    """
    limiter = RateLimiter(rate, per, burst=burst)
    log, arrived, cancelled = run_schedule(limiter, schedule, limiter.burst)
    check_rate_bound(limiter, log)
    interval = per / rate

    def earliest(history: list[tuple[float, int]], cost: int) -> float:
        tat = -math.inf
        for time, admitted_cost in history:
            tat = max(tat, time) + admitted_cost * interval
        return tat - (limiter.burst - cost) * interval

    check_fifo_and_no_idle_wait(log, arrived, cancelled, earliest)
    statistics = limiter.statistics()
    assert statistics.admitted == len(log)
    assert statistics.tasks_waiting == 0


@given(
    rate=RATES,
    per=st.sampled_from([0.5, 1.0, 3.0]),
    burst=BURSTS,
    tick=st.sampled_from([1 / 64, 1 / 16, 0.3]),
    schedule=arrivals,
)
def test_rate_property_bound_holds_when_every_wake_up_is_late(
    rate: float,
    per: float,
    burst: int | None,
    tick: float,
    schedule: list[tuple[float, int, float | None, str]],
) -> None:
    """Waking up to a tick late (repaying lateness at once) never breaks the bound or FIFO."""
    limiter = RateLimiter(rate, per, burst=burst)
    log, _, _ = run_schedule(limiter, schedule, limiter.burst, tick=tick)
    check_rate_bound(limiter, log)
    for key in ("a", "b"):
        in_arrival_order(log, key)
    assert limiter.statistics().tasks_waiting == 0


@given(
    rate=st.sampled_from([0.5, 1, 2, 3, 7, 10]),
    per=st.sampled_from([0.25, 1.0, 3.0]),
    burst=st.integers(1, 5),
    extra=st.integers(0, 40),
)
def test_rate_property_long_run_rate(rate: float, per: float, burst: int, extra: int) -> None:
    """With saturating demand, burst + extra admissions take exactly extra * per / rate."""
    limiter = RateLimiter(rate, per, burst=burst)
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        times.append(trio.current_time())

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for _ in range(burst + extra):
                nursery.start_soon(one)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert times[:burst] == [0.0] * burst
    assert times[-1] == pytest.approx(extra * per / rate, abs=TOLERANCE, rel=0)
    gaps = [b - a for a, b in zip(times[burst - 1 :], times[burst:], strict=False)]
    assert gaps == pytest.approx([per / rate] * extra, abs=TOLERANCE, rel=0)


@given(limit=st.integers(1, 4), window=st.sampled_from([0.5, 1.0, 2.5, 0.3]), schedule=arrivals)
def test_window_property_bound_fifo_and_no_lost_waiters(
    limit: int, window: float, schedule: list[tuple[float, int, float | None, str]]
) -> None:
    """Random arrivals, costs and cancellations: never more than limit in any window, FIFO."""
    limiter = SlidingWindowLimiter(limit, window)
    log, arrived, cancelled = run_schedule(limiter, schedule, limit)
    for key in ("a", "b"):
        entries = [(time, cost) for _, time, cost, entry_key in log if entry_key == key]
        for start, _ in entries:
            in_window = sum(cost for time, cost in entries if start <= time < start + window)
            assert in_window <= limit

    def earliest(history: list[tuple[float, int]], cost: int) -> float:
        # The first moment at which the admissions still in the window leave room for cost.
        for moment in [-math.inf, *sorted(time + window for time, _ in history)]:
            # Later admissions than this one's are impossible (FIFO), so every
            # admission that has not yet left the window by *moment* counts.
            used = sum(c for time, c in history if moment < time + window)
            if used + cost <= limit:
                return moment
        raise AssertionError("unreachable")

    check_fifo_and_no_idle_wait(log, arrived, cancelled, earliest)
    assert limiter.statistics().admitted_cost == sum(entry[2] for entry in log)


@given(
    limit=st.integers(1, 4),
    window=st.sampled_from([0.5, 1.0, 2.5, 0.3]),
    tick=st.sampled_from([1 / 64, 1 / 16, 0.3]),
    schedule=arrivals,
)
def test_window_property_bound_holds_when_every_wake_up_is_late(
    limit: int, window: float, tick: float, schedule: list[tuple[float, int, float | None, str]]
) -> None:
    """Waking up to a tick late never puts more than limit in any window, nor breaks FIFO."""
    limiter = SlidingWindowLimiter(limit, window)
    log, _, _ = run_schedule(limiter, schedule, limit, tick=tick)
    for key in ("a", "b"):
        entries = [(time, cost) for _, time, cost, entry_key in log if entry_key == key]
        for start, _ in entries:
            assert sum(cost for time, cost in entries if start <= time < start + window) <= limit
        in_arrival_order(log, key)
    assert limiter.statistics().tasks_waiting == 0


async def test_statistics_count_the_acquisitions_that_waited_and_for_how_long(
    autojump_clock: object,
) -> None:
    """waited and wait_time count only acquire calls admitted after waiting, in exact seconds."""
    limiter = trine.RateLimiter(1, 1.0, burst=1)
    await limiter.acquire()  # admitted at once: not a wait
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(limiter.acquire)  # admitted at t=1, 2 and 3
        cancelled = trio.CancelScope()

        async def gives_up() -> None:
            with cancelled:
                await limiter.acquire()

        nursery.start_soon(gives_up)
        await trio.sleep(0.5)
        cancelled.cancel()  # left the line: not counted
    stats = limiter.statistics()
    assert (stats.admitted, stats.waited, stats.wait_time) == (4, 3, 1.0 + 2.0 + 3.0)
