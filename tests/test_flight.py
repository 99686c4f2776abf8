"""SingleFlight: one shared run per key, and cancellation that never crosses callers."""

from __future__ import annotations

import contextvars
import traceback
from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine._util import NotAwaitableError


class Backend:
    """An async function that records each run, its start and how it ended."""

    def __init__(self, duration: float = 1.0) -> None:
        self.duration = duration
        self.runs: list[tuple[object, float]] = []
        self.ends: list[str] = []

    async def fetch(self, key: object) -> str:
        self.runs.append((key, trio.current_time()))
        number = len(self.runs)
        try:
            await trio.sleep(self.duration)
        except trio.Cancelled:
            self.ends.append(f"cancelled at {trio.current_time():g}")
            raise
        self.ends.append(f"done at {trio.current_time():g}")
        return f"{key}#{number}"


async def _collect(
    flights: trine.SingleFlight, key: object, fn: Callable[..., Any], results: list[object]
) -> None:
    results.append((await flights.call(key, fn, key), trio.current_time()))


async def test_concurrent_equal_keys_share_one_run(autojump_clock: trio.testing.MockClock) -> None:
    """Five concurrent calls with one key run the function once; all get its result at t=1."""
    backend = Backend()
    results: list[object] = []
    async with trine.SingleFlight() as flights, trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(_collect, flights, "a", backend.fetch, results)
    assert backend.runs == [("a", 0.0)]
    assert results == [("a#1", 1.0)] * 5
    assert flights.statistics() == trine.SingleFlightStatistics(
        calls=5, runs=1, shared=4, in_flight=0, waiting=0
    )


async def test_different_keys_run_separately(autojump_clock: trio.testing.MockClock) -> None:
    """Calls with different keys run concurrently, one run each."""
    backend = Backend()
    results: list[object] = []
    async with trine.SingleFlight() as flights, trio.open_nursery() as nursery:
        nursery.start_soon(_collect, flights, "a", backend.fetch, results)
        nursery.start_soon(_collect, flights, "b", backend.fetch, results)
    assert sorted(key for key, _ in backend.runs) == ["a", "b"]
    assert sorted(results) == [("a#1", 1.0), ("b#2", 1.0)] or sorted(results) == [
        ("a#2", 1.0),
        ("b#1", 1.0),
    ]


async def test_a_finished_run_is_not_cached(autojump_clock: trio.testing.MockClock) -> None:
    """Once a run has finished, the next call for its key starts a new run."""
    backend = Backend()
    async with trine.SingleFlight() as flights:
        assert await flights.call("a", backend.fetch, "a") == "a#1"
        assert await flights.call("a", backend.fetch, "a") == "a#2"
    assert backend.runs == [("a", 0.0), ("a", 1.0)]


async def test_a_late_caller_joins_the_run_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A call made half-way through a run waits for that run's remaining half."""
    backend = Backend()
    results: list[object] = []
    async with trine.SingleFlight() as flights, trio.open_nursery() as nursery:
        nursery.start_soon(_collect, flights, "a", backend.fetch, results)
        await trio.sleep(0.5)
        nursery.start_soon(_collect, flights, "a", backend.fetch, results)
    assert results == [("a#1", 1.0), ("a#1", 1.0)]


async def test_an_exception_reaches_every_waiter(autojump_clock: trio.testing.MockClock) -> None:
    """The run's exception is raised in each caller, with the run's frames after the caller's."""

    async def broken(key: str) -> str:
        await trio.sleep(1)
        raise LookupError(key)

    caught: list[BaseException] = []
    stacks: list[list[str]] = []

    async def caller(flights: trine.SingleFlight, name: str) -> None:
        try:
            await flights.call("k", broken, "k")
        except LookupError as exc:
            caught.append(exc)
            stacks.append([frame.name for frame in traceback.extract_tb(exc.__traceback__)])

    async with trine.SingleFlight() as flights, trio.open_nursery() as nursery:
        nursery.start_soon(caller, flights, "first")
        nursery.start_soon(caller, flights, "second")
    assert len(caught) == 2
    assert caught[0] is caught[1]
    for stack in stacks:
        # this caller, then trine's wait, then the run's task down to broken():
        # no frame of the other caller.
        assert stack[0] == "caller"
        assert stack.count("caller") == 1
        assert stack[-1] == "broken"


