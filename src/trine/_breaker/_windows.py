"""The failure windows of a :class:`~trine.CircuitBreaker`: the last N calls, or the last T seconds.

Both answer ``totals(number, now)`` -- (calls, failures, slow calls) in the
window -- in O(1) memory per window slot; :class:`_CountWindow` stores only
the failures and slow calls by outcome number, :class:`_TimeWindow` counts
them in fixed buckets.
"""

from __future__ import annotations

import math
from collections import deque
from typing import final

import attrs

__all__ = ["_CountWindow", "_TimeWindow"]

# A time window is split into this many buckets: memory is O(_TIME_BUCKETS) and a
# call stays in the window for between (1 - 1/_TIME_BUCKETS) * window and window seconds.
_TIME_BUCKETS = 20


@final
@attrs.define(eq=False)
class _CountWindow:
    """The outcomes of the last *size* calls.

    Outcomes are numbered from 1 in each CLOSED spell (the breaker's
    ``_recorded``); the window holds numbers ``(number - size, number]``. Only
    failures and slow calls are stored, by number, so a success costs nothing
    here: the breaker's count of outcomes is the write. Memory is O(size).
    """

    size: int
    _failed: deque[int] = attrs.field(factory=deque, init=False)
    _slow: deque[int] = attrs.field(factory=deque, init=False)

    def add(self, number: int, now: float, failed: bool, slow: bool) -> None:
        """Record outcome *number* (a success needs nothing stored)."""
        if failed:
            self._failed.append(number)
        if slow:
            self._slow.append(number)

    def totals(self, number: int, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) in the window after outcome *number*."""
        oldest = number - self.size  # the newest number that has left the window
        failed, slow = self._failed, self._slow
        while failed and failed[0] <= oldest:
            failed.popleft()
        while slow and slow[0] <= oldest:
            slow.popleft()
        return min(number, self.size), len(failed), len(slow)

    def clear(self) -> None:
        self._failed.clear()
        self._slow.clear()


@final
@attrs.define(eq=False)
class _TimeWindow:
    """The outcomes of the calls of the last *duration* seconds, in fixed buckets.

    Bucket ``b`` holds calls that finished in ``[b * width, (b + 1) * width)``;
    at time ``now`` the window holds buckets ``b > floor(now / width) - buckets``.
    """

    duration: float
    _width: float = attrs.field(init=False)
    _calls: list[int] = attrs.field(init=False)
    _failures: list[int] = attrs.field(init=False)
    _slow: list[int] = attrs.field(init=False)
    _head: int | None = attrs.field(default=None, init=False)
    """The newest bucket number that slots have been cleared up to."""
    calls: int = attrs.field(default=0, init=False)
    failures: int = attrs.field(default=0, init=False)
    slow: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self._width = self.duration / _TIME_BUCKETS
        self.clear()

    def expire(self, now: float) -> None:
        """Drop the buckets that have slid out of the window by *now*."""
        bucket = math.floor(now / self._width)
        head = self._head
        if head is None:
            self._head = bucket
            return
        if bucket <= head:
            return
        # Buckets head+1 .. bucket become current; their slots held buckets that
        # are now too old. At most _TIME_BUCKETS slots need clearing.
        for number in range(max(head + 1, bucket - _TIME_BUCKETS + 1), bucket + 1):
            slot = number % _TIME_BUCKETS
            self.calls -= self._calls[slot]
            self.failures -= self._failures[slot]
            self.slow -= self._slow[slot]
            self._calls[slot] = self._failures[slot] = self._slow[slot] = 0
        self._head = bucket

    def add(self, number: int, now: float, failed: bool, slow: bool) -> None:
        """Record an outcome at *now*."""
        head = self._head
        if head is None or math.floor(now / self._width) > head:
            self.expire(now)
            head = self._head
            assert head is not None
        slot = head % _TIME_BUCKETS
        self._calls[slot] += 1
        self._failures[slot] += failed
        self._slow[slot] += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def totals(self, number: int, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) in the window at *now*."""
        head = self._head
        if head is None or math.floor(now / self._width) > head:
            self.expire(now)
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        self._calls = [0] * _TIME_BUCKETS
        self._failures = [0] * _TIME_BUCKETS
        self._slow = [0] * _TIME_BUCKETS
        self._head = None
        self.calls = self.failures = self.slow = 0
