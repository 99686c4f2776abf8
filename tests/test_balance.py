"""Balancer: every strategy's choices, health, membership, retries elsewhere, hedged calls."""

from __future__ import annotations

import contextlib
import math
import pathlib
import random
import re
import textwrap
from collections.abc import AsyncIterator, Iterable, Iterator
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import trine
from trine.testing import FakeScript, FakeService, assert_takes

ENDPOINTS = ["a", "b", "c"]


class ScriptedRandom(random.Random):
    """A Random whose ``random()`` returns the given numbers in turn (peak_ewma's draws)."""

    def __init__(self, values: Iterable[float]) -> None:
        super().__init__(0)
        self.values = list(values)

    def random(self) -> float:
        return self.values.pop(0)


class Down(Exception):
    """An endpoint's failure in these tests."""


def service(**scripts: FakeScript) -> FakeService:
    """A fake backend whose calls are keyed by endpoint (the first argument)."""
    return FakeService(latency=0.1, scripts=scripts)


async def where_it_went(endpoint: str, *args: object) -> str:
    return endpoint


async def calls(balancer: trine.Balancer[str], count: int, **kwargs: Any) -> str:
    return "".join([await balancer.call(where_it_went, **kwargs) for _ in range(count)])


async def _trip(breaker: trine.CircuitBreaker) -> None:
    """Open *breaker* the way a failing service does: failure_threshold failures in a row."""

    async def fail() -> None:
        raise ConnectionError("down")

    for _ in range(breaker.failure_threshold):
        with pytest.raises(ConnectionError):
            await breaker.call(fail)
    assert breaker.state is trine.CircuitState.OPEN


def row(balancer: trine.Balancer[Any], endpoint: object) -> trine.EndpointStatistics[Any]:
    return next(r for r in balancer.statistics().endpoints if r.endpoint == endpoint)


# --- strategies ---------------------------------------------------------------------


async def test_round_robin_takes_each_endpoint_in_turn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``a b c a b c ...``, and skips an endpoint that is not available."""
    breakers = {ep: trine.CircuitBreaker(name=ep) for ep in ENDPOINTS}
    async with trine.Balancer(
        ENDPOINTS, strategy="round_robin", breaker=breakers.__getitem__
    ) as balancer:
        assert await calls(balancer, 7) == "abcabca"
        breakers["c"].force_open()
        assert await calls(balancer, 5) == "babab"


async def test_weighted_is_nginx_smooth_weighted_round_robin(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Weights 5, 1, 1: ``a a b a c a a`` every 7 calls, spread out, never in a burst."""
    async with trine.Balancer(ENDPOINTS, strategy="weighted", weights={"a": 5}) as balancer:
        assert await calls(balancer, 14) == "aabacaa" * 2
        assert [r.weight for r in balancer.statistics().endpoints] == [5.0, 1.0, 1.0]


