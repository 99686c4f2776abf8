"""trine.Chaos: faults, delays and substitute results injected on the fake clock."""

from __future__ import annotations

import functools
import random
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine.testing import FakeService, assert_takes


class CountingRandom(random.Random):
    """A Random that counts its draws, to pin how many a call makes."""

    draws = 0

    def random(self) -> float:
        self.draws += 1
        return super().random()


async def echo(value: object) -> object:
    await trio.lowlevel.checkpoint()
    return value


def _fates(seed: int, calls: int, fault: float) -> list[bool]:
    """Which calls a Chaos(fault=fault, rng=Random(seed)) fails, drawn as it draws them."""
    rng = random.Random(seed)
    return [rng.random() < fault for _ in range(calls)]


async def _run_calls(chaos: trine.Chaos, calls: int) -> list[object]:
    results: list[object] = []
    for number in range(calls):
        try:
            results.append(await chaos.call(echo, number))
        except trine.InjectedFault as error:
            results.append(error)
    return results


async def test_seeded_faults_fall_on_the_calls_the_rng_picks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With a seeded rng, exactly the calls whose draw is below `fault` fail."""
    chaos = trine.Chaos(fault=0.3, rng=random.Random(42))
    results = await _run_calls(chaos, 50)
    failed = [isinstance(result, trine.InjectedFault) for result in results]
    assert failed == _fates(42, 50, 0.3)
    assert [r for r in results if not isinstance(r, trine.InjectedFault)] == [
        n for n, fails in enumerate(failed) if not fails
    ]
    assert chaos.statistics() == trine.ChaosStatistics(
        calls=50, disabled=0, delays=0, faults=sum(failed), substitutes=0, passed=50 - sum(failed)
    )


async def test_the_same_seed_replays_the_same_run(autojump_clock: trio.testing.MockClock) -> None:
    """Two Chaos objects seeded alike inject the same faults into the same calls."""
    first = await _run_calls(trine.Chaos(fault=0.5, rng=random.Random(7)), 30)
    second = await _run_calls(trine.Chaos(fault=0.5, rng=random.Random(7)), 30)
    assert [type(r) for r in first] == [type(r) for r in second]


async def test_an_injected_delay_is_exact_fake_time(autojump_clock: trio.testing.MockClock) -> None:
    """A delayed call waits `latency` seconds, then runs the function."""
    service = FakeService(latency=0.25)
    chaos = trine.Chaos(slow=1.0, latency=2.0)
    with assert_takes(2.25):
        assert await chaos.call(service.call, "GET /") == 1
    assert service.calls[0].start == 2.0
    assert chaos.statistics().delays == 1
    assert chaos.statistics().passed == 1


async def test_a_timeout_cancels_an_injected_delay(autojump_clock: trio.testing.MockClock) -> None:
    """A timeout shorter than the delay cancels the call before the function starts."""
    service = FakeService()
    chaos = trine.Chaos(slow=1.0, latency=5.0)
    with assert_takes(1.0), trio.move_on_after(1.0) as scope:
        await chaos.call(service.call)
    assert scope.cancelled_caught
    assert service.statistics().calls == 0
    assert chaos.statistics() == trine.ChaosStatistics(
        calls=1, disabled=0, delays=1, faults=0, substitutes=0, passed=0
    )


async def test_substitute_returns_the_result_without_calling(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A substituted call returns `result` and never reaches the function."""
    service = FakeService(latency=1.0)
    chaos = trine.Chaos(substitute=1.0, result="cached")
    with assert_takes(0.0):
        assert await chaos.call(service.call) == "cached"
    assert service.statistics().calls == 0
    assert chaos.statistics().substitutes == 1


async def test_draws_happen_in_order_and_only_for_active_kinds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """slow, then fault, then substitute, each drawn only when its rate is above zero."""
    rng = CountingRandom(1)
    await trine.Chaos(rng=rng).call(echo, 1)
    assert rng.draws == 0
    await trine.Chaos(slow=1.0, latency=1.0, substitute=1.0, rng=rng).call(echo, 1)
    assert rng.draws == 2
    with pytest.raises(trine.InjectedFault):
        await trine.Chaos(fault=1.0, substitute=1.0, rng=rng).call(echo, 1)
    assert rng.draws == 3  # a fault ends the call: no substitute draw


