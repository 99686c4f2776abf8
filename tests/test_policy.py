"""Policy: layer order, timeouts, fallback, rejections, hooks, validation."""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine import (
    AttemptTimedOut,
    CallRejected,
    FallbackUsed,
    GuardEvent,
    Policy,
    TrineError,
)
from trine.testing import ConcurrencyProbe, assert_takes

# -- fakes that satisfy the protocols ------------------------------------------


class FakeRejection(TrineError):
    """Stands in for CircuitOpenError / BulkheadFull / RateLimitExceeded."""


class FakeRetry:
    """Retries on any Exception, up to *attempts* times, with no delay."""

    def __init__(self, trace: list[str], attempts: int = 3) -> None:
        self.trace = trace
        self.attempts = attempts

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        self.trace.append("enter retry")
        try:
            for attempt in range(1, self.attempts + 1):
                try:
                    return await fn(*args)
                except Exception:
                    if attempt == self.attempts:
                        raise
            raise AssertionError("unreachable")
        finally:
            self.trace.append("exit retry")


class FakeBreaker:
    """Records calls; while ``open`` it rejects without calling fn."""

    def __init__(self, trace: list[str]) -> None:
        self.trace = trace
        self.open = False
        self.calls = 0

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        if self.open:
            raise FakeRejection("circuit open")
        self.calls += 1
        self.trace.append("enter breaker")
        try:
            return await fn(*args)
        finally:
            self.trace.append("exit breaker")


class FakeRate:
    """Records acquire times; waits *delay* per acquire; can refuse."""

    def __init__(self, trace: list[str], delay: float = 0.0) -> None:
        self.trace = trace
        self.delay = delay
        self.times: list[float] = []
        self.refuse = False

    async def acquire(self, cost: int = 1) -> None:
        self.times.append(trio.current_time())
        self.trace.append("acquire rate")
        if self.refuse:
            raise FakeRejection("no token")
        await trio.sleep(self.delay)


class FakeBulkhead:
    """A limiter with ``hold()`` that records entry/exit and can refuse."""

    def __init__(self, trace: list[str]) -> None:
        self.trace = trace
        self.refuse = False
        self.deadlines: list[float] = []

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        await trio.lowlevel.checkpoint()
        if self.refuse:
            raise FakeRejection("bulkhead full")
        self.deadlines.append(trio.current_effective_deadline())
        self.trace.append("enter limiter")
        try:
            yield
        finally:
            self.trace.append("exit limiter")


def recorder() -> tuple[list[GuardEvent], list[Callable[[GuardEvent], None]]]:
    events: list[GuardEvent] = []
    return events, [events.append]


# -- layer order ----------------------------------------------------------------


async def test_layers_run_outer_to_inner_in_the_documented_order() -> None:
    """A call goes retry → breaker → rate → limiter → timeout → fn, and unwinds in reverse."""
    trace: list[str] = []

    async def fn(x: int) -> int:
        trace.append("enter fn")
        trace.append("exit fn")
        return x * 2

    policy = Policy(
        fallback=lambda exc: trace.append("fallback"),
        retry=FakeRetry(trace),
        breaker=FakeBreaker(trace),
        rate=FakeRate(trace),
        limiter=FakeBulkhead(trace),
        timeout=1.0,
        total_timeout=10.0,
    )
    assert await policy.call(fn, 21) == 42
    assert trace == [
        "enter retry",
        "enter breaker",
        "acquire rate",
        "enter limiter",
        "enter fn",
        "exit fn",
        "exit limiter",
        "exit breaker",
        "exit retry",
    ]
    assert policy.layers == (
        "total_timeout",
        "fallback",
        "retry",
        "breaker",
        "rate",
        "limiter",
        "timeout",
    )


async def test_each_attempt_goes_through_the_inner_layers_and_fallback_comes_last() -> None:
    """Retry repeats breaker..fn per attempt; the fallback answers after the last one."""
    trace: list[str] = []

    async def fn() -> None:
        trace.append("fn")
        raise OSError("down")

    def fallback(exc: Exception) -> str:
        trace.append(f"fallback {exc}")
        return "cached"

    policy = Policy(
        fallback=fallback,
        retry=FakeRetry(trace, attempts=2),
        breaker=FakeBreaker(trace),
        rate=FakeRate(trace),
        limiter=FakeBulkhead(trace),
    )
    assert await policy.call(fn) == "cached"
    attempt = ["enter breaker", "acquire rate", "enter limiter", "fn", "exit limiter"]
    assert trace == [
        "enter retry",
        *attempt,
        "exit breaker",
        *attempt,
        "exit breaker",
        "exit retry",
        "fallback down",
    ]


