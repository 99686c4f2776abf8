"""Faults against a real redis-server: killed holders and consumers, a restarted server, poison.

Processes are killed with SIGKILL (no clean-up runs, as in a crash) and the
server is killed and started again on the same port (with no persistence, so
it comes back empty, as after losing its data).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest
import trio

coredis = pytest.importorskip("coredis")

import trine  # noqa: E402
import trine.redis  # noqa: E402
from _redis_fleet import RESOURCE, RESOURCE_KEYS  # noqa: E402

FLEET = pathlib.Path(__file__).with_name("_redis_fleet.py")


async def start_member(port: int, role: str, **arguments: Any) -> trio.Process:
    command = [sys.executable, str(FLEET), role, str(port), json.dumps(arguments)]
    return await trio.lowlevel.open_process(command, stdout=subprocess.PIPE)


async def first_line(process: trio.Process) -> dict[str, Any]:
    """The first JSON line *process* prints."""
    assert process.stdout is not None
    received = b""
    with trio.fail_after(120):  # imports are slow on a loaded machine
        while b"\n" not in received:
            chunk = await process.stdout.receive_some()
            assert chunk, "the process ended without saying anything"
            received += chunk
    return json.loads(received.split(b"\n")[0])  # type: ignore[no-any-return]


async def kill(process: trio.Process) -> None:
    process.kill()  # SIGKILL: no finally block, no release
    await process.wait()


async def test_a_killed_holders_slot_returns_within_the_ttl_and_its_late_write_is_refused(
    redis_client: Any, redis_server: Any
) -> None:
    """SIGKILL the holder of a lock's lease: the slot is ours within the TTL, its token refused."""
    ttl = 1.0
    holder = await start_member(redis_server.port, "holder", name="lock", ttl=ttl)
    held = await first_line(holder)
    await kill(holder)
    killed_at = trio.current_time()
    resource = redis_client.register_script(RESOURCE)
    lock = trine.redis.Semaphore(redis_client, "lock", 1, ttl=ttl, poll_interval=0.02, max_wait=5)
    async with lock.hold() as lease:
        waited = trio.current_time() - killed_at
        assert lease.slot == held["slot"] == 0
        assert lease.token is not None
        assert lease.token > held["token"]
        assert await resource(keys=RESOURCE_KEYS, args=["write", lease.slot, lease.token]) == 0
        # The dead holder's write, arriving late (a paused process waking up): refused.
        late = ["write", held["slot"], held["token"]]
        assert await resource(keys=RESOURCE_KEYS, args=late) == -1
    print(f"\nkilled holder: its slot came back {waited:.3f} s after SIGKILL (ttl {ttl:g} s)")
    # Its last renewal was at most ttl / 3 before the kill, so the lease ran out
    # between 2/3 and all of the TTL after it (plus a poll and a round trip).
    assert ttl * 2 / 3 - 0.05 <= waited <= ttl + 0.3


async def test_a_killed_consumers_entry_is_reclaimed_and_every_entry_acked_once(
    redis_client: Any, redis_server: Any
) -> None:
    """SIGKILL a consumer mid-item: another reclaims and finishes it; each entry acked once."""
    client = redis_client
    entries = 12
    for n in range(entries):
        await client.xadd("jobs", {"n": str(n)})
    doomed = await start_member(
        redis_server.port, "consumer", stream="jobs", name="a", claim_idle=1.0, hang_on="3"
    )
    busy = await first_line(doomed)
    await kill(doomed)
    assert busy["n"] == "3"

    source = trine.redis.stream_source(
        client, "jobs", group="workers", consumer="b", claim_idle=1.0, stop_when_idle=2.5
    )
    sink = trine.redis.stream_sink(client, "jobs:out")

    async def work(entry: trine.redis.StreamEntry[dict[Any, Any]]) -> Any:
        n = entry.value[b"n"].decode()
        await client.rpush("jobs:started", [f"b:{n}"])
        return entry.with_value({"n": n, "by": "b"})

    await trine.Pipeline.source(source).map(work).map(sink).run()

    written = [e.field_values for e in await client.xrange("jobs:out")]
    # Written (and acknowledged, in the same script) exactly once per entry.
    assert sorted(int(w[b"n"]) for w in written) == list(range(entries))
    assert (await client.xpending("jobs", "workers")).pending == 0
    started = [s.decode() for s in await client.lrange("jobs:started", 0, -1)]
    assert "a:3" in started
    assert "b:3" in started  # the hung entry, reclaimed and finished by b
    assert {s.split(":")[1] for s in started} == {str(n) for n in range(entries)}
    assert source.statistics().reclaimed >= 1
    done_by_a = sum(w[b"by"] == b"a" for w in written)
    reclaimed = source.statistics().reclaimed
    print(
        f"\nkilled consumer: a finished {done_by_a} entries, b reclaimed {reclaimed} "
        f"and finished the rest; {entries} written once each"
    )


