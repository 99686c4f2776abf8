"""trine's pytest plugin: the test kit as fixtures, with no conftest to write.

Registered through the ``pytest11`` entry point, so installing trine is
enough: pytest loads it in every project where trine is installed (it only
defines fixtures, which cost nothing until a test asks for one). Turn it off
with ``-p no:trine``.

The fixtures are plain (synchronous) ones, so they work with pytest-trio in
``trio_mode = true`` and with ``@pytest.mark.trio`` alike, and in sync tests
that call :func:`trio.run` themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .._waits import SkippedWaits
from ._fake_service import FakeService
from ._probe import ConcurrencyProbe
from ._timeline import Timeline

__all__ = ["concurrency_probe", "fake_service", "no_waits", "timeline"]


@pytest.fixture
def fake_service() -> Callable[..., FakeService]:
    """A factory for :class:`~trine.testing.FakeService`: ``fake_service(latency=0.1, ...)``.

    Takes the same keyword arguments as the class; each call builds a new
    service, so one test can fake several endpoints.
    """

    def make(**script: Any) -> FakeService:
        return FakeService(**script)

    return make


@pytest.fixture
def concurrency_probe() -> ConcurrencyProbe:
    """A fresh :class:`~trine.testing.ConcurrencyProbe` for the test."""
    return ConcurrencyProbe()


@pytest.fixture
def timeline() -> Timeline:
    """A fresh :class:`~trine.testing.Timeline` for the test:
    ``timeline.record(label)``, then ``timeline.assert_matches([(time, label), ...])``."""
    return Timeline()


@pytest.fixture
def no_waits() -> Iterator[None]:
    """The whole test runs inside :func:`trine.testing.no_waits`: retries' backoff and
    breakers' reset timeouts take no time."""
    with SkippedWaits():
        yield
