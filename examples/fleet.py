"""Three servers, one client: what a Balancer, breakers, hedging and a retry each buy.

Three line-protocol servers listen on 127.0.0.1, each with its own speed and
failure rate (scripted per server by one :class:`trine.testing.FakeService`,
a function of the request number, so each request behaves the same in every
run):

* ``fast``: 4-10 ms, 1 request in 20 takes 150 ms, 1 % fail;
* ``steady``: 10-20 ms, 1 in 20 takes 250 ms, 2 % fail;
* ``flaky``: 15-35 ms, 30 % fail.

The client keeps a :class:`trine.ResourcePool` of connections per server and
sends 400 requests, 12 at a time, four ways:

1. round robin over the three, nothing else;
2. a :class:`trine.Balancer` with ``peak_ewma`` and a circuit breaker per server;
3. the same, with a retry *outside* the balancer, which goes to another server;
4. the same without the retry, each request hedged to a *second* server once
   it has taken longer than the 95th percentile so far
   (``trine.Percentile(95)``), hedges capped at 10 % of the requests by a
   ``trine.RetryBudget``.

It prints p50/p99 latency and failures for each, what the hedges did, and
how the calls were spread. Run it with ``python examples/fleet.py`` (real
sockets, real time, about two seconds), or ``--fake-clock`` to run the same
sockets on Trio's autojump clock (instant; the test suite does this).
docs/guide/balancer.rst walks through the output.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing

import trine
from trine.testing import FakeRequest, FakeScript, FakeService, FakeServiceError

REQUESTS = 400
CONCURRENCY = 12
SERVERS = ("fast", "steady", "flaky")


def _draw(request: FakeRequest, what: str) -> float:
    """A number in [0, 1) fixed by the server, the request number and *what* it is for."""
    server, number = request.args
    return random.Random(f"{server}:{number}:{what}").random()


def _latency(low: float, high: float, tail: float) -> Callable[[FakeRequest], float]:
    def latency(request: FakeRequest) -> float:
        if _draw(request, "tail") < 0.05:
            return tail
        return low + (high - low) * _draw(request, "latency")

    return latency


def _fails(share: float) -> Callable[[FakeRequest], bool]:
    return lambda request: _draw(request, "fail") < share


BACKEND = FakeService(
    scripts={
        "fast": FakeScript(latency=_latency(0.004, 0.010, 0.150), fail=_fails(0.01)),
        "steady": FakeScript(latency=_latency(0.010, 0.020, 0.250), fail=_fails(0.02)),
        "flaky": FakeScript(latency=_latency(0.015, 0.035, 0.035), fail=_fails(0.30)),
    }
)


class ServerError(Exception):
    """A server answered ``ERR``."""


# -- the servers --------------------------------------------------------------------


async def _serve(name: str, stream: trio.SocketStream) -> None:
    """Answer ``GET n`` lines on one connection until the client goes away."""
    connection = Connection(stream)
    try:
        while True:
            line = await connection.read_line()
            if not line:
                return
            try:
                await BACKEND.call(name, int(line.split()[1]))
            except FakeServiceError:
                await stream.send_all(b"ERR\n")
            else:
                await stream.send_all(b"OK\n")
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        # A client cancelled mid-request (a hedge that lost) closes its
        # connection: that ends this connection, never the server.
        pass
    finally:
        await stream.aclose()


# -- the client ---------------------------------------------------------------------


class Connection:
    """A line-protocol connection: one request at a time."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def read_line(self) -> str:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(4096)
            if not chunk:
                return ""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    async def request(self, number: int) -> str:
        await self.stream.send_all(f"GET {number}\n".encode())
        return await self.read_line()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def _connect(port: int) -> Connection:
    return Connection(await trio.open_tcp_stream("127.0.0.1", port))


async def fetch(pools: dict[str, trine.ResourcePool[Connection]], server: str, number: int) -> str:
    """One request to *server* on a pooled connection.

    A request cancelled half-way (a hedge that lost) leaves its connection
    mid-conversation: the pool closes that connection instead of reusing it.
    """
    async with pools[server].acquire() as connection:
        reply = await connection.request(number)
    if reply != "OK":
        raise ServerError(server)
    return reply


# -- measuring ------------------------------------------------------------------------


async def measure(call: Callable[[int], Awaitable[Any]]) -> tuple[list[float], int]:
    """Send requests 0 to REQUESTS - 1, CONCURRENCY at a time; their latencies and failures."""
    latencies: list[float] = []
    failures = 0

    async def one(number: int) -> None:
        nonlocal failures
        start = trio.current_time()
        try:
            await call(number)
        except (ServerError, trine.CircuitOpenError, ExceptionGroup):
            failures += 1
        else:
            latencies.append(trio.current_time() - start)

    await trine.for_each(one, range(REQUESTS), limit=CONCURRENCY)
    return latencies, failures


