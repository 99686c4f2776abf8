"""The Lua scripts of trine.redis, loaded into a real redis-server: the edges of their arithmetic.

Each test drives one script directly, with the arguments the guards send, and
checks the reply against what the rule says, computed from the server time
the script reports. Time is the server's, so waits are stated relative to it.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

pytest.importorskip("coredis")

from _redis_server import IN_CI
from trine.redis._lua import SCRIPTS, script_source

pytestmark = pytest.mark.usefixtures("redis_server")

US = 1_000_000.0  # microseconds per second


async def run(client: Any, name: str, keys: list[str], args: list[object]) -> Any:
    return await client.register_script(script_source(name))(keys=keys, args=args)


async def server_now(client: Any) -> float:
    seconds, micros = await client.register_script("return redis.call('TIME')")()
    return float(seconds) * US + float(micros)


async def expiry(client: Any, key: str) -> int:
    """The key's absolute expiry, in milliseconds since the epoch (PEXPIRETIME: Redis 7)."""
    version = (await client.info("server"))["redis_version"]
    if int(str(version).split(".")[0]) < 7:
        message = f"reading a key's expiry needs Redis 7 or newer, the server is {version}"
        if IN_CI:
            pytest.fail(message + ", and CI must run these tests")
        pytest.skip(message)
    script = client.register_script("return redis.call('PEXPIRETIME', KEYS[1])")
    return int(await script(keys=[key]))


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_every_script_compiles_in_one_piece() -> None:
    """Every script named in SCRIPTS has its files, and the prelude comes first."""
    for name in SCRIPTS:
        source = script_source(name)
        assert source.startswith("-- Shared by every trine script")
        assert "local function now_us()" in source


# -- GCRA ------------------------------------------------------------------------


async def gcra(
    client: Any, interval: float, burst: int, cost: float, max_wait: float = -1.0
) -> Any:
    return await run(
        client, "rate_acquire", ["k"], [repr(interval), burst, repr(cost), repr(max_wait)]
    )


async def test_gcra_idle_key_admits_at_once_and_moves_the_tat_by_the_cost(
    redis_client: Any,
) -> None:
    """On a missing key the cost goes now, and the TAT is now + cost * interval, to the bit."""
    admitted, wait, now, tat = await gcra(redis_client, 5000.0, 1, 1)
    assert (int(admitted), float(wait)) == (1, 0.0)
    assert float(tat) == float(now) + 5000.0


async def test_gcra_burst_goes_at_once_then_the_next_waits_for_its_slot(redis_client: Any) -> None:
    """Burst 3 at one per second: three go at once, the fourth is reserved an interval later."""
    replies = [await gcra(redis_client, US, 3, 1) for _ in range(4)]
    first_now = float(replies[0][2])
    assert [float(r[1]) for r in replies[:3]] == [0.0, 0.0, 0.0]
    admitted, wait, now, tat = replies[3]
    assert int(admitted) == 1
    # Conforming at tat - (burst - cost) * interval: the first TAT + 3 s - 2 s.
    assert float(wait) == pytest.approx(first_now + US - float(now), abs=1e-6)
    assert float(tat) == first_now + 4 * US


async def test_gcra_refusal_past_max_wait_takes_nothing(redis_client: Any) -> None:
    """A wait longer than max_wait is refused with its length, and the TAT is untouched."""
    await gcra(redis_client, US, 1, 1)
    before = await redis_client.get("k")
    reply = await gcra(redis_client, US, 1, 1, max_wait=0.0)
    assert int(reply[0]) == 0
    assert len(reply) == 3
    assert 0 < float(reply[1]) <= US
    assert await redis_client.get("k") == before


async def test_gcra_a_cost_of_burst_goes_at_once_on_an_idle_key_then_waits_its_length(
    redis_client: Any,
) -> None:
    """cost == burst is admitted at once when idle; the next one waits cost * interval.

    The interval is a second, so the next call is still inside the first's
    5 s however late a loaded machine sends it (a 1 ms interval made this flaky).
    """
    first = await gcra(redis_client, US, 5, 5)
    second = await gcra(redis_client, US, 5, 5)
    assert float(first[1]) == 0.0
    assert float(second[1]) > 0
    assert float(second[1]) == pytest.approx(float(first[2]) + 5 * US - float(second[2]), abs=1e-6)


async def test_gcra_fractional_interval_keeps_every_bit_of_the_tat(redis_client: Any) -> None:
    """A third of a second per admission: the stored TAT reads back exactly (17 digits, not 14)."""
    interval = US / 3
    replies = [await gcra(redis_client, interval, 100, 1) for _ in range(10)]
    expected = float(replies[0][3])
    for reply in replies[1:]:
        expected += interval
        assert float(reply[3]) == expected
    assert text(await redis_client.get("k")) == text(replies[-1][3])
    assert len(text(replies[-1][3]).replace(".", "")) > 14


