"""PrometheusExporter: trine's figures as a prometheus-client collector."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeAlias, cast, final

from trine._util import describe

from ._exporter import Exporter
from ._families import FAMILIES, Family
from ._optional import import_optional
from ._readers import Distribution

_Found: TypeAlias = "list[tuple[tuple[str, ...], float | Distribution]]"

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["PrometheusExporter"]


@final
class PrometheusExporter(Exporter):
    """Export trine's figures to Prometheus, through prometheus-client (``trine[prometheus]``).

    The exporter is a prometheus-client collector, registered in *registry* when it
    is made: each scrape of that registry (``prometheus_client.start_http_server``,
    ``generate_latest``, a framework's ``/metrics`` route) reads the registered
    objects' ``statistics()`` and the counted hook events, and nothing is done
    between scrapes::

        import prometheus_client
        import trine.metrics

        exporter = trine.metrics.PrometheusExporter()     # into prometheus_client.REGISTRY
        prometheus_client.start_http_server(9464, addr="127.0.0.1")
        breaker = trine.CircuitBreaker(name="api", hooks=[exporter.hook])
        exporter.register(breaker)
        # GET /metrics:  trine_breaker_calls_total{name="api",outcome="success"} 0.0 ...

    Names are the OpenTelemetry names with dots as underscores
    (``trine.breaker.calls`` is ``trine_breaker_calls_total``), ``_seconds``
    after durations; summaries give ``quantile`` 0.5, 0.95 and 0.99 with
    ``_count`` and ``_sum``.

    Args:
      registry: the ``prometheus_client.CollectorRegistry`` to join (by default
        ``prometheus_client.REGISTRY``, as prometheus-client's own metrics do).

    Raises:
      ImportError: if prometheus-client is not installed.
      TypeError: if *registry* is not a ``CollectorRegistry``.
      ValueError: if *registry* already has a collector with these names
        (another PrometheusExporter): one exporter per registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        client = import_optional(
            "prometheus_client",
            needed_by="PrometheusExporter",
            extra="prometheus",
            package="prometheus-client",
        )
        if registry is None:
            registry = cast("CollectorRegistry", client.REGISTRY)
        elif not isinstance(registry, client.CollectorRegistry):
            raise TypeError(
                f"registry must be a prometheus_client.CollectorRegistry, got {describe(registry)}"
            )
        super().__init__()
        self._client = client
        self._registry = registry
        self._collector: _Collector | None = _Collector(self)
        registry.register(cast("Collector", self._collector))

    def close(self) -> None:
        """Leave the registry: later scrapes show no trine metrics. Closing twice does nothing."""
        collector = self._collector
        if collector is not None:
            self._collector = None
            self._registry.unregister(cast("Collector", collector))

    def _metric(self, family: Family, found: _Found) -> Metric:
        """*family* as a prometheus-client metric family, with the points *found*."""
        core = self._client.metrics_core
        name = family.prometheus_name
        unit = "seconds" if family.unit == "s" else ""
        labels = family.labels
        if family.kind == "summary":
            summary = core.SummaryMetricFamily(name, family.description, labels=labels, unit=unit)
            for values, value in found:
                assert isinstance(value, Distribution)
                summary.add_metric(values, value.count, value.total)
                by_label = dict(zip(labels, values, strict=True))
                for q, quantile in value.quantiles:
                    summary.add_sample(summary.name, {**by_label, "quantile": repr(q)}, quantile)
            return cast("Metric", summary)
        make = core.CounterMetricFamily if family.kind == "counter" else core.GaugeMetricFamily
        metric = make(name, family.description, labels=labels, unit=unit)
        for values, value in found:
            assert not isinstance(value, Distribution)
            metric.add_metric(values, value)
        return cast("Metric", metric)

    def _metrics(self) -> Iterator[Metric]:
        points = self._collect()
        for family in FAMILIES:
            found = points.get(family.name)
            if found:
                yield self._metric(family, found)

    def _descriptions(self) -> Iterator[Metric]:
        for family in FAMILIES:
            yield self._metric(family, [])


class _Collector:
    """What the registry sees: ``collect()`` at each scrape, ``describe()`` for the names."""

    def __init__(self, exporter: PrometheusExporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Metric]:
        return self._exporter._metrics()

    def describe(self) -> Iterator[Metric]:
        return self._exporter._descriptions()
