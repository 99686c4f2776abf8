"""A cap on retries shared by many :class:`~trine.Retry` objects: :class:`RetryBudget`."""

from __future__ import annotations

import math
from typing import final

import attrs
import trio

from .. import _created
from .._util import check_int, check_name, check_number, check_time_width

__all__ = ["RetryBudget", "RetryBudgetStatistics"]


@attrs.frozen
class RetryBudgetStatistics:
    """What :meth:`RetryBudget.statistics` reports, counted over the current window."""

    requests: int
    """Calls (first attempts) deposited in the window."""
    retries: int
    """Retries withdrawn in the window."""
    balance: float
    """``ratio * requests + min_per_second * window - retries``: how many more
    retries the window allows now (a retry needs a balance of at least 1)."""
    refusals: int
    """Retries refused since the budget was created."""


_NEVER = -(2**63)  # the bucket number of a slot that was never used


@final
@attrs.define(eq=False, init=False)
class RetryBudget:
    """A cap on retries, as a share of the traffic, shared by many :class:`Retry` objects.

    Retries help when failures are rare and independent; during an outage they
    multiply the load on a service that is already failing (three attempts
    per call triple it). A budget stops that: every call deposits one
    request, every retry must withdraw one, and a retry is allowed only while
    the retries in the last *window* seconds stay within ::

        ratio * requests_in_window + min_per_second * window

    When it is not, the :class:`Retry` gives up at once and re-raises the
    call's error. The ``min_per_second`` reserve lets a quiet client still
    retry. This is Finagle's ``RetryBudget``; share one budget among all the
    :class:`Retry` objects that call the same service::

        budget = trine.RetryBudget(ratio=0.1)
        fetch_retry = trine.Retry(attempts=4, budget=budget)
        store_retry = trine.Retry(attempts=2, budget=budget)

    The window is kept as *buckets* counters of ``window / buckets`` seconds
    each (memory is O(buckets), not O(requests)). At a time ``t`` the window is
    the current bucket and the ``buckets - 1`` before it, so it covers more
    than the last ``window - window / buckets`` seconds and less than the last
    ``window`` seconds. The bound that holds exactly: whenever a retry is
    allowed at time ``t``, the retries in ``[t - window + window / buckets, t]``
    (this one included) are at most ``ratio`` times the requests in
    ``(t - window, t]`` plus ``min_per_second * window``.

    Time comes from :func:`trio.current_time`, so use a budget inside one
    ``trio.run``.

    Args:
      ratio: retries allowed per request, ``>= 0`` (0.2 allows 20% extra load).
      min_per_second: retries per second allowed whatever the traffic, ``>= 0``.
      window: the length of the window in seconds, ``> 0`` (its buckets must
        divide a clock reading: not below about ``buckets * 5.6e-294``).
      buckets: how many counters the window is kept in, ``>= 1``.
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError, ValueError: for an argument out of range.
    """

    ratio: float = attrs.field(on_setattr=attrs.setters.frozen)
    min_per_second: float = attrs.field(on_setattr=attrs.setters.frozen)
    window: float = attrs.field(on_setattr=attrs.setters.frozen)
    buckets: int = attrs.field(on_setattr=attrs.setters.frozen)
    _width: float = attrs.field(repr=False)
    _bucket_ids: list[int] = attrs.field(repr=False)
    _requests: list[int] = attrs.field(repr=False)
    _retries: list[int] = attrs.field(repr=False)
    _refusals: int = attrs.field(default=0, repr=False)
    name: str | None = attrs.field(default=None)
    """The name given to the constructor (metrics and events carry it)."""

    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        window: float = 10.0,
        *,
        buckets: int = 10,
        name: str | None = None,
    ) -> None:
        ratio = check_number("ratio", ratio)
        min_per_second = check_number("min_per_second", min_per_second)
        window = check_number("window", window, exclusive=True)
        buckets = check_int("buckets", buckets)
        window = check_time_width("window", window, buckets)
        self.__attrs_init__(
            ratio,
            min_per_second,
            window,
            buckets,
            window / buckets,
            [_NEVER] * buckets,
            [0] * buckets,
            [0] * buckets,
        )
        self.name = check_name(name)
        if _created.watchers:
            _created.announce(self, None)

    def _slot(self) -> tuple[int, int]:
        """The current bucket number and its slot, cleared if it held an old bucket."""
        bucket = math.floor(trio.current_time() / self._width)
        index = bucket % self.buckets
        if self._bucket_ids[index] != bucket:
            self._bucket_ids[index] = bucket
            self._requests[index] = 0
            self._retries[index] = 0
        return bucket, index

    def _totals(self, bucket: int) -> tuple[int, int]:
        oldest = bucket - self.buckets
        requests = retries = 0
        for index, bucket_id in enumerate(self._bucket_ids):
            if bucket_id > oldest:
                requests += self._requests[index]
                retries += self._retries[index]
        return requests, retries

    def deposit(self) -> None:
        """Count one request (a call's first attempt). :class:`Retry` calls this for you."""
        _, index = self._slot()
        self._requests[index] += 1

    def try_withdraw(self) -> bool:
        """Take one retry from the budget if the window allows it.

        Returns:
          ``True`` (and the retry is counted) if retries in the window plus
          this one stay within ``ratio * requests + min_per_second * window``;
          ``False`` (and a refusal is counted) otherwise.
        """
        bucket, index = self._slot()
        requests, retries = self._totals(bucket)
        if retries + 1 <= self.ratio * requests + self.min_per_second * self.window:
            self._retries[index] += 1
            return True
        self._refusals += 1
        return False

    def statistics(self) -> RetryBudgetStatistics:
        """Return a :class:`RetryBudgetStatistics` for the window at the current time."""
        bucket, _ = self._slot()
        requests, retries = self._totals(bucket)
        balance = self.ratio * requests + self.min_per_second * self.window - retries
        return RetryBudgetStatistics(requests, retries, balance, self._refusals)
