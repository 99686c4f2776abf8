"""Checked by mypy --strict, never run by pytest: the public API's types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple, assert_type

import trio

import trine
import trine.testing

assert_type(trine.__version__, str)
assert_type(trine.TrineError("x"), trine.TrineError)
probe = trine.testing.ConcurrencyProbe()
assert_type(probe.peak, int)
rate_limiter = trine.RateLimiter(10, per=1.0, burst=2)
assert_type(rate_limiter.try_acquire(), bool)
assert_type(rate_limiter.try_acquire(0.5, key="host"), bool)
assert_type(rate_limiter.statistics(), trine.RateLimiterStatistics)
assert_type(rate_limiter.statistics().admitted_cost, float)
assert_type(rate_limiter.rate, float)
assert_type(trine.RateLimiter(20_000, burst=None).burst, int)  # the default, in force
rate_limiter.burst = None  # restores the default
window_limiter = trine.SlidingWindowLimiter(100, 60.0)
assert_type(window_limiter.statistics(), trine.SlidingWindowLimiterStatistics)
assert_type(window_limiter.statistics().admitted_cost, int)
assert_type(trine.RateLimitExceeded("x", retry_after=1.0).retry_after, float)


async def _check_acquire() -> None:
    assert_type(await rate_limiter.acquire(2, key=("host", 443)), None)
    assert_type(await window_limiter.acquire(key=None), None)


async def _int() -> int:
    return 1


async def _str_of(x: int) -> str:
    return str(x)


async def _fan_types() -> None:
    import functools

    import outcome

    assert_type(await trine.gather(_int, _int), list[int])
    assert_type(await trine.gather(functools.partial(_str_of, 1)), list[str])
    assert_type(await trine.settle(_int), list[outcome.Outcome[int]])
    assert_type(await trine.settle(_int, _int, timeout=1.0), list[outcome.Outcome[int]])
    assert_type(await trine.settle(_int, deadline=trio.current_time()), list[outcome.Outcome[int]])
    assert_type(trine.DeadlineExceeded(1.0).deadline, float)
    assert_type(await trine.race(_int, _int), int)
    assert_type(await trine.hedge(_str_of, 1, delay=0.1), str)
    p95 = trine.Percentile(95, min_samples=10, initial=0.05)
    assert_type(p95.delay(), float)
    assert_type(p95.histogram, trine.LatencyHistogram)
    budget = trine.RetryBudget(ratio=0.1)
    assert_type(await trine.hedge(_str_of, 1, delay=p95, budget=budget), str)
    hedging = trine.Hedge(delay=p95, attempts=3, budget=budget)
    assert_type(await hedging.call(_str_of, 1), str)
    assert_type(hedging.statistics(), trine.HedgeStatistics)
    assert_type(hedging.statistics().hedges_won, int)


limiter: trine.Limiter = trine.PriorityLimiter(1)
limiter = trine.KeyedLimiter(1).for_key("k")
limiter = trine.Bulkhead(1)
limiter = trine.WeightedSemaphore(1)
limiter = trine.AdaptiveLimiter(initial=1, max_limit=2)
assert_type(trine.WeightedSemaphore(2).statistics().borrowed_tokens, int)
assert_type(trine.KeyedLimiter(2).statistics().total_tokens, int | None)


async def _limiters() -> None:
    async with trine.AdaptiveLimiter(initial=1, max_limit=2).hold() as permit:
        assert_type(permit, trine.AdaptivePermit)
    async with trine.acquire_all(trio.Lock(), trine.Bulkhead(1)) as nothing:
        assert_type(nothing, None)
    with trine.WeightedSemaphore(3).hold_nowait(2) as held:
        assert_type(held, None)


async def _graph_types() -> None:
    graph = trine.TaskGraph(limit=2, resources={"db": trine.WeightedSemaphore(2)})
    number = graph.add(_int)
    text = graph.add(_str_of, deps=[number], resources={"db": 2})
    assert_type(number, trine.Node[int])
    assert_type(text, trine.Node[str])
    result = await graph.run(on_event=print)
    assert_type(result, trine.GraphResult)
    assert_type(result[text], trine.NodeResult[str])
    assert_type(result[text].value, str | None)
    assert_type(result[text].status, trine.NodeStatus)
    assert_type(result.failed, list[trine.NodeResult[Any]])
    assert_type(graph.statistics().running, int)
    assert_type(trine.CycleError(["a", "a"]).cycle, list[str])


_Ts = TypeVarTuple("_Ts")
_R = TypeVar("_R")


class _PolicyShaped:
    """Has the shape of trine.Policy.call: positional-only fn, variadic generics."""

    async def call(self, fn: Callable[[*_Ts], Awaitable[_R]], /, *args: *_Ts) -> _R:
        return await fn(*args)


async def _graph_policy_types() -> None:
    graph = trine.TaskGraph()
    node = graph.add(_str_of, 1, policy=_PolicyShaped())
    assert_type(node, trine.Node[str])


async def _policy_types() -> None:
    async def fetch(url: str, retries: int) -> bytes:
        return b""

    policy = trine.Policy(timeout=1.0)
    assert_type(await policy.call(fetch, "u", 3), bytes)
    wrapped = policy(fetch)
    assert_type(await wrapped("u", retries=3), bytes)
    assert_type(policy.evolve(timeout=2.0), trine.Policy)
    assert_type(policy.layers, tuple[str, ...])
    await policy.call(fetch, "u")  # type: ignore[arg-type]  # a missing argument is caught


async def _check_map() -> None:
    from collections.abc import AsyncIterator

    async def length(text: str) -> int:
        return len(text)

    async def words() -> AsyncIterator[str]:
        yield "a"

    async with trine.amap(length, ["a", "bb"], limit=2) as lengths:
        assert_type(lengths, AsyncIterator[int])
        async for n in lengths:
            assert_type(n, int)
    async with trine.amap(length, words(), limit=2, ordered=False) as streamed:
        assert_type(streamed, AsyncIterator[int])
    assert_type(await trine.map_all(length, ["a"], limit=2), list[int])
    assert_type(await trine.map_all(length, words(), limit=2, ordered=False), list[int])
    assert_type(await trine.for_each(length, ["a"], limit=2), None)
    import outcome

    assert_type(
        await trine.map_settled(length, ["a"], limit=2, timeout=1.0), list[outcome.Outcome[int]]
    )
    assert_type(
        await trine.map_settled(length, words(), limit=2, deadline=5.0, ordered=False),
        list[outcome.Outcome[int]],
    )
    assert_type(await trine.map_all(length, ["a"], limit=2, progress=True), list[int])
    async with trine.amap(length, ["a"], limit=2) as shown, trine.progress(shown, refresh=0.5):
        async for n in shown:
            assert_type(n, int)
    graph = trine.TaskGraph()
    async with trine.progress(graph):
        await graph.run()
    pipe = trine.Pipeline.source(["a"]).map(length)
    async with pipe.open() as out, trine.progress(out):
        pass
    async with trine.progress(pipe):
        await pipe.run()


async def _retry_types() -> None:
    retry = trine.Retry(3, on=OSError, backoff=trine.Backoff.constant(1.0))

    async def fetch(url: str, *, limit: float = 1.0) -> bytes:
        return b""

    assert_type(await retry.call(fetch, "u"), bytes)
    decorated = retry(fetch)
    assert_type(await decorated("u", limit=2.0), bytes)
    async for attempt in retry:
        assert_type(attempt, trine.RetryAttempt)
        assert_type(attempt.number, int)
        with attempt:
            pass
    assert_type(retry.statistics(), trine.RetryStatistics)
    assert_type(trine.RetryBudget().try_withdraw(), bool)
    assert_type(trine.RetryBudget().statistics(), trine.RetryBudgetStatistics)


async def _retry_call_checks_arguments() -> None:
    async def add(a: int, b: int) -> int:
        return a + b

    assert_type(await trine.Retry().call(add, 1, 2), int)
    await trine.Retry().call(add, 1, "2")  # type: ignore[arg-type]


async def _check_commands() -> None:
    results = await trine.run_commands([["true"], trine.Command("ls | wc", shell=True)], limit=2)
    assert_type(results, list[trine.CommandResult])
    assert_type(results[0].status, trine.CommandStatus)
    assert_type(results[0].returncode, int | None)
    assert_type(await trine.to_process(len, "abc"), int)
    load = trine.SystemLoad(max_cpu_percent=90, probe=lambda: trine.LoadSample(1.0, 2))
    assert_type(load.statistics(), trine.SystemLoadStatistics)


breaker = trine.CircuitBreaker(name="api")
assert_type(breaker.state, trine.CircuitState)
assert_type(breaker.statistics().failure_rate, float | None)


async def _fetch(url: str, retries: int) -> bytes:
    return b""


async def _check_breaker() -> None:
    assert_type(await breaker.call(_fetch, "https://x", 3), bytes)
    guarded = breaker(_fetch)
    assert_type(await guarded("https://x", retries=3), bytes)
    service = trine.testing.FakeService(latency=0.1)
    assert_type(await service.call("GET"), int)
    assert_type(service.statistics().peak_concurrency, int)


async def _graph_with_policy_types() -> None:
    graph = trine.TaskGraph()
    node = graph.add(_str_of, 1, policy=trine.Policy(timeout=1.0))
    assert_type(node, trine.Node[str])


async def _pipeline_types() -> None:
    async def fetch(url: str) -> bytes:
        return url.encode()

    pipe = trine.Pipeline.source(["a", "b"]).map(fetch).map(len)
    assert_type(pipe, trine.Pipeline[int])
    assert_type(await pipe.collect(), list[int])
    assert_type(pipe.batch(2, buffer=4), trine.Pipeline[list[int]])
    assert_type(pipe.tap(print, workers=2, key=str, policy=trine.Policy()), trine.Pipeline[int])
    assert_type(pipe.rate_limit(5, buffer=2), trine.Pipeline[int])
    assert_type(pipe.broadcast(lambda p: p.map(str), buffer=2), trine.Pipeline[str])
    assert_type(pipe.enumerate(), trine.Pipeline[tuple[int, int]])
    assert_type(trine.Pipeline.source(["a"]).flat_map(list), trine.Pipeline[str])
    assert_type(trine.merge(pipe, pipe), trine.Pipeline[int])
    assert_type(trine.zip(pipe, pipe.map(str)), trine.Pipeline[tuple[int, str]])
    assert_type(trine.zip_latest(pipe, pipe, partial=True), trine.Pipeline[tuple[Any, ...]])
    assert_type(pipe.latest(), trine.Pipeline[int])
    assert_type(
        pipe.map(str, workers=4, key=abs, per_key=2, ordered=True, overflow="drop_oldest"),
        trine.Pipeline[str],
    )
    assert_type(
        pipe.filter(bool, buffer=1, overflow="drop_newest", on_drop=print), trine.Pipeline[int]
    )
    async with pipe.open() as out:
        async for item in out:
            assert_type(item, int)
    assert_type(pipe.statistics(), trine.PipelineStatistics)


async def _chaos_types() -> None:
    import random

    from trine._policy import SupportsCall

    chaos = trine.Chaos(fault=0.1, error=TimeoutError, slow=0.1, latency=2.0, rng=random.Random(1))
    guard: SupportsCall = chaos  # the shape Policy's layers call
    assert_type(await chaos.call(_fetch, "https://x", 3), bytes)
    assert_type(await chaos(_fetch)("https://x", retries=3), bytes)
    assert_type(chaos.statistics(), trine.ChaosStatistics)
    assert_type(chaos.statistics().faults, int)
    trine.Chaos(enabled=lambda: True, error=lambda: OSError("down"))
    assert_type(trine.InjectedFault("x").name, str | None)
    del guard


async def _testing_kit_types() -> None:
    from trine.testing import FakeRequest, FakeScript, FakeService, Timeline, no_waits

    def slow_reports(call: FakeRequest) -> float:
        return 2.0 if call.args[0] == "/report" else 0.05

    service = FakeService(
        latency=slow_reports,
        fail=lambda call: call.key_number == 1,
        scripts={"/flaky": FakeScript(fail_calls={1, 2})},
    )
    assert_type(await service.call("/report"), int)
    assert_type(service.calls_for("/report")[0].end, float)
    timeline = Timeline()
    timeline.record("start")
    timeline.assert_matches([(0.0, "start")])
    assert_type(timeline.events[0].label, str)
    with no_waits():
        pass


async def _single_flight_types() -> None:
    async with trine.SingleFlight(policy=trine.Policy(timeout=1.0)) as flights:
        assert_type(flights, trine.SingleFlight)
        assert_type(await flights.call("u", _fetch, "u", 3), bytes)
        await flights.call("u", _fetch, "u")  # type: ignore[arg-type]  # a missing argument
        flights.forget("u")
        assert_type(flights.statistics(), trine.SingleFlightStatistics)
        assert_type(flights.statistics().shared, int)


async def _async_cache_types() -> None:
    async with trine.AsyncCache(maxsize=10, ttl=60.0) as cache:
        assert_type(cache, trine.AsyncCache[Any, Any])
    typed = trine.AsyncCache[str, bytes](
        maxsize=10, weigh=lambda key, value: len(value), max_weight=9
    )
    async with typed as pages:
        assert_type(await pages.get_or_load("u", _fetch, "u", 3), bytes)
        assert_type(pages.get("u"), bytes | None)
        assert_type(pages.get("u", 0), bytes | int)
        pages.set("u", b"")
        pages.set("u", 1)  # type: ignore[arg-type]  # a value of the wrong type
        pages.invalidate("u")
        pages.clear()
        assert_type(pages.statistics(), trine.AsyncCacheStatistics)
        assert_type(pages.statistics().load_latency, trine.LatencySummary)

        @pages.cached
        async def fetch_twice(url: str, *, times: int = 2) -> list[bytes]:
            return [b""] * times

        assert_type(await fetch_twice("u", times=3), list[bytes])


class _User:
    pass


async def _batcher_types() -> None:
    async def load_users(ids: list[int]) -> list[_User | Exception]:
        return [_User() for _ in ids]

    async def by_name(names: list[str]) -> dict[str, int]:
        return {name: len(name) for name in names}

    async with trine.Batcher(load_users, max_size=100, max_wait=0.005, max_concurrent=4) as users:
        assert_type(users, trine.Batcher[int, _User])
        assert_type(await users.load(1), _User)
        await users.load("1")  # type: ignore[arg-type]  # a key of the wrong type
        assert_type(users.statistics(), trine.BatcherStatistics)
        assert_type(users.statistics().batch_latency, trine.LatencySummary)
    async with trine.Batcher(by_name, policy=trine.Policy(timeout=1.0)) as lengths:
        assert_type(await lengths.load("a"), int)
    assert_type(trine.BatcherFull(10).max_waiting, int)


async def _observability_types() -> None:
    import io
    import signal

    import prometheus_client
    from opentelemetry.sdk.metrics import MeterProvider

    import trine.debug
    import trine.metrics

    prometheus = trine.metrics.PrometheusExporter(registry=prometheus_client.CollectorRegistry())
    otel = trine.metrics.OpenTelemetryExporter(meter_provider=MeterProvider())
    exporter: trine.metrics.Exporter = prometheus
    exporter = otel
    assert_type(exporter.register(trine.Bulkhead(1), name="db"), None)
    assert_type(exporter.unregister(trine.Bulkhead(1)), None)
    with exporter.register_new():
        hooks: list[trine.Hook] = [exporter.hook]
        trine.CircuitBreaker(hooks=hooks)
    assert_type(prometheus.close(), None)
    assert_type(otel.close(), None)
    family = trine.metrics.FAMILIES[0]
    assert_type(family, trine.metrics.Family)
    assert_type(family.prometheus_name, str)
    assert_type(family.labels, tuple[str, ...])

    assert_type(trine.debug.task_tree(), str)
    assert_type(trine.debug.task_tree(root=trio.lowlevel.current_task()), str)
    async with trine.debug.dump_on_signal(signal.SIGUSR1, file=io.StringIO()):
        pass
    stalls: list[trine.debug.Stall] = []
    async with trine.debug.watch_blocking(0.1, on_stall=stalls.append):
        pass
    async with trine.debug.watch_blocking(on_stall=print):
        pass
    assert_type(stalls[0].seconds, float)
    assert_type(stalls[0].where, str | None)


async def _connect() -> bytes:
    return b"conn"


async def _disconnect(conn: bytes) -> None:
    pass


async def _pool_types() -> None:
    pool = trine.ResourcePool(_connect, close=_disconnect, max_size=5, min_size=1, max_idle=30.0)
    assert_type(pool, trine.ResourcePool[bytes])
    async with pool as opened:
        assert_type(opened, trine.ResourcePool[bytes])
        async with pool.acquire(timeout=1.0) as conn:
            assert_type(conn, bytes)
    assert_type(pool.statistics(), trine.ResourcePoolStatistics)
    assert_type(pool.statistics().wait, trine.LatencySummary)


async def _fetch_from(endpoint: str, path: str) -> bytes:
    return b""


async def _balancer_types() -> None:
    balancer = trine.Balancer(
        ["10.0.0.1", "10.0.0.2"],
        strategy="peak_ewma",
        breaker=lambda endpoint: trine.CircuitBreaker(name=endpoint),
        ejection=trine.OutlierEjection(consecutive_failures=5),
    )
    assert_type(balancer, trine.Balancer[str])
    async with balancer as opened:
        assert_type(opened, trine.Balancer[str])
        assert_type(await balancer.call(_fetch_from, "/"), bytes)
        assert_type(await balancer.call(_fetch_from, "/", where=lambda ep: ep.endswith("1")), bytes)
        assert_type(
            await balancer.hedged_call(_fetch_from, "/", delay=trine.Percentile(95), attempts=2),
            bytes,
        )
    balancer.add("10.0.0.3", weight=2.0)
    balancer.remove("10.0.0.1")
    assert_type(balancer.endpoints, tuple[str, ...])
    stats = balancer.statistics()
    assert_type(stats, trine.BalancerStatistics[str])
    assert_type(stats.endpoints[0].endpoint, str)
    assert_type(stats.endpoints[0].latency, float | None)


async def _taskpool_types() -> None:
    import outcome

    async def fetch(url: str) -> bytes:
        return url.encode()

    async with trine.TaskPool(limit=4) as pool:
        assert_type(pool, trine.TaskPool[Any, Any])
        await pool.start(fetch, "a")
        assert_type(pool.try_start(fetch, "b"), bool)
        assert_type(pool.statistics(), trine.TaskPoolStatistics)
        assert_type(pool.statistics().latency, trine.LatencySummary)
    async with trine.TaskPool[bytes](limit=4, ordered=True, max_results=8) as typed:
        await typed.start(fetch, "a")
        async for page in typed.results():
            assert_type(page, bytes)
    async with trine.TaskPool(limit=4, on_error="collect") as collecting:
        assert_type(collecting, trine.TaskPool[Any, outcome.Outcome[Any]])
    collected: trine.TaskPool[bytes, outcome.Outcome[bytes]] = trine.TaskPool(
        limit=4, on_error="collect"
    )
    async with collected:
        await collected.start(fetch, "a")
        async for result in collected.results():
            assert_type(result, outcome.Outcome[bytes])
