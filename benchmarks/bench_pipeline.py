"""Pipelines: source -> map(x+1) -> map(x*2) -> sink over 1,000,000 integers.

``pipeline_1m``, the goals of issue 10, side by side in one process and
interleaved, with **no tuning arguments** on the trine rows:

- ``hand-written trio memory channels`` of size 0, 1 and 64: one task per
  stage, ``async with`` close discipline. The baseline is the *fastest* of
  the three in each round (the functions are plain and quick, so one task per
  stage is the strongest hand-written pattern: more worker tasks, or a
  reorder heap to keep order, only add hops);
- ``trine``: the defaults; ``workers=4``; ``ordered=True, workers=4``;
  ``key=shard, workers=4``;
- ``aiostream`` (asyncio, ``stream.iterate | pipe.map | pipe.map``) and
  ``slurry`` (Trio, two ``Map`` sections), where they import and run.

``pipeline_buffers`` is the same trine pipeline with every buffer set to
0, 1, 16, 64 (the default) and 256, against channels of 64.
``pipeline_batch`` shows where ``batch(100)`` pays: before the per-item
stages (they then move lists) or after them (every item still hops).
``pipeline_keys`` compares ``key=`` (the dispatcher) with the per-key slots
of ``ordered=True`` and ``per_key=2``; ``pipeline_zip`` compares
``trine.zip`` with the hand-written zip of two channels. One run under heavy
load (``--repeat 3``; the times are noisy, steps per item are not)::

    pipeline_keys                                   per item   ratio  steps/item
    trine, key= (the dispatcher, per-key order)      32.41us   1.00x       0.108
    trine, key=, ordered=True (slots, per_key=1)     46.33us   1.43x       0.062
    trine, key=, per_key=2                           50.44us   1.56x       0.062
    trine, key=, per_key=2, ordered=True             38.48us   1.19x       0.062
    pipeline_zip
    hand-written: two channels (64), one pairing    165.65us   1.00x       4.000
    trine.zip                                        13.84us   0.08x       0.062
``pipeline_memory`` runs the default pipeline on 1,000,000 and 10,000,000
items in fresh processes and prints the peak RSS of each.

Measured 2026-12-01 on the shared 2-core machine (Python 3.11, trio 0.35,
``python -m benchmarks pipeline_1m --repeat 3``, medians; the test suite ran
on the other core part of the time; steps per item do not move with load)::

    variant                                     per item   ratio  steps/item
    hand-written trio memory channels (0)       39.59us    1.08x       6.000
    hand-written trio memory channels (1)       36.97us    1.01x       6.000
    hand-written trio memory channels (64)      36.69us    1.00x       6.000
    trine, defaults                              3.63us    0.10x       0.062
    trine, workers=4                             3.94us    0.11x       0.092
    trine, ordered=True, workers=4               5.38us    0.15x       0.092
    trine, key=shard, workers=4                  5.95us    0.16x       0.185
    aiostream (asyncio), map chain               8.09us    0.22x           -
    slurry (trio), two Map sections             78.63us    2.14x       7.000

So, untuned: 10x faster than the fastest hand-written channels, 6.8x with
``ordered=True, workers=4``, 6.2x with ``key=shard, workers=4``, 2.2x faster
than aiostream on asyncio and 22x faster than slurry. ``pipeline_memory``:
peak RSS 32.1 MiB for 1,000,000 items and 32.1 MiB for 10,000,000.
``pipeline_batch`` (same machine, under load): no batch 3.54 us per item,
``batch(100)`` after the maps 3.42 us (every item still hops), ``batch(100)``
before maps of lists 1.03 us (0.29x).

Why: every memory-channel send and receive is a trip through Trio's
scheduler (6 task steps per item here, whatever the channel size). A trine
worker yields only when its buffer is empty, the next buffer is full or its
function blocks, so items that are ready together move in one trip: with the
default buffers of 64, about 0.06 steps per item. Peak memory is bounded by
the buffers, not by the length of the source.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import time

import trio

from benchmarks._harness import Case, Variant, installed, run_trio

N = 1_000_000
CHANNEL_SIZES = (0, 1, 64)


def inc(x: int) -> int:
    return x + 1


def dbl(x: int) -> int:
    return x * 2


def shard(x: int) -> int:
    return x % 16


def _trio_timed(main):
    def run() -> float:
        box: list[float] = []

        async def wrapper() -> None:
            start = time.perf_counter()
            await main()
            box.append(time.perf_counter() - start)

        run_trio(wrapper)
        return box[0]

    return run


async def hand_written(buffer: int) -> None:
    send1, receive1 = trio.open_memory_channel[int](buffer)
    send2, receive2 = trio.open_memory_channel[int](buffer)
    send3, receive3 = trio.open_memory_channel[int](buffer)

    async def source() -> None:
        async with send1:
            for i in range(N):
                await send1.send(i)

    async def stage(fn, receive, send) -> None:
        async with receive, send:
            async for item in receive:
                await send.send(fn(item))

    total = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(source)
        nursery.start_soon(stage, inc, receive1, send2)
        nursery.start_soon(stage, dbl, receive2, send3)
        async with receive3:
            async for item in receive3:
                total += item
    assert total == N * (N + 1)


# The latest time of each channel size in this round: the baseline row, run
# after them in every round, is the fastest of the three.
_latest_channels: dict[int, float] = {}


def _channels(size: int):
    timed = _trio_timed(lambda: hand_written(size))

    def run() -> float:
        _latest_channels[size] = seconds = timed()
        return seconds

    return run


def _fastest_channels() -> float:
    return min(_latest_channels[size] for size in CHANNEL_SIZES)


async def trine_pipeline(buffer: int | None = None, **options) -> None:
    from trine import Pipeline

    if buffer is not None:
        options["buffer"] = buffer
    pipe = Pipeline.source(range(N)).map(inc, **options).map(dbl, **options)
    total = 0
    async with pipe.open(**({} if buffer is None else {"buffer": buffer})) as out:
        async for item in out:
            total += item
    assert total == N * (N + 1)


async def trine_batched(*, before: bool) -> None:
    from trine import Pipeline

    total = 0
    if before:
        pipe = (
            Pipeline.source(range(N))
            .batch(100)
            .map(lambda batch: [inc(x) for x in batch])
            .map(lambda batch: [dbl(x) for x in batch])
        )
    else:
        pipe = Pipeline.source(range(N)).map(inc).map(dbl).batch(100)
    async with pipe.open() as out:
        async for batch in out:
            total += sum(batch)
    assert total == N * (N + 1)


async def slurry_pipeline() -> None:
    import slurry
    from slurry.sections import Map

    async def numbers():
        for i in range(N):
            yield i

    total = 0
    async with (
        slurry.Pipeline.create(Map(inc, source=numbers()), Map(dbl)) as pipeline,
        pipeline.tap() as tap,
    ):
        async for item in tap:
            total += item
    assert total == N * (N + 1)


def aiostream_run() -> float:
    from aiostream import pipe, stream

    async def main() -> float:
        start = time.perf_counter()
        xs = stream.iterate(range(N)) | pipe.map(inc) | pipe.map(dbl)
        total = 0
        async with xs.stream() as streamer:
            async for item in streamer:
                total += item
        assert total == N * (N + 1)
        return time.perf_counter() - start

    return asyncio.run(main())


def _slurry_works() -> bool:
    if not installed("slurry"):
        return False
    try:
        import slurry  # noqa: F401
        from slurry.sections import Map  # noqa: F401
    except Exception:
        return False
    return True


def _goal_variants() -> list[Variant]:
    found = [
        Variant(f"hand-written trio memory channels ({size})", _channels(size))
        for size in CHANNEL_SIZES
    ]
    found += [
        Variant("fastest of the three rows above (baseline)", _fastest_channels, baseline=True),
        Variant("trine, defaults", _trio_timed(lambda: trine_pipeline())),
        Variant("trine, workers=4", _trio_timed(lambda: trine_pipeline(workers=4))),
        Variant(
            "trine, ordered=True, workers=4",
            _trio_timed(lambda: trine_pipeline(workers=4, ordered=True)),
        ),
        Variant(
            "trine, key=shard, workers=4",
            _trio_timed(lambda: trine_pipeline(workers=4, key=shard)),
        ),
    ]
    if installed("aiostream"):
        found.append(Variant("aiostream (asyncio), map chain", aiostream_run))
    if _slurry_works():
        found.append(Variant("slurry (trio), two Map sections", _trio_timed(slurry_pipeline)))
    return found


N_FLOW = 200_000


async def trine_keyed(**options) -> None:
    from trine import Pipeline

    pipe = Pipeline.source(range(N_FLOW)).map(inc, key=shard, workers=4, **options)
    total = 0
    async with pipe.open() as out:
        async for item in out:
            total += item
    assert total == N_FLOW * (N_FLOW + 1) // 2


async def hand_written_zip() -> None:
    """Two producers into channels of 64, one task pairing them up: the hand-written zip."""
    send_a, receive_a = trio.open_memory_channel[int](64)
    send_b, receive_b = trio.open_memory_channel[int](64)

    async def produce(send) -> None:
        async with send:
            for i in range(N_FLOW):
                await send.send(i)

    total = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce, send_a)
        nursery.start_soon(produce, send_b)
        async with receive_a, receive_b:
            while True:
                try:
                    a = await receive_a.receive()
                    b = await receive_b.receive()
                except trio.EndOfChannel:
                    break
                total += a + b
    assert total == N_FLOW * (N_FLOW - 1)


async def trine_zip() -> None:
    import trine

    total = 0
    pipe = trine.zip(trine.Pipeline.source(range(N_FLOW)), trine.Pipeline.source(range(N_FLOW)))
    async with pipe.open() as out:
        async for a, b in out:
            total += a + b
    assert total == N_FLOW * (N_FLOW - 1)


_MEMORY_SCRIPT = """
import resource, trio
from trine import Pipeline
async def main():
    # No tuning arguments: the default buffers.
    await Pipeline.source(range({n})).map(lambda x: x + 1).map(lambda x: x * 2).run()
