"""Every public callable refuses bad input at the door, naming the argument.

One table drives one test, the way Trio runs one test over every lock-like
class: each public callable is listed once with a valid call and, per
argument, the *kind* of value it takes. Every kind comes with the bad values a
user really passes by mistake (a sync function where an async one is needed,
an int too large for a float, ``None``, a string, NaN, ...). For each (callable,
argument, bad value) the test asserts that the call raises ``TypeError`` or
``ValueError`` -- bare, or as the only leaf of an exception group when the
error comes from a task -- whose message names the argument, and that no
"coroutine was never awaited" warning is left behind (pytest's
``filterwarnings = error`` turns one into a failure).

A new argument is covered by adding it to its callable's ``params``; a new
public callable by adding a :class:`Door`. ``test_every_public_callable_has_a_door``
fails when a public name has none.
"""

from __future__ import annotations

import inspect
import math
import random
import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import trine
import trine.debug
import trine.metrics
import trine.testing
from _extras import require

HUGE = 10**400
"""An int that no float can hold."""


async def afn(*args: object) -> int:
    return 1


def syncfn(*args: object) -> int:
    return 1


def genfn(*args: object) -> Iterator[int]:
    yield 1


async def agenfn(*args: object) -> Any:
    yield 1


@attrs.frozen
class Bad:
    """A bad value, by label; *make* builds a fresh one per use (coroutines are one-shot)."""

    label: str
    make: Callable[[], object]


def _value(label: str, value: object) -> Bad:
    return Bad(label, lambda: value)


def _coro() -> Bad:
    return Bad("coro", lambda: afn())


_NONE = _value("None", None)
_STR = _value("str", "1")
_FLOAT = _value("1.5", 1.5)
_TRUE = _value("True", True)
_HUGE = _value("hugeint", HUGE)
_NAN = _value("nan", math.nan)
_OBJ = _value("obj", object())
_INT1 = _value("int1", 1)

KINDS: dict[str, list[Bad]] = {
    # int >= 1, required / optional / >= 0
    "count": [_NONE, _STR, _FLOAT, _TRUE, _value("0", 0), _HUGE],
    "opt_count": [_STR, _FLOAT, _TRUE, _value("0", 0), _HUGE],
    "count0": [_NONE, _STR, _FLOAT, _TRUE, _value("-1", -1), _HUGE],
    "opt_count0": [_STR, _FLOAT, _TRUE, _value("-1", -1), _HUGE],
    # an int of any sign (priorities, start numbers)
    "int": [_NONE, _STR, _FLOAT, _TRUE],
    # float >= 0 (seconds, ratios), required / optional; > 0 likewise
    "seconds": [_NONE, _STR, _TRUE, _NAN, _value("-1", -1.0), _HUGE],
    "opt_seconds": [_STR, _TRUE, _NAN, _value("-1", -1.0), _HUGE],
    "pos_seconds": [_NONE, _STR, _TRUE, _NAN, _value("0", 0.0), _HUGE],
    "opt_pos_seconds": [_STR, _TRUE, _NAN, _value("0", 0.0), _HUGE],
    # a real number whose range the callable states (only universal mistakes here)
    "number": [_NONE, _STR, _TRUE, _NAN, _HUGE],
    "opt_number": [_STR, _TRUE, _NAN, _HUGE],
    # a fraction in [0, 1]
    "fraction": [_NONE, _STR, _TRUE, _NAN, _value("-0.5", -0.5), _value("2", 2.0), _HUGE],
    "opt_fraction": [_STR, _TRUE, _NAN, _value("-0.5", -0.5), _value("2", 2.0), _HUGE],
    # an async function trine awaits (checked at the call or when first called)
    "async_fn": [
        _value("syncfn", syncfn),
        _value("genfn", genfn),
        _value("agenfn", agenfn),
        _coro(),
        _OBJ,
        _NONE,
    ],
    # a pipeline stage's fn, plain or async, whose result the stage uses
    "stage_fn": [_value("genfn", genfn), _value("agenfn", agenfn), _coro(), _OBJ, _NONE],
    # a plain function trine calls without awaiting
    "sync_fn": [_value("asyncfn", afn), _value("agenfn", agenfn), _value("genfn", genfn), _OBJ],
    "opt_sync_fn": [_value("asyncfn", afn), _value("agenfn", agenfn), _value("genfn", genfn), _OBJ],
    "bool": [_NONE, _INT1, _value("0", 0), _STR, _value("[]", [])],
    "key": [_value("unhashable", [1]), _value("{}", {})],
    "hooks": [_INT1, _OBJ, _value("[1]", [1]), _value("syncfn", syncfn)],
    "name": [_INT1, _OBJ],
    "rng": [_INT1, _OBJ, _value("random module", random)],
    # exception filters where only Exception subclasses make sense
    "exceptions": [
        _value("(KI,)", (KeyboardInterrupt,)),
        _value("KI", KeyboardInterrupt),
        _value("(1,)", (1,)),
        _INT1,
    ],
    "iterable": [_NONE, _INT1, _OBJ, _coro()],
    # an error policy named by a string
    "on_error": [_NONE, _INT1, _value("bogus", "bogus")],
    "object": [_INT1, _OBJ],
}


@attrs.frozen
class Door:
    """One public callable: how to call it validly, and the kind of each argument."""

    owner: str
    """The module whose door this is (a ``-k`` filter: ``pytest -k limit``)."""
    label: str
    call: Callable[..., object]
    """``call(**{param: value})`` with every other argument valid; may return an awaitable."""
    params: dict[str, str]
    names: dict[str, str] = attrs.field(factory=dict)
    """The name the message must carry, where it is not the parameter's own."""
    skip: frozenset[str] = frozenset()
    """``param=label`` pairs a kind lists but this argument legitimately accepts."""


# -- calls that need a running Trio or an async block -------------------------------


async def _hold(cm: Any) -> None:
    async with cm:
        pass


async def _amap(fn: Any = afn, items: Any = range(3), limit: Any = 2, ordered: Any = True) -> None:
    async with trine.amap(fn, items, limit=limit, ordered=ordered) as results:
        async for _ in results:
            pass


async def _graph_add(fn: Any = afn, priority: Any = 0, name: Any = None) -> None:
    graph = trine.TaskGraph()
    graph.add(fn, priority=priority, name=name)
    await graph.run()


async def _graph_run(on_event: Any = None) -> None:
    graph = trine.TaskGraph()
    graph.add(afn)
    await graph.run(on_event=on_event)


async def _breaker_trip(on_state_change: Any = None) -> None:
    """A breaker that trips on its first failure, so the callback is called."""
    breaker = trine.CircuitBreaker(failure_threshold=1, on_state_change=on_state_change)

    async def fail() -> None:
        raise OSError("down")

    with pytest.raises(OSError, match=r"^down$"):
        await breaker.call(fail)


def _pipe() -> trine.Pipeline[int]:
    return trine.Pipeline.source(range(3))


async def _open(buffer: Any = 1) -> None:
    async with _pipe().open(buffer=buffer) as out:
        async for _ in out:
            pass


async def _admits(sample: Any) -> bool:
    return trine.SystemLoad(probe=lambda: trine.LoadSample(0.0, 1)).admits(sample)


async def _async(fn: Callable[..., object], *args: object) -> object:
    return fn(*args)


async def _in_flights(use: Callable[[trine.SingleFlight], Any]) -> None:
    async with trine.SingleFlight() as flights:
        await use(flights)


async def _in_cache(use: Callable[[trine.AsyncCache], Any]) -> None:
    async with trine.AsyncCache(10) as cache:
        await use(cache)


async def _in_pool(use: Callable[[trine.TaskPool], Any]) -> None:
    async with trine.TaskPool(limit=2) as pool:
        await use(pool)