async def test_gcra_wait_keeps_its_fraction_of_a_microsecond(redis_client: Any) -> None:
    """A Lua number in a reply would be truncated to an integer: waits come back as strings.

    Server times are whole microseconds, so a wait of now0 + (1 s + 0.5 us) - now1
    has a half in it, however long the second call took to arrive.
    """
    interval = US + 0.5
    await gcra(redis_client, interval, 1, 1)
    reply = await gcra(redis_client, interval, 1, 1)
    assert float(reply[1]) > 0
    assert float(reply[1]) % 1 == 0.5
    assert float(reply[3]) - float(reply[2]) - float(reply[1]) == pytest.approx(interval, abs=1e-3)


async def test_gcra_fractional_cost(redis_client: Any) -> None:
    """Costs need not be whole: 0.25 of a unit moves the TAT by a quarter interval."""
    _, _, now, tat = await gcra(redis_client, 4000.0, 1, 0.25)
    assert float(tat) == float(now) + 1000.0


async def test_gcra_key_expires_when_its_tat_passes(redis_client: Any) -> None:
    """The key lives as long as its TAT is ahead: after it, a missing key is a full bucket."""
    # 200 ms, so that a loaded machine cannot let the key go before its expiry is read.
    _, _, _, tat = await gcra(redis_client, 200_000.0, 1, 1)
    # Its expiry is the first whole millisecond after the TAT.
    assert float(tat) / 1000 < await expiry(redis_client, "k") <= float(tat) / 1000 + 1
    await trio.sleep(0.25)
    assert await redis_client.exists(["k"]) == 0


async def test_gcra_refund_takes_back_only_the_last_reservation(redis_client: Any) -> None:
    """Rolling the TAT back under a later reservation would put two in one slot: refused."""
    first = await gcra(redis_client, US, 1, 1)
    second = await gcra(redis_client, US, 1, 1)
    third = await gcra(redis_client, US, 1, 1)
    refund = ["k"], [text(second[3]), "1", repr(US)]
    assert await run(redis_client, "rate_refund", *refund) == 0
    assert text(await redis_client.get("k")) == text(third[3])
    assert await run(redis_client, "rate_refund", ["k"], [text(third[3]), "1", repr(US)]) == 1
    assert float(text(await redis_client.get("k"))) == float(second[3])
    assert await run(redis_client, "rate_refund", *refund) == 1
    assert float(text(await redis_client.get("k"))) == float(first[3])


async def test_gcra_refund_moves_the_expiry_back_to_the_tat(redis_client: Any) -> None:
    """A refunded key still lives exactly as long as its (earlier) TAT is ahead."""
    # Ten seconds apart: a stalled machine cannot let the TATs pass mid-test.
    first = await gcra(redis_client, 10 * US, 1, 1)
    second = await gcra(redis_client, 10 * US, 1, 1)
    assert await run(redis_client, "rate_refund", ["k"], [text(second[3]), "1", repr(10 * US)]) == 1
    tat = float(first[3])
    assert tat / 1000 < await expiry(redis_client, "k") <= tat / 1000 + 1


async def test_gcra_refund_of_a_past_tat_deletes_the_key(redis_client: Any) -> None:
    """Taking back the only reservation leaves a TAT at or before now: the key goes."""
    reply = await gcra(redis_client, 100_000.0, 1, 1)
    assert await run(redis_client, "rate_refund", ["k"], [text(reply[3]), "1", "100000.0"]) == 1
    assert await redis_client.exists(["k"]) == 0


# -- sliding window ----------------------------------------------------------------

WINDOW_KEYS = ["w:log", "w:state"]


async def window(
    client: Any, window_us: float, limit: int, cost: int, max_wait: float = -1.0
) -> Any:
    return await run(
        client, "window_acquire", WINDOW_KEYS, [repr(window_us), limit, cost, repr(max_wait)]
    )


async def log(client: Any) -> list[tuple[str, float]]:
    return [(text(m), float(s)) for m, s in await client.zrange("w:log", 0, -1, withscores=True)]


async def test_window_admits_the_limit_at_once_then_reserves_when_the_oldest_leaves(
    redis_client: Any,
) -> None:
    """Three in a 1 s window go at once; the fourth is placed at the first one's time + 1 s."""
    replies = [await window(redis_client, US, 3, 1) for _ in range(4)]
    assert [float(r[1]) for r in replies[:3]] == [0.0, 0.0, 0.0]
    first_at = float(replies[0][2])
    assert float(replies[3][1]) == pytest.approx(first_at + US - float(replies[3][2]), abs=1e-6)
    assert int(await redis_client.hget("w:state", "used")) == 4


async def test_window_costs_are_read_back_from_the_members(redis_client: Any) -> None:
    """Members are '<seq>:<cost>': a cost of 2 counts twice, so 2 + 2 does not fit a limit of 3."""
    first = await window(redis_client, US, 3, 2)
    second = await window(redis_client, US, 3, 2)
    assert text(first[3]).endswith(":2")
    assert float(second[1]) > 0
    assert float(second[1]) == pytest.approx(float(first[2]) + US - float(second[2]), abs=1e-6)