async def test_timeout_is_inside_the_limiter_and_rate(autojump_clock: object) -> None:
    """Waiting for a token does not eat the attempt's time; total_timeout covers all."""
    trace: list[str] = []
    rate = FakeRate(trace, delay=5.0)
    bulkhead = FakeBulkhead(trace)
    seen: list[tuple[float, float]] = []

    async def fn() -> None:
        seen.append((trio.current_time(), trio.current_effective_deadline()))

    policy = Policy(rate=rate, limiter=bulkhead, timeout=1.0, total_timeout=100.0)
    start = trio.current_time()
    await policy.call(fn)
    # The limiter is entered after the 5 s token wait, still under the total deadline only.
    assert bulkhead.deadlines == [start + 100.0]
    # fn starts at +5 with its own full second.
    assert seen == [(start + 5.0, start + 6.0)]


# -- timeouts -------------------------------------------------------------------


async def test_per_attempt_timeout_gives_each_attempt_its_own_time(autojump_clock: object) -> None:
    """Three attempts of a hung call with timeout=1 fail after exactly 3 s, one event each."""
    events, hooks = recorder()

    async def hang() -> None:
        await trio.sleep(5)

    policy = Policy(retry=FakeRetry([], attempts=3), timeout=1.0, name="api", hooks=hooks)
    with (
        assert_takes(3.0),
        pytest.raises(trio.TooSlowError, match=r"^the attempt took longer than timeout=1.0 s$"),
    ):
        await policy.call(hang)
    assert events == [AttemptTimedOut(name="api", timeout=1.0, call=hang.__qualname__)] * 3


async def test_total_timeout_bounds_every_attempt_together(autojump_clock: object) -> None:
    """total_timeout=2.5 stops the third 1 s attempt half way, at exactly 2.5 s."""
    events, hooks = recorder()

    async def hang() -> None:
        await trio.sleep(5)

    policy = Policy(retry=FakeRetry([], 3), timeout=1.0, total_timeout=2.5, hooks=hooks)
    with (
        assert_takes(2.5),
        pytest.raises(trio.TooSlowError, match=r"^the call took longer than total_timeout=2.5 s$"),
    ):
        await policy.call(hang)
    assert events == [AttemptTimedOut(name=None, timeout=1.0, call=hang.__qualname__)] * 2


async def test_a_fallback_does_not_rescue_the_total_timeout(autojump_clock: object) -> None:
    """total_timeout is outside the fallback: its TooSlowError reaches the caller."""
    used: list[BaseException] = []

    async def hang() -> None:
        await trio.sleep(5)

    policy = Policy(fallback=used.append, total_timeout=1.0)
    with assert_takes(1.0), pytest.raises(trio.TooSlowError):
        await policy.call(hang)
    assert used == []


async def test_a_fallback_answers_a_per_attempt_timeout(autojump_clock: object) -> None:
    """A per-attempt TooSlowError is an ordinary Exception for the fallback."""
    events, hooks = recorder()

    async def hang() -> None:
        await trio.sleep(5)

    policy = Policy(fallback=lambda exc: "late", timeout=1.0, name="api", hooks=hooks)
    with assert_takes(1.0):
        assert await policy.call(hang) == "late"
    assert events[0] == AttemptTimedOut(name="api", timeout=1.0, call=hang.__qualname__)
    assert isinstance(events[1], FallbackUsed)
    assert isinstance(events[1].error, trio.TooSlowError)
    assert len(events) == 2


async def test_fns_own_too_slow_error_is_not_an_attempt_timeout(autojump_clock: object) -> None:
    """A TooSlowError raised by fn itself passes unchanged and is not reported as ours."""
    events, hooks = recorder()
    error = trio.TooSlowError("inner")

    async def fn() -> None:
        raise error

    policy = Policy(timeout=1.0, hooks=hooks)
    with pytest.raises(trio.TooSlowError) as info:
        await policy.call(fn)
    assert info.value is error
    assert events == []


