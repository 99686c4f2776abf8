"""A crawler that finds its work as it goes: a TaskPool, a Policy and a per-host limiter.

Each page's task fetches the page and starts a task for every link not seen
before, through the same :class:`trine.TaskPool`; the pool keeps at most 8
tasks running, a :class:`trine.KeyedLimiter` at most 2 fetches per host, and
a :class:`trine.Policy` retries the flaky fetches. Links to pages that do not
exist come back as failed outcomes (``on_error="collect"``), not as a crash.

The network is a :class:`trine.testing.FakeService` scripted by argument:
each host answers at its own speed, and every 11th page fails on its first
fetch. The program runs on Trio's fake clock, so it finishes at once and
prints the same numbers every time. Run it with
``python examples/site_crawler.py``; docs/guide/taskpool.rst walks through it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import outcome
import trio
import trio.testing

import trine
from trine.testing import FakeScript, FakeService

HOSTS = {"docs.example": 0.020, "blog.example": 0.050, "shop.example": 0.030}  # latency, s
SEED = "https://docs.example/0"


def make_site(pages_per_host: int = 40) -> dict[str, list[str]]:
    """The fake web: each page's links (some lead to other hosts, a few nowhere)."""
    hosts = list(HOSTS)
    site: dict[str, list[str]] = {}
    for number, host in enumerate(hosts):
        for page in range(pages_per_host):
            links = [
                f"https://{host}/{(page * 3 + 1) % pages_per_host}",
                f"https://{host}/{(page * 7 + 2) % pages_per_host}",
            ]
            if page % 5 == 0:
                links.append(f"https://{hosts[(number + 1) % len(hosts)]}/{page}")
            if page % 13 == 0:
                links.append(f"https://{host}/gone-{page}")
            site[f"https://{host}/{page}"] = links
    return site


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


class NotFound(LookupError):
    """A link to a page that does not exist (a 404: not worth retrying)."""


@dataclass
class Crawl:
    """What a crawl found, and how it went."""

    pages: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    busiest: Counter[str] = field(default_factory=Counter)  # most fetches at once, per host
    elapsed: float = 0.0
    pool: trine.TaskPoolStatistics | None = None


async def crawl(
    site: Mapping[str, list[str]],
    seed: str,
    *,
    network: FakeService,
    limit: int = 8,
    per_host: int = 2,
) -> Crawl:
    """Fetch every page reachable from *seed*, once each."""
    report = Crawl()
    in_flight: Counter[str] = Counter()
    per_host_limiter = trine.KeyedLimiter(per_host)
    policy = trine.Policy(
        retry=trine.Retry(attempts=3, on=ConnectionError, backoff=trine.Backoff.constant(0.1)),
        timeout=1.0,
    )

    async def fetch(url: str) -> list[str]:
        host = host_of(url)
        in_flight[host] += 1
        report.busiest[host] = max(report.busiest[host], in_flight[host])
        try:
            await network.call(url)
        finally:
            in_flight[host] -= 1
        if url not in site:
            raise NotFound(url)
        return site[url]

    seen = {seed}

    async def visit(url: str) -> str:
        # The host's slot is held only for the fetch: never across pool.start.
        async with per_host_limiter.hold(host_of(url)):
            links = await policy.call(fetch, url)
        for link in links:
            if link not in seen:
                seen.add(link)
                await pool.start(visit, link)  # gives up this task's slot if it must wait
        return url

    started = trio.current_time()
    async with trine.TaskPool[str](limit=limit, on_error="collect") as pool:
        await pool.start(visit, seed)
        async for result in pool.results():
            if isinstance(result, outcome.Value):
                report.pages.append(result.value)
            elif isinstance(result.error, NotFound):
                report.missing.append(str(result.error))
            else:
                result.unwrap()  # anything else is a bug: let it out
    report.elapsed = trio.current_time() - started
    report.pool = pool.statistics()
    return report


def flaky_network(site: Mapping[str, list[str]]) -> FakeService:
    """Hosts at their own speeds; every 11th page fails its first fetch."""
    return FakeService(
        latency=lambda request: HOSTS[host_of(request.args[0])],
        scripts={url: FakeScript(fail_calls={1}) for n, url in enumerate(site) if n % 11 == 0},
    )


async def main() -> None:
    site = make_site()
    network = flaky_network(site)
    report = await crawl(site, SEED, network=network)
    pool = report.pool
    assert pool is not None
    hosts = Counter(host_of(url) for url in report.pages)
    print(
        f"crawled {len(report.pages)} pages from {len(hosts)} hosts; "
        f"{len(report.missing)} links led nowhere"
    )
    print(
        f"{network.statistics().failures} flaky fetches retried; at most "
        f"{network.peak_concurrency} fetches at once, {max(report.busiest.values())} per host"
    )
    for host in HOSTS:
        print(f"  {host:<14} {hosts[host]:>3} pages, at most {report.busiest[host]} at once")
    print(
        f"pool: {pool.started} tasks, {pool.finished} finished, {pool.failed} failed, "
        f"{pool.dropped} dropped"
    )
    # Tasks woken at the same instant run in an order Trio shuffles on purpose,
    # so how long the crawl takes varies by a few tens of ms between runs.


if __name__ == "__main__":
    # The fake clock jumps ahead whenever every task is waiting: the run is
    # instant and its timings are exact. Drop `clock=` to run in real time.
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
