"""Timing and reporting shared by every benchmark module."""

from __future__ import annotations

import gc
import importlib.util
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Case", "Variant", "installed", "run_case"]


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


def installed(module: str) -> bool:
    """Whether *module* can be imported (peer libraries are optional)."""
    return importlib.util.find_spec(module) is not None


def run_case(case: Case, *, repeat: int) -> list[tuple[str, float, float | None]]:
    """Run every variant *repeat* times, interleaved, and print a table.

    Returns ``(label, median seconds, ratio to baseline)`` per variant.
    """
    samples: dict[str, list[float]] = {v.label: [] for v in case.variants}
    for _ in range(repeat):
        for variant in case.variants:
            gc.collect()
            samples[variant.label].append(variant.run())
    medians = {label: statistics.median(values) for label, values in samples.items()}
    baseline = next((v for v in case.variants if v.baseline), None)
    base = medians[baseline.label] if baseline else None
    print(f"\n{case.name}: {case.description}")
    print(f"  {'variant':<44} {'median':>10} {'per item':>10} {'ratio':>7}")
    rows: list[tuple[str, float, float | None]] = []
    for variant in case.variants:
        median = medians[variant.label]
        ratio = median / base if base else None
        per_item = median / case.per * 1e6
        ratio_text = f"{ratio:6.2f}x" if ratio is not None else "      -"
        print(f"  {variant.label:<44} {median * 1e3:8.1f}ms {per_item:8.2f}us {ratio_text}")
        rows.append((variant.label, median, ratio))
    return rows


def timed(fn: Callable[[], object]) -> float:
    """Seconds *fn* takes (wall clock: this is a benchmark, not a test)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