async def test_queueing_for_a_slot_does_not_eat_the_attempts_time(autojump_clock: object) -> None:
    """With one slot and timeout=1, two 0.8 s calls both succeed, the second at 1.6 s."""
    limiter = trio.CapacityLimiter(1)
    policy = Policy(limiter=limiter, timeout=1.0)
    done: dict[int, float] = {}

    async def work(i: int) -> None:
        await trio.sleep(0.8)
        done[i] = trio.current_time()

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(policy.call, work, 0)
        nursery.start_soon(policy.call, work, 1)
    assert sorted(t - start for t in done.values()) == pytest.approx([0.8, 1.6])


# -- fallback -------------------------------------------------------------------


async def test_sync_fallback_gets_the_exception_and_its_value_is_returned() -> None:
    """fallback(exc) is called with the error; FallbackUsed carries it."""
    events, hooks = recorder()
    error = OSError("down")

    async def fail() -> None:
        raise error

    seen: list[Exception] = []

    def fallback(exc: Exception) -> str:
        seen.append(exc)
        return "default"

    policy = Policy(fallback=fallback, name="api", hooks=hooks)
    assert await policy.call(fail) == "default"
    assert seen == [error]
    assert events == [FallbackUsed(name="api", error=error, call=fail.__qualname__)]


async def test_async_fallback_is_awaited(autojump_clock: object) -> None:
    """An async fallback runs to completion and its result is returned."""

    async def fail() -> None:
        raise OSError("down")

    async def fallback(exc: Exception) -> str:
        await trio.sleep(1)
        return f"recovered from {exc}"

    with assert_takes(1.0):
        assert await Policy(fallback=fallback).call(fail) == "recovered from down"


async def test_an_awaitable_returned_by_a_sync_fallback_is_awaited() -> None:
    """A lambda that returns a coroutine works like an async fallback."""

    async def fail() -> None:
        raise OSError("down")

    async def value(exc: Exception) -> int:
        return 7

    assert await Policy(fallback=lambda exc: value(exc)).call(fail) == 7


@pytest.mark.parametrize(
    "fallback_on",
    [KeyError, (KeyError, LookupError), lambda exc: isinstance(exc, KeyError)],
    ids=["type", "tuple", "predicate"],
)
async def test_fallback_is_not_used_outside_fallback_on(fallback_on: Any) -> None:
    """An error outside fallback_on passes unchanged; one inside is answered."""
    used: list[Exception] = []

    def fallback(exc: Exception) -> str:
        used.append(exc)
        return "fb"

    policy = Policy(fallback=fallback, fallback_on=fallback_on)

    async def fail(error: Exception) -> None:
        raise error

    error = ValueError("not mine")
    with pytest.raises(ValueError, match=r"^not mine$") as info:
        await policy.call(fail, error)
    assert info.value is error
    assert used == []
    assert await policy.call(fail, KeyError("k")) == "fb"


async def test_fallback_is_never_used_for_cancellation(autojump_clock: object) -> None:
    """Cancelling the caller cancels the call; the fallback never sees trio.Cancelled."""
    used: list[BaseException] = []
    limiter = trio.CapacityLimiter(1)
    policy = Policy(fallback=used.append, fallback_on=lambda exc: True, limiter=limiter)

    async def hang() -> None:
        await trio.sleep(5)

    with trio.move_on_after(1.0) as scope:
        await policy.call(hang)
    assert scope.cancelled_caught
    assert used == []
    assert limiter.statistics().borrowed_tokens == 0


async def test_fallback_is_never_used_for_base_exceptions() -> None:
    """A BaseException that is not an Exception passes through, even with a catch-all predicate."""

    class Stop(BaseException):
        pass

    used: list[BaseException] = []
    policy = Policy(fallback=used.append, fallback_on=lambda exc: True)

    async def stop() -> None:
        raise Stop

    with pytest.raises(Stop):
        await policy.call(stop)
    assert used == []


