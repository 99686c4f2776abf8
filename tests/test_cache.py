"""AsyncCache: LRU + TTL on the Trio clock, single-flight loads, background refresh."""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Iterator

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine


class Loader:
    """A loader that records each call; its value says which call made it and when it ended."""

    def __init__(self, duration: float = 1.0, fail: bool = False) -> None:
        self.duration = duration
        self.fail = fail
        self.calls: list[tuple[object, float]] = []
        self.ends: list[str] = []

    async def load(self, key: object) -> str:
        self.calls.append((key, trio.current_time()))
        number = len(self.calls)
        try:
            await trio.sleep(self.duration)
        except trio.Cancelled:
            self.ends.append(f"cancelled at {trio.current_time():g}")
            raise
        self.ends.append(f"done at {trio.current_time():g}")
        if self.fail:
            raise OSError(f"load {number} of {key} failed")
        return f"{key}#{number}"


async def _get(cache: trine.AsyncCache, key: object, loader: Loader, out: list[object]) -> None:
    out.append((await cache.get_or_load(key, loader.load, key), trio.current_time()))


async def test_a_miss_loads_once_for_every_concurrent_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Four concurrent misses share one load; later calls are hits that call nothing."""
    loader = Loader()
    results: list[object] = []
    async with trine.AsyncCache(maxsize=10) as cache:
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(_get, cache, "a", loader, results)
        assert await cache.get_or_load("a", loader.load, "a") == "a#1"
        statistics = cache.statistics()
    assert results == [("a#1", 1.0)] * 4
    assert loader.calls == [("a", 0.0)]
    assert (statistics.hits, statistics.misses, statistics.loads) == (1, 4, 1)
    assert (statistics.size, statistics.weight, statistics.loading) == (1, 1, 0)
    assert statistics.load_latency.count == 1
    assert statistics.load_latency.maximum == 1.0


async def test_a_hit_is_not_a_checkpoint_and_a_miss_is() -> None:
    """A hit costs a dict lookup (no schedule point); a miss waits, so it is a checkpoint."""

    async def instant(key: str) -> str:
        return key

    async with trine.AsyncCache(maxsize=10, ttl=5.0) as cache:
        with trio.testing.assert_checkpoints():
            await cache.get_or_load("a", instant, "a")
        with trio.testing.assert_no_checkpoints():
            assert await cache.get_or_load("a", instant, "a") == "a"


async def test_ttl_is_exact_on_the_trio_clock(autojump_clock: trio.testing.MockClock) -> None:
    """An entry stored at t=1 with ttl=10 is a hit until t=11 and expired from t=11 on."""
    loader = Loader()
    async with trine.AsyncCache(maxsize=10, ttl=10.0) as cache:
        assert await cache.get_or_load("a", loader.load, "a") == "a#1"  # stored at t=1
        await trio.sleep(9.999)
        assert await cache.get_or_load("a", loader.load, "a") == "a#1"
        assert cache.get("a") == "a#1"
        await trio.sleep(0.001)  # t=11
        assert cache.get("a") is None
        assert await cache.get_or_load("a", loader.load, "a") == "a#2"
        statistics = cache.statistics()
    assert loader.calls == [("a", 0.0), ("a", 11.0)]
    assert statistics.expirations == 1


async def test_the_least_recently_used_entry_is_evicted() -> None:
    """With maxsize=2, a hit on "a" makes "b" the one evicted when "c" arrives."""
    loader = Loader(duration=0)
    async with trine.AsyncCache(maxsize=2) as cache:
        for key in "ab":
            await cache.get_or_load(key, loader.load, key)
        await cache.get_or_load("a", loader.load, "a")  # a is now the most recent
        await cache.get_or_load("c", loader.load, "c")
        assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("a#1", None, "c#3")
        assert len(cache) == 2
        assert cache.statistics().evictions == 1


async def test_max_weight_bounds_the_total_weight() -> None:
    """Entries weigh len(value); a new entry evicts old ones until the total fits, and a
    value heavier than max_weight is returned but not kept."""

    async def text(size: int) -> str:
        return "x" * size

    async with trine.AsyncCache(weigh=lambda key, value: len(value), max_weight=10) as cache:
        await cache.get_or_load(4, text, 4)
        await cache.get_or_load(5, text, 5)
        assert cache.statistics().weight == 9
        await cache.get_or_load(3, text, 3)  # 12 > 10: the 4 goes
        assert (cache.get(4), cache.get(5), cache.get(3)) == (None, "x" * 5, "xxx")
        assert cache.statistics().weight == 8
        assert await cache.get_or_load(11, text, 11) == "x" * 11
        assert cache.get(11) is None
        statistics = cache.statistics()
    assert (statistics.size, statistics.weight, statistics.evictions) == (2, 8, 2)


async def test_a_broken_weigher_fails_the_load_not_the_cache() -> None:
    """A weigher returning a non-int is the load's TypeError for its callers; nothing is kept."""

    async def value(key: str) -> str:
        return key

    async with trine.AsyncCache(weigh=lambda key, value: "heavy", max_weight=10) as cache:
        with pytest.raises(TypeError, match=r"^weigh must return an int, got 'heavy' for key 'a'$"):
            await cache.get_or_load("a", value, "a")
        with pytest.raises(TypeError, match=r"^weigh must return an int, got 'heavy'"):
            cache.set("b", "b")
        assert len(cache) == 0


