"""ResourcePool: the bound, FIFO waiting, discards, warming, reaping, health checks, closing."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import trine
from trine.testing import assert_takes


class Broken(Exception):
    """What a block or a connect raises in these tests."""


class Backend:
    """Connects numbered resources and records every connect and close, on the fake clock.

    ``alive`` counts resources in existence: from the start of their connect
    to the end of their close (or of the failed connect), the quantity the
    pool bounds by ``max_size``.
    """

    def __init__(
        self,
        connect_time: float = 0.0,
        close_time: float = 0.0,
        fail_connects: Callable[[int], bool] = lambda number: False,
    ) -> None:
        self.connect_time = connect_time
        self.close_time = close_time
        self.fail_connects = fail_connects
        self.connects = 0
        self.alive = 0
        self.peak = 0
        self.closed: list[tuple[int, float]] = []
        self.created: list[tuple[int, float]] = []

    async def connect(self) -> int:
        self.connects += 1
        number = self.connects
        self.alive += 1
        self.peak = max(self.peak, self.alive)
        try:
            await trio.sleep(self.connect_time)
            if self.fail_connects(number):
                raise Broken(f"connect {number}")
        except BaseException:
            self.alive -= 1
            raise
        self.created.append((number, trio.current_time()))
        return number

    async def close(self, resource: int) -> None:
        try:
            await trio.sleep(self.close_time)
        finally:
            self.alive -= 1
            self.closed.append((resource, trio.current_time()))

    def pool(self, **kwargs: Any) -> trine.ResourcePool[int]:
        return trine.ResourcePool(self.connect, close=self.close, **kwargs)


async def hold(
    pool: trine.ResourcePool[int], seconds: float, log: list[tuple[float, int]] | None = None
) -> int:
    async with pool.acquire() as resource:
        if log is not None:
            log.append((trio.current_time(), resource))
        await trio.sleep(seconds)
        return resource


# --- handing out and taking back --------------------------------------------------


async def test_a_returned_resource_is_reused_by_the_next_holder(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The first acquire connects (1 s); the second gets the same resource at once."""
    backend = Backend(connect_time=1.0)
    async with backend.pool(max_size=3) as pool:
        with assert_takes(1.0):
            assert await hold(pool, 0) == 1
        with assert_takes(0.0):
            assert await hold(pool, 0) == 1
        stats = pool.statistics()
        assert (stats.size, stats.idle, stats.in_use, stats.created) == (1, 1, 0, 1)
    assert backend.closed == [(1, 1.0)]


async def test_idle_resources_are_handed_out_most_recent_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """LIFO: the resource returned last is handed out first (the others age and are reaped)."""
    backend = Backend()
    async with backend.pool(max_size=3) as pool:
        log: list[tuple[float, int]] = []
        async with trio.open_nursery() as nursery:
            for seconds in (3, 1, 2):
                nursery.start_soon(hold, pool, seconds, log)
                await trio.testing.wait_all_tasks_blocked()
        assert log == [(0.0, 1), (0.0, 2), (0.0, 3)]  # returned at 3, 1 and 2 s
        assert [await hold(pool, 0) for _ in range(2)] == [1, 1]


async def test_never_more_than_max_size_resources_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Six 1 s holders on two resources: two at a time, in arrival order, 3 s in all."""
    backend = Backend()
    began: dict[int, float] = {}

    async def holder(index: int) -> None:
        async with pool.acquire():
            began[index] = trio.current_time()
            await trio.sleep(1)

    async with backend.pool(max_size=2) as pool:
        with assert_takes(3.0):
            async with trio.open_nursery() as nursery:
                for index in range(6):
                    nursery.start_soon(holder, index)
                    await trio.testing.wait_all_tasks_blocked()
        assert backend.peak == 2
        assert began == {0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0, 4: 2.0, 5: 2.0}
        assert pool.statistics().created == 2


async def test_waiters_are_served_first_come_first_served(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One resource, five waiters: each is served in the order it arrived."""
    order: list[int] = []

    async def holder(index: int) -> None:
        async with pool.acquire():
            order.append(index)
            await trio.sleep(1)

    async with Backend().pool(max_size=1) as pool, trio.open_nursery() as nursery:
        for index in range(6):
            nursery.start_soon(holder, index)
            await trio.testing.wait_all_tasks_blocked()
    assert order == [0, 1, 2, 3, 4, 5]