async def test_the_leader_cancelled_does_not_cancel_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Regression for Go's Do: the first caller's cancellation leaves the run for the others."""
    backend = Backend()
    results: list[object] = []
    leader_cancelled_at: list[float] = []

    async def leader(flights: trine.SingleFlight) -> None:
        with trio.move_on_after(0.25):
            await flights.call("a", backend.fetch, "a")
        leader_cancelled_at.append(trio.current_time())

    async with trine.SingleFlight() as flights, trio.open_nursery() as nursery:
        nursery.start_soon(leader, flights)
        await trio.sleep(0.1)
        nursery.start_soon(_collect, flights, "a", backend.fetch, results)
    assert leader_cancelled_at == [0.25]
    assert results == [("a#1", 1.0)]
    assert backend.ends == ["done at 1"]


async def test_every_waiter_cancelled_cancels_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When the last waiter leaves, the run is cancelled then and there and the key is free."""
    backend = Backend()

    async def cancelled_after(flights: trine.SingleFlight, seconds: float) -> None:
        with trio.move_on_after(seconds):
            await flights.call("a", backend.fetch, "a")

    async with trine.SingleFlight() as flights:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancelled_after, flights, 0.25)
            nursery.start_soon(cancelled_after, flights, 0.5)
        await trio.testing.wait_all_tasks_blocked()
        assert backend.ends == ["cancelled at 0.5"]
        assert flights.statistics().in_flight == 0
        assert flights.statistics().waiting == 0
        # A fresh run, not the cancelled one.
        assert await flights.call("a", backend.fetch, "a") == "a#2"
    assert backend.runs == [("a", 0.0), ("a", 0.5)]


async def test_cancelled_is_never_delivered_to_the_other_waiters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A waiter whose neighbours are cancelled one by one still gets the value, not Cancelled."""
    backend = Backend()
    results: list[object] = []

    async def cancelled_after(flights: trine.SingleFlight, seconds: float) -> None:
        with trio.move_on_after(seconds):
            await flights.call("a", backend.fetch, "a")
            results.append("not cancelled")

    async with trine.SingleFlight() as flights, trio.open_nursery() as nursery:
        for seconds in (0.1, 0.2, 0.3):
            nursery.start_soon(cancelled_after, flights, seconds)
        nursery.start_soon(_collect, flights, "a", backend.fetch, results)
    assert results == [("a#1", 1.0)]
    assert backend.ends == ["done at 1"]


async def test_a_caller_cancelled_before_the_call_starts_no_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A call from an already-cancelled task raises Cancelled without running the function."""
    backend = Backend()
    async with trine.SingleFlight() as flights:
        with trio.CancelScope() as scope:
            scope.cancel()
            await flights.call("a", backend.fetch, "a")
    assert backend.runs == []
    assert flights.statistics().calls == 0


async def test_a_run_abandoned_before_it_began_never_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A run whose waiters all left before its task's first step closes the function's
    coroutine unstarted (and without a never-awaited warning)."""
    backend = Backend()
    async with trine.SingleFlight() as flights:
        assert flights._nursery is not None
        flight = flights._table.start(flights._nursery, "a", backend.fetch("a"), None)
        flight.abandon()  # what the last waiter's cancellation does
        await trio.testing.wait_all_tasks_blocked()
        assert flights.statistics().in_flight == 0
    assert backend.runs == []


async def test_runs_reuse_parked_tasks_and_keep_few(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Runs one after another share one task; after a burst of 100 distinct keys at most
    64 tasks stay parked for later runs."""
    backend = Backend()
    async with trine.SingleFlight() as flights:
        assert flights._nursery is not None
        for key in "abc":
            await flights.call(key, backend.fetch, key)
        assert len(flights._nursery.child_tasks) == 1
        async with trio.open_nursery() as nursery:
            for key in range(100):
                nursery.start_soon(flights.call, key, backend.fetch, key)
        assert len(flights._nursery.child_tasks) == 64
    assert len(backend.runs) == 103


async def test_no_waits_does_not_leak_out_through_a_reused_service_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A deliberate wait outside ``no_waits()`` takes its time, even in a SingleFlight run."""
    service = trine.testing.FakeService(fail_calls={2})
    retry = trine.Retry(attempts=2, backoff=trine.Backoff.constant(10.0))
    async with trine.SingleFlight(policy=trine.Policy(retry=retry)) as flights:
        with trine.testing.no_waits():
            await flights.call("k", service.call)  # call 1 succeeds; its runner is parked
        start = trio.current_time()
        await flights.call("k", service.call)  # call 2 fails, call 3 after the backoff
        assert trio.current_time() - start == 10.0


async def test_no_waits_reaches_a_run_started_inside_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A run that a call inside ``no_waits()`` starts skips its deliberate waits, on any runner."""
    service = trine.testing.FakeService(fail_calls={2})
    retry = trine.Retry(attempts=2, backoff=trine.Backoff.constant(10.0))
    async with trine.SingleFlight(policy=trine.Policy(retry=retry)) as flights:
        await flights.call("k", service.call)  # a runner is started here and parked
        start = trio.current_time()
        with trine.testing.no_waits():
            await flights.call("k", service.call)  # call 2 fails; the retry's backoff skipped
        assert trio.current_time() - start == 0.0


