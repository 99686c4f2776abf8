"""Retry, Backoff and RetryBudget: exact times on the fake clock, errors, hooks, properties."""

from __future__ import annotations

import contextlib
import random
import re
import traceback
from collections.abc import Callable
from itertools import islice

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine import Backoff, Retry, RetryBudget, RetryGaveUp, RetryScheduled
from trine._util import NotAwaitableError
from trine.testing import assert_takes


class Flaky:
    """An async callable that fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException, duration: float = 0.0) -> None:
        self.errors = list(errors)
        self.duration = duration
        self.starts: list[float] = []

    async def __call__(self, *args: object) -> str:
        self.starts.append(trio.current_time())
        if self.duration:
            await trio.sleep(self.duration)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Down(Exception):
    """The service is down (a specific class, so pytest.raises is precise)."""


class Busy(Exception):
    """An error carrying a ``retry_after`` hint, like an HTTP 429."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"busy for {retry_after}")
        self.retry_after = retry_after


def always(error: BaseException) -> Callable[[], object]:
    async def fail() -> None:
        raise error

    return fail


# --------------------------------------------------------------------------- call()


async def test_constant_backoff_gives_up_at_exactly_the_last_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Constant 1 s, 3 attempts: attempts at 0, 1, 2; the last error is re-raised at 2 s."""
    retry = Retry(3, backoff=Backoff.constant(1.0))
    flaky = Flaky(Down("a"), Down("b"), Down("c"), Down("d"))
    with assert_takes(2.0), pytest.raises(Down) as caught:
        await retry.call(flaky)
    assert flaky.starts == [0.0, 1.0, 2.0]
    assert str(caught.value) == "c"
    assert caught.value.__notes__ == ["trine.Retry: gave up after 3 attempts"]
    assert retry.statistics() == trine.RetryStatistics(
        calls=1, attempts=3, retries=2, give_ups=1, budget_refusals=0
    )


async def test_success_after_failures_returns_the_value(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A success ends the retrying and its value is returned; args are passed through."""
    retry = Retry(5, backoff=Backoff.constant(0.5))
    flaky = Flaky(ValueError(), ValueError())
    with assert_takes(1.0):
        assert await retry.call(flaky, 1, 2) == "ok"
    assert retry.statistics() == trine.RetryStatistics(
        calls=1, attempts=3, retries=2, give_ups=0, budget_refusals=0
    )


async def test_the_same_object_is_reraised_with_its_traceback() -> None:
    """Give-up re-raises the last error object itself, with the frame that raised it."""
    error = KeyError("gone")

    async def raise_it() -> None:
        raise error

    retry = Retry(2, backoff=Backoff.constant(0))
    with pytest.raises(KeyError) as caught:
        await retry.call(raise_it)
    assert caught.value is error
    assert "raise_it" in [frame.name for frame in traceback.extract_tb(error.__traceback__)]


async def test_no_duplicate_note_when_the_same_object_is_raised_again() -> None:
    """One object raised by every attempt, and by two calls, carries the note once."""
    error = Down("same")
    retry = Retry(3, backoff=Backoff.constant(0))
    for _ in range(2):
        with pytest.raises(Down):
            await retry.call(always(error))
    assert error.__notes__ == ["trine.Retry: gave up after 3 attempts"]


async def test_one_attempt_note_is_singular() -> None:
    """attempts=1 never retries; the note says "1 attempt"."""
    with pytest.raises(Down) as caught:
        await Retry(1).call(always(Down()))
    assert caught.value.__notes__ == ["trine.Retry: gave up after 1 attempt"]


async def test_name_appears_in_the_note() -> None:
    """A named Retry says which one gave up."""
    with pytest.raises(Down) as caught:
        await Retry(2, name="db", backoff=Backoff.constant(0)).call(always(Down()))
    assert caught.value.__notes__ == ["trine.Retry 'db': gave up after 2 attempts"]


async def test_call_refuses_a_coroutine_object() -> None:
    """retry.call(f()) is refused with the usual message (and the coroutine is closed)."""

    async def job() -> None:
        pass

    with pytest.raises(TypeError, match=r"^fn must be an async function, got the coroutine object"):
        await Retry().call(job())  # type: ignore[arg-type]


def _sync_function(*args: object) -> int:
    return 1


def _generator_function() -> object:
    yield 1


