"""What exporting metrics costs: trine.metrics attached vs not, and one collection.

An exporter reads ``statistics()`` only when metrics are collected, so a
registered object runs exactly as an unregistered one; what can cost is the
exporter's hook, which ``register_new()`` adds to every breaker, retry and
Policy (a Policy with hooks takes its reporting path around the breaker).

Each variant is timed in CPU seconds of the benchmark's process
(``time.process_time``), so that other work on a shared machine does not count.
Cases, each in one process and interleaved:

- ``metrics_policy``: 20,000 successful ``Policy(retry=Retry(), breaker=CircuitBreaker())``
  calls of a trivial function: no exporter (the baseline); the same objects
  made inside a PrometheusExporter's ``register_new()`` (hooks added).
- ``metrics_pipeline``: a three-stage pipeline over 100,000 items, without
  and with ``register_new()`` around it (registered: read only when scraped).
- ``metrics_scrape``: one ``prometheus_client.generate_latest`` of 100
  registered breakers, and of 100 registered three-stage pipelines: the cost
  of a scrape, per object.

Measured here (2 shared cores under heavy load from other work, about three
times slower than a quiet machine; Python 3.11, trio 0.35, prometheus-client
0.26, ``--repeat 7``, medians of CPU time; the pipeline at trine's default
64-item buffers)::

    metrics_policy
      no exporter                                    2.28 us/call  1.00x
      made in PrometheusExporter.register_new()      2.50 us/call  1.10x
    metrics_pipeline (0.077 steps/item)
      no exporter                                    7.07 us/item  1.00x
      made in register_new()                         6.85 us/item  0.97x  (noise: nothing runs)
    metrics_scrape
      generate_latest, 100 breakers                175.37 us/breaker
      generate_latest, 100 pipelines of 3 stages   589.15 us/pipeline

(The scrape rows' steps/item count the setup run, not the scrape, which takes none.)

The Policy's extra 0.2 us per call is its reporting path around the breaker
(a closure that notes whether the breaker admitted the call, to report
rejections): the cost of ``hooks=`` on a Policy, which the exporter only
switches on. A pipeline is never touched between scrapes. A scrape reads each
object's ``statistics()`` once and formats its samples: tens of microseconds
per breaker, about a hundred per pipeline stage, here.
"""

from __future__ import annotations

import time

import trine
from benchmarks._harness import Case, Variant, installed, run_trio

CALLS = 20_000
ITEMS = 100_000
OBJECTS = 100


async def _trivial(x: int) -> int:
    return x


def _inc(x: int) -> int:
    return x + 1


def _exporter():
    import prometheus_client

    import trine.metrics

    return trine.metrics.PrometheusExporter(registry=prometheus_client.CollectorRegistry())


def _timed(main, *, exported: bool):
    def run() -> float:
        box: list[float] = []

        async def wrapper() -> None:
            if exported:
                exporter = _exporter()
                with exporter.register_new():
                    start = time.process_time()
                    await main()
                    box.append(time.process_time() - start)
                exporter.close()
            else:
                start = time.process_time()
                await main()
                box.append(time.process_time() - start)

        run_trio(wrapper)
        return box[0]

    return run


async def _policy_calls() -> None:
    policy = trine.Policy(retry=trine.Retry(), breaker=trine.CircuitBreaker())
    call = policy.call
    for i in range(CALLS):
        await call(_trivial, i)


async def _pipeline() -> None:
    pipe = trine.Pipeline.source(range(ITEMS)).map(_inc).map(_inc).map(_inc)
    await pipe.run()


def _scrape(kind: str):
    def run() -> float:
        import prometheus_client

        import trine.metrics

        box: list[float] = []

        async def main() -> None:
            registry = prometheus_client.CollectorRegistry()
            exporter = trine.metrics.PrometheusExporter(registry=registry)
            keep: list[object] = []
            for n in range(OBJECTS):
                if kind == "breaker":
                    breaker = trine.CircuitBreaker()
                    exporter.register(breaker, name=f"b{n}")
                    keep.append(breaker)
                else:
                    pipe = trine.Pipeline.source(range(10)).map(_inc).map(_inc).map(_inc)
                    await pipe.run()
                    exporter.register(pipe, name=f"p{n}")
                    keep.append(pipe)
            start = time.process_time()
            prometheus_client.generate_latest(registry)
            box.append(time.process_time() - start)
            exporter.close()

        run_trio(main)
        return box[0]

    return run


CASES = (
    [
        Case(
            "metrics_policy",
            "Policy(retry, breaker).call of a trivial function, with and without an exporter",
            CALLS,
            [
                Variant("no exporter", _timed(_policy_calls, exported=False), baseline=True),
                Variant(
                    "made in PrometheusExporter.register_new()",
                    _timed(_policy_calls, exported=True),
                ),
            ],
        ),
        Case(
            "metrics_pipeline",
            "a three-stage pipeline, with and without an exporter",
            ITEMS,
            [
                Variant("no exporter", _timed(_pipeline, exported=False), baseline=True),
                Variant("made in register_new()", _timed(_pipeline, exported=True)),
            ],
        ),
        Case(
            "metrics_scrape",
            "one generate_latest of 100 registered objects (per object)",
            OBJECTS,
            [
                Variant("generate_latest, 100 breakers", _scrape("breaker")),
                Variant("generate_latest, 100 pipelines of 3 stages", _scrape("pipeline")),
            ],
        ),
    ]
    if installed("prometheus_client")
    else []
)