async def test_a_reused_runner_runs_in_the_context_of_the_call_that_started_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each run sees the contextvars of the call that started it, as a new task would."""
    request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")

    async def whose() -> str:
        await trio.sleep(1)
        seen = request.get()
        request.set("changed by the run")  # a run's changes stay in its own copy
        return seen

    async with trine.SingleFlight() as flights:
        seen = []
        for name in ("first", "second", "third"):
            token = request.set(name)
            seen.append(await flights.call("k", whose))  # one runner, parked and reused
            request.reset(token)
        assert seen == ["first", "second", "third"]
        assert request.get() == "none"


async def test_forget_starts_a_fresh_run(autojump_clock: trio.testing.MockClock) -> None:
    """After forget(key), a call starts a new run; the old run's waiters still get its result."""
    backend = Backend()
    results: list[object] = []
    async with trine.SingleFlight() as flights, trio.open_nursery() as nursery:
        nursery.start_soon(_collect, flights, "a", backend.fetch, results)
        await trio.sleep(0.5)
        flights.forget("a")
        flights.forget("never started")
        nursery.start_soon(_collect, flights, "a", backend.fetch, results)
    assert results == [("a#1", 1.0), ("a#2", 1.5)]


async def test_leaving_the_block_cancels_runs_and_tells_outside_waiters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A caller outside the block still waiting when it ends gets ClosedResourceError at once."""
    backend = Backend()
    errors: list[str] = []

    async def outside(flights: trine.SingleFlight) -> None:
        try:
            await flights.call("a", backend.fetch, "a")
        except trio.ClosedResourceError as exc:
            errors.append(f"{exc} at {trio.current_time():g}")

    async with trio.open_nursery() as nursery, trine.SingleFlight() as flights:
        nursery.start_soon(outside, flights)
        await trio.sleep(0.5)
    assert errors == [
        "the SingleFlight was closed (its async with block ended) before this call's "
        "result came at 0.5"
    ]
    assert backend.ends == ["cancelled at 0.5"]
    assert flights.statistics().in_flight == 0
    assert flights.statistics().waiting == 0


async def test_calls_outside_the_block_are_refused() -> None:
    """Before the block a call raises RuntimeError, after it ClosedResourceError; one open only."""
    flights = trine.SingleFlight()
    with pytest.raises(RuntimeError, match=r"^this SingleFlight is not open: use it inside"):
        await flights.call("a", Backend().fetch, "a")
    async with flights:
        pass
    with pytest.raises(trio.ClosedResourceError, match=r"^this SingleFlight is closed"):
        await flights.call("a", Backend().fetch, "a")
    with pytest.raises(RuntimeError, match=r"^a SingleFlight can be opened only once$"):
        async with flights:
            pass


async def test_the_blocks_exception_leaves_bare() -> None:
    """An exception raised in the block comes out as itself, not in an ExceptionGroup."""
    with pytest.raises(KeyError, match=r"^'boom'$"):
        async with trine.SingleFlight():
            raise KeyError("boom")


async def test_service_block_cancelled_from_outside_leaves_as_a_bare_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An outer cancellation leaves a SingleFlight's block, a runner parked, as a bare Cancelled."""

    async def one() -> int:
        return 1

    seen: list[BaseException] = []
    with trio.move_on_after(1.0):
        try:
            async with trine.SingleFlight() as flights:
                await flights.call("k", one)  # leaves a runner parked
                await trio.sleep(5.0)
        except BaseException as error:  # recorded and re-raised: the scope must catch it
            seen.append(error)
            raise
    assert [type(error) for error in seen] == [trio.Cancelled]


async def test_a_run_goes_through_the_policy_once(autojump_clock: trio.testing.MockClock) -> None:
    """With policy=, each shared run is one policy.call: retries happen once, not per caller."""
    attempts: list[float] = []

    async def flaky(key: str) -> str:
        attempts.append(trio.current_time())
        await trio.sleep(1)
        if len(attempts) < 2:
            raise OSError("flaky")
        return key

    policy = trine.Policy(retry=trine.Retry(attempts=3, backoff=trine.Backoff.constant(0.5)))
    results: list[object] = []
    async with trine.SingleFlight(policy=policy) as flights, trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(_collect, flights, "a", flaky, results)
    assert attempts == [0.0, 1.5]
    assert results == [("a", 2.5)] * 3


