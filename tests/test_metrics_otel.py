"""OpenTelemetryExporter through the real SDK, read with its in-memory metric reader."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import trio
import trio.testing

import trine
import trine.metrics
from _extras import require

require("opentelemetry.metrics", extra="otel")
sdk_metrics = require("opentelemetry.sdk.metrics", extra="test")
sdk_export = require("opentelemetry.sdk.metrics.export", extra="test")


@pytest.fixture
def reader() -> Any:
    return sdk_export.InMemoryMetricReader()


@pytest.fixture
def exporter(reader: Any) -> trine.metrics.OpenTelemetryExporter:
    provider = sdk_metrics.MeterProvider(metric_readers=[reader])
    return trine.metrics.OpenTelemetryExporter(meter_provider=provider)


def metrics(reader: Any) -> dict[str, Any]:
    """The metrics the reader collects now, by name (every one from the "trine" meter)."""
    data = reader.get_metrics_data()
    found: dict[str, Any] = {}
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            assert scope.scope.name == "trine"
            assert scope.scope.version == trine.__version__
            for metric in scope.metrics:
                found[metric.name] = metric
    return found


def points(metric: Any) -> dict[frozenset[tuple[str, Any]], float]:
    return {frozenset(point.attributes.items()): point.value for point in metric.data.data_points}


def attrs_(**labels: Any) -> frozenset[tuple[str, Any]]:
    return frozenset(labels.items())


async def test_instruments_by_kind_unit_and_attributes(
    exporter: trine.metrics.OpenTelemetryExporter, reader: Any
) -> None:
    """Counters are monotonic sums, counts now non-monotonic sums, rates gauges, with units."""
    bulkhead = trine.Bulkhead(3)
    breaker = trine.CircuitBreaker(name="api", failure_rate=0.9, minimum_calls=2)
    exporter.register(bulkhead, name="db")
    exporter.register(breaker)

    async def fail() -> None:
        raise OSError("down")

    await breaker.call(trio.sleep, 0)
    with pytest.raises(OSError, match="down"):
        await breaker.call(fail)
    async with bulkhead.hold():
        found = metrics(reader)
    in_use = found["trine.limiter.in_use"]
    assert in_use.unit == "{permit}"
    assert isinstance(in_use.data, sdk_export.Sum)
    assert not in_use.data.is_monotonic
    assert points(in_use) == {attrs_(name="db", type="Bulkhead"): 1}
    calls = found["trine.breaker.calls"]
    assert isinstance(calls.data, sdk_export.Sum)
    assert calls.data.is_monotonic
    assert points(calls) == {
        attrs_(name="api", outcome="success"): 1,
        attrs_(name="api", outcome="failure"): 1,
        attrs_(name="api", outcome="ignored"): 0,
        attrs_(name="api", outcome="cancelled"): 0,
        attrs_(name="api", outcome="rejected"): 0,
    }
    rate = found["trine.breaker.failure_rate"]
    assert isinstance(rate.data, sdk_export.Gauge)
    assert rate.unit == "1"
    assert points(rate) == {attrs_(name="api"): 0.5}


async def test_a_summary_is_a_gauge_of_quantiles_with_count_and_sum(
    exporter: trine.metrics.OpenTelemetryExporter,
    reader: Any,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """trine.pipeline.stage.duration: quantile gauge plus .count and .sum counters, in seconds."""

    async def slow(x: int) -> int:
        await trio.sleep(0.25)
        return x

    pipe = trine.Pipeline.source(range(4)).map(slow, name="slow")
    exporter.register(pipe, name="etl")
    await pipe.run()
    found = metrics(reader)
    duration = found["trine.pipeline.stage.duration"]
    assert duration.unit == "s"
    assert points(duration) == {
        attrs_(name="etl", stage="slow", quantile=q): 0.25 for q in (0.5, 0.95, 0.99)
    }
    assert points(found["trine.pipeline.stage.duration.count"]) == {
        attrs_(name="etl", stage="slow"): 4
    }
    assert points(found["trine.pipeline.stage.duration.sum"]) == {
        attrs_(name="etl", stage="slow"): 1.0
    }
    assert found["trine.pipeline.stage.duration.sum"].unit == "s"
    assert points(found["trine.pipeline.stage.items_out"]) == {attrs_(name="etl", stage="slow"): 4}


async def test_register_new_and_events_through_the_sdk(
    exporter: trine.metrics.OpenTelemetryExporter,
    reader: Any,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Objects made in register_new are read, and their hook events counted."""
    with exporter.register_new():
        retry = trine.Retry(3, backoff=trine.Backoff.constant(2.0), name="fetch")
        graph = trine.TaskGraph()

    async def fail() -> None:
        raise OSError("down")

    with pytest.raises(OSError, match="down"):
        await retry.call(fail)
    graph.add(trio.sleep, 1, name="a")
    await graph.run()
    found = metrics(reader)
    assert points(found["trine.retry.give_ups"]) == {attrs_(name="fetch"): 1}
    assert points(found["trine.retry.delay.count"]) == {attrs_(name="fetch"): 2}
    assert points(found["trine.retry.delay.sum"]) == {attrs_(name="fetch"): 4.0}
    assert points(found["trine.graph.nodes"])[attrs_(name="", status="succeeded")] == 1


