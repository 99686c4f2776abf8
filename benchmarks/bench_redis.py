"""trine.redis: each shared guard's latency beside its local twin's, and streams per process.

``redis_guard_latency`` times N calls of each guard in one process against a
redis-server on the loopback interface that this module starts (a free port,
no persistence). The baseline is the strongest hand-written pattern: one
coredis ``register_script`` call per acquire, a Lua script that does nothing
(one round trip, no guard logic at all). Each shared guard's label says how
many round trips it makes per call; the run checks that against the guard's
own ``statistics()`` and fails if they differ. The local twins run in the
same process, for scale.

``redis_stream_pipeline`` drains one stream of N entries with 1, 2 and 4
processes, each its own ``trio.run`` with a pipeline ``stream_source -> map ->
batch(100) -> stream_sink``; the time is from the moment they are released
together until the last one is done (process start-up not included). Items
per second per process is ``N / time / processes``.

Numbers (2 shared cores, load average about 5 from other jobs, medians of
the default repeats; N = 2000 calls, 4000 entries; steps per item from the
harness)::

    redis_guard_latency                                per call   ratio  steps/item
      hand-written: one coredis script call (1 rt)       714 us   1.00x    6.0
      trine.RateLimiter.acquire (local)                   15 us   0.02x    1.0
      redis.RateLimiter.acquire (1 rt)                  1050 us   1.47x    6.0
      trine.SlidingWindowLimiter.acquire (local)          14 us   0.02x    1.0
      redis.SlidingWindowLimiter.acquire (1 rt)          775 us   1.09x    6.0
      trine.CircuitBreaker.call (local)                  4.0 us   0.01x    0.0
      redis.CircuitBreaker.call, exact (2 rt)           1532 us   2.15x   12.0
      redis.CircuitBreaker.call, sync_interval=1 (~0)     19 us   0.03x    0.0
      trine.Bulkhead.hold (local)                         16 us   0.02x    1.0
      redis.Semaphore.hold (2 rt)                       1664 us   2.33x   15.0
      trine.RetryBudget deposit+withdraw (local)          15 us   0.02x    1.0
      redis.RetryBudget deposit+withdraw (~0 rt)          23 us   0.03x    1.0

    redis_stream_pipeline                   total time   items/s  per process
      1 process                                  865 ms     4624      4624
      2 processes                                733 ms     5455      2727
      4 processes                                920 ms     4348      1087

On a quiet machine (2026-12-01, load average 0.3, ``--repeat 3``), the
streams drained 23,860 entries a second with 1 process, 33,689 with 2 (1.41x;
16,844 per process) and 29,418 with 4: each entry costs about 37-45 us of CPU
in the clients and 13-17 us in redis-server, so two cores top out near
38,000 entries a second, and two processes reach 88 % of that.

An earlier run at a load average of about 8 measured the bare script call at
1391 us, the rate limiter at 1.10x, the sliding window at 1.17x, the breaker
at 2.19x, the semaphore at 2.29x, and 2816 / 4167 / 4124 entries a second
for 1 / 2 / 4 processes: the ratios of the one-round-trip guards move by a
third from run to run on this machine, the two-round-trip ones hardly.

What they say: a shared guard costs its round trips and little else -- the
rate limiters add a tenth to a half to the bare script call (the Lua GCRA
and the argument handling), the exact breaker and the semaphore pay two round
trips, and with ``sync_interval`` the breaker's closed-state calls need
none (one per second). The retry budget never waits on the server (it syncs
in the background). A round trip through coredis on this machine costs
0.7 to 1.4 ms under this load (a bare socket ping about 0.6 ms; coredis's
reader and writer tasks and request objects take the rest), so for a call
that itself takes milliseconds, the shared guard is the same order of cost.
Streams scale from one process to two by 1.2x to 1.5x; at four, the two
cores (also running redis-server and the other jobs) are the limit, not the
stream.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from benchmarks._harness import Case, Variant, installed, run_trio

N = 2000
ENTRIES = 4000
PROCESSES = (1, 2, 4)
CONSUME = [sys.executable, "-m", "benchmarks.bench_redis", "consume"]
_server: dict[str, Any] = {}


def _port() -> int:
    """The port of a redis-server of this module's own, started on first use."""
    if "port" not in _server:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        directory = tempfile.mkdtemp(prefix="bench-redis-")
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", directory]
        command += ["--save", "", "--appendonly", "no", "--logfile", f"{directory}/redis.log"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        atexit.register(process.terminate)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.02)
        _server["port"] = port
        _server["pid"] = process.pid
    return int(_server["port"])


