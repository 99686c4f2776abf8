"""A live progress display for a pipeline, a task graph and a map: trine.progress.

Runs on Trio's fake clock, so it takes no time and draws the same frames on
every run; docs/guide/observing.rst quotes the screen it leaves, and
tests/test_examples.py checks that the two agree. Needs rich
(``pip install 'trine[cli]'``).
"""

from __future__ import annotations

import sys

import trio
import trio.testing
from rich.console import Console

import trine

# On a terminal, leave console= out: trine.progress draws on stdout, and draws
# nothing (at no cost) when stdout is a pipe or a file. This console draws even
# into a pipe, so that the guide can quote what it leaves on the screen.
console = Console(
    force_terminal=True, width=100, color_system="auto" if sys.stdout.isatty() else None
)


# The pipeline's calls never end at a whole second, when a frame is drawn, so each
# frame shows the same counts on every run (tasks woken together run in any order).


async def fetch(n: int) -> int:
    await trio.sleep(0.45)
    if n % 10 == 7:
        raise ConnectionError(f"page {n}")
    return n


async def parse(n: int) -> int:
    await trio.sleep(0.15)
    return n


async def crawl() -> None:
    pipe = (
        trine.Pipeline.source(n for n in range(40))
        .map(fetch, workers=4, name="fetch", on_error="skip")
        .map(parse, name="parse", buffer=8)
    )
    # The pipeline (its latest run) or the output of pipe.open() (that run).
    async with trine.progress(pipe, console=console, refresh=1):
        await pipe.run()


async def build() -> None:
    async def step(seconds: float, *_: object) -> None:
        await trio.sleep(seconds)

    async def broken(*_: object) -> None:
        await trio.sleep(1)
        raise RuntimeError("no compiler")

    graph = trine.TaskGraph(limit=2)
    fetched = graph.add(step, 1, name="fetch")
    compiled = [graph.add(step, 2, deps=[fetched], name=f"compile {n}") for n in range(4)]
    failed = graph.add(broken, deps=[fetched], name="docs")
    graph.add(step, 1, deps=[failed], name="publish docs")
    graph.add(step, 1, deps=compiled, name="link")
    async with trine.progress(graph, console=console, refresh=1):
        await graph.run()


async def resize() -> None:
    async def shrink(n: int) -> int:
        await trio.sleep(0.3)
        return n // 2

    # map_all and for_each, which return no object to pass here, take progress=True.
    async with (
        trine.amap(shrink, range(50), limit=8) as results,
        trine.progress(results, console=console, refresh=1),
    ):
        async for _ in results:
            pass


async def main() -> None:
    await crawl()
    await build()
    await resize()


trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
