"""The TaskPool crawler of examples/site_crawler.py, on generated sites (a property)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from collections import Counter
from types import ModuleType

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from trine.testing import FakeScript, FakeService


def _load() -> ModuleType:
    path = pathlib.Path(__file__).parent.parent / "examples" / "site_crawler.py"
    spec = importlib.util.spec_from_file_location("site_crawler", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["site_crawler"] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


crawler = _load()


@st.composite
def sites(draw: st.DrawFn) -> dict[str, list[str]]:
    """Pages on up to 3 hosts, each linking to a few pages (some that do not exist)."""
    hosts = [f"h{n}.example" for n in range(draw(st.integers(1, 3)))]
    urls = [f"https://{host}/{page}" for host in hosts for page in range(draw(st.integers(1, 8)))]
    targets = st.sampled_from([*urls, f"https://{hosts[0]}/gone"])
    return {url: draw(st.lists(targets, max_size=4)) for url in urls}


def _reachable(site: dict[str, list[str]], seed: str) -> set[str]:
    seen, frontier = {seed}, [seed]
    while frontier:
        for link in site.get(frontier.pop(), []):
            if link not in seen:
                seen.add(link)
                frontier.append(link)
    return seen


@settings(max_examples=100, deadline=None)
@given(
    site=sites(),
    limit=st.integers(1, 4),
    per_host=st.integers(1, 3),
    flaky=st.sets(st.integers(0, 30), max_size=6),
)
def test_property_every_reachable_page_is_fetched_exactly_once(
    site: dict[str, list[str]], limit: int, per_host: int, flaky: set[int]
) -> None:
    """Whatever the links, every page reachable from the seed is fetched successfully
    exactly once, nothing else is fetched, each link to a missing page is reported once,
    and no host ever serves more than per_host fetches at once."""
    seed = next(iter(site))
    network = FakeService(
        latency=lambda request: 0.01 * (1 + request.number % 3),
        scripts={url: FakeScript(fail_calls={1}) for n, url in enumerate(site) if n in flaky},
    )

    async def main() -> object:
        return await crawler.crawl(site, seed, network=network, limit=limit, per_host=per_host)

    report = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    reachable = _reachable(site, seed)
    fetched = Counter(call.args[0] for call in network.calls if call.outcome == "ok")
    assert fetched == Counter(reachable)  # every reachable link once, missing pages included
    assert sorted(report.pages) == sorted(url for url in reachable if url in site)
    assert sorted(report.missing) == sorted(url for url in reachable if url not in site)
    assert max(report.busiest.values()) <= per_host
    assert report.pool.dropped == report.pool.cancelled == 0
