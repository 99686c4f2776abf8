"""trine.testing: the probe, the elapsed-time assertion, the timeline and no_waits().

These tests take the kit from the pytest plugin's fixtures (``timeline``,
``concurrency_probe``, ``fake_service``, ``no_waits``), as a user's tests do.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable

import pytest
import trio
import trio.testing

import trine
from trine import _waits
from trine.testing import (
    ConcurrencyProbe,
    FakeService,
    FakeServiceError,
    ProbeEvent,
    Timeline,
    TimelineEvent,
    assert_takes,
    no_waits,
)


async def test_probe_records_peak_and_timeline(
    autojump_clock: trio.testing.MockClock, concurrency_probe: ConcurrencyProbe
) -> None:
    """Peak concurrency and exact enter/exit times are recorded."""
    probe = concurrency_probe

    async def job(label: str, delay: float) -> None:
        with probe.track(label):
            await trio.sleep(delay)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(job, "a", 1.0)
        nursery.start_soon(job, "b", 2.0)
    probe.mark("done")
    assert probe.peak == 2
    assert probe.current == 0
    assert probe.times("exit") == {"a": 1.0, "b": 2.0}
    assert probe.timeline[-1] == ProbeEvent(2.0, "mark", "done")


async def test_assert_takes_passes_and_fails(autojump_clock: trio.testing.MockClock) -> None:
    """The assertion holds for the exact time and fails otherwise."""
    with assert_takes(1.5):
        await trio.sleep(1.5)
    message = r"expected the block to take 1\.0 s, it took 2\.0 s"
    with pytest.raises(AssertionError, match=message), assert_takes(1.0):
        await trio.sleep(2.0)


# -- the fixtures are fresh per test --------------------------------------------


def test_fixtures_give_fresh_objects(
    timeline: Timeline,
    concurrency_probe: ConcurrencyProbe,
    fake_service: Callable[..., FakeService],
) -> None:
    """Each fixture hands the test a new, empty object; the factory builds services."""
    assert timeline.events == []
    assert concurrency_probe.peak == 0
    first, second = fake_service(latency=1.0), fake_service(fail_calls={1})
    assert first is not second
    assert first.latency == 1.0
    with pytest.raises(ValueError, match=r"^latency must be >= 0, got -1$"):
        fake_service(latency=-1)


# -- Timeline -------------------------------------------------------------------


async def test_timeline_records_labels_at_fake_times(
    autojump_clock: trio.testing.MockClock, timeline: Timeline
) -> None:
    """record() stamps each label with trio.current_time(); assert_matches accepts the story."""

    async def fetch(name: str, seconds: float) -> None:
        timeline.record(f"start {name}")
        await trio.sleep(seconds)
        timeline.record(f"done {name}")

    await trine.gather(lambda: fetch("a", 1.5), lambda: fetch("b", 2.0))
    assert timeline.events[-1] == TimelineEvent(2.0, "done b")
    assert sorted(timeline.labels()[:2]) == ["start a", "start b"]
    assert timeline.labels()[2:] == ["done a", "done b"]
    # Events at one time may be listed in any order.
    timeline.assert_matches([(0.0, "start b"), (0.0, "start a"), (1.5, "done a"), (2.0, "done b")])


async def test_assert_matches_prints_a_readable_diff(
    autojump_clock: trio.testing.MockClock, timeline: Timeline
) -> None:
    """A time off by 5 µs, a missing and an extra event each show as -/+ lines."""
    timeline.record("start a")
    await trio.sleep(1.500005)
    timeline.record("retry a")
    timeline.record("give up a")
    with pytest.raises(AssertionError) as caught:
        timeline.assert_matches([(0.0, "start a"), (1.5, "retry a"), (3.0, "done a")])
    assert str(caught.value) == "\n".join(
        [
            "the timeline does not match (- expected, + recorded):",
            "--- expected",
            "+++ recorded",
            "@@ -1,3 +1,3 @@",
            "          0.0  start a",
            "-         1.5  retry a",
            "-         3.0  done a",
            "+    1.500005  retry a",
            "+    1.500005  give up a",
        ]
    )


async def test_assert_matches_allows_float_rounding_only(
    autojump_clock: trio.testing.MockClock, timeline: Timeline
) -> None:
    """0.1 + 0.2 matches 0.3; a different count of events never matches."""
    await trio.sleep(0.1)
    await trio.sleep(0.2)
    timeline.record("x")
    timeline.assert_matches([(0.3, "x")])
    with pytest.raises(AssertionError):
        timeline.assert_matches([])
    with pytest.raises(AssertionError, match=r"\+0\.30000000000000004  x"):
        timeline.assert_matches([(0.3, "x")], tolerance=0.0)  # shown exactly, then


async def test_timeline_hook_records_guard_events(
    autojump_clock: trio.testing.MockClock, timeline: Timeline
) -> None:
    """timeline.hook as a guard's hook records each event by kind and guard name."""
    service = FakeService(latency=0.5, fail_calls={1})
    retry = trine.Retry(
        attempts=2, backoff=trine.Backoff.constant(1.0), name="users", hooks=[timeline.hook]
    )
    assert await retry.call(service.call) == 2
    timeline.assert_matches([(0.5, "RetryScheduled users")])


