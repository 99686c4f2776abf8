"""trine.redis.Semaphore against a real redis-server: leases, renewal, fencing, waiting."""

from __future__ import annotations

from typing import Any

import pytest
import trio

coredis = pytest.importorskip("coredis")

import trine  # noqa: E402
import trine.redis  # noqa: E402
from _redis_server import free_port  # noqa: E402

pytestmark = pytest.mark.usefixtures("redis_server")

KEYS = "trine:semaphore:{db}:"


async def test_holders_of_two_semaphores_with_one_name_never_exceed_the_limit(
    redis_client: Any,
) -> None:
    """Two 'processes', limit 2, six tasks: at most two inside, each slot's tokens grow."""
    one = trine.redis.Semaphore(redis_client, "db", 2, poll_interval=0.01)
    two = trine.redis.Semaphore(redis_client, "db", 2, poll_interval=0.01)
    inside: set[int] = set()
    peak = 0
    leases: list[trine.redis.Lease] = []

    async def work(sem: trine.redis.Semaphore) -> None:
        nonlocal peak
        async with sem.hold() as lease:
            assert lease.slot not in inside
            assert lease.slot is not None
            inside.add(lease.slot)
            peak = max(peak, len(inside))
            leases.append(lease)
            await trio.sleep(0.03)
            inside.discard(lease.slot)

    async with trio.open_nursery() as nursery:
        for number in range(6):
            nursery.start_soon(work, one if number % 2 else two)
    assert peak == 2
    for slot in (0, 1):
        tokens = [lease.token for lease in leases if lease.slot == slot]
        assert tokens == sorted(tokens)
    assert all(lease.fenced for lease in leases)
    assert one.statistics().acquired + two.statistics().acquired == 6
    assert await redis_client.hlen(KEYS + "slots") == 0


async def test_a_held_lease_is_renewed_past_its_ttl(redis_client: Any) -> None:
    """ttl 0.3 s, held 0.8 s: renewed every 0.1 s, never lost."""
    sem = trine.redis.Semaphore(redis_client, "db", 1, ttl=0.3)
    async with sem.hold():
        await trio.sleep(0.8)
    assert sem.statistics().renewals >= 4
    assert sem.statistics().lost == 0


async def test_a_lease_the_server_no_longer_has_cancels_the_block_and_raises_lease_lost(
    redis_client: Any,
) -> None:
    """The server lost the lease (here: deleted): the block is cancelled, LeaseLost comes out."""
    sem = trine.redis.Semaphore(redis_client, "db", 1, ttl=0.3)
    reached = False

    async def hold_while_the_server_forgets() -> None:
        nonlocal reached
        async with sem.hold():
            await redis_client.delete([KEYS + "slots"])
            await trio.sleep(5)
            reached = True  # pragma: no cover - cancelled before

    with pytest.raises(trine.redis.LeaseLost, match=r"^semaphore 'db' lost the lease on slot 0"):
        await hold_while_the_server_forgets()
    assert not reached
    assert sem.statistics().lost == 1


async def test_an_exception_from_the_block_comes_out_as_itself(redis_client: Any) -> None:
    """The renewing task's nursery does not wrap the block's own error in a group."""
    sem = trine.redis.Semaphore(redis_client, "db", 1)
    with pytest.raises(KeyError, match=r"^'mine'$"):
        async with sem.hold():
            raise KeyError("mine")
    assert await redis_client.hlen(KEYS + "slots") == 0


async def test_an_outer_cancellation_passes_through_and_the_slot_is_released(
    redis_client: Any,
) -> None:
    """Cancelled from outside while holding: Cancelled propagates, the slot comes back."""
    sem = trine.redis.Semaphore(redis_client, "db", 1)
    with trio.move_on_after(0.05) as scope:
        async with sem.hold():
            await trio.sleep(5)
    assert scope.cancelled_caught
    assert await redis_client.hlen(KEYS + "slots") == 0
    async with sem.hold() as lease:
        assert lease.slot == 0


async def test_max_wait_bounds_the_wait_with_bulkhead_full(redis_client: Any) -> None:
    """A waiter gives up after max_wait with BulkheadFull(timed_out=True), leaving the queue."""
    holder = trine.redis.Semaphore(redis_client, "db", 1)
    waiter = trine.redis.Semaphore(redis_client, "db", 1, max_wait=0.1, poll_interval=0.02)
    async with holder.hold():
        start = trio.current_time()
        with pytest.raises(trine.BulkheadFull, match=r"^bulkhead full: waited 0.1 s") as info:
            async with waiter.hold():
                pass  # pragma: no cover - not entered
        assert info.value.timed_out
        assert trio.current_time() - start >= 0.1
        assert await redis_client.zcard(KEYS + "queue") == 0
    assert waiter.statistics().timeouts == 1


