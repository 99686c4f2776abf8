"""CircuitBreaker: thresholds, windows, half-open probing, filters, epochs, hooks."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import pickle
import random
import signal
import threading
import types
from collections.abc import AsyncGenerator, Coroutine, Generator, Iterator
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from interrupts import interrupt_at, interrupt_points, source_files
from trine import (
    CallRejected,
    CircuitBreaker,
    CircuitBreakerStatistics,
    CircuitOpenError,
    CircuitState,
    CircuitStateChanged,
    GuardEvent,
    TrineError,
)
from trine import _breaker as _breaker_package
from trine._breaker import _breaker as _breaker_module
from trine._util import NotAwaitableError
from trine.testing import FakeService, FakeServiceError

CLOSED, OPEN, HALF_OPEN, FORCED_OPEN = (
    CircuitState.CLOSED,
    CircuitState.OPEN,
    CircuitState.HALF_OPEN,
    CircuitState.FORCED_OPEN,
)


class Recorder:
    """An on_state_change callback that notes (time, old, new) on the Trio clock."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, str, str]] = []

    def __call__(self, old: CircuitState, new: CircuitState) -> None:
        self.changes.append((trio.current_time(), old.value, new.value))


async def succeed() -> str:
    await trio.lowlevel.checkpoint()
    return "ok"


async def fail(error: BaseException | None = None) -> None:
    await trio.lowlevel.checkpoint()
    raise error if error is not None else RuntimeError("boom")


async def fail_n(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(RuntimeError):
            await breaker.call(fail)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"failure_threshold": 0}, ValueError, "failure_threshold must be >= 1, got 0"),
        ({"failure_threshold": 1.5}, TypeError, "failure_threshold must be an int, got 1.5"),
        ({"failure_rate": 0}, ValueError, "failure_rate must be > 0, got 0"),
        ({"failure_rate": 1.5}, ValueError, "failure_rate must be <= 1, got 1.5"),
        ({"failure_rate": "x"}, TypeError, "failure_rate must be a number, got 'x'"),
        ({"window": 0}, ValueError, "window must be >= 1, got 0"),
        ({"window": 2.5}, TypeError, "window must be an int, got 2.5"),
        ({"window": 0, "window_type": "time"}, ValueError, "window must be > 0, got 0"),
        (  # regression (audit): an OverflowError at the first call
            {"window": 1e-320, "window_type": "time"},
            ValueError,
            r"window must be >= 1\.11e-292, got 1e-320: the clock is divided by window / 20",
        ),
        (
            {"window_type": "calls"},
            ValueError,
            "window_type must be one of 'count', 'time', got 'calls'",
        ),
        ({"minimum_calls": 0}, ValueError, "minimum_calls must be >= 1, got 0"),
        ({"slow_call_duration": 0}, ValueError, "slow_call_duration must be > 0, got 0"),
        ({"slow_call_rate": 0.0}, ValueError, "slow_call_rate must be > 0, got 0.0"),
        ({"slow_call_rate": 2}, ValueError, "slow_call_rate must be <= 1, got 2"),
        ({"reset_timeout": -1}, ValueError, "reset_timeout must be >= 0, got -1"),
        ({"reset_timeout": math.inf}, ValueError, "reset_timeout must be finite, got inf"),
        ({"half_open_max_calls": 0}, ValueError, "half_open_max_calls must be >= 1, got 0"),
        ({"success_threshold": 0}, ValueError, "success_threshold must be >= 1, got 0"),
        ({"name": 3}, TypeError, "name must be a str or None, got 3"),
        (
            {"record": 3},
            TypeError,
            "record must be an exception class, a tuple of them, or a predicate, got 3",
        ),
        (
            {"ignore": (KeyError, "x")},
            TypeError,
            "ignore must contain only exception classes, got 'x'",
        ),
        ({"on_state_change": 3}, TypeError, "on_state_change must be a callable, got 3"),
        ({"hooks": [3]}, TypeError, "hooks must contain only callables, got 3"),
    ],
)
def test_every_argument_is_validated(kwargs: dict[str, Any], error: type, message: str) -> None:
    """Bad arguments are refused at construction with a whole, exact message."""
    with pytest.raises(error, match=f"^{message}$"):
        CircuitBreaker(**kwargs)


def test_configuration_is_read_only() -> None:
    """Validated once, the configuration cannot be changed behind the validator's back."""
    breaker = CircuitBreaker()
    with pytest.raises(AttributeError):
        breaker.failure_threshold = 0  # type: ignore[misc]


async def test_coroutine_object_is_refused() -> None:
    """Passing ``fn(x)`` instead of ``fn, x`` says what to do."""
    breaker = CircuitBreaker()
    with pytest.raises(TypeError, match=r"^fn must be an async function, got the coroutine"):
        await breaker.call(succeed())  # type: ignore[arg-type]


# --------------------------------------------------------- consecutive failures


async def test_opens_after_consecutive_failures_and_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """CLOSED -> OPEN after 3 failures in a row; HALF_OPEN after 10 s; a probe closes it."""
    recorder = Recorder()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=10, on_state_change=recorder)
    await fail_n(breaker, 2)
    assert await breaker.call(succeed) == "ok"  # resets the count
    await fail_n(breaker, 2)
    assert breaker.state is CLOSED
    await trio.sleep(1)
    await fail_n(breaker, 1)
    assert breaker.state is OPEN
    await trio.sleep(9.5)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(succeed)
    assert info.value.retry_after == 0.5
    await trio.sleep(0.5)
    assert breaker.state is HALF_OPEN
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED
    assert recorder.changes == [
        (1.0, "closed", "open"),
        (11.0, "open", "half_open"),
        (11.0, "half_open", "closed"),
    ]


