"""gather, settle, race and hedge: results, timing, errors and cancellation."""

from __future__ import annotations

import contextvars
import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import outcome
import pytest
import trio
import trio.testing
from hypothesis import assume, given
from hypothesis import strategies as st

import trine
from trine.testing import ConcurrencyProbe, assert_takes

COROUTINE_MESSAGE = (
    r" must be an async function, got the coroutine object <coroutine object .+>: "
    r"pass the function and its arguments \(f, x\), not the result of calling it \(f\(x\)\)$"
)


class Boom(Exception):
    """A failure labelled so tests can tell which call raised it."""

    def __init__(self, label: object) -> None:
        super().__init__(label)
        self.label = label


async def sleep_then_return(probe: ConcurrencyProbe, seconds: float, value: object) -> object:
    with probe.track(value):
        await trio.sleep(seconds)
        return value


async def sleep_then_fail(probe: ConcurrencyProbe, seconds: float, label: object) -> object:
    with probe.track(label):
        await trio.sleep(seconds)
        raise Boom(label)


async def return_at_once(value: object = None) -> object:
    return value


async def sleep_forever(probe: ConcurrencyProbe, label: object) -> object:
    with probe.track(label):
        await trio.sleep_forever()
    raise AssertionError("unreachable")


def labels(group: BaseExceptionGroup[Any]) -> list[object]:
    assert all(isinstance(error, Boom) for error in group.exceptions), group.exceptions
    return [error.label for error in group.exceptions if isinstance(error, Boom)]


# --- gather -----------------------------------------------------------------


async def test_gather_returns_results_in_argument_order_after_the_slowest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Sleeps of 3, 1 and 2 s run together: 3 s in all, results in argument order."""
    probe = ConcurrencyProbe()
    with assert_takes(3.0):
        results = await trine.gather(
            partial(sleep_then_return, probe, 3, "a"),
            partial(sleep_then_return, probe, 1, "b"),
            partial(sleep_then_return, probe, 2, "c"),
        )
    assert results == ["a", "b", "c"]
    assert probe.peak == 3


async def test_gather_of_nothing_is_an_empty_list_and_a_checkpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``gather()`` returns ``[]`` and still checkpoints."""
    with trio.testing.assert_checkpoints():
        assert await trine.gather() == []


