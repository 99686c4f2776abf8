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
    assert_type(await trine.race(_int, _int), int)
    assert_type(await trine.hedge(_str_of, 1, delay=0.1), str)


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
    async with pipe.open() as out:
        async for item in out:
            assert_type(item, int)
    assert_type(pipe.statistics(), trine.PipelineStatistics)