async def test_failed_probe_reopens_for_a_new_reset_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failing probe reopens the breaker; the next probe waits a full reset_timeout from then."""
    recorder = Recorder()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, on_state_change=recorder)
    await fail_n(breaker, 1)
    await trio.sleep(5)

    async def slow_failure() -> None:
        await trio.sleep(2)
        raise RuntimeError("still down")

    with pytest.raises(RuntimeError):
        await breaker.call(slow_failure)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(succeed)
    assert info.value.retry_after == 5.0
    await trio.sleep(5)
    assert await breaker.call(succeed) == "ok"
    assert recorder.changes == [
        (0.0, "closed", "open"),
        (5.0, "open", "half_open"),
        (7.0, "half_open", "open"),
        (12.0, "open", "half_open"),
        (12.0, "half_open", "closed"),
    ]


async def test_success_threshold_needs_that_many_probes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With success_threshold=3 the breaker stays HALF_OPEN until the third good probe."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1, success_threshold=3)
    await fail_n(breaker, 1)
    await trio.sleep(1)
    for expected in (HALF_OPEN, HALF_OPEN, CLOSED):
        await breaker.call(succeed)
        assert breaker.state is expected
    assert breaker.statistics().half_open_successes == 0


async def test_open_error_carries_name_and_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """CircuitOpenError is a TrineError with name, retry_after, state and a clear message."""
    breaker = CircuitBreaker(name="api", failure_threshold=1, reset_timeout=30)
    await fail_n(breaker, 1)
    await trio.sleep(12.5)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(succeed)
    error = info.value
    assert isinstance(error, TrineError)
    assert (error.name, error.retry_after, error.state) == ("api", 17.5, "open")
    assert str(error) == "circuit breaker 'api' is open; a probe will be admitted in 17.5 s"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.name, copy.retry_after, copy.state) == ("api", 17.5, "open")
    assert str(CircuitOpenError(None, 0.0, "half_open")) == (
        "circuit breaker is half-open and all its probe slots are taken; retry shortly"
    )


# ------------------------------------------------------------------ rate windows


async def test_failure_rate_over_count_window(autojump_clock: trio.testing.MockClock) -> None:
    """Opens when failures reach 50% of the last 4 calls, once 4 calls are in the window."""
    breaker = CircuitBreaker(failure_rate=0.5, window=4, minimum_calls=4)
    await fail_n(breaker, 2)  # 2 of 2, but fewer than minimum_calls
    assert breaker.statistics().failure_rate is None
    await breaker.call(succeed)
    assert breaker.state is CLOSED
    await breaker.call(succeed)  # F F S S: 50%
    assert breaker.state is OPEN


async def test_count_window_slides(autojump_clock: trio.testing.MockClock) -> None:
    """Only the last `window` calls count: old failures slide out."""
    breaker = CircuitBreaker(failure_rate=0.75, window=4, minimum_calls=4)
    await fail_n(breaker, 2)
    for _ in range(3):
        await breaker.call(succeed)
    stats = breaker.statistics()
    assert (stats.window_calls, stats.failure_rate) == (4, 0.25)
    await fail_n(breaker, 2)  # S S F F: 50%
    assert breaker.state is CLOSED
    await fail_n(breaker, 1)  # S F F F: 75%
    assert breaker.state is OPEN


async def test_count_window_caps_minimum_calls(autojump_clock: trio.testing.MockClock) -> None:
    """minimum_calls larger than a count window is capped at the window's size."""
    breaker = CircuitBreaker(failure_rate=1.0, window=3, minimum_calls=10)
    await fail_n(breaker, 3)
    assert breaker.state is OPEN


async def test_fractional_rate_is_reached_exactly(autojump_clock: trio.testing.MockClock) -> None:
    """3 failures in 10 calls reach failure_rate=0.3 (no float rounding surprise)."""
    breaker = CircuitBreaker(failure_rate=0.3, window=10, minimum_calls=10)
    for _ in range(7):
        await breaker.call(succeed)
    await fail_n(breaker, 3)
    assert breaker.state is OPEN


async def test_time_window_forgets_old_calls(autojump_clock: trio.testing.MockClock) -> None:
    """Calls older than the time window no longer count towards the rate."""
    breaker = CircuitBreaker(failure_rate=0.5, window=10.0, window_type="time", minimum_calls=3)
    await fail_n(breaker, 2)
    await trio.sleep(10)
    assert breaker.statistics().window_calls == 0
    await breaker.call(succeed)
    await breaker.call(succeed)
    await fail_n(breaker, 1)  # 1 of 3 in the window: 33%
    assert breaker.state is CLOSED
    await trio.sleep(9.4)  # the window is in 0.5 s buckets: the calls at t=10 still count
    stats = breaker.statistics()
    assert (stats.window_calls, stats.failure_rate) == (3, 1 / 3)
    await fail_n(breaker, 1)  # 2 of 4
    assert breaker.state is OPEN


async def test_time_window_bucket_boundary(autojump_clock: trio.testing.MockClock) -> None:
    """A call leaves a 10 s window when its 0.5 s bucket is 20 buckets old."""
    breaker = CircuitBreaker(failure_rate=1.0, window=10.0, window_type="time", minimum_calls=1)
    await trio.sleep(0.25)
    await breaker.call(succeed)  # bucket [0, 0.5)
    await trio.sleep(9.5)  # t = 9.75: bucket 19, the call's bucket 0 still counts
    assert breaker.statistics().window_calls == 1
    await trio.sleep(0.25)  # t = 10.0: bucket 20, bucket 0 has left
    assert breaker.statistics().window_calls == 0


async def test_time_window_memory_is_bounded(autojump_clock: trio.testing.MockClock) -> None:
    """Thousands of calls in a time window keep 20 buckets, not one entry per call."""
    breaker = CircuitBreaker(failure_rate=1.0, window=60.0, window_type="time")
    for _ in range(2000):
        await breaker.call(succeed)
    window = breaker._outcomes
    assert window.calls == 2000
    assert len(window._calls) == 20  # type: ignore[union-attr]


# --------------------------------------------------------------------- slow calls


async def test_slow_call_rate_opens(autojump_clock: trio.testing.MockClock) -> None:
    """With slow_call_duration=1, two of four calls taking >= 1 s reach slow_call_rate=0.5."""
    recorder = Recorder()
    breaker = CircuitBreaker(
        slow_call_duration=1.0,
        slow_call_rate=0.5,
        window=4,
        minimum_calls=4,
        on_state_change=recorder,
    )
    service = FakeService(latency=lambda n, start: 1.0 if n in (2, 4) else 0.5)
    for _ in range(4):
        await breaker.call(service)
    stats = breaker.statistics()
    assert stats.state is OPEN
    assert (stats.slow_calls, stats.successes, stats.failures) == (2, 4, 0)
    assert recorder.changes == [(3.0, "closed", "open")]


async def test_slow_probe_counts_as_failed_probe(autojump_clock: trio.testing.MockClock) -> None:
    """A probe that succeeds but takes >= slow_call_duration reopens the breaker."""
    breaker = CircuitBreaker(failure_threshold=1, slow_call_duration=2.0, reset_timeout=1)
    await fail_n(breaker, 1)
    await trio.sleep(1)
    assert await breaker.call(FakeService(latency=2.0)) == 1
    assert breaker.state is OPEN


