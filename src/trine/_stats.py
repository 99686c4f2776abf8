"""Statistics types shared by every module: latency histograms and their summaries.

:class:`LatencyHistogram` records durations in logarithmic buckets, as
DDSketch does: each bucket covers values within a fixed *relative* accuracy,
so one histogram holds a microsecond and an hour equally well, memory is
bounded by the number of buckets (never by the number of samples), and a
quantile is returned within 1 % of the true value.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import final

import attrs

from ._util import check_number

__all__ = ["LatencyHistogram", "LatencySummary"]

# Relative accuracy 1 %: every value is reported within 1 % of itself.
_ACCURACY = 0.01
_GAMMA = (1 + _ACCURACY) / (1 - _ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_INVERSE_LOG_GAMMA = 1 / _LOG_GAMMA
_ceil = math.ceil
_log = math.log
# Durations below a nanosecond are recorded as zero: no clock resolves them,
# and the cut-off bounds the number of buckets (about 1,600 from 1 ns to 1 day).
_SMALLEST = 1e-9


@attrs.frozen
class LatencySummary:
    """A snapshot of a :class:`LatencyHistogram`, as ``statistics()`` objects carry it."""

    count: int
    """How many durations were recorded."""
    mean: float | None
    """Their exact mean in seconds, or ``None`` if there are none."""
    minimum: float | None
    """The exact smallest duration, or ``None``."""
    maximum: float | None
    """The exact largest duration, or ``None``."""
    p50: float | None
    """The median, within 1 %."""
    p95: float | None
    """The 95th percentile, within 1 %."""
    p99: float | None
    """The 99th percentile, within 1 %."""


@final
@attrs.define(eq=False)
class LatencyHistogram:
    """Durations in log-spaced buckets: exact count, mean, min and max; quantiles within 1 %.

    Memory is O(1) in the number of samples: one counter per occupied bucket,
    and there are at most about 1,600 buckets between a nanosecond and a day.

    Example::

        histogram = LatencyHistogram()
        for seconds in (0.010, 0.012, 0.250):
            histogram.record(seconds)
        histogram.quantile(0.5)   # about 0.012
        histogram.summary().p99   # about 0.250
    """

    count: int = attrs.field(default=0, init=False)
    """How many durations were recorded."""
    total: float = attrs.field(default=0.0, init=False)
    """Their sum, in seconds."""
    # The extremes start as +/-inf so that record() needs no test for "first
    # sample"; the properties below say None while there is none.
    _minimum: float = attrs.field(default=math.inf, init=False)
    _maximum: float = attrs.field(default=-math.inf, init=False)
    _zero: int = attrs.field(default=0, init=False)
    _buckets: Counter[int] = attrs.field(factory=Counter, init=False)

    @property
    def minimum(self) -> float | None:
        """The smallest recorded duration (``None`` before the first)."""
        return self._minimum if self.count else None

    @property
    def maximum(self) -> float | None:
        """The largest recorded duration (``None`` before the first)."""
        return self._maximum if self.count else None

    def record(self, seconds: float) -> None:
        """Add one duration (in seconds, ``>= 0``).

        Raises:
          TypeError: if *seconds* is not an ``int`` or ``float`` (``bool`` is refused).
          ValueError: if *seconds* is negative, NaN or infinite.
        """
        # Pipelines record a sample per item, so the common case comes first
        # and costs one type test and one log: a float of at least a nanosecond.
        if type(seconds) is not float or not _SMALLEST <= seconds < math.inf:
            seconds = check_number("seconds", seconds)  # refuses by name what is wrong
        if seconds >= _SMALLEST:
            index = _ceil(_log(seconds) * _INVERSE_LOG_GAMMA)
            buckets = self._buckets
            buckets[index] = buckets.get(index, 0) + 1
        else:
            self._zero += 1
        self.count += 1
        self.total += seconds
        if seconds < self._minimum:
            self._minimum = seconds
        if seconds > self._maximum:
            self._maximum = seconds

    def _record_all(self, durations: list[float]) -> None:
        """Add many durations at once, as :meth:`record` would one by one.

        For trine's own callers, which read them off the clock: each is a
        finite ``float >= 0``, so nothing is checked. The per-sample work runs
        in C (``filter``, ``map``, :meth:`Counter.update`), so a task pool can
        collect its tasks' durations in a list and fold them in now and then
        for a fraction of what a :meth:`record` per task costs.
        """
        if not durations:
            return
        timed = list(filter(_SMALLEST.__le__, durations))
        self._zero += len(durations) - len(timed)
        self._buckets.update(map(_ceil, map(_INVERSE_LOG_GAMMA.__mul__, map(_log, timed))))
        self.count += len(durations)
        # sum() from the running total adds in order on Python 3.11, as record()
        # does; from 3.12 it compensates, so the total is if anything more exact.
        self.total = sum(durations, self.total)
        self._minimum = min(self._minimum, min(durations))
        self._maximum = max(self._maximum, max(durations))

    def quantile(self, q: float) -> float | None:
        """The duration below which a fraction *q* of the samples lie, within 1 %.

        Returns ``None`` if nothing was recorded. ``quantile(0)`` and
        ``quantile(1)`` are the exact minimum and maximum.

        Raises:
          ValueError: if *q* is not between 0 and 1.
        """
        check_number("q", q)
        if q > 1:
            raise ValueError(f"q must be <= 1, got {q!r}")
        if self.count == 0:
            return None
        assert self.minimum is not None
        assert self.maximum is not None
        if q == 0:
            return self.minimum
        if q == 1:
            return self.maximum
        rank = q * (self.count - 1)
        seen = self._zero
        if seen > rank:
            return 0.0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen > rank:
                estimate = 2 * _GAMMA**index / (_GAMMA + 1)
                # Clamp to what was really seen: never report beyond the extremes.
                return min(max(estimate, self.minimum), self.maximum)
        return self.maximum  # pragma: no cover  (seen == count > rank above)

    def summary(self) -> LatencySummary:
        """A frozen snapshot: count, mean, min, max, p50, p95, p99."""
        return LatencySummary(
            count=self.count,
            mean=self.total / self.count if self.count else None,
            minimum=self.minimum,
            maximum=self.maximum,
            p50=self.quantile(0.5),
            p95=self.quantile(0.95),
            p99=self.quantile(0.99),
        )

    def __repr__(self) -> str:
        summary = self.summary()
        if not summary.count:
            return "<trine.LatencyHistogram empty>"
        return (
            f"<trine.LatencyHistogram count={summary.count} p50={summary.p50:.6g}s "
            f"p99={summary.p99:.6g}s max={summary.maximum:.6g}s>"
        )
