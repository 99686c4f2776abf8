"""Policy with trine's real guards: the layers cooperate as the guide says."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import trio
import trio.testing

import trine
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