async def test_a_stale_entry_is_served_while_one_refresh_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Past refresh_after, hits return the old value at once and start exactly one refresh
    in the cache's nursery; when it ends its value replaces the old one."""
    loader = Loader()
    results: list[object] = []
    async with trine.AsyncCache(maxsize=10, ttl=100.0, refresh_after=5.0) as cache:
        await cache.get_or_load("a", loader.load, "a")  # stored at t=1, stale from t=6
        await trio.sleep(5)
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(_get, cache, "a", loader, results)
        assert results == [("a#1", 6.0)] * 3
        assert cache.statistics().loading == 1
        await trio.sleep(0.999)
        assert cache.get("a") == "a#1"
        await trio.sleep(0.001)  # the refresh ends at t=7
        await trio.testing.wait_all_tasks_blocked()
        assert cache.get("a") == "a#2"
        statistics = cache.statistics()
    assert loader.calls == [("a", 0.0), ("a", 6.0)]
    assert (statistics.refreshes, statistics.loads, statistics.hits) == (1, 2, 3)


async def test_a_refresh_outlives_the_caller_that_started_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The hit that started a refresh being cancelled at once does not cancel the refresh."""
    loader = Loader()
    async with trine.AsyncCache(maxsize=10, refresh_after=5.0) as cache:
        await cache.get_or_load("a", loader.load, "a")
        await trio.sleep(5)
        with trio.CancelScope() as scope:
            await cache.get_or_load("a", loader.load, "a")
            scope.cancel()
            await trio.sleep(1)
        await trio.sleep(1.5)
        assert cache.get("a") == "a#2"
    assert loader.ends == ["done at 1", "done at 7"]


async def test_a_failed_refresh_keeps_the_old_value(autojump_clock: trio.testing.MockClock) -> None:
    """A refresh that raises leaves the entry as it was; the next stale hit tries again."""
    loader = Loader()
    async with trine.AsyncCache(maxsize=10, ttl=100.0, refresh_after=5.0) as cache:
        await cache.get_or_load("a", loader.load, "a")
        await trio.sleep(5)
        loader.fail = True
        assert await cache.get_or_load("a", loader.load, "a") == "a#1"
        await trio.sleep(2)
        assert cache.get("a") == "a#1"
        assert await cache.get_or_load("a", loader.load, "a") == "a#1"  # a second refresh
        await trio.sleep(2)
        statistics = cache.statistics()
    assert loader.calls == [("a", 0.0), ("a", 6.0), ("a", 8.0)]
    assert (statistics.refreshes, statistics.load_failures, statistics.loads) == (2, 2, 1)


async def test_a_miss_joins_the_refresh_of_its_key(autojump_clock: trio.testing.MockClock) -> None:
    """A miss for a key whose entry expired while it was being refreshed waits for that
    refresh instead of loading again."""
    loader = Loader(duration=3.0)
    results: list[object] = []
    async with trine.AsyncCache(maxsize=10, ttl=6.0, refresh_after=4.0) as cache:
        await cache.get_or_load("a", loader.load, "a")  # stored at t=3, expires at 9
        await trio.sleep(4)  # t=7: stale; the refresh runs until t=10
        await cache.get_or_load("a", loader.load, "a")
        await trio.sleep(2)  # t=9: expired
        await _get(cache, "a", loader, results)
    assert results == [("a#2", 10.0)]
    assert loader.calls == [("a", 0.0), ("a", 7.0)]


async def test_failures_are_not_cached_by_default() -> None:
    """Without negative_ttl, every call after a failure loads again."""
    loader = Loader(duration=0, fail=True)
    async with trine.AsyncCache(maxsize=10) as cache:
        for number in (1, 2):
            with pytest.raises(OSError, match=rf"^load {number} of a failed$"):
                await cache.get_or_load("a", loader.load, "a")
        assert cache.statistics().load_failures == 2
        assert len(cache) == 0


async def test_negative_ttl_caches_a_failure_briefly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With negative_ttl=2, a failure is raised again from the cache until it expires."""
    loader = Loader(fail=True)
    async with trine.AsyncCache(maxsize=10, negative_ttl=2.0) as cache:
        with pytest.raises(OSError, match=r"^load 1 of a failed$") as first:
            await cache.get_or_load("a", loader.load, "a")  # fails at t=1
        await trio.sleep(1.5)
        with pytest.raises(OSError, match=r"^load 1 of a failed$") as again:
            await cache.get_or_load("a", loader.load, "a")
        assert again.value is first.value
        assert cache.get("a", "absent") == "absent"  # a peek shows no value
        await trio.sleep(0.5)  # t=3: expired
        with pytest.raises(OSError, match=r"^load 2 of a failed$"):
            await cache.get_or_load("a", loader.load, "a")
        statistics = cache.statistics()
    assert (statistics.hits, statistics.misses, statistics.expirations) == (1, 2, 1)


