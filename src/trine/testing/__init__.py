"""Helpers for testing code built on trine (and trine itself) on Trio's fake clock.

Run tests under ``trio.testing.MockClock(autojump_threshold=0)`` (pytest-trio's
``autojump_clock`` fixture) and every sleep finishes at once while
:func:`trio.current_time` advances exactly, so these helpers can assert exact
times and exact concurrency.
"""

from __future__ import annotations

from ._fake_service import FakeCall as FakeCall
from ._fake_service import FakeRequest as FakeRequest
from ._fake_service import FakeScript as FakeScript
from ._fake_service import FakeService as FakeService
from ._fake_service import FakeServiceError as FakeServiceError
from ._fake_service import FakeServiceStatistics as FakeServiceStatistics
from ._no_waits import no_waits as no_waits
from ._probe import ConcurrencyProbe as ConcurrencyProbe
from ._probe import ProbeEvent as ProbeEvent
from ._probe import assert_takes as assert_takes
from ._timeline import Timeline as Timeline
from ._timeline import TimelineEvent as TimelineEvent

__all__ = [
    "ConcurrencyProbe",
    "FakeCall",
    "FakeRequest",
    "FakeScript",
    "FakeService",
    "FakeServiceError",
    "FakeServiceStatistics",
    "ProbeEvent",
    "Timeline",
    "TimelineEvent",
    "assert_takes",
    "no_waits",
]
