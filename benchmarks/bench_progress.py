"""What ``trine.progress`` and ``progress=True`` cost the run they show.

The display reads ``statistics()`` once a frame (every 0.25 s), so a pipeline
or a graph runs as it would unwatched; ``progress=True`` on ``map_all`` wraps
each call in a counting coroutine, but only when a display draws. Each
variant is timed in CPU seconds of the benchmark's process
(``time.process_time``), the drawing included. Cases, each in one process
and interleaved:

- ``progress_pipeline``: ``source -> map(x+1) -> map(x*2) -> map(x-1)`` over
  100,000 integers at the default buffers: no display; ``trine.progress``
  drawing on a terminal (a rich console forced to be one, writing to a
  string); ``trine.progress`` with stdout not a terminal (draws nothing).
- ``progress_map_all``: ``map_all`` of a trivial async function over 100,000
  integers, ``limit=8``: ``progress=False``; ``progress=True`` with stdout not
  a terminal; ``progress=True`` on a terminal (stdout replaced by a string
  that says it is one).

Measured here (2 shared cores under heavy load from other work; Python 3.11,
trio 0.35, rich 15, ``--repeat 5``, medians of CPU time)::

    progress_pipeline (0.077 steps/item)
      no display                                  6.23 us/item  1.00x
      trine.progress, drawing                     5.67 us/item  0.91x
      trine.progress, not a terminal              5.47 us/item  0.88x
    progress_map_all (0.008 steps/item)
      progress=False                              0.57 us/item  1.00x
      progress=True, not a terminal               0.56 us/item  0.98x
      progress=True, drawing                      0.96 us/item  1.69x

The pipeline's three rows differ by the noise of a loaded machine: the
display reads ``statistics()`` and draws a frame (a few milliseconds here)
four times a second, and touches nothing in between. Off a terminal it opens
no task at all. ``progress=True`` on a terminal wraps each call in one more
coroutine, 0.4 us here, which only a function that does nothing notices; off
a terminal the map runs unchanged.
"""

from __future__ import annotations

import io
import sys
import time

from rich.console import Console

import trine
from benchmarks._harness import Case, Variant, run_trio

N = 100_000


def _inc(x: int) -> int:
    return x + 1


def _dbl(x: int) -> int:
    return x * 2


def _dec(x: int) -> int:
    return x - 1


async def _trivial(x: int) -> int:
    return x


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _timed(main, *, stdout: io.StringIO | None = None):
    def run() -> float:
        box: list[float] = []

        async def wrapper() -> None:
            start = time.process_time()
            await main()
            box.append(time.process_time() - start)

        saved = sys.stdout
        if stdout is not None:
            sys.stdout = stdout
        try:
            run_trio(wrapper)
        finally:
            sys.stdout = saved
        return box[0]

    return run


def _pipeline(display: str):
    async def main() -> None:
        pipe = trine.Pipeline.source(range(N)).map(_inc).map(_dbl).map(_dec)
        if display == "none":
            await pipe.run()
            return
        console = None
        if display == "terminal":
            console = Console(file=io.StringIO(), force_terminal=True, width=80)
        async with trine.progress(pipe, console=console):
            await pipe.run()

    return main


def _map_all(progress: bool):
    async def main() -> None:
        await trine.map_all(_trivial, range(N), limit=8, progress=progress)

    return main


CASES = [
    Case(
        "progress_pipeline",
        "a three-stage pipeline of trivial stages, with and without trine.progress",
        N,
        [
            Variant("no display", _timed(_pipeline("none")), baseline=True),
            Variant("trine.progress, drawing", _timed(_pipeline("terminal"))),
            Variant(
                "trine.progress, not a terminal",
                _timed(_pipeline("default"), stdout=io.StringIO()),
            ),
        ],
    ),
    Case(
        "progress_map_all",
        "map_all of a trivial function, limit=8, with and without progress=True",
        N,
        [
            Variant("progress=False", _timed(_map_all(False)), baseline=True),
            Variant("progress=True, not a terminal", _timed(_map_all(True), stdout=io.StringIO())),
            Variant("progress=True, drawing", _timed(_map_all(True), stdout=_Terminal())),
        ],
    ),
]