def report(label: str, latencies: list[float], failures: int) -> None:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"{label:<28} p50 {p50:5.1f} ms  p99 {p99:5.1f} ms  failures {failures:3}/{REQUESTS}")


def spread(balancer: trine.Balancer[str]) -> str:
    rows = balancer.statistics().endpoints
    return ", ".join(f"{row.endpoint} {row.calls}" for row in rows)


OPENED: dict[str, int] = dict.fromkeys(SERVERS, 0)
"""How many times each server's breaker opened (the breakers of phases 2 to 4)."""


def breaker(server: str) -> trine.CircuitBreaker:
    """The breaker per server: open when a quarter of its last 20 calls failed; probe
    again after half a second."""

    def count(old: trine.CircuitState, new: trine.CircuitState) -> None:
        if new is trine.CircuitState.OPEN:
            OPENED[server] += 1

    return trine.CircuitBreaker(
        name=server,
        failure_rate=0.25,
        window=20,
        minimum_calls=10,
        reset_timeout=0.5,
        on_state_change=count,
    )


async def main() -> None:
    async with trio.open_nursery() as servers:
        ports = {}
        for name in SERVERS:
            listeners = await servers.start(
                functools.partial(
                    trio.serve_tcp, functools.partial(_serve, name), 0, host="127.0.0.1"
                )
            )
            ports[name] = listeners[0].socket.getsockname()[1]
        pools: dict[str, trine.ResourcePool[Connection]] = {
            name: trine.ResourcePool(
                functools.partial(_connect, ports[name]),
                close=Connection.aclose,
                max_size=CONCURRENCY,
            )
            for name in SERVERS
        }
        async with pools["fast"], pools["steady"], pools["flaky"]:
            on = functools.partial(fetch, pools)
            print(f"{REQUESTS} requests, {CONCURRENCY} at a time, to three servers:")

            # 1. Round robin, nothing else.
            async with trine.Balancer(SERVERS, strategy="round_robin") as balancer:
                report("round robin", *await measure(functools.partial(balancer.call, on)))
                print(f"  calls: {spread(balancer)}")

            # 2. Peak EWMA, and a breaker per server. The services here answer in
            # milliseconds and the run lasts a second or two, so a slow answer is
            # remembered for half a second (decay), not the default ten.
            balanced = functools.partial(
                trine.Balancer, SERVERS, breaker=breaker, decay=0.5, rng=random.Random(7)
            )
            async with balanced() as balancer:
                report("peak_ewma + breakers", *await measure(functools.partial(balancer.call, on)))
                print(f"  calls: {spread(balancer)}")

            # 3. ... and a retry outside the balancer: it goes to another server.
            retry = trine.Policy(
                retry=trine.Retry(attempts=2, on=ServerError, backoff=trine.Backoff.constant(0))
            )
            async with balanced() as balancer:
                call = functools.partial(retry.call, balancer.call, on)
                report("... + a retry elsewhere", *await measure(call))
                print(f"  retries sent to another server: {balancer.statistics().rerouted}")

            # 4. ... and, instead, a hedge to another server after the p95 latency so
            # far, hedges capped at 10 % of the requests.
            p95 = trine.Percentile(95, min_samples=50, initial=0.050)
            budget = trine.RetryBudget(ratio=0.1, min_per_second=1.0)
            async with balanced() as balancer:
                hedged = functools.partial(balancer.hedged_call, on, delay=p95, budget=budget)
                report("... + hedging at p95", *await measure(hedged))
                stats = balancer.statistics()
                print(
                    f"  hedges: {stats.hedges_started} started, {stats.hedges_won} won, "
                    f"{stats.budget_refusals} refused by the budget; "
                    f"p95 delay now {p95.delay() * 1000:.1f} ms"
                )
                print(f"  calls: {spread(balancer)}")

            opened = ", ".join(f"{name} {count}" for name, count in OPENED.items())
            print(f"breakers opened: {opened}")
            created = sum(pool.statistics().created for pool in pools.values())
            discarded = sum(pool.statistics().discarded for pool in pools.values())
            print(f"connections: {created} opened, {discarded} closed after a cancelled request")
        servers.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fake-clock", action="store_true", help="run on Trio's autojump clock (instant)"
    )
    options = parser.parse_args()
    clock = trio.testing.MockClock(autojump_threshold=0) if options.fake_clock else None
    trio.run(main, clock=clock)