async def test_a_chaos_that_injects_nothing_adds_no_time_and_no_draws(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Rates of zero leave the call exactly as it was: same time, rng untouched."""
    rng = random.Random(3)
    state = rng.getstate()
    service = FakeService(latency=0.5)
    chaos = trine.Chaos(rng=rng, latency=9.0)
    with assert_takes(0.5):
        assert await chaos.call(service.call) == 1
    assert rng.getstate() == state


async def test_enabled_is_read_on_every_call(autojump_clock: trio.testing.MockClock) -> None:
    """`enabled` as a function switches injection per call; a disabled call draws nothing."""
    switch = [False]
    rng = CountingRandom(5)
    chaos = trine.Chaos(fault=1.0, rng=rng, enabled=lambda: switch[0])
    assert await chaos.call(echo, "a") == "a"
    switch[0] = True
    with pytest.raises(trine.InjectedFault):
        await chaos.call(echo, "b")
    switch[0] = False
    assert await chaos.call(echo, "c") == "c"
    assert rng.draws == 1
    assert chaos.statistics() == trine.ChaosStatistics(
        calls=3, disabled=2, delays=0, faults=1, substitutes=0, passed=2
    )
    chaos.enabled = False
    assert await chaos.call(echo, "d") == "d"


async def test_enabled_must_answer_true_or_false(autojump_clock: trio.testing.MockClock) -> None:
    """A switch returning something else is a TypeError at the call, naming it."""
    chaos = trine.Chaos(fault=1.0, enabled=lambda: "yes")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"^enabled must return True or False, got 'yes'$"):
        await chaos.call(echo, 1)


async def test_the_default_fault_is_a_named_connection_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The injected error is an InjectedFault: a TrineError and a ConnectionError."""
    with pytest.raises(trine.InjectedFault) as caught:
        await trine.Chaos(fault=1.0, name="users").call(echo, 1)
    assert isinstance(caught.value, ConnectionError)
    assert isinstance(caught.value, trine.TrineError)
    assert str(caught.value) == "fault injected by chaos 'users'"
    assert str(trine.InjectedFault()) == "fault injected by chaos"


async def test_error_may_be_a_class_or_a_builder(autojump_clock: trio.testing.MockClock) -> None:
    """`error` is called for each fault, so every fault is a fresh exception."""
    with pytest.raises(TimeoutError):
        await trine.Chaos(fault=1.0, error=TimeoutError).call(echo, 1)
    built: list[BaseException] = []

    def build() -> BaseException:
        built.append(OSError(len(built)))
        return built[-1]

    chaos = trine.Chaos(fault=1.0, error=build)
    for number in range(2):
        with pytest.raises(OSError, match=rf"^{number}$"):
            await chaos.call(echo, 1)
    assert built[0] is not built[1]


async def test_an_error_builder_must_build_an_exception(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A builder returning something else is a TypeError at the call."""
    chaos = trine.Chaos(fault=1.0, error=lambda: 3)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"^error must build an Exception, got 3$"):
        await chaos.call(echo, 1)


async def test_calls_are_checkpoints_even_when_nothing_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A fault or a substitute still yields to the scheduler, as the real call would."""
    with trio.testing.assert_checkpoints(), pytest.raises(trine.InjectedFault):
        await trine.Chaos(fault=1.0).call(echo, 1)
    with trio.testing.assert_checkpoints():
        await trine.Chaos(substitute=1.0).call(echo, 1)


async def test_cancellation_passes_through_and_is_not_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A cancelled call propagates trio.Cancelled; it is neither a fault nor a pass."""
    chaos = trine.Chaos(slow=1.0, latency=10.0)
    with trio.CancelScope() as scope:
        scope.cancel()
        await chaos.call(echo, 1)
    assert scope.cancelled_caught
    statistics = chaos.statistics()
    assert (statistics.faults, statistics.passed) == (0, 0)


async def test_the_decorator_keeps_the_function_and_passes_keywords(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """`@chaos` wraps an async function; keyword arguments reach it."""
    chaos = trine.Chaos()

    @chaos
    async def greet(name: str, *, punctuation: str = ".") -> str:
        """Say hello."""
        return f"hello {name}{punctuation}"

    assert greet.__name__ == "greet"
    assert greet.__doc__ == "Say hello."
    assert await greet("you", punctuation="!") == "hello you!"
    assert chaos.statistics().calls == 1


async def test_a_sync_function_is_refused_when_called(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A function that returns no awaitable is a NotAwaitableError naming fn."""

    def sync() -> int:
        return 1

    with pytest.raises(TypeError, match=r"^fn must be an async function, but calling it returned"):
        await trine.Chaos().call(sync)  # type: ignore[arg-type]


async def test_retry_retries_injected_faults(autojump_clock: trio.testing.MockClock) -> None:
    """A Retry around a Chaos sees the injected faults as ordinary failures."""
    service = FakeService(latency=0.1)
    chaos = trine.Chaos(fault=0.5, rng=random.Random(2))
    expected = _fates(2, 10, 0.5)
    retry = trine.Retry(attempts=10, backoff=trine.Backoff.constant(1.0))
    with assert_takes(expected.index(False) * 1.0 + 0.1):
        assert await retry.call(chaos.call, service.call) == 1
    assert chaos.statistics().faults == expected.index(False)


async def test_a_breaker_counts_injected_faults(autojump_clock: trio.testing.MockClock) -> None:
    """Injected faults open a breaker like real ones."""
    breaker = trine.CircuitBreaker(failure_threshold=2, reset_timeout=10.0)
    chaos = trine.Chaos(fault=1.0)
    for _ in range(2):
        with pytest.raises(trine.InjectedFault):
            await breaker.call(chaos.call, echo, 1)
    assert breaker.state is trine.CircuitState.OPEN


def test_policy_chaos_is_the_innermost_layer() -> None:
    """Policy(chaos=...) sits inside the per-attempt timeout: retries see its faults and
    an injected delay counts against the attempt's timeout."""
    chaos = trine.Chaos(slow=1.0, latency=5.0)
    policy = trine.Policy(
        retry=trine.Retry(attempts=2, backoff=trine.Backoff.constant(0.5)),
        timeout=1.0,
        chaos=chaos,
    )
    assert policy.layers == ("retry", "timeout", "chaos")

    async def main() -> None:
        with assert_takes(2.5), pytest.raises(trio.TooSlowError):
            await policy.call(echo, 1)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert chaos.statistics().delays == 2


def test_chaos_has_the_shape_policy_layers_call() -> None:
    """Chaos.call is an async method taking (fn, *args), as Policy's SupportsCall needs."""
    import inspect

    assert inspect.iscoroutinefunction(trine.Chaos().call)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fault": 1.5}, ValueError, r"fault must be <= 1, got 1.5"),
        ({"fault": -0.1}, ValueError, r"fault must be >= 0, got -0.1"),
        ({"slow": "0.1"}, TypeError, r"slow must be a number, got '0.1'"),
        ({"substitute": float("nan")}, ValueError, r"substitute must not be NaN, got nan"),
        ({"latency": -1}, ValueError, r"latency must be >= 0, got -1"),
        (
            {"slow": 0.5},
            ValueError,
            r"latency must be > 0 when slow is, got 0.0: say how long a slow call waits",
        ),
        ({"rng": 3}, TypeError, r"rng must be a random.Random, got 3"),
        ({"enabled": 1}, TypeError, r"enabled must be True or False, got 1"),
        ({"name": 1}, TypeError, r"name must be a str or None, got 1"),
        (
            {"error": KeyboardInterrupt},
            TypeError,
            r"error must be an Exception subclass or a function that builds an exception, "
            r"got <class 'KeyboardInterrupt'>: trio.Cancelled and other BaseExceptions "
            r"are not failures",
        ),
        (
            {"error": ValueError("x")},
            TypeError,
            r"error must be an exception class or a function that builds an exception, "
            r"got the instance ValueError\('x'\): .*",
        ),
    ],
)
def test_arguments_are_validated(kwargs: dict[str, Any], error: type, message: str) -> None:
    """Bad arguments are refused at construction with a whole, exact message."""
    with pytest.raises(error, match=f"^{message}$"):
        trine.Chaos(**kwargs)


