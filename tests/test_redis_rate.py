"""trine.redis.RateLimiter and SlidingWindowLimiter against a real redis-server.

Two limiter objects with one name stand for two processes: they share the
server's state and nothing else. Times are real (short windows); lower bounds
are exact (the server never lets a call go early), upper bounds are loose.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import pytest
import trio

coredis = pytest.importorskip("coredis")

import trine  # noqa: E402
import trine.redis  # noqa: E402
from _redis_server import free_port  # noqa: E402

pytestmark = pytest.mark.usefixtures("redis_server")


async def test_acquire_sleeps_until_the_slot_the_server_gives(redis_client: Any) -> None:
    """At 50/s with no burst, five acquires take at least four intervals."""
    limiter = trine.redis.RateLimiter(redis_client, "api", 50)
    start = trio.current_time()
    for _ in range(5):
        await limiter.acquire()
    assert trio.current_time() - start >= 4 / 50 - 0.002
    assert limiter.statistics().round_trips == 5


async def test_two_limiters_with_one_name_share_one_rate(redis_client: Any) -> None:
    """What one 'process' takes, the other cannot: burst 2 between them, then both refused."""
    one = trine.redis.RateLimiter(redis_client, "api", 1, burst=2)
    two = trine.redis.RateLimiter(redis_client, "api", 1, burst=2)
    assert await one.try_acquire()
    assert await two.try_acquire()
    assert not await one.try_acquire()
    assert not await two.try_acquire()
    assert (one.statistics().rejected, two.statistics().rejected) == (1, 1)


async def test_keys_have_schedules_of_their_own(redis_client: Any) -> None:
    """A busy key does not hold back another one, nor the default key."""
    limiter = trine.redis.RateLimiter(redis_client, "api", 1)
    assert await limiter.try_acquire(key="a")
    assert not await limiter.try_acquire(key="a")
    assert await limiter.try_acquire(key="b")
    assert await limiter.try_acquire()


async def test_acquire_nowait_says_how_long_acquire_would_have_slept(redis_client: Any) -> None:
    """RateLimitExceeded carries the server's wait as retry_after (and is a trio.WouldBlock)."""
    limiter = trine.redis.RateLimiter(redis_client, "api", 2)
    await limiter.acquire_nowait()
    with pytest.raises(trine.RateLimitExceeded, match=r"^rate limit of 2 per 1s exceeded") as info:
        await limiter.acquire_nowait(key=None)
    assert 0.4 < info.value.retry_after <= 0.5
    assert isinstance(info.value, trio.WouldBlock)


async def test_a_cancelled_waiter_gives_its_slot_back(redis_client: Any) -> None:
    """Cancelled while sleeping on its reservation, a waiter hands the slot to the next call."""
    limiter = trine.redis.RateLimiter(redis_client, "api", 1)
    await limiter.acquire()
    with trio.move_on_after(0.05):
        await limiter.acquire()
    assert limiter.statistics().refunded == 1
    assert limiter.statistics().admitted == 1
    with pytest.raises(trine.RateLimitExceeded) as info:
        await limiter.acquire_nowait()
    assert info.value.retry_after < 1.0  # the next slot, not the one after it


async def test_a_cancelled_waiter_behind_another_leaves_its_slot_unused(redis_client: Any) -> None:
    """Only the last reservation can be taken back; an earlier one stays (the bound holds)."""
    limiter = trine.redis.RateLimiter(redis_client, "api", 10)
    await limiter.acquire()
    async with trio.open_nursery() as nursery:
        cancelled = trio.CancelScope()

        async def doomed() -> None:
            with cancelled:
                await limiter.acquire()

        nursery.start_soon(doomed)
        await trio.sleep(0.02)  # doomed holds the slot at +0.1
        nursery.start_soon(limiter.acquire)  # this one the slot at +0.2
        await trio.sleep(0.02)
        cancelled.cancel()
    assert limiter.statistics().refunded == 0


async def test_an_unlimited_rate_admits_without_a_round_trip(redis_client: Any) -> None:
    """rate=math.inf needs no server at all."""
    limiter = trine.redis.RateLimiter(redis_client, "api", math.inf)
    for _ in range(3):
        await limiter.acquire()
    assert await limiter.try_acquire()
    assert limiter.statistics().round_trips == 0
    assert limiter.burst == trine.RateLimiter(math.inf).burst


async def test_the_defaults_are_the_local_limiters(redis_client: Any) -> None:
    """burst defaults as trine.RateLimiter's; the local twin has the same settings."""
    limiter = trine.redis.RateLimiter(redis_client, "api", 20_000)
    assert limiter.burst == trine.RateLimiter(20_000).burst == 60
    assert (limiter.local.rate, limiter.local.burst) == (20_000, 60)
    assert repr(limiter).startswith("<trine.redis.RateLimiter 'api' rate=20000 per=1s burst=60 on ")