async def test_slow_calls_not_tracked_without_duration(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Without slow_call_duration nothing is slow, however long it takes."""
    breaker = CircuitBreaker(failure_threshold=1)
    await breaker.call(FakeService(latency=1000.0))
    assert breaker.statistics().slow_calls == 0


# ---------------------------------------------------------------- half-open probes


@pytest.mark.parametrize("max_calls", [1, 3])
async def test_half_open_admits_exactly_max_calls_under_concurrency(
    autojump_clock: trio.testing.MockClock, max_calls: int
) -> None:
    """100 concurrent calls into a HALF_OPEN breaker: exactly half_open_max_calls get through."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1, half_open_max_calls=max_calls)
    await fail_n(breaker, 1)
    await trio.sleep(1)
    service = FakeService(latency=1.0)
    rejected: list[CircuitOpenError] = []

    async def caller() -> None:
        try:
            await breaker.call(service.call)
        except CircuitOpenError as error:
            rejected.append(error)

    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(caller)
        await trio.testing.wait_all_tasks_blocked()
        assert breaker.statistics().half_open_in_flight == max_calls
    assert service.statistics().calls == max_calls
    assert service.peak_concurrency == max_calls
    assert len(rejected) == 100 - max_calls
    assert {(e.state, e.retry_after) for e in rejected} == {("half_open", 0.0)}
    stats = breaker.statistics()
    assert (stats.state, stats.rejections) == (CLOSED, 100 - max_calls)


async def test_cancelled_probe_releases_its_slot(autojump_clock: trio.testing.MockClock) -> None:
    """A probe cancelled mid-call frees its slot and counts as nothing."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1)
    await fail_n(breaker, 1)
    await trio.sleep(1)
    with trio.move_on_after(0.5):
        await breaker.call(FakeService(latency=10.0))
    stats = breaker.statistics()
    assert (stats.state, stats.half_open_in_flight) == (HALF_OPEN, 0)
    assert (stats.cancelled, stats.failures, stats.successes) == (1, 1, 0)
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED


async def test_cancelled_task_takes_no_slot(autojump_clock: trio.testing.MockClock) -> None:
    """A task already cancelled is refused at the checkpoint before admission."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1)
    await fail_n(breaker, 1)
    await trio.sleep(1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await breaker.call(succeed)
    stats = breaker.statistics()
    assert (stats.calls, stats.half_open_in_flight, stats.state) == (1, 0, HALF_OPEN)


# ---------------------------------------------------------------- record / ignore


async def test_ignored_errors_count_as_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """An ignored exception is neither a failure nor a success, and frees a probe slot."""
    breaker = CircuitBreaker(failure_threshold=2, ignore=KeyError, reset_timeout=1)
    await fail_n(breaker, 1)
    with pytest.raises(KeyError):
        await breaker.call(fail, KeyError("k"))
    await fail_n(breaker, 1)  # consecutive count was not reset by the KeyError
    assert breaker.state is OPEN
    await trio.sleep(1)
    with pytest.raises(KeyError):
        await breaker.call(fail, KeyError("k"))
    stats = breaker.statistics()
    assert (stats.state, stats.half_open_in_flight, stats.ignored) == (HALF_OPEN, 0, 2)


async def test_errors_outside_record_count_as_success(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """record=(OSError,): a ValueError passes through but counts as a success."""
    breaker = CircuitBreaker(failure_threshold=2, record=(OSError,))
    await fail_n(breaker, 1)
    with pytest.raises(ValueError, match=r"^bad$"):
        await breaker.call(fail, ValueError("bad"))
    assert breaker.statistics().consecutive_failures == 0
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call(fail, ConnectionError("down"))
    assert breaker.state is OPEN


async def test_predicates_for_record_and_ignore(autojump_clock: trio.testing.MockClock) -> None:
    """record and ignore accept predicates; ignore wins over record."""
    breaker = CircuitBreaker(
        failure_threshold=1,
        record=lambda exc: isinstance(exc, FakeServiceError),
        ignore=lambda exc: getattr(exc, "retry_after", None) is not None,
    )
    with pytest.raises(FakeServiceError):
        await breaker.call(fail, FakeServiceError(1, retry_after=3.0))
    with pytest.raises(RuntimeError):
        await breaker.call(fail)
    assert breaker.state is CLOSED
    with pytest.raises(FakeServiceError):
        await breaker.call(fail, FakeServiceError(2))
    assert breaker.state is OPEN


async def test_breaker_record_predicate_error_frees_probe_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A ``record=`` predicate that raises must not keep the probe slot for ever."""

    def record(error: BaseException) -> bool:
        if isinstance(error, KeyError):
            raise RuntimeError("bug in the predicate")
        return True

    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1.0, record=record)
    with pytest.raises(ValueError, match=r"^boom$"):
        await breaker.call(fail, ValueError("boom"))
    assert breaker.state is OPEN
    await trio.sleep(1.0)
    with pytest.raises(RuntimeError, match=r"^bug in the predicate$") as info:  # the probe
        await breaker.call(fail, KeyError())
    assert type(info.value.__context__) is KeyError  # the call's own error is kept
    stats = breaker.statistics()
    assert stats.in_flight == 0
    assert stats.half_open_in_flight == 0
    # No verdict: the call counts as ignored, and the next probe is admitted.
    assert (stats.state, stats.ignored, stats.failures) == (HALF_OPEN, 1, 1)
    await breaker.call(trio.sleep, 0)
    assert breaker.state is CLOSED


async def test_an_ignore_predicate_that_returns_a_coroutine_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Regression (audit): a coroutine from ``ignore=`` read as true, so the breaker never
    opened; now it is a TypeError on the call, which is not counted as a failure."""

    async def check(exc: BaseException) -> bool:
        return False

    breaker = CircuitBreaker(failure_threshold=1, ignore=lambda exc: check(exc))
    with pytest.raises(TypeError, match=r"^ignore must be a plain function, but calling it "):
        await breaker.call(fail, ValueError("boom"))
    stats = breaker.statistics()
    assert (stats.state, stats.ignored, stats.failures, stats.in_flight) == (CLOSED, 1, 0, 0)


async def test_cancelled_never_counts(autojump_clock: trio.testing.MockClock) -> None:
    """trio.Cancelled is not a failure even when record is a predicate matching everything."""
    breaker = CircuitBreaker(failure_threshold=1, record=lambda exc: True)
    for _ in range(5):
        with trio.move_on_after(1):
            await breaker.call(trio.sleep_forever)
    stats = breaker.statistics()
    assert (stats.state, stats.cancelled, stats.failures, stats.consecutive_failures) == (
        CLOSED,
        5,
        0,
        0,
    )


async def test_base_exceptions_never_count() -> None:
    """KeyboardInterrupt-like BaseExceptions pass through uncounted."""
    breaker = CircuitBreaker(failure_threshold=1, record=lambda exc: True)
    with pytest.raises(KeyboardInterrupt):
        await breaker.call(fail, KeyboardInterrupt())
    assert breaker.statistics().failures == 0
    assert breaker.state is CLOSED


@pytest.mark.parametrize("argument", ["record", "ignore"])
@pytest.mark.parametrize("value", [KeyboardInterrupt, (OSError, trio.Cancelled), BaseException])
def test_issue11_filters_refuse_base_exceptions(argument: str, value: object) -> None:
    """record= and ignore= refuse BaseException classes that are not Exceptions, as Retry does."""
    name = value[1] if isinstance(value, tuple) else value
    with pytest.raises(
        TypeError,
        match=rf"^{argument} must contain only Exception subclasses, got {name!r}: "
        "trio.Cancelled and other BaseExceptions never reach it$",
    ):
        CircuitBreaker(**{argument: value})


# ------------------------------------------------------------- epochs / late results


async def test_late_result_from_closed_epoch_is_not_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A slow call admitted while CLOSED cannot close a HALF_OPEN breaker or take its slot."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1)
    slow_service = FakeService(latency=5.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(breaker.call, slow_service.call)  # admitted at t=0, ends at t=5
        await trio.lowlevel.checkpoint()
        await fail_n(breaker, 1)  # opens at t=0
        await trio.sleep(1)
        assert breaker.state is HALF_OPEN
        probe = FakeService(latency=10.0)
        nursery.start_soon(breaker.call, probe.call)  # the one probe: t=1 .. t=11
        await trio.sleep(4.5)
        assert breaker.statistics().half_open_in_flight == 1
        await trio.sleep(1)  # the stale success at t=5 has arrived
        stats = breaker.statistics()
        assert (stats.state, stats.half_open_in_flight, stats.successes) == (HALF_OPEN, 1, 1)
    assert breaker.state is CLOSED
    assert trio.current_time() == 11.0


async def test_late_failure_after_reset_is_not_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failure admitted before reset() does not count in the fresh window."""
    breaker = CircuitBreaker(failure_threshold=1)

    async def late_failure() -> None:
        await trio.sleep(2)
        raise RuntimeError("late")

    async def expect_failure() -> None:
        with pytest.raises(RuntimeError):
            await breaker.call(late_failure)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(expect_failure)
        await trio.sleep(1)
        breaker.reset()
    stats = breaker.statistics()
    assert (stats.state, stats.failures, stats.consecutive_failures) == (CLOSED, 1, 0)


async def test_issue19_late_success_on_the_fast_path_is_fenced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A success admitted by the closed fast path that ends after reset(), or while open, is
    counted in the lifetime statistics but never in the window of the state it ends in."""
    for change in ("reset", "trip"):
        breaker = CircuitBreaker(failure_threshold=1, failure_rate=None)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(breaker.call, FakeService(latency=2.0).call)  # ends at t=2
            await trio.sleep(1)
            if change == "reset":
                breaker.reset()
            else:
                await fail_n(breaker, 1)
        stats = breaker.statistics()
        expected_state = CLOSED if change == "reset" else OPEN
        assert (stats.state, stats.successes, stats.window_calls) == (expected_state, 1, 0)
        assert stats.consecutive_failures == 0


async def test_issue19_fast_path_success_filling_the_window_trips_a_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """failure_rate=0.5 over minimum_calls=4: three failures, then the success that makes the
    fourth call opens the breaker (3/4 >= 0.5), on the fast path as on the core's."""
    for slow_call_duration in (None, 100.0):  # the fast path, then the core
        breaker = CircuitBreaker(
            failure_rate=0.5, window=10, minimum_calls=4, slow_call_duration=slow_call_duration
        )
        await fail_n(breaker, 3)
        assert breaker.state is CLOSED
        assert await breaker.call(succeed) == "ok"
        assert breaker.state is OPEN


# ------------------------------------------------------------------ manual control


async def test_force_open_and_reset(autojump_clock: trio.testing.MockClock) -> None:
    """force_open rejects until reset(), whatever the time; reset closes and clears the window."""
    recorder = Recorder()
    breaker = CircuitBreaker(name="db", reset_timeout=1, on_state_change=recorder)
    await fail_n(breaker, 2)
    breaker.force_open()
    breaker.force_open()  # no second change
    await trio.sleep(100)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(succeed)
    assert (info.value.state, info.value.retry_after) == ("forced_open", math.inf)
    assert (
        str(info.value) == "circuit breaker 'db' is forced open; calls are rejected until reset()"
    )
    assert breaker.state is FORCED_OPEN
    breaker.reset()
    stats = breaker.statistics()
    assert (stats.state, stats.consecutive_failures, stats.window_calls) == (CLOSED, 0, 0)
    assert recorder.changes == [(0.0, "closed", "forced_open"), (100.0, "forced_open", "closed")]


# --------------------------------------------------------------- front ends, hooks


async def test_async_with_and_decorator(autojump_clock: trio.testing.MockClock) -> None:
    """`async with breaker:` and `@breaker` count and refuse like call()."""
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=5)

    @breaker
    async def double(x: int, *, plus: int = 0) -> int:
        await trio.sleep(1)
        return 2 * x + plus

    assert await double(3, plus=1) == 7
    assert double.__name__ == "double"

    async def nested() -> None:
        async with breaker, breaker:  # nesting in one task holds two permits
            raise RuntimeError("inner")

    with pytest.raises(RuntimeError):
        await nested()
    assert breaker.state is OPEN
    with pytest.raises(CircuitOpenError):
        async with breaker:
            pytest.fail("a refused block must not run")
    with pytest.raises(CircuitOpenError):
        await double(1)
    stats = breaker.statistics()
    assert (stats.calls, stats.successes, stats.failures, stats.rejections) == (3, 1, 2, 2)
    assert breaker._held == {}


async def test_breaker_async_with_left_in_another_task_gives_its_probe_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An ``async with breaker:`` block left from another task still records its outcome."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1.0)

    await fail_n(breaker, 1)
    await trio.sleep(1.0)

    async def pages() -> AsyncGenerator[int]:
        async with breaker:  # the probe
            yield 1
            yield 2

    stream = pages()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.__anext__)  # the probe is taken in this task
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.aclose)  # and given back in this one
    assert breaker.statistics().half_open_in_flight == 0
    # Closing the generator raised GeneratorExit in the block: counted as cancelled.
    assert (breaker.state, breaker.statistics().cancelled) == (HALF_OPEN, 1)
    assert breaker._held == {}


async def test_breaker_async_with_keeps_each_block_its_own_permit_when_blocks_interleave(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A block left while an async generator's block, entered later in the task, stays open."""
    breaker = CircuitBreaker(failure_threshold=5, slow_call_duration=5.0)

    async def pages() -> AsyncGenerator[int]:
        async with breaker:
            yield 1
            yield 2

    stream = pages()
    async with breaker:  # entered at 0
        await trio.sleep(5.0)
        await stream.__anext__()  # the generator's block entered at 5
        await trio.sleep(1.0)
    # This block took 6 s (slow); the generator's, still open, is not the one that ended.
    assert (breaker.statistics().slow_calls, breaker.statistics().in_flight) == (1, 1)
    await stream.aclose()  # 1 s, not slow
    assert (breaker.statistics().slow_calls, breaker.statistics().in_flight) == (1, 0)
    assert breaker._held == {}


async def test_breaker_async_with_entered_by_an_exit_stack_gives_its_permit_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A block an ``AsyncExitStack`` enters and leaves from frames of its own frees its probe."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1.0)
    await fail_n(breaker, 1)
    await trio.sleep(1.0)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(breaker)  # the probe
        assert breaker.statistics().half_open_in_flight == 1
    assert breaker.state is CLOSED
    assert breaker._held == {}


async def test_hooks_receive_state_changes_and_rejections(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Hooks get CircuitStateChanged (with CircuitState strs) and CallRejected(guard='breaker')."""
    events: list[GuardEvent] = []
    breaker = CircuitBreaker(
        name="api", failure_threshold=1, reset_timeout=2, hooks=[events.append]
    )
    await fail_n(breaker, 1)
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(succeed)
    await trio.sleep(2)
    await breaker.call(succeed)
    assert events == [
        CircuitStateChanged("api", "closed", "open"),
        CallRejected("breaker", "api", info.value),
        CircuitStateChanged("api", "open", "half_open"),
        CircuitStateChanged("api", "half_open", "closed"),
    ]
    first = events[0]
    assert isinstance(first, CircuitStateChanged)
    assert first.new is OPEN


async def test_callback_sees_consistent_state(autojump_clock: trio.testing.MockClock) -> None:
    """on_state_change runs after the state is updated, so it may read the breaker."""
    seen: list[tuple[CircuitState, CircuitState]] = []
    breaker: CircuitBreaker

    def callback(old: CircuitState, new: CircuitState) -> None:
        seen.append((new, breaker.state))

    breaker = CircuitBreaker(failure_threshold=1, on_state_change=callback)
    await fail_n(breaker, 1)
    assert seen == [(OPEN, OPEN)]


async def test_call_is_a_checkpoint_when_refused(autojump_clock: trio.testing.MockClock) -> None:
    """A refused call still yields to the scheduler and checks for cancellation."""
    breaker = CircuitBreaker(failure_threshold=1)
    await fail_n(breaker, 1)
    with trio.testing.assert_checkpoints(), pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    with trio.testing.assert_checkpoints(), pytest.raises(CircuitOpenError):
        async with breaker:
            pass


async def test_statistics_snapshot(autojump_clock: trio.testing.MockClock) -> None:
    """statistics() reports every counter and is a fresh frozen object."""
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=10)
    await breaker.call(succeed)
    await fail_n(breaker, 2)
    await trio.sleep(4)
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)
    stats = breaker.statistics()
    assert stats == type(stats)(
        state=OPEN,
        calls=3,
        successes=1,
        failures=2,
        slow_calls=0,
        ignored=0,
        cancelled=0,
        rejections=1,
        in_flight=0,
        window_calls=0,
        failure_rate=None,
        slow_call_rate=None,
        consecutive_failures=0,
        half_open_in_flight=0,
        half_open_successes=0,
        opened_at=0.0,
        retry_after=6.0,
    )
    assert stats is not breaker.statistics()
    assert repr(breaker).startswith("<trine.CircuitBreaker open at 0x")


async def test_zero_reset_timeout_probes_at_once(autojump_clock: trio.testing.MockClock) -> None:
    """reset_timeout=0: the next call after opening is already a probe."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=0)
    await fail_n(breaker, 1)
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED


# ------------------------------------------------ issue 11: peers' suites, the door


async def test_issue11_retry_after_never_wakes_before_the_probe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Opened at 0.1 with reset_timeout=3 and refused at 0.30000000000000004: a sleep of
    retry_after wakes when the probe is admitted, not at 3.0999999999999996 < 3.1."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=3)
    autojump_clock.jump(0.1)
    await fail_n(breaker, 1)
    autojump_clock.jump(0.30000000000000004 - trio.current_time())
    assert trio.current_time() == 0.30000000000000004
    with pytest.raises(CircuitOpenError) as info:
        await breaker.call(succeed)
    assert 0.30000000000000004 + 2.8 < 3.1  # the rounding that bit
    assert info.value.retry_after == math.nextafter(2.8, math.inf)
    await trio.sleep(info.value.retry_after)
    assert trio.current_time() == 3.1000000000000005  # one float step past 3.1
    assert await breaker.call(succeed) == "ok"


# The rounding needs a wait long against the time already on the clock
# (reopen - now is exact when now >= reopen / 2), and hits a few percent of
# such cases: each example costs microseconds, so try many.
@settings(max_examples=2000)
@example(opened_at=0.1, reset_timeout=3.0, fraction=(0.30000000000000004 - 0.1) / 3.0)
@given(
    opened_at=st.floats(0.0, 10.0),
    reset_timeout=st.floats(0.0, 1000.0),
    fraction=st.floats(0.0, 1.0, exclude_max=True),
)
def test_issue11_retry_after_is_never_short(
    opened_at: float, reset_timeout: float, fraction: float
) -> None:
    """At any time while OPEN, now + retry_after is never before the reopen time, and a probe
    is admitted then; retry_after overshoots by at most one float step."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=reset_timeout)
    now = opened_at
    breaker._clock = lambda: now
    breaker._admit().finish(RuntimeError("down"))
    reopen = opened_at + reset_timeout
    now = min(opened_at + fraction * reset_timeout, reopen)
    if now >= reopen:
        assert breaker.statistics().retry_after == 0.0
        return
    with pytest.raises(CircuitOpenError) as info:
        breaker._admit()
    retry_after = info.value.retry_after
    assert retry_after == breaker.statistics().retry_after
    assert now + retry_after >= reopen
    assert retry_after - (reopen - now) <= math.ulp(retry_after)
    now += retry_after
    assert breaker._admit().probe


async def test_issue11_hooks_see_state_changes_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With reset_timeout=0 and a callback that reads breaker.state, the open -> half_open
    change it causes is applied after closed -> open has reached every hook."""
    seen: list[tuple[str, str, str]] = []
    breaker: CircuitBreaker

    def callback(old: CircuitState, new: CircuitState) -> None:
        seen.append(("callback", old.value, new.value))
        assert breaker.state is new  # the change it causes waits for the hooks

    def hook(event: GuardEvent) -> None:
        assert isinstance(event, CircuitStateChanged)
        seen.append(("hook", event.old, event.new))

    breaker = CircuitBreaker(
        failure_threshold=1, reset_timeout=0, on_state_change=callback, hooks=[hook]
    )
    await fail_n(breaker, 1)
    assert breaker.state is HALF_OPEN
    assert seen == [
        ("callback", "closed", "open"),
        ("hook", "closed", "open"),
        ("callback", "open", "half_open"),
        ("hook", "open", "half_open"),
    ]


async def test_issue11_changes_made_by_a_callback_follow_the_chain(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """reset() and force_open() called from a callback take effect after it, in order."""
    seen: list[tuple[str, str]] = []
    breaker: CircuitBreaker

    def callback(old: CircuitState, new: CircuitState) -> None:
        seen.append((old.value, new.value))
        if new is OPEN:
            breaker.reset()
            breaker.force_open()

    breaker = CircuitBreaker(failure_threshold=1, on_state_change=callback)
    await fail_n(breaker, 1)
    assert breaker.state is FORCED_OPEN
    assert seen == [("closed", "open"), ("open", "closed"), ("closed", "forced_open")]


async def test_issue11_a_raising_callback_drops_the_changes_it_deferred(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A callback's error reaches the caller; the change it asked for first is not applied."""
    breaker: CircuitBreaker

    def callback(old: CircuitState, new: CircuitState) -> None:
        breaker.reset()
        raise LookupError("broken metrics")

    breaker = CircuitBreaker(failure_threshold=1, on_state_change=callback)
    with pytest.raises(LookupError, match=r"^broken metrics$"):
        await breaker.call(fail)
    assert breaker.state is OPEN


@pytest.mark.parametrize("kind", ["async function", "generator function", "async generator"])
def test_issue11_on_state_change_must_be_a_plain_function(kind: str) -> None:
    """An async (or generator) callback would never run: refused at construction, by name."""

    async def async_callback(old: CircuitState, new: CircuitState) -> None:
        pass

    def generator_callback(old: CircuitState, new: CircuitState) -> Any:
        yield

    async def async_generator_callback(old: CircuitState, new: CircuitState) -> Any:
        yield

    callback = {
        "async function": async_callback,
        "generator function": generator_callback,
        "async generator": async_generator_callback,
    }[kind]
    with pytest.raises(TypeError, match=r"^on_state_change must be a plain function, got the "):
        CircuitBreaker(on_state_change=callback)


async def test_issue11_on_state_change_returning_a_coroutine_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A lambda that calls an async function passes the door; its coroutine is refused when
    returned (and closed, so no "never awaited" warning is left)."""

    async def log(old: CircuitState, new: CircuitState) -> None:
        pass

    breaker = CircuitBreaker(failure_threshold=1, on_state_change=lambda old, new: log(old, new))
    with pytest.raises(TypeError, match=r"^on_state_change must be a plain function, but calling"):
        await breaker.call(fail)
    assert breaker.state is OPEN


def _sync_function() -> int:
    return 1


async def test_issue11_a_function_that_is_not_async_is_refused_and_not_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """call() and the decorator raise NotAwaitableError (a TypeError naming fn), and the
    breaker counts nothing: the call was never one of the service."""
    breaker = CircuitBreaker(failure_threshold=1)
    message = r"^fn must be an async function, but calling it returned 1, an int: define it"
    with pytest.raises(NotAwaitableError, match=message):
        await breaker.call(_sync_function)  # type: ignore[arg-type]
    with pytest.raises(NotAwaitableError, match=message):
        await breaker(_sync_function)()  # type: ignore[arg-type]
    stats = breaker.statistics()
    assert (stats.state, stats.calls, stats.failures, stats.in_flight) == (CLOSED, 0, 0, 0)


async def test_issue11_a_probe_that_is_not_async_gives_its_slot_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Half-open, a function that is not async neither fails the probe nor keeps its slot."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=1, slow_call_duration=5)
    await fail_n(breaker, 1)
    await trio.sleep(1)
    with pytest.raises(NotAwaitableError):
        await breaker.call(_sync_function)  # type: ignore[arg-type]
    stats = breaker.statistics()
    assert (stats.state, stats.half_open_in_flight, stats.calls) == (HALF_OPEN, 0, 1)
    assert await breaker.call(succeed) == "ok"
    assert breaker.state is CLOSED


# ----------------------------------------------------- state machine vs. a model
#
# The breaker's decisions live in a synchronous core (`_admit()` hands out a
# permit, `permit.finish(error)` records the outcome), so the property drives
# that core directly, with a plain fake clock function swapped in for
# trio.current_time. This lets hypothesis interleave admissions, outcomes,
# cancellations and clock jumps freely, without a Trio run per step. It also
# drives `call()` itself, whose closed state has its own fast path: each such
# call is a coroutine stepped by hand (sent into until the function inside
# suspends, then sent a result or thrown an error), with Trio's two
# checkpoints swapped for no-ops while it steps.


class _Ignored(Exception):
    pass


class _NotRecorded(Exception):
    pass


class _Interrupt(BaseException):
    """Stands in for trio.Cancelled: a BaseException that is not an Exception."""


OUTCOMES: dict[str, BaseException | None] = {
    "success": None,
    "failure": RuntimeError("recorded"),
    "ignored": _Ignored(),
    "not_recorded": _NotRecorded(),
    "cancelled": _Interrupt(),
    "not_awaitable": NotAwaitableError("fn must be an async function"),
}


@types.coroutine
def _suspend() -> Generator[str, None, None]:
    yield "in flight"


async def _in_flight() -> None:
    await _suspend()


async def _no_checkpoint() -> None:
    pass


@contextlib.contextmanager
def _checkpoints_off() -> Iterator[None]:
    """Let breaker.call() be stepped outside Trio: its checkpoints become no-ops."""
    saved = _breaker_module.checkpoint_if_cancelled, _breaker_module.cancel_shielded_checkpoint
    _breaker_module.checkpoint_if_cancelled = _no_checkpoint
    _breaker_module.cancel_shielded_checkpoint = _no_checkpoint
    try:
        yield
    finally:
        _breaker_module.checkpoint_if_cancelled, _breaker_module.cancel_shielded_checkpoint = saved


class _SteppedCall:
    """A `breaker.call(_in_flight)` in flight, stepped by hand (a permit for the machine)."""

    def __init__(self, coro: Coroutine[Any, Any, None]) -> None:
        self.coro = coro

    def finish(self, error: BaseException | None) -> None:
        with _checkpoints_off():
            if error is None:
                with pytest.raises(StopIteration):
                    self.coro.send(None)
            else:
                with pytest.raises(type(error)) as raised:
                    self.coro.throw(error)
                assert raised.value is error


class Model:
    """The breaker's rules written as plainly as possible, with unbounded lists."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.c = config
        self.state = "closed"
        self.epoch = 0
        self.opened_at: float | None = None
        self.outcomes: list[tuple[float, bool, bool]] = []  # (end time, failed, slow)
        self.consecutive = 0
        self.probes = 0
        self.probe_successes = 0
        self.changes: list[tuple[str, str]] = []
        self.counts = dict.fromkeys(
            ["calls", "successes", "failures", "slow", "ignored", "cancelled", "rejections"], 0
        )

    def window(self, now: float) -> list[tuple[float, bool, bool]]:
        if self.c["window_type"] == "count":
            return self.outcomes[-self.c["window"] :]
        width = self.c["window"] / 20
        current = math.floor(now / width)
        return [o for o in self.outcomes if math.floor(o[0] / width) > current - 20]

    def minimum(self) -> int:
        if self.c["window_type"] == "count":
            return min(self.c["minimum_calls"], self.c["window"])
        return int(self.c["minimum_calls"])

    def move(self, new: str, now: float) -> None:
        if new != self.state:
            self.changes.append((self.state, new))
        self.state = new
        self.epoch += 1
        self.outcomes = []
        self.consecutive = self.probes = self.probe_successes = 0
        if new in ("open", "forced_open"):
            self.opened_at = now
        elif new == "closed":
            self.opened_at = None

    def refresh(self, now: float) -> None:
        if self.state == "open":
            assert self.opened_at is not None
            if now >= self.opened_at + self.c["reset_timeout"]:
                self.move("half_open", now)

    def admit(self, now: float) -> tuple[int, float, bool] | None:
        self.refresh(now)
        if self.state == "closed" or (
            self.state == "half_open" and self.probes < self.c["half_open_max_calls"]
        ):
            probe = self.state == "half_open"
            self.probes += probe
            self.counts["calls"] += 1
            return (self.epoch, now, probe)
        self.counts["rejections"] += 1
        return None

    def finish(self, permit: tuple[int, float, bool], outcome: str, now: float) -> None:
        epoch, start, probe = permit
        current = epoch == self.epoch
        if outcome in ("ignored", "cancelled", "not_awaitable"):
            if outcome == "not_awaitable":
                self.counts["calls"] -= 1  # never a call of the service
            else:
                self.counts[outcome] += 1
            if probe and current:
                self.probes -= 1
            return
        failed = outcome == "failure"
        duration = self.c["slow_call_duration"]
        slow = duration is not None and now - start >= duration
        self.counts["failures" if failed else "successes"] += 1
        self.counts["slow"] += slow
        if not current:
            return
        if probe:
            self.probes -= 1
            if failed or slow:
                self.move("open", now)
            else:
                self.probe_successes += 1
                if self.probe_successes >= self.c["success_threshold"]:
                    self.move("closed", now)
            return
        self.outcomes.append((now, failed, slow))
        self.consecutive = self.consecutive + 1 if failed else 0
        window = self.window(now)
        enough = len(window) >= self.minimum()
        fails = sum(f for _, f, _ in window)
        slows = sum(s for _, _, s in window)
        if self.c["failure_rate"] is None:
            trip = self.consecutive >= self.c["failure_threshold"]
        else:
            trip = enough and fails / len(window) >= self.c["failure_rate"]
        if duration is not None and enough and slows / len(window) >= self.c["slow_call_rate"]:
            trip = True
        if trip:
            self.move("open", now)


configs = st.fixed_dictionaries(
    {
        "failure_threshold": st.integers(1, 3),
        "failure_rate": st.none() | st.sampled_from([0.25, 0.5, 1.0]),
        "window_type": st.sampled_from(["count", "time"]),
        "window": st.integers(1, 6),
        "minimum_calls": st.integers(1, 5),
        "slow_call_duration": st.none() | st.sampled_from([1.0, 2.5]),
        "slow_call_rate": st.sampled_from([0.5, 1.0]),
        "reset_timeout": st.sampled_from([0.0, 1.0, 5.0]),
        "half_open_max_calls": st.integers(1, 3),
        "success_threshold": st.integers(1, 3),
    }
)


class BreakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.permits: list[tuple[Any, tuple[int, float, bool]]] = []

    def teardown(self) -> None:
        with _checkpoints_off():
            for permit, _ in self.permits:
                if isinstance(permit, _SteppedCall):
                    permit.coro.close()

    @initialize(config=configs)
    def make(self, config: dict[str, Any]) -> None:
        self.changes: list[tuple[str, str]] = []
        self.breaker = CircuitBreaker(
            **config,
            ignore=_Ignored,
            record=lambda exc: not isinstance(exc, _NotRecorded),
            on_state_change=lambda old, new: self.changes.append((old.value, new.value)),
        )
        self.breaker._clock = lambda: self.now
        self.model = Model(config)

    def _start(self, front: str) -> Any:
        """Admit one call through *front*: its permit, or the CircuitOpenError."""
        if front == "core":
            try:
                return self.breaker._admit()
            except CircuitOpenError as error:
                return error
        coro = self.breaker.call(_in_flight)
        with _checkpoints_off():
            try:
                assert coro.send(None) == "in flight"
            except CircuitOpenError as error:
                return error
        return _SteppedCall(coro)

    @rule(front=st.sampled_from(["core", "call"]))
    def admit(self, front: str) -> None:
        expected = self.model.admit(self.now)
        permit = self._start(front)
        if isinstance(permit, CircuitOpenError):
            assert expected is None
            assert permit.retry_after >= 0
            return
        assert expected is not None
        self.permits.append((permit, expected))

    @rule()
    def call_not_awaitable(self) -> None:
        """call() with a function that is not async: refused, or admitted and given back."""
        expected = self.model.admit(self.now)
        with _checkpoints_off(), pytest.raises(NotAwaitableError if expected else CircuitOpenError):
            self._run(self.breaker.call(_sync_function))  # type: ignore[arg-type]
        if expected is not None:
            self.model.finish(expected, "not_awaitable", self.now)

    @staticmethod
    def _run(coro: Coroutine[Any, Any, object]) -> None:
        coro.send(None)
        pytest.fail("the call should have raised before suspending")

    @precondition(lambda self: self.permits)
    # Failures twice as likely as each other outcome, to reach OPEN and HALF_OPEN often.
    @rule(data=st.data(), outcome=st.sampled_from([*sorted(OUTCOMES), "failure"]))
    def finish(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.integers(0, len(self.permits) - 1))
        permit, expected = self.permits.pop(index)
        self.model.finish(expected, outcome, self.now)
        permit.finish(OUTCOMES[outcome])

    @rule(
        outcome=st.sampled_from(["failure", *sorted(OUTCOMES)]),
        seconds=st.sampled_from([0.0, 0.5, 1.0, 2.5]),
        front=st.sampled_from(["core", "call"]),
    )
    def whole_call(self, outcome: str, seconds: float, front: str) -> None:
        """Admit, let *seconds* pass, finish: a call that overlaps nothing it admits."""
        before = len(self.permits)
        self.admit(front)
        if len(self.permits) > before:
            self.now += seconds
            permit, expected = self.permits.pop()
            self.model.finish(expected, outcome, self.now)
            permit.finish(OUTCOMES[outcome])

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.5, 5.0, 10.0]))
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def read_state(self) -> None:
        self.model.refresh(self.now)
        assert self.breaker.state.value == self.model.state

    # reset() and force_open() share one rule that usually does nothing, so the
    # machine spends its steps in the automatic states rather than forced open.
    @rule(action=st.sampled_from(["nothing"] * 6 + ["reset", "force_open"]))
    def operator(self, action: str) -> None:
        if action == "reset":
            self.breaker.reset()
            self.model.move("closed", self.now)
        elif action == "force_open":
            self.breaker.force_open()
            if self.model.state != "forced_open":  # forcing again changes nothing
                self.model.move("forced_open", self.now)

    @invariant()
    def matches_model(self) -> None:
        if not hasattr(self, "model"):
            return
        model, stats = self.model, self.breaker.statistics()
        model.refresh(self.now)
        assert stats.state.value == model.state
        assert self.changes == model.changes
        counts = model.counts
        assert (
            stats.calls,
            stats.successes,
            stats.failures,
            stats.slow_calls,
            stats.ignored,
            stats.cancelled,
            stats.rejections,
        ) == (
            counts["calls"],
            counts["successes"],
            counts["failures"],
            counts["slow"],
            counts["ignored"],
            counts["cancelled"],
            counts["rejections"],
        )
        assert stats.in_flight == len(self.permits)
        assert stats.half_open_in_flight == model.probes
        assert stats.half_open_in_flight <= self.breaker.half_open_max_calls
        assert stats.consecutive_failures == model.consecutive
        assert stats.half_open_successes == model.probe_successes
        assert stats.opened_at == model.opened_at
        window = model.window(self.now)
        assert stats.window_calls == len(window)
        if window and len(window) >= model.minimum():
            assert stats.failure_rate == sum(f for _, f, _ in window) / len(window)
        else:
            assert stats.failure_rate is None
        if model.state == "open":
            assert model.opened_at is not None
            reopen = model.opened_at + model.c["reset_timeout"]
            assert self.now + stats.retry_after >= reopen  # a sleep of it is never short
            assert stats.retry_after - (reopen - self.now) <= math.ulp(stats.retry_after)
        elif model.state == "forced_open":
            assert stats.retry_after == math.inf
        else:
            assert stats.retry_after == 0.0


# Longer runs than hypothesis' default reach the rarer interleavings (a stale probe
# finishing in a later half-open spell); each step is microseconds, so this stays fast.
BreakerMachine.TestCase.settings = settings(
    settings.default, stateful_step_count=100, max_examples=4 * settings.default.max_examples
)
TestBreakerStateMachine = BreakerMachine.TestCase


def test_stale_probe_cannot_free_a_slot_it_no_longer_holds() -> None:
    """A probe from a finished half-open spell that ends later changes no slot count."""
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=0, half_open_max_calls=2)
    now = 0.0
    breaker._clock = lambda: now
    breaker._admit().finish(RuntimeError("down"))
    first, second = breaker._admit(), breaker._admit()
    first.finish(None)  # closes the breaker
    second.finish(trio.Cancelled._create())
    stats = breaker.statistics()
    assert (stats.state, stats.half_open_in_flight, stats.cancelled) == (CLOSED, 0, 1)


def test_guide_example_prints_what_the_guide_says() -> None:
    """docs/examples/breaker_recovery.py produces the output quoted in docs/guide/breaker.rst."""
    import pathlib
    import runpy

    root = pathlib.Path(__file__).parent.parent
    namespace = runpy.run_path(str(root / "docs" / "examples" / "breaker_recovery.py"))
    lines = trio.run(namespace["main"], clock=trio.testing.MockClock(autojump_threshold=0))
    guide = (root / "docs" / "guide" / "breaker.rst").read_text()
    quoted = "\n".join(f"    {line}" for line in lines)
    assert quoted in guide


def test_works_outside_trio_while_closed() -> None:
    """A closed breaker can be made, inspected and printed outside trio.run."""
    breaker = CircuitBreaker(name="api")
    assert breaker.state is CLOSED
    assert breaker.statistics().calls == 0
    assert repr(breaker).startswith("<trine.CircuitBreaker 'api' closed at 0x")


# ------------------------------------- concurrent calls with cancellation, in Trio

call_specs = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.0]),  # when the caller starts
        st.sampled_from([0.0, 0.5, 2.0, 4.0]),  # how long the call takes
        st.sampled_from(["failure", "success", "ignored"]),
        st.sampled_from([None, 0.0, 0.25, 1.0, 3.0]),  # cancel the caller after
        st.sampled_from(["call", "async_with", "decorator"]),
    ),
    min_size=3,
    max_size=25,
)
TRANSITIONS = {
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "open"),
    ("half_open", "closed"),
}