@pytest.mark.parametrize(
    ("function", "returned"),
    [
        (_sync_function, "1, an int: define it with async def"),
        (_generator_function, "a generator: a function with yield is a generator function"),
    ],
)
@pytest.mark.parametrize("total", [None, 5.0])
async def test_issue11_a_function_that_is_not_async_is_never_retried(
    function: Callable[[], object], returned: str, total: float | None
) -> None:
    """call() and the decorator raise NotAwaitableError naming fn, after one attempt: no
    retry, no give-up, no note, no hook (a programming error, not a failure)."""
    events: list[object] = []
    retry = Retry(attempts=3, backoff=Backoff.constant(0), timeout=total, hooks=[events.append])
    message = rf"^fn must be an async function, but calling it returned {re.escape(returned)}"
    with pytest.raises(NotAwaitableError, match=message) as raised:
        await retry.call(function)  # type: ignore[arg-type]
    assert not getattr(raised.value, "__notes__", None)
    with pytest.raises(NotAwaitableError, match=message):
        await retry(function)()  # type: ignore[arg-type]
    statistics = retry.statistics()
    assert (statistics.calls, statistics.attempts, statistics.retries) == (2, 2, 0)
    assert (statistics.give_ups, events) == (0, [])


async def test_issue11_async_for_awaiting_a_sync_function_is_never_retried() -> None:
    """`await fn()` of a sync fn in the block: NotAwaitableError out of the with, one attempt."""
    retry = Retry(attempts=3, backoff=Backoff.constant(0))
    attempts = 0

    async def block() -> None:
        nonlocal attempts
        async for attempt in retry:
            with attempt:
                attempts += 1
                await _sync_function()  # type: ignore[misc]

    with pytest.raises(
        NotAwaitableError,
        match=r"^the block of `async for attempt in retry:` awaited something that cannot be "
        r"awaited \(object int can't be used in 'await' expression\): the function it calls "
        r"must be defined with async def$",
    ) as raised:
        await block()
    assert isinstance(raised.value.__cause__, TypeError)
    assert (attempts, retry.statistics().give_ups) == (1, 0)


async def test_issue11_a_type_error_from_inside_the_block_is_an_ordinary_failure() -> None:
    """A TypeError raised deeper than the block's own await is retried as any error is."""

    async def broken() -> None:
        raise TypeError("object int can't be used in 'await' expression")

    retry = Retry(attempts=2, backoff=Backoff.constant(0))

    async def block() -> None:
        async for attempt in retry:
            with attempt:
                await broken()

    with pytest.raises(TypeError, match=r"can't be used") as raised:
        await block()
    assert not isinstance(raised.value, NotAwaitableError)
    assert retry.statistics().attempts == 2


# --------------------------------------------------------------------------- decorator


async def test_decorator_retries_and_keeps_the_function_metadata(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """@retry wraps the function (name, doc) and retries each call, kwargs included."""
    retry = Retry(3, backoff=Backoff.constant(1.0))
    flaky = Flaky(Down())

    @retry
    async def fetch(url: str, *, limit: float = 1.0) -> str:
        """Fetch a thing."""
        return await flaky(url, limit)

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a thing."
    with assert_takes(1.0):
        assert await fetch("x", limit=2.0) == "ok"
    assert retry.statistics().retries == 1


async def test_decorator_gives_up_with_the_note() -> None:
    """A decorated function that always fails re-raises with the note."""

    @Retry(2, backoff=Backoff.constant(0))
    async def broken() -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError) as caught:
        await broken()
    assert str(caught.value) == "no"
    assert caught.value.__notes__ == ["trine.Retry: gave up after 2 attempts"]


# --------------------------------------------------------------------------- async for


async def test_async_for_retries_the_block(autojump_clock: trio.testing.MockClock) -> None:
    """`with attempt:` swallows a retryable error, the loop sleeps, and a success ends it."""
    retry = Retry(4, backoff=Backoff.constant(1.0))
    flaky = Flaky(Down(), Down())
    numbers = []
    with assert_takes(2.0):
        async for attempt in retry:
            numbers.append(attempt.number)
            with attempt:
                result = await flaky()
    assert result == "ok"
    assert numbers == [1, 2, 3]
    assert repr(attempt) == "<trine.RetryAttempt number=3>"
    assert retry.statistics() == trine.RetryStatistics(
        calls=1, attempts=3, retries=2, give_ups=0, budget_refusals=0
    )


async def test_async_for_gives_up_from_the_with(autojump_clock: trio.testing.MockClock) -> None:
    """Giving up lets the last error out of `with attempt:` with its note, at the right time."""
    flaky = Flaky(Down("1"), Down("2"), Down("3"))

    async def loop() -> None:
        async for attempt in Retry(3, backoff=Backoff.constant(1.0)):
            with attempt:
                await flaky()

    with assert_takes(2.0), pytest.raises(Down) as caught:
        await loop()
    assert str(caught.value) == "3"
    assert caught.value.__notes__ == ["trine.Retry: gave up after 3 attempts"]


