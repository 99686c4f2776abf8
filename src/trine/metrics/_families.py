"""The metrics trine exports: one table, read by both exporters and by the docs' test.

Names follow OpenTelemetry's conventions (lower case, dotted, the unit in the
instrument's unit and not in its name); no OpenTelemetry semantic convention
covers breakers, limiters, retries, pipelines, graphs or these services, so
every name is ``trine.<kind>.<measure>`` with the object's name in the ``name``
label. The Prometheus name is derived as OpenTelemetry's Prometheus exporter
derives it: dots become underscores, ``_seconds`` is appended for durations and
counters get ``_total``.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import attrs

__all__ = ["FAMILIES", "Family", "Kind", "by_name"]

Kind: TypeAlias = Literal["counter", "updown", "gauge", "summary"]
"""How a figure behaves, and so which instrument carries it:

- ``counter``: only grows (a Prometheus counter, an OpenTelemetry ObservableCounter);
- ``updown``: a count of things now, which adds up across objects (a Prometheus
  gauge, an OpenTelemetry ObservableUpDownCounter);
- ``gauge``: a value now that does not add up (a rate, a balance; an ObservableGauge);
- ``summary``: a distribution given as count, sum and quantiles (a Prometheus
  summary; in OpenTelemetry an ObservableGauge per quantile plus ``.count`` and ``.sum``).
"""


@attrs.frozen
class Family:
    """One exported metric: its name, instrument kind, unit, labels and meaning."""

    name: str
    """The OpenTelemetry name, ``trine.<kind>.<measure>``."""
    kind: Kind
    unit: str
    """A UCUM unit as OpenTelemetry writes it: ``s``, ``1``, or an annotation like ``{call}``."""
    labels: tuple[str, ...]
    description: str
    source: Literal["statistics", "events"]
    """Where the figure comes from: ``statistics()`` at collection time, or hook events."""

    @property
    def owner(self) -> str:
        """The kind of object that reports it: the second part of the name."""
        return self.name.split(".")[1]

    @property
    def prometheus_name(self) -> str:
        """The Prometheus name, without the ``_total`` a counter's samples add."""
        name = self.name.replace(".", "_")
        return name + "_seconds" if self.unit == "s" else name


def _stats(name: str, kind: Kind, unit: str, labels: tuple[str, ...], description: str) -> Family:
    return Family(name, kind, unit, ("name", *labels), description, "statistics")


def _events(name: str, kind: Kind, unit: str, labels: tuple[str, ...], description: str) -> Family:
    return Family(name, kind, unit, ("name", *labels), description, "events")


