"""Deadlines with partial results: settle(deadline=/timeout=) and map_settled."""

from __future__ import annotations

import functools
import math
import pickle
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import outcome
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine.testing import assert_takes


async def sleep_then(seconds: float, value: Any = None) -> Any:
    await trio.sleep(seconds)
    return seconds if value is None else value


async def fail_after(seconds: float) -> None:
    await trio.sleep(seconds)
    raise ValueError(f"failed after {seconds}")


def is_cut_off(result: outcome.Outcome[Any], deadline: float) -> bool:
    return (
        isinstance(result, outcome.Error)
        and type(result.error) is trine.DeadlineExceeded
        and result.error.deadline == deadline
    )


# -- settle ---------------------------------------------------------------------------


async def test_settle_timeout_returns_what_finished_and_marks_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """At the timeout the calls still running are cancelled; settle returns then, with
    values, failures, and a DeadlineExceeded outcome for each call cut off."""
    start = trio.current_time()
    with assert_takes(2.0):
        results = await trine.settle(
            functools.partial(sleep_then, 1.0),
            functools.partial(sleep_then, 3.0),
            functools.partial(fail_after, 0.5),
            functools.partial(sleep_then, 2.5),
            timeout=2.0,
        )
    assert results[0] == outcome.Value(1.0)
    assert isinstance(results[2], outcome.Error)
    assert str(results[2].error) == "failed after 0.5"
    assert is_cut_off(results[1], start + 2.0)
    assert is_cut_off(results[3], start + 2.0)
    assert results[1].error is not results[3].error  # type: ignore[union-attr]


async def test_settle_deadline_is_absolute_on_the_trio_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """deadline= is a trio.current_time() value, as move_on_at takes it."""
    await trio.sleep(10.0)
    with assert_takes(1.5):
        results = await trine.settle(
            functools.partial(sleep_then, 1.0), functools.partial(sleep_then, 2.0), deadline=11.5
        )
    assert results[0] == outcome.Value(1.0)
    assert is_cut_off(results[1], 11.5)


async def test_settle_returns_when_all_finish_before_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A deadline not reached costs nothing: settle returns when the last call finishes."""
    with assert_takes(2.0):
        results = await trine.settle(
            functools.partial(sleep_then, 1.0), functools.partial(sleep_then, 2.0), timeout=60.0
        )
    assert results == [outcome.Value(1.0), outcome.Value(2.0)]


async def test_settle_deadline_in_the_past_cuts_every_call_off_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A deadline already passed cancels every call at its first checkpoint."""
    await trio.sleep(5.0)
    with assert_takes(0.0):
        results = await trine.settle(
            functools.partial(sleep_then, 1.0), functools.partial(sleep_then, 2.0), deadline=1.0
        )
    assert all(is_cut_off(result, 1.0) for result in results)


@pytest.mark.parametrize("kwargs", [{"timeout": math.inf}, {"deadline": math.inf}])
async def test_an_infinite_deadline_is_no_deadline(
    autojump_clock: trio.testing.MockClock, kwargs: dict[str, float]
) -> None:
    """timeout=inf and deadline=inf never cut anything off."""
    with assert_takes(100.0):
        results = await trine.settle(functools.partial(sleep_then, 100.0), **kwargs)
    assert results == [outcome.Value(100.0)]


async def test_settle_outer_cancellation_is_a_cancellation_not_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A scope cancelled around settle before its deadline cancels it: no result comes back."""
    returned = False
    with assert_takes(1.0), trio.move_on_after(1.0) as outer:
        await trine.settle(functools.partial(sleep_then, 5.0), timeout=2.0)
        returned = True
    assert outer.cancelled_caught
    assert not returned


async def test_settle_outer_cancellation_at_the_deadline_is_still_a_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An outer scope cancelled at the very moment of the deadline still cancels settle."""
    returned = False
    with assert_takes(2.0), trio.move_on_after(2.0) as outer:
        await trine.settle(functools.partial(sleep_then, 5.0), deadline=trio.current_time() + 2.0)
        returned = True
    assert outer.cancelled_caught
    assert not returned


