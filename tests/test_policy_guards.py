"""Policy with trine's real guards: the layers cooperate as the guide says."""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import os
import random
import runpy
import signal
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import trine
from interrupts import interrupt_at, interrupt_points, source_files
from trine import (
    Backoff,
    Bulkhead,
    CallRejected,
    CircuitBreaker,
    CircuitOpenError,
    GuardEvent,
    Policy,
    RateLimiter,
    Retry,
)
from trine import _breaker as _breaker_package
from trine import _policy as _policy_module
from trine import _retry as _retry_module
from trine._util import NotAwaitableError
from trine.testing import FakeService, FakeServiceError, assert_takes

ROOT = Path(__file__).resolve().parent.parent


async def test_an_open_breakers_retry_after_paces_the_retries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Retry sits outside the breaker: a rejection's retry_after (4 s) outweighs the 1 s backoff."""
    service = FakeService(fail_calls={1})
    states: list[tuple[float, str, str]] = []
    breaker = CircuitBreaker(
        failure_threshold=1,
        reset_timeout=5.0,
        on_state_change=lambda old, new: states.append((trio.current_time(), old, new)),
    )
    retry = Retry(attempts=3, backoff=Backoff.exponential(initial=1.0, maximum=60.0, jitter=None))
    policy = Policy(retry=retry, breaker=breaker)
    with assert_takes(5.0):
        assert await policy.call(service.call) == 2
    assert states == [
        (0.0, "closed", "open"),
        (5.0, "open", "half_open"),
        (5.0, "half_open", "closed"),
    ]
    assert retry.statistics().attempts == 3  # failed, rejected at 1 s, succeeded at 5 s
    assert service.statistics().calls == 2  # the rejected attempt never reached the service


async def test_the_per_attempt_timeout_frees_the_bulkhead_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each attempt gets its own timeout inside the bulkhead; no slot is kept after timeouts."""
    service = FakeService(latency=lambda number, start: 10.0 if number < 3 else 0.5)
    bulkhead = Bulkhead(1, max_waiting=10)
    policy = Policy(
        retry=Retry(attempts=3, backoff=Backoff.constant(0.5)),
        limiter=bulkhead,
        timeout=1.0,
    )
    with assert_takes(1.0 + 0.5 + 1.0 + 0.5 + 0.5):
        assert await policy.call(service.call) == 3
    statistics = bulkhead.statistics()
    assert (statistics.borrowed_tokens, statistics.tasks_waiting) == (0, 0)


async def test_a_full_bulkhead_is_reported_once_as_a_rejection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A refused call raises BulkheadFull and the Policy's hooks see one CallRejected."""
    events: list[GuardEvent] = []
    service = FakeService(latency=1.0)
    policy = Policy(limiter=Bulkhead(1), name="users", hooks=[events.append])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(policy.call, service.call)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trine.BulkheadFull):
            await policy.call(service.call)
    assert len(events) == 1
    assert isinstance(events[0], CallRejected)
    assert (events[0].guard, events[0].name) == ("bulkhead", "users")


