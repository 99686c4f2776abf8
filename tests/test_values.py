"""State you can wait on: the read-only trio_util.AsyncValue views."""

from __future__ import annotations

import pytest
import trio
import trio.testing
import trio_util

import trine


async def fail() -> None:
    raise OSError("down")


async def ok() -> str:
    return "ok"


async def test_breaker_state_value_wakes_on_each_transition(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """wait_value returns at the transition, at the exact fake time of it."""
    breaker = trine.CircuitBreaker(failure_threshold=1, reset_timeout=5.0)
    view = breaker.state_value
    assert isinstance(view, trio_util.AsyncValue)
    assert view.value is trine.CircuitState.CLOSED
    seen: list[tuple[float, trine.CircuitState]] = []

    async def watch() -> None:
        for state in (trine.CircuitState.OPEN, trine.CircuitState.CLOSED):
            got = await view.wait_value(state)
            seen.append((trio.current_time(), got))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await trio.sleep(1.0)
        with pytest.raises(OSError, match="down"):
            await breaker.call(fail)
        await trio.sleep(6.0)
        assert await breaker.call(ok) == "ok"  # the probe closes it
    assert seen == [(1.0, trine.CircuitState.OPEN), (7.0, trine.CircuitState.CLOSED)]
    assert breaker.state_value is view


async def test_breaker_state_value_made_late_starts_at_the_state_now(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A view first asked for after the breaker opened (and its timeout passed) reads half-open."""
    breaker = trine.CircuitBreaker(failure_threshold=1, reset_timeout=5.0)
    with pytest.raises(OSError, match="down"):
        await breaker.call(fail)
    assert breaker.state_value.value is trine.CircuitState.OPEN
    await trio.sleep(5.0)
    assert breaker.state_value.value is trine.CircuitState.HALF_OPEN


async def test_breaker_state_value_transitions_see_old_and_new(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """wait_transition gives (new, old) of the change it woke for."""
    breaker = trine.CircuitBreaker(failure_threshold=1)
    got: list[tuple[trine.CircuitState, trine.CircuitState]] = []

    async def watch() -> None:
        got.append(await breaker.state_value.wait_transition())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await trio.testing.wait_all_tasks_blocked()
        breaker.force_open()
    assert got == [(trine.CircuitState.FORCED_OPEN, trine.CircuitState.CLOSED)]


def test_views_are_read_only() -> None:
    """Assigning a view's value raises AttributeError naming the view."""
    breaker = trine.CircuitBreaker()
    with pytest.raises(AttributeError, match=r"^state_value is read-only"):
        breaker.state_value.value = trine.CircuitState.OPEN
    limiter = trine.AdaptiveLimiter(initial=4, max_limit=8)
    with pytest.raises(AttributeError, match=r"^limit_value is read-only"):
        limiter.limit_value.value = 1
    graph = trine.TaskGraph()
    with pytest.raises(AttributeError, match=r"^finished_value is read-only"):
        graph.finished_value.value = 1


async def hold_and_fail(limiter: trine.AdaptiveLimiter) -> None:
    async with limiter.hold():
        await trio.sleep(0.5)
        raise OSError("down")


async def test_adaptive_limit_value_wakes_when_the_limit_falls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failed hold halves an AIMD limit; a waiter on limit_value wakes at that time."""
    limiter = trine.AdaptiveLimiter(initial=8, max_limit=16, backoff_ratio=0.5)
    woke: list[tuple[float, int]] = []

    async def watch() -> None:
        limit = await limiter.limit_value.wait_value(lambda limit: limit < 8)
        woke.append((trio.current_time(), limit))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await trio.sleep(2.0)
        with pytest.raises(OSError, match="down"):
            await hold_and_fail(limiter)
    assert woke == [(2.5, 4)]
    assert limiter.limit_value.value == limiter.limit == 4


async def test_pipeline_delivered_value_counts_results_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """delivered_value counts each result read; a waiter wakes at the read that reaches it."""

    async def slow(item: int) -> int:
        await trio.sleep(1.0)
        return item

    pipe = trine.Pipeline.source(range(5)).map(slow)
    woke: list[tuple[float, int]] = []
    async with pipe.open() as out:
        view = out.delivered_value
        assert view.value == 0

        async def watch() -> None:
            got = await view.wait_value(3)
            woke.append((trio.current_time(), got))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            results = [item async for item in out]
    assert results == [0, 1, 2, 3, 4]
    assert woke == [(3.0, 3)]
    assert view.value == 5


async def test_graph_finished_value_counts_nodes_of_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """finished_value counts finished nodes (skipped ones too) and restarts at 0 each run."""
    graph = trine.TaskGraph()

    async def work(delay: float) -> None:
        await trio.sleep(delay)

    async def broken() -> None:
        await trio.sleep(2.0)
        raise OSError("down")

    graph.add(work, 1.0)
    graph.add(work, 3.0)
    bad = graph.add(broken)
    graph.add(work, 1.0, deps=[bad])  # skipped when bad fails
    view = graph.finished_value
    assert view.value == 0
    woke: list[tuple[float, int]] = []

    async def watch() -> None:
        got = await view.wait_value(lambda done: done >= 3)
        woke.append((trio.current_time(), got))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await graph.run()
    assert woke == [(2.0, 3)]  # at t=2 the broken node fails and its dependent is skipped
    assert view.value == 4
    resets: list[int] = []

    async def first_change() -> None:
        resets.append((await view.wait_transition())[0])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first_change)
        await trio.testing.wait_all_tasks_blocked()
        await graph.run()
    assert resets == [0]
    assert view.value == 4


async def test_a_view_nobody_waits_on_still_reads_the_value_now(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With no waiter the view only stores the value; reading it gives the latest."""
    breaker = trine.CircuitBreaker(failure_threshold=1)
    view = breaker.state_value
    breaker.force_open()
    assert view.value is trine.CircuitState.FORCED_OPEN
    breaker.reset()
    assert view.value is trine.CircuitState.CLOSED
    assert await view.wait_value(trine.CircuitState.CLOSED) is trine.CircuitState.CLOSED
