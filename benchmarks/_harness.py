"""Timing and reporting shared by every benchmark module.

Every case is printed as a table: the median time of each variant over
``--repeat`` interleaved runs (in an order that changes every round), the
time per item, the ratio to the baseline,
and two figures that do not move with machine noise, taken in one extra,
untimed run of each variant:

- **steps/item**: Trio task steps per item, counted by a
  :class:`trio.abc.Instrument` (:class:`StepCounter`). Every channel hop or
  checkpoint is one step, a trip through the scheduler, so this says *why* one
  variant is faster than another. A variant counts its steps only if it starts
  Trio through :func:`run_trio` (asyncio peers show ``-``).
- **calls/item** (cases with ``count_calls=True``, or ``--calls``): Python
  function calls per item, counted with :func:`sys.setprofile`.
"""

from __future__ import annotations

import gc
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import trio

__all__ = ["Case", "StepCounter", "Variant", "installed", "run_case", "run_trio", "timed"]


@dataclass(frozen=True)
class Variant:
    """One way of doing the case's work.

    ``run`` does the work once and returns the seconds it took (it times
    itself, so that set-up such as ``trio.run`` start-up can be left out).
    """

    label: str
    run: Callable[[], float]
    baseline: bool = False


@dataclass(frozen=True)
class Case:
    """A named piece of work and the variants that do it."""

    name: str
    description: str
    per: int
    """How many items one run handles, to report a per-item cost."""
    variants: list[Variant] = field(default_factory=list)
    opt_in: bool = False
    """Run only when named on the command line (for slow cases)."""
    count_calls: bool = False
    """Also count Python calls per item (slow: one extra profiled run per variant)."""
    teardown: Callable[[], object] | None = None
    """Called once the case is done, counted or not (e.g. to drop its cached inputs)."""


class StepCounter(trio.abc.Instrument):
    """Counts Trio task steps: each time a task is resumed by the scheduler."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1


# The counter of the untimed counting run, or None while timing: an installed
# instrument costs a Python call per step, which would tilt the timings.
_counter: StepCounter | None = None


def run_trio(
    async_fn: Callable[..., Coroutine[Any, Any, Any]], *args: object, **kwargs: Any
) -> Any:
    """``trio.run(async_fn, *args, **kwargs)``, with the step counter during the counting run."""
    if _counter is not None:
        kwargs["instruments"] = [*kwargs.get("instruments", ()), _counter]
    return trio.run(async_fn, *args, **kwargs)


def installed(module: str) -> bool:
    """Whether *module* can be imported (peer libraries are optional)."""
    return importlib.util.find_spec(module) is not None


def _count(variant: Variant, *, calls: bool) -> tuple[int | None, int | None]:
    """Run *variant* once, untimed, and return (task steps, Python calls) it took."""
    global _counter
    counter = _counter = StepCounter()
    call_count = 0

    def profile(frame: FrameType, event: str, arg: object) -> None:
        nonlocal call_count
        if event == "call":
            call_count += 1

    if calls:
        sys.setprofile(profile)
    try:
        variant.run()
    finally:
        sys.setprofile(None)
        _counter = None
    return (counter.steps or None, call_count if calls else None)


def run_case(
    case: Case, *, repeat: int, calls: bool = False
) -> list[tuple[str, float, float | None]]:
    """Run every variant *repeat* times, interleaved, count steps once, and print a table.

    Returns ``(label, median seconds, ratio to baseline)`` per variant.
    """
    try:
        return _run_case(case, repeat=repeat, calls=calls)
    finally:
        if case.teardown is not None:
            case.teardown()


def _run_case(case: Case, *, repeat: int, calls: bool) -> list[tuple[str, float, float | None]]:
    samples: dict[str, list[float]] = {v.label: [] for v in case.variants}
    variants = list(case.variants)
    for round_ in range(repeat):
        # A run leaves the allocator and the caches in a state the next run
        # pays for (measured: whichever of two equal loops runs second is up
        # to 10 % slower), so the order changes every round: every other round
        # runs backwards, and each pair of rounds starts one variant later.
        # Each variant then runs first, last, and after each of the others.
        shift = (round_ // 2) % len(variants)
        order = variants[shift:] + variants[:shift]
        if round_ % 2:
            order.reverse()
        for variant in order:
            gc.collect()
            samples[variant.label].append(variant.run())
    counts = {v.label: _count(v, calls=calls or case.count_calls) for v in case.variants}
    medians = {label: statistics.median(values) for label, values in samples.items()}
    baseline = next((v for v in case.variants if v.baseline), None)
    base = medians[baseline.label] if baseline else None
    show_calls = calls or case.count_calls
    print(f"\n{case.name}: {case.description}")
    header = f"  {'variant':<44} {'median':>10} {'per item':>10} {'ratio':>7} {'steps/item':>11}"
    print(header + (f" {'calls/item':>11}" if show_calls else ""))
    rows: list[tuple[str, float, float | None]] = []
    for variant in case.variants:
        median = medians[variant.label]
        ratio = median / base if base else None
        per_item = median / case.per * 1e6
        ratio_text = f"{ratio:6.2f}x" if ratio is not None else "      -"
        steps, call_count = counts[variant.label]
        steps_text = f"{steps / case.per:11.3f}" if steps is not None else f"{'-':>11}"
        line = (
            f"  {variant.label:<44} {median * 1e3:8.1f}ms {per_item:8.2f}us {ratio_text}"
            f" {steps_text}"
        )
        if show_calls:
            line += f" {call_count / case.per:11.1f}" if call_count is not None else f" {'-':>11}"
        print(line)
        rows.append((variant.label, median, ratio))
    return rows


def timed(fn: Callable[[], object]) -> float:
    """Seconds *fn* takes (wall clock: this is a benchmark, not a test)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpu_timed(fn: Callable[[], object]) -> float:
    """CPU seconds this process spends in *fn*: what other jobs on the machine do not add to.

    Only for work that runs in this process (no subprocesses, no real sleeps).
    """
    start = time.process_time()
    fn()
    return time.process_time() - start
