"""Pipelines: source -> map(x+1) -> map(x*2) -> sink over 1,000,000 integers.

One case per buffer size (256, 16, 2 and 1 items), each timing, in one
process and interleaved:

- ``hand-written trio memory channels`` (the baseline): one task per stage,
  ``open_memory_channel(size)`` between stages, ``async with`` close discipline;
- ``trine`` with 1 and with 4 workers per stage, ``buffer=size`` on every
  stage and on the output (one-item buffers are trine's default for 1 worker);
- in the 256 case, ``aiostream`` (asyncio) and ``slurry`` (Trio) where they
  import and run.

``pipeline_memory`` runs trine with default buffers on 1,000,000 and
10,000,000 items in fresh processes and prints the peak RSS of each.

Measured here (2 shared cores, Python 3.11, trio 0.35, ``--repeat 5``,
medians)::

    buffers  variant                                  per item   ratio
    256      hand-written trio memory channels        14.70 us   1.00x
             trine, 1 worker/stage                     1.28 us   0.09x  (11.5x faster)
             trine, 4 workers/stage                    1.30 us   0.09x  (= 1 worker)
             aiostream 0.8 (asyncio), 1 task/stage     3.38 us   0.23x  (trine 2.6x faster)
             slurry 1.3 (trio)                        24.04 us   1.64x  (trine 19x faster)
    16       hand-written trio memory channels        14.77 us   1.00x
             trine, 1 worker/stage                     2.03 us   0.14x  (7.3x faster)
             trine, 4 workers/stage                    2.06 us   0.14x
    2        hand-written trio memory channels        14.84 us   1.00x
             trine, 1 worker/stage                     7.19 us   0.48x  (2.1x faster)
             trine, 4 workers/stage                    7.25 us   0.49x
    1        hand-written trio memory channels        14.68 us   1.00x
             trine, 1 worker/stage                    12.61 us   0.86x  (1.16x faster)
             trine, 4 workers/stage                   12.63 us   0.86x

    pipeline_memory: peak RSS 32.7 MiB for 1,000,000 items and 32.7 MiB for
    10,000,000 items (flat; default one-item buffers).

Why: every memory-channel send and receive is a trip through Trio's
scheduler (6 task steps and 2 scheduler passes per item here, whatever the
channel size). A trine worker yields only when its buffer is empty, the next
buffer is full or its function blocks, so items that are ready together move
in one trip. With one-item buffers a stage and the next can only take turns
(4 task steps and 2 passes per item: a little less than by hand); from two
items up the trips are shared, and with 256 one trip carries about 100 items.
Peak memory is bounded by the buffers, not by the length of the source.
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


async def trine_pipeline(workers: int, buffer: int) -> None:
    from trine import Pipeline

    pipe = (
        Pipeline.source(range(N))
        .map(inc, workers=workers, buffer=buffer)
        .map(dbl, workers=workers, buffer=buffer)
    )
    total = 0
    async with pipe.open(buffer=buffer) as out:
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


def _variants(buffer: int, *, peers: bool) -> list[Variant]:
    found = [
        Variant(
            f"hand-written trio memory channels ({buffer})",
            _trio_timed(lambda: hand_written(buffer)),
            baseline=True,
        ),
        Variant(
            f"trine, 1 worker/stage, buffer {buffer}",
            _trio_timed(lambda: trine_pipeline(1, buffer)),
        ),
        Variant(
            f"trine, 4 workers/stage, buffer {buffer}",
            _trio_timed(lambda: trine_pipeline(4, buffer)),
        ),
    ]
    if peers and installed("aiostream"):
        found.append(Variant("aiostream (asyncio), 1 task/stage", aiostream_run))
    if peers and _slurry_works():
        found.append(Variant("slurry (trio)", _trio_timed(slurry_pipeline)))
    return found


_MEMORY_SCRIPT = """
import resource, trio
from trine import Pipeline
async def main():
    # Default buffers: one item per worker.
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
        description="source -> map(x+1) -> map(x*2) -> sink, 1,000,000 ints, buffers of 256",
        per=N,
        variants=_variants(256, peers=True),
    ),
    *(
        Case(
            name=f"pipeline_1m_buffer{size}",
            description=f"the same with buffers of {size}" + note,
            per=N,
            variants=_variants(size, peers=False),
        )
        for size, note in ((16, ""), (2, ""), (1, " (trine's default for 1 worker)"))
    ),
    Case(
        name="pipeline_memory",
        description="peak RSS, 1M vs 10M items, default buffers (once each, fresh process)",
        per=1,
        variants=[
            Variant("trine 1,000,000 items", lambda: _peak_rss_kib(1_000_000)[0], baseline=True),
            Variant("trine 10,000,000 items", lambda: _peak_rss_kib(10_000_000)[0]),
        ],
    ),
]