async def _load_many(keys: list[Any]) -> list[Any]:
    return keys


async def _afn_on(endpoint: object, *args: object) -> int:
    return 1


async def _in_balancer(use: Callable[[trine.Balancer[str]], Any]) -> None:
    async with trine.Balancer(["a", "b"]) as balancer:
        await use(balancer)


async def _pool_acquire(connect: Any) -> None:
    async with trine.ResourcePool(connect, max_size=1) as pool, pool.acquire():
        pass


async def _pool_close(close: Any) -> None:
    """A pool whose one resource is closed when its block ends, so ``close`` is called."""
    async with trine.ResourcePool(afn, close=close, max_size=1) as pool, pool.acquire():
        pass


async def _pool_check(health_check: Any) -> None:
    """A pool whose idle resource is checked when handed out again (check_after=0)."""
    async with trine.ResourcePool(afn, health_check=health_check, max_size=1) as pool:
        async with pool.acquire():
            pass
        async with pool.acquire():
            pass


async def _balancer_check(health_check: Any) -> None:
    """A balancer whose health check of its one endpoint runs at once."""
    async with trine.Balancer(["a"], health_check=health_check, check_interval=1.0):
        await trio.sleep(2)


async def _batcher_load(load_many: Any, key: Any) -> None:
    async with trine.Batcher(load_many) as batcher:
        await batcher.load(key)


_STAGE_PARAMS = {
    "workers": "count",
    "ordered": "bool",
    "buffer": "opt_count0",
    "on_drop": "opt_sync_fn",
    "name": "name",
    "policy": "object",
}


def _stage_door(method: str) -> Door:
    def call(**kwargs: Any) -> object:
        if "per_key" in kwargs:  # per_key needs a key, and workers to share out
            kwargs.update(key=syncfn, workers=4)
        return getattr(_pipe(), method)(kwargs.pop("fn", afn), **kwargs)

    params = (
        _STAGE_PARAMS
        if method == "flat_map"
        else {**_STAGE_PARAMS, "fn": "stage_fn", "per_key": "count"}
    )
    return Door("pipeline", f"Pipeline.{method}", call, params)