async def test_the_first_caller_cancelled_leaves_the_load_for_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The caller that started a load is cancelled; the load goes on, is cached, and the
    second caller gets it at t=1."""
    loader = Loader()
    results: list[object] = []

    async def cancelled(cache: trine.AsyncCache) -> None:
        with trio.move_on_after(0.5):
            await cache.get_or_load("a", loader.load, "a")

    async with trine.AsyncCache(maxsize=10) as cache:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancelled, cache)
            await trio.sleep(0.25)
            nursery.start_soon(_get, cache, "a", loader, results)
        assert cache.get("a") == "a#1"
    assert results == [("a#1", 1.0)]
    assert loader.ends == ["done at 1"]


async def test_every_waiter_cancelled_cancels_the_load_and_caches_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Regression: Cancelled is never cached. With every waiter gone the load is cancelled,
    no entry is made, and the next call loads afresh."""
    loader = Loader()
    async with trine.AsyncCache(maxsize=10, negative_ttl=60.0) as cache:
        with trio.move_on_after(0.5):
            await cache.get_or_load("a", loader.load, "a")
        await trio.testing.wait_all_tasks_blocked()
        assert loader.ends == ["cancelled at 0.5"]
        assert len(cache) == 0
        statistics = cache.statistics()
        assert (statistics.loading, statistics.loads, statistics.load_failures) == (0, 0, 0)
        assert await cache.get_or_load("a", loader.load, "a") == "a#2"


async def test_a_write_during_a_load_wins(autojump_clock: trio.testing.MockClock) -> None:
    """set() while a load runs: the load's callers get its value, the cache keeps the set one."""
    loader = Loader()
    results: list[object] = []
    async with trine.AsyncCache(maxsize=10) as cache:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_get, cache, "a", loader, results)
            await trio.sleep(0.5)
            cache.set("a", "written")
        assert results == [("a#1", 1.0)]
        assert cache.get("a") == "written"


async def test_invalidate_during_a_refresh_cancels_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """invalidate() drops the entry and cancels the refresh nobody waits for."""
    loader = Loader()
    async with trine.AsyncCache(maxsize=10, refresh_after=5.0) as cache:
        await cache.get_or_load("a", loader.load, "a")
        await trio.sleep(5)
        await cache.get_or_load("a", loader.load, "a")  # refresh starts at t=6
        await trio.sleep(0.5)
        cache.invalidate("a")
        cache.invalidate("never cached")
        await trio.testing.wait_all_tasks_blocked()
        assert cache.get("a") is None
        assert cache.statistics().loading == 0
    assert loader.ends == ["done at 1", "cancelled at 6.5"]


