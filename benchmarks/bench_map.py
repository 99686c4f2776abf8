"""Bounded concurrent maps: trine's ``map_all``/``amap``/``for_each`` against hand-written Trio.

Run ``python -m benchmarks map --repeat 5``; the slow memory case runs only when
named: ``python -m benchmarks amap_memory --repeat 1``.

The baselines are the strongest patterns a competent Trio user writes: for
``map_all``, ``LIMIT`` workers pulling items from one shared iterator (numbered
into a preallocated list; with twins that append, and that keep no results,
beside ``ordered=False`` and ``for_each``); for ``amap``, the same workers
sending into one memory channel that a consumer reads. Weaker patterns (a
task per item behind a ``CapacityLimiter``, a worker pool fed item by item
through a channel) are extra rows labelled "weaker".

Measured 2026-11-24 on the shared 2-core machine under heavy load from other
jobs (load average 4-8: the process got about 40 % of a core, so every time
is inflated about 2.5x and single ratios move by +-15 % between runs; the
steps and calls per item do not move). Medians of 5, 100,000 items, limit 100,
ratio to the first row of the case:

================================================  ==============  ======  =====  =====
map_all, fn awaits one checkpoint                 per item        ratio   steps  calls
================================================  ==============  ======  =====  =====
hand: workers on a shared iterator (baseline)     12.47 us        1.00    1.001  19.1
trine.map_all (ordered)                           11.03 us        0.88    1.001  19.1
hand: same, appending (unordered)                 10.59 us        0.85    1.001  19.1
trine.map_all (ordered=False)                     11.87 us        0.95    1.001  19.1
hand: same, no results                            10.16 us        0.82    1.001  19.1
trine.for_each                                    10.53 us        0.84    1.001  19.1
hand: shared iterator + checkpoint every 64       10.97 us        0.88    1.016  19.4
weaker hand: limiter + start_soon                 77.93 us        6.25    3.000  73.0
weaker hand: 100 workers on a channel             51.78 us        4.15    3.003  71.1
aiometer.run_all on trio                          251.92 us       20.20   5.000  216.0
================================================  ==============  ======  =====  =====

===============================================  =========  ======  ======
map_all, fn never yields                         per item   ratio   steps
===============================================  =========  ======  ======
hand: workers on a shared iterator (baseline)    0.73 us    1.00    0.001
trine.map_all (ordered)                          1.06 us    1.45    0.009
hand: same, appending (unordered)                0.52 us    0.72    0.001
trine.map_all (ordered=False)                    0.87 us    1.19    0.017
hand: same, no results                           0.41 us    0.56    0.001
trine.for_each                                   0.89 us    1.22    0.009
hand: shared iterator + checkpoint every 64      0.82 us    1.13    0.017
===============================================  =========  ======  ======

===============================================  =========  ======  ======
amap, fn awaits one checkpoint                   per item   ratio   steps
===============================================  =========  ======  ======
hand: workers -> channel(100) -> consumer        50.00 us   1.00    3.002
hand: workers -> channel(0) -> consumer          51.20 us   1.02    3.002
trine.amap (ordered=False)                       13.57 us   0.27    1.359
trine.amap (ordered)                             12.74 us   0.25    1.299
weaker hand: limiter + start_soon + clones       105.24 us  2.10    6.000
aiometer.amap on trio                            200.11 us  4.00    5.000
===============================================  =========  ======  ======

(With an fn that never yields: the channel pattern 31.25 us and 2.0 steps
per item, trine.amap 7.5-7.9 us and 0.35 steps, 0.24-0.25x.)

What the numbers say. ``map_all`` and ``for_each`` *are* the shared-iterator
worker pattern: the same scheduler steps and the same Python calls per item
(19.1, of which the function and Trio's checkpoint take most), so their time
is the hand pattern's within this machine's noise (the issue's goal was
<= 1.05x; the independent run had found 1.09-1.12x and ~5 extra calls per
item, from a wrapper coroutine per item, ``count % 64`` and a placeholder
append). The one thing trine adds is a guarantee: a worker whose ``fn`` never
yields still passes through a checkpoint every 64 of its items (at most 128
when others took items meanwhile, which proves it had yielded; with an ``fn``
that yields the check costs no step). With a trivial ``fn`` that never yields
that is the whole difference (0.009-0.017 steps per item, 1.2-1.45x a loop
that never lets a deadline in; the hand loop with the same checkpoint is
1.13x). Against the weaker patterns a user also writes, trine is 4-6x faster
(a task spawn plus a limiter or channel hand-off per item: 3 steps instead of
1), and 20x faster than aiometer.

Two later figures, on an unloaded 2-core virtual machine. A timing run
(``map --repeat 5``, fn awaits one checkpoint): ``map_all`` 1.11x the hand
pattern, ``ordered=False`` 0.93x (its appending twin 1.05x), ``for_each``
0.82x (its twin that keeps no results 1.04x), with the same 1.001 steps and
19.1 calls per item. And, free of noise, the machine instructions per item
under valgrind (``--tool=cachegrind``, a run of 80,000 items less one of
40,000): ``map_all`` 22,200 against the hand pattern's 21,500 (1.03x),
``ordered=False`` 21,800 against its twin's 21,300 (1.02x), ``for_each``
21,800 against its twin's 21,100 (1.03x), all within the goal.

``amap`` streams at about a quarter of the cost of workers sending into one
channel, whose every ``send`` and ``receive`` is a checkpoint (3 steps per item
against 1.3): trine's consumer drains every ready result per wake-up.

Memory (``amap_memory``, amap over a 10,000,000-item generator with a
yielding function, limit 100): RSS 32.7 MiB after 100,000 items and 32.7 MiB
after 10,000,000 (11.5 us per item under the same load, 1.28 steps per
item): flat.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Awaitable, Callable

import trio

import trine
from benchmarks._harness import Case, Variant, installed, run_trio, timed

N = 100_000
LIMIT = 100


async def step(x: int) -> int:
    """A trivial function that still yields to the scheduler once, as real I/O would."""
    await trio.lowlevel.checkpoint()
    return x


async def no_step(x: int) -> int:
    """A function that never yields (pure computation dressed as async)."""
    return x


Fn = Callable[[int], Awaitable[int]]


def _run(main: Callable[[], Awaitable[object]]) -> float:
    async def timed_main() -> float:
        start = trio.current_time()
        await main()
        return trio.current_time() - start

    return run_trio(timed_main)


# -- hand-written Trio: the strongest patterns ---------------------------------------


async def _start(worker: Callable[[], Awaitable[None]]) -> None:
    async with trio.open_nursery() as nursery:
        for _ in range(LIMIT):
            nursery.start_soon(worker)


def shared_iterator_ordered(fn: Fn) -> float:
    """The best hand-written map: LIMIT workers pulling numbered items from one iterator."""

    async def main() -> list[int]:
        results: list[int] = [0] * N
        numbered = enumerate(range(N))

        async def worker() -> None:
            for i, x in numbered:
                results[i] = await fn(x)

        await _start(worker)
        return results

    return _run(main)


def shared_iterator_appending(fn: Fn) -> float:
    """The same workers appending results in completion order (trine's ordered=False)."""

    async def main() -> list[int]:
        results: list[int] = []
        items = iter(range(N))

        async def worker() -> None:
            for x in items:
                results.append(await fn(x))

        await _start(worker)
        return results

    return _run(main)


def shared_iterator_discarding(fn: Fn) -> float:
    """The same workers keeping no results (trine's for_each)."""

    async def main() -> None:
        items = iter(range(N))

        async def worker() -> None:
            for x in items:
                await fn(x)

        await _start(worker)

    return _run(main)


def shared_iterator_checkpointing(fn: Fn) -> float:
    """The ordered workers plus trine's guarantee: a checkpoint every 64 items of a worker."""

    async def main() -> list[int]:
        results: list[int] = [0] * N
        numbered = enumerate(range(N))

        async def worker() -> None:
            left = 64
            for i, x in numbered:
                results[i] = await fn(x)
                left -= 1
                if not left:
                    left = 64
                    await trio.lowlevel.checkpoint()

        await _start(worker)
        return results

    return _run(main)


def workers_to_one_channel(fn: Fn, *, buffer: int) -> float:
    """The best hand-written stream: LIMIT workers on a shared iterator send into one channel."""

    async def main() -> None:
        send, receive = trio.open_memory_channel[int](buffer)
        items = iter(range(N))

        async def worker(send: trio.MemorySendChannel[int]) -> None:
            async with send:
                for x in items:
                    await send.send(await fn(x))

        total = 0
        async with trio.open_nursery() as nursery:
            async with send:
                for _ in range(LIMIT):
                    nursery.start_soon(worker, send.clone())
            async with receive:
                async for result in receive:
                    total += result

    return _run(main)


# -- hand-written Trio: weaker patterns, for reference -------------------------------


def limiter_start_soon(fn: Fn) -> float:
    """A task per item: the spawner takes a CapacityLimiter token before each start_soon."""

    async def main() -> list[int]:
        results: list[int] = [0] * N
        limiter = trio.CapacityLimiter(LIMIT)

        async def child(i: int, x: int) -> None:
            try:
                results[i] = await fn(x)
            finally:
                limiter.release_on_behalf_of(i)

        async with trio.open_nursery() as nursery:
            for i, x in enumerate(range(N)):
                await limiter.acquire_on_behalf_of(i)
                nursery.start_soon(child, i, x)
        return results

    return _run(main)


def channel_pool(fn: Fn) -> float:
    """LIMIT workers reading (index, item) pairs from an unbuffered memory channel."""

    async def main() -> list[int]:
        results: list[int] = [0] * N
        send, receive = trio.open_memory_channel[tuple[int, int]](0)

        async def worker(receive: trio.MemoryReceiveChannel[tuple[int, int]]) -> None:
            async with receive:
                async for i, x in receive:
                    results[i] = await fn(x)

        async with trio.open_nursery() as nursery:
            async with receive:
                for _ in range(LIMIT):
                    nursery.start_soon(worker, receive.clone())
            async with send:
                for i, x in enumerate(range(N)):
                    await send.send((i, x))
        return results

    return _run(main)


def limiter_streaming(fn: Fn) -> float:
    """A task per item behind a limiter, each with its own clone of the results channel."""

    async def main() -> None:
        send, receive = trio.open_memory_channel[int](LIMIT)
        limiter = trio.CapacityLimiter(LIMIT)

        async def child(i: int, x: int, send: trio.MemorySendChannel[int]) -> None:
            async with send:
                try:
                    result = await fn(x)
                finally:
                    limiter.release_on_behalf_of(i)
                await send.send(result)

        async def spawner(nursery: trio.Nursery) -> None:
            async with send:
                for i, x in enumerate(range(N)):
                    await limiter.acquire_on_behalf_of(i)
                    nursery.start_soon(child, i, x, send.clone())

        total = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(spawner, nursery)
            async with receive:
                async for result in receive:
                    total += result

    return _run(main)


# -- trine -------------------------------------------------------------------------


def trine_map_all(fn: Fn, *, ordered: bool) -> float:
    async def main() -> list[int]:
        return await trine.map_all(fn, range(N), limit=LIMIT, ordered=ordered)

    return _run(main)


def trine_for_each(fn: Fn) -> float:
    async def main() -> None:
        await trine.for_each(fn, range(N), limit=LIMIT)

    return _run(main)


def trine_amap(fn: Fn, *, ordered: bool) -> float:
    async def main() -> None:
        total = 0
        async with trine.amap(fn, range(N), limit=LIMIT, ordered=ordered) as results:
            async for result in results:
                total += result

    return _run(main)


# -- peers -------------------------------------------------------------------------


def aiometer_run_all(fn: Fn) -> float:
    import functools

    import aiometer

    async def main() -> list[int]:
        calls = [functools.partial(fn, x) for x in range(N)]
        return await aiometer.run_all(calls, max_at_once=LIMIT)

    return _run(main)


def aiometer_amap(fn: Fn) -> float:
    import aiometer

    async def main() -> None:
        total = 0
        async with aiometer.amap(fn, range(N), max_at_once=LIMIT) as results:
            async for result in results:
                total += result

    return _run(main)


def _map_all_variants(fn: Fn) -> list[Variant]:
    variants = [
        Variant(
            "hand: workers on a shared iterator",
            lambda: shared_iterator_ordered(fn),
            baseline=True,
        ),
        Variant("trine.map_all (ordered)", lambda: trine_map_all(fn, ordered=True)),
        Variant("hand: same, appending (unordered)", lambda: shared_iterator_appending(fn)),
        Variant("trine.map_all (ordered=False)", lambda: trine_map_all(fn, ordered=False)),
        Variant("hand: same, no results", lambda: shared_iterator_discarding(fn)),
        Variant("trine.for_each", lambda: trine_for_each(fn)),
        Variant("hand: shared iterator + checkpoint/64", lambda: shared_iterator_checkpointing(fn)),
        Variant("weaker hand: limiter + start_soon", lambda: limiter_start_soon(fn)),
        Variant("weaker hand: 100 workers on a channel", lambda: channel_pool(fn)),
    ]
    if installed("aiometer"):
        variants.append(Variant("aiometer.run_all on trio", lambda: aiometer_run_all(fn)))
    return variants


def _amap_variants(fn: Fn) -> list[Variant]:
    variants = [
        Variant(
            f"hand: workers -> channel({LIMIT}) -> consumer",
            lambda: workers_to_one_channel(fn, buffer=LIMIT),
            baseline=True,
        ),
        Variant(
            "hand: workers -> channel(0) -> consumer",
            lambda: workers_to_one_channel(fn, buffer=0),
        ),
        Variant("trine.amap (ordered=False)", lambda: trine_amap(fn, ordered=False)),
        Variant("trine.amap (ordered)", lambda: trine_amap(fn, ordered=True)),
        Variant(
            "weaker hand: limiter + start_soon + clones",
            lambda: limiter_streaming(fn),
        ),
    ]
    if installed("aiometer"):
        variants.append(Variant("aiometer.amap on trio", lambda: aiometer_amap(fn)))
    return variants


# -- memory ------------------------------------------------------------------------


def _rss_mib() -> float:
    if installed("psutil"):
        import psutil

        return float(psutil.Process(os.getpid()).memory_info().rss) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def amap_memory() -> float:
    """amap over a 10,000,000-item generator; print RSS at 100k items and at the end."""
    total_items = 10_000_000

    def numbers() -> object:
        yield from range(total_items)

    async def main() -> None:
        seen = 0
        async with trine.amap(step, numbers(), limit=LIMIT) as results:  # type: ignore[arg-type]
            async for _ in results:
                seen += 1
                if seen == 100_000:
                    at_100k = _rss_mib()
        at_end = _rss_mib()
        print(
            f"    RSS after 100,000 items: {at_100k:.1f} MiB; "
            f"after {seen:,} items: {at_end:.1f} MiB",
            file=sys.stderr,
        )

    return timed(lambda: run_trio(main))


CASES = [
    Case(
        "map_all",
        f"{N:,} items, limit {LIMIT}, fn awaits one checkpoint; every result kept",
        N,
        _map_all_variants(step),
        count_calls=True,
    ),
    Case(
        "map_all_no_checkpoint",
        f"{N:,} items, limit {LIMIT}, fn never yields; every result kept",
        N,
        _map_all_variants(no_step),
    ),
    Case(
        "amap",
        f"{N:,} items, limit {LIMIT}, fn awaits one checkpoint; results consumed as a stream",
        N,
        _amap_variants(step),
    ),
    Case(
        "amap_no_checkpoint",
        f"{N:,} items, limit {LIMIT}, fn never yields; results consumed as a stream",
        N,
        _amap_variants(no_step),
    ),
    Case(
        "amap_memory",
        "amap over a 10,000,000-item generator, limit 100",
        10_000_000,
        [Variant("trine.amap (ordered)", amap_memory)],
        opt_in=True,
    ),
]
