"""A tour of trine, the program the README shows (``python examples/tour.py``).

The "network" is a trine.testing.FakeService and the program runs on Trio's
fake clock (``MockClock(autojump_threshold=0)``), so it finishes at once and
every time it prints is exact: the README quotes its output as it is. Replace
``fetch`` with a real HTTP call and drop ``clock=`` to run it for real.
"""

from __future__ import annotations

import trio
import trio.testing

import trine
from trine.testing import FakeService

# 50 ms per call, 300 ms for the slow mirror; down for calls starting in [2, 4) s.
api = FakeService(
    latency=lambda call: 0.3 if call.args[0].startswith("mirror") else 0.05,
    outages=[(2.0, 4.0)],
)


async def fetch(url: str) -> str:
    await api.call(url)
    return f"<page {url}>"


async def store(rows: list[str]) -> int:
    await trio.sleep(0.01)
    return len(rows)


def took(start: float) -> str:
    return f"{(trio.current_time() - start) * 1000:.0f} ms"


async def main() -> None:
    urls = [f"/item/{n}" for n in range(100)]

    start = trio.current_time()
    a, b = await trine.gather(lambda: fetch("/a"), lambda: fetch("/b"))
    print(f"gather:   {a} {b} in {took(start)}")

    start = trio.current_time()
    pages = await trine.map_all(fetch, urls, limit=20)
    print(f"map_all:  {len(pages)} pages, 20 at a time, in {took(start)}")

    start = trio.current_time()
    async with trine.amap(fetch, urls, limit=20, ordered=False) as results:
        async for _page in results:
            break  # results stream in as they complete; the input is read lazily
    print(f"amap:     first of {len(urls)} results after {took(start)}")

    start = trio.current_time()
    fastest = await trine.race(lambda: fetch("mirror/x"), lambda: fetch("primary/x"))
    print(f"race:     {fastest} won in {took(start)}")

    breaker = trine.CircuitBreaker(failure_threshold=5, reset_timeout=1.0)
    policy = trine.Policy(
        fallback=lambda exc: "<cached page>",
        retry=trine.Retry(attempts=3, backoff=trine.Backoff.constant(0.1)),
        breaker=breaker,
        limiter=trine.Bulkhead(10, max_waiting=100),
        timeout=2.0,
    )
    await trio.sleep_until(2.0)  # the outage starts
    start = trio.current_time()
    answers = [await policy.call(fetch, url) for url in urls[:10]]
    cached = answers.count("<cached page>")
    print(f"policy:   {cached} of 10 calls in the outage answered by the fallback in {took(start)}")
    failures = api.statistics().failures
    print(f"          breaker {breaker.state}, the service saw {failures} failures")

    await trio.sleep_until(4.0)  # the outage is over
    start = trio.current_time()
    stored = await (
        trine.Pipeline.source(urls)
        .map(fetch, workers=20, policy=policy)
        .batch(25, timeout=0.5)
        .map(store)
        .collect()
    )
    print(f"pipeline: stored {sum(stored)} rows in {len(stored)} batches in {took(start)}")

    graph = trine.TaskGraph(limit=4)
    raw = graph.add(fetch, "/report", name="fetch")
    graph.add(store, deps=[raw], name="store")  # gets fetch's result appended: store(page)
    start = trio.current_time()
    result = await graph.run()
    result.raise_for_failures()
    print(f"graph:    {len(result)} nodes done in {took(start)}")
    print(f"the service saw {api.statistics().calls} calls, at most {api.peak_concurrency} at once")


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
