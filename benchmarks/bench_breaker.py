"""Success-path overhead of a closed CircuitBreaker around a trivial async function.

Each variant awaits ``fn`` (an ``async def`` that returns at once, without a
checkpoint, so only the wrapper's cost is measured) N times inside one
``trio.run``; the baseline is calling ``fn`` bare. pybreaker/aiobreaker are not
installed, so there are no peer rows.

Numbers (2-core machine shared with other jobs, ``--repeat 5``, medians,
N = 20 000; runs varied by about +-30%)::

    breaker_success_path                      per call   ratio to bare
      bare await fn()                          0.08 us     1.00x
      await breaker.call(fn)                   1.45 us    18.9x
      async with breaker: await fn()           2.01 us    26.0x
      @breaker decorated fn                    1.51 us    19.6x
      breaker.call, time window + slow calls   2.01 us    26.0x
    breaker_checkpointing_fn
      bare await fn()  (one checkpoint)        3.40 us     1.00x
      await breaker.call(fn)                   5.18 us     1.52x

What they say: the breaker adds about 1.5 us per call (a cancellation check,
the admit/finish bookkeeping and one small permit object), less than one trip
through Trio's scheduler, and it adds no checkpoint of its own on the success
path. The ratio to a function that never yields is large only because that
function costs nothing; against the cheapest real call (one checkpoint) the
breaker adds half. ``async with`` pays about 0.5 us more to find the task's
permit (it is kept per task so concurrent blocks do not mix). A time window and
slow-call tracking add two clock reads per call. An earlier version was at
3.7 us per call: every private counter update went through attrs' frozen-field
``__setattr__``; the configuration is now read-only properties instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import trio
import trio.lowlevel

from benchmarks._harness import Case, Variant, run_trio
from trine import CircuitBreaker

N = 20_000


async def fn() -> int:
    return 1


async def fn_checkpoint() -> int:
    await trio.lowlevel.checkpoint()
    return 1


def _run(body: Callable[[], Awaitable[None]]) -> float:
    elapsed = 0.0

    async def main() -> None:
        nonlocal elapsed
        start = time.perf_counter()
        await body()
        elapsed = time.perf_counter() - start

    run_trio(main)
    return elapsed


async def bare() -> None:
    for _ in range(N):
        await fn()


async def via_call() -> None:
    breaker = CircuitBreaker()
    for _ in range(N):
        await breaker.call(fn)


async def via_async_with() -> None:
    breaker = CircuitBreaker()
    for _ in range(N):
        async with breaker:
            await fn()


async def via_decorator() -> None:
    guarded = CircuitBreaker()(fn)
    for _ in range(N):
        await guarded()


async def via_call_rate_window() -> None:
    breaker = CircuitBreaker(
        failure_rate=0.5, window=30.0, window_type="time", slow_call_duration=1.0
    )
    for _ in range(N):
        await breaker.call(fn)


async def bare_checkpoint() -> None:
    for _ in range(N):
        await fn_checkpoint()


async def via_call_checkpoint() -> None:
    breaker = CircuitBreaker()
    for _ in range(N):
        await breaker.call(fn_checkpoint)


CASES = [
    Case(
        name="breaker_success_path",
        description=f"{N} calls of a trivial async fn through a closed breaker",
        per=N,
        variants=[
            Variant("bare await fn()", lambda: _run(bare), baseline=True),
            Variant("await breaker.call(fn)", lambda: _run(via_call)),
            Variant("async with breaker: await fn()", lambda: _run(via_async_with)),
            Variant("@breaker decorated fn", lambda: _run(via_decorator)),
            Variant("breaker.call, time window + slow calls", lambda: _run(via_call_rate_window)),
        ],
    ),
    Case(
        name="breaker_checkpointing_fn",
        description=f"{N} calls of an async fn with one checkpoint (the cheapest real call)",
        per=N,
        variants=[
            Variant("bare await fn()", lambda: _run(bare_checkpoint), baseline=True),
            Variant("await breaker.call(fn)", lambda: _run(via_call_checkpoint)),
        ],
    ),
]