async def test_a_failing_fallback_raises_with_the_original_error_as_context() -> None:
    """The fallback's own error propagates, chained to what it was answering."""
    original = OSError("down")

    async def fail() -> None:
        raise original

    def fallback(exc: Exception) -> None:
        raise RuntimeError("no cache either")

    with pytest.raises(RuntimeError, match=r"^no cache either$") as info:
        await Policy(fallback=fallback).call(fail)
    assert info.value.__context__ is original


# -- the limiter ------------------------------------------------------------------


async def test_limiter_slot_is_released_when_the_attempt_times_out(autojump_clock: object) -> None:
    """A timed-out attempt gives its CapacityLimiter token back."""
    limiter = trio.CapacityLimiter(1)

    async def hang() -> None:
        assert limiter.statistics().borrowed_tokens == 1
        await trio.sleep(5)

    with pytest.raises(trio.TooSlowError):
        await Policy(limiter=limiter, timeout=1.0).call(hang)
    assert limiter.statistics().borrowed_tokens == 0


async def test_limiter_slot_is_released_when_the_call_fails() -> None:
    """An exception from fn gives the token back too."""
    limiter = trio.CapacityLimiter(1)

    async def fail() -> None:
        raise OSError("down")

    with pytest.raises(OSError, match=r"^down$"):
        await Policy(limiter=limiter).call(fail)
    assert limiter.statistics().borrowed_tokens == 0


