"""How each kind of trine object's ``statistics()`` turns into metric points.

A reader takes one object and yields ``(family, labels, value)`` with the
labels after ``name`` (the exporter adds the name). Readers use only
``statistics()`` and public attributes, so they keep working however the
objects are built inside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeAlias

import attrs

import trine

__all__ = [
    "Distribution",
    "Point",
    "Reader",
    "distribution_of_counts",
    "distribution_of_summary",
    "reader_for",
    "supported_types",
]


@attrs.frozen
class Distribution:
    """A summary's figures: how many samples, their sum, and some quantiles."""

    count: int
    total: float
    quantiles: tuple[tuple[float, float], ...]
    """``(q, value)`` pairs, ascending in *q*."""


Point: TypeAlias = tuple[str, tuple[str, ...], "float | Distribution"]
Reader: TypeAlias = Callable[[Any], Iterator[Point]]


def distribution_of_summary(summary: trine.LatencySummary) -> Distribution:
    """A :class:`~trine.LatencySummary` as a distribution (p50, p95 and p99)."""
    quantiles = tuple(
        (q, value)
        for q, value in ((0.5, summary.p50), (0.95, summary.p95), (0.99, summary.p99))
        if value is not None
    )
    total = summary.mean * summary.count if summary.mean is not None else 0.0
    return Distribution(summary.count, total, quantiles)


def distribution_of_counts(counts: Mapping[int, int]) -> Distribution:
    """``{value: how many times}`` as a distribution with exact p50, p95 and p99."""
    count = sum(counts.values())
    total = float(sum(value * times for value, times in counts.items()))
    quantiles: list[tuple[float, float]] = []
    if count:
        for q in (0.5, 0.95, 0.99):
            # The same rank as LatencyHistogram.quantile: the value below which
            # a fraction q of the samples lie.
            rank = q * (count - 1)
            seen = 0
            for value in sorted(counts):
                seen += counts[value]
                if seen > rank:
                    quantiles.append((q, float(value)))
                    break
    return Distribution(count, total, tuple(quantiles))


def _breaker(breaker: trine.CircuitBreaker) -> Iterator[Point]:
    stats = breaker.statistics()
    for state in trine.CircuitState:
        yield "trine.breaker.state", (state.value,), 1.0 if stats.state is state else 0.0
    for outcome, value in (
        ("success", stats.successes),
        ("failure", stats.failures),
        ("ignored", stats.ignored),
        ("cancelled", stats.cancelled),
        ("rejected", stats.rejections),
    ):
        yield "trine.breaker.calls", (outcome,), value
    yield "trine.breaker.slow_calls", (), stats.slow_calls
    yield "trine.breaker.in_flight", (), stats.in_flight
    if stats.failure_rate is not None:
        yield "trine.breaker.failure_rate", (), stats.failure_rate


def _limiter(limiter: Any) -> Iterator[Point]:
    stats = limiter.statistics()
    kind = (type(limiter).__name__,)
    yield "trine.limiter.in_use", kind, stats.borrowed_tokens
    limit = stats.limit if isinstance(limiter, trine.AdaptiveLimiter) else stats.total_tokens
    if limit is not None:
        yield "trine.limiter.limit", kind, limit
    yield "trine.limiter.waiting", kind, stats.tasks_waiting
    if isinstance(limiter, trine.Bulkhead):
        yield "trine.limiter.admitted", kind, stats.admitted
        yield "trine.limiter.rejected", kind, stats.rejected
    if isinstance(limiter, trine.KeyedLimiter):
        yield "trine.limiter.keys", kind, stats.keys


def _rate_limiter(limiter: trine.RateLimiter | trine.SlidingWindowLimiter) -> Iterator[Point]:
    stats = limiter.statistics()
    kind = (type(limiter).__name__,)
    yield "trine.rate_limiter.admitted", kind, stats.admitted
    yield "trine.rate_limiter.admitted_cost", kind, stats.admitted_cost
    yield "trine.rate_limiter.rejected", kind, stats.rejected
    yield "trine.rate_limiter.waiting", kind, stats.tasks_waiting
    yield "trine.rate_limiter.waited", kind, stats.waited
    yield "trine.rate_limiter.wait_time", kind, stats.wait_time
    yield "trine.rate_limiter.keys", kind, stats.keys


def _retry(retry: trine.Retry) -> Iterator[Point]:
    stats = retry.statistics()
    yield "trine.retry.calls", (), stats.calls
    yield "trine.retry.attempts", (), stats.attempts
    yield "trine.retry.retries", (), stats.retries
    yield "trine.retry.give_ups", (), stats.give_ups
    yield "trine.retry.budget_refusals", (), stats.budget_refusals


def _retry_budget(budget: trine.RetryBudget) -> Iterator[Point]:
    stats = budget.statistics()
    yield "trine.retry_budget.balance", (), stats.balance
    yield "trine.retry_budget.refused", (), stats.refusals