DOORS: list[Door] = [
    # -- limiters ------------------------------------------------------------------
    Door(
        "limit",
        "KeyedLimiter",
        lambda per_key=2, **kw: trine.KeyedLimiter(per_key, **kw),
        {"per_key": "count", "total": "opt_count", "name": "name"},
    ),
    Door(
        "limit",
        "KeyedLimiter.hold",
        lambda key="k": _hold(trine.KeyedLimiter(2).hold(key)),
        {"key": "key"},
    ),
    Door(
        "limit",
        "KeyedLimiter.hold_nowait",
        lambda key="k": trine.KeyedLimiter(2).hold_nowait(key).__enter__(),
        {"key": "key"},
    ),
    Door(
        "limit",
        "WeightedSemaphore",
        lambda capacity=2, **kw: trine.WeightedSemaphore(capacity, **kw),
        {"capacity": "count", "name": "name"},
    ),
    Door(
        "limit",
        "WeightedSemaphore.hold",
        lambda weight=1: _hold(trine.WeightedSemaphore(2).hold(weight)),
        {"weight": "count"},
    ),
    Door(
        "limit",
        "PriorityLimiter",
        lambda total=2, **kw: trine.PriorityLimiter(total, **kw),
        {"total": "count", "name": "name"},
    ),
    Door(
        "limit",
        "PriorityLimiter.hold",
        lambda priority=0: _hold(trine.PriorityLimiter(2).hold(priority)),
        {"priority": "int"},
    ),
    Door(
        "limit",
        "Bulkhead",
        lambda max_concurrent=2, **kw: trine.Bulkhead(max_concurrent, **kw),
        {
            "max_concurrent": "count",
            "max_waiting": "count0",
            "max_wait": "opt_seconds",
            "name": "name",
        },
    ),
    Door(
        "limit",
        "AdaptiveLimiter",
        lambda initial=2, max_limit=4, **kw: trine.AdaptiveLimiter(
            initial=initial, max_limit=max_limit, **kw
        ),
        {
            "initial": "count",
            "max_limit": "count",
            "min_limit": "count",
            "backoff_ratio": "number",
            "latency_threshold": "opt_pos_seconds",
            "tolerance": "number",
            "smoothing": "number",
            "queue_size": "number",
            "long_window": "count",
            "name": "name",
        },
    ),
    Door(
        "limit",
        "acquire_all",
        lambda limiters=None: _hold(
            trine.acquire_all(*([trio.Lock()] if limiters is None else [limiters]))
        ),
        {"limiters": "object"},
        names={"limiters": "limiters[0]"},
    ),
    # -- rate limiters -------------------------------------------------------------
    Door(
        "rate",
        "RateLimiter",
        lambda rate=10.0, **kw: trine.RateLimiter(rate, **kw),
        # burst=None is the documented default (enough to cover the timer slack).
        {"rate": "pos_seconds", "per": "pos_seconds", "burst": "opt_count", "name": "name"},
    ),
    Door(
        "rate",
        "RateLimiter.acquire",
        lambda **kw: trine.RateLimiter(10.0).acquire(**kw),
        {"cost": "pos_seconds", "key": "key"},
    ),
    Door(
        "rate",
        "RateLimiter.try_acquire",
        lambda **kw: trine.RateLimiter(10.0).try_acquire(**kw),
        {"cost": "pos_seconds", "key": "key"},
    ),
    Door(
        "rate",
        "RateLimiter.acquire_nowait",
        lambda **kw: trine.RateLimiter(10.0).acquire_nowait(**kw),
        {"cost": "pos_seconds", "key": "key"},
    ),
    Door(
        "rate",
        "SlidingWindowLimiter",
        lambda limit=10, window=1.0, **kw: trine.SlidingWindowLimiter(limit, window, **kw),
        {"limit": "count", "window": "pos_seconds", "name": "name"},
    ),
    Door(
        "rate",
        "SlidingWindowLimiter.acquire",
        lambda **kw: trine.SlidingWindowLimiter(10, 1.0).acquire(**kw),
        {"cost": "count", "key": "key"},
    ),
    Door(
        "rate",
        "SlidingWindowLimiter.try_acquire",
        lambda **kw: trine.SlidingWindowLimiter(10, 1.0).try_acquire(**kw),
        {"cost": "count", "key": "key"},
    ),
    # -- retries -------------------------------------------------------------------
    Door(
        "retry",
        "Backoff.exponential",
        lambda **kw: trine.Backoff.exponential(**kw),
        {"initial": "seconds", "maximum": "seconds", "multiplier": "number"},
    ),
    Door(
        "retry",
        "Backoff.decorrelated",
        lambda **kw: trine.Backoff.decorrelated(**kw),
        {"initial": "pos_seconds", "maximum": "seconds"},
    ),
    Door(
        "retry",
        "Backoff.constant",
        lambda delay=1.0: trine.Backoff.constant(delay),
        {"delay": "seconds"},
    ),
    Door(
        "retry",
        "Backoff.delay",
        lambda retry=0, previous=0.1, rng=None: trine.Backoff.exponential().delay(
            retry, previous, random.Random(0) if rng is None else rng
        ),
        {"retry": "count0", "previous": "seconds", "rng": "rng"},
    ),
    Door(
        "retry",
        "RetryBudget",
        lambda **kw: trine.RetryBudget(**kw),
        {
            "ratio": "seconds",
            "min_per_second": "seconds",
            "window": "pos_seconds",
            "buckets": "count",
            "name": "name",
        },
    ),
    Door(
        "retry",
        "Retry",
        lambda **kw: trine.Retry(**kw),
        {
            "attempts": "count",
            "on": "exceptions",
            "backoff": "object",
            "budget": "object",
            "timeout": "opt_pos_seconds",
            "rng": "rng",
            "name": "name",
            "hooks": "hooks",
        },
    ),
    Door(
        "retry",
        "Retry.call",
        lambda fn=afn: trine.Retry(backoff=trine.Backoff.constant(0)).call(fn),
        {"fn": "async_fn"},
    ),
    # -- breaker -------------------------------------------------------------------
    Door(
        "breaker",
        "CircuitBreaker",
        lambda **kw: trine.CircuitBreaker(**kw),
        {
            "name": "name",
            "failure_threshold": "count",
            "failure_rate": "opt_fraction",
            "window": "count",
            "minimum_calls": "count",
            "slow_call_duration": "opt_pos_seconds",
            "slow_call_rate": "fraction",
            "reset_timeout": "seconds",
            "half_open_max_calls": "count",
            "success_threshold": "count",
            "record": "exceptions",
            "ignore": "exceptions",
            "on_state_change": "opt_sync_fn",
            "hooks": "hooks",
        },
    ),
    Door(
        "breaker",
        "CircuitBreaker(time)",
        lambda window=10.0: trine.CircuitBreaker(window_type="time", window=window),
        {"window": "pos_seconds"},
    ),
    Door(
        "breaker",
        "CircuitBreaker(trip)",
        _breaker_trip,
        {"on_state_change": "opt_sync_fn"},
    ),
    Door(
        "breaker",
        "CircuitBreaker.call",
        lambda fn=afn: trine.CircuitBreaker().call(fn),
        {"fn": "async_fn"},
    ),
    # -- policy --------------------------------------------------------------------
    Door(
        "policy",
        "Policy",
        lambda **kw: trine.Policy(**kw),
        {
            "fallback": "object",
            "fallback_on": "exceptions",
            "retry": "object",
            "breaker": "object",
            "rate": "object",
            "limiter": "object",
            "timeout": "opt_pos_seconds",
            "total_timeout": "opt_pos_seconds",
            "chaos": "object",
            "name": "name",
            "hooks": "hooks",
        },
    ),
    Door(
        "policy",
        "Policy.call",
        lambda fn=afn: trine.Policy(timeout=1.0).call(fn),
        {"fn": "async_fn"},
    ),
    Door(
        "policy",
        "Policy.evolve",
        lambda **kw: trine.Policy().evolve(**kw),
        {"timeout": "opt_pos_seconds", "total_timeout": "opt_pos_seconds", "hooks": "hooks"},
    ),
    # -- fan-out -------------------------------------------------------------------
    Door(
        "fan",
        "gather",
        lambda fns1=afn: trine.gather(afn, fns1),
        {"fns1": "async_fn"},
        names={"fns1": "fns[1]"},
    ),
    Door(
        "fan",
        "settle",
        lambda fns0=afn, fns1=afn, **kw: trine.settle(fns0, fns1, **kw),
        {
            "fns0": "async_fn",
            "fns1": "async_fn",
            "deadline": "opt_number",
            "timeout": "opt_seconds",
        },
        names={"fns0": "fns[0]", "fns1": "fns[1]"},
    ),
    Door(
        "fan",
        "race",
        lambda fns0=afn, fns1=afn: trine.race(fns0, fns1),
        {"fns0": "async_fn", "fns1": "async_fn"},
        names={"fns0": "fns[0]", "fns1": "fns[1]"},
    ),
    Door(
        "fan",
        "hedge",
        lambda fn=afn, delay=1.0, attempts=2, budget=None: trine.hedge(
            fn, delay=delay, attempts=attempts, budget=budget
        ),
        {"fn": "async_fn", "delay": "seconds", "attempts": "count", "budget": "object"},
    ),
    # -- hedging that adapts (owner "fleet") --------------------------------------
    Door(
        "fleet",
        "Percentile",
        lambda percentile=95, **kw: trine.Percentile(percentile, **kw),
        {
            "percentile": "pos_seconds",
            "min_samples": "count",
            "initial": "opt_seconds",
            "histogram": "object",
        },
    ),
    Door(
        "fleet",
        "Percentile.record",
        lambda seconds=1.0: trine.Percentile(95).record(seconds),
        {"seconds": "seconds"},
    ),
    Door(
        "fleet",
        "Hedge",
        lambda delay=1.0, **kw: trine.Hedge(delay=delay, **kw),
        {"delay": "seconds", "attempts": "count", "budget": "object"},
    ),
    Door(
        "fleet",
        "Hedge.call",
        lambda fn=afn: trine.Hedge(delay=1.0).call(fn),
        {"fn": "async_fn"},
    ),
    # -- the pool (owner "fleet") ------------------------------------------------
    Door(
        "fleet",
        "ResourcePool",
        lambda connect=afn, max_size=2, **kw: trine.ResourcePool(connect, max_size=max_size, **kw),
        {
            "connect": "async_fn",
            "close": "object",
            "max_size": "count",
            "min_size": "count0",
            "max_idle": "opt_pos_seconds",
            "health_check": "object",
            "check_after": "seconds",
            "discard_on": "exceptions",
            "policy": "object",
            "name": "name",
        },
        # a sync connect is refused when first called (a lambda may return an awaitable)
        skip=frozenset({"connect=syncfn"}),
    ),
    Door(
        "fleet",
        "ResourcePool(connect)",
        lambda connect=afn: _pool_acquire(connect),
        {"connect": "async_fn"},
    ),
    Door(
        "fleet",
        "ResourcePool(close)",
        lambda close=afn: _pool_close(close),
        {"close": "async_fn"},
        skip=frozenset({"close=None"}),  # None: no close function
    ),
    Door(
        "fleet",
        "ResourcePool(health_check)",
        lambda health_check=afn: _pool_check(health_check),
        {"health_check": "async_fn"},
        skip=frozenset({"health_check=None"}),  # None: no health checks
    ),
    # -- the balancer (owner "fleet") --------------------------------------------
    Door(
        "fleet",
        "Balancer",
        lambda endpoints=("a", "b"), **kw: trine.Balancer(endpoints, **kw),
        {
            "endpoints": "iterable",
            # a mapping or a plain function; the bad plain functions are no mappings either
            "weights": "opt_sync_fn",
            "breaker": "opt_sync_fn",
            "ejection": "object",
            "health_check": "object",
            "check_interval": "pos_seconds",
            "decay": "pos_seconds",
            "rng": "rng",
            "policy": "object",
            "name": "name",
        },
    ),
    Door(
        "fleet",
        "Balancer(health_check)",
        lambda health_check=afn: _balancer_check(health_check),
        {"health_check": "async_fn"},
        skip=frozenset({"health_check=None"}),  # None: no health checks
    ),
    Door(
        "fleet",
        "Balancer.call",
        lambda fn=_afn_on, where=None: _in_balancer(lambda b: b.call(fn, where=where)),
        {"fn": "async_fn", "where": "opt_sync_fn"},
    ),
    Door(
        "fleet",
        "Balancer.hedged_call",
        lambda fn=_afn_on, **kw: _in_balancer(lambda b: b.hedged_call(fn, **{"delay": 1.0, **kw})),
        {
            "fn": "async_fn",
            "delay": "seconds",
            "attempts": "count",
            "budget": "object",
            "where": "opt_sync_fn",
        },
    ),
    Door(
        "fleet",
        "Balancer.add",
        lambda endpoint="c", weight=None: trine.Balancer(["a"]).add(endpoint, weight=weight),
        {"endpoint": "key", "weight": "opt_pos_seconds"},
    ),
    Door(
        "fleet",
        "Balancer.remove",
        lambda endpoint="a": trine.Balancer(["a"]).remove(endpoint),
        {"endpoint": "key"},
    ),
    Door(
        "fleet",
        "OutlierEjection",
        lambda **kw: trine.OutlierEjection(**kw),
        {
            "consecutive_failures": "count",
            "base_time": "pos_seconds",
            "max_time": "pos_seconds",
            "max_ejected": "fraction",
            "record": "exceptions",
        },
    ),
    Door(
        "fleet",
        "ResourcePool.acquire",
        lambda timeout=None: trine.ResourcePool(afn, max_size=1).acquire(timeout=timeout),
        {"timeout": "opt_seconds"},
    ),
    # -- maps ----------------------------------------------------------------------
    Door(
        "map",
        "amap",
        _amap,
        {"fn": "async_fn", "items": "iterable", "limit": "count", "ordered": "bool"},
    ),
    Door(
        "map",
        "map_all",
        lambda fn=afn, items=range(3), limit=2, ordered=True, progress=False: trine.map_all(
            fn, items, limit=limit, ordered=ordered, progress=progress
        ),
        {
            "fn": "async_fn",
            "items": "iterable",
            "limit": "count",
            "ordered": "bool",
            "progress": "bool",
        },
    ),
    Door(
        "map",
        "map_settled",
        lambda fn=afn, items=range(3), limit=2, ordered=True, **kw: trine.map_settled(
            fn, items, limit=limit, ordered=ordered, **kw
        ),
        {
            "fn": "async_fn",
            "items": "iterable",
            "limit": "count",
            "ordered": "bool",
            "deadline": "opt_number",
            "timeout": "opt_seconds",
        },
    ),
    Door(
        "map",
        "for_each",
        lambda fn=afn, items=range(3), limit=2, progress=False: trine.for_each(
            fn, items, limit=limit, progress=progress
        ),
        {"fn": "async_fn", "items": "iterable", "limit": "count", "progress": "bool"},
    ),
    # -- task pools ----------------------------------------------------------------
    Door(
        "taskpool",
        "TaskPool",
        lambda limit=2, **kw: trine.TaskPool(limit, **kw),
        {
            "limit": "count",
            "on_error": "on_error",
            "ordered": "bool",
            "max_results": "opt_count0",
            "policy": "object",
        },
    ),
    Door(
        "taskpool",
        "TaskPool.start",
        lambda fn=afn: _in_pool(lambda pool: pool.start(fn)),
        {"fn": "async_fn"},
    ),
    Door(
        "taskpool",
        "TaskPool.try_start",
        lambda fn=afn: _in_pool(lambda pool: _async(pool.try_start, fn)),
        {"fn": "async_fn"},
    ),
    # -- pipelines -----------------------------------------------------------------
    Door(
        "pipeline",
        "Pipeline.source",
        lambda items=range(3): trine.Pipeline.source(items),
        {"items": "iterable"},
    ),
    Door(
        "pipeline",
        "Pipeline.source(fn)",
        lambda items: trine.Pipeline.source(items),
        {"items": "sync_fn"},
        # an async generator function is one of the sources a pipeline takes
        skip=frozenset({"items=agenfn"}),
    ),
    _stage_door("map"),
    _stage_door("filter"),
    _stage_door("flat_map"),
    _stage_door("tap"),
    Door(
        "pipeline",
        "Pipeline.batch",
        lambda size=2, **kw: _pipe().batch(size, **kw),
        {
            "size": "count",
            "timeout": "opt_pos_seconds",
            "buffer": "opt_count0",
            "on_drop": "opt_sync_fn",
            "name": "name",
        },
        skip=frozenset(),
    ),
    Door(
        "pipeline",
        "Pipeline.rate_limit",
        lambda rate=10.0, **kw: _pipe().rate_limit(rate, **kw),
        # burst=None (the default) means RateLimiter's own default burst.
        {
            "rate": "pos_seconds",
            "per": "pos_seconds",
            "burst": "opt_count",
            "buffer": "opt_count0",
            "on_drop": "opt_sync_fn",
        },
    ),
    Door(
        "pipeline",
        "Pipeline.enumerate",
        lambda **kw: _pipe().enumerate(**kw),
        {"start": "int", "buffer": "opt_count0", "on_drop": "opt_sync_fn", "name": "name"},
    ),
    Door(
        "pipeline",
        "Pipeline.broadcast",
        lambda branches=None, buffer=1: _pipe().broadcast(
            *([lambda p: p] if branches is None else [branches]), buffer=buffer
        ),
        {"branches": "object", "buffer": "opt_count0", "on_drop": "opt_sync_fn"},
        names={"branches": "branch"},
    ),
    Door("pipeline", "Pipeline.open", _open, {"buffer": "opt_count0"}),
    Door(
        "pipeline",
        "merge",
        lambda pipelines=None: trine.merge(*([_pipe()] if pipelines is None else [pipelines])),
        {"pipelines": "object"},
    ),
    Door(
        "pipeline",
        "zip",
        lambda pipelines=None: trine.zip(*([_pipe()] if pipelines is None else [pipelines])),
        {"pipelines": "object"},
    ),
    Door(
        "pipeline",
        "zip_latest",
        lambda pipelines=None, **kw: trine.zip_latest(
            *([_pipe()] if pipelines is None else [pipelines]), **kw
        ),
        {"pipelines": "object", "partial": "bool"},
    ),
    # -- task graphs ---------------------------------------------------------------
    Door(
        "graph",
        "TaskGraph",
        lambda **kw: trine.TaskGraph(**kw),
        {"limit": "opt_count", "fail_fast": "bool", "resources": "object", "name": "name"},
    ),
    Door(
        "graph",
        "TaskGraph.add",
        _graph_add,
        {"fn": "async_fn", "priority": "int", "name": "name"},
    ),
    Door("graph", "TaskGraph.run", _graph_run, {"on_event": "opt_sync_fn"}),
    # -- processes -----------------------------------------------------------------
    Door(
        "process",
        "Command",
        lambda argv=("true",), **kw: trine.Command(argv, **kw),
        {"timeout": "opt_pos_seconds", "shell": "bool"},
    ),
    Door(
        "process",
        "run_commands",
        lambda commands=(("true",),), limit=2, **kw: trine.run_commands(
            commands, limit=limit, **kw
        ),
        {
            "commands": "iterable",
            "limit": "count",
            "timeout": "opt_pos_seconds",
            "retries": "count0",
            "kill_grace": "seconds",
            "output_tail": "count0",
            "backoff": "object",
            "rng": "rng",
            "admission": "object",
        },
    ),
    Door(
        "process",
        "SystemLoad",
        lambda **kw: trine.SystemLoad(**{"probe": lambda: trine.LoadSample(0.0, 1), **kw}),
        {
            "max_cpu_percent": "opt_pos_seconds",
            "min_free_memory": "opt_count0",
            "interval": "pos_seconds",
            "probe": "sync_fn",
        },
    ),
    Door("process", "SystemLoad.admits", _admits, {"sample": "object"}),
    Door(
        "process",
        "LoadSample",
        lambda cpu_percent=0.0, free_memory=1: trine.LoadSample(cpu_percent, free_memory),
        {"cpu_percent": "seconds", "free_memory": "count0"},
    ),
    # -- reports -------------------------------------------------------------------
    Door(
        "report",
        "ReportAttempt",
        lambda job="a", number=1, start=0.0, end=1.0, status="failed", **kw: trine.ReportAttempt(
            job, number, start, end, status, **kw
        ),
        {
            "job": "name",
            "number": "count",
            "start": "number",
            "end": "number",
            "status": "name",
            "returncode": "int",
            "command": "name",
            "error": "name",
        },
        skip=frozenset({"returncode=None"}),
    ),
    Door(
        "report",
        "ReportJob",
        lambda id="a", status="succeeded", **kw: trine.ReportJob(id, status, **kw),
        {
            "id": "name",
            "status": "name",
            "after": "iterable",
            "uses": "object",
            "started_at": "opt_number",
            "finished_at": "opt_number",
            "command": "name",
            "error": "name",
            "optional": "bool",
            "resumed": "bool",
        },
    ),
    Door(
        "report",
        "RunReport",
        lambda jobs=(), attempts=(), **kw: trine.RunReport(jobs, attempts, **kw),
        {
            "jobs": "iterable",
            "attempts": "iterable",
            "limit": "opt_count",
            "resources": "object",
            "started_at": "opt_number",
            "finished_at": "opt_number",
            "title": "name",
            "outcome": "name",
        },
    ),
    Door(
        "report",
        "run_report",
        lambda source=(), **kw: trine.run_report(source, **kw),
        {
            "source": "iterable",
            "limit": "opt_count",
            "resources": "object",
            "uses": "object",
            "title": "name",
            "outcome": "name",
        },
    ),
    # -- services ------------------------------------------------------------------
    Door(
        "services",
        "SingleFlight",
        lambda **kw: trine.SingleFlight(**kw),
        {"policy": "object", "name": "name"},
    ),
    Door(
        "services",
        "SingleFlight.call",
        lambda key="k", fn=afn: _in_flights(lambda flights: flights.call(key, fn)),
        {"key": "key", "fn": "async_fn"},
    ),
    Door(
        "services",
        "SingleFlight.forget",
        lambda key="k": _in_flights(lambda flights: _async(flights.forget, key)),
        {"key": "key"},
    ),
    Door(
        "services",
        "AsyncCache",
        lambda maxsize=10, **kw: trine.AsyncCache(maxsize, **kw),
        {
            "maxsize": "opt_count",
            "ttl": "opt_pos_seconds",
            "refresh_after": "opt_pos_seconds",
            "negative_ttl": "seconds",
            "policy": "object",
            "name": "name",
        },
    ),
    Door(
        "services",
        "AsyncCache(weighted)",
        lambda weigh=lambda key, value: 1, max_weight=10: trine.AsyncCache(
            weigh=weigh, max_weight=max_weight
        ),
        {"weigh": "opt_sync_fn", "max_weight": "opt_count"},
    ),
    Door(
        "services",
        "AsyncCache.get_or_load",
        lambda key="k", fn=afn: _in_cache(lambda cache: cache.get_or_load(key, fn)),
        {"key": "key", "fn": "async_fn"},
    ),
    Door(
        "services",
        "AsyncCache.get",
        lambda key="k": trine.AsyncCache(1).get(key),
        {"key": "key"},
    ),
    Door(
        "services",
        "AsyncCache.set",
        lambda key="k": trine.AsyncCache(1).set(key, 1),
        {"key": "key"},
    ),
    Door(
        "services",
        "AsyncCache.invalidate",
        lambda key="k": trine.AsyncCache(1).invalidate(key),
        {"key": "key"},
    ),
    Door(
        "services",
        "AsyncCache.cached",
        lambda fn=afn: _in_cache(lambda cache: cache.cached(fn)()),
        {"fn": "async_fn"},
    ),
    Door(
        "services",
        "Batcher",
        lambda load_many=_load_many, **kw: trine.Batcher(load_many, **kw),
        {
            "load_many": "async_fn",
            "max_size": "count",
            "max_wait": "seconds",
            "max_concurrent": "count",
            "max_waiting": "count",
            "dedupe": "bool",
            "policy": "object",
            "name": "name",
        },
        # a sync load_many is refused at the first load (a lambda may return a coroutine)
        skip=frozenset({"load_many=syncfn"}),
    ),
    Door(
        "services",
        "Batcher(load)",
        lambda load_many=_load_many: _batcher_load(load_many, "k"),
        {"load_many": "async_fn"},
    ),
    Door(
        "services",
        "Batcher.load",
        lambda key="k": _batcher_load(_load_many, key),
        {"key": "key"},
    ),
    # -- statistics ----------------------------------------------------------------
    Door(
        "stats",
        "LatencyHistogram.record",
        lambda seconds=1.0: trine.LatencyHistogram().record(seconds),
        {"seconds": "seconds"},
    ),
    Door(
        "stats",
        "LatencyHistogram.quantile",
        lambda q=0.5: trine.LatencyHistogram().quantile(q),
        {"q": "fraction"},
    ),
    # -- chaos ---------------------------------------------------------------------
    Door(
        "chaos",
        "Chaos",
        lambda **kw: trine.Chaos(**kw),
        {
            "fault": "fraction",
            "error": "object",
            "slow": "fraction",
            "latency": "seconds",
            "substitute": "fraction",
            "rng": "rng",
            "enabled": "bool",
            "name": "name",
        },
    ),
    Door(
        "chaos",
        "Chaos(callables)",
        lambda **kw: trine.Chaos(**kw),
        {"error": "sync_fn", "enabled": "sync_fn"},
    ),
    Door("chaos", "Chaos.call", lambda fn=afn: trine.Chaos().call(fn), {"fn": "async_fn"}),
    Door(
        "chaos",
        "Chaos(decorator)",
        lambda fn=afn: trine.Chaos()(fn)(),
        {"fn": "async_fn"},
    ),
    # -- the test kit --------------------------------------------------------------
    Door(
        "testing",
        "FakeService",
        lambda **kw: trine.testing.FakeService(**kw),
        {
            "latency": "seconds",
            "fail_calls": "object",
            "outages": "iterable",
            "fail": "opt_sync_fn",
            "error": "opt_sync_fn",
            "retry_after": "opt_seconds",
            "scripts": "object",
            "key": "sync_fn",
        },
    ),
    Door(
        "testing",
        "FakeScript",
        lambda **kw: trine.testing.FakeScript(**kw),
        {
            "latency": "opt_seconds",
            "fail_calls": "object",
            "outages": "iterable",
            "fail": "opt_sync_fn",
            "error": "opt_sync_fn",
            "retry_after": "opt_seconds",
        },
    ),
    Door(
        "testing",
        "Timeline.record",
        lambda label="x": trine.testing.Timeline().record(label),
        {"label": "object"},
    ),
    Door(
        "testing",
        "Timeline.assert_matches",
        lambda expected=(), tolerance=0.0: trine.testing.Timeline().assert_matches(
            expected, tolerance=tolerance
        ),
        {"expected": "iterable", "tolerance": "seconds"},
    ),
    Door(
        "testing",
        "assert_takes",
        lambda seconds=0.0: trine.testing.assert_takes(seconds).__enter__(),
        {"seconds": "seconds"},
    ),
    # -- metrics export (the exporters need their optional libraries) -----------------
    Door(
        "metrics",
        "PrometheusExporter",
        lambda **kw: _prometheus_exporter(**kw),
        {"registry": "object"},
    ),
    Door(
        "metrics",
        "OpenTelemetryExporter",
        lambda **kw: _otel_exporter(**kw),
        {"meter_provider": "object"},
    ),
    Door(
        "metrics",
        "Exporter.register",
        lambda obj=None, name=None: trine.metrics.Exporter().register(
            trine.Bulkhead(1) if obj is None else obj, name=name
        ),
        {"obj": "object", "name": "name"},
    ),
    Door(
        "metrics",
        "Exporter.unregister",
        lambda obj=1: trine.metrics.Exporter().unregister(obj),
        {"obj": "object"},
    ),
    # -- the progress display ---------------------------------------------------------
    Door(
        "progress",
        "progress",
        lambda target=None, refresh=0.25, console=None: trine.progress(
            trine.TaskGraph() if target is None else target, refresh=refresh, console=console
        ),
        {"target": "object", "refresh": "pos_seconds", "console": "object"},
    ),
    # -- debugging tools ------------------------------------------------------------
    Door("debug", "task_tree", lambda **kw: trine.debug.task_tree(**kw), {"root": "object"}),
    Door(
        "debug",
        "dump_on_signal",
        lambda **kw: trine.debug.dump_on_signal(**kw),
        {"signum": "int", "file": "object"},
    ),
    Door(
        "debug",
        "watch_blocking",
        lambda **kw: trine.debug.watch_blocking(**kw),
        {"threshold": "pos_seconds", "on_stall": "opt_sync_fn"},
    ),
]