async def test_settle_without_fns_and_a_deadline_is_a_checkpoint() -> None:
    """settle(timeout=1) with no functions returns [] after a checkpoint."""
    with trio.testing.assert_checkpoints():
        assert await trine.settle(timeout=1.0) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"deadline": "1"}, TypeError, "deadline must be a number, got '1'"),
        ({"deadline": math.nan}, ValueError, "deadline must not be NaN, got nan"),
        ({"timeout": -1}, ValueError, "timeout must be >= 0, got -1"),
        ({"timeout": True}, TypeError, "timeout must be a number, got True"),
        (
            {"deadline": 1.0, "timeout": 2.0},
            ValueError,
            "deadline and timeout cannot both be given, got deadline=1.0 and timeout=2.0: "
            "pass the absolute time or the seconds from now",
        ),
    ],
)
@pytest.mark.parametrize("how", ["settle", "map_settled"])
async def test_bad_deadlines_are_refused_at_the_call(
    how: str, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A bad deadline or timeout, or both at once, is refused before anything starts."""
    started = False

    async def fn(*args: object) -> None:
        nonlocal started
        started = True

    call = (
        trine.settle(fn, **kwargs)
        if how == "settle"
        else trine.map_settled(fn, [1], limit=1, **kwargs)
    )
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        await call
    assert not started


async def test_settle_a_coroutine_with_a_bad_deadline_is_closed() -> None:
    """A coroutine given as fn with a bad timeout raises the timeout's error and is closed."""
    coroutine = sleep_then(1.0)
    with pytest.raises(TypeError, match=r"^timeout must be a number, got 'x'$"):
        await trine.settle(coroutine, timeout="x")  # type: ignore[arg-type]


def test_deadline_exceeded_is_a_timeout_error_and_pickles() -> None:
    """DeadlineExceeded is a TrineError and a TimeoutError, says when, and pickles."""
    error = trine.DeadlineExceeded(12.5)
    assert isinstance(error, trine.TrineError)
    assert isinstance(error, TimeoutError)
    assert str(error) == "cancelled at the deadline (12.5 on the Trio clock) before it finished"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is trine.DeadlineExceeded
    assert copy.deadline == 12.5


# -- map_settled -------------------------------------------------------------------------


async def test_map_settled_keeps_failures_as_outcomes_and_cancels_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failing item is its Error; every other item still runs to its Value."""

    async def fn(item: int) -> int:
        await trio.sleep(item)
        if item == 2:
            raise ValueError("two")
        return item * 10

    with assert_takes(6.0):  # 1 then 3 on one worker, 2 then 4 on the other
        results = await trine.map_settled(fn, [1, 2, 3, 4], limit=2)
    assert results[0] == outcome.Value(10)
    assert isinstance(results[1], outcome.Error)
    assert str(results[1].error) == "two"
    assert results[2:] == [outcome.Value(30), outcome.Value(40)]


async def test_map_settled_without_a_deadline_is_every_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With no deadline there is one outcome per item, in item order or finish order."""
    ordered = await trine.map_settled(sleep_then, [3.0, 1.0, 2.0], limit=3)
    assert ordered == [outcome.Value(3.0), outcome.Value(1.0), outcome.Value(2.0)]
    unordered = await trine.map_settled(sleep_then, [3.0, 1.0, 2.0], limit=3, ordered=False)
    assert unordered == [outcome.Value(1.0), outcome.Value(2.0), outcome.Value(3.0)]


async def test_map_settled_timeout_cuts_off_the_running_and_takes_no_more(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """At the timeout the calls running are cut off, later items are never taken, and the
    generator is closed; the list covers exactly the items taken, in order."""
    taken: list[float] = []
    closed = False

    def items() -> Iterator[float]:
        nonlocal closed
        try:
            for seconds in [1.0, 3.0, 1.0, 1.0, 5.0, 1.0, 1.0]:
                taken.append(seconds)
                yield seconds
        finally:
            closed = True

    start = trio.current_time()
    with assert_takes(2.5):
        results = await trine.map_settled(sleep_then, items(), limit=2, timeout=2.5)
    # one worker: 1.0 (0-1), 1.0 (1-2), 1.0 (2-3, cut); the other: 3.0 (0-3, cut)
    assert taken == [1.0, 3.0, 1.0, 1.0]
    assert closed
    assert results[0] == outcome.Value(1.0)
    assert is_cut_off(results[1], start + 2.5)
    assert results[2] == outcome.Value(1.0)
    assert is_cut_off(results[3], start + 2.5)
    assert len(results) == 4


async def test_map_settled_unordered_puts_the_cut_off_calls_last(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """ordered=False: outcomes in finish order, then one DeadlineExceeded per call cut off."""
    deadline = trio.current_time() + 2.5
    results = await trine.map_settled(
        sleep_then, [3.0, 1.0, 1.0, 4.0], limit=2, ordered=False, deadline=deadline
    )
    assert results[:2] == [outcome.Value(1.0), outcome.Value(1.0)]
    assert [is_cut_off(result, deadline) for result in results[2:]] == [True, True]
    assert len(results) == 4


async def test_map_settled_async_source_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An async generator source stops being read at the deadline and is closed."""
    closed = False

    async def items() -> Any:
        nonlocal closed
        try:
            for seconds in [1.0, 1.0, 1.0, 1.0]:
                yield seconds
        finally:
            closed = True

    deadline = trio.current_time() + 1.5
    results = await trine.map_settled(sleep_then, items(), limit=1, deadline=deadline)
    assert results[0] == outcome.Value(1.0)
    assert is_cut_off(results[1], deadline)
    assert len(results) == 2
    assert closed


async def test_map_settled_goes_through_the_policy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """policy= applies per item; what the policy finally raises is the item's outcome."""
    attempts: Counter[int] = Counter()

    async def flaky(item: int) -> int:
        attempts[item] += 1
        if item == 1 or attempts[item] == 1:
            raise ConnectionError(f"item {item}")
        return item

    policy = trine.Policy(retry=trine.Retry(attempts=2, backoff=trine.Backoff.constant(0.5)))
    results = await trine.map_settled(flaky, [0, 1, 2], limit=3, policy=policy)
    assert results[0] == outcome.Value(0)
    assert isinstance(results[1], outcome.Error)
    assert str(results[1].error) == "item 1"
    assert results[2] == outcome.Value(2)
    assert attempts == {0: 2, 1: 2, 2: 2}


async def test_map_settled_a_plain_fn_is_a_type_error_not_an_outcome() -> None:
    """A fn that is not async is one TypeError in a group, never an item's outcome."""

    def plain(item: int) -> int:
        return item

    with pytest.RaisesGroup(pytest.RaisesExc(TypeError, match=r"^fn must be an async function")):
        await trine.map_settled(plain, [1, 2, 3], limit=2)  # type: ignore[arg-type]


async def test_map_settled_a_failing_source_propagates() -> None:
    """An exception from iterating items is not an item's outcome: it propagates."""

    def items() -> Iterator[int]:
        yield 1
        raise LookupError("source broke")

    with pytest.RaisesGroup(pytest.RaisesExc(LookupError, match=r"^source broke$")):
        await trine.map_settled(sleep_then, items(), limit=1)


async def test_map_settled_outer_cancellation_at_the_deadline_is_a_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An outer scope cancelled at the deadline's moment cancels map_settled: no list."""
    returned = False
    with trio.move_on_after(2.0) as outer:
        await trine.map_settled(sleep_then, [5.0, 5.0], limit=2, timeout=2.0)
        returned = True
    assert outer.cancelled_caught
    assert not returned


@given(
    durations=st.lists(st.integers(min_value=1, max_value=6), max_size=20),
    limit=st.integers(min_value=1, max_value=5),
    ordered=st.booleans(),
    deadline=st.integers(min_value=0, max_value=15).map(lambda n: n + 0.5),
)
def test_property_map_settled_at_a_deadline(
    durations: list[int], limit: int, ordered: bool, deadline: float
) -> None:
    """For any input, each item is called at most once, an item has a Value exactly when
    its call finished by the deadline, a DeadlineExceeded exactly when it was running
    then, and no entry when it was never taken; ordered lists are the items taken, in order."""
    calls: Counter[int] = Counter()
    begun: dict[int, float] = {}

    async def fn(index: int) -> int:
        calls[index] += 1
        begun[index] = trio.current_time()
        await trio.sleep(durations[index])
        return index

    async def main() -> list[outcome.Outcome[int]]:
        return await trine.map_settled(
            fn, range(len(durations)), limit=limit, ordered=ordered, deadline=deadline
        )

    results = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert all(count == 1 for count in calls.values())
    assert len(results) == len(begun)
    finished = [r.value for r in results if isinstance(r, outcome.Value)]
    cut = sum(is_cut_off(r, deadline) for r in results)
    assert cut + len(finished) == len(results)
    assert sorted(finished) == sorted(i for i in begun if begun[i] + durations[i] < deadline)
    assert cut == sum(begun[i] + durations[i] > deadline for i in begun)
    if ordered:
        assert sorted(begun) == list(range(len(begun)))
        assert [r.value for r in results if isinstance(r, outcome.Value)] == sorted(finished)
        assert all(
            isinstance(r, outcome.Value) == (begun[i] + durations[i] < deadline)
            for i, r in enumerate(results)
        )
    if len(begun) < len(durations):  # items were left: limit calls were running at the deadline
        assert cut == limit