trio.run(main)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@functools.cache
def _peak_rss_kib(n: int) -> tuple[float, int]:
    start = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT.format(n=n)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    elapsed = time.perf_counter() - start
    peak = int(output.split()[-1])
    print(f"    [{n:>10,} items: peak RSS {peak / 1024:.1f} MiB in {elapsed:.1f} s]")
    return elapsed, peak


CASES = [
    Case(
        name="pipeline_1m",
        description="source -> map(x+1) -> map(x*2) -> sink, 1,000,000 ints, no tuning arguments",
        per=N,
        variants=_goal_variants(),
    ),
    Case(
        name="pipeline_buffers",
        description="the same trine pipeline with every buffer (and open's) set to one size",
        per=N,
        variants=[
            Variant(
                "hand-written trio memory channels (64)",
                _trio_timed(lambda: hand_written(64)),
                baseline=True,
            ),
            *(
                Variant(
                    f"trine, buffer={size}" + (" (the default)" if size == 64 else ""),
                    _trio_timed(lambda size=size: trine_pipeline(buffer=size)),
                )
                for size in (0, 1, 16, 64, 256)
            ),
        ],
    ),
    Case(
        name="pipeline_batch",
        description="where batch(100) pays: before the per-item stages, or after them",
        per=N,
        variants=[
            Variant("trine, no batch", _trio_timed(lambda: trine_pipeline()), baseline=True),
            Variant(
                "trine, map, map, then batch(100)",
                _trio_timed(lambda: trine_batched(before=False)),
            ),
            Variant(
                "trine, batch(100), then maps of lists",
                _trio_timed(lambda: trine_batched(before=True)),
            ),
        ],
    ),
    Case(
        name="pipeline_keys",
        description="map(x+1, key=x%16, workers=4), 200,000 ints: the dispatcher vs per_key slots",
        per=N_FLOW,
        variants=[
            Variant(
                "trine, key= (the dispatcher, per-key order)",
                _trio_timed(lambda: trine_keyed()),
                baseline=True,
            ),
            Variant(
                "trine, key=, ordered=True (slots, per_key=1)",
                _trio_timed(lambda: trine_keyed(ordered=True)),
            ),
            Variant("trine, key=, per_key=2", _trio_timed(lambda: trine_keyed(per_key=2))),
            Variant(
                "trine, key=, per_key=2, ordered=True",
                _trio_timed(lambda: trine_keyed(per_key=2, ordered=True)),
            ),
        ],
    ),
    Case(
        name="pipeline_zip",
        description="zip two sources of 200,000 ints and sum the pairs",
        per=N_FLOW,
        variants=[
            Variant(
                "hand-written: two channels (64), one pairing task",
                _trio_timed(hand_written_zip),
                baseline=True,
            ),
            Variant("trine.zip", _trio_timed(trine_zip)),
        ],
    ),
    Case(
        name="pipeline_memory",
        description="peak RSS, 1M vs 10M items, no tuning arguments (once each, fresh process)",
        per=1,
        variants=[
            Variant("trine 1,000,000 items", lambda: _peak_rss_kib(1_000_000)[0], baseline=True),
            Variant("trine 10,000,000 items", lambda: _peak_rss_kib(10_000_000)[0]),
        ],
    ),
]