def _prometheus_exporter(**kw: Any) -> object:
    client = require("prometheus_client", extra="prometheus")
    kw.setdefault("registry", client.CollectorRegistry())
    return trine.metrics.PrometheusExporter(**kw)


def _otel_exporter(**kw: Any) -> object:
    require("opentelemetry.metrics", extra="otel")
    return trine.metrics.OpenTelemetryExporter(**kw)


# Single values that are wrong for one argument only, beyond what its kind lists.
EXTRA: list[tuple[str, str, Callable[[], object], str]] = [
    ("process", "Command(id='')", lambda: trine.Command(("true",), id=""), "id"),
    ("process", "Command(argv NUL)", lambda: trine.Command(("echo", "a\0b")), "argv"),
    ("process", "Command(env NUL)", lambda: trine.Command(("true",), env={"A": "a\0b"}), "env"),
    (
        "process",
        "run_commands(dup id)",
        lambda: trine.run_commands(
            [trine.Command(("true",), id="a"), trine.Command(("true",), id="a")], limit=1
        ),
        "commands",
    ),
    ("process", "run_commands(logs=int1)", lambda: trine.run_commands([], limit=1, logs=1), "logs"),
    ("process", "run_commands(logs=[])", lambda: trine.run_commands([], limit=1, logs=[]), "logs"),
    (
        "process",
        "run_commands(logs=obj)",
        lambda: trine.run_commands([], limit=1, logs=object()),
        "logs",
    ),
    ("process", "SystemLoad.admits(None)", lambda: _admits(None), "sample"),
    (
        "pipeline",
        "Pipeline.source(fn)(items=syncfn)",
        lambda: trine.Pipeline.source(lambda: 1).collect(),
        "items",
    ),
    ("process", "LoadSample(cpu_percent=101)", lambda: trine.LoadSample(101.0, 1), "cpu_percent"),
    ("process", "to_process(fn=asyncfn)", lambda: trine.to_process(afn), "fn"),
    ("process", "to_process(fn=coro)", lambda: trine.to_process(afn()), "fn"),
    (
        "pipeline",
        "Pipeline.map(on_error=bogus)",
        lambda: _pipe().map(afn, on_error="bogus"),
        "on_error",
    ),
    (
        "pipeline",
        "Pipeline.map(executor=bogus)",
        lambda: _pipe().map(syncfn, executor="bogus"),  # type: ignore[arg-type]
        "executor",
    ),
    ("pipeline", "Pipeline.map(key=coro)", lambda: _pipe().map(afn, key=afn(1)), "key"),
    *(
        (
            "pipeline",
            f"Pipeline.{method}(overflow={bad!r})",
            lambda method=method, bad=bad: getattr(_pipe(), method)(afn, overflow=bad),
            "overflow",
        )
        for method in ("map", "filter", "flat_map", "tap")
        for bad in ("bogus", None, 1, "BLOCK")
    ),
    (
        "pipeline",
        "Pipeline.map(overflow=drop_oldest, buffer=0)",
        lambda: _pipe().map(afn, overflow="drop_oldest", buffer=0),
        "overflow",
    ),
    (
        "pipeline",
        "Pipeline.batch(overflow=bogus)",
        lambda: _pipe().batch(2, overflow="bogus"),  # type: ignore[arg-type]
        "overflow",
    ),
    (
        "pipeline",
        "Pipeline.rate_limit(overflow=bogus)",
        lambda: _pipe().rate_limit(1, overflow="bogus"),  # type: ignore[arg-type]
        "overflow",
    ),
    (
        "pipeline",
        "Pipeline.enumerate(overflow=bogus)",
        lambda: _pipe().enumerate(overflow="bogus"),  # type: ignore[arg-type]
        "overflow",
    ),
    (
        "pipeline",
        "Pipeline.broadcast(overflow=bogus)",
        lambda: _pipe().broadcast(lambda p: p, overflow="bogus"),  # type: ignore[arg-type]
        "overflow",
    ),
    ("pipeline", "Pipeline.map(per_key, no key)", lambda: _pipe().map(afn, per_key=2), "per_key"),
    (
        "pipeline",
        "Pipeline.map(per_key > workers)",
        lambda: _pipe().map(afn, key=syncfn, workers=2, per_key=3),
        "per_key",
    ),
    (
        "breaker",
        "CircuitBreaker(window_type=bogus)",
        lambda: trine.CircuitBreaker(window_type="x"),
        "window_type",
    ),
    (
        "limit",
        "AdaptiveLimiter(algorithm=bogus)",
        lambda: trine.AdaptiveLimiter(initial=1, max_limit=2, algorithm="x"),
        "algorithm",
    ),
    (
        "limit",
        "AdaptiveLimiter(min_limit > initial)",
        lambda: trine.AdaptiveLimiter(initial=1, min_limit=2, max_limit=4),
        "min_limit",
    ),
    (
        "limit",
        "WeightedSemaphore.hold(weight > capacity)",
        lambda: _hold(trine.WeightedSemaphore(2).hold(3)),
        "weight",
    ),
    (
        "retry",
        "Backoff.exponential(jitter=bogus)",
        lambda: trine.Backoff.exponential(jitter="x"),
        "jitter",
    ),
    ("retry", "Retry(on=())", lambda: trine.Retry(on=()), "on"),
    ("fleet", "Percentile(101)", lambda: trine.Percentile(101), "percentile"),
    ("fleet", "Balancer(strategy=bogus)", lambda: trine.Balancer(strategy="x"), "strategy"),  # type: ignore[arg-type]
    ("fleet", "Balancer(endpoints=str)", lambda: trine.Balancer("10.0.0.1"), "endpoints"),
    (
        "fleet",
        "Balancer(weights={a: 0})",
        lambda: trine.Balancer(["a"], weights={"a": 0}),
        "weights",
    ),
    (
        "fleet",
        "Balancer(breaker returns 1)",
        lambda: trine.Balancer(["a"], breaker=lambda ep: 1),  # type: ignore[arg-type,return-value]
        "breaker",
    ),
    ("fleet", "Balancer.add(dup)", lambda: trine.Balancer(["a"]).add("a"), "endpoint"),
    ("fleet", "Balancer.remove(missing)", lambda: trine.Balancer(["a"]).remove("z"), "endpoint"),
    (
        "fleet",
        "ResourcePool(min_size > max_size)",
        lambda: trine.ResourcePool(afn, max_size=1, min_size=2),
        "min_size",
    ),
    (
        "fleet",
        "OutlierEjection(max_ejected=2)",
        lambda: trine.OutlierEjection(max_ejected=2),
        "max_ejected",
    ),
    ("chaos", "Chaos(error=instance)", lambda: trine.Chaos(error=OSError()), "error"),
    ("chaos", "Chaos(error=KI)", lambda: trine.Chaos(error=KeyboardInterrupt), "error"),
    ("chaos", "Chaos(slow, no latency)", lambda: trine.Chaos(slow=0.5), "latency"),
    (
        "chaos",
        "Chaos(enabled returns 1).call",
        lambda: trine.Chaos(enabled=lambda: 1).call(afn),  # type: ignore[arg-type,return-value]
        "enabled",
    ),
    (
        "chaos",
        "Chaos(error builds 1).call",
        lambda: trine.Chaos(fault=1.0, error=lambda: 1).call(afn),  # type: ignore[arg-type,return-value]
        "error",
    ),
    (
        "graph",
        "TaskGraph.add(deps=obj)",
        lambda: trine.TaskGraph().add(afn, deps=[object()]),
        "deps",
    ),
    (
        "graph",
        "TaskGraph.add(resources=undefined)",
        lambda: trine.TaskGraph().add(afn, resources=["db"]),
        "resources",
    ),
    ("debug", "dump_on_signal(signum=12345)", lambda: trine.debug.dump_on_signal(12345), "signum"),
    (
        "metrics",
        "Exporter.unregister(not registered)",
        lambda: trine.metrics.Exporter().unregister(trine.Bulkhead(1)),
        "obj",
    ),
]

