"""trine.redis.CircuitBreaker against a real redis-server.

Two breaker objects with one name stand for two processes.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

coredis = pytest.importorskip("coredis")

import trine  # noqa: E402
import trine.redis  # noqa: E402
from _redis_server import free_port  # noqa: E402
from trine._util import NotAwaitableError  # noqa: E402

pytestmark = pytest.mark.usefixtures("redis_server")


async def ok() -> str:
    return "ok"


async def fail() -> None:
    raise OSError("down")


async def failures(breaker: trine.redis.CircuitBreaker, count: int) -> None:
    for _ in range(count):
        with pytest.raises(OSError, match=r"^down$"):
            await breaker.call(fail)


async def test_failures_in_one_process_open_the_breaker_for_the_other(redis_client: Any) -> None:
    """One 'process' opens it; the other, which saw it closed, is refused on its next call."""
    one = trine.redis.CircuitBreaker(redis_client, "api", failure_threshold=3)
    two = trine.redis.CircuitBreaker(redis_client, "api", failure_threshold=3)
    assert await two.call(ok) == "ok"
    await failures(one, 3)
    with pytest.raises(trine.CircuitOpenError, match=r"^circuit breaker 'api' is open") as info:
        await one.call(ok)
    assert 29 < info.value.retry_after <= 30
    assert two.state is trine.CircuitState.CLOSED  # what it saw last
    with pytest.raises(trine.CircuitOpenError):
        await two.call(ok)
    assert two.state is trine.CircuitState.OPEN
    assert (await two.fleet_state()).state is trine.CircuitState.OPEN


async def test_two_round_trips_per_call_and_one_per_refusal(redis_client: Any) -> None:
    """Exact mode: admit + record for each call; a refusal is one round trip."""
    breaker = trine.redis.CircuitBreaker(redis_client, "api", failure_threshold=1)
    assert await breaker.call(ok) == "ok"
    assert breaker.statistics().round_trips == 2
    await failures(breaker, 1)
    with pytest.raises(trine.CircuitOpenError):
        await breaker.call(ok)
    assert breaker.statistics().round_trips == 5


async def test_ignored_and_cancelled_calls_send_nothing_while_closed(redis_client: Any) -> None:
    """An ignored error or a cancellation counts nothing: no record round trip."""
    breaker = trine.redis.CircuitBreaker(redis_client, "api", ignore=KeyError)

    async def missing() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await breaker.call(missing)
    with trio.move_on_after(0.01):
        await breaker.call(trio.sleep_forever)
    statistics = breaker.statistics()
    assert (statistics.ignored, statistics.cancelled, statistics.round_trips) == (1, 1, 2)


async def test_a_function_that_is_not_async_is_not_counted(redis_client: Any) -> None:
    """NotAwaitableError is a programming error: raised as is, never a failure."""
    breaker = trine.redis.CircuitBreaker(redis_client, "api", failure_threshold=1)
    with pytest.raises(NotAwaitableError):
        await breaker.call(lambda: 1)  # type: ignore[arg-type,return-value]
    assert await breaker.call(ok) == "ok"
    assert breaker.statistics().failures == 0


async def test_half_open_probes_are_limited_across_processes(redis_client: Any) -> None:
    """half_open_max_calls=1: one 'process' probes, the other is refused as half-open."""
    one = trine.redis.CircuitBreaker(redis_client, "api", failure_threshold=1, reset_timeout=0.05)
    two = trine.redis.CircuitBreaker(redis_client, "api", failure_threshold=1, reset_timeout=0.05)
    await failures(one, 1)
    await trio.sleep(0.06)
    async with trio.open_nursery() as nursery:
        probing = trio.Event()

        async def probe() -> str:
            probing.set()
            await trio.sleep(0.1)
            return "ok"

        nursery.start_soon(one.call, probe)
        await probing.wait()
        with pytest.raises(trine.CircuitOpenError, match=r"half-open") as info:
            await two.call(ok)
        assert info.value.retry_after == 0.0
    assert (await two.fleet_state()).state is trine.CircuitState.CLOSED


async def test_state_changes_reach_hooks_when_this_process_sees_them(redis_client: Any) -> None:
    """on_state_change and hooks hear of changes as this process's round trips reveal them."""
    seen: list[tuple[str, str]] = []
    events: list[Any] = []
    breaker = trine.redis.CircuitBreaker(
        redis_client,
        "api",
        failure_threshold=1,
        reset_timeout=0.0,
        on_state_change=lambda old, new: seen.append((old.value, new.value)),
        hooks=[events.append],
    )
    await failures(breaker, 1)
    assert await breaker.call(ok) == "ok"  # half-open probe, then closed
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert [type(e).__name__ for e in events] == ["CircuitStateChanged"] * 3