async def test_weights_may_be_a_function_and_added_endpoints_carry_their_own(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``weights=`` as a function; ``add(weight=)`` overrides it."""
    async with trine.Balancer(
        ["a", "b"], strategy="weighted", weights=lambda ep: 2 if ep == "a" else 1
    ) as balancer:
        assert await calls(balancer, 3) == "aba"
        balancer.add("c", weight=3)
        assert row(balancer, "c").weight == 3.0
        assert sorted(await calls(balancer, 6)) == sorted("aabccc")


async def test_least_pending_sends_the_call_where_fewest_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Two calls held on a, one on b: the next goes to c, the one after to b; ties in turn."""
    release = trio.Event()
    sent: list[str] = []

    async def held(endpoint: str) -> None:
        sent.append(endpoint)
        await release.wait()

    async with trine.Balancer(ENDPOINTS, strategy="least_pending") as balancer:
        assert await calls(balancer, 3) == "abc"  # all idle: in turn
        async with trio.open_nursery() as nursery:
            for where in ("a", "a", "b", None, None, None, None):
                only = None if where is None else (lambda ep, where=where: ep == where)
                nursery.start_soon(partial(balancer.call, held, where=only))
                await trio.testing.wait_all_tasks_blocked()
            assert [r.pending for r in balancer.statistics().endpoints] == [3, 2, 2]
            release.set()
    # pending a=2, b=1, c=0: c; then b=1, c=1 tie, in turn after c: b; then c; then a=2,b=2,c=2: a
    assert sent == ["a", "a", "b", "c", "b", "c", "a"]


async def learn(balancer: trine.Balancer[str], latencies: dict[str, float]) -> None:
    """One call on each endpoint (a single candidate: no random draw) taking its latency."""

    async def take(endpoint: str) -> None:
        await trio.sleep(latencies[endpoint])

    for endpoint in latencies:
        await balancer.call(take, where=lambda ep, endpoint=endpoint: ep == endpoint)


async def test_peak_ewma_picks_two_at_random_and_takes_the_cheaper(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """a, b, c answer in 0.1, 0.5 and 1 s; each call draws a pair and takes the faster of it."""
    # A draw is int(r * 3) for the first, int(r * 2) for the second (skipping the first).
    rng = ScriptedRandom([0.0, 0.0, 0.7, 0.0, 0.4, 0.9, 0.9, 0.6])
    async with trine.Balancer(ENDPOINTS, rng=rng, decay=1e9) as balancer:
        await learn(balancer, {"a": 0.1, "b": 0.5, "c": 1.0})
        # pairs (a, b), (c, a), (b, c), (c, b)
        assert await calls(balancer, 4) == "aabb"
        assert rng.values == []


async def test_peak_ewma_tries_an_idle_new_endpoint_and_avoids_a_busy_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Never answered: costs nothing while idle (so it is tried), avoided while busy."""
    rng = ScriptedRandom([0.0, 0.0] * 3)  # always the pair (a, b)
    release = trio.Event()

    async def held(endpoint: str) -> str:
        await release.wait()
        return endpoint

    async with trine.Balancer(["a", "b"], rng=rng, decay=1e9) as balancer:
        await learn(balancer, {"a": 0.1})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(balancer.call, held))  # b: unknown and idle
            await trio.testing.wait_all_tasks_blocked()
            assert row(balancer, "b").pending == 1
            assert await calls(balancer, 2) == "aa"  # b: unknown and busy
            release.set()


async def test_peak_ewma_weighs_latency_by_the_calls_pending(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """a is 4 times faster than b: a takes calls until 4 are pending there (cost 0.25 * 5 > 1)."""
    rng = ScriptedRandom([0.0, 0.0] * 5)  # always the pair (a, b)
    release = trio.Event()
    sent: list[str] = []

    async def held(endpoint: str) -> None:
        sent.append(endpoint)
        await release.wait()

    async with trine.Balancer(["a", "b"], rng=rng, decay=1e9) as balancer:
        await learn(balancer, {"a": 0.25, "b": 1.0})
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(partial(balancer.call, held))
                await trio.testing.wait_all_tasks_blocked()
            release.set()
    assert sent == ["a", "a", "a", "a", "b"]


async def test_peak_ewma_estimate_is_a_peak_that_decays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A slow answer sets the estimate at once; faster ones pull it down with time constant
    ``decay``; with no answers it decays towards zero."""
    latencies = iter([1.0, 3.0, 1.0])

    async def call(endpoint: str) -> None:
        await trio.sleep(next(latencies))

    async with trine.Balancer(["a"], decay=10.0) as balancer:
        await balancer.call(call)  # ends at 1.0 with latency 1.0
        assert row(balancer, "a").latency == 1.0
        await balancer.call(call)  # ends at 4.0 with 3.0: a peak, taken at once
        assert row(balancer, "a").latency == 3.0
        await balancer.call(call)  # ends at 5.0 with 1.0: blended over 1 s of decay
        weight = math.exp(-1.0 / 10.0)
        expected = 3.0 * weight + 1.0 * (1 - weight)
        assert row(balancer, "a").latency == pytest.approx(expected)
        await trio.sleep(10.0)
        assert row(balancer, "a").latency == pytest.approx(expected * math.exp(-1.0))


async def test_a_fast_failure_does_not_make_an_endpoint_look_fast(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failure can only raise the estimate: 1 s answers, then instant errors, stays near 1 s."""

    async def call(endpoint: str, fail: bool) -> None:
        if fail:
            raise Down(endpoint)
        await trio.sleep(1.0)

    async with trine.Balancer(["a"], decay=1e9) as balancer:
        await balancer.call(call, False)
        for _ in range(3):
            with pytest.raises(Down):
                await balancer.call(call, True)
        assert row(balancer, "a").latency == pytest.approx(1.0)
        assert row(balancer, "a").failures == 3


async def test_an_endpoint_whose_first_call_failed_is_as_slow_as_the_slowest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A never-answered endpoint is free to try; after a failed first call it is not."""

    async def fail(endpoint: str) -> None:
        raise Down(endpoint)

    async with trine.Balancer(ENDPOINTS, decay=1e9) as balancer:
        await learn(balancer, {"a": 0.1, "b": 0.5})
        with pytest.raises(Down):
            await balancer.call(fail, where=lambda ep: ep == "c")
        assert row(balancer, "c").latency == pytest.approx(0.5)


async def test_peak_ewma_avoids_an_endpoint_whose_calls_hang(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A call hanging on a for 5 s makes a cost at least 5 s per call, above b's 1 s."""
    hang = trio.Event()

    async def hangs(endpoint: str) -> str:
        await hang.wait()
        return endpoint

    rng = ScriptedRandom([0.0, 0.0] * 3)  # always the pair (a, b)
    async with trine.Balancer(["a", "b"], rng=rng, decay=1e9) as balancer:
        await learn(balancer, {"a": 0.1, "b": 1.0})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(balancer.call, hangs))  # a: 0.1 < 1.0
            await trio.testing.wait_all_tasks_blocked()
            assert row(balancer, "a").pending == 1
            await trio.sleep(0.3)
            assert await balancer.call(where_it_went) == "a"  # max(0.1, 0.3) * 2 < 1.0
            await trio.sleep(5)
            assert await balancer.call(where_it_went) == "b"  # max(0.1, 5.3) * 2 > 1.0
            hang.set()


# --- capability routing -------------------------------------------------------------


async def test_where_routes_a_call_to_the_endpoints_it_accepts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``where=`` restricts the choice; the strategy chooses among what is left."""
    gpus = {"b", "c"}
    async with trine.Balancer(ENDPOINTS, strategy="round_robin") as balancer:
        assert await calls(balancer, 4, where=lambda ep: ep in gpus) == "bcbc"
        assert await calls(balancer, 2, where=lambda ep: ep == "a") == "aa"


async def test_where_that_matches_nothing_is_no_endpoint_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No endpoint accepted: NoEndpointError (also a LookupError), the function never called."""
    async with trine.Balancer(ENDPOINTS) as balancer:
        with pytest.raises(
            trine.NoEndpointError, match=r"^no endpoint of the 3 in the balancer matches where="
        ) as info:
            await balancer.call(where_it_went, where=lambda ep: False)
        assert isinstance(info.value, LookupError)
        assert info.value.endpoints == 3
        assert balancer.statistics().refusals == 1


async def test_an_empty_balancer_is_no_endpoint_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With no endpoints a call fails at once, and is a checkpoint."""
    async with trine.Balancer[str]() as balancer:
        with (
            trio.testing.assert_checkpoints(),
            pytest.raises(trine.NoEndpointError, match=r"^the balancer has no endpoints$"),
        ):
            await balancer.call(where_it_went)


async def test_where_must_be_a_plain_function(autojump_clock: trio.testing.MockClock) -> None:
    """An async predicate would always be true: refused, naming where."""

    async def has_gpu(endpoint: str) -> bool:
        return True

    async with trine.Balancer(ENDPOINTS) as balancer:
        with pytest.raises(TypeError, match=r"^where must be a plain function"):
            await balancer.call(where_it_went, where=has_gpu)
        with pytest.raises(TypeError, match=r"^where must be a plain function returning"):
            await balancer.call(where_it_went, where=lambda ep: has_gpu(ep))


# --- health: breakers, ejection, health checks ------------------------------------------


async def test_an_open_breaker_takes_its_endpoint_out_until_it_half_opens(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """b fails twice and opens (reset 5 s): calls avoid it, then a probe goes to it."""
    backend = service(b=FakeScript(fail_calls={1, 2}))
    async with trine.Balancer(
        ENDPOINTS,
        strategy="round_robin",
        breaker=lambda ep: trine.CircuitBreaker(name=ep, failure_threshold=2, reset_timeout=5),
    ) as balancer:
        for _ in range(2):
            for _ in range(3):
                with contextlib.suppress(trine.testing.FakeServiceError):
                    await balancer.call(backend.call)
        assert row(balancer, "b").state == "open"  # since 0.5 s, its second failure
        assert await calls(balancer, 4) == "acac"
        await trio.sleep(5)
        assert row(balancer, "b").state == "available"  # half-open, a probe slot free
        assert await calls(balancer, 3) == "abc"


async def test_every_endpoint_open_is_circuit_open_error_with_the_soonest_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """a opens at 0 with reset 10 s, b at 3 s with reset 4 s: retry_after at 4 s is 3 s (b's)."""
    breakers = {
        "a": trine.CircuitBreaker(name="a", reset_timeout=10),
        "b": trine.CircuitBreaker(name="b", reset_timeout=4),
    }
    async with trine.Balancer(["a", "b"], breaker=breakers.__getitem__, name="api") as balancer:
        await _trip(breakers["a"])
        await trio.sleep(3)
        await _trip(breakers["b"])
        await trio.sleep(1)
        with trio.testing.assert_checkpoints(), pytest.raises(trine.CircuitOpenError) as info:
            await balancer.call(where_it_went)
        assert info.value.retry_after == 3.0
        assert info.value.name == "api"
        assert "none of the balancer's 2 endpoints" in info.value.__notes__[0]
        assert balancer.statistics().refusals == 1


async def test_forced_open_endpoints_only_is_an_infinite_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every breaker forced open: refused, and retry_after says never by itself."""
    breaker = trine.CircuitBreaker()
    breaker.force_open()
    async with trine.Balancer(["a"], breaker=lambda ep: breaker) as balancer:
        with pytest.raises(trine.CircuitOpenError) as info:
            await balancer.call(where_it_went)
        assert info.value.retry_after == math.inf
        assert row(balancer, "a").state == "forced_open"


async def test_a_half_open_endpoint_with_its_probe_slot_taken_is_not_chosen(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """While b's one probe runs, calls go elsewhere; b's own breaker never refuses one."""
    b_breaker = trine.CircuitBreaker(name="b", reset_timeout=1, half_open_max_calls=1)
    async with trine.Balancer(
        ["a", "b"],
        strategy="round_robin",
        breaker=lambda ep: b_breaker if ep == "b" else trine.CircuitBreaker(name=ep),
    ) as balancer:
        await _trip(b_breaker)
        await trio.sleep(1)
        probe_running = trio.Event()
        release = trio.Event()

        async def slow(endpoint: str) -> str:
            if endpoint == "b":
                probe_running.set()
                await release.wait()
            return endpoint

        async with trio.open_nursery() as nursery:
            assert await balancer.call(slow) == "a"
            nursery.start_soon(balancer.call, slow)  # goes to b, the probe
            await probe_running.wait()
            assert await calls(balancer, 3) == "aaa"
            release.set()
        assert b_breaker.statistics().rejections == 0


async def test_outlier_ejection_takes_an_endpoint_out_for_a_time_that_grows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Three failures in a row eject b for 10 s; ejected again soon after, for 20 s."""
    failing = {"b"}

    async def call(endpoint: str) -> str:
        if endpoint in failing:
            raise Down(endpoint)
        return endpoint

    async with trine.Balancer(
        ["a", "b"],
        strategy="round_robin",
        ejection=trine.OutlierEjection(consecutive_failures=3, base_time=10, max_ejected=0.5),
    ) as balancer:
        for _ in range(3):
            await balancer.call(call)
            with pytest.raises(Down):
                await balancer.call(call)
        assert row(balancer, "b").state == "ejected"
        assert row(balancer, "b").ejected_for == 10.0
        assert (
            await calls(
                balancer,
                3,
            )
            == "aaa"
        )
        await trio.sleep(10)
        # Back at 10 s, fails three more times at once: ejected for 2 * 10 s.
        for _ in range(3):
            with pytest.raises(Down):
                await balancer.call(call, where=lambda ep: ep == "b")
        assert row(balancer, "b").ejected_for == 20.0
        assert row(balancer, "b").ejections == 2


async def test_ejection_shortens_again_after_time_back_in_service(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Each base_time served takes one step off the next ejection: after 30 s back, 10 s again."""

    async def fail(endpoint: str) -> None:
        raise Down(endpoint)

    rule = trine.OutlierEjection(consecutive_failures=1, base_time=10, max_time=25, max_ejected=1)
    async with trine.Balancer(["a"], ejection=rule) as balancer:
        with pytest.raises(Down):
            await balancer.call(fail)
        assert row(balancer, "a").ejected_for == 10.0
        await trio.sleep(10)
        with pytest.raises(Down):
            await balancer.call(fail)
        assert row(balancer, "a").ejected_for == 20.0
        await trio.sleep(20)
        with pytest.raises(Down):
            await balancer.call(fail)
        assert row(balancer, "a").ejected_for == 25.0  # 30 s, capped at max_time
        await trio.sleep(25 + 30)
        with pytest.raises(Down):
            await balancer.call(fail)
        assert row(balancer, "a").ejected_for == 10.0  # three steps back: level 0, then 1


async def test_at_most_max_ejected_of_the_endpoints_are_ejected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With max_ejected=0.25 of 4 endpoints, one is ejected; the others keep serving."""

    async def fail(endpoint: str) -> None:
        raise Down(endpoint)

    rule = trine.OutlierEjection(consecutive_failures=1, max_ejected=0.25)
    async with trine.Balancer(["a", "b", "c", "d"], strategy="round_robin", ejection=rule) as b:
        for _ in range(8):
            with pytest.raises(Down):
                await b.call(fail)
        assert [r.state for r in b.statistics().endpoints].count("ejected") == 1


async def test_ejection_counts_only_the_failures_it_records(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``record=Down``: a ValueError resets the run, as a success does."""
    errors = iter([Down, Down, ValueError, Down, Down, Down])

    async def call(endpoint: str) -> None:
        raise next(errors)("x")

    rule = trine.OutlierEjection(consecutive_failures=3, record=Down, max_ejected=1)
    async with trine.Balancer(["a"], ejection=rule) as balancer:
        for _ in range(5):
            with pytest.raises((Down, ValueError)):
                await balancer.call(call)
        assert row(balancer, "a").state == "available"
        with pytest.raises(Down):
            await balancer.call(call)
        assert row(balancer, "a").state == "ejected"


async def test_health_checks_take_a_failing_endpoint_out_until_it_passes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Checks every 5 s from the start: c fails the checks at 0 and 5 s, passes at 10 s."""
    checked: list[tuple[str, float]] = []

    async def check(endpoint: str) -> bool:
        checked.append((endpoint, trio.current_time()))
        return not (endpoint == "c" and trio.current_time() < 10)

    async with trine.Balancer(
        ENDPOINTS, strategy="round_robin", health_check=check, check_interval=5
    ) as balancer:
        await trio.testing.wait_all_tasks_blocked()
        assert row(balancer, "c").state == "unhealthy"
        assert await calls(balancer, 4) == "abab"
        await trio.sleep(10)
        await trio.testing.wait_all_tasks_blocked()  # the check at 10 s has answered
        assert row(balancer, "c").state == "available"
        assert "c" in await calls(balancer, 3)
    assert [time for endpoint, time in checked if endpoint == "c"] == [0.0, 5.0, 10.0]


async def test_a_health_check_that_raises_or_hangs_fails(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Raising fails the check; so does taking longer than check_interval (cut there)."""

    async def check(endpoint: str) -> bool:
        if endpoint == "a":
            raise Down("no pong")
        if endpoint == "b":
            await trio.sleep_forever()
        return True

    async with trine.Balancer(ENDPOINTS, health_check=check, check_interval=2) as balancer:
        await trio.testing.wait_all_tasks_blocked()
        assert row(balancer, "a").state == "unhealthy"
        assert row(balancer, "b").state == "available"  # its check still runs
        await trio.sleep(2)
        await trio.testing.wait_all_tasks_blocked()  # b's check was cut at 2 s
        assert row(balancer, "b").state == "unhealthy"
        assert await calls(balancer, 2) == "cc"


async def test_every_endpoint_unhealthy_retries_after_the_next_check(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """All unhealthy at 1 s with checks every 5 s: refused with retry_after 4 s."""

    async def check(endpoint: str) -> bool:
        return False

    async with trine.Balancer(ENDPOINTS, health_check=check, check_interval=5) as balancer:
        await trio.sleep(1)
        with pytest.raises(trine.CircuitOpenError) as info:
            await balancer.call(where_it_went)
        assert info.value.retry_after == 4.0


async def test_an_added_endpoint_is_checked_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """add() while open starts its first health check right away, not at the next sweep."""
    checked: list[tuple[str, float]] = []

    async def check(endpoint: str) -> bool:
        checked.append((endpoint, trio.current_time()))
        return endpoint != "d"

    async with trine.Balancer(ENDPOINTS, health_check=check, check_interval=60) as balancer:
        await trio.sleep(3)
        balancer.add("d")
        await trio.testing.wait_all_tasks_blocked()
        assert ("d", 3.0) in checked
        assert row(balancer, "d").state == "unhealthy"


async def test_regression_a_balancer_with_health_checks_whose_block_ends_at_once_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A block that ends before the health-check task's first step closes cleanly, at once."""
    checked: list[str] = []

    async def check(endpoint: str) -> bool:
        checked.append(endpoint)
        return True

    with assert_takes(0.0):
        async with trine.Balancer(ENDPOINTS, health_check=check, check_interval=5):
            pass
    assert checked == []


# --- membership ------------------------------------------------------------------------


async def test_a_removed_endpoint_finishes_its_calls_and_gets_no_more(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """b is removed while a call runs on it: that call returns; later calls never go to b."""
    backend = service(b=FakeScript(latency=5.0))
    async with trine.Balancer(ENDPOINTS, strategy="round_robin") as balancer:
        results: list[int] = []
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(lambda: _append(results, balancer.call(backend.call)))
            await trio.sleep(1)
            balancer.remove("b")
            assert balancer.endpoints == ("a", "c")
            assert row(balancer, "b").state == "removed"
            assert row(balancer, "b").pending == 1
            assert sorted(await calls(balancer, 4)) == ["a", "a", "c", "c"]
        assert len(results) == 3
        assert [call.key for call in backend.calls if call.outcome == "ok"].count("b") == 1
        assert "b" not in [r.endpoint for r in balancer.statistics().endpoints]


async def _append(results: list[Any], awaitable: Any) -> None:
    results.append(await awaitable)


async def test_endpoints_added_while_calls_run_take_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Start with one endpoint, add two: round robin includes them from the next call."""
    async with trine.Balancer(["a"], strategy="round_robin") as balancer:
        assert await calls(balancer, 2) == "aa"
        balancer.add("b")
        balancer.add("c")
        assert await calls(balancer, 3) == "bca"
        balancer.remove("a")
        balancer.add("a")  # back, at the end
        assert balancer.endpoints == ("b", "c", "a")


async def test_add_and_remove_refuse_bad_endpoints(autojump_clock: trio.testing.MockClock) -> None:
    """Duplicates, unknown and unhashable endpoints are refused, naming them."""
    balancer = trine.Balancer(["a"])
    with pytest.raises(ValueError, match=r"^endpoint 'a' is in the balancer already$"):
        balancer.add("a")
    with pytest.raises(ValueError, match=r"^endpoint 'z' is not in the balancer$"):
        balancer.remove("z")
    with pytest.raises(TypeError, match=r"^endpoint must be hashable, got \[1\]$"):
        balancer.add([1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^endpoint 'a' is in the balancer already$"):
        trine.Balancer(["a", "a"])


# --- retries elsewhere -----------------------------------------------------------------


async def test_a_retry_outside_the_balancer_retries_on_another_endpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``Policy(retry=...).call(balancer.call, fn)``: three attempts, three endpoints."""
    tried: list[str] = []

    async def call(endpoint: str) -> str:
        tried.append(endpoint)
        if endpoint != "c":
            raise Down(endpoint)
        return endpoint

    policy = trine.Policy(retry=trine.Retry(attempts=3, backoff=trine.Backoff.constant(0.1)))
    for strategy in ("round_robin", "least_pending", "weighted", "peak_ewma"):
        tried.clear()
        async with trine.Balancer(["a", "b", "c"], strategy=strategy, rng=random.Random(5)) as b:
            # Whichever endpoint comes first, every retry goes to one not tried yet.
            assert await policy.call(b.call, call) == "c"
            assert len(tried) == len(set(tried))
            assert b.statistics().rerouted == len(tried) - 1


async def test_after_a_success_the_failed_endpoints_are_not_avoided_any_more(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A success clears the task's marks: round robin resumes its order."""
    fail_next = {"a"}

    async def call(endpoint: str) -> str:
        if endpoint in fail_next:
            fail_next.discard(endpoint)
            raise Down(endpoint)
        return endpoint

    async with trine.Balancer(ENDPOINTS, strategy="round_robin") as balancer:
        with pytest.raises(Down):
            await balancer.call(call)  # a fails
        assert await balancer.call(call) == "b"
        assert await calls(balancer, 3) == "cab"


async def test_with_one_endpoint_a_retry_goes_back_to_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Avoiding is a preference: when no other endpoint is available, the failed one is used."""
    results = iter([Down("a"), "ok"])

    async def call(endpoint: str) -> str:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    policy = trine.Policy(retry=trine.Retry(attempts=2, backoff=trine.Backoff.constant(0)))
    async with trine.Balancer(["a"]) as balancer:
        assert await policy.call(balancer.call, call) == "ok"
        assert row(balancer, "a").calls == 2


async def test_marks_are_per_task(autojump_clock: trio.testing.MockClock) -> None:
    """Another task's failure does not steer this task's calls."""

    async def fail(endpoint: str) -> None:
        raise Down(endpoint)

    async with trine.Balancer(ENDPOINTS, strategy="round_robin") as balancer:
        async with trio.open_nursery() as nursery:

            async def failing() -> None:
                with pytest.raises(Down):
                    await balancer.call(fail)

            nursery.start_soon(failing)  # a fails, in another task
        assert await calls(balancer, 3) == "bca"
        assert balancer.statistics().rerouted == 0


async def test_tasks_started_after_a_failure_do_not_inherit_its_marks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A new task copies its parent's context, but not the parent's marks: round robin goes on."""
    tried: list[str] = []

    async def fail(endpoint: str) -> None:
        raise Down(endpoint)

    async def call(endpoint: str) -> str:
        tried.append(endpoint)
        await trio.sleep(1.0)
        return endpoint

    async with trine.Balancer(ENDPOINTS, strategy="round_robin") as balancer:
        with pytest.raises(Down):
            await balancer.call(fail)  # a fails: this task is marked
        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(balancer.call, call)
        assert trio.current_time() == 1.0
        assert sorted(tried) == ["a", "b", "b", "c", "c"]  # in turn: b c a b c
        assert balancer.statistics().rerouted == 0
        assert await balancer.call(call) == "b"  # a's turn, but this task's own mark holds
        assert balancer.statistics().rerouted == 1


# --- policy inside, and composing ---------------------------------------------------------


async def test_policy_inside_wraps_each_call_on_an_endpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``policy=Policy(timeout=1)`` times out each endpoint call; the breaker sees it fail."""
    backend = service(a=FakeScript(latency=5.0))
    async with trine.Balancer(
        ["a"],
        policy=trine.Policy(timeout=1.0),
        breaker=lambda ep: trine.CircuitBreaker(failure_threshold=1),
    ) as balancer:
        with assert_takes(1.0), pytest.raises(trio.TooSlowError):
            await balancer.call(backend.call)
        assert row(balancer, "a").state == "open"


async def test_a_balancer_is_a_policy_for_a_pipeline_stage(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``Pipeline.map(fn, policy=balancer)`` sends each item to an endpoint: fn(endpoint, item)."""

    async def fetch(endpoint: str, item: int) -> str:
        return f"{item}@{endpoint}"

    async with trine.Balancer(["a", "b"], strategy="round_robin") as balancer:
        out = await trine.Pipeline.source(range(4)).map(fetch, policy=balancer).collect()
    assert out == ["0@a", "1@b", "2@a", "3@b"]


async def test_a_function_that_is_not_async_is_a_type_error_and_counts_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A plain function: TypeError naming fn, no call counted on any endpoint."""

    def plain(endpoint: str) -> str:
        return endpoint

    async with trine.Balancer(["a"]) as balancer:
        with pytest.raises(TypeError, match=r"^fn must be an async function, but calling it"):
            await balancer.call(plain)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^fn must be an async function, got the coroutine"):
            await balancer.call(where_it_went("a"))  # type: ignore[arg-type]
        assert (row(balancer, "a").calls, row(balancer, "a").pending) == (0, 0)


async def test_calls_outside_the_block_are_refused(autojump_clock: trio.testing.MockClock) -> None:
    """Before ``async with``: RuntimeError saying how; after: ClosedResourceError."""
    balancer = trine.Balancer(["a"])
    with pytest.raises(RuntimeError, match=r"^this Balancer is not open: use it inside"):
        await balancer.call(where_it_went)
    async with balancer:
        pass
    with pytest.raises(trio.ClosedResourceError, match=r"^this Balancer is closed"):
        await balancer.hedged_call(where_it_went, delay=1)


# --- hedged calls ----------------------------------------------------------------------


async def test_a_hedged_call_sends_its_backup_to_another_endpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """a takes 10 s: after 1 s the hedge goes to b (2 s), which wins at 3 s; a is cancelled."""
    backend = service(a=FakeScript(latency=10.0), b=FakeScript(latency=2.0))
    async with trine.Balancer(["a", "b", "c"], strategy="round_robin") as balancer:
        with assert_takes(3.0):
            await balancer.hedged_call(backend.call, delay=1.0)
        outcomes = {call.key: call.outcome for call in backend.calls}
        assert outcomes == {"a": "cancelled", "b": "ok"}
        stats = balancer.statistics()
        assert (stats.hedged_calls, stats.hedges_started, stats.hedges_won) == (1, 1, 1)
        assert [r.pending for r in stats.endpoints] == [0, 0, 0]


async def test_each_attempt_goes_to_a_different_endpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Four attempts allowed on three slow endpoints: three attempts, one each, no fourth."""
    backend = FakeService(latency=10.0)
    async with trine.Balancer(ENDPOINTS, strategy="peak_ewma", rng=random.Random(2)) as balancer:
        with assert_takes(10.0):
            await balancer.hedged_call(backend.call, delay=1.0, attempts=4)
        assert sorted(call.key for call in backend.calls) == ["a", "b", "c"]
        assert balancer.statistics().hedges_started == 2


async def test_a_hedged_call_with_one_endpoint_starts_no_hedge(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """No other endpoint: the first attempt is the only one."""
    backend = service(a=FakeScript(latency=5.0))
    async with trine.Balancer(["a"]) as balancer:
        with assert_takes(5.0):
            await balancer.hedged_call(backend.call, delay=1.0)
        assert balancer.statistics().hedges_started == 0


async def test_a_hedged_call_skips_unavailable_endpoints_and_honours_where(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The hedge goes only to an available endpoint the predicate accepts."""
    breakers = {ep: trine.CircuitBreaker(name=ep) for ep in "abcd"}
    breakers["b"].force_open()
    backend = service(a=FakeScript(latency=10.0), c=FakeScript(latency=1.0))
    async with trine.Balancer(
        list("abcd"), strategy="round_robin", breaker=breakers.__getitem__
    ) as balancer:
        await balancer.hedged_call(backend.call, delay=1.0, attempts=3, where=lambda ep: ep != "d")
        assert sorted(call.key for call in backend.calls) == ["a", "c"]


async def test_a_failed_attempt_starts_the_next_on_another_endpoint_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """a fails after 0.5 s: b is tried at once, without waiting out the delay."""
    backend = service(a=FakeScript(latency=0.5, fail_calls={1}), b=FakeScript(latency=1.0))
    async with trine.Balancer(["a", "b"], strategy="round_robin") as balancer:
        with assert_takes(1.5):
            await balancer.hedged_call(backend.call, delay=10.0)


async def test_a_hedged_call_where_every_attempt_fails_raises_the_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every attempt failing: an ExceptionGroup in start order; the next call avoids them."""

    async def fail(endpoint: str) -> None:
        await trio.sleep(1)
        raise Down(endpoint)

    async with trine.Balancer(ENDPOINTS, strategy="round_robin") as balancer:
        with pytest.raises(ExceptionGroup, match=r"^all 2 attempts failed") as info:
            await balancer.hedged_call(fail, delay=0.5)
        assert [str(error) for error in info.value.exceptions] == ["a", "b"]
        assert await balancer.call(where_it_went) == "c"


async def test_hedged_call_budget_and_percentile(autojump_clock: trio.testing.MockClock) -> None:
    """A budget with no room refuses the hedge (counted); a Percentile delay is filled."""
    backend = service(a=FakeScript(latency=3.0), b=FakeScript(latency=1.0))
    p50 = trine.Percentile(50, min_samples=1, initial=1.0)
    budget = trine.RetryBudget(ratio=0.0, min_per_second=0.0)
    async with trine.Balancer(["a", "b"], strategy="round_robin") as balancer:
        with assert_takes(3.0):
            await balancer.hedged_call(backend.call, delay=p50, budget=budget)
        assert balancer.statistics().budget_refusals == 1
        assert p50.histogram.count == 1
        assert [r.pending for r in balancer.statistics().endpoints] == [0, 0]
        assert [r.calls for r in balancer.statistics().endpoints] == [1, 0]


class SideEffectBudget:
    """A budget that always allows, and does something between a hedge's choice and its start."""

    def __init__(self, effect: Any) -> None:
        self.effect = effect

    def deposit(self) -> None:
        pass

    def try_withdraw(self) -> bool:
        self.effect()
        return True


@pytest.mark.parametrize("how", ["removed", "opened"])
async def test_regression_a_hedge_chosen_endpoint_taken_out_before_it_starts_is_not_called(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """An endpoint removed (or opened) after a hedge chose it, before its task ran: the
    attempt goes to another endpoint instead (found by the membership property)."""
    breakers = {ep: trine.CircuitBreaker(name=ep) for ep in ENDPOINTS}
    backend = service(a=FakeScript(latency=10.0), c=FakeScript(latency=1.0))
    async with trine.Balancer(
        ENDPOINTS, strategy="round_robin", breaker=breakers.__getitem__
    ) as balancer:
        budget = SideEffectBudget(
            (lambda: balancer.remove("b")) if how == "removed" else breakers["b"].force_open
        )
        with assert_takes(2.0):
            await balancer.hedged_call(backend.call, delay=1.0, budget=budget)  # type: ignore[arg-type]
        assert sorted(call.key for call in backend.calls) == ["a", "c"]
        assert all(r.pending == 0 and r.calls <= 1 for r in balancer.statistics().endpoints)
        assert [r.calls for r in balancer.statistics().endpoints if r.endpoint == "b"] in ([], [0])


async def test_a_hedged_call_with_every_endpoint_open_is_refused_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """As call() does: CircuitOpenError before any attempt."""
    breaker = trine.CircuitBreaker(reset_timeout=7)
    await _trip(breaker)
    async with trine.Balancer(["a"], breaker=lambda ep: breaker) as balancer:
        with pytest.raises(trine.CircuitOpenError) as info:
            await balancer.hedged_call(where_it_went, delay=1)
        assert info.value.retry_after == 7.0


# --- statistics, repr, validation --------------------------------------------------------


async def test_statistics_report_each_endpoint(autojump_clock: trio.testing.MockClock) -> None:
    """Per endpoint: state, pending, calls, failures, latency, weight, ejections."""
    backend = service(b=FakeScript(fail_calls={1}))
    async with trine.Balancer(["a", "b"], strategy="round_robin", name="api") as balancer:
        await balancer.call(backend.call)
        with pytest.raises(trine.testing.FakeServiceError):
            await balancer.call(backend.call)
        stats = balancer.statistics()
        assert stats.strategy == "round_robin"
        assert stats.calls == 2
        assert stats.endpoints[0] == trine.EndpointStatistics(
            endpoint="a",
            state="available",
            pending=0,
            calls=1,
            failures=0,
            latency=pytest.approx(0.1 * math.exp(-0.1 / 10.0)),
            weight=1.0,
            ejections=0,
            ejected_for=0.0,
        )
        # b's first call failed: it counts as slow as the slowest, its own failure's 0.1 s
        assert (stats.endpoints[1].failures, stats.endpoints[1].latency) == (1, 0.1)
        assert repr(balancer).startswith("<trine.Balancer 'api' round_robin at 0x")
        assert repr(balancer).endswith(", open, 2 endpoints>")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"strategy": "random"}, ValueError, r"^strategy must be one of 'round_robin', "),
        ({"decay": 0}, ValueError, r"^decay must be > 0, got 0$"),
        ({"check_interval": -1}, ValueError, r"^check_interval must be > 0, got -1$"),
        ({"rng": 3}, TypeError, r"^rng must be a random\.Random or None, got 3$"),
        ({"weights": {"a": 0}}, ValueError, r"^weights must be > 0, got 0$"),
        ({"ejection": 5}, TypeError, r"^ejection must be a trine\.OutlierEjection or None"),
        ({"breaker": lambda ep: 1}, TypeError, r"^breaker must return a trine\.CircuitBreaker"),
        ({"policy": 1}, TypeError, r"^policy must have an async call"),
        ({"name": 1}, TypeError, r"^name must be a str or None, got 1$"),
    ],
)
def test_bad_settings_are_refused_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every setting is checked at construction."""
    with pytest.raises(error, match=message):
        trine.Balancer(["a"], **kwargs)


@pytest.mark.parametrize("kind", ["generator", "async generator"])
def test_a_generator_health_check_is_refused_at_construction(kind: str) -> None:
    """A generator function never makes an awaitable: refused at once, not in the first check."""

    def generator(endpoint: str) -> Iterator[bool]:
        yield True

    async def async_generator(endpoint: str) -> AsyncIterator[bool]:
        yield True

    check = generator if kind == "generator" else async_generator
    with pytest.raises(
        TypeError, match=rf"^health_check must be an async function, got the {kind} function "
    ):
        trine.Balancer(["a"], health_check=check)  # type: ignore[arg-type]


def test_endpoints_must_be_an_iterable_not_a_string() -> None:
    """``Balancer("10.0.0.1")`` would be ten one-character endpoints: refused."""
    with pytest.raises(TypeError, match=r"^endpoints must be an iterable of endpoints"):
        trine.Balancer("10.0.0.1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"consecutive_failures": 0}, r"^consecutive_failures must be >= 1, got 0$"),
        ({"base_time": 0}, r"^base_time must be > 0, got 0$"),
        ({"max_ejected": 1.5}, r"^max_ejected must be <= 1, got 1\.5$"),
        ({"record": 1}, r"^record must be an exception class"),
    ],
)
def test_outlier_ejection_settings_are_checked(kwargs: dict[str, Any], message: str) -> None:
    """OutlierEjection refuses bad settings by name."""
    with pytest.raises((TypeError, ValueError), match=message):
        trine.OutlierEjection(**kwargs)


# --- property: never a removed or open endpoint -------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    ops = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("call"), st.sampled_from([0.0, 0.5, 2.0]), st.booleans()),
                st.tuples(st.just("hedge"), st.sampled_from([0.0, 1.0, 3.0]), st.booleans()),
                st.tuples(st.just("cancel"), st.sampled_from([0.25, 1.0])),
                st.tuples(st.just("add"), st.integers(min_value=0, max_value=5)),
                st.tuples(st.just("remove"), st.integers(min_value=0, max_value=5)),
                st.tuples(st.just("open"), st.integers(min_value=0, max_value=5)),
                st.tuples(st.just("reset"), st.integers(min_value=0, max_value=5)),
                st.tuples(st.just("sick"), st.integers(min_value=0, max_value=5)),
                st.tuples(st.just("well"), st.integers(min_value=0, max_value=5)),
                st.tuples(st.just("sleep"), st.sampled_from([0.1, 0.5, 1.5])),
            ),
            min_size=1,
            max_size=30,
        )
    )
    return {
        "strategy": draw(
            st.sampled_from(["round_robin", "weighted", "least_pending", "peak_ewma"])
        ),
        "start": draw(st.integers(min_value=0, max_value=4)),
        "seed": draw(st.integers(min_value=0, max_value=1000)),
        "eject": draw(st.booleans()),
        "check": draw(st.booleans()),
        "sick": draw(st.sets(st.integers(min_value=0, max_value=5), max_size=3)),
        "ops": ops,
    }


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios())
def test_balancer_property_no_call_goes_to_a_removed_or_open_endpoint(
    scenario: dict[str, Any],
) -> None:
    """Whatever the strategy, membership changes, breaker states, ejections, health checks,
    failures, hedges and cancellations: every call starts on an endpoint that is in the
    balancer, not ejected, not failing its health checks, and whose breaker admits it; the
    attempts of a hedged call go to different endpoints; and a call is refused only when no
    endpoint is available."""
    names = [f"e{index}" for index in range(6)]
    breakers = {name: trine.CircuitBreaker(name=name, failure_threshold=2) for name in names}
    violations: list[str] = []
    tried: dict[int, set[str]] = {}  # the endpoints each call's attempts went to
    sick = {names[index] for index in scenario["sick"]}  # whose health checks fail (for now)

    async def check(endpoint: str) -> bool:
        return endpoint not in sick

    async def main() -> None:
        balancer = trine.Balancer(
            names[: scenario["start"]],
            strategy=scenario["strategy"],
            breaker=breakers.__getitem__,
            # one failure ejects, before the breaker (two) opens: each exclusion is seen alone
            ejection=trine.OutlierEjection(consecutive_failures=1) if scenario["eject"] else None,
            rng=random.Random(scenario["seed"]),
            health_check=check if scenario["check"] else None,
            check_interval=0.5,
        )

        async def work(endpoint: str, seconds: float, fails: bool, tag: int) -> None:
            if endpoint in tried.setdefault(tag, set()):
                violations.append(f"call {tag} went to {endpoint} twice")
            tried[tag].add(endpoint)
            if endpoint not in balancer.endpoints:
                violations.append(f"{endpoint} was called after its removal")
            if breakers[endpoint].state in (
                trine.CircuitState.OPEN,
                trine.CircuitState.FORCED_OPEN,
            ):
                violations.append(f"{endpoint} was called while open")
            if row(balancer, endpoint).state in ("ejected", "unhealthy"):
                violations.append(f"{endpoint} was called while {row(balancer, endpoint).state}")
            await trio.sleep(seconds)
            if fails:
                raise Down(endpoint)

        async def caller(
            kind: str, seconds: float, fails: bool, scope: trio.CancelScope, tag: int
        ) -> None:
            with scope:
                available_before = [
                    name
                    for name in balancer.endpoints
                    if row(balancer, name).state in ("available", "half_open")
                ]
                try:
                    if kind == "call":
                        await balancer.call(work, seconds, fails, tag)
                    else:
                        await balancer.hedged_call(work, seconds, fails, tag, delay=0.5, attempts=3)
                except (Down, ExceptionGroup):
                    pass
                except (trine.CircuitOpenError, trine.NoEndpointError):
                    if available_before:
                        violations.append(f"refused with {available_before} available")

        async with balancer, trio.open_nursery() as nursery:
            scopes: list[trio.CancelScope] = []
            for tag, op in enumerate(scenario["ops"]):
                kind = op[0]
                if kind in ("call", "hedge"):
                    scope = trio.CancelScope()
                    scopes.append(scope)
                    nursery.start_soon(caller, kind, op[1], op[2], scope, tag)
                    await trio.testing.wait_all_tasks_blocked()
                elif kind == "cancel":
                    await trio.sleep(op[1])
                    if scopes:
                        scopes.pop(0).cancel()
                elif kind == "add" and names[op[1]] not in balancer.endpoints:
                    balancer.add(names[op[1]])
                elif kind == "remove" and names[op[1]] in balancer.endpoints:
                    balancer.remove(names[op[1]])
                elif kind == "open":
                    breakers[names[op[1]]].force_open()
                elif kind == "reset":
                    breakers[names[op[1]]].reset()
                elif kind == "sick":
                    sick.add(names[op[1]])
                elif kind == "well":
                    sick.discard(names[op[1]])
                elif kind == "sleep":
                    await trio.sleep(op[1])
        stats = balancer.statistics()
        assert all(r.pending == 0 for r in stats.endpoints)
        assert all(r.state != "removed" for r in stats.endpoints)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert violations == []


# --- the guides' examples --------------------------------------------------------------

GUIDES = pathlib.Path(__file__).resolve().parent.parent / "docs" / "guide"


def _guide_examples() -> list[tuple[str, str]]:
    examples = []
    for page in ("pool.rst", "balancer.rst", "hedging.rst"):
        text = (GUIDES / page).read_text()
        for block in re.findall(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text, re.M):
            examples.append((page, textwrap.dedent(block)))
    return examples


@pytest.mark.parametrize(("page", "source"), _guide_examples())
def test_the_fleet_guides_examples_run(page: str, source: str) -> None:
    """Each ``code-block:: python`` of the pool, balancer and hedging guides runs as written
    on the fake clock, and its asserts hold."""
    assert "trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))" in source
    exec(compile(source, page, "exec"), {})