async def test_window_every_window_holds_at_most_the_limit_with_reservations(
    redis_client: Any,
) -> None:
    """Reservations are placed in order, and no window (s - w, s] ever holds more than the limit."""
    for cost in [1, 2, 1, 1, 2, 1, 1, 2]:
        await window(redis_client, 100_000.0, 3, cost)
    entries = await log(redis_client)
    times = [at for _, at in entries]
    assert times == sorted(times)
    for _, at in entries:
        held = sum(int(m.split(":")[1]) for m, s in entries if at - 100_000.0 < s <= at)
        assert held <= 3


async def test_window_forgets_admissions_older_than_the_window(redis_client: Any) -> None:
    """An admission that left the window frees its cost (and its member) for the next call."""
    now = await server_now(redis_client)
    await redis_client.zadd("w:log", {"1:3": now - 2 * US})
    await redis_client.hset("w:state", {"used": 3, "seq": 1})
    reply = await window(redis_client, US, 3, 3)
    assert float(reply[1]) == 0.0
    assert [member for member, _ in await log(redis_client)] == ["2:3"]
    assert int(await redis_client.hget("w:state", "used")) == 3


async def test_window_refusal_takes_nothing(redis_client: Any) -> None:
    """A wait longer than max_wait adds no member and leaves the used cost as it was."""
    await window(redis_client, US, 1, 1)
    reply = await window(redis_client, US, 1, 1, max_wait=0.0)
    assert int(reply[0]) == 0
    assert len(await log(redis_client)) == 1
    assert int(await redis_client.hget("w:state", "used")) == 1


async def test_window_refund_takes_any_reservation_out(redis_client: Any) -> None:
    """Taking a reservation out only lowers counts, so any one may go, not only the last."""
    await window(redis_client, US, 1, 1)
    middle = await window(redis_client, US, 1, 1)
    last = await window(redis_client, US, 1, 1)
    assert await run(redis_client, "window_refund", WINDOW_KEYS, [text(middle[3])]) == 1
    assert await run(redis_client, "window_refund", WINDOW_KEYS, [text(middle[3])]) == 0
    members = [member for member, _ in await log(redis_client)]
    assert text(middle[3]) not in members
    assert text(last[3]) in members
    assert int(await redis_client.hget("w:state", "used")) == 2


async def test_window_without_its_hash_works_from_the_log(redis_client: Any) -> None:
    """The hash gone before the log (expired, evicted): used and seq are worked out from the log."""
    for _ in range(3):
        await window(redis_client, 10 * US, 3, 1)
    await redis_client.delete(["w:state"])
    refused = await window(redis_client, 10 * US, 3, 1, max_wait=0.0)
    assert int(refused[0]) == 0
    assert await redis_client.exists(["w:state"]) == 0  # a refusal writes nothing
    reply = await window(redis_client, 10 * US, 3, 1)  # reserved for when the oldest leaves
    assert float(reply[1]) > 0
    assert text(reply[3]) == "4:1"
    assert len({member for member, _ in await log(redis_client)}) == 4
    assert int(await redis_client.hget("w:state", "used")) == 4


async def test_window_without_its_log_holds_nothing(redis_client: Any) -> None:
    """The log gone before the hash: nothing is in any window, whatever the hash says."""
    await window(redis_client, US, 1, 1)
    await redis_client.delete(["w:log"])
    reply = await window(redis_client, US, 1, 1, max_wait=0.0)
    assert int(reply[0]) == 1
    assert float(reply[1]) == 0.0
    assert int(await redis_client.hget("w:state", "used")) == 1


async def test_window_refund_without_the_hash_leaves_the_count_to_the_log(
    redis_client: Any,
) -> None:
    """A refund makes no hash of its own (it would hold a negative cost)."""
    first = await window(redis_client, 10 * US, 2, 1)
    await window(redis_client, 10 * US, 2, 1)
    await redis_client.delete(["w:state"])
    assert await run(redis_client, "window_refund", WINDOW_KEYS, [text(first[3])]) == 1
    assert await redis_client.exists(["w:state"]) == 0
    assert int((await window(redis_client, 10 * US, 2, 1, max_wait=0.0))[0]) == 1
    assert int((await window(redis_client, 10 * US, 2, 1, max_wait=0.0))[0]) == 0


async def test_window_keys_live_until_the_newest_admission_leaves(redis_client: Any) -> None:
    """Both keys expire at one millisecond, a window after the newest (reserved) admission."""
    await window(redis_client, 10 * US, 1, 1)
    reply = await window(redis_client, 10 * US, 1, 1)
    # Absolute expiry times: two PTTL reads may straddle a millisecond.
    log_at = await expiry(redis_client, "w:log")
    assert await expiry(redis_client, "w:state") == log_at
    leaves = (float(reply[2]) + float(reply[1]) + 10 * US) / 1000
    assert leaves < log_at <= leaves + 1