FAMILIES: tuple[Family, ...] = (
    # -- CircuitBreaker ---------------------------------------------------------------
    _stats(
        "trine.breaker.state",
        "updown",
        "{breaker}",
        ("state",),
        "1 for the state the breaker is in, 0 for the others",
    ),
    _stats(
        "trine.breaker.calls",
        "counter",
        "{call}",
        ("outcome",),
        "calls by outcome: success, failure, ignored, cancelled, rejected",
    ),
    _stats("trine.breaker.slow_calls", "counter", "{call}", (), "slow calls"),
    _stats("trine.breaker.in_flight", "updown", "{call}", (), "admitted calls not finished yet"),
    _stats(
        "trine.breaker.failure_rate",
        "gauge",
        "1",
        (),
        "failures / calls in the window (absent below minimum_calls)",
    ),
    _events(
        "trine.breaker.transitions",
        "counter",
        "{transition}",
        ("from", "to"),
        "state changes (CircuitStateChanged events)",
    ),
    # -- limiters: Bulkhead, WeightedSemaphore, PriorityLimiter, KeyedLimiter, AdaptiveLimiter
    _stats(
        "trine.limiter.in_use",
        "updown",
        "{permit}",
        ("type",),
        "slots (or weight) held now",
    ),
    _stats(
        "trine.limiter.limit",
        "updown",
        "{permit}",
        ("type",),
        "the capacity now (an AdaptiveLimiter's current limit)",
    ),
    _stats("trine.limiter.waiting", "updown", "{task}", ("type",), "tasks queued for a slot"),
    _stats("trine.limiter.admitted", "counter", "{call}", ("type",), "calls let in (Bulkhead)"),
    _stats(
        "trine.limiter.rejected",
        "counter",
        "{call}",
        ("type",),
        "calls refused with BulkheadFull (Bulkhead)",
    ),
    _stats("trine.limiter.keys", "updown", "{key}", ("type",), "keys in use (KeyedLimiter)"),
    # -- rate limiters: RateLimiter, SlidingWindowLimiter ---------------------------
    _stats("trine.rate_limiter.admitted", "counter", "{acquisition}", ("type",), "admissions"),
    _stats("trine.rate_limiter.admitted_cost", "counter", "1", ("type",), "their total cost"),
    _stats(
        "trine.rate_limiter.rejected",
        "counter",
        "{acquisition}",
        ("type",),
        "try_acquire / acquire_nowait refusals",
    ),
    _stats("trine.rate_limiter.waiting", "updown", "{task}", ("type",), "tasks waiting in acquire"),
    _stats(
        "trine.rate_limiter.waited",
        "counter",
        "{acquisition}",
        ("type",),
        "acquisitions admitted after waiting in acquire",
    ),
    _stats(
        "trine.rate_limiter.wait_time",
        "counter",
        "s",
        ("type",),
        "the seconds those acquisitions waited, added up",
    ),
    _stats("trine.rate_limiter.keys", "updown", "{key}", ("type",), "keys with state"),
    # -- Retry, RetryBudget -----------------------------------------------------------
    _stats("trine.retry.calls", "counter", "{call}", (), "calls started"),
    _stats("trine.retry.attempts", "counter", "{attempt}", (), "attempts, first ones too"),
    _stats("trine.retry.retries", "counter", "{attempt}", (), "attempts started after a failure"),
    _stats("trine.retry.give_ups", "counter", "{call}", (), "calls that re-raised an error"),
    _events(
        "trine.retry.gave_up",
        "counter",
        "{call}",
        ("reason",),
        "give-ups by reason: attempts, budget, timeout, not_retryable (RetryGaveUp events)",
    ),
    _stats(
        "trine.retry.budget_refusals",
        "counter",
        "{attempt}",
        (),
        "retries the retry budget refused",
    ),
    _events(
        "trine.retry.delay",
        "summary",
        "s",
        (),
        "backoff delays before retries (RetryScheduled events)",
    ),
    _stats(
        "trine.retry_budget.balance",
        "gauge",
        "{attempt}",
        (),
        "retries the window still allows",
    ),
    _stats("trine.retry_budget.refused", "counter", "{attempt}", (), "retries refused"),
    # -- what any guard's hooks report (Policy, CircuitBreaker) -----------------------
    _events(
        "trine.guard.rejections",
        "counter",
        "{call}",
        ("guard",),
        "calls refused by a breaker, bulkhead or rate limiter (CallRejected events)",
    ),
    _events(
        "trine.guard.timeouts",
        "counter",
        "{attempt}",
        (),
        "attempts cancelled by a Policy's timeout (AttemptTimedOut events)",
    ),
    _events(
        "trine.guard.fallbacks",
        "counter",
        "{call}",
        (),
        "calls answered by a Policy's fallback (FallbackUsed events)",
    ),
    # -- Pipeline -----------------------------------------------------------------------
    _stats("trine.pipeline.running", "updown", "{run}", (), "1 while the latest run goes on"),
    _stats("trine.pipeline.stage.items_in", "counter", "{item}", ("stage",), "items taken in"),
    _stats("trine.pipeline.stage.items_out", "counter", "{item}", ("stage",), "items handed on"),
    _stats("trine.pipeline.stage.failed", "counter", "{item}", ("stage",), "items that raised"),
    _stats(
        "trine.pipeline.stage.skipped",
        "counter",
        "{item}",
        ("stage",),
        'failed items dropped (on_error="skip")',
    ),
    _stats(
        "trine.pipeline.stage.dead_lettered",
        "counter",
        "{item}",
        ("stage",),
        "failed items given to an on_error function",
    ),
    _stats(
        "trine.pipeline.stage.dropped",
        "counter",
        "{item}",
        ("stage",),
        "items the stage's full buffer dropped (overflow=, latest())",
    ),
    _stats(
        "trine.pipeline.stage.busy_workers",
        "updown",
        "{worker}",
        ("stage",),
        "workers inside the stage's function now",
    ),
    _stats(
        "trine.pipeline.stage.workers",
        "updown",
        "{worker}",
        ("stage",),
        "the stage's workers (while running)",
    ),
    _stats(
        "trine.pipeline.stage.buffer_used",
        "updown",
        "{item}",
        ("stage",),
        "items waiting in the stage's buffer",
    ),
    _stats(
        "trine.pipeline.stage.buffer_size",
        "updown",
        "{item}",
        ("stage",),
        "the buffer's bound (while running)",
    ),
    _stats(
        "trine.pipeline.stage.duration",
        "summary",
        "s",
        ("stage",),
        "time per item in the stage",
    ),
    # -- TaskGraph ----------------------------------------------------------------------
    _stats(
        "trine.graph.nodes",
        "updown",
        "{node}",
        ("status",),
        "nodes by status: pending, ready, running, succeeded, failed, skipped, cancelled",
    ),
    # -- AsyncCache -----------------------------------------------------------------------
    _stats(
        "trine.cache.requests",
        "counter",
        "{request}",
        ("result",),
        "get_or_load calls by result: hit, miss",
    ),
    _stats(
        "trine.cache.loads",
        "counter",
        "{load}",
        ("outcome",),
        "loads (refreshes included) by outcome: success, failure",
    ),
    _stats("trine.cache.refreshes", "counter", "{load}", (), "background refreshes started"),
    _stats("trine.cache.evictions", "counter", "{entry}", (), "entries dropped for room"),
    _stats("trine.cache.expirations", "counter", "{entry}", (), "entries dropped as expired"),
    _stats("trine.cache.size", "updown", "{entry}", (), "entries held"),
    _stats("trine.cache.weight", "updown", "1", (), "their total weight"),
    _stats("trine.cache.loading", "updown", "{load}", (), "loads running now"),
    _stats("trine.cache.load.duration", "summary", "s", (), "how long loads took"),
    # -- SingleFlight ---------------------------------------------------------------------
    _stats("trine.single_flight.calls", "counter", "{call}", (), "calls that waited for a run"),
    _stats("trine.single_flight.runs", "counter", "{run}", (), "runs started"),
    _stats("trine.single_flight.shared", "counter", "{call}", (), "calls that joined a run"),
    _stats("trine.single_flight.in_flight", "updown", "{run}", (), "runs going on"),
    _stats("trine.single_flight.waiting", "updown", "{task}", (), "tasks waiting for a run"),
    # -- Batcher --------------------------------------------------------------------------
    _stats("trine.batcher.items", "counter", "{item}", (), "loads that joined a batch"),
    _stats(
        "trine.batcher.deduplicated",
        "counter",
        "{item}",
        (),
        "loads whose key was already in the batch",
    ),
    _stats("trine.batcher.batches", "counter", "{batch}", (), "batch calls started"),
    _stats("trine.batcher.failed_batches", "counter", "{batch}", (), "batch calls that raised"),
    _stats("trine.batcher.waiting", "updown", "{item}", (), "items waiting to be sent"),
    _stats("trine.batcher.in_flight", "updown", "{batch}", (), "batch calls running"),
    _stats("trine.batcher.batch.size", "summary", "{item}", (), "keys per batch call"),
    _stats("trine.batcher.batch.duration", "summary", "s", (), "how long batch calls took"),
    # -- ResourcePool ---------------------------------------------------------------------
    _stats("trine.pool.size", "updown", "{resource}", (), "slots taken: resources and connects"),
    _stats("trine.pool.idle", "updown", "{resource}", (), "resources waiting to be handed out"),
    _stats("trine.pool.in_use", "updown", "{resource}", (), "resources handed out"),
    _stats("trine.pool.waiting", "updown", "{task}", (), "tasks waiting for a resource"),
    _stats("trine.pool.created", "counter", "{resource}", (), "resources connect returned"),
    _stats("trine.pool.closed", "counter", "{resource}", (), "resources closed"),
    _stats("trine.pool.discarded", "counter", "{resource}", (), "resources spoiled by their block"),
    _stats("trine.pool.expired", "counter", "{resource}", (), "idle resources closed unused"),
    _stats(
        "trine.pool.failures",
        "counter",
        "{call}",
        ("call",),
        "connect, health_check, close that raised",
    ),
    _stats("trine.pool.acquire.duration", "summary", "s", (), "how long acquire took"),
)
"""Every metric, in the order the docs' table lists them."""

_BY_NAME = {family.name: family for family in FAMILIES}


def by_name(name: str) -> Family:
    """The family called *name* (a ``KeyError`` for a name not in the table)."""
    return _BY_NAME[name]