def test_assignment_is_validated_too() -> None:
    """Changing a rate at run time goes through the same check."""
    chaos = trine.Chaos()
    chaos.fault = 0.25
    assert chaos.fault == 0.25
    with pytest.raises(ValueError, match=r"^fault must be <= 1, got 2$"):
        chaos.fault = 2


def test_slow_and_latency_are_checked_as_a_pair_on_assignment() -> None:
    """slow above zero with no latency is refused when assigned, as at construction (an
    assignment was taken, and the delayed calls waited no time)."""
    chaos = trine.Chaos()
    with pytest.raises(
        ValueError,
        match=r"^latency must be > 0 when slow is, got 0.0: say how long a slow call waits$",
    ):
        chaos.slow = 0.5
    assert chaos.slow == 0.0
    chaos.latency = 2
    chaos.slow = 0.5
    with pytest.raises(
        ValueError, match=r"^latency must be > 0 when slow is, got 0.0: set slow to 0 first$"
    ):
        chaos.latency = 0
    assert (chaos.slow, chaos.latency) == (0.5, 2.0)
    chaos.slow = 0
    chaos.latency = 0


@given(
    seed=st.integers(0, 2**32),
    fault=st.floats(0, 1),
    slow=st.floats(0, 1),
    substitute=st.floats(0, 1),
    deadline=st.floats(0, 30),
)
def test_every_call_is_accounted_for_even_when_cancelled(
    seed: int, fault: float, slow: float, substitute: float, deadline: float
) -> None:
    """Each call is exactly one of: passed, fault, substitute, or cancelled in its delay;
    the count of faults is what a replay of the seed predicts."""

    async def main() -> None:
        chaos = trine.Chaos(
            fault=fault, slow=slow, latency=1.0, substitute=substitute, rng=random.Random(seed)
        )
        cancelled = 0
        with trio.move_on_after(deadline):
            for _ in range(20):
                try:
                    await chaos.call(functools.partial(trio.sleep, 0.5))
                except trine.InjectedFault:
                    pass
                except trio.Cancelled:
                    cancelled += 1
                    raise
        statistics = chaos.statistics()
        accounted = statistics.passed + statistics.faults + statistics.substitutes
        assert statistics.calls - accounted in (0, 1)
        assert cancelled <= 1
        replay = random.Random(seed)
        faults = 0
        for _ in range(statistics.calls - (statistics.calls - accounted)):
            if slow and replay.random() < slow:
                pass
            if fault and replay.random() < fault:
                faults += 1
            elif substitute:
                replay.random()
        assert statistics.faults == faults

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