# -- semaphore ---------------------------------------------------------------------

SEM_KEYS = ["s:slots", "s:expiry", "s:queue", "s:polls", "s:meta"]


async def take(
    client: Any,
    waiter: str,
    *,
    limit: int = 2,
    ttl: float = US,
    queue: bool = True,
    patience: float = US,
) -> Any:
    return await run(
        client,
        "semaphore_acquire",
        SEM_KEYS,
        [limit, repr(ttl), waiter, repr(patience), "1" if queue else "0"],
    )


async def test_semaphore_grants_the_lowest_free_slot_with_growing_tokens(redis_client: Any) -> None:
    """Slots 0 then 1; tokens strictly grow and start above the server's clock in microseconds."""
    before = await server_now(redis_client)
    first = await take(redis_client, "a")
    second = await take(redis_client, "b")
    assert (int(first[0]), int(first[1]), int(second[1])) == (1, 0, 1)
    assert int(text(second[2])) > int(text(first[2])) >= before


async def test_semaphore_refuses_past_the_limit_and_says_the_place(redis_client: Any) -> None:
    """With both slots held, a newcomer is refused with holders=2 and place 0 (nobody ahead)."""
    await take(redis_client, "a")
    await take(redis_client, "b")
    assert [int(x) for x in await take(redis_client, "c")] == [0, 2, 0]
    assert [int(x) for x in await take(redis_client, "d")] == [0, 2, 1]


async def test_semaphore_token_keeps_growing_when_the_counter_was_lost(redis_client: Any) -> None:
    """A server that lost its data still hands out larger tokens: they start at its clock."""
    first = await take(redis_client, "a", limit=1)
    await redis_client.delete(SEM_KEYS)
    second = await take(redis_client, "b", limit=1)
    assert int(text(second[2])) > int(text(first[2]))


async def test_semaphore_token_is_last_plus_one_when_the_clock_is_behind(redis_client: Any) -> None:
    """If the last token is ahead of the clock, the next one is still larger by one."""
    ahead = int(await server_now(redis_client)) + 10**12
    await redis_client.hset("s:meta", {"fence": ahead})
    reply = await take(redis_client, "a", limit=1)
    assert int(text(reply[2])) == ahead + 1


async def test_semaphore_expired_lease_loses_its_slot_and_cannot_renew(redis_client: Any) -> None:
    """A lease past its TTL is swept by the next acquire, and its renewal is refused."""
    old = await take(redis_client, "a", limit=1, ttl=2000.0)
    await trio.sleep(0.02)
    new = await take(redis_client, "b", limit=1)
    assert (int(new[0]), int(new[1])) == (1, 0)
    renewal = [0, text(old[2]), repr(US)]
    assert await run(redis_client, "semaphore_renew", SEM_KEYS, renewal) == 0


async def test_semaphore_expired_lease_is_not_revived_even_if_nobody_took_it(
    redis_client: Any,
) -> None:
    """Renewing after the TTL fails even before any sweep: the lease ended when it expired."""
    old = await take(redis_client, "a", limit=1, ttl=2000.0)
    await trio.sleep(0.02)
    renewal = [0, text(old[2]), repr(US)]
    assert await run(redis_client, "semaphore_renew", SEM_KEYS, renewal) == 0
    assert await redis_client.hget("s:slots", "0") is None


async def test_semaphore_renew_and_release_need_the_holders_token(redis_client: Any) -> None:
    """A wrong token neither renews nor releases; the right one does both."""
    lease = await take(redis_client, "a", limit=1)
    slot, token = 0, text(lease[2])
    assert await run(redis_client, "semaphore_renew", SEM_KEYS, [slot, "1", repr(US)]) == 0
    assert await run(redis_client, "semaphore_release", SEM_KEYS, [slot, "1"]) == 0
    assert await run(redis_client, "semaphore_renew", SEM_KEYS, [slot, token, repr(US)]) == 1
    assert await run(redis_client, "semaphore_release", SEM_KEYS, [slot, token]) == 1
    assert await redis_client.hlen("s:slots") == 0


async def test_semaphore_waiters_are_served_in_the_order_they_came(redis_client: Any) -> None:
    """A freed slot goes to the first waiter; a later waiter asking first is refused."""
    lease = await take(redis_client, "holder", limit=1)
    await take(redis_client, "first", limit=1)
    await take(redis_client, "second", limit=1)
    await run(redis_client, "semaphore_release", SEM_KEYS, [0, text(lease[2])])
    assert [int(x) for x in await take(redis_client, "second", limit=1)] == [0, 0, 1]
    assert int((await take(redis_client, "first", limit=1))[0]) == 1
    assert int((await take(redis_client, "second", limit=1))[0]) == 0  # first holds it now


