"""Pipelines: source → map(x+1) → map(x*2) → sink over 1,000,000 integers.

Variants, all in one process and interleaved:

- ``hand-written trio memory channels`` (the baseline): one task per stage,
  ``open_memory_channel(256)`` between stages, ``async with`` close discipline;
- ``trine`` with 1 and with 4 workers per stage (``buffer=256`` per stage,
  the same bound as the baseline's channels), and with default buffers
  (``buffer=workers=1``: every hop carries one item, so no chunking can happen);
- ``slurry`` (Trio) and ``aiostream`` (asyncio) where they import and run.

A separate case runs trine on 1,000,000 and 10,000,000 items in fresh
processes and prints the peak RSS of each (flat memory: the second must not
be bigger in proportion).

Measured here (2 shared cores, Python 3.11, trio 0.35, ``--repeat 5``, medians
of one run; the lead re-runs these)::

    variant                                       median    per item   ratio
    hand-written trio memory channels (buf 256)   22360ms   22.36 us   1.00x
    trine, 1 worker/stage, buffer 256              1668ms    1.67 us   0.07x  (13x faster)
    trine, 4 workers/stage, buffer 256             1660ms    1.66 us   0.07x  (= 1 worker)
    trine, default buffers (1 item/hop)           26490ms   26.49 us   1.18x
    aiostream (asyncio), 1 task/stage              4877ms    4.88 us   0.22x  (trine 2.9x faster)
    slurry 1.3 (trio)                             41977ms   41.98 us   1.88x

    pipeline_memory: peak RSS 27.7 MiB for 1,000,000 items and 27.7 MiB for
    10,000,000 items (flat; buffer=256 per stage).

Why: a memory-channel hop is a trip through Trio's scheduler per item per
stage. trine's stages hand over every item that is ready in one chunk and
wake the next stage only if it is parked, so with room to batch (a buffer of
more than one item) a trip is shared by up to ``buffer`` items. With the
default one-item buffers nothing can be shared and trine costs about what the
hand-written pipeline does. Peak memory is bounded by the buffers, not by the
length of the source (see the ``pipeline_memory`` case).
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
import time

import trio

from benchmarks._harness import Case, Variant, installed

N = 1_000_000
BUFFER = 256


def inc(x: int) -> int:
    return x + 1


def dbl(x: int) -> int:
    return x * 2


def _trio_timed(main):
    def run() -> float:
        box: list[float] = []

        async def wrapper() -> None:
            start = time.perf_counter()
            await main()
            box.append(time.perf_counter() - start)

        trio.run(wrapper)
        return box[0]

    return run


async def hand_written() -> None:
    send1, receive1 = trio.open_memory_channel[int](BUFFER)
    send2, receive2 = trio.open_memory_channel[int](BUFFER)
    send3, receive3 = trio.open_memory_channel[int](BUFFER)

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


async def trine_pipeline(workers: int, buffer: int | None) -> None:
    from trine import Pipeline

    pipe = (
        Pipeline.source(range(N))
        .map(inc, workers=workers, buffer=buffer)
        .map(dbl, workers=workers, buffer=buffer)
    )
    total = 0
    async with pipe.open(buffer=buffer or workers) as out:
        async for item in out:
            total += item
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


variants = [
    Variant(
        "hand-written trio memory channels (buf 256)", _trio_timed(hand_written), baseline=True
    ),
    Variant("trine, 1 worker/stage, buffer 256", _trio_timed(lambda: trine_pipeline(1, BUFFER))),
    Variant("trine, 4 workers/stage, buffer 256", _trio_timed(lambda: trine_pipeline(4, BUFFER))),
    Variant("trine, default buffers (1 item/hop)", _trio_timed(lambda: trine_pipeline(1, None))),
]
if installed("aiostream"):
    variants.append(Variant("aiostream (asyncio), 1 task/stage", aiostream_run))
if _slurry_works():
    variants.append(Variant("slurry 1.3 (trio)", _trio_timed(slurry_pipeline)))


_MEMORY_SCRIPT = """
import resource, trio
from trine import Pipeline
async def main():
    pipe = Pipeline.source(range({n})).map(lambda x: x + 1, buffer=256).map(
        lambda x: x * 2, buffer=256)
    await pipe.run()
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
        description="source -> map(x+1) -> map(x*2) -> sink, 1,000,000 ints",
        per=N,
        variants=variants,
    ),
    Case(
        name="pipeline_memory",
        description="peak RSS, 1M vs 10M items (each measured once, in a fresh process)",
        per=1,
        variants=[
            Variant("trine 1,000,000 items", lambda: _peak_rss_kib(1_000_000)[0], baseline=True),
            Variant("trine 10,000,000 items", lambda: _peak_rss_kib(10_000_000)[0]),
        ],
    ),
]
