"""A web-crawler-shaped pipeline: fetch pages, parse them, batch, store.

The network is a :class:`trine.testing.FakeService`: each fetch takes 5-20 ms
and every 25th call fails with a 503-like error, to show the dead-letter hook.
The program runs on Trio's fake clock (``MockClock(autojump_threshold=0)``),
so it finishes at once and prints the same exact numbers every time: what was
stored, and each stage's statistics. Run it with ``python examples/crawler.py``;
docs/guide/pipelines.rst builds it step by step.
"""

from __future__ import annotations

import trio
import trio.testing

from trine import Pipeline
from trine.testing import FakeService

URLS = [f"https://example.org/page/{number}" for number in range(200)]

# Call n takes 5, 10, 15 or 20 ms; calls 25, 50, ... fail.
network = FakeService(
    latency=lambda call, start: 0.005 * (1 + call % 4),
    fail_calls=lambda call: call % 25 == 0,
)


async def fetch(url: str) -> str:
    """Download *url* from the fake network and make up its page."""
    await network.call(url)
    number = int(url.rsplit("/", 1)[1])
    words = " ".join(["trio"] * (number % 7) + ["nursery"] * (number % 5))
    return f"<title>Page {number}</title><body>{words}</body>"


def parse(page: str) -> dict[str, object]:
    """Pull the title out and count the words (a plain function: no await needed)."""
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    body = page.split("<body>", 1)[1].split("</body>", 1)[0]
    return {"title": title, "words": len(body.split())}


class Database:
    """A fake store that takes rows in batches, 10 ms per batch."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []
        self.batches = 0

    async def insert_many(self, rows: list[dict[str, object]]) -> int:
        await trio.sleep(0.01)
        self.rows.extend(rows)
        self.batches += 1
        return len(rows)


async def main() -> None:
    database = Database()
    failed: list[str] = []

    def dead_letter(url: str, exc: Exception) -> None:
        failed.append(url)

    pipe = (
        Pipeline.source(URLS)
        .map(fetch, workers=16, on_error=dead_letter, name="fetch")
        .map(parse, name="parse")
        .filter(lambda row: row["words"] > 0, name="non-empty")
        .batch(20, timeout=0.05, name="batch")
        .map(database.insert_many, workers=2, name="store")
    )
    started = trio.current_time()
    stored = sum(await pipe.collect())
    elapsed = trio.current_time() - started

    print(f"stored {stored} rows in {database.batches} batches; {len(failed)} pages failed")
    peak = network.peak_concurrency
    print(f"took {elapsed * 1e3:.0f} ms of fake time; at most {peak} fetches at once")
    print(f"{'stage':<10} {'in':>5} {'out':>5} {'failed':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for stage in pipe.statistics().stages:
        p50 = (stage.latency.p50 or 0.0) * 1e3
        p99 = (stage.latency.p99 or 0.0) * 1e3
        print(
            f"{stage.name:<10} {stage.items_in:>5} {stage.items_out:>5} {stage.failed:>6} "
            f"{p50:>7.2f} {p99:>7.2f}"
        )


if __name__ == "__main__":
    # The fake clock jumps ahead whenever every task is waiting: the run is
    # instant and its timings are exact. Drop `clock=` to run in real time.
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