async def test_max_wait_zero_refuses_at_once_without_queueing(redis_client: Any) -> None:
    """max_wait=0 never waits: one round trip, refused, no place taken."""
    holder = trine.redis.Semaphore(redis_client, "db", 1)
    trier = trine.redis.Semaphore(redis_client, "db", 1, max_wait=0)
    async with holder.hold():
        with pytest.raises(trine.BulkheadFull) as info:
            async with trier.hold():
                pass  # pragma: no cover - not entered
        assert not info.value.timed_out
        assert trier.statistics().round_trips == 1
        assert await redis_client.zcard(KEYS + "queue") == 0


async def test_a_cancelled_waiter_leaves_the_queue(redis_client: Any) -> None:
    """A waiter cancelled while queued gives up its place (one shielded round trip)."""
    holder = trine.redis.Semaphore(redis_client, "db", 1)
    waiter = trine.redis.Semaphore(redis_client, "db", 1, poll_interval=0.02)
    async with holder.hold():
        with trio.move_on_after(0.1):
            async with waiter.hold():
                pass  # pragma: no cover - not entered
        assert await redis_client.zcard(KEYS + "queue") == 0
        assert waiter.statistics().tasks_waiting == 0


async def test_a_release_here_wakes_a_waiter_here_at_once(redis_client: Any) -> None:
    """Waiters poll every poll_interval, but a release in their own process wakes them at once."""
    sem = trine.redis.Semaphore(redis_client, "db", 1, poll_interval=10.0)
    entered: list[float] = []

    async def wait_for_it() -> None:
        async with sem.hold():
            entered.append(trio.current_time())

    async with trio.open_nursery() as nursery, sem.hold():
        nursery.start_soon(wait_for_it)
        await trio.sleep(0.05)
        released = trio.current_time()
    assert entered[0] - released < 1.0


async def test_a_crashed_holders_slot_comes_free_when_its_lease_expires(redis_client: Any) -> None:
    """A lease nobody renews (its holder died) frees the slot after ttl, with a larger token."""
    sem = trine.redis.Semaphore(redis_client, "db", 1, ttl=0.2, poll_interval=0.02)
    script = redis_client.register_script(
        trine.redis._lua.script_source("semaphore_acquire")  # type: ignore[attr-defined]
    )
    keys = [KEYS + part for part in ("slots", "expiry", "queue", "polls", "meta")]
    _, _, dead_token, _ = await script(keys=keys, args=[1, "200000.0", "dead", "1000000.0", "0"])
    start = trio.current_time()
    async with sem.hold() as lease:
        waited = trio.current_time() - start
    assert 0.15 <= waited <= 0.6
    assert lease.token is not None
    assert lease.token > int(dead_token)


async def test_fail_closed_refuses_to_enter_naming_the_server() -> None:
    """No server: entering raises RedisUnavailable, and nothing is held."""
    port = free_port()
    async with coredis.Redis(host="127.0.0.1", port=port) as client:
        sem = trine.redis.Semaphore(client, "db", 1)
        with pytest.raises(trine.redis.RedisUnavailable, match=f"127.0.0.1:{port}.*semaphore 'db'"):
            async with sem.hold():
                pass  # pragma: no cover - not entered
        assert sem.statistics().held == 0


async def test_fail_open_holds_a_local_slot_without_a_token() -> None:
    """No server, fail_open: the local Bulkhead of the same limit holds; the lease is unfenced."""
    async with coredis.Redis(host="127.0.0.1", port=free_port()) as client:
        sem = trine.redis.Semaphore(client, "db", 1, on_unavailable="fail_open", max_wait=0)
        async with sem.hold() as lease:
            assert (lease.slot, lease.token, lease.fenced) == (None, None, False)
            assert sem.local.statistics().borrowed_tokens == 1
            with pytest.raises(trine.BulkheadFull):
                async with sem.hold():
                    pass  # pragma: no cover - not entered
        assert sem.statistics().fallbacks == 2


async def test_policy_takes_the_semaphore_as_its_limiter(redis_client: Any) -> None:
    """It has a hold() with no arguments, so Policy(limiter=...) holds one slot per attempt."""
    sem = trine.redis.Semaphore(redis_client, "db", 2)
    policy = trine.Policy(limiter=sem)

    async def inside() -> int:
        return sem.statistics().held

    assert await policy.call(inside) == 1
    assert sem.statistics().acquired == 1