async def test_policy_and_pipelines_take_the_shared_limiter(redis_client: Any) -> None:
    """It has the shape Policy's rate= needs, so maps, stages and graphs take it too."""
    limiter = trine.redis.RateLimiter(redis_client, "api", 100, burst=3)
    policy = trine.Policy(rate=limiter)

    async def double(x: int) -> int:
        return 2 * x

    assert await trine.Pipeline.source(range(3)).map(double, policy=policy).collect() == [0, 2, 4]
    assert limiter.statistics().admitted == 3


async def test_fail_closed_raises_naming_the_server_and_waits_out_the_recheck() -> None:
    """No server: RedisUnavailable names it; within recheck_interval, no further attempt."""
    port = free_port()
    async with coredis.Redis(host="127.0.0.1", port=port) as client:
        limiter = trine.redis.RateLimiter(client, "api", 10, recheck_interval=60)
        with pytest.raises(trine.redis.RedisUnavailable, match=f"^redis at 127.0.0.1:{port} "):
            await limiter.acquire()
        with pytest.raises(trine.redis.RedisUnavailable, match=r"trying again in"):
            await limiter.try_acquire()
        assert limiter.statistics().unavailable == 1
        assert limiter.statistics().round_trips == 0


async def test_fail_open_admits_through_the_local_twin() -> None:
    """No server, fail_open: the local limiter with the same settings decides."""
    async with coredis.Redis(host="127.0.0.1", port=free_port()) as client:
        limiter = trine.redis.RateLimiter(client, "api", 1, on_unavailable="fail_open")
        await limiter.acquire()
        assert not await limiter.try_acquire()
        with pytest.raises(trine.RateLimitExceeded):
            await limiter.acquire_nowait()
        assert limiter.statistics().fallbacks == 3


async def test_unavailable_error_pickles_with_its_server() -> None:
    """RedisUnavailable keeps its server and guard through pickling."""
    import pickle

    error = trine.redis.RedisUnavailable("h:1", "rate limiter 'x'", "ConnectionError: no")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.server, copy.guard) == (str(error), "h:1", "rate limiter 'x'")
    assert isinstance(copy, ConnectionError)
    assert isinstance(copy, trine.TrineError)


# -- sliding window ------------------------------------------------------------------


async def test_window_admits_the_limit_then_waits_for_the_oldest_to_leave(
    redis_client: Any,
) -> None:
    """3 per 0.2 s: three at once, the fourth at least 0.2 s after the first."""
    limiter = trine.redis.SlidingWindowLimiter(redis_client, "api", 3, window=0.2)
    start = trio.current_time()
    for _ in range(3):
        await limiter.acquire()
    assert trio.current_time() - start < 0.15
    await limiter.acquire()
    assert trio.current_time() - start >= 0.2 - 0.002


async def test_window_is_shared_by_limiters_of_one_name(redis_client: Any) -> None:
    """Two 'processes', limit 2: a third try anywhere is refused; costs count as units."""
    one = trine.redis.SlidingWindowLimiter(redis_client, "api", 3, window=10)
    two = trine.redis.SlidingWindowLimiter(redis_client, "api", 3, window=10)
    assert await one.try_acquire(2)
    assert await two.try_acquire()
    assert not await one.try_acquire()
    with pytest.raises(trine.RateLimitExceeded, match=r"limit of 3 per 10s window") as info:
        await two.acquire_nowait()
    assert 9 < info.value.retry_after <= 10


async def test_window_a_cancelled_waiter_takes_its_reservation_out(redis_client: Any) -> None:
    """Any cancelled reservation leaves the log, so the next caller gets its slot."""
    limiter = trine.redis.SlidingWindowLimiter(redis_client, "api", 1, window=1.0)
    await limiter.acquire()
    with trio.move_on_after(0.05):
        await limiter.acquire()
    assert limiter.statistics().refunded == 1
    with pytest.raises(trine.RateLimitExceeded) as info:
        await limiter.acquire_nowait()
    assert info.value.retry_after < 1.0


async def test_window_fail_open_uses_a_local_window() -> None:
    """No server, fail_open: a trine.SlidingWindowLimiter of the same settings admits."""
    async with coredis.Redis(host="127.0.0.1", port=free_port()) as client:
        limiter = trine.redis.SlidingWindowLimiter(
            client, "api", 1, window=5, on_unavailable="fail_open"
        )
        assert await limiter.try_acquire()
        assert not await limiter.try_acquire()
        assert limiter.local.limit == 1
        assert limiter.statistics().fallbacks == 2


async def test_a_server_that_never_answers_is_unavailable_after_timeout() -> None:
    """A listener that accepts and stays silent: RedisUnavailable once timeout has passed."""

    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, silent, 0, host="127.0.0.1")
        [listener] = await nursery.start(serve)
        port = listener.socket.getsockname()[1]
        async with coredis.Redis(host="127.0.0.1", port=port) as client:
            limiter = trine.redis.RateLimiter(client, "api", 10, timeout=0.2)
            start = trio.current_time()
            with pytest.raises(trine.redis.RedisUnavailable, match=r"no reply within timeout=0.2"):
                await limiter.acquire()
            assert 0.2 <= trio.current_time() - start < 1.0
        nursery.cancel_scope.cancel()
