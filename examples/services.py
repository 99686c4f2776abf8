"""Rendering a blog's front page: N+1 lookups, hot keys and repeated work, on the fake clock.

The page shows 20 posts, each with its author. Written naively, that is one
query for the posts and then one query per post for its author: N+1 queries.
Three services take the load off the (fake) user database:

* a :class:`trine.Batcher` turns the 20 author lookups into one batch query;
* an :class:`trine.AsyncCache` keeps authors for a minute, so the next page
  view asks the database for nothing;
* a :class:`trine.SingleFlight` lets 50 concurrent requests for the same
  page share one rendering.

The database is a :class:`trine.testing.FakeService`: every query takes
10 ms, however many ids it carries. The program runs on Trio's fake clock, so
it finishes at once and prints the same exact numbers every run. Run it with
``python examples/services.py``; docs/guide/batcher.rst walks through it.
"""

from __future__ import annotations

import trio
import trio.testing

import trine
from trine.testing import FakeService

POSTS = [{"id": number, "author": number % 7} for number in range(20)]

database = FakeService(latency=0.010)


async def query_authors(ids: list[int]) -> list[str]:
    """One database query for many authors (SELECT ... WHERE id IN (...))."""
    await database.call("authors", ids)
    return [f"author-{author_id}" for author_id in ids]


async def query_author(author_id: int) -> str:
    """One database query for one author: what the naive page does 20 times."""
    await database.call("author", author_id)
    return f"author-{author_id}"


async def render_naive() -> list[str]:
    lines = []
    for post in POSTS:
        lines.append(f"post {post['id']} by {await query_author(post['author'])}")
    return lines


async def render(authors: trine.Batcher[int, str], cache: trine.AsyncCache[int, str]) -> list[str]:
    lines: list[str] = []

    async def line(post: dict[str, int]) -> None:
        author = await cache.get_or_load(post["author"], authors.load, post["author"])
        lines.append(f"post {post['id']} by {author}")

    async with trio.open_nursery() as nursery:
        for post in POSTS:
            nursery.start_soon(line, post)
    return lines


async def main() -> None:
    started = trio.current_time()
    await render_naive()
    naive = database.statistics().calls
    print(
        f"naive: {naive} queries, {(trio.current_time() - started) * 1e3:.0f} ms "
        f"for {len(POSTS)} posts"
    )

    async with (
        trine.Batcher(query_authors, max_size=100, max_wait=0.002) as authors,
        trine.AsyncCache[int, str](maxsize=1_000, ttl=60.0) as cache,
        trine.SingleFlight() as flights,
    ):
        started = trio.current_time()
        before = database.statistics().calls
        await render(authors, cache)
        print(
            f"batched: {database.statistics().calls - before} query, "
            f"{(trio.current_time() - started) * 1e3:.0f} ms "
            f"({len(POSTS)} lookups -> {cache.statistics().loads} cache loads -> "
            f"{authors.statistics().batches} batch)"
        )

        before = database.statistics().calls
        await render(authors, cache)
        print(f"cached: {database.statistics().calls - before} queries on the second view")

        cache.clear()
        before = database.statistics().calls
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(flights.call, "front page", render, authors, cache)
        shared = flights.statistics()
        print(
            f"50 concurrent views: {shared.runs} rendering, {shared.shared} shared it, "
            f"{database.statistics().calls - before} query"
        )
        hits = cache.statistics()
        print(f"cache: {hits.hits} hits, {hits.misses} misses, {hits.loads} loads")


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
