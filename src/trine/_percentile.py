"""Percentile: a delay read from the latencies a service has shown so far.

A fixed hedge delay is a guess that goes stale: set it below the service's
usual latency and every call is sent twice; set it far above and the hedge
never helps. Tower's hedge middleware and Google's "The Tail at Scale" use
the latency distribution itself: send the backup request once the first has
taken longer than (say) 95 % of calls do. :class:`Percentile` is that delay.
It keeps (or is given) a :class:`~trine.LatencyHistogram` that the hedges
using it fill with the latency of every attempt that answered, and reads the
percentile from it -- until the histogram holds *min_samples* latencies,
when a fixed *initial* delay is used instead (or no hedging at all).
"""

from __future__ import annotations

import math
from typing import final

from ._stats import LatencyHistogram
from ._util import check_int, check_number, check_optional_number

__all__ = ["Percentile"]


@final
class Percentile:
    """A hedge delay that follows the service: the *percentile* of its observed latency.

    ::

        p95 = trine.Percentile(95, min_samples=20, initial=0.1)   # make it once
        reply = await trine.hedge(fetch, url, delay=p95)           # and reuse it

    Every hedge that uses it records the latency of its winning attempt (from
    that attempt's start to its answer) in :attr:`histogram`, and waits
    :meth:`delay` seconds before starting each further attempt. So the delay
    is what the last calls showed: a backup request goes out only for the
    calls slower than *percentile* % of the calls before them.

    Until the histogram holds *min_samples* latencies the delay is the fixed
    *initial* one; with ``initial=None`` (the default, as tower's hedge does)
    no hedge is started at all until then -- an attempt still follows a
    failed one at once. Failed attempts and attempts cancelled because another
    won record nothing: the histogram holds answers only.

    .. warning:: Make one ``Percentile`` per service and keep it, as you keep a
       :class:`~trine.RetryBudget`: a fresh one (``delay=trine.Percentile(95)``
       written inside the call) starts every call with an empty histogram, and
       so never gets past *initial*.

    Args:
      percentile: which percentile of the latency to wait, in ``(0, 100]``
        (``95`` waits until the call is slower than 95 % of those before it).
      min_samples: latencies the histogram must hold before the percentile is
        used, ``>= 1``.
      initial: the delay in seconds until then, ``>= 0``, or ``None`` to start
        no hedge until then.
      histogram: the :class:`~trine.LatencyHistogram` to read and record into
        (share one between several hedges of the same service, or fill it
        yourself); by default the Percentile keeps its own.

    Raises:
      TypeError, ValueError: for an argument of the wrong type or out of range.
    """

    __slots__ = (
        "_cached",
        "_count",
        "_fraction",
        "histogram",
        "initial",
        "min_samples",
        "percentile",
    )

    percentile: float
    """The percentile, in ``(0, 100]``."""
    min_samples: int
    """Latencies needed before the percentile is used."""
    initial: float | None
    """The delay before then (``None``: no hedging before then)."""
    histogram: LatencyHistogram
    """The latencies it reads; hedges using it record into it."""

    def __init__(
        self,
        percentile: float,
        *,
        min_samples: int = 20,
        initial: float | None = None,
        histogram: LatencyHistogram | None = None,
    ) -> None:
        value = check_number("percentile", percentile, exclusive=True)
        if value > 100:
            raise ValueError(f"percentile must be <= 100, got {percentile!r}")
        self.percentile = value
        self._fraction = value / 100
        self.min_samples = check_int("min_samples", min_samples)
        self.initial = check_optional_number("initial", initial)
        if histogram is None:
            histogram = LatencyHistogram()
        elif not isinstance(histogram, LatencyHistogram):
            raise TypeError(
                f"histogram must be a trine.LatencyHistogram or None, got {histogram!r}"
            )
        self.histogram = histogram
        # The last percentile read, and the sample count it was read at: a
        # quantile walks the buckets, so it is read again only after a record.
        self._count = -1
        self._cached = math.inf

    def delay(self) -> float:
        """The seconds a hedge using this Percentile waits now before its next attempt.

        The *percentile* of :attr:`histogram` once it holds *min_samples*
        latencies; before that *initial*, or :data:`math.inf` if *initial* is
        ``None`` (no hedge).
        """
        histogram = self.histogram
        count = histogram.count
        if count < self.min_samples:
            return math.inf if self.initial is None else self.initial
        if count != self._count:
            quantile = histogram.quantile(self._fraction)
            assert quantile is not None  # count >= min_samples >= 1
            self._cached = quantile
            self._count = count
        return self._cached

    def record(self, seconds: float) -> None:
        """Record one answered attempt's latency (hedges do this for you).

        Raises:
          TypeError, ValueError: if *seconds* is not a finite number ``>= 0``.
        """
        self.histogram.record(seconds)

    def __repr__(self) -> str:
        initial = "None" if self.initial is None else f"{self.initial:g}"
        return (
            f"<trine.Percentile p{self.percentile:g} of {self.histogram.count} latencies "
            f"(min_samples={self.min_samples}, initial={initial})>"
        )