async def test_semaphore_a_waiter_that_stops_polling_loses_its_place(redis_client: Any) -> None:
    """Past its patience, a silent waiter leaves the queue and the next one is first."""
    lease = await take(redis_client, "holder", limit=1)
    await take(redis_client, "gone", limit=1, patience=2000.0)
    await take(redis_client, "next", limit=1)
    await run(redis_client, "semaphore_release", SEM_KEYS, [0, text(lease[2])])
    await trio.sleep(0.02)
    assert int((await take(redis_client, "next", limit=1))[0]) == 1
    assert await redis_client.zcard("s:queue") == 0


async def test_semaphore_trying_does_not_queue(redis_client: Any) -> None:
    """With queue "0" a refused caller takes no place; leaving removes a place."""
    await take(redis_client, "holder", limit=1)
    await take(redis_client, "try", limit=1, queue=False)
    assert await redis_client.zcard("s:queue") == 0
    await take(redis_client, "wait", limit=1)
    await run(redis_client, "semaphore_leave", SEM_KEYS, ["wait"])
    assert await redis_client.zcard("s:queue") == 0
    assert await redis_client.zcard("s:polls") == 0


# -- circuit breaker ---------------------------------------------------------------

BREAKER_KEYS = ["b", "b:probes", "b:window"]


def settings(
    *,
    reset: float = US,
    max_probes: int = 1,
    successes: int = 1,
    threshold: int = 3,
    rate: float = -1,
    minimum: int = 10,
    window: float = 100,
    kind: str = "count",
    slow_rate: float = -1,
    probe_timeout: float = 30 * US,
) -> list[object]:
    return [
        repr(reset),
        max_probes,
        successes,
        threshold,
        repr(rate),
        minimum,
        repr(window) if kind == "time" else int(window),
        kind,
        repr(slow_rate),
        repr(probe_timeout),
    ]


NO_PENDING = [0, 0, -1]


async def enter(client: Any, config: list[object], pending: list[object] = NO_PENDING) -> list[Any]:
    reply = await run(client, "breaker_enter", BREAKER_KEYS, [*config, *pending])
    return [text(x) if isinstance(x, bytes) else x for x in reply]


async def record(
    client: Any, config: list[object], outcome: str, epoch: int, probe: str = "", slow: bool = False
) -> list[Any]:
    args = [*config, *NO_PENDING, outcome, "1" if slow else "0", epoch, probe]
    reply = await run(client, "breaker_record", BREAKER_KEYS, args)
    return [text(x) if isinstance(x, bytes) else x for x in reply]


async def control(client: Any, config: list[object], op: str = "read") -> list[Any]:
    reply = await run(client, "breaker_control", BREAKER_KEYS, [*config, *NO_PENDING, op])
    return [text(x) if isinstance(x, bytes) else x for x in reply]


async def test_breaker_consecutive_failures_open_it_and_a_success_resets_the_count(
    redis_client: Any,
) -> None:
    """Threshold 3: fail, fail, succeed, fail, fail stays closed; a third failure in a row opens."""
    config = settings(threshold=3)
    for outcome in ["failure", "failure", "success", "failure", "failure"]:
        assert (await record(redis_client, config, outcome, 0))[0] == "closed"
    state, epoch, retry_after = await record(redis_client, config, "failure", 0)
    assert (state, epoch) == ("open", 1)
    assert 0 < float(retry_after) <= US


async def test_breaker_failure_rate_compares_the_quotient(redis_client: Any) -> None:
    """3 failures in 10 calls open a breaker at rate 0.3 (3 / 10 >= 0.3, as Python divides)."""
    config = settings(rate=0.3, minimum=10, window=10)
    outcomes = ["success"] * 7 + ["failure"] * 2
    for outcome in outcomes:
        assert (await record(redis_client, config, outcome, 0))[0] == "closed"
    assert (await record(redis_client, config, "failure", 0))[0] == "open"


async def test_breaker_count_window_forgets_the_oldest_outcome(redis_client: Any) -> None:
    """A window of 4 calls: two failures then four successes leave no failure in it."""
    config = settings(rate=0.9, minimum=4, window=4)
    for outcome in ["failure", "failure", "success", "success", "success", "success"]:
        await record(redis_client, config, outcome, 0)
    reply = await control(redis_client, config)
    assert reply[3:6] == [4, 0, 0]


async def test_breaker_time_window_forgets_outcomes_older_than_it(redis_client: Any) -> None:
    """A 500 ms window: outcomes recorded 600 ms ago no longer count.

    Wide enough that the three records and the read fit in it on a loaded machine.
    """
    config = settings(rate=0.9, minimum=100, window=500_000.0, kind="time")
    for outcome in ["failure", "success", "success"]:
        await record(redis_client, config, outcome, 0)
    assert (await control(redis_client, config))[3:6] == [3, 1, 0]
    await trio.sleep(0.6)
    assert (await control(redis_client, config))[3:6] == [0, 0, 0]


