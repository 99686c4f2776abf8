"""Three processes share one API quota and one circuit breaker, draining one stream.

    python examples/redis_fleet.py --port 6379 --orders 300

The program puts ``--orders`` entries on the Redis stream ``orders`` and starts
three worker processes, each with its own ``trio.run`` and its own connection.
Every worker reads ``orders`` as one consumer of the group ``billing``, prices
each order by calling a partner API -- simulated here: 20 ms a call, one call
in twenty fails -- and writes the receipt to ``receipts``. The partner allows
50 calls per second from the whole fleet, so all three call it through one
:class:`trine.Policy` whose guards live in Redis:

* ``trine.redis.RateLimiter(client, "partner", 50)``: one quota for the fleet;
* ``trine.redis.CircuitBreaker(client, "partner", ...)``: one breaker, so when
  the partner goes down every worker stops calling it at once;
* ``trine.redis.RetryBudget(client, "partner", ...)``: retries capped for the
  fleet, so three workers retrying cannot triple the load on a failing API.

An order whose call still fails is not acknowledged: the stream delivers it
again after ``claim_idle`` (to whichever worker reclaims it), and after
``max_deliveries`` it goes to ``orders:dead``. The main process waits for the
workers and prints what they did. It needs a redis-server on ``--port``
(docs/guide/redis.rst walks through it).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from typing import Any

import coredis
import trio

import trine
import trine.redis

WORKERS = 3
QUOTA = 50  # partner calls per second, for the whole fleet


async def partner_api(order: dict[bytes, bytes], rng: random.Random) -> dict[str, str]:
    """The partner's pricing call (simulated): 20 ms, and one call in twenty fails."""
    await trio.sleep(0.020)
    if rng.random() < 0.05:
        raise ConnectionError("partner API: 503")
    amount = int(order[b"amount"])
    return {"order": order[b"id"].decode(), "total": str(amount + amount // 5)}


async def worker(port: int, name: str) -> None:
    rng = random.Random(name)  # each worker's own, replayable failures
    async with coredis.Redis(host="127.0.0.1", port=port) as client:
        budget = trine.redis.RetryBudget(client, "partner", ratio=0.2)
        policy = trine.Policy(
            retry=trine.Retry(attempts=3, budget=budget, backoff=trine.Backoff.constant(0.05)),
            breaker=trine.redis.CircuitBreaker(
                client, "partner", failure_rate=0.5, window=20, minimum_calls=10
            ),
            rate=trine.redis.RateLimiter(client, "partner", QUOTA),
            timeout=1.0,
        )
        source = trine.redis.stream_source(
            client, "orders", group="billing", consumer=name, claim_idle=2.0, stop_when_idle=5.0
        )
        receipts = trine.redis.stream_sink(client, "receipts")

        async def price(entry: trine.redis.StreamEntry[Any]) -> Any:
            receipt = await policy.call(partner_api, entry.value, rng)
            return entry.with_value({**receipt, "by": name})

        async with budget:  # the budget syncs with the fleet while the block runs
            written = await (
                trine.Pipeline.source(source)
                .map(price, workers=8, on_error="skip")  # a failed order comes back later
                .map(receipts)
                .collect()
            )
        print(json.dumps({"worker": name, "receipts": sum(r is not None for r in written)}))


async def fill(port: int, orders: int) -> None:
    async with coredis.Redis(host="127.0.0.1", port=port) as client:
        await client.delete(["orders", "orders:dead", "receipts"])
        breaker = "trine:breaker:{partner}"
        await client.delete(
            ["trine:rate:{partner}", "trine:budget:{partner}", breaker, breaker + ":window"]
        )
        for number in range(orders):
            await client.xadd("orders", {"id": f"o{number}", "amount": str(100 + number)})


async def report(port: int) -> tuple[int, int, float]:
    """Receipts written, orders dead-lettered, and the receipts' peak rate per second."""
    async with coredis.Redis(host="127.0.0.1", port=port) as client:
        receipts = await client.xrange("receipts")
        dead = await client.xlen("orders:dead")
    # Stream ids start with the server's time in ms: the rate receipts were written at.
    stamps = sorted(int(entry.identifier.split(b"-")[0]) for entry in receipts)
    busiest = max((sum(t <= u < t + 1000 for u in stamps) for t in stamps), default=0)
    return len(receipts), dead, busiest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # set in the worker processes
    args = parser.parse_args()
    if args.worker:
        trio.run(worker, args.port, args.worker)
        return
    trio.run(fill, args.port, args.orders)
    start = time.monotonic()
    command = [sys.executable, __file__, "--port", str(args.port), "--worker"]
    workers = [
        subprocess.Popen([*command, f"worker-{number}"], stdout=subprocess.PIPE, text=True)
        for number in range(WORKERS)
    ]
    for process in workers:
        out, _ = process.communicate()
        print(out.strip())
    written, dead, busiest = trio.run(report, args.port)
    elapsed = time.monotonic() - start
    print(f"{written} receipts, {dead} orders dead-lettered, in {elapsed:.1f} s")
    print(f"busiest second of receipts: {busiest} (the fleet's quota is {QUOTA} calls per second)")


if __name__ == "__main__":
    main()