def _server_cpu() -> float:
    """CPU seconds redis-server has used so far (Linux: /proc), or NaN where unknown."""
    try:
        fields = pathlib.Path(f"/proc/{_server['pid']}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, KeyError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(body: Callable[[Any], Awaitable[int | None]], claimed: float | None = None) -> float:
    """Time *body(client)* in a fresh trio.run; check its round trips per call against *claimed*."""
    import coredis

    elapsed = 0.0

    async def main() -> None:
        nonlocal elapsed
        async with coredis.Redis(host="127.0.0.1", port=_port()) as client:
            await client.flushall()
            start = time.perf_counter()
            round_trips = await body(client)
            elapsed = time.perf_counter() - start
        if claimed is not None and round_trips is not None:
            measured = round_trips / N
            if not math.isclose(measured, claimed, abs_tol=0.01):
                raise AssertionError(
                    f"{measured:.3f} round trips per call, the label says {claimed}"
                )

    run_trio(main)
    return elapsed


# -- guard latency ----------------------------------------------------------------------


async def bare_script(client: Any) -> None:
    script = client.register_script("return 1")
    for _ in range(N):
        await script(keys=["k"], args=[1])


async def local_rate(client: Any) -> None:
    import trine

    limiter = trine.RateLimiter(1e9)
    for _ in range(N):
        await limiter.acquire()


async def shared_rate(client: Any) -> int:
    import trine.redis

    limiter = trine.redis.RateLimiter(client, "bench", 1e9)
    for _ in range(N):
        await limiter.acquire()
    return limiter.statistics().round_trips


async def local_window(client: Any) -> None:
    import trine

    limiter = trine.SlidingWindowLimiter(10**9, 1.0)
    for _ in range(N):
        await limiter.acquire()


async def shared_window(client: Any) -> int:
    import trine.redis

    limiter = trine.redis.SlidingWindowLimiter(client, "bench", 10**9, 0.05)
    for _ in range(N):
        await limiter.acquire()
    return limiter.statistics().round_trips


async def fn() -> int:
    return 1


async def local_breaker(client: Any) -> None:
    import trine

    breaker = trine.CircuitBreaker()
    for _ in range(N):
        await breaker.call(fn)


async def shared_breaker(client: Any) -> int:
    import trine.redis

    breaker = trine.redis.CircuitBreaker(client, "bench")
    for _ in range(N):
        await breaker.call(fn)
    return breaker.statistics().round_trips


async def cached_breaker(client: Any) -> int:
    import trine.redis

    breaker = trine.redis.CircuitBreaker(client, "bench", sync_interval=1.0)
    for _ in range(N):
        await breaker.call(fn)
    return breaker.statistics().round_trips


async def local_bulkhead(client: Any) -> None:
    import trine

    bulkhead = trine.Bulkhead(10)
    for _ in range(N):
        async with bulkhead.hold():
            pass


async def shared_semaphore(client: Any) -> int:
    import trine.redis

    semaphore = trine.redis.Semaphore(client, "bench", 10)
    for _ in range(N):
        async with semaphore.hold():
            pass
    return semaphore.statistics().round_trips


async def local_budget(client: Any) -> None:
    import trine

    budget = trine.RetryBudget()
    for _ in range(N):
        budget.deposit()
        budget.try_withdraw()
        await trio.lowlevel.checkpoint()


async def shared_budget(client: Any) -> None:
    import trine.redis

    async with trine.redis.RetryBudget(client, "bench") as budget:
        for _ in range(N):
            budget.deposit()
            budget.try_withdraw()
            await trio.lowlevel.checkpoint()


# -- streams across processes ----------------------------------------------------------


def _drain(processes: int) -> float:
    """Fill the stream, release *processes* consumers together, return seconds to drain it."""
    import coredis

    port = _port()

    async def fill() -> None:
        async with coredis.Redis(host="127.0.0.1", port=port) as client:
            await client.flushall()
            add = "for n = 1, ARGV[1] do redis.call('XADD', KEYS[1], '*', 'n', n) end"
            await client.register_script(add)(keys=["bench"], args=[ENTRIES])

    trio.run(fill)
    root = pathlib.Path(__file__).parent.parent
    members = [
        subprocess.Popen(
            [*CONSUME, str(port), f"c{number}", str(processes)],
            stdout=subprocess.PIPE,
            cwd=root,
        )
        for number in range(processes)
    ]
    server_before = _server_cpu()
    outputs = [json.loads(member.communicate()[0]) for member in members]
    server = _server_cpu() - server_before
    start = outputs[0]["start"]
    done = max(output["done"] for output in outputs)
    if sum(output["written"] for output in outputs) != ENTRIES:
        raise AssertionError(f"not every entry was written once: {outputs}")
    elapsed = float(done - start)
    clients = sum(output["cpu"] for output in outputs)
    print(
        f"  ({processes} process{'es' if processes > 1 else ''}: {ENTRIES / elapsed:,.0f} "
        f"entries/s, {ENTRIES / elapsed / processes:,.0f} per process; CPU per entry: "
        f"{clients / ENTRIES * 1e6:.0f} us in the clients, {server / ENTRIES * 1e6:.0f} us "
        "in redis-server)"
    )
    return elapsed


async def _consume(port: int, name: str) -> None:
    """One member of _drain: wait for the others, then drain the stream."""
    import coredis

    import trine
    import trine.redis

    async with coredis.Redis(host="127.0.0.1", port=port) as client:
        await client.incr("bench:ready")
        source = trine.redis.stream_source(
            client, "bench", group="g", consumer=name, count=100, stop_when_idle=0.3
        )
        sink = trine.redis.stream_sink(client, "bench:out")

        async def work(entry: trine.redis.StreamEntry[Any]) -> Any:
            return entry.with_value({"n": entry.value[b"n"], "by": name})

        if name == "c0":  # the first member releases them all once everyone is in
            expected = int(sys.argv[4])
            while int(await client.get("bench:ready") or 0) < expected:  # noqa: ASYNC110  # other processes count in
                await trio.sleep(0.005)
            await client.set("bench:go", repr(time.monotonic()))
        while (go := await client.get("bench:go")) is None:  # noqa: ASYNC110  # set by c0
            await trio.sleep(0.001)
        pipe = trine.Pipeline.source(source).map(work).batch(100, timeout=0.1).map(sink)
        written = 0
        last = time.monotonic()
        cpu = time.process_time()
        async with pipe.open() as results:
            async for batch in results:
                written += sum(result is not None for result in batch)
                last = time.monotonic()
        cpu = time.process_time() - cpu
    print(json.dumps({"start": float(go), "done": last, "written": written, "cpu": cpu}))


def _drain_case(processes: int) -> Callable[[], float]:
    def run() -> float:
        return _drain(processes)

    return run


if installed("coredis") and shutil.which("redis-server") is not None:
    CASES = [
        Case(
            name="redis_guard_latency",
            description=f"{N} calls of each guard, shared (redis on loopback) and local",
            per=N,
            variants=[
                Variant(
                    "hand-written: one coredis script call (1 rt)",
                    lambda: _run(bare_script),
                    baseline=True,
                ),
                Variant("trine.RateLimiter.acquire (local)", lambda: _run(local_rate)),
                Variant("redis.RateLimiter.acquire (1 rt)", lambda: _run(shared_rate, 1)),
                Variant("trine.SlidingWindowLimiter.acquire (local)", lambda: _run(local_window)),
                Variant(
                    "redis.SlidingWindowLimiter.acquire (1 rt)", lambda: _run(shared_window, 1)
                ),
                Variant("trine.CircuitBreaker.call (local)", lambda: _run(local_breaker)),
                Variant("redis.CircuitBreaker.call, exact (2 rt)", lambda: _run(shared_breaker, 2)),
                Variant(
                    "redis.CircuitBreaker.call, sync_interval=1 (~0 rt)",
                    lambda: _run(cached_breaker, 0),
                ),
                Variant("trine.Bulkhead.hold (local)", lambda: _run(local_bulkhead)),
                Variant("redis.Semaphore.hold (2 rt)", lambda: _run(shared_semaphore, 2)),
                Variant("trine.RetryBudget deposit+withdraw (local)", lambda: _run(local_budget)),
                Variant("redis.RetryBudget deposit+withdraw (~0 rt)", lambda: _run(shared_budget)),
            ],
        ),
        Case(
            name="redis_stream_pipeline",
            description=f"{ENTRIES} stream entries drained by 1, 2 and 4 processes",
            per=ENTRIES,
            variants=[
                Variant(
                    f"{count} process{'es' if count > 1 else ''}",
                    _drain_case(count),
                    baseline=count == 1,
                )
                for count in PROCESSES
            ],
        ),
    ]
else:  # no redis-server here (apt-get install redis-server), or no coredis
    CASES = []


if __name__ == "__main__" and sys.argv[1:2] == ["consume"]:
    trio.run(_consume, int(sys.argv[2]), sys.argv[3])