# -- redis: trine.redis, when its extra (coredis) is installed ----------------------
# A client is made but never entered: every check runs before a round trip, except
# CircuitBreaker.call's of what fn returns, which a fail-open breaker reaches without
# a server (the refused connection's garbage is collected inside the test).

try:
    import coredis

    import trine.redis
except ImportError:  # pragma: no cover - the test extra installs coredis
    trine_redis = None
else:
    trine_redis = trine.redis


def _redis_client() -> Any:
    return coredis.Redis(host="127.0.0.1", port=1)


_REDIS_COMMON = {
    "client": "object",
    "on_unavailable": "object",
    "timeout": "pos_seconds",
    "recheck_interval": "seconds",
}


async def _redis_breaker_call(fn: Any = afn) -> None:
    import gc

    client = coredis.Redis(host="127.0.0.1", port=1, connect_timeout=1)
    try:
        async with client:
            breaker = trine_redis.CircuitBreaker(client, "x", on_unavailable="fail_open")
            await breaker.call(fn)
    finally:
        del client
        gc.collect()


async def _redis_breaker_decorated(fn: Any = afn) -> None:
    """``@breaker`` on *fn*, then one call of the result (as _redis_breaker_call)."""
    import gc

    client = coredis.Redis(host="127.0.0.1", port=1, connect_timeout=1)
    try:
        async with client:
            breaker = trine_redis.CircuitBreaker(client, "x", on_unavailable="fail_open")
            await breaker(fn)()
    finally:
        del client
        gc.collect()