async def test_breaker_slow_calls_open_it_at_their_rate(redis_client: Any) -> None:
    """Slow successes count as slow: a slow rate of 0.5 over 4 calls opens on the second."""
    config = settings(minimum=4, window=4, slow_rate=0.5, threshold=100)
    for slow in [True, False, False]:
        assert (await record(redis_client, config, "success", 0, slow=slow))[0] == "closed"
    assert (await record(redis_client, config, "success", 0, slow=True))[0] == "open"


async def test_breaker_half_open_admits_exactly_max_probes(redis_client: Any) -> None:
    """After the reset timeout, 2 probe slots: two calls go, the third is refused."""
    config = settings(reset=200_000.0, max_probes=2, threshold=1)
    await record(redis_client, config, "failure", 0)
    assert (await enter(redis_client, config))[0] == 0  # within 200 ms, even under load
    await trio.sleep(0.25)
    replies = [await enter(redis_client, config) for _ in range(3)]
    assert [r[0] for r in replies] == [1, 1, 0]
    assert [r[1] for r in replies] == ["half_open"] * 3
    assert replies[0][3] != replies[1][3]
    assert replies[2][3] == ""


async def test_breaker_a_probe_that_never_reports_frees_its_slot(redis_client: Any) -> None:
    """A probe whose process died gives its slot back after probe_timeout."""
    config = settings(reset=0.0, threshold=1, probe_timeout=200_000.0)
    await record(redis_client, config, "failure", 0)
    assert (await enter(redis_client, config))[0] == 1
    assert (await enter(redis_client, config))[0] == 0
    await trio.sleep(0.25)
    assert (await enter(redis_client, config))[0] == 1


async def test_breaker_probes_close_it_after_success_threshold(redis_client: Any) -> None:
    """Two successful probes close a breaker with success_threshold 2."""
    config = settings(reset=0.0, threshold=1, max_probes=2, successes=2)
    await record(redis_client, config, "failure", 0)
    first, second = [await enter(redis_client, config) for _ in range(2)]
    epoch = first[2]
    assert (await record(redis_client, config, "success", epoch, first[3]))[0] == "half_open"
    assert (await record(redis_client, config, "success", epoch, second[3]))[0] == "closed"


async def test_breaker_a_failed_probe_opens_it_again(redis_client: Any) -> None:
    """One failed probe is enough to reopen it, for a new reset timeout."""
    config = settings(reset=10_000.0, threshold=1)
    await record(redis_client, config, "failure", 0)
    await trio.sleep(0.02)
    probe = await enter(redis_client, config)
    state, epoch, retry_after = await record(redis_client, config, "failure", probe[2], probe[3])
    assert (state, epoch) == ("open", probe[2] + 1)
    assert float(retry_after) > 0


async def test_breaker_a_released_probe_frees_its_slot_and_counts_nothing(
    redis_client: Any,
) -> None:
    """A cancelled probe ('release') gives the slot to the next call without a verdict."""
    config = settings(reset=0.0, threshold=1)
    await record(redis_client, config, "failure", 0)
    probe = await enter(redis_client, config)
    assert (await record(redis_client, config, "release", probe[2], probe[3]))[0] == "half_open"
    assert (await enter(redis_client, config))[0] == 1


async def test_breaker_outcomes_of_an_older_epoch_count_nothing(redis_client: Any) -> None:
    """A failure admitted before the breaker opened and closed again does not touch its window."""
    config = settings(threshold=1, reset=0.0)
    await record(redis_client, config, "failure", 0)  # opens: epoch 1
    probe = await enter(redis_client, config)  # half-open: epoch 2
    await record(redis_client, config, "success", probe[2], probe[3])  # closed: epoch 3
    state, epoch, _ = await record(redis_client, config, "failure", 0)
    assert (state, epoch) == ("closed", 3)
    assert (await control(redis_client, config))[3:7] == [0, 0, 0, 0]


async def test_breaker_pending_successes_count_only_in_their_epoch(redis_client: Any) -> None:
    """Successes a process counted locally are added to the window if their epoch is current."""
    config = settings(rate=0.9, minimum=100)
    await enter(redis_client, config, [5, 2, 0])
    assert (await control(redis_client, config))[3:6] == [5, 0, 2]
    await enter(redis_client, config, [5, 0, 7])
    assert (await control(redis_client, config))[3:6] == [5, 0, 2]


async def test_breaker_forced_open_refuses_with_infinite_retry_after_until_reset(
    redis_client: Any,
) -> None:
    """force_open: refused with retry_after -1 (infinity); reset closes it again."""
    config = settings(reset=0.0)
    assert (await control(redis_client, config, "force_open"))[0] == "forced_open"
    admitted, state, _, _, retry_after = await enter(redis_client, config)
    assert (admitted, state, float(retry_after)) == (0, "forced_open", -1.0)
    assert (await control(redis_client, config, "reset"))[0] == "closed"
    assert (await enter(redis_client, config))[0] == 1


# -- retry budget ------------------------------------------------------------------