async def test_gather_is_a_checkpoint_even_when_no_fn_checkpoints(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Functions that never yield still make ``gather`` a checkpoint."""
    with trio.testing.assert_checkpoints():
        assert await trine.gather(partial(return_at_once, 1), partial(return_at_once, 2)) == [1, 2]


async def test_gather_accepts_methods_partials_lambdas_and_callable_objects(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Any callable returning an awaitable is fine, not only ``async def`` functions."""

    class Caller:
        async def __call__(self) -> str:
            return "object"

        async def method(self) -> str:
            return "method"

    caller = Caller()
    results = await trine.gather(
        caller, caller.method, partial(return_at_once, "partial"), lambda: return_at_once("lambda")
    )
    assert results == ["object", "method", "partial", "lambda"]


async def test_gather_first_failure_cancels_siblings_and_raises_a_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failure at 1 s cancels a 5 s sibling at once; the failure comes in an ExceptionGroup."""
    probe = ConcurrencyProbe()
    with assert_takes(1.0), pytest.raises(ExceptionGroup) as info:
        await trine.gather(
            partial(sleep_then_return, probe, 5, "slow"),
            partial(sleep_then_fail, probe, 1, "bad"),
        )
    assert labels(info.value) == ["bad"]
    assert probe.times("exit") == {"slow": 1.0, "bad": 1.0}
    assert probe.current == 0


async def test_gather_reports_every_failure_that_happened_together(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two calls failing before either could be cancelled are both in the group, as in a nursery."""

    async def fail_now(label: str) -> object:
        raise Boom(label)  # no checkpoint first, so the sibling's cancel cannot stop this

    probe = ConcurrencyProbe()
    with pytest.raises(ExceptionGroup) as info:
        await trine.gather(
            partial(fail_now, "x"),
            partial(fail_now, "y"),
            partial(sleep_then_return, probe, 2, "ok"),
        )
    assert sorted(labels(info.value)) == ["x", "y"]  # type: ignore[type-var]
    assert probe.times("exit") == {"ok": 0.0}


async def test_gather_cancelled_from_outside_stops_every_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A cancel scope around ``gather`` cancels every call promptly; nothing keeps running."""
    probe = ConcurrencyProbe()
    with assert_takes(1.0), trio.move_on_after(1) as scope:
        await trine.gather(*(partial(sleep_then_return, probe, 10, i) for i in range(5)))
    assert scope.cancelled_caught
    assert probe.peak == 5
    assert probe.current == 0


@pytest.mark.parametrize("function", [trine.gather, trine.settle, trine.race])
async def test_coroutine_objects_are_refused_before_anything_starts(
    autojump_clock: trio.testing.MockClock,
    function: Callable[..., Awaitable[object]],
) -> None:
    """``f(x)`` instead of ``f`` is a TypeError naming the position; nothing has started."""
    probe = ConcurrencyProbe()
    with pytest.raises(TypeError, match=r"^fns\[1\]" + COROUTINE_MESSAGE):
        await function(
            partial(sleep_then_return, probe, 1, "a"),
            sleep_then_return(probe, 1, "b"),
            sleep_then_return(probe, 1, "c"),
        )
    assert probe.timeline == []


@pytest.mark.parametrize("function", [trine.gather, trine.settle, trine.race])
async def test_non_callables_are_refused(
    autojump_clock: trio.testing.MockClock, function: Callable[..., Awaitable[object]]
) -> None:
    """Something that is not callable at all is a TypeError naming the position."""
    with pytest.raises(TypeError, match=r"^fns\[0\] must be an async function, got 3$"):
        await function(3)


# --- settle -----------------------------------------------------------------


async def test_settle_runs_everything_and_returns_outcomes_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failure at 1 s cancels nothing: the 3 s call finishes, one outcome per call."""
    probe = ConcurrencyProbe()
    with assert_takes(3.0):
        results = await trine.settle(
            partial(sleep_then_return, probe, 3, "slow"),
            partial(sleep_then_fail, probe, 1, "bad"),
            partial(sleep_then_return, probe, 2, "ok"),
        )
    assert results[0] == outcome.Value("slow")
    assert isinstance(results[1], outcome.Error)
    assert isinstance(results[1].error, Boom)
    assert results[1].error.label == "bad"
    assert results[2] == outcome.Value("ok")
    assert probe.times("exit") == {"slow": 3.0, "bad": 1.0, "ok": 2.0}


async def test_settle_of_nothing_is_an_empty_list_and_a_checkpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``settle()`` returns ``[]`` and still checkpoints."""
    with trio.testing.assert_checkpoints():
        assert await trine.settle() == []


async def test_settle_is_a_checkpoint_even_when_no_fn_checkpoints(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Functions that never yield still make ``settle`` a checkpoint."""
    with trio.testing.assert_checkpoints():
        assert await trine.settle(partial(return_at_once, 1)) == [outcome.Value(1)]


async def test_settle_never_captures_cancellation_from_outside(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An outer cancel scope cancels every call and propagates; no outcome holds Cancelled."""
    probe = ConcurrencyProbe()
    returned: list[list[outcome.Outcome[object]]] = []
    with assert_takes(1.0), trio.move_on_after(1) as scope:
        returned.append(
            await trine.settle(
                partial(sleep_then_return, probe, 10, "a"),
                partial(sleep_then_fail, probe, 10, "b"),
            )
        )
    assert scope.cancelled_caught
    assert returned == []
    assert probe.current == 0


async def test_settle_cancellation_propagates_as_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The Cancelled that leaves ``settle`` is Trio's own, caught by the scope that cancelled."""
    probe = ConcurrencyProbe()
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await trine.settle(partial(sleep_then_return, probe, 1, "a"))
    assert probe.current == 0


async def test_settle_lets_keyboard_interrupt_through(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A BaseException that is not an Exception is not a result: it cancels and propagates."""
    probe = ConcurrencyProbe()

    async def interrupt() -> object:
        await trio.sleep(1)
        raise KeyboardInterrupt

    with assert_takes(1.0), pytest.RaisesGroup(KeyboardInterrupt):
        await trine.settle(interrupt, partial(sleep_then_return, probe, 5, "slow"))
    assert probe.times("exit") == {"slow": 1.0}


# --- race -------------------------------------------------------------------


async def test_race_returns_the_first_success_and_cancels_the_loser(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A 1 s winner against a 5 s loser: race returns at 1 s and the loser's finally ran."""
    probe = ConcurrencyProbe()
    with assert_takes(1.0):
        winner = await trine.race(
            partial(sleep_then_return, probe, 5, "loser"),
            partial(sleep_then_return, probe, 1, "winner"),
        )
    assert winner == "winner"
    assert probe.times("exit") == {"loser": 1.0, "winner": 1.0}
    assert probe.current == 0


async def test_race_waits_for_losers_to_finish_unwinding(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A loser whose cleanup takes 0.5 s (shielded) has finished it before race returns."""
    cleaned: list[float] = []

    async def slow_cleanup() -> str:
        try:
            await trio.sleep(5)
            return "loser"
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(0.5)
            cleaned.append(trio.current_time())

    with assert_takes(1.5):
        assert await trine.race(slow_cleanup, partial(trio.sleep, 1)) is None
    assert cleaned == [1.5]


async def test_race_failures_do_not_end_the_race(autojump_clock: trio.testing.MockClock) -> None:
    """A call failing at 1 s leaves the others running; a success at 2 s wins."""
    probe = ConcurrencyProbe()
    with assert_takes(2.0):
        winner = await trine.race(
            partial(sleep_then_fail, probe, 1, "bad"),
            partial(sleep_then_return, probe, 2, "good"),
            partial(sleep_then_return, probe, 3, "late"),
        )
    assert winner == "good"
    assert probe.times("exit") == {"bad": 1.0, "good": 2.0, "late": 2.0}


async def test_race_all_failing_raises_every_failure_in_argument_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """If all fail, the group holds each failure in argument order, not completion order."""
    probe = ConcurrencyProbe()
    with assert_takes(3.0), pytest.raises(ExceptionGroup, match=r"^all 3 fns failed") as info:
        await trine.race(
            partial(sleep_then_fail, probe, 3, "first"),
            partial(sleep_then_fail, probe, 1, "second"),
            partial(sleep_then_fail, probe, 2, "third"),
        )
    assert str(info.value) == "all 3 fns failed (3 sub-exceptions)"
    assert labels(info.value) == ["first", "second", "third"]


async def test_race_drops_a_loser_failing_while_it_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Once someone has won, a loser's failure (even from its cleanup) does not change that."""

    raised: list[float] = []

    async def fails_on_cancel() -> str:
        try:
            await trio.sleep(5)
        finally:
            raised.append(trio.current_time())
            raise Boom("cleanup")  # the point: an error while cancelled

    with assert_takes(1.0):
        assert await trine.race(fails_on_cancel, partial(trio.sleep, 1)) is None
    assert raised == [1.0]


async def test_race_of_one_failing_fn_says_so(autojump_clock: trio.testing.MockClock) -> None:
    """A race of one that fails raises a group of that one failure, worded for one."""
    probe = ConcurrencyProbe()
    with pytest.raises(ExceptionGroup) as info:
        await trine.race(partial(sleep_then_fail, probe, 1, "only"))
    assert str(info.value) == "the only fn failed (1 sub-exception)"
    assert labels(info.value) == ["only"]


async def test_race_returns_a_winner_of_none(autojump_clock: trio.testing.MockClock) -> None:
    """``None`` is a result like any other."""
    assert await trine.race(partial(return_at_once, None)) is None


async def test_race_with_one_winner_only_even_on_a_tie(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two calls returning together: exactly one result is returned, the other discarded."""
    probe = ConcurrencyProbe()
    winner = await trine.race(
        partial(sleep_then_return, probe, 1, "a"), partial(sleep_then_return, probe, 1, "b")
    )
    assert winner in {"a", "b"}


async def test_race_of_nothing_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    """Nobody can win a race with no runners: ValueError naming the argument."""
    with pytest.raises(ValueError, match=r"^fns must contain at least one function, got none$"):
        await trine.race()


async def test_race_is_a_checkpoint(autojump_clock: trio.testing.MockClock) -> None:
    """A winner that never yields still makes ``race`` a checkpoint."""
    with trio.testing.assert_checkpoints():
        assert await trine.race(partial(return_at_once, 1)) == 1


async def test_race_cancelled_from_outside_stops_every_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A cancel scope around ``race`` cancels every runner; nothing keeps running."""
    probe = ConcurrencyProbe()
    with assert_takes(1.0), trio.move_on_after(1) as scope:
        await trine.race(*(partial(sleep_forever, probe, i) for i in range(4)))
    assert scope.cancelled_caught
    assert probe.peak == 4
    assert probe.current == 0


async def test_race_lets_keyboard_interrupt_through(autojump_clock: trio.testing.MockClock) -> None:
    """A BaseException that is not an Exception cancels the race and propagates."""
    probe = ConcurrencyProbe()

    async def interrupt() -> object:
        await trio.sleep(1)
        raise KeyboardInterrupt

    with assert_takes(1.0), pytest.RaisesGroup(KeyboardInterrupt):
        await trine.race(interrupt, partial(sleep_then_return, probe, 5, "slow"))
    assert probe.current == 0


# --- hedge ------------------------------------------------------------------


def scripted(probe: ConcurrencyProbe, script: Sequence[tuple[float, bool]]) -> Callable[..., Any]:
    """An async function whose n-th call sleeps ``script[n][0]`` and then fails if asked."""
    calls = 0

    async def attempt(*args: object) -> object:
        nonlocal calls
        number = calls
        calls += 1
        seconds, fails = script[number]
        probe.mark(("start", number, args))
        with probe.track(number):
            await trio.sleep(seconds)
            if fails:
                raise Boom(number)
            return number

    return attempt


def starts(probe: ConcurrencyProbe) -> list[float]:
    return [event.time for event in probe.timeline if event.kind == "mark"]


async def test_hedge_second_attempt_wins_when_the_first_is_slow(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Delay 1, first attempt 10 s, second 2 s: the second wins at exactly 3 s."""
    probe = ConcurrencyProbe()
    with assert_takes(3.0):
        result = await trine.hedge(scripted(probe, [(10, False), (2, False)]), delay=1)
    assert result == 1
    assert starts(probe) == [0.0, 1.0]
    assert probe.times("exit") == {0: 3.0, 1: 3.0}
    assert probe.current == 0


async def test_hedge_fast_first_attempt_starts_no_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An attempt that answers within the delay is the only one."""
    probe = ConcurrencyProbe()
    with assert_takes(0.5):
        assert await trine.hedge(scripted(probe, [(0.5, False)]), delay=1, attempts=3) == 0
    assert starts(probe) == [0.0]


async def test_hedge_passes_the_arguments_to_every_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``hedge(fn, *args)`` calls ``fn(*args)`` each time."""
    probe = ConcurrencyProbe()
    await trine.hedge(scripted(probe, [(10, False), (1, False)]), "x", 2, delay=1)
    assert [event.label for event in probe.timeline if event.kind == "mark"] == [
        ("start", 0, ("x", 2)),
        ("start", 1, ("x", 2)),
    ]


async def test_hedge_failure_starts_the_next_attempt_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failure at 0.5 s starts attempt 2 then; the delay to attempt 3 counts from there."""
    probe = ConcurrencyProbe()
    script = [(0.5, True), (10, False), (1, False)]
    with assert_takes(2.5):
        assert await trine.hedge(scripted(probe, script), delay=1, attempts=3) == 2
    assert starts(probe) == [0.0, 0.5, 1.5]


async def test_hedge_each_failure_starts_one_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two attempts failing together start the next two at once."""
    probe = ConcurrencyProbe()
    script = [(2, True), (1, True), (5, False), (5, False), (0, False)]
    with assert_takes(7.0):
        assert await trine.hedge(scripted(probe, script), delay=1, attempts=4) in {2, 3}
    assert starts(probe) == [0.0, 1.0, 2.0, 2.0]


async def test_hedge_all_failing_raises_every_failure_in_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """If every attempt fails, the group lists them in the order they started."""
    probe = ConcurrencyProbe()
    script = [(30, True), (20, True), (10, True)]
    with assert_takes(30.0), pytest.raises(ExceptionGroup, match=r"^all 3 attempts failed") as info:
        await trine.hedge(scripted(probe, script), delay=1, attempts=3)
    assert labels(info.value) == [0, 1, 2]
    assert starts(probe) == [0.0, 1.0, 2.0]


async def test_hedge_with_one_attempt_reports_its_failure_in_a_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``attempts=1`` is a plain call whose failure still comes in the same group shape."""
    probe = ConcurrencyProbe()
    with pytest.raises(ExceptionGroup, match=r"^the only attempt failed") as info:
        await trine.hedge(scripted(probe, [(1, True)]), delay=1, attempts=1)
    assert labels(info.value) == [0]


async def test_hedge_with_no_delay_starts_every_attempt_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``delay=0`` starts all attempts together; the fastest wins."""
    probe = ConcurrencyProbe()
    with assert_takes(1.0):
        assert (
            await trine.hedge(
                scripted(probe, [(3, False), (1, False), (2, False)]), delay=0, attempts=3
            )
            == 1
        )
    assert starts(probe) == [0.0, 0.0, 0.0]


async def test_hedge_cancelled_from_outside_stops_every_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A cancel scope around ``hedge`` cancels the attempts and the timer; nothing keeps running."""
    probe = ConcurrencyProbe()
    with assert_takes(2.5), trio.move_on_after(2.5) as scope:
        await trine.hedge(scripted(probe, [(10, False)] * 5), delay=1, attempts=5)
    assert scope.cancelled_caught
    assert starts(probe) == [0.0, 1.0, 2.0]
    assert probe.current == 0


async def test_hedge_is_a_checkpoint(autojump_clock: trio.testing.MockClock) -> None:
    """An attempt that never yields still makes ``hedge`` a checkpoint."""
    with trio.testing.assert_checkpoints():
        assert await trine.hedge(return_at_once, 7, delay=1) == 7


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"delay": 1, "attempts": 0}, ValueError, r"^attempts must be >= 1, got 0$"),
        ({"delay": 1, "attempts": 1.5}, TypeError, r"^attempts must be an int, got 1\.5$"),
        ({"delay": -1}, ValueError, r"^delay must be >= 0, got -1$"),
        ({"delay": math.inf}, ValueError, r"^delay must be finite, got inf$"),
        ({"delay": math.nan}, ValueError, r"^delay must not be NaN, got nan$"),
        ({"delay": "1"}, TypeError, r"^delay must be a number or a trine\.Percentile, got '1'$"),
    ],
)
async def test_hedge_validates_its_arguments(
    autojump_clock: trio.testing.MockClock,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    """Bad ``delay``/``attempts`` are refused with a message naming them."""
    with pytest.raises(error, match=message):
        await trine.hedge(return_at_once, **kwargs)


async def test_hedge_refuses_a_coroutine_object(autojump_clock: trio.testing.MockClock) -> None:
    """``hedge(f(x), ...)`` is a TypeError telling the user to pass ``f, x``."""
    with pytest.raises(TypeError, match=r"^fn" + COROUTINE_MESSAGE):
        await trine.hedge(return_at_once(1), delay=1)  # type: ignore[arg-type]


# --- hedging that adapts: Percentile, budgets, Hedge (issue 13) ------------------


def fixed(seconds: float, value: object = None) -> Callable[..., Awaitable[object]]:
    """An async function that always takes *seconds* and returns *value*."""

    async def attempt(*args: object) -> object:
        await trio.sleep(seconds)
        return value

    return attempt


async def test_percentile_delay_is_the_fixed_initial_until_min_samples(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Before min_samples answers the delay is ``initial``; from then, the percentile."""
    p50 = trine.Percentile(50, min_samples=3, initial=0.5)
    assert p50.delay() == 0.5
    for seconds in (1.0, 2.0):
        p50.record(seconds)
        assert p50.delay() == 0.5
    p50.record(3.0)
    assert p50.delay() == pytest.approx(2.0, rel=0.01)
    assert p50.delay() == p50.histogram.quantile(0.5)


async def test_percentile_without_initial_starts_no_hedge_until_min_samples(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``initial=None``: the delay is infinite, so a slow attempt is the only one."""
    p95 = trine.Percentile(95, min_samples=2)
    assert p95.delay() == math.inf
    probe = ConcurrencyProbe()
    with assert_takes(10.0):
        assert await trine.hedge(scripted(probe, [(10, False), (1, False)]), delay=p95) == 0
    assert starts(probe) == [0.0]


async def test_percentile_without_initial_still_follows_a_failure_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No delay yet, but a failed attempt is still followed by the next at once."""
    probe = ConcurrencyProbe()
    delay = trine.Percentile(95)
    with assert_takes(3.0):
        assert await trine.hedge(scripted(probe, [(1, True), (2, False)]), delay=delay) == 1
    assert starts(probe) == [0.0, 1.0]


async def test_hedge_records_the_winning_attempts_own_latency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The latency recorded is the winner's, from its own start: 2 s, not the 3 s of the call."""
    p90 = trine.Percentile(90, min_samples=1, initial=1.0)
    probe = ConcurrencyProbe()
    with assert_takes(3.0):
        assert await trine.hedge(scripted(probe, [(10, False), (2, False)]), delay=p90) == 1
    assert p90.histogram.count == 1
    assert p90.histogram.minimum == 2.0


async def test_hedge_records_nothing_when_every_attempt_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Failures are not latencies: the histogram holds answers only."""
    p90 = trine.Percentile(90, initial=1.0)
    with pytest.raises(ExceptionGroup):
        await trine.hedge(scripted(ConcurrencyProbe(), [(1, True), (1, True)]), delay=p90)
    assert p90.histogram.count == 0


async def test_percentile_delay_adapts_to_the_service(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """After 4 answers of 1 s the p50 delay is 1 s: a 5 s attempt is hedged at 1 s exactly."""
    p50 = trine.Percentile(50, min_samples=4, initial=3.0)
    for _ in range(4):
        await trine.hedge(fixed(1.0, "fast"), delay=p50)
    assert p50.delay() == pytest.approx(1.0, rel=0.01)
    delay = p50.delay()
    probe = ConcurrencyProbe()
    begun = trio.current_time()
    await trine.hedge(scripted(probe, [(5, False), (0.5, False)]), delay=p50)
    assert [start - begun for start in starts(probe)] == [0.0, delay]


async def test_percentile_reads_a_histogram_it_is_given(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A shared LatencyHistogram is read and filled by every hedge using it."""
    histogram = trine.LatencyHistogram()
    for seconds in (0.2, 0.2, 0.2):
        histogram.record(seconds)
    p99 = trine.Percentile(99, min_samples=3, histogram=histogram)
    assert p99.histogram is histogram
    assert p99.delay() == pytest.approx(0.2, rel=0.01)
    await trine.hedge(fixed(0.1), delay=p99)
    assert histogram.count == 4


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"percentile": 0}, ValueError, r"^percentile must be > 0, got 0$"),
        ({"percentile": 101}, ValueError, r"^percentile must be <= 100, got 101$"),
        ({"percentile": "95"}, TypeError, r"^percentile must be a number, got '95'$"),
        ({"percentile": 95, "min_samples": 0}, ValueError, r"^min_samples must be >= 1, got 0$"),
        ({"percentile": 95, "initial": -1}, ValueError, r"^initial must be >= 0, got -1$"),
        (
            {"percentile": 95, "histogram": []},
            TypeError,
            r"^histogram must be a trine\.LatencyHistogram or None, got \[\]$",
        ),
    ],
)
def test_percentile_validates_its_arguments(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Bad percentile settings are refused at construction, naming the argument."""
    with pytest.raises(error, match=message):
        trine.Percentile(**kwargs)


async def test_a_budget_bounds_the_share_of_calls_that_hedge(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With ratio 0.5 and no reserve, 10 slow calls start only 5 hedges; the rest are refused."""
    budget = trine.RetryBudget(ratio=0.5, min_per_second=0.0, window=100.0)
    hedging = trine.Hedge(delay=1.0, budget=budget)
    for _ in range(10):
        with assert_takes(3.0):
            assert await hedging.call(fixed(3.0, "slow")) == "slow"
    stats = hedging.statistics()
    assert (stats.calls, stats.hedges_started, stats.budget_refusals) == (10, 5, 5)
    assert stats.hedges_won == 0
    assert budget.statistics().retries == 5
    assert budget.statistics().refusals == 5


async def test_a_refused_hedge_leaves_the_first_attempt_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A budget with nothing left: no second attempt, the first one's answer comes at 10 s."""
    probe = ConcurrencyProbe()
    budget = trine.RetryBudget(ratio=0.0, min_per_second=0.0)
    with assert_takes(10.0):
        assert (
            await trine.hedge(scripted(probe, [(10, False), (1, False)]), delay=1, budget=budget)
            == 0
        )
    assert starts(probe) == [0.0]


async def test_a_refused_attempt_after_a_failure_ends_the_call_with_the_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The budget also bounds attempts after a failure: with none left, the failure is the end."""
    budget = trine.RetryBudget(ratio=0.0, min_per_second=0.0)
    with assert_takes(1.0), pytest.raises(ExceptionGroup, match=r"^the only attempt failed"):
        await trine.hedge(
            scripted(ConcurrencyProbe(), [(1, True), (1, False)]), delay=5, budget=budget
        )


async def test_a_refused_attempt_made_early_is_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A lambda's attempt (made before its task) that the budget refuses is closed, unawaited."""
    recorder = Recorder()
    budget = trine.RetryBudget(ratio=0.0, min_per_second=0.0)
    assert await trine.hedge(recorder.fn(3, "a"), delay=1, budget=budget) == "a"
    assert len(recorder.coroutines) == 2
    assert recorder.all_closed()


async def test_hedge_statistics_count_hedges_started_and_won(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A fast call starts nothing; a slow one starts a hedge that wins; delay is reported."""
    hedging = trine.Hedge(delay=1.0, attempts=3)
    assert await hedging.call(fixed(0.5, "fast")) == "fast"
    probe = ConcurrencyProbe()
    assert await hedging.call(scripted(probe, [(10, False), (10, False), (0.5, False)])) == 2
    assert hedging.statistics() == trine.HedgeStatistics(
        calls=2, hedges_started=2, hedges_won=1, budget_refusals=0, delay=1.0
    )


async def test_hedge_object_with_a_percentile_keeps_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A Hedge keeps its Percentile: its calls fill it and its statistics report the delay."""
    p50 = trine.Percentile(50, min_samples=2, initial=4.0)
    hedging = trine.Hedge(delay=p50)
    assert hedging.statistics().delay == 4.0
    for _ in range(2):
        await hedging.call(fixed(1.0))
    assert hedging.statistics().delay == pytest.approx(1.0, rel=0.01)
    assert hedging.delay is p50


async def test_hedge_object_passes_arguments_and_refuses_bad_functions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``Hedge.call(fn, *args)`` calls ``fn(*args)``; a coroutine object is refused."""
    probe = ConcurrencyProbe()
    await trine.Hedge(delay=1).call(scripted(probe, [(1, False)]), "x", 2)
    assert probe.timeline[0].label == ("start", 0, ("x", 2))
    with pytest.raises(TypeError, match=r"^fn" + COROUTINE_MESSAGE):
        await trine.Hedge(delay=1).call(return_at_once(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^fn" + NOT_ASYNC_MESSAGE):
        await trine.Hedge(delay=1).call(three)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"delay": 1, "attempts": 0}, ValueError, r"^attempts must be >= 1, got 0$"),
        ({"delay": -1}, ValueError, r"^delay must be >= 0, got -1$"),
        ({"delay": None}, TypeError, r"^delay must be a number or a trine\.Percentile, got None$"),
        (
            {"delay": 1, "budget": 0.1},
            TypeError,
            r"^budget must be a trine\.RetryBudget \(or have deposit\(\) and "
            r"try_withdraw\(\)\) or None, got 0\.1$",
        ),
    ],
)
async def test_hedge_object_and_budget_are_validated(
    autojump_clock: trio.testing.MockClock,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    """Hedge() and hedge(budget=) refuse bad settings with a message naming them."""
    with pytest.raises(error, match=message):
        trine.Hedge(**kwargs)
    with pytest.raises(error, match=message):
        await trine.hedge(return_at_once, **kwargs)


async def test_a_hedge_fits_where_a_guard_with_call_goes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``Policy(retry=Hedge(...))`` and ``Pipeline.map(policy=Hedge(...))`` hedge each call."""
    hedging = trine.Hedge(delay=1.0)
    probe = ConcurrencyProbe()
    with assert_takes(2.0):
        assert (
            await trine.Policy(retry=hedging).call(scripted(probe, [(5, False), (1, False)])) == 1
        )
    out = await trine.Pipeline.source([1, 2]).map(return_at_once, policy=hedging).collect()
    assert sorted(out) == [1, 2]
    assert hedging.statistics().calls == 3


def test_hedge_and_percentile_reprs_show_their_state() -> None:
    """The reprs say what the delay is read from and what the hedging did."""
    assert repr(trine.Percentile(95)) == (
        "<trine.Percentile p95 of 0 latencies (min_samples=20, initial=None)>"
    )
    assert repr(trine.Hedge(delay=0.5)) == (
        "<trine.Hedge delay=0.5 attempts=2: 0 calls, 0 hedges, 0 won>"
    )


# --- functions that are not async (issue 11) -----------------------------------

NOT_ASYNC_MESSAGE = (
    r" must be an async function, but calling it returned 3, an int: define it with async def$"
)


def three() -> int:
    """A plain function where an async one is needed."""
    return 3


class Recorder:
    """Zero-argument async functions whose coroutines are kept, to check they were closed."""

    def __init__(self) -> None:
        self.coroutines: list[Any] = []

    def fn(self, seconds: float, value: object) -> Callable[[], Awaitable[object]]:
        def make() -> Awaitable[object]:
            coroutine = sleep_then_return(ConcurrencyProbe(), seconds, value)
            self.coroutines.append(coroutine)
            return coroutine

        return make

    def all_closed(self) -> bool:
        return all(
            inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED
            for coroutine in self.coroutines
        )


@pytest.mark.parametrize("function", [trine.gather, trine.settle, trine.race])
async def test_regression_issue_11_a_sync_fn_is_a_bare_type_error_and_nothing_starts(
    autojump_clock: trio.testing.MockClock, function: Callable[..., Awaitable[object]]
) -> None:
    """A plain function among fns is a bare TypeError naming it; the coroutines made are closed."""
    probe = ConcurrencyProbe()
    recorder = Recorder()
    with assert_takes(0.0), pytest.raises(TypeError, match=r"^fns\[2\]" + NOT_ASYNC_MESSAGE):
        await function(
            partial(sleep_then_return, probe, 1, "a"),
            recorder.fn(1, "b"),
            three,
            partial(sleep_then_return, probe, 1, "d"),
        )
    assert probe.timeline == []  # nothing started
    assert len(recorder.coroutines) == 1
    assert recorder.all_closed()


async def test_regression_issue_11_race_does_not_swallow_a_sync_fn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``race(async_fn, sync_fn)`` raises the TypeError; it is not a contender that lost."""
    probe = ConcurrencyProbe()
    with pytest.raises(TypeError, match=r"^fns\[1\]" + NOT_ASYNC_MESSAGE):
        await trine.race(partial(sleep_then_return, probe, 1, "a"), three)
    assert probe.timeline == []


async def test_regression_issue_11_settle_raises_a_sync_fn_instead_of_an_outcome(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``settle`` raises the TypeError of a plain function; it never becomes an outcome.Error."""
    with pytest.raises(TypeError, match=r"^fns\[0\]" + NOT_ASYNC_MESSAGE):
        await trine.settle(three, partial(return_at_once, 1))


async def test_regression_issue_11_hedge_with_a_sync_fn_is_a_bare_type_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``hedge(sync_fn)`` fails at the call with a TypeError naming fn."""
    with assert_takes(0.0), pytest.raises(TypeError, match=r"^fn" + NOT_ASYNC_MESSAGE):
        await trine.hedge(three, delay=1)


async def test_regression_issue_11_hedge_stops_when_a_later_call_is_not_awaitable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A later attempt's call returning a non-awaitable cancels the running attempt; raised bare."""
    probe = ConcurrencyProbe()
    calls = 0

    def sometimes_async() -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            return sleep_then_return(probe, 10, "first")
        return 3

    with assert_takes(1.0), pytest.raises(TypeError, match=r"^fn" + NOT_ASYNC_MESSAGE):
        await trine.hedge(sometimes_async, delay=1, attempts=3)
    assert calls == 2
    assert probe.current == 0
    assert probe.times("exit") == {"first": 1.0}


@pytest.mark.parametrize("function", [trine.gather, trine.settle, trine.race])
async def test_lambdas_returning_coroutines_are_async_functions(
    autojump_clock: trio.testing.MockClock, function: Callable[..., Awaitable[object]]
) -> None:
    """``lambda: fetch(x)`` is as good as ``partial(fetch, x)``."""
    result = await function(lambda: return_at_once(5))
    if function is trine.settle:
        assert result == [outcome.Value(5)]
    elif function is trine.gather:
        assert result == [5]
    else:
        assert result == 5


async def test_a_lambda_is_called_before_any_task_starts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A callable that is not an async def function is called (and checked) before the tasks."""
    probe = ConcurrencyProbe()
    started_when_called: list[int] = []

    def wrapper() -> Awaitable[object]:
        started_when_called.append(len(probe.timeline))
        return sleep_then_return(probe, 1, "b")

    assert await trine.gather(partial(sleep_then_return, probe, 1, "a"), wrapper) == ["a", "b"]
    assert started_when_called == [0]


def scripted_after(
    first: Callable[[], Awaitable[object]], then: Callable[[], Awaitable[object]]
) -> Callable[[], Awaitable[object]]:
    """Calls *first* on the first call and *then* on every later one."""
    calls = 0

    def call() -> Awaitable[object]:
        nonlocal calls
        calls += 1
        return first() if calls == 1 else then()

    return call


async def test_an_exception_from_calling_fn_is_that_calls_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A wrapper that raises before returning a coroutine fails its call, as if awaited."""

    def broken() -> Awaitable[object]:
        raise Boom("call")

    results = await trine.settle(broken, partial(return_at_once, 2))
    assert isinstance(results[0], outcome.Error)
    assert isinstance(results[0].error, Boom)
    assert results[1] == outcome.Value(2)
    assert await trine.race(broken, partial(return_at_once, 2)) == 2
    with pytest.RaisesGroup(pytest.RaisesExc(Boom, match=r"^call$")):
        await trine.gather(broken, partial(return_at_once, 2))
    assert await trine.hedge(scripted_after(broken, return_at_once), delay=5) is None


@pytest.mark.parametrize("function", [trine.settle, trine.race])
async def test_a_programming_error_inside_a_call_is_not_collected(
    autojump_clock: trio.testing.MockClock, function: Callable[..., Awaitable[object]]
) -> None:
    """A trine call inside fn that refuses a plain function propagates; it is no failed call."""
    probe = ConcurrencyProbe()

    async def misused() -> object:
        await trio.sleep(1)
        return await trine.hedge(three, delay=1)

    with (
        assert_takes(1.0),
        pytest.RaisesGroup(pytest.RaisesExc(TypeError, match=r"^fn" + NOT_ASYNC_MESSAGE)),
    ):
        await function(misused, partial(sleep_then_return, probe, 5, "slow"))
    assert probe.current == 0


# --- properties ---------------------------------------------------------------

calls_strategy = st.lists(
    st.tuples(st.integers(min_value=0, max_value=8), st.booleans()), min_size=1, max_size=8
)
cancel_strategy = st.none() | st.integers(min_value=0, max_value=9)


def _fns(
    probe: ConcurrencyProbe, calls: list[tuple[int, bool]]
) -> list[Callable[[], Awaitable[object]]]:
    return [
        partial(sleep_then_fail if fails else sleep_then_return, probe, duration, index)
        for index, (duration, fails) in enumerate(calls)
    ]


def _run(main: Callable[[], Awaitable[None]]) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@given(calls=calls_strategy, cancel_at=cancel_strategy)
def test_settle_property(calls: list[tuple[int, bool]], cancel_at: int | None) -> None:
    """One outcome per call, in order, of the right kind, after max(duration); or a clean cancel."""
    end = max(duration for duration, _ in calls)

    async def main() -> None:
        probe = ConcurrencyProbe()
        returned: list[list[outcome.Outcome[object]]] = []
        with trio.move_on_after(math.inf if cancel_at is None else cancel_at) as scope:
            returned.append(await trine.settle(*_fns(probe, calls)))
        assert probe.current == 0
        if scope.cancelled_caught:
            # A deadline at the very moment the calls end may land either way.
            assert cancel_at is not None
            assert cancel_at <= end
            assert trio.current_time() == cancel_at
            assert returned == []
            return
        assert cancel_at is None or cancel_at >= end
        assert trio.current_time() == end
        [results] = returned
        assert len(results) == len(calls)
        for index, (result, (_, fails)) in enumerate(zip(results, calls, strict=True)):
            if fails:
                assert isinstance(result, outcome.Error)
                assert isinstance(result.error, Boom)
                assert result.error.label == index
            else:
                assert result == outcome.Value(index)

    _run(main)


@given(calls=calls_strategy, cancel_at=cancel_strategy)
def test_race_property(calls: list[tuple[int, bool]], cancel_at: int | None) -> None:
    """The fastest success wins at its duration; if none succeeds, every failure in order."""
    successes = [duration for duration, fails in calls if not fails]
    end = min(successes) if successes else max(duration for duration, _ in calls)

    async def main() -> None:
        probe = ConcurrencyProbe()
        winner: object = None
        group: ExceptionGroup[Exception] | None = None
        with trio.move_on_after(math.inf if cancel_at is None else cancel_at) as scope:
            try:
                winner = await trine.race(*_fns(probe, calls))
            except ExceptionGroup as error:
                group = error
        assert probe.current == 0
        if scope.cancelled_caught:
            assert cancel_at is not None
            assert cancel_at <= end
            assert trio.current_time() == cancel_at
            return
        assert cancel_at is None or cancel_at >= end
        assert trio.current_time() == end
        if successes:
            assert group is None
            assert isinstance(winner, int)
            assert calls[winner] == (end, False)
        else:
            assert group is not None
            assert labels(group) == list(range(len(calls)))

    _run(main)


def _hedge_model(
    script: list[tuple[int, bool]], delay: float
) -> tuple[list[float], float, int | None] | None:
    """When each attempt starts, when hedge ends, and who wins; None if events tie.

    Event times are multiples of 0.25, so ties are exact; a tie (a failure at the very
    moment a delay runs out, say) may fall either way in Trio, so the property skips it.
    """
    starts = [0.0]
    consumed = 0
    now = 0.0

    def ends(failing: bool) -> list[float]:
        return [starts[i] + script[i][0] for i in range(len(starts)) if script[i][1] is failing]

    while len(starts) < len(script):
        win = min(ends(False), default=math.inf)
        if sum(end <= now for end in ends(True)) > consumed:
            wake = now  # a failure not yet answered: start the next attempt at once
        else:
            next_failure = min((end for end in ends(True) if end > now), default=math.inf)
            if next_failure == now + delay:
                return None
            wake = min(now + delay, next_failure)
        if win == wake:
            return None
        if win < wake:
            break
        if sum(end <= wake for end in ends(True)) > consumed:
            consumed += 1
        now = wake
        starts.append(wake)
    successes = ends(False)
    if successes:
        end = min(successes)
        if successes.count(end) > 1:
            return None
        winner = next(
            i for i in range(len(starts)) if not script[i][1] and starts[i] + script[i][0] == end
        )
        return starts, end, winner
    return starts, max(ends(True)), None


@given(
    script=st.lists(
        st.tuples(st.integers(min_value=1, max_value=6), st.booleans()), min_size=1, max_size=6
    ),
    delay=st.sampled_from([0.25, 0.75, 1.25, 2.5]),
    cancel_at=st.none() | st.integers(min_value=0, max_value=12).map(lambda n: n + 0.125),
)
def test_hedge_property(
    script: list[tuple[int, bool]], delay: float, cancel_at: float | None
) -> None:
    """Attempts start when the model says, the first success wins at its time, nothing leaks."""
    model = _hedge_model(script, delay)
    assume(model is not None)
    assert model is not None
    expected_starts, end, winner = model

    async def main() -> None:
        probe = ConcurrencyProbe()
        returned: list[object] = []
        group: ExceptionGroup[Exception] | None = None
        with trio.move_on_after(math.inf if cancel_at is None else cancel_at) as scope:
            try:
                returned.append(
                    await trine.hedge(scripted(probe, script), delay=delay, attempts=len(script))
                )
            except ExceptionGroup as error:
                group = error
        assert probe.current == 0
        if cancel_at is not None and cancel_at < end:
            assert scope.cancelled_caught
            assert trio.current_time() == cancel_at
            assert starts(probe) == [start for start in expected_starts if start < cancel_at]
            return
        assert trio.current_time() == end
        assert starts(probe) == expected_starts
        if winner is None:
            assert group is not None
            assert labels(group) == list(range(len(expected_starts)))
        else:
            assert returned == [winner]

    _run(main)


class _WatchedBudget:
    """A RetryBudget that checks, at each withdrawal, that the hedges stay within it."""

    def __init__(self, ratio: float) -> None:
        self.inner = trine.RetryBudget(ratio=ratio, min_per_second=0.0, window=10_000.0)
        self.ratio = ratio
        self.deposits = 0
        self.withdrawals: dict[int, int] = {}
        self.refusals = 0

    def deposit(self) -> None:
        self.deposits += 1
        self.inner.deposit()

    def try_withdraw(self) -> bool:
        if not self.inner.try_withdraw():
            self.refusals += 1
            return False
        call = _CALL.get()
        self.withdrawals[call] = self.withdrawals.get(call, 0) + 1
        assert sum(self.withdrawals.values()) <= self.ratio * self.deposits
        return True


_CALL: contextvars.ContextVar[int] = contextvars.ContextVar("_CALL")


@given(
    # per call: (start, cancel after or None, the (seconds, fails) of each attempt)
    calls=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.25, 1.0, 2.0]),
            st.none() | st.sampled_from([0.125, 0.75, 1.625, 4.125]),
            st.lists(
                st.tuples(st.sampled_from([0.25, 0.5, 1.5, 3.0]), st.booleans()),
                min_size=4,
                max_size=4,
            ),
        ),
        min_size=1,
        max_size=10,
    ),
    ratio=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    attempts=st.integers(min_value=1, max_value=4),
    adaptive=st.booleans(),
)
def test_hedge_budget_property_hedges_stay_within_the_budget_under_cancellation(
    calls: list[tuple[float, float | None, list[tuple[float, bool]]]],
    ratio: float,
    attempts: int,
    adaptive: bool,
) -> None:
    """Concurrent hedged calls sharing a budget, with failures and cancellations at any point:
    the hedges started never exceed ratio x calls at any moment, each attempt after a call's
    first drew on the budget, no call starts more than attempts, the counts agree with the
    budget's, and nothing is left running."""
    budget = _WatchedBudget(ratio)
    delay = trine.Percentile(50, min_samples=2, initial=0.5) if adaptive else 0.5
    hedging = trine.Hedge(delay=delay, attempts=attempts, budget=budget)  # type: ignore[arg-type]
    ran: dict[int, int] = {}
    failures: list[ExceptionGroup[Exception]] = []
    probe = ConcurrencyProbe()

    async def attempt(call: int) -> int:
        number = ran.get(call, 0)
        ran[call] = number + 1
        seconds, fails = calls[call][2][number]
        with probe.track((call, number)):
            await trio.sleep(seconds)
        if fails:
            raise Boom((call, number))
        return number

    async def caller(call: int) -> None:
        start, cancel_after, _ = calls[call]
        await trio.sleep(start)
        _CALL.set(call)
        with trio.move_on_after(math.inf if cancel_after is None else cancel_after):
            try:
                await hedging.call(attempt, call)
            except ExceptionGroup as group:
                failures.append(group)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for call in range(len(calls)):
                nursery.start_soon(caller, call)
        assert probe.current == 0
        for group in failures:
            labels(group)  # only the attempts' own failures, never a cancellation
        stats = hedging.statistics()
        withdrawn = sum(budget.withdrawals.values())
        assert stats.calls == budget.deposits
        assert stats.hedges_started == withdrawn == budget.inner.statistics().retries
        assert stats.budget_refusals == budget.refusals
        assert withdrawn <= ratio * stats.calls
        for call, count in ran.items():
            assert count <= attempts
            assert count <= 1 + budget.withdrawals.get(call, 0)

    _run(main)
