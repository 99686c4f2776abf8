"""Timeline: named events at fake-clock times, asserted whole with a readable diff."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import final

import attrs
import trio

from .._util import check_number, close_unawaited

__all__ = ["Timeline", "TimelineEvent"]


@attrs.frozen
class TimelineEvent:
    """One entry of a :class:`Timeline`."""

    time: float
    """:func:`trio.current_time` when it was recorded."""
    label: str
    """What happened, in words."""


def _check_label(label: object) -> str:
    if not isinstance(label, str):
        raise TypeError(f"label must be a str, got {label!r}")
    return label


def _line(time: float, label: str, exact: bool = False) -> str:
    # To the nanosecond (the default tolerance), trailing zeros dropped: 1.5,
    # 1.500005; exact (repr) where that would hide the difference.
    if exact:
        text = repr(time)
    else:
        text = f"{time:.9f}".rstrip("0")
        if text.endswith("."):
            text += "0"
    return f"{text:>12}  {label}"


@final
@attrs.define(eq=False)
class Timeline:
    """Record what happened when, on the Trio clock, and assert the whole story at once.

    Call :meth:`record` where things happen (or pass :meth:`hook` to a
    guard's ``hooks=``); then :meth:`assert_matches` compares every event,
    in order, with the times and labels you expect, and on a mismatch prints
    a diff of the two timelines::

        timeline = Timeline()

        async def fetch(name):
            timeline.record(f"start {name}")
            await trio.sleep(1.5)
            timeline.record(f"done {name}")

        await trine.gather(lambda: fetch("a"), lambda: fetch("b"))
        timeline.assert_matches(
            [(0.0, "start a"), (0.0, "start b"), (1.5, "done a"), (1.5, "done b")]
        )

    Events at the same time may be listed in either order (concurrent tasks
    that wake together run in an order Trio's scheduler picks); events at
    different times must come in time order. Under the autojump clock
    (``autojump_clock``) time starts at 0.0, so the times are the offsets
    from the start of the test. The pytest plugin gives each test a fresh one
    as the ``timeline`` fixture.
    """

    events: list[TimelineEvent] = attrs.field(factory=list, init=False)
    """Every event, in the order it was recorded."""

    def record(self, label: str) -> None:
        """Add *label* at the current :func:`trio.current_time`.

        Raises:
          TypeError: if *label* is not a ``str``.
          RuntimeError: outside a Trio run (there is no clock to read).
        """
        label = _check_label(label)
        self.events.append(TimelineEvent(trio.current_time(), label))

    def hook(self, event: object) -> None:
        """A hook for a guard's ``hooks=``: record the event by its kind and guard name.

        ``trine.Retry(hooks=[timeline.hook], name="users")`` records
        ``"RetryScheduled users"`` at each retry; an event without a name is
        recorded by its kind alone. For other labels, write a hook that calls
        :meth:`record`.
        """
        name = getattr(event, "name", None)
        kind = type(event).__name__
        self.record(kind if name is None else f"{kind} {name}")

    def labels(self) -> list[str]:
        """The labels, in the order they were recorded."""
        return [event.label for event in self.events]

    def assert_matches(
        self, expected: Iterable[tuple[float, str]], *, tolerance: float = 1e-9
    ) -> None:
        """Assert that the events are exactly *expected*: ``[(time, label), ...]``.

        Times match within *tolerance* seconds (float rounding only, by
        default). Within a group of events at one time the order is free.

        Raises:
          AssertionError: with a diff, ``-`` for expected lines and ``+`` for
            recorded ones, if an event is missing, extra, at another time, or
            out of time order.
          TypeError, ValueError: if *expected* is not a list of
            ``(number, str)`` pairs, or *tolerance* is not a number ``>= 0``.
        """
        tolerance = check_number("tolerance", tolerance)
        wanted = _check_expected(expected)
        actual = [(event.time, event.label) for event in self.events]
        if _same(wanted, actual, tolerance):
            return
        wanted_lines, actual_lines = _lines(wanted, actual, tolerance, exact=False)
        if wanted_lines == actual_lines:  # differences finer than a nanosecond
            wanted_lines, actual_lines = _lines(wanted, actual, tolerance, exact=True)
        diff = difflib.unified_diff(
            wanted_lines, actual_lines, "expected", "recorded", lineterm="", n=len(wanted_lines)
        )
        raise AssertionError(
            "the timeline does not match (- expected, + recorded):\n" + "\n".join(diff)
        )


def _lines(
    wanted: list[tuple[float, str]],
    actual: list[tuple[float, str]],
    tolerance: float,
    *,
    exact: bool,
) -> tuple[list[str], list[str]]:
    wanted_lines = [_line(time, label, exact) for time, label in wanted]
    # Where a recorded time is within tolerance of the expected one on the
    # same line, show the expected text, so the diff shows only real changes.
    actual_lines = []
    for index, (time, label) in enumerate(actual):
        if index < len(wanted) and math.isclose(
            time, wanted[index][0], rel_tol=0.0, abs_tol=tolerance
        ):
            time = wanted[index][0]
        actual_lines.append(_line(time, label, exact))
    return wanted_lines, actual_lines


def _check_expected(expected: object) -> list[tuple[float, str]]:
    if not isinstance(expected, Iterable) or isinstance(expected, str | bytes):
        close_unawaited(expected)  # a coroutine given by mistake: no "never awaited" warning too
        raise TypeError(f"expected must be a list of (time, label) pairs, got {expected!r}")
    pairs = []
    for pair in expected:
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], str)):
            raise TypeError(f"expected must contain (time, label) pairs, got {pair!r}")
        pairs.append((check_number("expected time", pair[0], minimum=-math.inf), pair[1]))
    return pairs


def _same(
    wanted: list[tuple[float, str]], actual: list[tuple[float, str]], tolerance: float
) -> bool:
    """Equal, event by event, allowing any order among events at one time."""
    if len(wanted) != len(actual):
        return False
    start = 0
    while start < len(wanted):
        # The group of expected events at (about) one time, compared as a multiset.
        end = start + 1
        while end < len(wanted) and math.isclose(
            wanted[end][0], wanted[start][0], rel_tol=0.0, abs_tol=tolerance
        ):
            end += 1
        time = wanted[start][0]
        group = actual[start:end]
        if any(not math.isclose(t, time, rel_tol=0.0, abs_tol=tolerance) for t, _ in group):
            return False
        if sorted(label for _, label in group) != sorted(label for _, label in wanted[start:end]):
            return False
        start = end
    return True