async def test_force_open_and_reset_act_for_the_fleet(redis_client: Any) -> None:
    """Forced open, every process is refused with retry_after inf until reset."""
    one = trine.redis.CircuitBreaker(redis_client, "api")
    two = trine.redis.CircuitBreaker(redis_client, "api")
    await one.force_open()
    with pytest.raises(trine.CircuitOpenError, match=r"forced open") as info:
        await two.call(ok)
    assert info.value.retry_after == float("inf")
    await two.reset()
    assert await one.call(ok) == "ok"


async def test_a_time_window_and_failure_rate_are_shared(redis_client: Any) -> None:
    """Failure rate 0.5 over a 10 s window, minimum 4 calls, across two 'processes'."""
    options: dict[str, Any] = {"failure_rate": 0.5, "window": 10.0, "window_type": "time"}
    one = trine.redis.CircuitBreaker(redis_client, "api", minimum_calls=4, **options)
    two = trine.redis.CircuitBreaker(redis_client, "api", minimum_calls=4, **options)
    await one.call(ok)
    await two.call(ok)
    await failures(one, 1)
    state = await two.fleet_state()
    assert (state.window_calls, state.window_failures) == (3, 1)
    await failures(two, 1)
    assert (await one.fleet_state()).state is trine.CircuitState.OPEN


async def test_slow_calls_are_timed_here_and_counted_there(redis_client: Any) -> None:
    """slow_call_duration is measured on this process's clock; the rate is judged on the server."""
    breaker = trine.redis.CircuitBreaker(
        redis_client, "api", slow_call_duration=0.02, slow_call_rate=0.5, minimum_calls=2,
        failure_threshold=100,
    )  # fmt: skip

    async def slow() -> str:
        await trio.sleep(0.03)
        return "late"

    await breaker.call(ok)
    await breaker.call(slow)
    assert breaker.statistics().slow_calls == 1
    assert (await breaker.fleet_state()).state is trine.CircuitState.OPEN


async def test_sync_interval_admits_from_the_cached_state_and_batches_successes(
    redis_client: Any,
) -> None:
    """With sync_interval, closed-state calls need no round trip; successes go with the next one."""
    breaker = trine.redis.CircuitBreaker(redis_client, "api", sync_interval=10.0)
    for _ in range(20):
        assert await breaker.call(ok) == "ok"
    statistics = breaker.statistics()
    assert statistics.round_trips == 1  # the first admission
    assert statistics.local_admissions == 19
    state = await breaker.fleet_state()  # carries the 20 successes
    assert state.window_calls == 20


async def test_sync_interval_learns_the_breaker_opened_within_the_interval(
    redis_client: Any,
) -> None:
    """A cached process keeps admitting until its cache is sync_interval old, then is refused."""
    cached = trine.redis.CircuitBreaker(redis_client, "api", failure_threshold=1, sync_interval=0.1)
    other = trine.redis.CircuitBreaker(redis_client, "api", failure_threshold=1)
    await cached.call(ok)
    await failures(other, 1)
    assert await cached.call(ok) == "ok"  # still trusting what it saw
    await trio.sleep(0.11)
    with pytest.raises(trine.CircuitOpenError):
        await cached.call(ok)


async def test_async_with_and_the_decorator(redis_client: Any) -> None:
    """Both other front ends count through the same shared state."""
    breaker = trine.redis.CircuitBreaker(redis_client, "api", failure_threshold=2)

    @breaker
    async def decorated(x: int) -> int:
        return x + 1

    assert await decorated(1) == 2
    with pytest.raises(OSError, match=r"^down$"):
        async with breaker:
            raise OSError("down")
    assert (await breaker.fleet_state()).consecutive_failures == 1


async def test_policy_takes_the_shared_breaker(redis_client: Any) -> None:
    """Policy(breaker=...) goes through it, and reports its refusals to the Policy's hooks."""
    breaker = trine.redis.CircuitBreaker(redis_client, "api", failure_threshold=1)
    events: list[Any] = []
    policy = trine.Policy(breaker=breaker, hooks=[events.append])
    with pytest.raises(OSError, match=r"^down$"):
        await policy.call(fail)
    with pytest.raises(trine.CircuitOpenError):
        await policy.call(ok)
    assert [type(e).__name__ for e in events] == ["CallRejected"]


async def test_fail_closed_raises_and_fail_open_lets_the_local_twin_decide() -> None:
    """No server: fail_closed raises RedisUnavailable; fail_open counts in a local breaker."""
    async with coredis.Redis(host="127.0.0.1", port=free_port()) as client:
        closed = trine.redis.CircuitBreaker(client, "api")
        with pytest.raises(trine.redis.RedisUnavailable, match=r"circuit breaker 'api'"):
            await closed.call(ok)
        opened = trine.redis.CircuitBreaker(
            client, "api", failure_threshold=1, on_unavailable="fail_open"
        )
        await failures(opened, 1)
        with pytest.raises(trine.CircuitOpenError):
            await opened.call(ok)
        assert opened.local.state is trine.CircuitState.OPEN
        assert opened.statistics().fallbacks == 2
        assert opened.statistics().in_flight == 0
