"""Observing a trine program: its metrics, its task tree, and a stall.

Runs on Trio's fake clock, so every figure but the stall's duration is the
same on every run; docs/guide/observing.rst quotes what it prints, and
tests/test_observing_guide.py checks that the two agree. Needs
prometheus-client (``pip install 'trine[prometheus]'``).
"""

from __future__ import annotations

import time

import prometheus_client
import trio
import trio.testing

import trine
import trine.debug
import trine.metrics


async def fetch(n: int) -> int:
    """A call to a slow service."""
    await trio.sleep(0.25)
    return n


def parse_legacy(n: int) -> int:
    """Synchronous code that blocks the event loop for 150 ms of real time."""
    time.sleep(0.15)
    return n


async def main() -> None:
    registry = prometheus_client.CollectorRegistry()
    exporter = trine.metrics.PrometheusExporter(registry=registry)

    # Everything made in this block is exported, with its hook events.
    with exporter.register_new():
        policy = trine.Policy(
            rate=trine.RateLimiter(8, per=1.0, burst=2),
            breaker=trine.CircuitBreaker(name="api"),
            name="api",
        )
        pipe = (
            trine.Pipeline.source(range(12))
            .map(lambda n: policy.call(fetch, n), workers=4, name="fetch")
            .map(parse_legacy, name="parse")
        )
        exporter.register(pipe, name="ingest")

    # 1. The task tree, half a second in.
    stalls: list[trine.debug.Stall] = []
    async with trine.debug.watch_blocking(0.1, on_stall=stalls.append), pipe.open() as results:
        async for n in results:
            if n == 3:
                print(trine.debug.task_tree())

    # 2. The stalls: every `parse` step held the loop for 150 ms of real time.
    # (On a loaded machine the OS may stall another task too: real time is real.)
    parsing = [stall for stall in stalls if stall.task == "parse worker 0"]
    print(f"'parse worker 0' stalled the loop {len(parsing)} times")
    print(f"each for at least 0.15 s: {all(stall.seconds >= 0.15 for stall in parsing)}")
    print()

    # 3. What a Prometheus scrape sees (some of it).
    for line in prometheus_client.generate_latest(registry).decode().splitlines():
        if line.startswith(
            (
                "trine_breaker_calls_total",
                "trine_rate_limiter_admitted_total",
                "trine_pipeline_stage_items_out_total",
                "trine_pipeline_stage_duration_seconds{",
            )
        ):
            print(line)


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