async def test_bad_arguments_are_refused_at_the_call() -> None:
    """An unhashable key, a coroutine object or a sync function is a TypeError naming it."""

    async def fetch() -> int:
        return 1

    def sync() -> int:
        return 1

    async with trine.SingleFlight() as flights:
        with pytest.raises(TypeError, match=r"^key must be hashable, got \[1\]$"):
            await flights.call([1], fetch)
        with pytest.raises(TypeError, match=r"^key must be hashable, got \[1\]$"):
            flights.forget([1])
        coro = fetch()
        with pytest.raises(TypeError, match=r"^fn must be an async function, got the coroutine"):
            await flights.call("k", coro)  # type: ignore[arg-type]
        with pytest.raises(NotAwaitableError, match=r"^fn must be an async function, but calling"):
            await flights.call("k", sync)  # type: ignore[arg-type]
        assert flights.statistics().in_flight == 0
    with pytest.raises(TypeError, match=r"^policy must have an async call"):
        trine.SingleFlight(policy=1)  # type: ignore[arg-type]


async def test_every_call_is_a_checkpoint() -> None:
    """call() is a schedule point and a cancellation point, as Trio's own calls are."""

    async def instant() -> int:
        return 1

    async with trine.SingleFlight() as flights:
        with trio.testing.assert_checkpoints():
            assert await flights.call("k", instant) == 1


def test_repr_shows_the_state() -> None:
    """The repr says whether it is open and how many runs and waiters there are."""
    assert "new, 0 runs in flight, 0 waiting" in repr(trine.SingleFlight())


# -- the property: at most one run per key at a time, whatever is cancelled -----------

calls_strategy = st.lists(
    st.tuples(
        st.sampled_from("abc"),  # key
        st.integers(0, 20),  # start, in tenths of a second
        st.one_of(st.none(), st.integers(0, 20)),  # cancelled after, in tenths
    ),
    max_size=12,
)


@given(calls=calls_strategy, duration=st.integers(1, 10))
def test_at_most_one_run_per_key_at_a_time(
    calls: list[tuple[str, int, int | None]], duration: int
) -> None:
    """Property: whatever callers are cancelled, a key never has two runs at once, every
    caller that is not cancelled gets the result of a run in flight when it called, and
    nothing is left running or waiting afterwards."""
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    run_windows: dict[str, list[tuple[float, float]]] = {}

    async def fetch(key: str) -> tuple[str, float]:
        started = trio.current_time()
        running[key] = running.get(key, 0) + 1
        peak[key] = max(peak.get(key, 0), running[key])
        try:
            await trio.sleep(duration / 10)
        finally:
            running[key] -= 1
        run_windows.setdefault(key, []).append((started, trio.current_time()))
        return key, started

    async def caller(flights: trine.SingleFlight, key: str, start: int, cancel: int | None) -> None:
        await trio.sleep(start / 10)
        called = trio.current_time()
        with trio.move_on_after(cancel / 10 if cancel is not None else 1e9):
            got_key, started = await flights.call(key, fetch, key)
            assert got_key == key
            assert started <= called  # the run was in flight when this call was made
            assert (started, trio.current_time()) in run_windows[key]

    async def main() -> None:
        async with trine.SingleFlight() as flights:
            async with trio.open_nursery() as nursery:
                for key, start, cancel in calls:
                    nursery.start_soon(caller, flights, key, start, cancel)
            await trio.testing.wait_all_tasks_blocked()
            statistics = flights.statistics()
            assert statistics.in_flight == 0
            assert statistics.waiting == 0
            assert not flights._table.flights
        assert all(count <= 1 for count in peak.values())
        assert all(count == 0 for count in running.values())

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


class Interrupt(BaseException):
    """A BaseException that is not an Exception, as KeyboardInterrupt is."""


async def test_a_base_exception_in_a_run_leaves_the_block(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A BaseException raised by the function is no caller's result: it propagates out of
    the SingleFlight's block, and a caller from outside learns the service closed."""

    async def interrupted() -> None:
        await trio.sleep(1)
        raise Interrupt

    outside: list[str] = []

    async def caller(flights: trine.SingleFlight) -> None:
        with pytest.raises(trio.ClosedResourceError):
            await flights.call("k", interrupted)
        outside.append(f"closed at {trio.current_time():g}")

    with pytest.RaisesGroup(Interrupt, flatten_subgroups=True):
        async with trio.open_nursery() as nursery, trine.SingleFlight() as flights:
            nursery.start_soon(caller, flights)
            await trio.sleep(5)
    assert outside == ["closed at 1"]