async def test_async_for_needs_with_attempt() -> None:
    """Skipping `with attempt:` is a loud mistake, not a silent success."""
    with pytest.raises(RuntimeError, match=r"^the body of `async for attempt in retry:` must"):
        async for _attempt in Retry(3):
            pass


async def test_async_for_attempt_enters_once() -> None:
    """An attempt is a one-shot context manager."""
    async for attempt in Retry(3):
        with attempt:
            pass
        with (
            pytest.raises(RuntimeError, match=r"^a RetryAttempt can be entered only once$"),
            attempt,
        ):
            pass


async def test_retry_attempt_has_no_public_constructor() -> None:
    """Only the loop creates attempts."""
    with pytest.raises(TypeError, match=r"^trine.RetryAttempt has no public constructor$"):
        trine.RetryAttempt()


# --------------------------------------------------------------------------- cancellation


async def test_cancel_during_an_attempt_is_not_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A Cancelled inside an attempt propagates at once: no retry, no give-up, no hook."""
    events: list[trine.GuardEvent] = []
    retry = Retry(3, backoff=Backoff.constant(0), hooks=[events.append])
    flaky = Flaky(duration=10.0)
    with assert_takes(0.5), trio.move_on_after(0.5) as scope:
        await retry.call(flaky)
    assert scope.cancelled_caught
    assert flaky.starts == [0.0]
    assert events == []
    assert retry.statistics() == trine.RetryStatistics(
        calls=1, attempts=1, retries=0, give_ups=0, budget_refusals=0
    )


async def test_cancel_during_the_backoff_sleep_propagates_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A Cancelled during the sleep ends the call at that moment; no retry is counted."""
    error = Down()
    events: list[trine.GuardEvent] = []
    retry = Retry(3, backoff=Backoff.constant(1.0), hooks=[events.append])
    with assert_takes(0.5), trio.move_on_after(0.5) as scope:
        await retry.call(always(error))
    assert scope.cancelled_caught
    assert events == [RetryScheduled(None, 1, 1.0, error, "always.<locals>.fail")]
    assert retry.statistics().retries == 0
    assert retry.statistics().give_ups == 0


async def test_cancel_during_the_async_for_sleep(autojump_clock: trio.testing.MockClock) -> None:
    """In the loop form, too, a cancelled backoff sleep ends everything at once."""
    retry = Retry(3, backoff=Backoff.constant(1.0))
    with assert_takes(0.25), trio.move_on_after(0.25) as scope:
        async for attempt in retry:
            with attempt:
                raise Down
    assert scope.cancelled_caught
    assert retry.statistics().attempts == 1


async def test_base_exceptions_are_never_retried() -> None:
    """A BaseException that is not an Exception passes at once, even with a catch-all predicate."""

    class Interrupt(BaseException):
        pass

    flaky = Flaky(Interrupt())
    with pytest.raises(Interrupt) as caught:
        await Retry(3, on=lambda exc: True).call(flaky)
    assert not hasattr(caught.value, "__notes__")
    assert len(flaky.starts) == 1


async def test_a_base_exception_group_is_never_retried() -> None:
    """A group holding a BaseException (say, a Cancelled from a nursery) propagates unchanged."""
    group = BaseExceptionGroup("g", [ValueError(), KeyboardInterrupt()])
    flaky = Flaky(group)
    with pytest.raises(BaseExceptionGroup) as caught:
        await Retry(3, backoff=Backoff.constant(0)).call(flaky)
    assert caught.value is group
    assert len(flaky.starts) == 1


# --------------------------------------------------------------------------- on=


async def test_on_a_class_retries_only_that_class() -> None:
    """An error outside `on` propagates at once, unchanged (no note), reported as not_retryable."""
    events: list[trine.GuardEvent] = []
    error = KeyError("k")
    flaky = Flaky(ValueError(), error)
    retry = Retry(5, on=ValueError, backoff=Backoff.constant(0), hooks=[events.append])
    with pytest.raises(KeyError) as caught:
        await retry.call(flaky)
    assert caught.value is error
    assert not hasattr(error, "__notes__")
    assert len(flaky.starts) == 2
    assert events[-1] == RetryGaveUp(None, 2, error, "not_retryable", "Flaky")
    assert retry.statistics().give_ups == 1


async def test_on_a_tuple() -> None:
    """Every class of the tuple is retried."""
    flaky = Flaky(ValueError(), KeyError(), Down())
    with pytest.raises(Down):
        await Retry(5, on=(ValueError, KeyError), backoff=Backoff.constant(0)).call(flaky)
    assert len(flaky.starts) == 3


async def test_on_a_predicate() -> None:
    """A predicate sees the exception and decides."""
    seen: list[Exception] = []

    def transient(exc: Exception) -> bool:
        seen.append(exc)
        return "transient" in str(exc)

    flaky = Flaky(Down("transient"), Down("fatal"))
    with pytest.raises(Down, match=r"^fatal$") as caught:
        await Retry(5, on=transient, backoff=Backoff.constant(0)).call(flaky)
    assert not hasattr(caught.value, "__notes__")
    assert [str(exc) for exc in seen] == ["transient", "fatal"]