def _pipeline(pipeline: trine.Pipeline[Any]) -> Iterator[Point]:
    stats = pipeline.statistics()
    yield "trine.pipeline.running", (), 1.0 if stats.running else 0.0
    for stage in stats.stages:
        label = (stage.name,)
        yield "trine.pipeline.stage.items_in", label, stage.items_in
        yield "trine.pipeline.stage.items_out", label, stage.items_out
        yield "trine.pipeline.stage.failed", label, stage.failed
        yield "trine.pipeline.stage.skipped", label, stage.skipped
        yield "trine.pipeline.stage.dead_lettered", label, stage.dead_lettered
        yield "trine.pipeline.stage.dropped", label, stage.dropped
        yield "trine.pipeline.stage.busy_workers", label, stage.busy_workers
        yield "trine.pipeline.stage.buffer_used", label, stage.buffer_used
        if stats.running:
            # A pipeline's shape is reported only while it runs: the prefixes a
            # chain of stage methods leaves behind never run, and would add
            # their workers to the running pipeline's under the same labels.
            yield "trine.pipeline.stage.workers", label, stage.workers
            yield "trine.pipeline.stage.buffer_size", label, stage.buffer_size
        yield "trine.pipeline.stage.duration", label, distribution_of_summary(stage.latency)


def _graph(graph: trine.TaskGraph) -> Iterator[Point]:
    stats = graph.statistics()
    for status in ("pending", "ready", "running", "succeeded", "failed", "skipped", "cancelled"):
        yield "trine.graph.nodes", (status,), getattr(stats, status)


def _cache(cache: trine.AsyncCache[Any, Any]) -> Iterator[Point]:
    stats = cache.statistics()
    yield "trine.cache.requests", ("hit",), stats.hits
    yield "trine.cache.requests", ("miss",), stats.misses
    yield "trine.cache.loads", ("success",), stats.loads
    yield "trine.cache.loads", ("failure",), stats.load_failures
    yield "trine.cache.refreshes", (), stats.refreshes
    yield "trine.cache.evictions", (), stats.evictions
    yield "trine.cache.expirations", (), stats.expirations
    yield "trine.cache.size", (), stats.size
    yield "trine.cache.weight", (), stats.weight
    yield "trine.cache.loading", (), stats.loading
    yield "trine.cache.load.duration", (), distribution_of_summary(stats.load_latency)


def _single_flight(flights: trine.SingleFlight) -> Iterator[Point]:
    stats = flights.statistics()
    yield "trine.single_flight.calls", (), stats.calls
    yield "trine.single_flight.runs", (), stats.runs
    yield "trine.single_flight.shared", (), stats.shared
    yield "trine.single_flight.in_flight", (), stats.in_flight
    yield "trine.single_flight.waiting", (), stats.waiting


def _batcher(batcher: trine.Batcher[Any, Any]) -> Iterator[Point]:
    stats = batcher.statistics()
    yield "trine.batcher.items", (), stats.items
    yield "trine.batcher.deduplicated", (), stats.deduplicated
    yield "trine.batcher.batches", (), stats.batches
    yield "trine.batcher.failed_batches", (), stats.failed_batches
    yield "trine.batcher.waiting", (), stats.waiting
    yield "trine.batcher.in_flight", (), stats.in_flight
    yield "trine.batcher.batch.size", (), distribution_of_counts(stats.batch_sizes)
    yield "trine.batcher.batch.duration", (), distribution_of_summary(stats.batch_latency)


def _pool(pool: trine.ResourcePool[Any]) -> Iterator[Point]:
    stats = pool.statistics()
    yield "trine.pool.size", (), stats.size
    yield "trine.pool.idle", (), stats.idle
    yield "trine.pool.in_use", (), stats.in_use
    yield "trine.pool.waiting", (), stats.waiting
    yield "trine.pool.created", (), stats.created
    yield "trine.pool.closed", (), stats.closed
    yield "trine.pool.discarded", (), stats.discarded
    yield "trine.pool.expired", (), stats.expired
    yield "trine.pool.failures", ("connect",), stats.failed_connects
    yield "trine.pool.failures", ("health_check",), stats.failed_health_checks
    yield "trine.pool.failures", ("close",), stats.failed_closes
    yield "trine.pool.acquire.duration", (), distribution_of_summary(stats.wait)


_READERS: dict[type, tuple[str, Reader]] = {
    trine.CircuitBreaker: ("breaker", _breaker),
    trine.Bulkhead: ("limiter", _limiter),
    trine.WeightedSemaphore: ("limiter", _limiter),
    trine.PriorityLimiter: ("limiter", _limiter),
    trine.KeyedLimiter: ("limiter", _limiter),
    trine.AdaptiveLimiter: ("limiter", _limiter),
    trine.RateLimiter: ("rate_limiter", _rate_limiter),
    trine.SlidingWindowLimiter: ("rate_limiter", _rate_limiter),
    trine.Retry: ("retry", _retry),
    trine.RetryBudget: ("retry_budget", _retry_budget),
    trine.Pipeline: ("pipeline", _pipeline),
    trine.TaskGraph: ("graph", _graph),
    trine.AsyncCache: ("cache", _cache),
    trine.SingleFlight: ("single_flight", _single_flight),
    trine.Batcher: ("batcher", _batcher),
    trine.ResourcePool: ("pool", _pool),
}


def reader_for(obj: object) -> tuple[str, Reader] | None:
    """The owner (``"breaker"``, ...) and reader for *obj*'s type, or ``None``."""
    for cls in type(obj).__mro__:
        found = _READERS.get(cls)
        if found is not None:
            return found
    return None


def supported_types() -> tuple[type, ...]:
    """Every type with a reader, in the table's order."""
    return tuple(_READERS)
