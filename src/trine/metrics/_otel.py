"""OpenTelemetryExporter: trine's figures as OpenTelemetry observable instruments."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, final

from trine._util import describe
from trine._version import __version__

from ._exporter import Exporter
from ._families import FAMILIES, Family
from ._optional import import_optional
from ._readers import Distribution

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

__all__ = ["OpenTelemetryExporter"]


@final
class OpenTelemetryExporter(Exporter):
    """Export trine's figures through the OpenTelemetry metrics API (``trine[otel]``).

    The exporter makes one asynchronous (observable) instrument per metric on a
    meter called ``"trine"``; the SDK's readers call them at each collection,
    and they read the registered objects' ``statistics()`` and the counted hook
    events then, so nothing is done between collections::

        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(otlp_exporter)])
        exporter = trine.metrics.OpenTelemetryExporter(meter_provider=provider)
        exporter.register(trine.Bulkhead(10), name="db")

    Counters are ObservableCounters, counts of things now ObservableUpDownCounters,
    other values now ObservableGauges. The API has no asynchronous histogram, so
    a summary (``trine.pipeline.stage.duration``, ...) is three instruments: an
    ObservableGauge of the quantiles under a ``quantile`` attribute (0.5, 0.95,
    0.99), and ObservableCounters ``<name>.count`` and ``<name>.sum``.

    Args:
      meter_provider: an ``opentelemetry.metrics.MeterProvider``; by default the
        global one (``opentelemetry.metrics.get_meter_provider()``).

    Raises:
      ImportError: if opentelemetry-api is not installed.
      TypeError: if *meter_provider* is not a ``MeterProvider``.
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        api = import_optional(
            "opentelemetry.metrics",
            needed_by="OpenTelemetryExporter",
            extra="otel",
            package="opentelemetry-api",
        )
        if meter_provider is None:
            meter_provider = api.get_meter_provider()
        elif not isinstance(meter_provider, api.MeterProvider):
            raise TypeError(
                "meter_provider must be an opentelemetry.metrics.MeterProvider, "
                f"got {describe(meter_provider)}"
            )
        super().__init__()
        self._observation: type[Observation] = api.Observation
        self._closed = False
        assert meter_provider is not None
        meter = meter_provider.get_meter("trine", __version__)
        for family in FAMILIES:
            self._instrument(meter, family)

    def close(self) -> None:
        """Stop reporting: the instruments observe nothing from now on.

        (OpenTelemetry's API cannot remove an instrument from its meter.)
        """
        self._closed = True
        self._entries.clear()

    def _instrument(self, meter: Meter, family: Family) -> None:
        if family.kind == "summary":
            meter.create_observable_gauge(
                family.name,
                [self._callback(family, "quantiles")],
                family.unit,
                f"{family.description} (by quantile)",
            )
            meter.create_observable_counter(
                f"{family.name}.count",
                [self._callback(family, "count")],
                "1",
                f"{family.description} (how many)",
            )
            meter.create_observable_counter(
                f"{family.name}.sum",
                [self._callback(family, "sum")],
                family.unit,
                f"{family.description} (their sum)",
            )
            return
        create = {
            "counter": meter.create_observable_counter,
            "updown": meter.create_observable_up_down_counter,
            "gauge": meter.create_observable_gauge,
        }[family.kind]
        create(family.name, [self._callback(family, "value")], family.unit, family.description)

    def _callback(
        self, family: Family, part: str
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            if self._closed:
                return []
            found = self._collect(family.owner).get(family.name, [])
            return [
                observation
                for labels, value in found
                for observation in self._observations(family, part, labels, value)
            ]

        return observe

    def _observations(
        self, family: Family, part: str, labels: tuple[str, ...], value: float | Distribution
    ) -> Iterable[Observation]:
        attributes = dict(zip(family.labels, labels, strict=True))
        if not isinstance(value, Distribution):
            return [self._observation(value, attributes)]
        if part == "count":
            return [self._observation(value.count, attributes)]
        if part == "sum":
            return [self._observation(value.total, attributes)]
        return [
            self._observation(quantile, {**attributes, "quantile": q})
            for q, quantile in value.quantiles
        ]
