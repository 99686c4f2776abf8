"""Export trine's figures to Prometheus or OpenTelemetry (optional extras).

``pip install 'trine[prometheus]'`` or ``'trine[otel]'``, then make an exporter
and register what to export::

    exporter = trine.metrics.PrometheusExporter()
    exporter.register(breaker)             # one object, or:
    with exporter.register_new():          # every object created in the block
        await main()

An exporter reads each registered object's ``statistics()`` when the metrics
are collected, and counts the events given to :meth:`Exporter.hook` (a
guard's ``hooks=``); nothing runs between collections. Importing trine (or this
package) imports neither prometheus-client nor OpenTelemetry: an exporter
imports its library when it is made.
"""

from __future__ import annotations

from ._exporter import Exporter as Exporter
from ._families import FAMILIES as FAMILIES
from ._families import Family as Family
from ._otel import OpenTelemetryExporter as OpenTelemetryExporter
from ._prometheus import PrometheusExporter as PrometheusExporter

__all__ = ["FAMILIES", "Exporter", "Family", "OpenTelemetryExporter", "PrometheusExporter"]