@given(
    specs=call_specs,
    half_open_max_calls=st.integers(1, 3),
    reset_timeout=st.sampled_from([0.0, 1.0, 2.5]),
    slow_call_duration=st.none() | st.just(2.0),
)
def test_concurrent_calls_with_cancellation_keep_the_books(
    specs: list[tuple[float, float, str, float | None, str]],
    half_open_max_calls: int,
    reset_timeout: float,
    slow_call_duration: float | None,
) -> None:
    """Any mix of concurrent calls, outcomes and cancellations: counts balance, slots never leak."""
    changes: list[tuple[float, str, str]] = []
    breaker = CircuitBreaker(
        failure_threshold=1,
        reset_timeout=reset_timeout,
        half_open_max_calls=half_open_max_calls,
        slow_call_duration=slow_call_duration,
        ignore=KeyError,
        on_state_change=lambda old, new: changes.append((trio.current_time(), old, new)),
    )
    seen = dict.fromkeys(["ran", "ok", "failed", "ignored", "cancelled", "rejected"], 0)

    async def body(latency: float, outcome: str) -> None:
        seen["ran"] += 1
        assert 0 <= breaker.statistics().half_open_in_flight <= half_open_max_calls
        try:
            await trio.sleep(latency)
        except trio.Cancelled:
            seen["cancelled"] += 1
            raise
        if outcome == "failure":
            seen["failed"] += 1
            raise RuntimeError("down")
        if outcome == "ignored":
            seen["ignored"] += 1
            raise KeyError("not found")
        seen["ok"] += 1

    decorated = breaker(body)

    async def caller(spec: tuple[float, float, str, float | None, str]) -> None:
        start, latency, outcome, cancel_after, front = spec
        await trio.sleep(start)
        with trio.move_on_after(math.inf if cancel_after is None else cancel_after):
            try:
                if front == "call":
                    await breaker.call(body, latency, outcome)
                elif front == "decorator":
                    await decorated(latency, outcome)
                else:
                    async with breaker:
                        await body(latency, outcome)
            except CircuitOpenError:
                seen["rejected"] += 1
            except (RuntimeError, KeyError):
                pass

    async def main() -> CircuitBreakerStatistics:
        async with trio.open_nursery() as nursery:
            for spec in specs:
                nursery.start_soon(caller, spec)
        return breaker.statistics()

    stats = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert stats.in_flight == 0
    assert stats.half_open_in_flight == 0
    assert (stats.calls, stats.successes, stats.failures) == (
        seen["ran"],
        seen["ok"],
        seen["failed"],
    )
    assert (stats.ignored, stats.cancelled, stats.rejections) == (
        seen["ignored"],
        seen["cancelled"],
        seen["rejected"],
    )
    assert stats.calls == stats.successes + stats.failures + stats.ignored + stats.cancelled
    previous = "closed"
    opened_at = 0.0
    for time, old, new in changes:
        assert (old, new) in TRANSITIONS
        assert old == previous
        if new == "open":
            opened_at = time
        if new == "half_open":
            assert time >= opened_at + reset_timeout
        previous = new
    assert breaker._held == {}


