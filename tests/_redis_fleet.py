"""One member of a fleet, for tests/test_redis_fleet.py and tests/test_redis_faults.py.

Run as ``python tests/_redis_fleet.py ROLE PORT JSON``: a process of its own,
with its own ``trio.run`` and its own coredis client, doing ROLE's work
against the server on PORT, and printing what it saw as JSON lines. Processes
of one test start together: each counts itself in (``INCR fleet:ready``) and
waits for ``fleet:go``, the CLOCK_MONOTONIC instant (shared by every process
on the machine) at which the parent has them begin.

``python tests/_redis_fleet.py ROLE PORT --fleet JSON_LIST`` starts one member
per element of the list: this process imports trio, coredis and trine once
and then forks the members, before any ``trio.run`` or connection exists, so
each is still an OS process with its own ``trio.run`` and its own client, but
four of them do not each pay the imports (seconds on a loaded 2-core
machine). It prints one JSON line per member, ``{"member": i, "pid": p, "lines": [...]}``,
once all have exited, and fails if any did.

The protected resource of the semaphore tests lives here too (:data:`RESOURCE`):
a Lua script that checks fencing tokens, as a database would.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

import coredis
import trio

import trine
import trine.redis

# A resource that accepts work only from current leases: per slot, the highest
# token seen; a token below it is refused (-1), as is a second holder of a slot
# at once (-2). 'begin' answers how many holders are inside now.
RESOURCE = """
local op, slot, token = ARGV[1], ARGV[2], tonumber(ARGV[3])
local highest = tonumber(redis.call('HGET', KEYS[1], slot)) or 0
if op == 'end' then
  if redis.call('HGET', KEYS[2], slot) == ARGV[3] then redis.call('HDEL', KEYS[2], slot) end
  return 0
end
if token < highest then return -1 end
redis.call('HSET', KEYS[1], slot, ARGV[3])
if op == 'write' then return 0 end
if redis.call('HEXISTS', KEYS[2], slot) == 1 then return -2 end
redis.call('HSET', KEYS[2], slot, ARGV[3])
return redis.call('HLEN', KEYS[2])
"""
RESOURCE_KEYS = ["resource:highest", "resource:inside"]


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def start_together(client: Any) -> float:
    """Count in, then wait for the parent's go; return the monotonic start instant."""
    await client.incr("fleet:ready")
    # Polling: the go comes from another process, through the server.
    while (go := await client.get("fleet:go")) is None:  # noqa: ASYNC110
        await trio.sleep(0.005)
    start = float(go)
    await trio.sleep(max(0.0, start - time.monotonic()))
    return start


async def rate(
    client: Any, name: str, rate: float, burst: int, tasks: int, duration: float
) -> None:
    limiter = trine.redis.RateLimiter(client, name, rate, burst=burst)
    start = await start_together(client)
    admitted: list[float] = []

    async def take() -> None:
        while time.monotonic() < start + duration:
            await limiter.acquire()
            admitted.append(time.monotonic())

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(take)
    say(admitted=admitted, round_trips=limiter.statistics().round_trips)


async def breaker(
    client: Any, name: str, reset_timeout: float, probes: int, tasks: int, duration: float
) -> None:
    shared = trine.redis.CircuitBreaker(
        client, name, failure_threshold=1, reset_timeout=reset_timeout, half_open_max_calls=probes
    )
    start = await start_together(client)
    admitted: list[float] = []
    refused: dict[str, int] = {}

    async def probe() -> None:
        admitted.append(time.monotonic())
        await trio.sleep(0.3)
        raise OSError("still down")

    async def call() -> None:
        while time.monotonic() < start + duration:
            try:
                await shared.call(probe)
            except OSError:
                pass
            except trine.CircuitOpenError as error:
                refused[error.state] = refused.get(error.state, 0) + 1
                await trio.sleep(0.002)

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(call)
    say(admitted=admitted, refused=refused)


async def semaphore(client: Any, name: str, limit: int, tasks: int, duration: float) -> None:
    shared = trine.redis.Semaphore(client, name, limit, ttl=2.0, poll_interval=0.01)
    resource = client.register_script(RESOURCE)
    start = await start_together(client)
    inside: list[int] = []
    holds = 0

    async def work() -> None:
        nonlocal holds
        while time.monotonic() < start + duration:
            async with shared.hold() as lease:
                args = ["begin", lease.slot, lease.token]
                inside.append(int(await resource(keys=RESOURCE_KEYS, args=args)))
                await trio.sleep(0.01)
                await resource(keys=RESOURCE_KEYS, args=["end", lease.slot, lease.token])
                holds += 1

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(work)
    say(holds=holds, inside=inside)


async def holder(client: Any, name: str, ttl: float) -> None:
    """Take the one slot, tell the parent its token, and hold it until killed."""
    shared = trine.redis.Semaphore(client, name, 1, ttl=ttl)
    resource = client.register_script(RESOURCE)
    async with shared.hold() as lease:
        await resource(keys=RESOURCE_KEYS, args=["write", lease.slot, lease.token])
        say(slot=lease.slot, token=lease.token)
        await trio.sleep_forever()


async def consumer(client: Any, stream: str, name: str, claim_idle: float, hang_on: str) -> None:
    """Drain *stream* into stream + ':out'; on the entry with n == hang_on, say so and hang."""
    source = trine.redis.stream_source(
        client, stream, group="workers", consumer=name, claim_idle=claim_idle, count=4
    )
    sink = trine.redis.stream_sink(client, stream + ":out")

    async def work(entry: trine.redis.StreamEntry[dict[Any, Any]]) -> Any:
        n = entry.value[b"n"].decode()
        await client.rpush(stream + ":started", [f"{name}:{n}"])
        if n == hang_on:
            say(busy=entry.id, n=n)
            await trio.sleep_forever()
        return entry.with_value({"n": n, "by": name})

    await trine.Pipeline.source(source).map(work).map(sink).run()


ROLES = {
    "rate": rate,
    "breaker": breaker,
    "semaphore": semaphore,
    "holder": holder,
    "consumer": consumer,
}


async def main(role: str, port: int, arguments: dict[str, Any]) -> None:
    async with coredis.Redis(host="127.0.0.1", port=port) as client:
        await ROLES[role](client, **arguments)


def fleet(role: str, port: int, arguments: list[dict[str, Any]]) -> int:
    """Fork one member per *arguments*, wait for all, print their output; the exit status."""
    with tempfile.TemporaryDirectory() as directory:
        paths = [os.path.join(directory, f"member-{n}.jsonl") for n in range(len(arguments))]
        children = []
        for path, argument in zip(paths, arguments, strict=True):
            sys.stdout.flush()
            child = os.fork()
            if child == 0:  # the member: its stdout is its own file
                status = 1
                try:
                    with open(path, "w") as out:
                        sys.stdout = out
                        trio.run(main, role, port, argument)
                    status = 0
                finally:
                    os._exit(status)
            children.append(child)
        failed = False
        for child in children:
            _, status = os.waitpid(child, 0)
            failed |= os.waitstatus_to_exitcode(status) != 0
        for number, path in enumerate(paths):
            with open(path) as out:
                say(member=number, pid=children[number], lines=[json.loads(line) for line in out])
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[3] == "--fleet":
        sys.exit(fleet(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[4])))
    trio.run(main, sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