async def budget(
    client: Any, width: float, requests: int, retries: int, buckets: int = 10
) -> list[int]:
    return [
        int(x)
        for x in await run(client, "budget_sync", ["r"], [repr(width), buckets, requests, retries])
    ]


async def test_budget_totals_add_every_processs_counts(redis_client: Any) -> None:
    """Two syncs in one window: the totals are their sums."""
    assert await budget(redis_client, US, 10, 1) == [10, 1]
    assert await budget(redis_client, US, 5, 2) == [15, 3]
    assert await budget(redis_client, US, 0, 0) == [15, 3]


async def test_budget_buckets_older_than_the_window_drop_out(redis_client: Any) -> None:
    """With 2 buckets of 20 ms, counts from 50 ms ago are out of the window."""
    await budget(redis_client, 20_000.0, 10, 4, buckets=2)
    await trio.sleep(0.05)
    assert await budget(redis_client, 20_000.0, 1, 0, buckets=2) == [1, 0]


async def test_budget_key_lives_a_window_past_the_sync(redis_client: Any) -> None:
    """The hash goes in the first millisecond after a whole window without syncs."""
    before = await server_now(redis_client)
    await budget(redis_client, US, 1, 0, buckets=10)
    after = await server_now(redis_client)
    at = await expiry(redis_client, "r")
    assert (before + 10 * US) / 1000 < at <= (after + 10 * US) / 1000 + 1


# -- streams -----------------------------------------------------------------------


async def test_stream_settle_is_fenced_by_the_delivery(redis_client: Any) -> None:
    """A delivery reclaimed by another consumer cannot write or ack; the reclaimer's does both."""
    client = redis_client
    entry_id = text(await client.xadd("in", {"n": "1"}))
    await client.xgroup_create("in", "g", "0")
    await client.xreadgroup("g", "a", streams={"in": ">"})
    await trio.sleep(0.01)
    claimed = await run(client, "stream_claim", ["in", "in:dead"], ["g", "b", 1, "0-0", 10, 5])
    assert [text(claimed[2][0]), int(claimed[2][1])] == [entry_id, 2]
    stale = ["g", "a", "write", "", "", entry_id, 1, 1, "n", "late"]
    assert await run(client, "stream_settle", ["in", "out"], stale) == [0]
    fresh = ["g", "b", "write", "", "", entry_id, 2, 1, "n", "on time"]
    [written] = await run(client, "stream_settle", ["in", "out"], fresh)
    assert written != 0
    assert [e.field_values for e in await client.xrange("out")] == [{b"n": b"on time"}]
    assert await run(client, "stream_settle", ["in", "out"], fresh) == [0]  # acked already


async def test_stream_claim_dead_letters_past_max_deliveries(redis_client: Any) -> None:
    """The reclaim that would be delivery max + 1 moves the entry to the dead-letter stream."""
    client = redis_client
    entry_id = text(await client.xadd("in", {"n": "7"}))
    await client.xgroup_create("in", "g", "0")
    await client.xreadgroup("g", "a", streams={"in": ">"})
    for deliveries in (2, 3):
        await trio.sleep(0.01)
        reply = await run(client, "stream_claim", ["in", "in:dead"], ["g", "a", 1, "0-0", 10, 3])
        assert int(reply[2][1]) == deliveries
    await trio.sleep(0.01)
    reply = await run(client, "stream_claim", ["in", "in:dead"], ["g", "a", 1, "0-0", 10, 3])
    assert (int(reply[1]), len(reply)) == (1, 2)
    [dead] = await client.xrange("in:dead")
    assert dead.field_values[b"n"] == b"7"
    assert dead.field_values[b"dead_letter.id"] == entry_id.encode()
    assert dead.field_values[b"dead_letter.deliveries"] == b"3"
    assert (await client.xpending("in", "g")).pending == 0


async def test_stream_settle_ack_writes_nothing_and_dead_keeps_the_fields(
    redis_client: Any,
) -> None:
    """'ack' only acknowledges; 'dead' writes the fields with the reason."""
    client = redis_client
    first = text(await client.xadd("in", {"n": "1"}))
    second = text(await client.xadd("in", {"n": "2"}))
    await client.xgroup_create("in", "g", "0")
    await client.xreadgroup("g", "a", streams={"in": ">"})
    assert await run(
        client, "stream_settle", ["in", "in"], ["g", "a", "ack", "", "", first, 1, 0]
    ) == [b""]
    args = ["g", "a", "dead", "", "ValueError: bad", second, 1, 1, "n", "2"]
    await run(client, "stream_settle", ["in", "in:dead"], args)
    [dead] = await client.xrange("in:dead")
    assert dead.field_values[b"dead_letter.reason"] == b"ValueError: bad"
    assert await client.xlen("in") == 2
    assert (await client.xpending("in", "g")).pending == 0