def _redis_source() -> Any:
    return trine_redis.stream_source(_redis_client(), "s", group="g", consumer="c")


def _redis_doors() -> list[Door]:
    r = trine_redis
    return [
        Door(
            "redis",
            "redis.RateLimiter",
            lambda client=None, name="x", rate=10.0, **kw: r.RateLimiter(
                _redis_client() if client is None else client, name, rate, **kw
            ),
            {"name": "name", "rate": "pos_seconds", "per": "pos_seconds", "burst": "opt_count"}
            | _REDIS_COMMON,
            skip=frozenset(
                {"rate=hugeint", "client=None"}
            ),  # as trine.RateLimiter; None: the default
        ),
        Door(
            "redis",
            "redis.RateLimiter.acquire",
            lambda **kw: r.RateLimiter(_redis_client(), "x", 10.0).acquire(**kw),
            {"cost": "pos_seconds", "key": "key"},
        ),
        Door(
            "redis",
            "redis.RateLimiter.try_acquire",
            lambda **kw: r.RateLimiter(_redis_client(), "x", 10.0).try_acquire(**kw),
            {"cost": "pos_seconds", "key": "key"},
        ),
        Door(
            "redis",
            "redis.RateLimiter.acquire_nowait",
            lambda **kw: r.RateLimiter(_redis_client(), "x", 10.0).acquire_nowait(**kw),
            {"cost": "pos_seconds", "key": "key"},
        ),
        Door(
            "redis",
            "redis.SlidingWindowLimiter",
            lambda client=None, name="x", limit=2, window=1.0, **kw: r.SlidingWindowLimiter(
                _redis_client() if client is None else client, name, limit, window, **kw
            ),
            {"name": "name", "limit": "count", "window": "pos_seconds"} | _REDIS_COMMON,
            skip=frozenset({"client=None"}),
        ),
        Door(
            "redis",
            "redis.SlidingWindowLimiter.acquire",
            lambda **kw: r.SlidingWindowLimiter(_redis_client(), "x", 2, 1.0).acquire(**kw),
            {"cost": "count", "key": "key"},
        ),
        Door(
            "redis",
            "redis.SlidingWindowLimiter.try_acquire",
            lambda **kw: r.SlidingWindowLimiter(_redis_client(), "x", 2, 1.0).try_acquire(**kw),
            {"cost": "count", "key": "key"},
        ),
        Door(
            "redis",
            "redis.SlidingWindowLimiter.acquire_nowait",
            lambda **kw: r.SlidingWindowLimiter(_redis_client(), "x", 2, 1.0).acquire_nowait(**kw),
            {"cost": "count", "key": "key"},
        ),
        Door(
            "redis",
            "redis.CircuitBreaker",
            lambda client=None, name="x", **kw: r.CircuitBreaker(
                _redis_client() if client is None else client, name, **kw
            ),
            {
                "name": "name",
                "failure_threshold": "count",
                "failure_rate": "opt_fraction",
                "window": "count",
                "minimum_calls": "count",
                "slow_call_duration": "opt_pos_seconds",
                "slow_call_rate": "fraction",
                "reset_timeout": "seconds",
                "half_open_max_calls": "count",
                "success_threshold": "count",
                "probe_timeout": "pos_seconds",
                "record": "exceptions",
                "ignore": "exceptions",
                "on_state_change": "opt_sync_fn",
                "hooks": "hooks",
                "sync_interval": "opt_pos_seconds",
            }
            | _REDIS_COMMON,
            skip=frozenset({"client=None"}),
        ),
        Door(
            "redis",
            "redis.CircuitBreaker(time)",
            lambda window=10.0: r.CircuitBreaker(
                _redis_client(), "x", window_type="time", window=window
            ),
            {"window": "pos_seconds"},
        ),
        Door("redis", "redis.CircuitBreaker.call", _redis_breaker_call, {"fn": "async_fn"}),
        Door(
            "redis", "redis.CircuitBreaker(decorator)", _redis_breaker_decorated, {"fn": "async_fn"}
        ),
        Door(
            "redis",
            "redis.Semaphore",
            lambda client=None, name="x", limit=2, **kw: r.Semaphore(
                _redis_client() if client is None else client, name, limit, **kw
            ),
            {
                "name": "name",
                "limit": "count",
                "ttl": "pos_seconds",
                "max_wait": "opt_seconds",
                "poll_interval": "pos_seconds",
            }
            | _REDIS_COMMON,
            skip=frozenset({"client=None"}),
        ),
        Door(
            "redis",
            "redis.RetryBudget",
            lambda client=None, name="x", **kw: r.RetryBudget(
                _redis_client() if client is None else client, name, **kw
            ),
            {
                "name": "name",
                "ratio": "seconds",
                "min_per_second": "seconds",
                "window": "pos_seconds",
                "buckets": "count",
                "sync_interval": "pos_seconds",
            }
            | _REDIS_COMMON,
            skip=frozenset({"client=None"}),
        ),
        Door(
            "redis",
            "redis.stream_source",
            lambda client=None, stream="s", group="g", consumer="c", **kw: r.stream_source(
                _redis_client() if client is None else client,
                stream,
                group=group,
                consumer=consumer,
                **kw,
            ),
            {
                "client": "object",
                "stream": "name",
                "group": "name",
                "consumer": "name",
                "claim_idle": "pos_seconds",
                "max_deliveries": "count",
                "dead_letter": "name",
                "count": "count",
                "start": "name",
                "stop_when_idle": "opt_pos_seconds",
                "timeout": "pos_seconds",
                "recheck_interval": "seconds",
            },
            skip=frozenset({"client=None"}),
        ),
        Door(
            "redis",
            "redis.stream_sink",
            lambda client=None, stream="s", **kw: r.stream_sink(
                _redis_client() if client is None else client, stream, **kw
            ),
            {
                "client": "object",
                "stream": "name",
                "maxlen": "opt_count",
                "timeout": "pos_seconds",
                "recheck_interval": "seconds",
            },
            skip=frozenset({"client=None"}),
        ),
        Door(
            "redis",
            "redis.StreamSource.ack",
            lambda entries=None: _redis_source().ack(entries),
            {"entries": "object"},
        ),
        Door(
            "redis",
            "redis.StreamSource.dead_letter",
            lambda entry=None: _redis_source().dead_letter(entry, ValueError("x")),
            {"entry": "object"},
        ),
        Door(
            "redis",
            "redis.StreamSink.__call__",
            lambda entries=None: r.stream_sink(_redis_client(), "s")(entries),
            {"entries": "object"},
        ),
    ]


