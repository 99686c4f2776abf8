"""trine.metrics without its optional libraries: the table of metrics and what it costs."""

from __future__ import annotations

import gc
import pathlib
import re
import subprocess
import sys
from typing import Any

import pytest

import trine
import trine.metrics
from trine.metrics._readers import distribution_of_counts, reader_for, supported_types

ROOT = pathlib.Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide" / "observing.rst"


def test_importing_trine_imports_no_metrics_library() -> None:
    """Importing trine, trine.metrics and trine.debug loads neither metrics library."""
    code = (
        "import sys, trine, trine.metrics, trine.debug\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('prometheus_client', 'opentelemetry'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_trine_does_not_import_its_faces() -> None:
    """The core never imports trine.metrics or trine.debug (DESIGN.md's layers)."""
    code = (
        "import sys, trine\n"
        "assert 'trine.metrics' not in sys.modules\n"
        "assert 'trine.debug' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_names_follow_the_convention() -> None:
    """``trine.<kind>.<measure>``, lower case; ``name`` is the first label of every metric."""
    for family in trine.metrics.FAMILIES:
        assert re.fullmatch(r"trine(\.[a-z_]+){2,3}", family.name), family.name
        assert family.labels[0] == "name", family.name
        assert family.prometheus_name == family.name.replace(".", "_") + (
            "_seconds" if family.unit == "s" else ""
        )


def test_prometheus_names_do_not_collide() -> None:
    """No two metrics share a Prometheus name, with the suffixes their samples add."""
    seen: dict[str, str] = {}
    for family in trine.metrics.FAMILIES:
        base = family.prometheus_name
        names = {
            "counter": [base, f"{base}_total", f"{base}_created"],
            "summary": [base, f"{base}_count", f"{base}_sum", f"{base}_created"],
        }.get(family.kind, [base])
        for name in names:
            assert name not in seen, f"{family.name} and {seen[name]} are both {name}"
            seen[name] = family.name


def _objects() -> list[object]:
    async def load_many(keys: list[int]) -> list[int]:
        return keys

    async def connect() -> object:
        return object()

    return [
        trine.CircuitBreaker(),
        trine.Bulkhead(1),
        trine.WeightedSemaphore(1),
        trine.PriorityLimiter(1),
        trine.KeyedLimiter(1),
        trine.AdaptiveLimiter(initial=1, max_limit=2),
        trine.RateLimiter(1),
        trine.SlidingWindowLimiter(1, 1.0),
        trine.Retry(),
        trine.RetryBudget(),
        trine.Pipeline.source([1]).map(lambda x: x),
        trine.TaskGraph(),
        trine.AsyncCache[int, int](1),
        trine.SingleFlight(),
        trine.Batcher(load_many),
        trine.ResourcePool(connect, max_size=1),
    ]


async def test_every_figure_read_is_in_the_table() -> None:
    """Each reader yields only metrics of its own kind from the table, with the table's labels."""
    objects = _objects()
    assert {type(obj) for obj in objects} == set(supported_types())
    by_name = {family.name: family for family in trine.metrics.FAMILIES}
    produced: set[str] = set()
    for obj in objects:
        found = reader_for(obj)
        assert found is not None
        owner, reader = found
        for name, labels, _ in reader(obj):
            family = by_name[name]
            assert family.owner == owner
            assert family.source == "statistics"
            assert len(labels) == len(family.labels) - 1, name
            produced.add(name)
    # Not read from idle objects: a rate below minimum_calls, a shape while not running.
    unread = {"trine.breaker.failure_rate", "trine.pipeline.stage.workers"}
    unread.add("trine.pipeline.stage.buffer_size")
    statistics = {f.name for f in trine.metrics.FAMILIES if f.source == "statistics"}
    assert statistics - produced == unread


def test_batch_sizes_give_exact_quantiles() -> None:
    """``{size: batches}`` becomes count, sum and the sizes at p50, p95, p99."""
    summary = distribution_of_counts({1: 5, 10: 4, 100: 1})
    assert summary.count == 10
    assert summary.total == 5 + 40 + 100
    assert summary.quantiles == ((0.5, 1.0), (0.95, 10.0), (0.99, 10.0))
    assert distribution_of_counts({}).quantiles == ()


def _prometheus_sample_name(family: trine.metrics.Family) -> str:
    return family.prometheus_name + ("_total" if family.kind == "counter" else "")


def test_the_guide_lists_every_metric() -> None:
    """docs/guide/observing.rst's table: one row per metric, in order, as the code has it."""
    row = re.compile(
        r"^   \* - ``(trine\.[a-z_.]+)``\n"
        r"     - ``(\w+)``\n"
        r"     - (\w+)\n"
        r"     - ``(\S+)``\n"
        r"     - (.+)\n"
        r"     - (.+)\n",
        re.M,
    )
    table = row.findall(GUIDE.read_text())
    expected = [
        (
            family.name,
            _prometheus_sample_name(family),
            family.kind,
            family.unit,
            ", ".join(f"``{label}``" for label in family.labels),
            family.description,
        )
        for family in trine.metrics.FAMILIES
    ]
    assert table == expected


def test_an_exporter_refuses_what_it_cannot_read() -> None:
    """register() of an object without metrics says which objects it takes."""
    exporter: Any = trine.metrics.Exporter()
    with pytest.raises(
        TypeError, match=r"^obj must be a trine object with metrics \(CircuitBreaker, Bulkhead, "
    ):
        exporter.register(trine.Chaos())
    exporter.register(trine.Policy())  # no guards with figures: nothing to register


async def test_register_new_takes_every_type_it_reads() -> None:
    """Every type with a reader can be made inside register_new() and is held there weakly
    (a ResourcePool could not be weakly referenced: its constructor raised TypeError)."""
    exporter = trine.metrics.Exporter()
    with exporter.register_new():
        objects = _objects()
    assert {type(obj) for obj in objects} == set(supported_types())
    for obj in objects:
        exporter.unregister(obj)  # raises ValueError if it was not registered
    with exporter.register_new():
        objects = _objects()
    del obj, objects
    gc.collect()
    assert not exporter._entries  # held weakly: gone with the objects