async def test_limiter_slot_is_released_when_a_waiter_is_cancelled(autojump_clock: object) -> None:
    """A call cancelled while queueing for a slot leaves no token borrowed and no waiter."""
    limiter = trio.CapacityLimiter(1)
    policy = Policy(limiter=limiter, timeout=10.0)

    async def hang() -> None:
        await trio.sleep(5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(policy.call, hang)
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(1.0):
            await policy.call(hang)
        assert limiter.statistics().tasks_waiting == 0
    assert limiter.statistics().borrowed_tokens == 0


@pytest.mark.parametrize("with_breaker", [False, True], ids=["limiter", "breaker+limiter"])
async def test_a_capacity_limiter_is_borrowed_by_the_calling_task(with_breaker: bool) -> None:
    """A trio.CapacityLimiter is held as `async with` holds it: on behalf of the task
    that calls, while fn runs, and given back after."""
    limiter = trio.CapacityLimiter(2)
    breaker = trine.CircuitBreaker() if with_breaker else None
    policy = Policy(breaker=breaker, limiter=limiter, timeout=5.0)
    borrowers: list[list[object]] = []

    async def work() -> int:
        borrowers.append(limiter.statistics().borrowers)
        return 1

    assert await policy.call(work) == 1
    assert borrowers == [[trio.lowlevel.current_task()]]
    assert limiter.statistics().borrowed_tokens == 0


@pytest.mark.parametrize("make", [trio.Semaphore, trio.Lock], ids=["Semaphore", "Lock"])
async def test_trio_semaphore_and_lock_work_as_limiters(make: Callable[..., Any]) -> None:
    """Any async context manager holds one slot per attempt."""
    limiter = make(1) if make is trio.Semaphore else make()

    async def fn() -> str:
        if isinstance(limiter, trio.Lock):
            assert limiter.locked()
        else:
            assert limiter.value == 0
        return "ok"

    assert await Policy(limiter=limiter).call(fn) == "ok"


class HoldAndContextManager:
    """Has both a zero-argument hold() and __aenter__: hold() is preferred."""

    def __init__(self, trace: list[str]) -> None:
        self.trace = trace

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        self.trace.append("hold")
        yield

    async def __aenter__(self) -> None:
        self.trace.append("aenter")

    async def __aexit__(self, *exc_info: object) -> None:
        self.trace.append("aexit")


class KeyedHoldAndContextManager(HoldAndContextManager):
    """Its hold() needs an argument, so the limiter is used as a context manager."""

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:  # type: ignore[override]
        raise AssertionError("must not be called")
        yield


async def test_a_zero_argument_hold_is_preferred_over_the_context_manager() -> None:
    """hold() is used when the limiter has one; a hold() that needs arguments is refused."""

    async def fn() -> None:
        pass

    trace: list[str] = []
    await Policy(limiter=HoldAndContextManager(trace)).call(fn)
    assert trace == ["hold"]
    with pytest.raises(TypeError, match=r"^limiter must be a limiter whose hold\(\) takes no"):
        Policy(limiter=KeyedHoldAndContextManager(trace))


async def test_sharing_one_policy_across_many_calls(autojump_clock: object) -> None:
    """Six concurrent 1 s calls through one Policy with two slots take 3 s, peak 2."""
    probe = ConcurrencyProbe()
    policy = Policy(limiter=trio.CapacityLimiter(2), timeout=5.0)

    async def work(i: int) -> None:
        with probe.track(i):
            await trio.sleep(1)

    with assert_takes(3.0):
        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(policy.call, work, i)
    assert probe.peak == 2


# -- rejections ---------------------------------------------------------------------


async def test_breaker_rejection_is_reported() -> None:
    """An open breaker's TrineError is a CallRejected(guard="breaker"); fn never runs."""
    events, hooks = recorder()
    breaker = FakeBreaker([])
    breaker.open = True
    ran: list[int] = []

    async def fn() -> None:
        ran.append(1)

    policy = Policy(breaker=breaker, name="api", hooks=hooks)
    with pytest.raises(FakeRejection) as info:
        await policy.call(fn)
    assert events == [
        CallRejected(guard="breaker", name="api", error=info.value, call=fn.__qualname__)
    ]
    assert ran == []


async def test_breaker_rejection_without_hooks_still_raises() -> None:
    """Without hooks the breaker is called directly; the rejection still reaches the caller."""
    breaker = FakeBreaker([])
    breaker.open = True

    async def fn() -> None:
        raise AssertionError("must not run")

    with pytest.raises(FakeRejection, match=r"^circuit open$"):
        await Policy(breaker=breaker).call(fn)


async def test_bulkhead_rejection_is_reported_once() -> None:
    """A refused slot is CallRejected(guard="bulkhead"), not also blamed on the breaker."""
    events, hooks = recorder()
    bulkhead = FakeBulkhead([])
    bulkhead.refuse = True

    async def fn() -> None:
        raise AssertionError("must not run")

    policy = Policy(breaker=FakeBreaker([]), limiter=bulkhead, name="api", hooks=hooks)
    with pytest.raises(FakeRejection) as info:
        await policy.call(fn)
    assert events == [
        CallRejected(guard="bulkhead", name="api", error=info.value, call=fn.__qualname__)
    ]


async def test_rate_rejection_is_reported() -> None:
    """A rate limiter refusing with a TrineError is CallRejected(guard="rate")."""
    events, hooks = recorder()
    rate = FakeRate([])
    rate.refuse = True

    async def fn() -> None:
        raise AssertionError("must not run")

    with pytest.raises(FakeRejection) as info:
        await Policy(rate=rate, hooks=hooks).call(fn)
    assert events == [CallRejected(guard="rate", name=None, error=info.value, call=fn.__qualname__)]


async def test_a_trine_error_from_fn_is_not_a_rejection() -> None:
    """fn raising a TrineError (say a downstream breaker) is not this Policy's rejection."""
    events, hooks = recorder()

    async def fn() -> None:
        raise FakeRejection("downstream")

    policy = Policy(
        breaker=FakeBreaker([]), rate=FakeRate([]), limiter=FakeBulkhead([]), hooks=hooks
    )
    with pytest.raises(FakeRejection, match=r"^downstream$"):
        await policy.call(fn)
    assert events == []


# -- call and decorator ----------------------------------------------------------------


async def test_empty_policy_calls_fn_directly() -> None:
    """Policy() has no layers and returns fn's result."""

    async def double(x: int) -> int:
        return 2 * x

    policy = Policy()
    assert policy.layers == ()
    assert await policy.call(double, 4) == 8


async def test_call_accepts_partials_and_callable_objects() -> None:
    """fn may be any callable returning an awaitable."""

    class Doubler:
        async def __call__(self, x: int) -> int:
            return 2 * x

    async def add(x: int, *, y: int) -> int:
        return x + y

    policy = Policy(timeout=1.0)
    assert await policy.call(Doubler(), 4) == 8
    assert await policy.call(functools.partial(add, y=2), 4) == 6


async def test_call_refuses_a_coroutine_object() -> None:
    """Passing fn(x) instead of fn, x is a TypeError that says what to do."""

    async def fn() -> None:
        pass

    with pytest.raises(
        TypeError,
        match=r"^fn must be an async function, got the coroutine object <coroutine object .*>: "
        r"pass the function and its arguments \(f, x\), not the result of calling it \(f\(x\)\)$",
    ):
        await Policy().call(fn())  # type: ignore[arg-type]


async def test_call_refuses_a_non_callable() -> None:
    """A non-callable fn is refused by name."""
    with pytest.raises(TypeError, match=r"^fn must be an async function, got 3$"):
        await Policy().call(3)  # type: ignore[arg-type]


async def test_decorator_preserves_the_name_and_runs_through_the_layers(
    autojump_clock: object,
) -> None:
    """@policy keeps __name__/__doc__ and applies the layers, keyword arguments included."""
    events, hooks = recorder()
    policy = Policy(timeout=1.0, fallback=lambda exc: "timed out", hooks=hooks)

    @policy
    async def fetch(url: str, *, delay: float = 0.0) -> str:
        """Fetch a URL."""
        await trio.sleep(delay)
        return f"body of {url}"

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a URL."
    assert await fetch("a") == "body of a"
    with assert_takes(1.0):
        assert await fetch("b", delay=5.0) == "timed out"
    assert events[0] == AttemptTimedOut(name=None, timeout=1.0, call=fetch.__qualname__, item="'b'")


def test_decorator_refuses_a_non_callable() -> None:
    """Decorating something that is not callable fails at decoration time."""
    with pytest.raises(TypeError, match=r"^fn must be an async function, got 3$"):
        Policy()(3)  # type: ignore[arg-type]


# -- immutability and evolve ------------------------------------------------------------


def test_policy_is_immutable() -> None:
    """A Policy cannot be changed after construction."""
    policy = Policy(timeout=1.0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.timeout = 2.0  # type: ignore[misc]


def test_evolve_shares_guards_and_revalidates() -> None:
    """evolve() derives a variant holding the same guard objects, validated again."""
    breaker = FakeBreaker([])
    limiter = trio.CapacityLimiter(3)
    policy = Policy(breaker=breaker, limiter=limiter, timeout=1.0)
    strict = policy.evolve(timeout=0.5, fallback=lambda exc: None)
    assert strict.breaker is breaker
    assert strict.limiter is limiter
    assert strict.timeout == 0.5
    assert strict.layers == ("fallback", "breaker", "limiter", "timeout")
    assert policy.layers == ("breaker", "limiter", "timeout")
    with pytest.raises(ValueError, match=r"^timeout must be > 0, got 0$"):
        policy.evolve(timeout=0)


# -- validation ------------------------------------------------------------------------


class SyncCall:
    def call(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


class KeyedHold:
    def hold(self, key: str) -> Any:
        raise AssertionError


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"retry": 3}, TypeError, r"^retry must have an async call\(fn, \*args\) method, got 3$"),
        (
            {"retry": FakeRetry},
            TypeError,
            r"^retry must have an async call\(fn, \*args\) method, got <class '.*FakeRetry'>$",
        ),
        (
            {"breaker": SyncCall()},
            TypeError,
            r"^breaker must have an async call\(fn, \*args\) method, got <.*SyncCall object .*>$",
        ),
        ({"rate": 3}, TypeError, r"^rate must have an async acquire\(\) method, got 3$"),
        (
            {"limiter": 3},
            TypeError,
            r"^limiter must be a limiter \(an object with a hold\(\) method, or a "
            r"trio.CapacityLimiter, trio.Semaphore or trio.Lock\), got 3$",
        ),
        (
            {"limiter": KeyedHold()},
            TypeError,
            r"^limiter must be a limiter whose hold\(\) takes no arguments, "
            r"got <.*KeyedHold object .*>$",
        ),
        ({"timeout": 0}, ValueError, r"^timeout must be > 0, got 0$"),
        ({"timeout": -1.5}, ValueError, r"^timeout must be > 0, got -1.5$"),
        ({"timeout": "1"}, TypeError, r"^timeout must be a number, got '1'$"),
        ({"total_timeout": math.nan}, ValueError, r"^total_timeout must not be NaN, got nan$"),
        ({"total_timeout": 0.0}, ValueError, r"^total_timeout must be > 0, got 0.0$"),
        (
            {"fallback": 3},
            TypeError,
            r"^fallback must be a callable taking the exception, got 3$",
        ),
        (
            {"fallback_on": KeyboardInterrupt},
            TypeError,
            r"^fallback_on must contain only Exception subclasses, got "
            r"<class 'KeyboardInterrupt'>: trio.Cancelled and other BaseExceptions never reach it$",
        ),
        (
            {"fallback_on": (ValueError, 3)},
            TypeError,
            r"^fallback_on must contain only exception classes, got 3$",
        ),
        ({"name": 3}, TypeError, r"^name must be a str or None, got 3$"),
        (
            {"hooks": print},
            TypeError,
            r"^hooks must be a sequence of callables, got the single callable "
            r"<built-in function print>$",
        ),
        ({"hooks": [3]}, TypeError, r"^hooks must contain only callables, got 3$"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every argument is validated at construction, the message naming it."""
    with pytest.raises(error, match=message):
        Policy(**kwargs)


def test_a_coroutine_object_as_fallback_is_refused_and_closed() -> None:
    """fallback=f(x) is refused with advice, and the coroutine is closed (no warning)."""

    async def fallback(exc: Exception) -> None:
        pass

    with pytest.raises(
        TypeError,
        match=r"^fallback must be a callable taking the exception, got the coroutine object "
        r"<coroutine object .*>: pass the function, not the result of calling it$",
    ):
        Policy(fallback=fallback(ValueError()))  # type: ignore[arg-type]


def test_infinite_timeouts_are_allowed() -> None:
    """math.inf means no deadline, as in Trio."""
    assert Policy(timeout=math.inf, total_timeout=math.inf).layers == ("total_timeout", "timeout")


# -- property: slots and outcomes under timeouts and cancellation -------------------------


def record_and_answer(seen: list[BaseException], exc: Exception) -> str:
    seen.append(exc)
    return "timed out"


@given(
    durations=st.lists(st.integers(0, 12), min_size=1, max_size=8),
    capacity=st.integers(1, 3),
    timeout_quarters=st.integers(1, 8),
    cancel_quarters=st.integers(0, 40),
)
def test_every_call_ends_by_its_own_deadline_and_releases_its_slot(
    durations: list[int], capacity: int, timeout_quarters: int, cancel_quarters: int
) -> None:
    """Whatever the timing and wherever a cancellation lands: each finished call
    took its duration (if under the timeout) or timed out exactly timeout after
    getting its slot; no slot stays borrowed and the fallback never sees Cancelled."""
    timeout = timeout_quarters / 4 + 0.125  # never equal to a duration: no ties
    cancel_at = cancel_quarters / 4 + 0.0625

    async def main() -> None:
        limiter = trio.CapacityLimiter(capacity)
        seen_by_fallback: list[BaseException] = []
        policy = Policy(
            limiter=limiter,
            timeout=timeout,
            fallback=functools.partial(record_and_answer, seen_by_fallback),
        )
        results: dict[int, tuple[str, float, float]] = {}

        async def work(i: int) -> str:
            started = trio.current_time()
            results[i] = ("started", started, math.nan)
            await trio.sleep(durations[i] / 4)
            return "done"

        async def one(i: int) -> None:
            value = await policy.call(work, i)
            _, started, _ = results[i]
            results[i] = (value, started, trio.current_time())

        start = trio.current_time()
        with trio.move_on_at(start + cancel_at):
            async with trio.open_nursery() as nursery:
                for i in range(len(durations)):
                    nursery.start_soon(one, i)
        assert limiter.statistics().borrowed_tokens == 0
        assert limiter.statistics().tasks_waiting == 0
        assert all(isinstance(exc, trio.TooSlowError) for exc in seen_by_fallback)
        for i, (value, started, ended) in results.items():
            if value == "started":
                continue  # cancelled while running
            if durations[i] / 4 < timeout:
                assert value == "done"
                assert ended - started == pytest.approx(durations[i] / 4)
            else:
                assert value == "timed out"
                assert ended - started == pytest.approx(timeout)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_policy_is_public() -> None:
    """Policy is exported from trine and reports trine as its module."""
    assert trine.Policy is Policy
    assert Policy.__module__ == "trine"