def _redis_extra() -> list[tuple[str, str, Callable[[], object], str]]:
    r = trine_redis

    def client() -> Any:
        return _redis_client()

    return [
        ("redis", "redis.RateLimiter(name='')", lambda: r.RateLimiter(client(), "", 1), "name"),
        ("redis", "redis.RateLimiter(name={x})", lambda: r.RateLimiter(client(), "{x}", 1), "name"),
        (
            "redis",
            "redis.RateLimiter(on_unavailable=bogus)",
            lambda: r.RateLimiter(client(), "x", 1, on_unavailable="x"),  # type: ignore[arg-type]
            "on_unavailable",
        ),
        (
            "redis",
            "redis.RateLimiter.acquire(key=1)",
            lambda: r.RateLimiter(client(), "x", 1).acquire(key=1),  # type: ignore[arg-type]
            "key",
        ),
        (
            "redis",
            "redis.RateLimiter.acquire(cost > burst)",
            lambda: r.RateLimiter(client(), "x", 1).acquire(2),
            "cost",
        ),
        (
            "redis",
            "redis.SlidingWindowLimiter.acquire(cost > limit)",
            lambda: r.SlidingWindowLimiter(client(), "x", 2, 1.0).acquire(3),
            "cost",
        ),
        (
            "redis",
            "redis.CircuitBreaker(name=None)",
            lambda: r.CircuitBreaker(client(), None),  # type: ignore[arg-type]
            "name",
        ),
        (
            "redis",
            "redis.CircuitBreaker(window_type=bogus)",
            lambda: r.CircuitBreaker(client(), "x", window_type="x"),  # type: ignore[arg-type]
            "window_type",
        ),
        (
            "redis",
            "redis.stream_source(stream='')",
            lambda: r.stream_source(client(), "", group="g", consumer="c"),
            "stream",
        ),
        (
            "redis",
            "redis.StreamSink.__call__(value=42)",
            lambda: r.stream_sink(client(), "s")([1]),  # type: ignore[list-item]
            "entries",
        ),
    ]


