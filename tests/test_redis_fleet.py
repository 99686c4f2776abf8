"""Fleets of real processes sharing one guard through a real redis-server.

Each test starts four OS processes (tests/_redis_fleet.py, forked by one
launcher after its imports), each with its own ``trio.run`` and its own
connection, releases them together, and checks what they did together
against the guard's stated guarantee. Real time, real
processes: the figures they print are the ones the docs quote.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
from typing import Any

import pytest
import trio

pytest.importorskip("coredis")

import trine
import trine.redis

FLEET = pathlib.Path(__file__).with_name("_redis_fleet.py")
PROCESSES = 4


async def run_fleet(
    client: Any, port: int, role: str, arguments: list[dict[str, Any]], *, start_in: float = 0.3
) -> tuple[float, list[list[dict[str, Any]]]]:
    """Fork one process per *arguments*, release them together; (start, each one's JSON lines).

    One launcher process imports everything once and forks the members
    (tests/_redis_fleet.py ``--fleet``): each is still an OS process with its
    own ``trio.run`` and its own connection.
    """
    await client.delete(["fleet:ready", "fleet:go"])
    command = [sys.executable, str(FLEET), role, str(port), "--fleet", json.dumps(arguments)]
    done: list[trio.CompletedProcess[bytes]] = []

    async def launch() -> None:
        done.append(await trio.run_process(command, capture_stdout=True, stderr=None))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(launch)
        with trio.fail_after(120):  # imports are slow on a loaded machine
            # Polling: the members count themselves in on the server.
            while int(await client.get("fleet:ready") or 0) < len(arguments):  # noqa: ASYNC110
                await trio.sleep(0.01)
        start = time.monotonic() + start_in
        await client.set("fleet:go", repr(start))
    members = [json.loads(line) for line in done[0].stdout.splitlines()]
    assert [member["member"] for member in members] == list(range(len(arguments)))
    assert len({member["pid"] for member in members}) == len(arguments)  # one OS process each
    return start, [member["lines"] for member in members]


async def test_a_fleet_shares_one_rate_within_one_percent(
    redis_client: Any, redis_server: Any
) -> None:
    """Four processes, 200/s, 5 s: admitted within 1 % of burst + rate * t.

    The window starts at the first admission (when the fleet's first request
    reached the server), so a process that wakes late at the start does not
    count against the limiter; sixteen waiters per process keep reservations
    ahead of the belt even when the machine stalls a process for a while.
    The times are the clients' (when acquire returned): the bound itself holds
    on the server's, and a stalled client returns its overdue waiters at once
    (tests/test_redis_lua.py checks the arithmetic on the server's times).
    """
    rate, burst, seconds = 200.0, 1, 5.0
    argument = {
        "name": "quota",
        "rate": rate,
        "burst": burst,
        "tasks": 16,
        "duration": seconds + 0.3,
    }
    _, outputs = await run_fleet(redis_client, redis_server.port, "rate", [argument] * PROCESSES)
    times = sorted(t for [out] in outputs for t in out["admitted"])
    first = times[0]
    admitted = [t for t in times if t <= first + seconds]
    expected = burst + rate * seconds
    per_process = [sum(t <= first + seconds for t in out["admitted"]) for [out] in outputs]
    print(
        f"\nfleet rate: {len(admitted)} admitted in {seconds:g} s by {PROCESSES} processes "
        f"{per_process}, bound burst + rate * t = {expected:g} "
        f"({(len(admitted) - expected) / expected:+.2%})"
    )
    assert abs(len(admitted) - expected) <= 0.01 * expected
    assert all(count > 0 for count in per_process)


async def test_a_fleet_breaker_admits_exactly_half_open_max_calls_probes(
    redis_client: Any, redis_server: Any
) -> None:
    """Four processes hammer an open breaker: half-open, exactly 2 probes run fleet-wide."""
    opener = trine.redis.CircuitBreaker(
        redis_client, "api", failure_threshold=1, reset_timeout=1.0, half_open_max_calls=2
    )

    async def fail() -> None:
        raise OSError("down")

    argument = {"name": "api", "reset_timeout": 1.0, "probes": 2, "tasks": 4, "duration": 1.6}
    await redis_client.delete(["fleet:ready", "fleet:go"])

    async def open_it_when_ready() -> None:
        # Open it just before the fleet starts, so it half-opens mid-run.
        while int(await redis_client.get("fleet:ready") or 0) < PROCESSES:  # noqa: ASYNC110
            await trio.sleep(0.01)
        with pytest.raises(OSError, match=r"^down$"):
            await opener.call(fail)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(open_it_when_ready)
        _, outputs = await run_fleet(redis_client, redis_server.port, "breaker", [argument] * 4)
    admitted = [t for [out] in outputs for t in out["admitted"]]
    refused_open = [out["refused"].get("open", 0) for [out] in outputs]
    refused_half_open = sum(out["refused"].get("half_open", 0) for [out] in outputs)
    print(
        f"\nfleet breaker: {len(admitted)} probes admitted (half_open_max_calls=2); refusals "
        f"while open per process {refused_open}, while half-open {refused_half_open}"
    )
    assert len(admitted) == 2
    assert max(admitted) - min(admitted) < 0.3  # both in the one half-open spell
    assert all(count > 0 for count in refused_open)  # every process saw it open
    assert refused_half_open > 0  # others asked for a probe slot while both were taken
    # The failed probes reopened it: epochs 1 open, 2 half-open, 3 open again (and 4
    # half-open again, if its reset timeout passed before this read).
    assert (await opener.fleet_state()).epoch in (3, 4)


async def test_a_fleet_semaphore_never_has_more_than_its_limit_inside(
    redis_client: Any, redis_server: Any
) -> None:
    """Four processes of three tasks share 3 slots; the fenced resource never sees a fourth."""
    argument = {"name": "db", "limit": 3, "tasks": 3, "duration": 2.0}
    _, outputs = await run_fleet(redis_client, redis_server.port, "semaphore", [argument] * 4)
    inside = [n for [out] in outputs for n in out["inside"]]
    holds = sum(out["holds"] for [out] in outputs)
    print(f"\nfleet semaphore: {holds} holds, at most {max(inside)} inside (limit 3)")
    assert min(inside) >= 1  # no refused token (-1), no slot held twice (-2)
    assert max(inside) == 3  # it was full at times, and never fuller
    assert all(out["holds"] > 0 for [out] in outputs)
