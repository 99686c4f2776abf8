"""LatencyHistogram: exact moments, quantiles within 1 %, bounded memory."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trine import LatencyHistogram, LatencySummary


def test_empty_histogram_reports_none() -> None:
    """With no samples every statistic is ``None`` and the count is 0."""
    histogram = LatencyHistogram()
    assert histogram.quantile(0.5) is None
    assert histogram.summary() == LatencySummary(0, None, None, None, None, None, None)
    assert repr(histogram) == "<trine.LatencyHistogram empty>"


def test_exact_moments_and_extremes() -> None:
    """Count, mean, minimum and maximum are exact; q=0 and q=1 are the extremes."""
    histogram = LatencyHistogram()
    for seconds in (0.25, 0.010, 0.012, 0.0):
        histogram.record(seconds)
    summary = histogram.summary()
    assert summary.count == 4
    assert summary.mean == pytest.approx(0.272 / 4)
    assert (summary.minimum, summary.maximum) == (0.0, 0.25)
    assert histogram.quantile(0) == 0.0
    assert histogram.quantile(1) == 0.25


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-1.0, ValueError, r"^seconds must be >= 0, got -1.0$"),
        (math.nan, ValueError, r"^seconds must not be NaN, got nan$"),
    ],
)
def test_record_refuses_bad_durations(value: float, error: type[Exception], message: str) -> None:
    """Negative and NaN durations are refused by name."""
    with pytest.raises(error, match=message):
        LatencyHistogram().record(value)


def test_quantile_refuses_out_of_range() -> None:
    """q must lie in [0, 1]."""
    histogram = LatencyHistogram()
    with pytest.raises(ValueError, match=r"^q must be <= 1, got 1.5$"):
        histogram.quantile(1.5)
    with pytest.raises(ValueError, match=r"^q must be >= 0, got -0.1$"):
        histogram.quantile(-0.1)


def test_memory_is_bounded_by_buckets_not_samples() -> None:
    """A million samples over nine decades occupy at most ~1,600 buckets."""
    histogram = LatencyHistogram()
    for i in range(1, 1_000_001):
        histogram.record(i * 1e-6 * (1 + (i % 1000)))
    assert histogram.count == 1_000_000
    assert len(histogram._buckets) < 1600


@given(
    st.lists(st.floats(min_value=1e-6, max_value=1e4), min_size=1, max_size=300), st.floats(0, 1)
)
def test_quantile_is_within_one_percent(samples: list[float], q: float) -> None:
    """The reported quantile is within 1 % of the true sample at that rank."""
    histogram = LatencyHistogram()
    for seconds in samples:
        histogram.record(seconds)
    true = sorted(samples)[math.floor(q * (len(samples) - 1))]
    reported = histogram.quantile(q)
    assert reported is not None
    assert abs(reported - true) <= 0.01 * true + 1e-12


def test_record_refuses_infinity() -> None:
    """An infinite duration is refused by name, not with an OverflowError from the buckets."""
    with pytest.raises(ValueError, match=r"^seconds must be finite, got inf$"):
        LatencyHistogram().record(math.inf)