def test_timeline_arguments_are_checked(timeline: Timeline) -> None:
    """Labels are strings; expected is a list of (time, label) pairs."""
    with pytest.raises(TypeError, match=r"^label must be a str, got 1$"):
        timeline.record(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^expected must contain \(time, label\) pairs, got 1$"):
        timeline.assert_matches([1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"^expected must be a list of \(time, label\) pairs"):
        timeline.assert_matches(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^tolerance must be >= 0, got -1$"):
        timeline.assert_matches([], tolerance=-1)


# -- no_waits -------------------------------------------------------------------


async def test_no_waits_turns_deliberate_waits_to_zero() -> None:
    """Inside no_waits() a deliberate wait is 0; outside, and after, it is what was asked."""
    assert _waits.deliberate(2.5) == 2.5
    with no_waits():
        assert _waits.waits_skipped()
        assert _waits.deliberate(2.5) == 0.0
    assert not _waits.waits_skipped()
    assert _waits.deliberate(2.5) == 2.5


async def test_no_waits_reaches_tasks_started_inside_it() -> None:
    """Tasks started inside the block see it, wherever their nursery is; tasks started
    before or after it do not, even while it is open."""
    seen: dict[str, bool] = {}
    entered = trio.Event()

    async def look(name: str) -> None:
        seen[name] = _waits.waits_skipped()

    async def look_once_entered() -> None:
        await entered.wait()
        await look("before")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(look_once_entered)
        with no_waits():
            nursery.start_soon(look, "inside")
            async with trio.open_nursery() as inner:
                inner.start_soon(look, "inner")
            entered.set()
            await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(look, "after")
    assert seen == {"before": False, "inside": True, "inner": True, "after": False}


def test_no_waits_nests_and_restores_on_errors() -> None:
    """Blocks nest; leaving one, by an exception too, restores the enclosing setting."""
    with no_waits():
        with _waits.SkippedWaits(skip=False):
            assert not _waits.waits_skipped()
        assert _waits.waits_skipped()
        with pytest.raises(KeyError), no_waits():
            raise KeyError("x")
        assert _waits.waits_skipped()
    assert not _waits.waits_skipped()


async def test_one_no_waits_object_shared_by_concurrent_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """One no_waits() object entered by two overlapping tasks restores each task's own
    setting (it popped the other task's token, and ContextVar.reset raised ValueError)."""
    skip = no_waits()
    after: dict[str, bool] = {}

    async def use(name: str, start: float, hold: float) -> None:
        await trio.sleep(start)
        with skip:
            assert _waits.waits_skipped()
            await trio.sleep(hold)
        after[name] = _waits.waits_skipped()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(use, "a", 0.0, 1.0)
        nursery.start_soon(use, "b", 0.5, 1.0)
    assert after == {"a": False, "b": False}
    with skip, skip:
        assert _waits.waits_skipped()
    assert not _waits.waits_skipped()


def test_no_waits_does_not_leak_into_other_contexts() -> None:
    """A context copied before the block does not see it (tests side by side stay apart)."""
    before = contextvars.copy_context()
    with no_waits():
        assert not before.run(_waits.waits_skipped)


def test_no_waits_is_not_a_decorator() -> None:
    """Decorating an async function would cover only creating its coroutine: refused."""
    with pytest.raises(TypeError):
        no_waits()(lambda: None)  # type: ignore[operator]


@pytest.mark.usefixtures("no_waits")
async def test_no_waits_fixture_covers_the_whole_test() -> None:
    """The plugin's no_waits fixture switches waits off for the test body."""
    assert _waits.waits_skipped()


async def test_no_waits_skips_retry_backoff(autojump_clock: trio.testing.MockClock) -> None:
    """Inside no_waits() a Retry's backoff (and retry_after) takes no fake time."""
    service = FakeService(latency=0.5, fail_calls={1, 2}, retry_after=30.0)
    retry = trine.Retry(attempts=3, backoff=trine.Backoff.constant(10.0))
    with no_waits(), assert_takes(1.5):
        assert await retry.call(service.call) == 3


async def test_no_waits_skips_breaker_reset_timeout(autojump_clock: trio.testing.MockClock) -> None:
    """Inside no_waits() an open breaker admits a probe at once: its reset timeout is 0."""
    breaker = trine.CircuitBreaker(failure_threshold=1, reset_timeout=60.0)
    service = FakeService(fail_calls={1})
    with no_waits():
        with pytest.raises(FakeServiceError):
            await breaker.call(service.call)
        assert await breaker.call(service.call) == 2
    assert breaker.state is trine.CircuitState.CLOSED


async def test_a_very_fast_rate_limiter_shifts_time_as_the_guide_shows(
    autojump_clock: trio.testing.MockClock, timeline: Timeline
) -> None:
    """RateLimiter(200_000, burst=1) in front of two calls that arrive together starts the
    second one emission interval (5 µs) later; the diff docs/guide/testing.rst quotes is this
    one. With the default burst (400 here) both start at once."""
    import pathlib

    service = FakeService(latency=0.1)
    policy = trine.Policy(rate=trine.RateLimiter(200_000, burst=1))

    async def fetch(name: str) -> None:
        await policy.call(service.call, name)
        timeline.record(f"done {name}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fetch, "a")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(fetch, "b")
    with pytest.raises(AssertionError) as caught:
        timeline.assert_matches([(0.1, "done a"), (0.1, "done b")])
    guide = pathlib.Path(__file__).parent.parent / "docs" / "guide" / "testing.rst"
    quoted = "\n".join(f"    {line}" for line in f"AssertionError: {caught.value}".splitlines())
    assert quoted in guide.read_text()
    assert [call.start for call in service.calls] == [0.0, 5e-06]
    default = trine.Policy(rate=trine.RateLimiter(200_000))
    start = trio.current_time()
    await trine.gather(
        functools.partial(default.call, service.call, "c"),
        functools.partial(default.call, service.call, "d"),
    )
    assert [call.start - start for call in service.calls[2:]] == [0.0, 0.0]
