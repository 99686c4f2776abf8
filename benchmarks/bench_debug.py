"""What ``trine.debug.watch_blocking`` costs a program it watches.

The stall detector is a Trio instrument: one Python call per task step
(``before_task_step``) and one per scheduler pass (``before_io_wait``), each
reading ``time.perf_counter``. Its overhead is therefore proportional to the
task steps a program takes, and a pipeline of trivial stages is the worst
honest case: almost nothing but steps.

Each variant is timed in CPU seconds of the benchmark's process
(``time.process_time``), so that other work on a shared machine does not
count: the watch's cost is CPU. Cases, each in one process and interleaved:

- ``watch_pipeline``: ``source -> map(x+1) -> map(x*2)`` over 50,000 integers
  with trine's default buffers (4 task steps per item, the most a pipeline
  takes), without the watch (the baseline), inside ``watch_blocking(0.1)``,
  and with a do-nothing instrument (Trio's own cost of calling any
  instrument, for scale);
- ``watch_pipeline_buffered``: the same with 64-item buffers (few steps per item);
- ``watch_steps``: 50,000 bare checkpoints, one step each: the cost per step.

Measured here (2 shared cores under heavy load from other work, which makes
every step about three times slower than on a quiet machine; Python 3.11,
trio 0.35, ``--repeat 7``, medians of CPU time)::

    watch_pipeline (default 1-item buffers, 4.0 steps/item)
      no watch                                   42.79 us/item  1.00x
      watch_blocking(0.1)                        50.70 us/item  1.18x
      a do-nothing instrument (Trio's share)     51.50 us/item  1.20x
    watch_pipeline_buffered (64-item buffers, 0.063 steps/item)
      no watch                                    6.10 us/item  1.00x
      watch_blocking(0.1)                         6.28 us/item  1.03x
    watch_steps (1 step/item)
      no watch                                    7.39 us/step  1.00x
      watch_blocking(0.1)                         9.30 us/step  1.26x

What it says: the watch costs what Trio charges for calling any instrument
with these two hooks (the do-nothing row; the two differ by less than the
noise), about a quarter of a bare step. So the overhead is proportional to
steps per item: within 5 % on a pipeline whose buffers let items move
together (3 % with 64-item buffers), but about 18 % on the worst case, a
pipeline of trivial stages with 1-item buffers, where every item is four
task steps and two scheduler passes and nothing else. No per-step
instrument can do better there; the detector already takes the fewest hook
calls that time every step (``after_task_step`` would add one per step).
"""

from __future__ import annotations

import time

import trio

import trine
import trine.debug
from benchmarks._harness import Case, Variant, run_trio

N = 50_000


def inc(x: int) -> int:
    return x + 1


def dbl(x: int) -> int:
    return x * 2


class _Nothing:
    """The detector's two hooks doing nothing, installed the same way: what Trio charges."""

    __slots__ = ("before_io_wait", "before_task_step")

    def __init__(self) -> None:
        self.before_task_step = lambda task: None
        self.before_io_wait = lambda timeout: None


stalls: list[trine.debug.Stall] = []


def _timed(main, *, watch: str):
    def run() -> float:
        box: list[float] = []

        async def wrapper() -> None:
            # CPU time of this process: the other work on a shared machine
            # does not count, and the watch's cost is all CPU.
            start = time.process_time()
            if watch == "watch":
                # A loaded machine can preempt a step for real: count, do not print.
                async with trine.debug.watch_blocking(0.1, on_stall=stalls.append):
                    await main()
            elif watch == "nothing":
                trio.lowlevel.add_instrument(_Nothing())
                await main()
            else:
                await main()
            box.append(time.process_time() - start)

        run_trio(wrapper)
        return box[0]

    return run


def _pipeline(buffer: int | None):
    async def main() -> None:
        if buffer is None:
            pipe = trine.Pipeline.source(range(N)).map(inc).map(dbl)
            await pipe.run()
        else:
            pipe = trine.Pipeline.source(range(N)).map(inc, buffer=buffer).map(dbl, buffer=buffer)
            async with pipe.open(buffer=buffer) as out:
                async for _ in out:
                    pass

    return main


async def _checkpoints() -> None:
    checkpoint = trio.lowlevel.checkpoint
    for _ in range(N):
        await checkpoint()


def _variants(main, *, nothing: bool) -> list[Variant]:
    found = [
        Variant("no watch", _timed(main, watch="none"), baseline=True),
        Variant("watch_blocking(0.1)", _timed(main, watch="watch")),
    ]
    if nothing:
        found.append(
            Variant("a do-nothing instrument (Trio's share)", _timed(main, watch="nothing"))
        )
    return found


CASES = [
    Case(
        "watch_pipeline",
        "watch_blocking around a pipeline of two trivial stages, default buffers",
        N,
        _variants(_pipeline(None), nothing=True),
    ),
    Case(
        "watch_pipeline_1",
        "the same with 1-item buffers (the old default, the worst case)",
        N,
        _variants(_pipeline(1), nothing=True),
    ),
    Case(
        "watch_steps",
        "bare checkpoints, one task step each",
        N,
        _variants(_checkpoints, nothing=False),
    ),
]
