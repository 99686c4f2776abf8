"""trine.testing.FakeService: scripted latency and failures on the fake clock."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing

from trine.testing import (
    FakeCall,
    FakeService,
    FakeServiceError,
    FakeServiceStatistics,
    assert_takes,
)


async def test_returns_call_numbers_after_latency(autojump_clock: trio.testing.MockClock) -> None:
    """Each call sleeps its latency and returns its number; the record has exact times."""
    service = FakeService(latency=0.5)
    with assert_takes(1.0):
        assert await service.call("a") == 1
        assert await service("b", 2) == 2
    assert service.calls == [
        FakeCall(1, ("a",), 0.0, 0.5, "ok", None),
        FakeCall(2, ("b", 2), 0.5, 1.0, "ok", None),
    ]


async def test_fail_calls_by_number(autojump_clock: trio.testing.MockClock) -> None:
    """Calls listed in fail_calls raise FakeServiceError after their latency."""
    service = FakeService(latency=1.0, fail_calls={2, 3}, retry_after=4.0)
    results: list[object] = []
    for _ in range(4):
        try:
            results.append(await service.call())
        except FakeServiceError as error:
            results.append(error)
    assert results[0] == 1
    assert results[3] == 4
    error = results[1]
    assert isinstance(error, FakeServiceError)
    assert isinstance(error, ConnectionError)
    assert (error.call_number, error.retry_after) == (2, 4.0)
    assert str(error) == "fake service call 2 failed; retry after 4 s"
    assert str(FakeServiceError(7)) == "fake service call 7 failed"
    assert [c.outcome for c in service.calls] == ["ok", "error", "error", "ok"]
    assert service.calls[1].end == 2.0


async def test_fail_calls_predicate_and_custom_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A predicate picks the failing calls and `error` builds what they raise."""
    service = FakeService(fail_calls=lambda n: n % 2 == 0, error=lambda n: TimeoutError(n))
    assert await service.call() == 1
    with pytest.raises(TimeoutError):
        await service.call()
    assert await service.call() == 3


async def test_outages_by_start_time(autojump_clock: trio.testing.MockClock) -> None:
    """A call that starts inside an outage [start, end) fails; one that starts after succeeds."""
    service = FakeService(latency=2.0, outages=[(10.0, 20.0)])
    await trio.sleep(9)
    assert await service.call() == 1  # starts at 9, ends at 11 inside the outage: still ok
    with pytest.raises(FakeServiceError):
        await service.call()  # starts at 11
    await trio.sleep(7)
    assert trio.current_time() == 20.0
    assert await service.call() == 3
    assert service.fails(99, 10.0)
    assert not service.fails(99, 20.0)


async def test_latency_function_of_number_and_time(autojump_clock: trio.testing.MockClock) -> None:
    """latency may be a function of (call_number, start_time)."""
    seen: list[tuple[int, float]] = []

    def latency(number: int, start: float) -> float:
        seen.append((number, start))
        return float(number)

    service = FakeService(latency=latency)
    with assert_takes(3.0):
        await service.call()
        await service.call()
    assert seen == [(1, 0.0), (2, 1.0)]


async def test_records_peak_concurrency_and_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Concurrent calls raise the peak; a cancelled call is recorded as cancelled."""
    service = FakeService(latency=3.0)
    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(service.call)
        await trio.testing.wait_all_tasks_blocked()
        assert service.statistics().in_flight == 4
        with trio.move_on_after(1):
            await service.call()
    assert service.statistics() == FakeServiceStatistics(
        calls=5, successes=4, failures=0, cancelled=1, in_flight=0, peak_concurrency=5
    )
    assert service.calls[0] == FakeCall(5, (), 0.0, 1.0, "cancelled", None)


async def test_zero_latency_is_a_checkpoint() -> None:
    """Even with no latency a call yields to the scheduler."""
    service = FakeService()
    with trio.testing.assert_checkpoints():
        await service.call()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"latency": -1}, ValueError, r"latency must be >= 0, got -1"),
        ({"latency": "1"}, TypeError, r"latency must be a number, got '1'"),
        ({"fail_calls": {0}}, ValueError, r"fail_calls must contain call numbers >= 1, got 0"),
        ({"fail_calls": ["2"]}, TypeError, r"fail_calls must contain only ints, got '2'"),
        (
            {"fail_calls": 3},
            TypeError,
            r"fail_calls must be a collection of call numbers or a predicate, got 3",
        ),
        ({"outages": [(5.0, 5.0)]}, ValueError, r"outages must have start < end, got \(5.0, 5.0\)"),
        ({"outages": [5.0]}, TypeError, r"outages must contain \(start, end\) pairs, got 5.0"),
        ({"error": 3}, TypeError, r"error must be callable or None, got 3"),
        ({"retry_after": -2}, ValueError, r"retry_after must be >= 0, got -2"),
    ],
)
def test_arguments_are_validated(kwargs: dict[str, Any], error: type, message: str) -> None:
    """Bad scripts are refused at construction with a whole, exact message."""
    with pytest.raises(error, match=f"^{message}$"):
        FakeService(**kwargs)


async def test_open_ended_outage(autojump_clock: trio.testing.MockClock) -> None:
    """An outage may last forever (end = math.inf)."""
    service = FakeService(outages=[(0.0, math.inf)])
    await trio.sleep(86_000)
    with pytest.raises(FakeServiceError):
        await service.call()