if trine_redis is not None:
    DOORS += _redis_doors()
    EXTRA += _redis_extra()


@attrs.frozen
class Case:
    owner: str
    label: str
    run: Callable[[], object]
    name: str


def _cases() -> Iterator[Case]:
    for door in DOORS:
        for param, kind in door.params.items():
            for bad in KINDS[kind]:
                if f"{param}={bad.label}" in door.skip:
                    continue

                def run(door: Door = door, param: str = param, bad: Bad = bad) -> object:
                    return door.call(**{param: bad.make()})

                yield Case(
                    door.owner,
                    f"{door.label}({param}={bad.label})",
                    run,
                    door.names.get(param, param),
                )
    for owner, label, run, name in EXTRA:
        yield Case(owner, label, run, name)


CASES = list(_cases())


def _leaf(error: BaseException) -> BaseException:
    """The one exception an error stands for: itself, or a group's only leaf."""
    while isinstance(error, BaseExceptionGroup):
        leaves = list(_leaves(error))
        if len(leaves) != 1:
            return error
        error = leaves[0]
    return error


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


async def _call(case: Case) -> BaseException | None:
    try:
        result = case.run()
        if inspect.isawaitable(result):
            # A hang on the fake clock ends here instead of never.
            with trio.fail_after(3600):
                await result
    except Exception as error:  # every outcome is checked by the caller
        return error
    return None


@pytest.mark.parametrize("case", CASES, ids=[f"{c.owner}:{c.label}" for c in CASES])
async def test_bad_input_is_refused_naming_the_argument(
    case: Case, autojump_clock: trio.testing.MockClock
) -> None:
    """A bad argument raises TypeError or ValueError at the call, naming the argument."""
    error = await _call(case)
    assert error is not None, f"{case.label} was accepted"
    leaf = _leaf(error)
    assert isinstance(leaf, TypeError | ValueError), f"{case.label} raised {error!r}"
    message = str(leaf)
    assert re.search(rf"(?<![\w.]){re.escape(case.name)}(?!\w)", message), (
        f"{case.label}: the message does not name {case.name!r}: {message}"
    )


def _public_callables() -> Iterator[str]:
    modules: list[tuple[Any, str]] = [
        (trine, ""),
        (trine.testing, ""),
        (trine.metrics, ""),
        (trine.debug, ""),
    ]
    if trine_redis is not None:
        modules.append((trine_redis, "redis."))
    for module, prefix in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type):
                if issubclass(obj, BaseException) or (
                    attrs.has(obj) and name.endswith(("Statistics", "Summary", "Event", "Result"))
                ):
                    continue
                yield f"{prefix}{name}"
            elif callable(obj):
                yield f"{prefix}{name}"


# Public names with nothing to validate, or built only by trine itself.
NO_DOOR = {
    "AdaptivePermit",  # handed out by AdaptiveLimiter.hold
    "AttemptTimedOut",  # events: built by the guards
    "CallRejected",
    "CircuitStateChanged",
    "FallbackUsed",
    "RetryGaveUp",
    "RetryScheduled",
    "CircuitState",  # enums
    "CommandStatus",
    "NodeStatus",
    "Hook",  # protocols
    "Limiter",
    "Node",  # handed out by TaskGraph.add
    "PipelineOutput",  # handed out by Pipeline.open
    "ReadOnlyValue",  # handed out by the objects whose state it shows
    "RetryAttempt",  # handed out by iterating a Retry
    "CommandResult",  # built by run_commands
    "CommandAttempt",  # built by run_commands (CommandResult.history)
    "LatencyHistogram",  # takes no arguments; its methods have doors
    "ConcurrencyProbe",  # takes no arguments
    "FakeCall",  # built by FakeService
    "FakeRequest",  # built by FakeService for its script functions
    "ProbeEvent",  # built by ConcurrencyProbe
    "Timeline",  # takes no arguments; its methods have doors
    "no_waits",  # takes no arguments
    "Family",  # the rows of trine.metrics.FAMILIES, built by trine
    "Stall",  # built by watch_blocking
    "redis.FleetBreakerState",  # built by CircuitBreaker.fleet_state
    "redis.Lease",  # handed out by Semaphore.hold
    "redis.StreamEntry",  # made by StreamSource
}


def _covers(label: str) -> str:
    """The public name a Door's label is about: ``Pipeline.map(fn)`` -> ``Pipeline``."""
    prefix = "redis." if label.startswith("redis.") else ""
    return prefix + label.removeprefix(prefix).split(".")[0].split("(")[0]


def test_every_public_callable_has_a_door() -> None:
    """Every public class and function is in DOORS (or deliberately in NO_DOOR)."""
    covered = {_covers(door.label) for door in DOORS}
    covered |= {_covers(label) for _, label, _, _ in EXTRA}
    missing = sorted(set(_public_callables()) - covered - NO_DOOR)
    assert missing == []


def test_the_table_is_large() -> None:
    """The generic test tries hundreds of bad inputs (the count is in the hardening note)."""
    assert len(CASES) > 400