async def test_close_stops_reporting(
    exporter: trine.metrics.OpenTelemetryExporter, reader: Any
) -> None:
    """After close() the instruments observe nothing."""
    exporter.register(trine.SingleFlight(), name="f")
    assert points(metrics(reader)["trine.single_flight.runs"]) == {attrs_(name="f"): 0}
    exporter.close()
    assert "trine.single_flight.runs" not in metrics(reader)


async def test_a_collection_from_another_thread_reads_in_the_trio_thread(
    exporter: trine.metrics.OpenTelemetryExporter, reader: Any
) -> None:
    """A reader in another thread (as the periodic reader is) gets the same figures."""
    exporter.register(trine.KeyedLimiter(2, total=5), name="k")
    data = await trio.to_thread.run_sync(reader.get_metrics_data)
    names = {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert points(names["trine.limiter.limit"]) == {attrs_(name="k", type="KeyedLimiter"): 5}
    assert points(names["trine.limiter.keys"]) == {attrs_(name="k", type="KeyedLimiter"): 0}


def test_the_global_meter_provider_is_the_default() -> None:
    """OpenTelemetryExporter() uses opentelemetry.metrics.get_meter_provider()."""
    trine.metrics.OpenTelemetryExporter().close()


def test_bad_meter_provider_is_refused_by_name() -> None:
    """A meter_provider that is not one is a TypeError naming it."""
    with pytest.raises(
        TypeError, match=r"^meter_provider must be an opentelemetry.metrics.MeterProvider, got 1$"
    ):
        trine.metrics.OpenTelemetryExporter(meter_provider=1)  # type: ignore[arg-type]


def test_without_opentelemetry_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ImportError names the extra."""
    monkeypatch.setitem(sys.modules, "opentelemetry.metrics", None)
    with pytest.raises(
        ImportError,
        match=r"^OpenTelemetryExporter needs opentelemetry-api: pip install 'trine\[otel\]'$",
    ):
        trine.metrics.OpenTelemetryExporter()


async def test_the_new_figures_through_the_sdk(
    exporter: trine.metrics.OpenTelemetryExporter,
    reader: Any,
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Rate-limiter waits, give-ups by reason and a Policy's name on its Retry's events."""
    with exporter.register_new():
        rate = trine.RateLimiter(1, 1.0, burst=1, name="api")
        retry = trine.Retry(2, backoff=trine.Backoff.constant(1.0))
        policy = trine.Policy(retry=retry, rate=rate, name="api-policy")

    async def fail() -> None:
        raise OSError("down")

    with pytest.raises(OSError, match="down"):
        await policy.call(fail)  # admitted at t=0, the retry waits 1 s then is admitted at once
    await rate.acquire()  # waits until t=2
    found = metrics(reader)
    assert found["trine.rate_limiter.wait_time"].unit == "s"
    assert points(found["trine.rate_limiter.waited"]) == {attrs_(name="api", type="RateLimiter"): 1}
    assert points(found["trine.rate_limiter.wait_time"]) == {
        attrs_(name="api", type="RateLimiter"): 1.0
    }
    assert points(found["trine.retry.gave_up"]) == {attrs_(name="api-policy", reason="attempts"): 1}
