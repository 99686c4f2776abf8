"""trine.testing.FakeService: scripted latency and failures on the fake clock."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing

from trine.testing import (
    FakeCall,
    FakeRequest,
    FakeScript,
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
        FakeCall(1, ("a",), 0.0, 0.5, "ok", None, key="a"),
        FakeCall(2, ("b", 2), 0.5, 1.0, "ok", None, key="b"),
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
    service = FakeService(
        fail_calls=lambda n: n % 2 == 0, error=lambda call: TimeoutError(call.number)
    )
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
    """latency may still be a function of (call_number, start_time), the first form."""
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
    assert service.calls[0].outcome == "cancelled"


async def test_zero_latency_is_a_checkpoint() -> None:
    """Even with no latency a call yields to the scheduler."""
    service = FakeService()
    with trio.testing.assert_checkpoints():
        await service.call()


_BAD_ARGUMENTS = pytest.mark.parametrize(
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
        ({"fail": 3}, TypeError, r"fail must be callable or None, got 3"),
        ({"latency": None}, TypeError, r"latency must be a number or a function, got None"),
        ({"outages": 5}, TypeError, r"outages must be an iterable of \(start, end\) pairs, got 5"),
        ({"key": 3}, TypeError, r"key must be a callable, got 3"),
        (
            {"scripts": [FakeScript()]},
            TypeError,
            r"scripts must be a mapping of keys to FakeScripts, got \[FakeScript\(.*\)\]",
        ),
        (
            {"scripts": {"/a": 2.0}},
            TypeError,
            r"scripts must map keys to FakeScripts, got 2.0 for '/a'",
        ),
    ],
)


@_BAD_ARGUMENTS
def test_arguments_are_validated(kwargs: dict[str, Any], error: type, message: str) -> None:
    """Bad scripts are refused at construction with a whole, exact message."""
    with pytest.raises(error, match=f"^{message}$"):
        FakeService(**kwargs)


@_BAD_ARGUMENTS
def test_assignments_are_validated(kwargs: dict[str, Any], error: type, message: str) -> None:
    """A script field assigned mid-test is checked as the constructor checks it, and a
    refused value leaves the script as it was (any value was taken, unchecked)."""
    service = FakeService(latency=0.5)
    [(name, value)] = kwargs.items()
    before = getattr(service, name)
    with pytest.raises(error, match=f"^{message}$"):
        setattr(service, name, value)
    assert getattr(service, name) == before


async def test_changing_the_script_mid_test_changes_the_calls_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Assigning latency, outages, fail_calls or retry_after mid-test governs the calls that
    start after it; a call in flight keeps the script it started under (it was ignored)."""
    service = FakeService(latency=0.1)
    assert await service.call() == 1
    service.latency = 5.0
    service.outages = [(trio.current_time(), math.inf)]  # the service goes down now
    with assert_takes(5.0), pytest.raises(FakeServiceError, match=r"^fake service call 2 failed$"):
        await service.call()
    service.outages = []
    service.fail_calls = {4, 5}
    service.retry_after = 2
    assert await service.call() == 3
    with pytest.raises(FakeServiceError) as info:
        await service.call()
    assert info.value.retry_after == 2.0
    assert (service.fail_calls, service.outages, service.retry_after) == (
        frozenset({4, 5}),
        (),
        2.0,
    )

    async def call_five() -> None:
        with pytest.raises(FakeServiceError, match=r"^fake service call 5 failed"):
            await service.call()  # scripted to fail when it started

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call_five)
        await trio.sleep(1.0)
        service.fail_calls = ()
    assert service.fails(5, 0.0) is False


async def test_open_ended_outage(autojump_clock: trio.testing.MockClock) -> None:
    """An outage may last forever (end = math.inf)."""
    service = FakeService(outages=[(0.0, math.inf)])
    await trio.sleep(86_000)
    with pytest.raises(FakeServiceError):
        await service.call()


async def test_latency_by_argument(autojump_clock: trio.testing.MockClock) -> None:
    """A one-argument latency function receives the FakeRequest: a slow endpoint."""
    seen: list[FakeRequest] = []

    def latency(call: FakeRequest) -> float:
        seen.append(call)
        return 2.0 if call.args[0] == "/report" else 0.05

    service = FakeService(latency=latency)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.call, "/report")
        nursery.start_soon(service.call, "/home")
    ends = {record.args[0]: record.end for record in service.calls}
    assert ends == {"/report": 2.0, "/home": 0.05}
    assert {(call.key, call.key_number, call.start) for call in seen} == {
        ("/report", 1, 0.0),
        ("/home", 1, 0.0),
    }