async def test_a_waiter_is_handed_the_returned_resource_before_a_newcomer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A resource returned while someone waits goes to that waiter, not to a later caller."""
    backend = Backend()
    got: list[tuple[str, float]] = []

    async def named(name: str, seconds: float) -> None:
        async with pool.acquire():
            got.append((name, trio.current_time()))
            await trio.sleep(seconds)

    async with backend.pool(max_size=1) as pool, trio.open_nursery() as nursery:
        nursery.start_soon(named, "first", 2.0)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(named, "waiter", 1.0)
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().waiting == 1
        await trio.sleep(2.0)  # "first" returns now; the newcomer arrives at the same moment
        nursery.start_soon(named, "newcomer", 1.0)
    assert got == [("first", 0.0), ("waiter", 2.0), ("newcomer", 3.0)]


async def test_every_acquire_is_a_checkpoint(autojump_clock: trio.testing.MockClock) -> None:
    """Taking an idle resource yields to the scheduler, as trio.CapacityLimiter does."""
    async with Backend().pool(max_size=1) as pool:
        await hold(pool, 0)
        with trio.testing.assert_checkpoints():
            async with pool.acquire():
                pass


async def test_a_cancelled_caller_takes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """Cancelled before acquiring: no resource leaves the pool, no connect starts."""
    backend = Backend()
    async with backend.pool(max_size=1) as pool:
        await hold(pool, 0)
        with trio.CancelScope() as scope:
            scope.cancel()
            async with pool.acquire():
                raise AssertionError("unreachable")
        assert pool.statistics().idle == 1
        assert backend.connects == 1


# --- waiting: timeout and cancellation --------------------------------------------


async def test_acquire_timeout_raises_too_slow_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``acquire(timeout=2)`` with every resource held for 5 s fails at exactly 2 s."""
    backend = Backend()
    async with backend.pool(max_size=1) as pool, trio.open_nursery() as nursery:
        nursery.start_soon(hold, pool, 5.0)
        await trio.testing.wait_all_tasks_blocked()
        with (
            assert_takes(2.0),
            pytest.raises(
                trio.TooSlowError,
                match=r"^no resource within 2 s \(timeout\): 1 of max_size=1 in use, 0 waiting$",
            ),
        ):
            async with pool.acquire(timeout=2.0):
                raise AssertionError("unreachable")
        assert pool.statistics().waiting == 0


async def test_acquire_timeout_bounds_a_slow_connect_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The timeout covers connecting: a 10 s connect is cut at 1 s and its slot given back."""
    backend = Backend(connect_time=10.0)
    async with backend.pool(max_size=1) as pool:
        with assert_takes(1.0), pytest.raises(trio.TooSlowError):
            async with pool.acquire(timeout=1.0):
                raise AssertionError("unreachable")
        stats = pool.statistics()
        assert (stats.size, stats.connecting, stats.failed_connects) == (0, 0, 0)
        assert backend.alive == 0


async def test_a_waiter_cancelled_by_its_scope_leaves_the_queue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A cancelled waiter leaves at once; the next waiter is the one served."""
    backend = Backend()
    got: list[tuple[str, float]] = []

    async def waiter(name: str, patience: float) -> None:
        with trio.move_on_after(patience):
            async with pool.acquire():
                got.append((name, trio.current_time()))

    async with backend.pool(max_size=1) as pool, trio.open_nursery() as nursery:
        nursery.start_soon(hold, pool, 3.0)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(waiter, "impatient", 1.0)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(waiter, "patient", 10.0)
        await trio.sleep(1.5)
        assert pool.statistics().waiting == 1
    assert got == [("patient", 3.0)]


# --- failures ---------------------------------------------------------------------