async def test_on_a_predicate_that_returns_a_coroutine_is_refused_not_retried() -> None:
    """Regression (audit): ``on=lambda exc: check(exc)`` with an async ``check`` was truthy,
    so every error was retried; now the first error's check is a TypeError (coroutine closed)."""

    async def check(exc: BaseException) -> bool:
        return False

    flaky = Flaky(Down("first"), Down("second"))
    with pytest.raises(TypeError, match=r"^on must be a plain function, but calling it ") as info:
        await Retry(5, on=lambda exc: check(exc), backoff=Backoff.constant(0)).call(flaky)
    assert isinstance(info.value.__context__, Down)
    assert len(flaky.starts) == 1


async def test_exception_group_matches_only_if_every_leaf_does() -> None:
    """Like except*: a group of retryable leaves is retried, a mixed group is not."""
    retryable = ExceptionGroup("g", [ValueError(), ExceptionGroup("h", [ValueError()])])
    mixed = ExceptionGroup("m", [ValueError(), KeyError()])
    flaky = Flaky(retryable, mixed)
    with pytest.raises(ExceptionGroup) as caught:
        await Retry(5, on=ValueError, backoff=Backoff.constant(0)).call(flaky)
    assert caught.value is mixed
    assert len(flaky.starts) == 2


async def test_exception_group_matches_its_own_class() -> None:
    """on=ExceptionGroup retries any group, whatever its leaves."""
    flaky = Flaky(ExceptionGroup("g", [KeyError()]))
    assert await Retry(2, on=ExceptionGroup, backoff=Backoff.constant(0)).call(flaky) == "ok"


# --------------------------------------------------------------------------- retry_after


async def test_retry_after_is_honoured(autojump_clock: trio.testing.MockClock) -> None:
    """A retry_after longer than the backoff delay is waited instead."""
    backoff = Backoff.exponential(initial=1.0, maximum=5.0, jitter=None)
    flaky = Flaky(Busy(3.0), Busy(0.5))
    with assert_takes(3.0 + 2.0):
        await Retry(3, backoff=backoff).call(flaky)
    assert flaky.starts == [0.0, 3.0, 5.0]