# ------------------------------------------------------------- KeyboardInterrupt


async def _probe_by_call(breaker: CircuitBreaker) -> None:
    await fail_n(breaker, 1)
    await trio.sleep(1)
    assert await breaker.call(succeed) == "ok"


async def _probe_by_async_with(breaker: CircuitBreaker) -> None:
    await fail_n(breaker, 1)
    await trio.sleep(1)
    with pytest.raises(RuntimeError):
        async with breaker:
            await fail()


async def _refused(breaker: CircuitBreaker) -> None:
    await fail_n(breaker, 1)
    with pytest.raises(CircuitOpenError):
        await breaker.call(succeed)


async def _closed_calls(breaker: CircuitBreaker) -> None:
    assert await breaker.call(succeed) == "ok"
    await fail_n(breaker, 1)
    assert await breaker(succeed)() == "ok"
    async with breaker:
        await succeed()
    with pytest.raises(NotAwaitableError):
        await breaker.call(lambda: None)  # type: ignore[arg-type, return-value]


KI_SCENARIOS = {
    "closed": (_closed_calls, {"failure_threshold": 2}),
    "closed, time window and slow calls": (
        _closed_calls,
        {"failure_rate": 1.0, "window": 10.0, "window_type": "time", "slow_call_duration": 5.0},
    ),
    "refused": (_refused, {"failure_threshold": 1}),
    "probe by call": (_probe_by_call, {"failure_threshold": 1, "reset_timeout": 1}),
    "probe by async with": (_probe_by_async_with, {"failure_threshold": 1, "reset_timeout": 1}),
}


