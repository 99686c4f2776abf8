"""A probe that records concurrency and a timeline on the Trio clock."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, final

import attrs
import trio

from .._util import check_number

__all__ = ["ConcurrencyProbe", "ProbeEvent", "assert_takes"]


@attrs.frozen
class ProbeEvent:
    """One entry of a :class:`ConcurrencyProbe` timeline."""

    time: float
    """:func:`trio.current_time` when it happened."""
    kind: Literal["enter", "exit", "mark"]
    """``"enter"``/``"exit"`` from :meth:`ConcurrencyProbe.track`, ``"mark"`` from
    :meth:`ConcurrencyProbe.mark`."""
    label: object
    """Whatever the caller passed as the label (an item, a name, ``None``)."""


@final
@attrs.define(eq=False)
class ConcurrencyProbe:
    """Count how many tasks are inside a block at once, and when they were.

    Wrap the body of the function you hand to trine in :meth:`track`; after
    the run, :attr:`peak` is the most tasks that were ever inside together and
    :attr:`timeline` lists every entry and exit with its fake-clock time::

        probe = ConcurrencyProbe()

        async def fetch(url):
            with probe.track(url):
                await trio.sleep(1)

        await trine.for_each(fetch, urls, limit=3)
        assert probe.peak == 3
    """

    current: int = attrs.field(default=0, init=False)
    """How many tasks are inside :meth:`track` now."""
    peak: int = attrs.field(default=0, init=False)
    """The largest :attr:`current` ever was."""
    timeline: list[ProbeEvent] = attrs.field(factory=list, init=False)
    """Every event, in the order it happened."""

    @contextmanager
    def track(self, label: object = None) -> Iterator[None]:
        """Count the caller as inside for the duration of the ``with`` block."""
        self.current += 1
        self.peak = max(self.peak, self.current)
        self.timeline.append(ProbeEvent(trio.current_time(), "enter", label))
        try:
            yield
        finally:
            self.current -= 1
            self.timeline.append(ProbeEvent(trio.current_time(), "exit", label))

    def mark(self, label: object = None) -> None:
        """Add a ``"mark"`` event at the current time."""
        self.timeline.append(ProbeEvent(trio.current_time(), "mark", label))

    def times(self, kind: Literal["enter", "exit", "mark"]) -> dict[object, float]:
        """Map each label to the time of its (last) event of *kind*."""
        return {event.label: event.time for event in self.timeline if event.kind == kind}


@contextmanager
def assert_takes(seconds: float) -> Iterator[None]:
    """Assert that the ``with`` block takes exactly *seconds* of Trio time.

    Meant for the autojump clock, where time is exact; the comparison only
    allows for float rounding (1e-9 s)::

        with assert_takes(4.0):
            await trine.for_each(one_second_job, range(10), limit=3)

    Raises:
      TypeError, ValueError: if *seconds* is not a finite number ``>= 0``.
    """
    seconds = check_number("seconds", seconds)
    start = trio.current_time()
    yield
    elapsed = trio.current_time() - start
    if not math.isclose(elapsed, seconds, rel_tol=0.0, abs_tol=1e-9):
        raise AssertionError(f"expected the block to take {seconds!r} s, it took {elapsed!r} s")