async def test_a_block_that_raises_discards_its_resource(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The raising block's resource is closed in the background; the next caller connects."""
    backend = Backend(connect_time=1.0, close_time=0.5)
    async with backend.pool(max_size=1) as pool:
        with assert_takes(1.0), pytest.raises(Broken):  # noqa: PT012  # the block raises
            async with pool.acquire() as resource:
                assert resource == 1
                raise Broken("query")
        # The close runs in the pool's nursery (0.5 s), then the slot is free.
        with assert_takes(1.5):
            assert await hold(pool, 0) == 2
        assert backend.closed[0] == (1, 1.5)
        stats = pool.statistics()
        assert (stats.discarded, stats.closed, stats.created) == (1, 1, 2)


async def test_discard_on_chooses_which_errors_spoil_a_resource(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With ``discard_on=Broken`` a ValueError in the block keeps the resource; Broken does not."""
    backend = Backend()
    async with backend.pool(max_size=1, discard_on=Broken) as pool:
        with pytest.raises(ValueError, match=r"^not the connection's fault$"):
            async with pool.acquire():
                raise ValueError("not the connection's fault")
        assert await hold(pool, 0) == 1
        with pytest.raises(Broken):
            async with pool.acquire():
                raise Broken("protocol error")
        assert await hold(pool, 0) == 2


async def test_discard_on_nothing_reuses_whatever_the_block_raised(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``discard_on=()``: an exception in the block never spoils the resource."""
    async with Backend().pool(max_size=1, discard_on=()) as pool:
        with pytest.raises(Broken):
            async with pool.acquire():
                raise Broken("x")
        assert await hold(pool, 0) == 1


async def test_a_cancelled_block_always_discards_its_resource(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled half-way through, the resource may be mid-request: it is closed, not reused."""
    backend = Backend()
    async with backend.pool(max_size=1, discard_on=()) as pool:
        with trio.move_on_after(1.0):
            await hold(pool, 5.0)
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().discarded == 1
        assert await hold(pool, 0) == 2


async def test_a_failing_connect_frees_its_slot_and_its_error_goes_to_the_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Connect 1 fails after 1 s: its caller gets the error; the next caller's connect works."""
    backend = Backend(connect_time=1.0, fail_connects=lambda number: number == 1)
    async with backend.pool(max_size=1) as pool:
        with assert_takes(1.0), pytest.raises(Broken, match=r"^connect 1$"):
            await hold(pool, 0)
        stats = pool.statistics()
        assert (stats.size, stats.failed_connects) == (0, 1)
        assert await hold(pool, 0) == 2


async def test_a_freed_slot_passes_to_the_waiter_who_connects(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failed connect's slot goes straight to the waiter behind it, which connects itself."""
    backend = Backend(connect_time=1.0, fail_connects=lambda number: number == 1)
    results: list[object] = []

    async def caller() -> None:
        try:
            results.append((await hold(pool, 1.0), trio.current_time()))
        except Broken as error:
            results.append((str(error), trio.current_time()))

    async with backend.pool(max_size=1) as pool, trio.open_nursery() as nursery:
        nursery.start_soon(caller)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(caller)
    assert results == [("connect 1", 1.0), (2, 3.0)]
    assert backend.peak == 1


async def test_connect_goes_through_the_policy(autojump_clock: trio.testing.MockClock) -> None:
    """``policy=Policy(retry=...)`` retries a failing connect; the caller sees the success."""
    backend = Backend(connect_time=1.0, fail_connects=lambda number: number < 3)
    policy = trine.Policy(retry=trine.Retry(attempts=3, backoff=trine.Backoff.constant(0.5)))
    async with backend.pool(max_size=1, policy=policy) as pool:
        with assert_takes(4.0):
            assert await hold(pool, 0) == 3
        assert pool.statistics().failed_connects == 0  # the policy answered them


# --- warm, reaped, checked ----------------------------------------------------------


async def test_min_size_resources_are_connected_in_the_background(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``min_size=3`` with a 1 s connect: three resources exist at 1, 2 and 3 s, none asked for."""
    backend = Backend(connect_time=1.0)
    async with backend.pool(max_size=5, min_size=3) as pool:
        await trio.sleep(10)
        assert backend.created == [(1, 1.0), (2, 2.0), (3, 3.0)]
        assert pool.statistics().idle == 3
        with assert_takes(0.0):
            await hold(pool, 0)


async def test_regression_a_pool_whose_block_ends_at_once_connects_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A block that ends before the warmer's first step: no connect is started after it."""
    backend = Backend(connect_time=1.0)
    with assert_takes(0.0):
        async with backend.pool(max_size=2, min_size=1, max_idle=5.0):
            pass
    assert backend.connects == 0


async def test_the_warmer_replaces_a_discarded_resource(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A discard takes the pool below min_size; the warmer connects a replacement."""
    backend = Backend(connect_time=1.0)
    async with backend.pool(max_size=2, min_size=1) as pool:
        await trio.sleep(1)
        with pytest.raises(Broken):
            async with pool.acquire():
                raise Broken("x")
        await trio.sleep(5)
        assert backend.created == [(1, 1.0), (2, 2.0)]
        assert pool.statistics().idle == 1


async def test_the_warmer_backs_off_while_connects_fail(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Failing warm connects are retried after 0.1, 0.2, 0.4 ... s, and counted."""
    backend = Backend(fail_connects=lambda number: number <= 4)
    async with backend.pool(max_size=1, min_size=1) as pool:
        await trio.sleep(10)
        assert backend.created == [(5, pytest.approx(0.1 + 0.2 + 0.4 + 0.8))]
        assert pool.statistics().failed_connects == 4


async def test_idle_resources_past_max_idle_are_closed_down_to_min_size(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Three resources idle from 1, 2 and 3 s with max_idle=10: 1 and 2 go at 11 and 12 s."""
    backend = Backend()
    async with backend.pool(max_size=3, min_size=1, max_idle=10.0) as pool:
        async with trio.open_nursery() as nursery:
            for seconds in (1, 2, 3):
                nursery.start_soon(hold, pool, seconds)
        await trio.sleep(20)
        closed_times = sorted(when for _, when in backend.closed)
        assert closed_times == [11.0, 12.0]
        stats = pool.statistics()
        assert (stats.size, stats.idle, stats.expired) == (1, 1, 2)


async def test_a_used_resource_is_not_reaped(autojump_clock: trio.testing.MockClock) -> None:
    """The idle clock starts again at each return: used every 5 s, max_idle=10 never fires."""
    backend = Backend()
    async with backend.pool(max_size=1, max_idle=10.0) as pool:
        for _ in range(6):
            await hold(pool, 0)
            await trio.sleep(5)
        assert backend.closed == []
        await trio.sleep(10)
        assert backend.closed == [(1, 35.0)]


async def test_a_health_check_runs_only_after_check_after_seconds_idle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``check_after=5``: a resource idle 1 s is handed out unchecked, one idle 5 s is checked."""
    checked: list[tuple[int, float]] = []

    async def ping(resource: int) -> bool:
        checked.append((resource, trio.current_time()))
        await trio.sleep(0.5)
        return True

    backend = Backend()
    async with backend.pool(max_size=1, health_check=ping, check_after=5.0) as pool:
        await hold(pool, 0)
        await trio.sleep(1)
        await hold(pool, 0)
        await trio.sleep(5)
        with assert_takes(0.5):
            assert await hold(pool, 0) == 1
    assert checked == [(1, 6.0)]


@pytest.mark.parametrize("answer", ["false", "raise"])
async def test_a_resource_failing_its_health_check_is_closed_and_replaced(
    autojump_clock: trio.testing.MockClock, answer: str
) -> None:
    """A check returning False or raising closes the resource; the caller gets a new one."""

    async def ping(resource: int) -> bool:
        if answer == "raise":
            raise Broken("no pong")
        return False

    backend = Backend(connect_time=1.0)
    async with backend.pool(max_size=1, health_check=ping) as pool:
        await hold(pool, 0)
        with assert_takes(1.0):
            assert await hold(pool, 0) == 2
        stats = pool.statistics()
        assert (stats.failed_health_checks, stats.closed, stats.size) == (1, 1, 1)


async def test_a_caller_whose_health_check_fails_keeps_its_place_in_line(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Callers arriving while a check runs wait behind its caller, whose check failed; two
    callers back in line after failed checks keep their order of arrival too."""
    checks: list[tuple[int, float]] = []

    async def ping(resource: int) -> bool:
        checks.append((resource, trio.current_time()))
        await trio.sleep(0.5 if resource == 1 else 1.0)
        return resource > 2  # the two stale ones are dead

    got: list[tuple[str, int, float]] = []

    async def named(name: str, delay: float) -> None:
        await trio.sleep(delay)
        async with pool.acquire() as resource:
            got.append((name, resource, trio.current_time()))
            await trio.sleep(5.0)

    backend = Backend(close_time=1.0)
    async with backend.pool(max_size=2, health_check=ping, check_after=2.0) as pool:
        async with pool.acquire(), pool.acquire():  # 1 and 2; 1 is returned last
            pass
        await trio.sleep(10)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(named, "A", 0.0)  # takes 1 (the newest); fails at 10.5
            nursery.start_soon(named, "C", 0.1)  # takes 2; fails at 11.1
            nursery.start_soon(named, "B", 0.2)  # waits: both slots are taken
    # 1 is closed at 11.5: its slot goes to A, who connects 3; 2 is closed at
    # 12.1: its slot goes to C (ahead of B, who came later), who connects 4.
    assert got == [("A", 3, 11.5), ("C", 4, 12.1), ("B", 3, 16.5)]
    assert checks == [(1, 10.0), (2, 10.1)]
    assert pool.statistics().failed_health_checks == 2


async def test_check_after_zero_checks_a_resource_handed_straight_to_a_waiter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A resource returned while callers wait is checked by the one it goes to when
    ``check_after=0``; when the check fails, that caller connects before those behind it."""
    checks: list[tuple[int, float]] = []

    async def ping(resource: int) -> bool:
        checks.append((resource, trio.current_time()))
        await trio.sleep(0.5)
        return len(checks) > 1  # the first check fails

    got: list[tuple[str, int, float]] = []

    async def named(name: str, delay: float) -> None:
        await trio.sleep(delay)
        async with pool.acquire() as resource:
            got.append((name, resource, trio.current_time()))
            await trio.sleep(1.0)

    backend = Backend()
    pool = backend.pool(max_size=1, health_check=ping, check_after=0.0)
    async with pool, trio.open_nursery() as nursery:
        nursery.start_soon(named, "first", 0.0)  # connects 1
        nursery.start_soon(named, "second", 0.1)  # handed 1 at 1.0: the check fails
        nursery.start_soon(named, "third", 0.2)  # handed 2 at 2.5: the check passes
    assert got == [("first", 1, 0.0), ("second", 2, 1.5), ("third", 2, 3.0)]
    assert checks == [(1, 1.0), (2, 2.5)]
    stats = pool.statistics()
    assert (stats.failed_health_checks, stats.created) == (1, 2)


async def test_a_health_check_returning_none_passes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Only ``False`` fails a check: a ping that returns nothing (and does not raise) passes."""

    async def ping(resource: int) -> None:
        await trio.lowlevel.checkpoint()

    async with Backend().pool(max_size=1, health_check=ping) as pool:
        await hold(pool, 0)
        assert await hold(pool, 0) == 1


# --- closing ------------------------------------------------------------------------


async def test_closing_closes_every_idle_resource_and_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Leaving the block closes the three idle resources (1 s each, together) before it returns."""
    backend = Backend(close_time=1.0)
    with assert_takes(2.0):
        async with backend.pool(max_size=3) as pool, trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(hold, pool, 1.0)
    assert sorted(backend.closed) == [(1, 2.0), (2, 2.0), (3, 2.0)]
    assert backend.alive == 0
    assert pool.statistics().size == 0


async def test_a_resource_returned_after_closing_is_closed_by_its_holder(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A holder from outside the block returns its resource at 5 s: it is closed then."""
    backend = Backend()
    async with trio.open_nursery() as outer:
        async with backend.pool(max_size=2) as pool:
            outer.start_soon(hold, pool, 5.0)
            await trio.sleep(1)
        assert backend.closed == []
    assert backend.closed == [(1, 5.0)]
    assert backend.alive == 0


async def test_a_waiter_outside_the_block_gets_closed_resource_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Still waiting when the block ends: ClosedResourceError, not a hang."""
    backend = Backend()
    errors: list[BaseException] = []

    async def waiter(pool: trine.ResourcePool[int]) -> None:
        try:
            await hold(pool, 0)
        except trio.ClosedResourceError as error:
            errors.append(error)

    async with trio.open_nursery() as outer, backend.pool(max_size=1) as pool:
        outer.start_soon(hold, pool, 5.0)
        await trio.testing.wait_all_tasks_blocked()
        outer.start_soon(waiter, pool)
        await trio.testing.wait_all_tasks_blocked()
    assert len(errors) == 1
    assert str(errors[0]).startswith("the ResourcePool was closed")


async def test_a_connect_finishing_after_closing_is_closed_and_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A caller from outside whose connect ends after the block gets ClosedResourceError;
    the resource it made is closed, not leaked."""
    backend = Backend(connect_time=3.0)
    errors: list[BaseException] = []

    async def caller(pool: trine.ResourcePool[int]) -> None:
        try:
            await hold(pool, 0)
        except trio.ClosedResourceError as error:
            errors.append(error)

    async with trio.open_nursery() as outer, backend.pool(max_size=1) as pool:
        outer.start_soon(caller, pool)
        await trio.sleep(1)
    assert len(errors) == 1
    assert backend.closed == [(1, 3.0)]
    assert backend.alive == 0


async def test_acquire_outside_the_block_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Before the block: RuntimeError saying how to use it; after: ClosedResourceError."""
    pool = Backend().pool(max_size=1)
    with pytest.raises(RuntimeError, match=r"^this ResourcePool is not open: use it inside"):
        await hold(pool, 0)
    async with pool:
        pass
    with pytest.raises(trio.ClosedResourceError, match=r"^this ResourcePool is closed"):
        await hold(pool, 0)
    with pytest.raises(RuntimeError, match=r"^a ResourcePool can be opened only once$"):
        async with pool:
            pass


async def test_the_blocks_own_exception_leaves_bare(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An exception raised in the pool's block comes out as itself, not in a group."""
    with pytest.raises(Broken, match=r"^mine$"):
        async with Backend().pool(max_size=1, min_size=1, max_idle=5.0):
            raise Broken("mine")


async def test_a_failing_close_is_counted_and_frees_the_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A close that raises: the resource is gone anyway, the failure counted, nothing raised."""

    async def bad_close(resource: int) -> None:
        raise Broken("close")

    async with trine.ResourcePool(Backend().connect, close=bad_close, max_size=1) as pool:
        with pytest.raises(Broken, match=r"^query$"):
            async with pool.acquire():
                raise Broken("query")
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert (stats.failed_closes, stats.size) == (1, 0)


async def test_statistics_and_repr_report_the_pool(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every statistics field while two hold, one waits and one connect runs."""
    backend = Backend(connect_time=1.0)
    async with backend.pool(max_size=3) as pool, trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(hold, pool, 10.0)
        await trio.sleep(2)
        nursery.start_soon(hold, pool, 10.0)
        await trio.sleep(0.5)
        nursery.start_soon(hold, pool, 1.0)
        await trio.testing.wait_all_tasks_blocked()
        stats = pool.statistics()
        assert (stats.size, stats.in_use, stats.connecting, stats.waiting, stats.idle) == (
            3,
            2,
            1,
            1,
            0,
        )
        assert (stats.max_size, stats.min_size, stats.created) == (3, 0, 2)
        assert stats.wait.count == 2
        assert stats.wait.maximum == 1.0
        assert repr(pool).endswith("open, 3/3 slots taken, 0 idle, 1 waiting>")
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_size": 0}, ValueError, r"^max_size must be >= 1, got 0$"),
        (
            {"max_size": 2, "min_size": 3},
            ValueError,
            r"^min_size must be <= max_size \(2\), got 3$",
        ),
        ({"max_size": 1, "max_idle": 0}, ValueError, r"^max_idle must be > 0, got 0$"),
        ({"max_size": 1, "check_after": -1}, ValueError, r"^check_after must be >= 0, got -1$"),
        ({"max_size": 1, "discard_on": 3}, TypeError, r"^discard_on must be an exception class"),
        ({"max_size": 1, "policy": 3}, TypeError, r"^policy must have an async call"),
        ({"max_size": 1, "close": 3}, TypeError, r"^close must be an async function, got 3$"),
    ],
)
def test_bad_settings_are_refused_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every setting is checked at construction."""
    with pytest.raises(error, match=message):
        trine.ResourcePool(Backend().connect, **kwargs)


def _generator(*args: object) -> Iterator[int]:
    yield 1


async def _async_generator(*args: object) -> AsyncIterator[int]:
    yield 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"connect": _generator},
            r"^connect must be an async function, got the generator function ",
        ),
        (
            {"connect": _async_generator},
            r"^connect must be an async function, got the async generator function ",
        ),
        ({"close": _generator}, r"^close must be an async function, got the generator function "),
        (
            {"health_check": _async_generator},
            r"^health_check must be an async function, got the async generator function ",
        ),
    ],
)
def test_generator_functions_are_refused_at_construction(
    kwargs: dict[str, Any], message: str
) -> None:
    """A generator function never makes an awaitable: refused at once, not at its first call."""
    arguments: dict[str, Any] = {"connect": Backend().connect, "max_size": 1, **kwargs}
    with pytest.raises(TypeError, match=message):
        trine.ResourcePool(**arguments)


async def test_a_connect_that_is_not_async_is_a_type_error_for_the_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``connect`` returning a non-awaitable: a TypeError naming it, the slot given back."""
    pool = trine.ResourcePool(lambda: 3, max_size=1)  # type: ignore[arg-type,return-value]
    async with pool:
        with pytest.raises(TypeError, match=r"^connect must be an async function, but calling"):
            await hold(pool, 0)
        assert pool.statistics().size == 0


# --- the bound, whatever happens (property) -------------------------------------------


@st.composite
def workloads(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "max_size": draw(st.integers(min_value=1, max_value=3)),
        "min_size": draw(st.integers(min_value=0, max_value=1)),
        "max_idle": draw(st.sampled_from([None, 2.0])),
        "check": draw(st.booleans()),
        "connect_time": draw(st.sampled_from([0.0, 0.5, 1.0])),
        "close_time": draw(st.sampled_from([0.0, 0.5])),
        "failing_connects": draw(st.sets(st.integers(min_value=1, max_value=12), max_size=4)),
        "failing_checks": draw(st.sets(st.integers(min_value=1, max_value=12), max_size=3)),
        # (start, hold, raises, cancel_after or None, timeout or None) per task
        "tasks": draw(
            st.lists(
                st.tuples(
                    st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]),
                    st.sampled_from([0.0, 0.5, 1.0, 3.0]),
                    st.booleans(),
                    st.none() | st.sampled_from([0.1, 0.75, 1.5, 4.0]),
                    st.none() | st.sampled_from([0.5, 2.0]),
                ),
                min_size=1,
                max_size=8,
            )
        ),
        "close_at": draw(st.none() | st.sampled_from([0.6, 1.7, 3.3])),
    }


@settings(max_examples=200, deadline=None)
@given(workload=workloads())
def test_pool_property_never_more_than_max_size_and_every_resource_closed(
    workload: dict[str, Any],
) -> None:
    """Under any mix of slow connects, failing connects and checks, raising blocks,
    cancellations at any point and an early close: never more than max_size resources exist,
    and once the pool's block and every holder are done, every resource is closed."""
    backend = Backend(
        connect_time=workload["connect_time"],
        close_time=workload["close_time"],
        fail_connects=lambda number: number in workload["failing_connects"],
    )
    checks = 0

    async def ping(resource: int) -> bool:
        nonlocal checks
        checks += 1
        await trio.sleep(0.25)
        return checks not in workload["failing_checks"]

    async def task(
        pool: trine.ResourcePool[int],
        start: float,
        seconds: float,
        raises: bool,
        cancel_after: float | None,
        timeout: float | None,  # noqa: ASYNC109  # what acquire(timeout=) is given
    ) -> None:
        await trio.sleep(start)
        with trio.move_on_after(math.inf if cancel_after is None else cancel_after):
            try:
                async with pool.acquire(timeout=timeout):
                    assert backend.alive <= workload["max_size"]
                    await trio.sleep(seconds)
                    if raises:
                        raise Broken("block")
            except (Broken, trio.TooSlowError, trio.ClosedResourceError):
                pass

    async def main() -> None:
        pool = backend.pool(
            max_size=workload["max_size"],
            min_size=workload["min_size"],
            max_idle=workload["max_idle"],
            health_check=ping if workload["check"] else None,
        )
        async with trio.open_nursery() as outer:
            async with pool, trio.open_nursery() as inner:
                for index, spec in enumerate(workload["tasks"]):
                    # Odd tasks run outside the pool's block: they may outlive it.
                    nursery = outer if index % 2 else inner
                    nursery.start_soon(task, pool, *spec)
                if workload["close_at"] is not None:
                    await trio.sleep(workload["close_at"])
                    inner.cancel_scope.cancel()
                else:
                    await trio.sleep(1)
            stats = pool.statistics()
            assert stats.size <= workload["max_size"]
        assert backend.peak <= workload["max_size"]
        assert backend.alive == 0
        assert len(backend.closed) == len(backend.created)
        final = pool.statistics()
        assert (final.size, final.idle, final.in_use, final.connecting, final.closing) == (
            0,
            0,
            0,
            0,
            0,
        )
        assert final.waiting == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