async def test_retry_after_is_capped_by_the_backoff_maximum(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A huge retry_after waits only backoff.maximum."""
    backoff = Backoff.exponential(initial=1.0, maximum=5.0, jitter=None)
    with assert_takes(5.0):
        await Retry(2, backoff=backoff).call(Flaky(Busy(1000.0)))


async def test_retry_after_past_the_timeout_gives_up_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """If retry_after would pass the deadline, the error is re-raised immediately."""
    events: list[trine.GuardEvent] = []
    backoff = Backoff.exponential(initial=1.0, maximum=5.0, jitter=None)
    error = Busy(4.0)
    retry = Retry(3, backoff=backoff, timeout=3.0, hooks=[events.append])
    with assert_takes(0.0), pytest.raises(Busy) as caught:
        await retry.call(Flaky(error))
    assert caught.value is error
    assert error.__notes__ == [
        "trine.Retry: gave up after 1 attempt: the next would start after the 3 s timeout"
    ]
    assert events == [RetryGaveUp(None, 1, error, "timeout", "Flaky")]


async def test_nonsense_retry_after_is_ignored(autojump_clock: trio.testing.MockClock) -> None:
    """A retry_after that is not a finite, positive number does not change the delay."""
    for hint in (-1.0, float("nan"), "soon", True):
        error = Down()
        error.retry_after = hint  # type: ignore[attr-defined]
        with assert_takes(1.0):
            await Retry(2, backoff=Backoff.constant(1.0)).call(Flaky(error))


# --------------------------------------------------------------------------- timeout


async def test_timeout_gives_up_before_a_sleep_that_would_pass_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Instant failures, constant 1 s, timeout 2.5 s: attempts at 0, 1, 2, give-up at 2."""
    error = Down("last")
    flaky = Flaky(Down(), Down(), error)
    with assert_takes(2.0), pytest.raises(Down) as caught:
        await Retry(10, backoff=Backoff.constant(1.0), timeout=2.5).call(flaky)
    assert caught.value is error
    assert flaky.starts == [0.0, 1.0, 2.0]
    assert error.__notes__ == [
        "trine.Retry: gave up after 3 attempts: the next would start after the 2.5 s timeout"
    ]


async def test_timeout_during_an_attempt_raises_too_slow_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An attempt running at the deadline is cancelled: TooSlowError at exactly the deadline."""
    events: list[trine.GuardEvent] = []
    first = Down("first")
    flaky = Flaky(first, duration=1.0)
    retry = Retry(5, backoff=Backoff.constant(0.5), timeout=2.2, hooks=[events.append])
    with assert_takes(2.2), pytest.raises(trio.TooSlowError) as caught:
        await retry.call(flaky)
    assert str(caught.value) == "trine.Retry: the 2.2 s timeout passed during attempt 2"
    assert caught.value.__cause__ is first
    assert flaky.starts == [0.0, 1.5]
    assert events == [
        RetryScheduled(None, 1, 0.5, first, "Flaky"),
        RetryGaveUp(None, 2, caught.value, "timeout", "Flaky"),
    ]
    assert retry.statistics() == trine.RetryStatistics(
        calls=1, attempts=2, retries=1, give_ups=1, budget_refusals=0
    )


async def test_timeout_during_the_first_attempt_has_no_cause(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With no earlier error, the TooSlowError has no cause."""
    with assert_takes(1.0), pytest.raises(trio.TooSlowError) as caught:
        await Retry(3, timeout=1.0).call(Flaky(duration=5.0))
    assert caught.value.__cause__ is None


async def test_timeout_in_the_async_for_form(autojump_clock: trio.testing.MockClock) -> None:
    """The loop's `with attempt:` runs under the call's deadline and raises TooSlowError."""
    flaky = Flaky(Down(), duration=1.0)

    async def loop() -> None:
        async for attempt in Retry(5, backoff=Backoff.constant(0.25), timeout=1.5):
            with attempt:
                await flaky()

    with assert_takes(1.5), pytest.raises(trio.TooSlowError):
        await loop()
    assert flaky.starts == [0.0, 1.25]


async def test_outer_cancellation_with_a_timeout_is_not_too_slow(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A cancel from outside, before the deadline, stays a Cancelled."""
    with trio.move_on_after(1.0) as scope:
        await Retry(3, timeout=10.0).call(Flaky(duration=5.0))
    assert scope.cancelled_caught


# --------------------------------------------------------------------------- budget


async def test_budget_refusal_gives_up_at_once(autojump_clock: trio.testing.MockClock) -> None:
    """With one retry in the budget, the second retry is refused and the error re-raised."""
    events: list[trine.GuardEvent] = []
    budget = RetryBudget(ratio=0.0, min_per_second=0.1, window=10.0)
    retry = Retry(3, backoff=Backoff.constant(1.0), budget=budget, hooks=[events.append])
    error = Down("down")
    with assert_takes(1.0), pytest.raises(Down) as caught:
        await retry.call(always(error))
    assert caught.value is error
    assert error.__notes__ == [
        "trine.Retry: gave up after 2 attempts: the retry budget is exhausted"
    ]
    assert events == [
        RetryScheduled(None, 1, 1.0, error, "always.<locals>.fail"),
        RetryGaveUp(None, 2, error, "budget", "always.<locals>.fail"),
    ]
    assert retry.statistics() == trine.RetryStatistics(
        calls=1, attempts=2, retries=1, give_ups=1, budget_refusals=1
    )
    assert budget.statistics() == trine.RetryBudgetStatistics(
        requests=1, retries=1, balance=0.0, refusals=1
    )


async def test_budget_is_shared_and_ratio_earns_retries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Five successful calls through one Retry earn a 0.2-ratio budget exactly one retry."""
    budget = RetryBudget(ratio=0.2, min_per_second=0.0)
    ok = Retry(1, budget=budget)
    failing = Retry(3, backoff=Backoff.constant(0), budget=budget)
    for _ in range(4):
        await ok.call(Flaky())
    with pytest.raises(Down):
        await failing.call(always(Down()))
    assert failing.statistics().retries == 1
    assert budget.statistics() == trine.RetryBudgetStatistics(
        requests=5, retries=1, balance=0.0, refusals=1
    )


async def test_budget_window_forgets_old_traffic(autojump_clock: trio.testing.MockClock) -> None:
    """Retries and requests older than the window no longer count."""
    budget = RetryBudget(ratio=0.0, min_per_second=0.1, window=10.0)
    assert budget.try_withdraw()
    assert not budget.try_withdraw()
    await trio.sleep(9.999)
    assert not budget.try_withdraw()
    await trio.sleep(0.001)
    assert budget.try_withdraw()
    assert budget.statistics().refusals == 2


# --------------------------------------------------------------------------- hooks, rng, config


async def test_hooks_receive_exact_events(autojump_clock: trio.testing.MockClock) -> None:
    """Each failure before a retry is reported with its delay; the give-up with its reason."""
    events: list[trine.GuardEvent] = []
    errors = [Down("1"), Down("2"), Down("3")]
    backoff = Backoff.exponential(initial=1.0, jitter=None)
    retry = Retry(3, backoff=backoff, name="svc", hooks=[events.append])
    with pytest.raises(Down):
        await retry.call(Flaky(*errors))
    assert events == [
        RetryScheduled("svc", 1, 1.0, errors[0], "Flaky"),
        RetryScheduled("svc", 2, 2.0, errors[1], "Flaky"),
        RetryGaveUp("svc", 3, errors[2], "attempts", "Flaky"),
    ]


async def test_seeded_rng_replays_the_delays(autojump_clock: trio.testing.MockClock) -> None:
    """Two Retrys with equally seeded generators sleep exactly the same delays."""
    runs: list[list[float]] = []
    for _ in range(2):
        events: list[trine.GuardEvent] = []
        retry = Retry(6, rng=random.Random(42), hooks=[events.append])
        with pytest.raises(Down):
            await retry.call(always(Down()))
        runs.append([event.delay for event in events if isinstance(event, RetryScheduled)])
    assert runs[0] == runs[1]
    assert len(runs[0]) == 5
    expected = list(islice(Backoff.exponential().delays(random.Random(42)), 5))
    assert runs[0] == expected


def test_configuration_is_immutable() -> None:
    """A Retry's settings cannot be changed after construction."""
    retry = Retry()
    with pytest.raises(attrs.exceptions.FrozenAttributeError):
        retry.attempts = 5  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenAttributeError):
        RetryBudget().ratio = 1.0  # type: ignore[misc]


def test_repr_shows_the_configuration() -> None:
    """The repr names the settings, not the counters."""
    text = repr(Retry(2, backoff=Backoff.constant(1.0), name="x"))
    assert text.startswith("Retry(attempts=2, on=(<class 'Exception'>,), backoff=")
    assert "name='x'" in text


def test_exponential_without_jitter_is_exact() -> None:
    """No jitter: initial * multiplier ** n, capped at maximum."""
    backoff = Backoff.exponential(initial=1.0, maximum=10.0, multiplier=2.0, jitter=None)
    assert list(islice(backoff.delays(), 6)) == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert backoff.delay(5000, 0.0, random.Random()) == 10.0  # no OverflowError


def test_constant_is_constant() -> None:
    """Backoff.constant(d) always waits d."""
    assert list(islice(Backoff.constant(0.3).delays(), 3)) == [0.3, 0.3, 0.3]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"attempts": 0}, ValueError, "attempts must be >= 1, got 0"),
        ({"attempts": 2.0}, TypeError, "attempts must be an int, got 2.0"),
        ({"on": ()}, ValueError, "on must not be an empty tuple: it would match nothing"),
        ({"on": (int,)}, TypeError, "on must contain only exception classes, got <class 'int'>"),
        (
            {"on": KeyboardInterrupt},
            TypeError,
            "on must contain only Exception subclasses, got <class 'KeyboardInterrupt'>: "
            "trio.Cancelled and other BaseExceptions never reach it",
        ),
        (
            {"on": 5},
            TypeError,
            "on must be an exception class, a tuple of them, or a predicate, got 5",
        ),
        ({"backoff": 1.0}, TypeError, "backoff must be a trine.Backoff, got 1.0"),
        ({"budget": 0.2}, TypeError, "budget must be a trine.RetryBudget or None, got 0.2"),
        ({"timeout": 0}, ValueError, "timeout must be > 0, got 0"),
        ({"timeout": float("inf")}, ValueError, "timeout must be finite, got inf"),
        ({"rng": 5}, TypeError, "rng must be a random.Random, got 5"),
        ({"name": 5}, TypeError, "name must be a str or None, got 5"),
        ({"hooks": [3]}, TypeError, "hooks must contain only callables, got 3"),
    ],
)
def test_retry_validates_its_arguments(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    """Every argument is checked at construction, with a message naming it."""
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        Retry(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factory", "error", "message"),
    [
        (lambda: Backoff.exponential(initial=-1), ValueError, "initial must be >= 0, got -1"),
        (
            lambda: Backoff.exponential(initial=2, maximum=1),
            ValueError,
            "maximum must be >= initial (2), got 1",
        ),
        (lambda: Backoff.exponential(maximum="x"), TypeError, "maximum must be a number, got 'x'"),
        (
            lambda: Backoff.exponential(multiplier=0.5),
            ValueError,
            "multiplier must be >= 1, got 0.5",
        ),
        (
            lambda: Backoff.exponential(jitter="half"),
            ValueError,
            "jitter must be one of 'full', 'equal', None, got 'half'",
        ),
        (lambda: Backoff.decorrelated(initial=0), ValueError, "initial must be > 0, got 0"),
        (
            lambda: Backoff.decorrelated(initial=1, maximum=0.5),
            ValueError,
            "maximum must be >= initial (1), got 0.5",
        ),
        (lambda: Backoff.constant(-1), ValueError, "delay must be >= 0, got -1"),
        (lambda: Backoff.constant(float("nan")), ValueError, "delay must not be NaN, got nan"),
        (lambda: Backoff(), TypeError, "trine.Backoff has no public constructor"),
        (
            lambda: Backoff.constant(1).delays(rng=3),
            TypeError,
            "rng must be a random.Random, got 3",
        ),
        (lambda: RetryBudget(ratio=-0.1), ValueError, "ratio must be >= 0, got -0.1"),
        (
            lambda: RetryBudget(min_per_second=None),
            TypeError,
            "min_per_second must be a number, got None",
        ),
        (lambda: RetryBudget(window=0), ValueError, "window must be > 0, got 0"),
        (lambda: RetryBudget(buckets=0), ValueError, "buckets must be >= 1, got 0"),
        (  # regression (audit): an OverflowError at the first deposit
            lambda: RetryBudget(window=1e-320),
            ValueError,
            "window must be >= 5.56e-293, got 1e-320: the clock is divided by window / 10",
        ),
        (  # regression (audit): Backoff.delay checked nothing
            lambda: Backoff.exponential().delay(-1, 0.1, random.Random()),
            ValueError,
            "retry must be >= 0, got -1",
        ),
        (
            lambda: Backoff.exponential().delay(1.5, 0.1, random.Random()),  # type: ignore[arg-type]
            TypeError,
            "retry must be an int, got 1.5",
        ),
        (
            lambda: Backoff.decorrelated().delay(0, -0.1, random.Random()),
            ValueError,
            "previous must be >= 0, got -0.1",
        ),
        (
            lambda: Backoff.exponential().delay(0, 0.1, None),  # type: ignore[arg-type]
            TypeError,
            "rng must be a random.Random, got None",
        ),
    ],
)
def test_backoff_and_budget_validate_their_arguments(
    factory: Callable[[], object], error: type[Exception], message: str
) -> None:
    """Backoff factories and RetryBudget check every argument."""
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        factory()


# --------------------------------------------------------------------------- properties


backoffs = st.one_of(
    st.builds(
        Backoff.exponential,
        initial=st.floats(0.0, 5.0),
        maximum=st.floats(5.0, 100.0),
        multiplier=st.floats(1.0, 4.0),
        jitter=st.sampled_from(["full", "equal", None]),
    ),
    st.builds(Backoff.decorrelated, initial=st.floats(0.001, 5.0), maximum=st.floats(5.0, 100.0)),
    st.builds(Backoff.constant, st.floats(0.0, 100.0)),
)


@given(backoff=backoffs, seed=st.integers(0, 2**32), count=st.integers(1, 80))
def test_every_delay_stays_within_its_formula_bounds(
    backoff: Backoff, seed: int, count: int
) -> None:
    """For all retries: 0 <= d <= maximum and each kind's own jitter bounds."""
    previous = backoff.initial
    for n, delay in enumerate(islice(backoff.delays(random.Random(seed)), count)):
        assert 0.0 <= delay <= backoff.maximum
        if backoff.kind == "constant":
            assert delay == backoff.initial
        elif backoff.kind == "decorrelated":
            assert backoff.initial <= delay <= min(backoff.maximum, 3 * previous)
        else:
            try:
                ceiling = min(backoff.maximum, backoff.initial * backoff.multiplier**n)
            except OverflowError:
                ceiling = backoff.maximum
            if backoff.jitter == "full":
                assert 0.0 <= delay <= ceiling
            elif backoff.jitter == "equal":
                assert ceiling / 2 <= delay <= ceiling
            else:
                assert delay == ceiling
        previous = delay


@given(backoff=backoffs, seed=st.integers(0, 2**32))
def test_same_seed_same_sequence(backoff: Backoff, seed: int) -> None:
    """Delays are a pure function of the backoff and the seed."""
    first = list(islice(backoff.delays(random.Random(seed)), 30))
    second = list(islice(backoff.delays(random.Random(seed)), 30))
    assert first == second


# Traffic on a 10 s window of ten 1 s buckets, at quarter-second times (exact floats).
traffic = st.lists(
    st.tuples(st.integers(0, 12), st.sampled_from(["request", "retry"])), max_size=300
)


@given(
    events=traffic,
    ratio=st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0]),
    min_per_second=st.sampled_from([0.0, 0.1, 0.3, 1.0]),
)
def test_budget_allows_exactly_what_its_bound_allows(
    events: list[tuple[int, str]], ratio: float, min_per_second: float
) -> None:
    """Every retry allowed keeps the bucket window within the bound; every refusal was needed.

    And in plain time: at each allowed retry time t, retries in [t - 9, t] are at
    most ratio * requests in (t - 10, t] + min_per_second * 10.
    """
    window, width = 10.0, 1.0
    log: list[tuple[float, str, bool]] = []

    async def main() -> None:
        budget = RetryBudget(ratio, min_per_second, window, buckets=10)
        for gap, kind in events:
            await trio.sleep(gap * 0.25)
            if kind == "request":
                budget.deposit()
                log.append((trio.current_time(), "request", True))
            else:
                log.append((trio.current_time(), "retry", budget.try_withdraw()))

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    reserve = min_per_second * window
    for index, (time, kind, allowed) in enumerate(log):
        if kind != "retry":
            continue
        before = log[:index]
        bucket = time // width
        in_buckets = [(t, k, a) for t, k, a in before if t // width > bucket - 10]
        requests = sum(1 for _, k, _ in in_buckets if k == "request")
        retries = sum(1 for _, k, a in in_buckets if k == "retry" and a)
        assert allowed == (retries + 1 <= ratio * requests + reserve)
        if allowed:
            recent = [(t, k, a) for t, k, a in log[: index + 1] if t >= time - (window - width)]
            older = [(t, k, a) for t, k, a in before if t > time - window]
            retries_recent = sum(1 for _, k, a in recent if k == "retry" and a)
            requests_window = sum(1 for _, k, _ in older if k == "request")
            assert retries_recent <= ratio * requests_window + reserve


@given(
    calls=st.lists(
        st.tuples(
            st.integers(0, 8),  # quarter-seconds after the previous call starts
            st.integers(0, 4),  # how many times it fails before succeeding
            st.one_of(st.none(), st.integers(0, 12)),  # cancelled after this many quarter-seconds
        ),
        max_size=60,
    )
)
def test_retries_through_a_shared_budget_stay_within_the_bound(
    calls: list[tuple[int, int, int | None]],
) -> None:
    """Random calls, failures and cancellations through Retrys sharing a budget never exceed it.

    Bound: at each retry's time t, retries in [t - 9, t] <= 0.2 * calls in (t - 10, t] + 0.1 * 10.
    """
    requests: list[float] = []
    retries: list[float] = []

    def record(event: trine.GuardEvent) -> None:
        if isinstance(event, RetryScheduled):
            retries.append(trio.current_time())

    async def main() -> None:
        budget = RetryBudget(ratio=0.2, min_per_second=0.1, window=10.0)
        retry = Retry(
            5,
            budget=budget,
            backoff=Backoff.decorrelated(initial=0.25, maximum=2.0),
            rng=random.Random(0),
            hooks=[record],
        )

        async def one(failures: int, cancel_after: int | None) -> None:
            flaky = Flaky(*[Down() for _ in range(failures)], duration=0.25)
            requests.append(trio.current_time())
            with trio.move_on_after(cancel_after * 0.25 if cancel_after is not None else 1e9):
                with contextlib.suppress(Down):
                    await retry.call(flaky)

        async with trio.open_nursery() as nursery:
            for gap, failures, cancel_after in calls:
                await trio.sleep(gap * 0.25)
                nursery.start_soon(one, failures, cancel_after)

        stats = retry.statistics()
        assert stats.calls == len(calls)
        assert stats.retries <= len(retries)
        assert budget.statistics().refusals == stats.budget_refusals

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    for t in retries:
        recent = sum(1 for r in retries if t - 9.0 <= r <= t)
        window_requests = sum(1 for q in requests if t - 10.0 < q <= t)
        assert recent <= 0.2 * window_requests + 1.0


@given(
    failures=st.lists(st.integers(0, 6), min_size=1, max_size=8),
    attempts=st.integers(1, 5),
    delay=st.sampled_from([0.0, 0.25, 1.0]),
)
def test_constant_backoff_timing_and_counters(
    failures: list[int], attempts: int, delay: float
) -> None:
    """Each call ends at exactly min(failures, attempts - 1) * delay; attempts = calls + retries."""

    async def main() -> None:
        retry = Retry(attempts, backoff=Backoff.constant(delay))
        for count in failures:
            start = trio.current_time()
            flaky = Flaky(*[Down() for _ in range(count)])
            if count < attempts:
                assert await retry.call(flaky) == "ok"
            else:
                with pytest.raises(Down):
                    await retry.call(flaky)
            assert trio.current_time() - start == min(count, attempts - 1) * delay
        stats = retry.statistics()
        assert stats.calls == len(failures)
        assert stats.attempts == stats.calls + stats.retries
        assert stats.retries == sum(min(count, attempts - 1) for count in failures)
        assert stats.give_ups == sum(1 for count in failures if count >= attempts)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