async def test_clear_drops_everything_and_detaches_loads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """clear() empties the cache; a load running for a waiter finishes for it, uncached."""
    loader = Loader()
    results: list[object] = []
    async with trine.AsyncCache(maxsize=10) as cache:
        cache.set("x", "y")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_get, cache, "a", loader, results)
            await trio.sleep(0.5)
            cache.clear()
        assert results == [("a#1", 1.0)]
        assert len(cache) == 0
        assert cache.statistics().weight == 0


async def test_get_is_a_plain_peek(autojump_clock: trio.testing.MockClock) -> None:
    """get() counts nothing, loads nothing and leaves the LRU order alone."""
    loader = Loader(duration=0)
    async with trine.AsyncCache(maxsize=2) as cache:
        assert cache.get("a") is None
        assert cache.get("a", 0) == 0
        await cache.get_or_load("a", loader.load, "a")
        await cache.get_or_load("b", loader.load, "b")
        assert cache.get("a") == "a#1"  # does not make "a" recent
        await cache.get_or_load("c", loader.load, "c")
        assert cache.get("a") is None
        statistics = cache.statistics()
    assert (statistics.hits, statistics.misses) == (0, 3)


async def test_cached_keys_on_the_function_and_its_arguments() -> None:
    """@cache.cached keys on (fn, args, kwargs): equal calls hit, other functions do not."""
    calls: list[tuple[object, ...]] = []
    async with trine.AsyncCache(maxsize=10) as cache:

        @cache.cached
        async def square(x: int, *, offset: int = 0) -> int:
            """Square a number."""
            calls.append(("square", x, offset))
            return x * x + offset

        @cache.cached
        async def cube(x: int) -> int:
            calls.append(("cube", x))
            return x**3

        assert await square(3) == 9
        assert await square(3) == 9
        assert await square(3, offset=1) == 10
        assert await cube(3) == 27
        assert square.__name__ == "square"
        assert square.__doc__ == "Square a number."
    assert calls == [("square", 3, 0), ("square", 3, 1), ("cube", 3)]


async def test_loads_go_through_the_policy(autojump_clock: trio.testing.MockClock) -> None:
    """With policy=, a load that times out is retried by the policy, once for all callers."""
    attempts: list[float] = []

    async def slow_then_fast(key: str) -> str:
        attempts.append(trio.current_time())
        await trio.sleep(5 if len(attempts) == 1 else 1)
        return key

    policy = trine.Policy(
        retry=trine.Retry(attempts=2, backoff=trine.Backoff.constant(0)), timeout=2
    )
    async with trine.AsyncCache(maxsize=10, policy=policy) as cache:
        assert await cache.get_or_load("a", slow_then_fast, "a") == "a"
    assert attempts == [0.0, 2.0]


