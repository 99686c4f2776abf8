"""trine demo: a slow, flaky service on loopback, and what trine does about it.

The demo starts a small line-protocol service on 127.0.0.1 inside its own
nursery (so it stops when the demo does), then fetches records from it:

1. one at a time, the way a first version of a script does;
2. with ``trine.map_all(limit=20)``: 20 requests in flight, results in order;
3. the same, each call hedged with ``trine.hedge``: a second request goes out
   when the first is slow, which cuts the tail the slow replies make;
4. through a ``trine.Policy`` (retry, circuit breaker, bulkhead, timeout) while
   the service has an outage: the breaker opens, callers get a fallback at
   once instead of waiting on a dead service, and it closes again on recovery.

Run it with ``python examples/demo.py`` (``--requests N`` for a shorter run).
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics

import trio

import trine

# One request in ten is slow: the tail that hedging is for.
FAST = (0.005, 0.02)
SLOW = 0.25
SLOW_SHARE = 0.1


class ServiceDown(Exception):
    """The service answered with an error."""


class Service:
    """A line-protocol server: ``GET n`` answers ``OK n*n`` after some latency."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.down = False
        self.requests = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        # A client may go away at any point: a hedge's losing request is
        # cancelled, sometimes before it sent its line. That ends this
        # connection, never the server (an error here would stop serve_tcp).
        try:
            async with stream:
                await self._answer(stream)
        except trio.BrokenResourceError:
            pass

    async def _answer(self, stream: trio.SocketStream) -> None:
        request = await _read_line(stream)
        if not request.startswith("GET "):
            return
        self.requests += 1
        slow = self.rng.random() < SLOW_SHARE
        await trio.sleep(SLOW if slow else self.rng.uniform(*FAST))
        if self.down:
            await stream.send_all(b"ERR unavailable\n")
        else:
            number = int(request.split()[1])
            await stream.send_all(f"OK {number * number}\n".encode())


async def _read_line(stream: trio.abc.ReceiveStream) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = await stream.receive_some(64)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


async def fetch(port: int, number: int) -> int:
    """Ask the service for ``number * number`` over a fresh TCP connection."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"GET {number}\n".encode())
        reply = await _read_line(stream)
    if not reply.startswith("OK "):
        raise ServiceDown(reply)
    return int(reply.split()[1])


def report(name: str, elapsed: float, count: int, note: str = "") -> None:
    print(f"  {name:<34} {elapsed:6.2f} s  {count / elapsed:7.0f} req/s  {note}")


async def timed_fetch(latencies: list[float], fn: object, *args: object) -> int:
    start = trio.current_time()
    result: int = await fn(*args)  # type: ignore[operator]
    latencies.append(trio.current_time() - start)
    return result


def tail(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50 * 1000:4.0f} ms, p99 {p99 * 1000:4.0f} ms"


async def main(requests: int) -> None:
    service = Service(seed=7)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, service.handle, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        numbers = list(range(requests))
        print(f"fetching {requests} records from a local service (1 in 10 replies is slow):")

        # 1. One at a time.
        sample = numbers[: max(1, requests // 10)]
        start = trio.current_time()
        for number in sample:
            await fetch(port, number)
        per_call = (trio.current_time() - start) / len(sample)
        report("one at a time (estimated)", per_call * requests, requests)

        # 2. A bounded concurrent map: at most 20 requests in flight.
        latencies: list[float] = []
        start = trio.current_time()
        squares = await trine.map_all(
            functools.partial(timed_fetch, latencies, fetch, port), numbers, limit=20
        )
        assert squares == [n * n for n in numbers]
        report("trine.map_all(limit=20)", trio.current_time() - start, requests, tail(latencies))

        # 3. Hedged: a second request goes out if the first takes over 50 ms.
        hedged_latencies: list[float] = []

        async def hedged(number: int) -> int:
            return await trine.hedge(fetch, port, number, delay=0.05)

        start = trio.current_time()
        squares = await trine.map_all(
            functools.partial(timed_fetch, hedged_latencies, hedged), numbers, limit=20
        )
        assert squares == [n * n for n in numbers]
        report(
            "... each call hedged after 50 ms",
            trio.current_time() - start,
            requests,
            tail(hedged_latencies),
        )

        # 4. An outage, seen through a Policy.
        await outage(service, port, requests)
        nursery.cancel_scope.cancel()


async def outage(service: Service, port: int, requests: int) -> None:
    states: list[str] = []
    breaker = trine.CircuitBreaker(
        name="records",
        failure_threshold=5,
        reset_timeout=0.5,
        on_state_change=lambda old, new: states.append(f"{old}->{new}"),
    )
    policy = trine.Policy(
        fallback=lambda exc: -1,
        retry=trine.Retry(attempts=2, on=ServiceDown, backoff=trine.Backoff.constant(0.01)),
        breaker=breaker,
        limiter=trine.Bulkhead(20, max_waiting=requests),
        timeout=1.0,
    )
    print("\nthe service goes down for 1 s; calls go through a Policy:")
    service.down = True
    served_before = service.requests
    start = trio.current_time()
    async with trio.open_nursery() as nursery:

        async def recover() -> None:
            await trio.sleep(1.0)
            service.down = False

        nursery.start_soon(recover)
        results: list[int] = []
        for number in range(requests):
            results.append(await policy.call(fetch, port, number))
            await trio.sleep(1.5 / requests)
    fallbacks = results.count(-1)
    report("calls during and after the outage", trio.current_time() - start, requests)
    print(
        f"  {fallbacks} answered by the fallback, {requests - fallbacks} by the service; "
        f"the service saw {service.requests - served_before} requests"
    )
    print(f"  breaker: {' '.join(states)}; now {breaker.state}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    trio.run(main, parser.parse_args().requests)