async def test_stream_settle_trims_the_target_to_about_maxlen(redis_client: Any) -> None:
    """MAXLEN ~ keeps at least maxlen entries and trims in whole nodes."""
    client = redis_client
    await client.xgroup_create("in", "g", "0", mkstream=True)
    for n in range(300):
        await client.xadd("in", {"n": str(n)})
    reply = await client.xreadgroup("g", "a", streams={"in": ">"}, count=300)
    args: list[object] = ["g", "a", "write", 10, ""]
    for item in reply[b"in"]:
        args += [text(item.identifier), 1, 1, "n", item.field_values[b"n"]]
    await run(client, "stream_settle", ["in", "out"], args)
    assert 10 <= await client.xlen("out") < 300


# -- properties: random sequences, cancellations anywhere ------------------------------

import hypothesis  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def on_server(redis_server: Any, body: Any) -> Any:
    """Run ``body(client)`` in a trio.run of its own, against an emptied server."""
    import coredis

    async def main() -> Any:
        async with coredis.Redis(host=redis_server.host, port=redis_server.port) as client:
            await client.flushall()
            return await body(client)

    return trio.run(main)


costs_and_cancels = st.lists(
    st.tuples(st.sampled_from([0.5, 1.0, 2.0]), st.booleans()), min_size=1, max_size=25
)


@hypothesis.settings(max_examples=25)
@hypothesis.given(
    interval=st.sampled_from([1000.0, US / 3, 5000.0]),
    burst=st.integers(2, 4),
    ops=costs_and_cancels,
)
def test_gcra_property_the_bound_holds_on_the_servers_times_with_refunds(
    redis_server: Any, interval: float, burst: int, ops: list[tuple[float, bool]]
) -> None:
    """Any costs, any waiter cancelled: every window [a, b] of slots holds <= burst + (b - a)/T.

    A slot is rebuilt here as now + wait, which doubles near 1.8e15 round to a
    quarter of a microsecond: the windows are widened by one microsecond.
    """

    async def body(client: Any) -> list[tuple[float, float]]:
        admitted: list[tuple[float, float, str]] = []
        for cost, cancel in ops:
            _, wait, now, tat = await gcra(client, interval, burst, cost)
            admitted.append((float(now) + float(wait), cost, text(tat)))
            if cancel:
                refund = [text(tat), repr(cost), repr(interval)]
                if await run(client, "rate_refund", ["k"], refund) == 1:
                    admitted.pop()
        return [(slot, cost) for slot, cost, _ in admitted]

    admitted = sorted(on_server(redis_server, body))
    for i, (start, _) in enumerate(admitted):
        for end, _ in admitted[i:]:
            held = sum(cost for slot, cost in admitted if start <= slot <= end)
            assert held <= burst + (end - start + 1.0) / interval


@hypothesis.settings(max_examples=25)
@hypothesis.given(
    limit=st.integers(1, 4),
    ops=st.lists(st.tuples(st.integers(1, 4), st.booleans()), min_size=1, max_size=25),
)
def test_window_property_every_window_holds_at_most_the_limit_with_refunds(
    redis_server: Any, limit: int, ops: list[tuple[int, bool]]
) -> None:
    """Any costs, any reservation taken back: every [a, a + window) holds at most the limit."""
    width = 50_000.0

    async def body(client: Any) -> list[tuple[float, int]]:
        admitted: dict[str, tuple[float, int]] = {}
        for cost, cancel in ops:
            cost = min(cost, limit)
            _, wait, now, member = await window(client, width, limit, cost)
            admitted[text(member)] = (float(now) + float(wait), cost)
            # Taken back unless it already left the window (its keys expired): then it went.
            if cancel and await run(client, "window_refund", WINDOW_KEYS, [text(member)]) == 1:
                del admitted[text(member)]
        return list(admitted.values())

    admitted = on_server(redis_server, body)
    for start, _ in admitted:
        held = sum(cost for slot, cost in admitted if start <= slot < start + width - 1.0)
        assert held <= limit


@hypothesis.settings(max_examples=25)
@hypothesis.given(
    limit=st.integers(1, 3),
    ops=st.lists(st.one_of(st.just("take"), st.integers(0, 3)), min_size=1, max_size=30),
)
def test_semaphore_property_never_more_holders_than_slots_and_tokens_grow(
    redis_server: Any, limit: int, ops: list[str | int]
) -> None:
    """Any sequence of takes and releases: at most limit holders, one per slot, growing tokens."""

    async def body(client: Any) -> None:
        held: dict[int, int] = {}
        last_token = 0
        for number, op in enumerate(ops):
            if op == "take":
                reply = await take(client, f"w{number}", limit=limit, queue=False)
                if int(reply[0]) == 1:
                    slot, token = int(reply[1]), int(text(reply[2]))
                    assert slot not in held
                    assert 0 <= slot < limit
                    assert token > last_token
                    held[slot], last_token = token, token
                else:
                    assert len(held) == limit
            elif op in held:
                token = held.pop(op)
                assert await run(client, "semaphore_release", SEM_KEYS, [op, token]) == 1
            assert await client.hlen("s:slots") == len(held) <= limit

    on_server(redis_server, body)