async def test_leaving_the_block_cancels_loads_and_tells_outside_waiters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A caller outside the block waiting for a load gets ClosedResourceError when it ends."""
    loader = Loader()
    errors: list[float] = []

    async def outside(cache: trine.AsyncCache) -> None:
        with pytest.raises(trio.ClosedResourceError, match=r"^the AsyncCache was closed"):
            await cache.get_or_load("a", loader.load, "a")
        errors.append(trio.current_time())

    async with trio.open_nursery() as nursery, trine.AsyncCache(maxsize=10) as cache:
        nursery.start_soon(outside, cache)
        await trio.sleep(0.5)
    assert errors == [0.5]
    assert loader.ends == ["cancelled at 0.5"]
    with pytest.raises(trio.ClosedResourceError, match=r"^this AsyncCache is closed"):
        await cache.get_or_load("a", loader.load, "a")
    with pytest.raises(RuntimeError, match=r"^this AsyncCache is not open"):
        await trine.AsyncCache(maxsize=1).get_or_load("a", loader.load, "a")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, r"^maxsize or max_weight must be given: every cache has a bound$"),
        ({"maxsize": 0}, ValueError, r"^maxsize must be >= 1, got 0$"),
        ({"maxsize": 1, "ttl": 0}, ValueError, r"^ttl must be > 0, got 0$"),
        ({"maxsize": 1, "negative_ttl": None}, TypeError, r"^negative_ttl must be a number"),
        (
            {"maxsize": 1, "ttl": 5, "refresh_after": 5},
            ValueError,
            r"^refresh_after must be < ttl, got refresh_after=5.0 and ttl=5.0",
        ),
        ({"max_weight": 5}, ValueError, r"^weigh and max_weight go together"),
        ({"maxsize": 1, "weigh": len}, ValueError, r"^weigh and max_weight go together"),
        ({"policy": 1, "maxsize": 1}, TypeError, r"^policy must have an async call"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], error: type, message: str) -> None:
    """Every setting is checked at construction, with a message naming it."""
    with pytest.raises(error, match=message):
        trine.AsyncCache(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["generator", "async generator"])
def test_cached_refuses_a_generator_function(kind: str) -> None:
    """A generator function never makes an awaitable: refused when decorated, not when called."""

    def generator(key: int) -> Iterator[int]:
        yield key

    async def async_generator(key: int) -> AsyncIterator[int]:
        yield key

    fn = generator if kind == "generator" else async_generator
    with pytest.raises(
        TypeError, match=rf"^fn must be an async function, got the {kind} function "
    ):
        trine.AsyncCache(1).cached(fn)  # type: ignore[arg-type]


def test_repr_shows_the_bounds() -> None:
    """The repr gives the state, the entries and the bound."""
    assert "new, 0 entries (maxsize=3), 0 loading>" in repr(trine.AsyncCache(3))


# -- the property ----------------------------------------------------------------------

operations = st.lists(
    st.tuples(
        st.sampled_from("abcdef"),  # key
        st.integers(0, 30),  # start, tenths of a second
        st.integers(0, 10),  # load duration, tenths
        st.one_of(st.none(), st.integers(0, 10)),  # cancelled after, tenths
        st.sampled_from(["get", "get", "get", "invalidate", "set"]),
    ),
    max_size=25,
)


@given(
    ops=operations,
    maxsize=st.integers(1, 4),
    ttl=st.integers(1, 20),
    refresh=st.one_of(st.none(), st.integers(1, 19)),
)
def test_never_more_than_maxsize_entries_and_never_an_expired_value(
    ops: list[tuple[str, int, int, int | None, str]],
    maxsize: int,
    ttl: int,
    refresh: int | None,
) -> None:
    """Property: whatever is loaded, written and cancelled when, the cache holds at most
    maxsize entries, every value returned was stored less than ttl ago (or was loaded
    for this very call), and no load or waiter is left behind."""
    if refresh is not None and refresh >= ttl:
        refresh = None

    async def load(key: str, duration: int) -> tuple[str, float]:
        await trio.sleep(duration / 10)
        return key, trio.current_time()

    async def client(cache: trine.AsyncCache, op: tuple[str, int, int, int | None, str]) -> None:
        key, start, duration, cancel, kind = op
        await trio.sleep(start / 10)
        if kind == "invalidate":
            cache.invalidate(key)
        elif kind == "set":
            cache.set(key, (key, trio.current_time()))
        else:
            with trio.move_on_after(math.inf if cancel is None else cancel / 10):
                got, stored = await cache.get_or_load(key, functools.partial(load, key, duration))
                assert got == key
                assert trio.current_time() - stored < ttl / 10 or stored == trio.current_time()
        peeked = cache.get(key)
        if peeked is not None:
            assert trio.current_time() - peeked[1] < ttl / 10
        assert len(cache) <= maxsize

    async def main() -> None:
        async with trine.AsyncCache(
            maxsize, ttl=ttl / 10, refresh_after=None if refresh is None else refresh / 10
        ) as cache:
            async with trio.open_nursery() as nursery:
                for op in ops:
                    nursery.start_soon(client, cache, op)
            await trio.sleep(3)  # every refresh has ended
            statistics = cache.statistics()
            assert statistics.loading == 0
            assert not cache._table.flights
            assert cache._table.waiting == 0
            assert statistics.size <= maxsize

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