async def test_an_open_breaker_answers_with_the_fallback_without_calling(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Once open, calls get the fallback at once and the service is spared."""
    service = FakeService(outages=[(0.0, 100.0)])
    events: list[GuardEvent] = []
    policy = Policy(
        fallback=lambda exc: type(exc).__name__,
        breaker=CircuitBreaker(failure_threshold=2, reset_timeout=30.0),
        hooks=[events.append],
    )
    answers = [await policy.call(service.call) for _ in range(4)]
    assert answers == [
        "FakeServiceError",
        "FakeServiceError",
        "CircuitOpenError",
        "CircuitOpenError",
    ]
    assert service.statistics().calls == 2
    rejections = [event for event in events if isinstance(event, CallRejected)]
    assert [event.guard for event in rejections] == ["breaker", "breaker"]
    assert isinstance(rejections[0].error, CircuitOpenError)


async def test_the_rate_layer_spaces_attempts(autojump_clock: trio.testing.MockClock) -> None:
    """A shared RateLimiter inside the Policy spaces calls evenly: 2 per second."""
    service = FakeService()
    policy = Policy(rate=RateLimiter(2), retry=Retry(attempts=2))
    starts: list[float] = []
    for _ in range(4):
        await policy.call(service.call)
        starts.append(trio.current_time())
    assert starts == [0.0, 0.5, 1.0, 1.5]


async def test_retry_gives_up_with_the_services_error_and_a_note(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When every attempt fails, the last FakeServiceError propagates with Retry's note."""
    service = FakeService(outages=[(0.0, 100.0)])
    policy = Policy(retry=Retry(attempts=3, backoff=Backoff.constant(1.0)), timeout=5.0)
    with pytest.raises(FakeServiceError) as caught:
        await policy.call(service.call)
    assert caught.value.__notes__ == ["trine.Retry: gave up after 3 attempts"]
    assert trio.current_time() == 2.0


def test_the_guides_worked_example_prints_what_the_guide_says() -> None:
    """docs/examples/policy_outage.py produces the output quoted in docs/guide/policy.rst."""
    namespace = runpy.run_path(str(ROOT / "docs" / "examples" / "policy_outage.py"))
    lines = trio.run(namespace["main"], clock=trio.testing.MockClock(autojump_threshold=0))
    guide = (ROOT / "docs" / "guide" / "policy.rst").read_text()
    quoted = "\n".join(f"    {line}" for line in lines)
    assert quoted in guide


# --------------------------------------------- issue 11: the door, KeyboardInterrupt


def _sync_function(*args: object) -> int:
    return 1


async def test_issue11_a_function_that_is_not_async_passes_every_layer_untouched(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """NotAwaitableError names fn and reaches the caller: not retried, not counted by the
    breaker, no slot kept, no fallback answer, for call() and the decorator alike."""
    answers: list[Exception] = []
    retry = Retry(attempts=3, backoff=Backoff.constant(0))
    breaker = CircuitBreaker(failure_threshold=1)
    bulkhead = Bulkhead(1)
    policy = Policy(
        fallback=answers.append,
        retry=retry,
        breaker=breaker,
        limiter=bulkhead,
        timeout=1.0,
    )
    message = r"^fn must be an async function, but calling it returned 1, an int: define it"
    with pytest.raises(NotAwaitableError, match=message):
        await policy.call(_sync_function)  # type: ignore[arg-type]
    with pytest.raises(NotAwaitableError, match=message):
        await policy(_sync_function)()  # type: ignore[arg-type]
    assert answers == []
    assert (retry.statistics().attempts, retry.statistics().give_ups) == (2, 0)
    stats = breaker.statistics()
    assert (stats.state, stats.calls, stats.failures) == (trine.CircuitState.CLOSED, 0, 0)
    assert bulkhead.statistics().borrowed_tokens == 0


async def test_issue11_an_empty_policy_refuses_a_function_that_is_not_async() -> None:
    """With no layer at all, the message still names fn (not Python's bare await error)."""
    with pytest.raises(NotAwaitableError, match=r"^fn must be an async function, but calling"):
        await Policy().call(_sync_function)  # type: ignore[arg-type]


async def _through_a_policy(policy: Policy, service: FakeService) -> None:
    """Success, failures that open the breaker, refusals, a probe, a timed-out attempt."""
    assert await policy.call(service.call) == 1
    with pytest.raises(FakeServiceError):
        await policy.call(service.call)  # calls 2 and 3 fail: the breaker opens
    with pytest.raises(CircuitOpenError):
        await policy.call(service.call)
    await trio.sleep(1)
    assert await policy.call(service.call) == 4  # the probe closes the breaker
    with pytest.raises(trio.TooSlowError):
        await policy.call(service.call)  # calls 5 and 6 take 10 s each


@pytest.mark.filterwarnings(
    # Retry and Policy hold no permit of their own, so their frames are not
    # KI-protected: an interrupt landing between creating a layer's coroutine
    # and awaiting it leaves that coroutine unawaited (and nothing else).
    "ignore:coroutine '.*' was never awaited:RuntimeWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
)
def test_issue11_keyboard_interrupt_anywhere_in_a_policy_leaks_nothing() -> None:
    """A SIGINT at any opcode of Policy, Retry or CircuitBreaker code: no call left in
    flight in the breaker, no probe slot and no limiter slot taken."""
    files = [
        _policy_module.__file__,
        *source_files(_retry_module),
        *source_files(_breaker_package),
    ]

    def make() -> tuple[Policy, CircuitBreaker, trio.CapacityLimiter, FakeService]:
        breaker = CircuitBreaker(failure_threshold=2, reset_timeout=1)
        limiter = trio.CapacityLimiter(1)
        policy = Policy(
            retry=Retry(attempts=2, backoff=Backoff.constant(0)),
            breaker=breaker,
            limiter=limiter,
            timeout=5.0,
        )
        service = FakeService(
            fail_calls={2, 3}, latency=lambda number, start: 10.0 if number >= 5 else 0.0
        )
        return policy, breaker, limiter, service

    policy, _, _, service = make()
    points = interrupt_points(
        functools.partial(_through_a_policy, policy, service), files, signal_checks_only=True
    )
    assert len(points) > 50
    for point in points:
        policy, breaker, limiter, service = make()
        interrupt_at(point, functools.partial(_through_a_policy, policy, service), files)
        in_flight = breaker._calls - (
            breaker._successes + breaker._failures + breaker._ignored + breaker._cancelled
        )
        assert (in_flight, breaker._half_open_in_flight, limiter.borrowed_tokens) == (0, 0, 0), (
            f"KeyboardInterrupt at opcode {point}"
        )
    gc.collect()  # the unawaited coroutines' warnings, while they are filtered


async def _through_a_limited_policy(policy: Policy, service: FakeService) -> None:
    """Success, a failure retried into a success, a timed-out attempt retried and timed out."""
    assert await policy.call(service.call) == 1
    assert await policy.call(service.call) == 3  # call 2 fails, the retry succeeds
    with pytest.raises(trio.TooSlowError):
        await policy.call(service.call)  # calls 4 and 5 take 10 s each


@pytest.mark.filterwarnings(
    "ignore:coroutine '.*' was never awaited:RuntimeWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
)
def test_keyboard_interrupt_anywhere_in_a_policy_without_a_breaker_leaks_no_slot() -> None:
    """A SIGINT at any opcode of a Policy holding a trio.CapacityLimiter with no breaker
    (its own layer, not `async with`): no slot taken, no waiter left."""
    files = [_policy_module.__file__, *source_files(_retry_module)]

    def make() -> tuple[Policy, trio.CapacityLimiter, FakeService]:
        limiter = trio.CapacityLimiter(1)
        policy = Policy(
            retry=Retry(attempts=2, backoff=Backoff.constant(0)), limiter=limiter, timeout=5.0
        )
        service = FakeService(fail_calls={2}, latency=lambda number, start: 10.0 * (number >= 4))
        return policy, limiter, service

    policy, _, service = make()
    points = interrupt_points(
        functools.partial(_through_a_limited_policy, policy, service),
        files,
        signal_checks_only=True,
    )
    assert len(points) > 20
    for point in points:
        policy, limiter, service = make()
        interrupt_at(point, functools.partial(_through_a_limited_policy, policy, service), files)
        statistics = limiter.statistics()
        assert (statistics.borrowed_tokens, statistics.tasks_waiting) == (0, 0), (
            f"KeyboardInterrupt at opcode {point}"
        )
    gc.collect()  # the unawaited coroutines' warnings, while they are filtered


class _SigintTimer:
    """Sends this process a SIGINT *delay* seconds after the callers start calling."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calling = False
        """Set by the callers once they are calling: the signal lands in their calls."""
        self.sent = False
        """Set once the signal is sent."""

    def run(self) -> None:
        while not self.calling:
            time.sleep(0.0001)
        time.sleep(self.delay)
        os.kill(os.getpid(), signal.SIGINT)
        self.sent = True


@pytest.mark.filterwarnings(
    "ignore:coroutine '.*' was never awaited:RuntimeWarning",
)
def test_issue11_sigint_from_a_timer_through_a_policy_leaks_nothing() -> None:
    """Real SIGINTs at random moments of concurrent Policy calls: no slot or permit leaks
    (a bare `async with trio.CapacityLimiter` leaks one in a few hundred such runs)."""
    rng = random.Random(11)
    for _ in range(30):
        breaker = CircuitBreaker(failure_threshold=3, reset_timeout=0.0)
        limiter = trio.CapacityLimiter(2)
        policy = Policy(
            retry=Retry(attempts=2, backoff=Backoff.constant(0)),
            breaker=breaker,
            limiter=limiter,
            timeout=5.0,
        )
        service = FakeService(fail_calls=lambda number: number % 4 == 0)
        # Plain attributes, not threading.Events: a KeyboardInterrupt landing in
        # Event.set() can leave the Event's lock taken, and the next set() hangs.
        timer = _SigintTimer(rng.uniform(0.0, 0.005))

        async def caller(
            policy: Policy = policy, service: FakeService = service, timer: _SigintTimer = timer
        ) -> None:
            # Ended by the KeyboardInterrupt, however slow the machine; one that
            # never comes is a failure of its own, not a run that merely ends.
            calls_after_signal = 0
            while calls_after_signal < 10_000:
                with contextlib.suppress(FakeServiceError, CircuitOpenError):
                    await policy.call(service.call)
                timer.calling = True
                calls_after_signal += timer.sent
            raise AssertionError("no KeyboardInterrupt 10000 calls after the SIGINT")

        async def main(timer: _SigintTimer = timer) -> None:
            thread = threading.Thread(target=timer.run)
            try:
                thread.start()
                async with trio.open_nursery() as nursery:
                    for _ in range(3):
                        nursery.start_soon(caller)
            finally:
                timer.calling = True  # if the callers failed first
                thread.join()  # the signal is sent before the run ends

        # Python drops an exception raised in a finalizer ("Exception ignored
        # in: <coroutine object afn>"), so a SIGINT landing in one run by the
        # garbage collector is lost: another test's unawaited coroutines in
        # reference cycles, collected mid-run, made this test flaky. Collect
        # them first, and let the collector not run during the run.
        gc.collect()
        gc.disable()
        try:
            with pytest.RaisesGroup(
                KeyboardInterrupt, allow_unwrapped=True, flatten_subgroups=True
            ):
                trio.run(main)
        finally:
            gc.enable()
        in_flight = breaker._calls - (
            breaker._successes + breaker._failures + breaker._ignored + breaker._cancelled
        )
        assert (in_flight, breaker._half_open_in_flight, limiter.borrowed_tokens) == (0, 0, 0)
    gc.collect()  # the unawaited coroutines' warnings, while they are filtered


async def test_issue11_a_constant_backoff_polls_an_open_breaker_every_d_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """As the guide warns: Backoff.constant(0.5) caps retry_after=30 at 0.5, so the retries
    are refused at 0, 0.5 and 1.0 and the call gives up; maximum=30 waits for the probe."""
    starts: list[float] = []

    async def down() -> None:
        starts.append(trio.current_time())
        raise OSError("down")

    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30.0)
    with pytest.raises(OSError, match=r"^down$"):
        await breaker.call(down)
    polling = Policy(retry=Retry(attempts=3, backoff=Backoff.constant(0.5)), breaker=breaker)
    with assert_takes(1.0), pytest.raises(CircuitOpenError):
        await polling.call(down)
    assert breaker.statistics().rejections == 3
    paced = Policy(
        retry=Retry(attempts=2, backoff=Backoff.exponential(0.5, maximum=30.0, jitter=None)),
        breaker=breaker,
    )
    service = FakeService()
    with assert_takes(29.0):  # from t=1.0 to the probe at t=30.0, not a float step before
        assert await paced.call(service.call) == 1
    assert breaker.state is trine.CircuitState.CLOSED


# --------------------------- issue 19: trine's own breaker and retry inside a Policy


class _Delegating:
    """A guard with an async call() that is not trine's own (it hands the call on to
    one that is): a Policy treats it as any guard, which is the reference here."""

    def __init__(self, guard: CircuitBreaker | Retry) -> None:
        self.guard = guard

    async def call(self, fn: Any, *args: Any) -> Any:
        return await self.guard.call(fn, *args)


class _Ignored(Exception):
    pass


_BREAKERS: list[dict[str, Any]] = [
    {"failure_threshold": 2},
    {"failure_rate": 0.5, "window": 4, "minimum_calls": 2},
    {"failure_threshold": 2, "half_open_max_calls": 2, "success_threshold": 2},
    {"window_type": "time", "window": 10.0, "failure_rate": 0.5, "minimum_calls": 2},
    {"failure_threshold": 3, "slow_call_duration": 2.0, "slow_call_rate": 0.5, "minimum_calls": 2},
]
_STEPS = ["ok", "late", "fail", "ignored", "slow", "cancel", "not async", "wait"]


def _run_steps(
    steps: list[str], config: dict[str, Any], *, own: bool
) -> tuple[list[object], list[bool], list[str]]:
    """Run *steps* through a Policy with trine's own breaker and retry (*own*) or the
    same guards behind _Delegating; return the outcomes with the breaker's and the
    retry's statistics after each step, whether fn ran KI-protected, and the events."""
    outcomes: list[object] = []
    protected: list[bool] = []
    events: list[str] = []

    async def main() -> None:
        breaker = CircuitBreaker(reset_timeout=1.5, ignore=_Ignored, **config["breaker"])
        retry = Retry(attempts=config["attempts"], backoff=Backoff.constant(0.25))
        limiter: trio.CapacityLimiter | Bulkhead | None = {
            None: None,
            "capacity": trio.CapacityLimiter(1),
            "bulkhead": Bulkhead(1),
        }[config["limiter"]]
        policy = Policy(
            retry=retry if own else _Delegating(retry),
            breaker=breaker if own else _Delegating(breaker),
            rate=RateLimiter(100) if config["rate"] else None,
            limiter=limiter,
            timeout=config["timeout"],
            hooks=[lambda event: events.append(type(event).__name__)] if config["hooks"] else (),
        )

        async def service(step: str) -> str:
            protected.append(trio.lowlevel.currently_ki_protected())
            if step == "fail":
                raise FakeServiceError("down")
            if step == "ignored":
                raise _Ignored("not the service's fault")
            await trio.sleep({"late": 0.5, "slow": 3.0, "cancel": 1.0}.get(step, 0.0))
            return step

        for step in steps:
            if step == "wait":
                await trio.sleep(2.0)  # past reset_timeout: an open breaker half-opens
                continue
            fn: Any = _sync_function if step == "not async" else service
            outcome: object
            with trio.move_on_after(0.75 if step == "cancel" else math.inf) as scope:
                try:
                    outcome = await policy.call(fn, step)
                except Exception as exc:
                    outcome = (type(exc).__name__, str(exc), getattr(exc, "__notes__", []))
            if scope.cancelled_caught:
                outcome = "cancelled"
            outcomes.append((outcome, breaker.statistics(), retry.statistics()))
        if limiter is not None:
            assert limiter.statistics().borrowed_tokens == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return outcomes, protected, events


@settings(deadline=None)
@given(
    steps=st.lists(st.sampled_from(_STEPS), max_size=12),
    breaker=st.sampled_from(_BREAKERS),
    attempts=st.integers(1, 2),
    limiter=st.sampled_from([None, "capacity", "bulkhead"]),
    timeout=st.sampled_from([None, 1.0]),
    rate=st.booleans(),
    hooks=st.booleans(),
)
def test_issue19_trines_own_breaker_and_retry_in_a_policy_do_what_any_guard_would(
    steps: list[str],
    breaker: dict[str, Any],
    attempts: int,
    limiter: str | None,
    timeout: float | None,
    rate: bool,
    hooks: bool,
) -> None:
    """The Policy's leaner entries into trine's CircuitBreaker and Retry (one frame for
    the breaker and the limiter's hold) give the same outcomes, statistics after every
    call, and events as the guards' public call(), and fn never runs KI-protected."""
    config = {
        "breaker": breaker,
        "attempts": attempts,
        "limiter": limiter,
        "timeout": timeout,
        "rate": rate,
        "hooks": hooks,
    }
    own = _run_steps(steps, config, own=True)
    reference = _run_steps(steps, config, own=False)
    assert own == reference
    outcomes, protected, _ = own
    assert len(outcomes) == len([step for step in steps if step != "wait"])
    assert not any(protected)


class _SwallowingHold:
    """A limiter whose hold swallows the exception of the call it holds."""

    def hold(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._hold()

    @contextlib.asynccontextmanager
    async def _hold(self) -> AsyncIterator[None]:
        with contextlib.suppress(FakeServiceError):
            yield

    def statistics(self) -> object:
        return None


@pytest.mark.parametrize("with_breaker", [False, True])
async def test_issue19_a_limiter_that_swallows_the_calls_error_is_a_runtime_error(
    with_breaker: bool,
) -> None:
    """A hold whose __aexit__ suppresses fn's error leaves no result: the call raises
    RuntimeError, with the breaker's own layer as without it, and the breaker counts it."""
    breaker = CircuitBreaker(failure_threshold=1)
    policy = Policy(
        breaker=breaker if with_breaker else None, limiter=_SwallowingHold(), timeout=1.0
    )

    async def down() -> None:
        raise FakeServiceError("down")

    message = r"^the limiter's context manager suppressed an exception from the call$"
    with pytest.raises(RuntimeError, match=message):
        await policy.call(down)
    expected = (1, trine.CircuitState.OPEN) if with_breaker else (0, trine.CircuitState.CLOSED)
    assert (breaker.statistics().failures, breaker.state) == expected