async def test_fail_predicate_sees_the_arguments(autojump_clock: trio.testing.MockClock) -> None:
    """`fail` picks failing calls by anything in the request: here, by argument."""
    service = FakeService(fail=lambda call: call.args[0].startswith("/admin"))
    assert await service.call("/home") == 1
    with pytest.raises(FakeServiceError, match=r"^fake service call 2 failed$"):
        await service.call("/admin/users")
    assert [record.outcome for record in service.calls] == ["ok", "error"]


async def test_per_argument_scripts_count_their_own_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A FakeScript's fail_calls number the calls with its key; its latency replaces the
    service's; calls with other keys follow the service's rules."""
    service = FakeService(
        latency=0.1,
        scripts={
            "/flaky": FakeScript(fail_calls={1, 2}, retry_after=3.0),
            "/slow": FakeScript(latency=2.0),
        },
    )
    outcomes = []
    for path in ["/home", "/flaky", "/slow", "/flaky", "/flaky", "/home"]:
        try:
            await service.call(path)
            outcomes.append((path, "ok", trio.current_time()))
        except FakeServiceError as error:
            outcomes.append((path, f"retry after {error.retry_after}", trio.current_time()))
    assert outcomes == [
        ("/home", "ok", 0.1),
        ("/flaky", "retry after 3.0", 0.2),
        ("/slow", "ok", 2.2),
        ("/flaky", "retry after 3.0", pytest.approx(2.3)),
        ("/flaky", "ok", pytest.approx(2.4)),
        ("/home", "ok", pytest.approx(2.5)),
    ]
    assert [record.number for record in service.calls_for("/flaky")] == [2, 4, 5]


async def test_service_rules_still_apply_to_scripted_keys(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A per-argument script adds to the service's rules: an outage fails every key,
    and the script's own outage only its key; its error replaces the service's."""
    service = FakeService(
        outages=[(10.0, 20.0)],
        scripts={"/down": FakeScript(outages=[(0.0, 30.0)], error=lambda call: TimeoutError())},
    )
    with pytest.raises(TimeoutError):
        await service.call("/down")
    assert await service.call("/up") == 2
    await trio.sleep(10)
    with pytest.raises(FakeServiceError):
        await service.call("/up")
    with pytest.raises(TimeoutError):
        await service.call("/down")
    await trio.sleep(20)
    assert await service.call("/down") == 5


async def test_an_outage_that_recovers(autojump_clock: trio.testing.MockClock) -> None:
    """The docs' outage example: calls starting in [10, 40) fail; then the service is back."""
    service = FakeService(latency=0.2, outages=[(10.0, 40.0)])
    answers = []
    while trio.current_time() < 50.0:
        try:
            await service.call()
            answers.append("ok")
        except FakeServiceError:
            answers.append("down")
        await trio.sleep(4.8)
    assert answers == ["ok"] * 2 + ["down"] * 6 + ["ok"] * 2


async def test_a_custom_key_groups_calls(autojump_clock: trio.testing.MockClock) -> None:
    """`key` maps the arguments to the script's key; unhashable first arguments get None."""
    service = FakeService(
        key=lambda request: request["host"],
        scripts={"db": FakeScript(fail_calls={1})},
    )
    with pytest.raises(FakeServiceError):
        await service.call({"host": "db", "query": 1})
    assert await service.call({"host": "db", "query": 2}) == 2
    assert await service.call({"host": "cache"}) == 3
    plain = FakeService()
    await plain.call({"unhashable": "dict"})
    assert plain.calls[0].key is None


async def test_script_functions_must_answer_in_kind(autojump_clock: trio.testing.MockClock) -> None:
    """A latency function returning a non-number, or an async script function, is refused."""
    service = FakeService(latency=lambda call: "slow")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"^latency must be a number, got 'slow'$"):
        await service.call()

    async def fail(call: FakeRequest) -> bool:
        return True

    with pytest.raises(TypeError, match=r"^fail must be a plain function, got the async function"):
        FakeService(fail=fail)
    with pytest.raises(TypeError, match=r"^error must build an exception, got 3$"):
        await FakeService(fail_calls={1}, error=lambda call: 3).call()  # type: ignore[arg-type,return-value]


def test_script_arguments_are_validated() -> None:
    """FakeScript checks its arguments as FakeService does."""
    with pytest.raises(ValueError, match=r"^fail_calls must contain call numbers >= 1, got 0$"):
        FakeScript(fail_calls={0})
    with pytest.raises(ValueError, match=r"^latency must be >= 0, got -1$"):
        FakeScript(latency=-1)