def _books(breaker: CircuitBreaker) -> tuple[int, int, dict[Any, Any]]:
    """(calls in flight, probe slots taken, async-with permits held), read without the clock."""
    in_flight = breaker._calls - (
        breaker._successes + breaker._failures + breaker._ignored + breaker._cancelled
    )
    return in_flight, breaker._half_open_in_flight, breaker._held


@pytest.mark.parametrize("scenario", sorted(KI_SCENARIOS))
def test_issue11_keyboard_interrupt_anywhere_leaks_no_permit(scenario: str) -> None:
    """A SIGINT landing at any opcode of the breaker leaves no call in flight and no slot taken."""
    body, config = KI_SCENARIOS[scenario]
    watched = source_files(_breaker_package)
    points = interrupt_points(functools.partial(body, CircuitBreaker(**config)), watched)
    assert len(points) > 20  # the sweep really goes through the breaker's code
    for point in points:
        breaker = CircuitBreaker(**config)  # type: ignore[arg-type]
        interrupt_at(point, functools.partial(body, breaker), watched)
        assert _books(breaker) == (0, 0, {}), f"KeyboardInterrupt at opcode {point}"


def test_issue11_sigint_from_a_timer_leaks_no_permit() -> None:
    """Real SIGINTs at random moments of concurrent calls (open, probing, closed): nothing leaks."""
    rng = random.Random(11)
    for _ in range(30):
        breaker = CircuitBreaker(failure_threshold=2, reset_timeout=0.0, half_open_max_calls=2)

        async def caller(number: int, breaker: CircuitBreaker = breaker) -> None:
            for call in range(100_000):  # ended by the SIGINT long before
                with contextlib.suppress(RuntimeError, CircuitOpenError):
                    if (call + number) % 3:
                        await breaker.call(succeed)
                    else:
                        await breaker.call(fail)

        async def main() -> None:
            timer = threading.Timer(rng.uniform(0.0, 0.005), os.kill, (os.getpid(), signal.SIGINT))
            try:
                timer.start()
                async with trio.open_nursery() as nursery:
                    for number in range(3):
                        nursery.start_soon(caller, number)
            finally:
                timer.join()  # the signal is sent before the run ends

        with pytest.RaisesGroup(KeyboardInterrupt, allow_unwrapped=True, flatten_subgroups=True):
            trio.run(main)
        assert _books(breaker) == (0, 0, {})