async def test_guards_follow_on_unavailable_while_the_server_is_down_and_recover(
    own_redis_server: Any,
) -> None:
    """Server killed: fail_closed raises naming it, fail_open asks the local twin; then back."""
    server = own_redis_server
    async with coredis.Redis(host=server.host, port=server.port) as client:
        options = {"recheck_interval": 0.2, "timeout": 0.5}
        closed = trine.redis.RateLimiter(client, "api", 1000, **options)
        opened = trine.redis.RateLimiter(client, "api", 1000, on_unavailable="fail_open", **options)
        breaker = trine.redis.CircuitBreaker(client, "api", on_unavailable="fail_open", **options)
        slots = trine.redis.Semaphore(client, "db", 2, **options)

        async def ok() -> int:
            return 1

        await closed.acquire()
        await opened.acquire()
        assert await breaker.call(ok) == 1
        async with slots.hold() as before:
            pass

        server.kill()
        with pytest.raises(trine.redis.RedisUnavailable, match=server.address) as raised:
            await closed.acquire()
        assert "rate limiter 'api'" in str(raised.value)
        await opened.acquire()  # the local twin admits
        assert opened.statistics().fallbacks == 1
        assert await breaker.call(ok) == 1
        assert breaker.statistics().fallbacks == 1
        with pytest.raises(trine.redis.RedisUnavailable, match=r"semaphore 'db'"):
            async with slots.hold():
                pass  # pragma: no cover - not entered
        # Within recheck_interval nothing waits on the server: at once, no new failure.
        failures = closed.statistics().unavailable
        with pytest.raises(trine.redis.RedisUnavailable, match=r"trying again in"):
            await closed.acquire()
        assert closed.statistics().unavailable == failures

        server.start()  # same port, no data
        await trio.sleep(0.25)
        trips = closed.statistics().round_trips
        await closed.acquire()
        await opened.acquire()
        assert closed.statistics().round_trips == trips + 1
        assert opened.statistics().fallbacks == 1  # back on the server
        assert await breaker.call(ok) == 1
        assert breaker.statistics().fallbacks == 1
        async with slots.hold() as after:
            assert after.token is not None
            assert before.token is not None
            assert after.token > before.token  # fencing survives the lost counter


async def test_a_stream_pipeline_goes_on_after_the_server_restarts(own_redis_server: Any) -> None:
    """Entries added after a restart (which lost the group) are read: the source makes it again."""
    server = own_redis_server
    async with coredis.Redis(host=server.host, port=server.port) as client:
        source = trine.redis.stream_source(
            client, "jobs", group="g", consumer="c", recheck_interval=0.1, timeout=0.5
        )
        sink = trine.redis.stream_sink(client, "jobs:out")
        seen: list[str] = []

        async def work(entry: trine.redis.StreamEntry[dict[Any, Any]]) -> Any:
            seen.append(entry.value[b"n"].decode())
            return entry.with_value({"n": entry.value[b"n"]})

        pipe = trine.Pipeline.source(source).map(work).map(sink)
        async with pipe.open() as written:
            await client.xadd("jobs", {"n": "before"})
            await written.receive()
            server.kill()
            await trio.sleep(0.3)
            server.start()
            await client.xadd("jobs", {"n": "after"})
            with trio.fail_after(10):
                await written.receive()
        assert seen == ["before", "after"]
        assert source.statistics().unavailable >= 1
        assert [e.field_values[b"n"] for e in await client.xrange("jobs:out")] == [b"after"]


async def test_a_poisoned_entry_ends_in_the_dead_letter_stream_after_max_deliveries(
    redis_client: Any,
) -> None:
    """An entry that always fails is delivered max_deliveries times, then dead-lettered."""
    client = redis_client
    for n in range(5):
        await client.xadd("jobs", {"n": str(n)})
    source = trine.redis.stream_source(
        client,
        "jobs",
        group="g",
        consumer="c",
        claim_idle=0.2,
        max_deliveries=3,
        stop_when_idle=1.0,
    )
    attempts: dict[str, int] = {}

    async def work(entry: trine.redis.StreamEntry[dict[Any, Any]]) -> Any:
        n = entry.value[b"n"].decode()
        attempts[n] = attempts.get(n, 0) + 1
        if n == "2":
            raise ValueError("poison")
        return entry.with_value({"n": n})

    sink = trine.redis.stream_sink(client, "jobs:out")
    await trine.Pipeline.source(source).map(work, on_error="skip").map(sink).run()

    assert attempts == {"0": 1, "1": 1, "2": 3, "3": 1, "4": 1}
    [dead] = await client.xrange("jobs:dead")
    assert dead.field_values[b"n"] == b"2"
    assert dead.field_values[b"dead_letter.deliveries"] == b"3"
    assert dead.field_values[b"dead_letter.stream"] == b"jobs"
    assert await client.xlen("jobs:out") == 4
    assert (await client.xpending("jobs", "g")).pending == 0
    assert source.statistics().dead_lettered == 1


async def test_the_window_and_the_budget_follow_on_unavailable_and_recover(
    own_redis_server: Any,
) -> None:
    """Server killed mid-run: the window fails closed, the budget refuses; both back after."""
    server = own_redis_server
    async with coredis.Redis(host=server.host, port=server.port) as client:
        options = {"recheck_interval": 0.2, "timeout": 0.5}
        window = trine.redis.SlidingWindowLimiter(client, "api", 100, 1.0, **options)
        budget = trine.redis.RetryBudget(client, "api", sync_interval=0.1, **options)
        async with budget:
            await window.acquire()
            budget.deposit()
            assert budget.try_withdraw()  # min_per_second * window: room for retries

            server.kill()
            with pytest.raises(trine.redis.RedisUnavailable, match=r"sliding window limiter 'api'"):
                await window.acquire()
            await trio.sleep(0.15)  # the budget's next sync finds the server gone
            assert budget.sync_statistics().unavailable >= 1
            assert not budget.try_withdraw()  # fail closed: no retry without the fleet
            assert budget.sync_statistics().local_decisions == 1
            syncs_while_down = budget.sync_statistics().syncs

            server.start()  # same port, no data
            await trio.sleep(0.45)  # past recheck_interval, and a sync after it
            await window.acquire()
            assert window.statistics().admitted == 2
            assert budget.sync_statistics().syncs > syncs_while_down
            assert budget.try_withdraw()  # synced again: the fleet's totals decide
            assert budget.sync_statistics().local_decisions == 1
