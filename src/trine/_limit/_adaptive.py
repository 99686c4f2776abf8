"""AdaptiveLimiter: a concurrency limit that finds itself from latency and failures."""

from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Literal, final

import attrs
import trio
from trio.lowlevel import (
    Abort,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    wait_task_rescheduled,
)

from .. import _created
from .._util import check_choice, check_int, check_name, check_number, check_optional_number
from .._values import ReadOnlyValue
from ._hold import _fifo_abort, _grant, _Hold, _HoldNowait, _Waiter

__all__ = ["AdaptiveLimiter", "AdaptiveLimiterStatistics", "AdaptivePermit"]


@attrs.frozen
class AdaptiveLimiterStatistics:
    """A snapshot of an :class:`AdaptiveLimiter`, from :meth:`AdaptiveLimiter.statistics`."""

    limit: int
    """The concurrency limit in force now."""
    estimate: float
    """The algorithm's unrounded estimate; :attr:`limit` is its floor."""
    borrowed_tokens: int
    """How many calls are inside now (may exceed :attr:`limit` right after it dropped)."""
    tasks_waiting: int
    """How many calls are queued in :meth:`AdaptiveLimiter.hold`."""
    successes: int
    """Calls that finished without error (each a sample)."""
    failures: int
    """Calls that raised or were marked with :meth:`AdaptivePermit.mark_failure`."""
    slow_calls: int
    """Successful calls slower than ``latency_threshold`` (treated as drops)."""
    last_rtt: float | None
    """How long the last sampled call held its slot, in seconds."""
    long_rtt: float | None
    """The long-term average of the samples' durations (``"gradient"`` only)."""


@final
@attrs.define(eq=False, repr=False)
class AdaptivePermit:
    """One call's slot in an :class:`AdaptiveLimiter`, from ``async with lim.hold() as permit``.

    Call :meth:`mark_failure` when the call returned normally but its result
    means the service is overloaded (an HTTP 503, a "try later" reply).
    """

    _start: float
    _sequence: int
    _saturated: bool
    _failed: bool = attrs.field(default=False, init=False)

    def __repr__(self) -> str:
        state = "failed" if self._failed else "ok"
        return f"<trine.AdaptivePermit {state}>"

    def mark_failure(self) -> None:
        """Count this call as a failure (a drop) even if it returns normally."""
        self._failed = True

    @property
    def failed(self) -> bool:
        """Whether :meth:`mark_failure` was called."""
        return self._failed


def _is_cancellation(error: BaseException) -> bool:
    if isinstance(error, trio.Cancelled):
        return True
    if isinstance(error, BaseExceptionGroup):
        return error.split(trio.Cancelled)[1] is None
    return False


@final
@attrs.define(eq=False, repr=False)
class AdaptiveLimiter:
    """A concurrency limit that finds itself from latency and failures.

    A fixed limit is either too low (wasted capacity) or too high (a slow
    service gets buried). This one moves: it grows while calls succeed with
    the limit in use, and shrinks when calls fail or slow down::

        limiter = trine.AdaptiveLimiter(initial=10, max_limit=200, latency_threshold=0.5)

        async with limiter.hold() as permit:
            response = await client.get(url)
            if response.status_code == 503:
                permit.mark_failure()

    An exception raised inside ``hold()`` is a failure; so is a call marked
    with :meth:`AdaptivePermit.mark_failure`. A cancelled call is neither:
    it is not a sample at all. Durations are measured on the Trio clock,
    from the moment a call is admitted to its exit: from entry, or, for a
    call that waited, from the release that handed it its slot, whose clock
    reading ends one sample and starts the next.

    **In use.** A call *saw the limit in use* if, counting itself, at least
    ``limit`` calls were inside when it entered, or tasks were waiting when
    it finished. Only such calls make the limit grow: a limit that is never
    reached says nothing about whether a higher one would be safe.

    **Once per window.** A drop shrinks the limit only if its call entered
    after the previous decrease: the burst of failures that one overload
    causes among calls already in flight shrinks the limit once, not once per
    call (TCP does the same per round trip).

    ``algorithm="aimd"`` (additive increase, multiplicative decrease):

    * a success that saw the limit in use: ``limit + 1``;
    * a failure, or a success slower than *latency_threshold*:
      ``floor(limit * backoff_ratio)``;
    * anything else: unchanged.

    ``algorithm="gradient"`` follows Netflix concurrency-limits' Gradient2.
    It keeps an exponential average of durations over about *long_window*
    samples (``long_rtt``, started from the first sample; multiplied by 0.95
    per sample while it is more than twice the latest, so it recovers after
    an incident) and for each sample ``rtt`` computes::

        gradient = clamp(tolerance * long_rtt / rtt, 0.5, 1.0)   # 0.5 for a drop
        target   = estimate * gradient + queue_size
        estimate = estimate * (1 - smoothing) + target * smoothing

    Gradient2 adds ``queue_size`` on every sample, so under modest overload
    (latency up by less than *tolerance*, gradient near 1, while the long
    average drifts up to meet it) the limit grows for ever. Here
    ``queue_size`` is added only when the gradient is exactly 1 *and* the
    call saw the limit in use, and a sample that did not see it in use never
    raises the estimate. Growth per sample is therefore at most
    ``smoothing * queue_size``, and only while the limit is the bottleneck and
    latency is not rising.

    Either way the limit stays within ``[min_limit, max_limit]``.

    Args:
      initial: the starting limit.
      min_limit: the limit never goes below this (default 1).
      max_limit: the limit never goes above this.
      algorithm: ``"aimd"`` (default) or ``"gradient"``.
      backoff_ratio: the multiplier on a drop (AIMD), in (0, 1); default 0.9.
      latency_threshold: seconds; a successful call slower than this counts
        as a drop (default ``None``: latency alone never shrinks an AIMD limit).
      tolerance: how much slower than the long average a call may be before
        the gradient shrinks the limit (>= 1; default 1.5).
      smoothing: how far each sample moves the gradient estimate, in (0, 1]
        (default 0.2).
      queue_size: headroom added while growing (gradient; >= 0; default 4).
      long_window: about how many samples the long average spans (gradient;
        default 600).
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError: if an argument has the wrong type.
      ValueError: if an argument is out of range, or
        ``min_limit <= initial <= max_limit`` does not hold.
    """

    _initial: int = attrs.field(kw_only=True, alias="initial")
    _min_limit: int = attrs.field(default=1, kw_only=True, alias="min_limit")
    _max_limit: int = attrs.field(kw_only=True, alias="max_limit")
    _algorithm: Literal["aimd", "gradient"] = attrs.field(
        default="aimd", kw_only=True, alias="algorithm"
    )
    _backoff_ratio: float = attrs.field(default=0.9, kw_only=True, alias="backoff_ratio")
    _latency_threshold: float | None = attrs.field(
        default=None, kw_only=True, alias="latency_threshold"
    )
    _tolerance: float = attrs.field(default=1.5, kw_only=True, alias="tolerance")
    _smoothing: float = attrs.field(default=0.2, kw_only=True, alias="smoothing")
    _queue_size: float = attrs.field(default=4, kw_only=True, alias="queue_size")
    _long_window: int = attrs.field(default=600, kw_only=True, alias="long_window")
    name: str | None = attrs.field(default=None, kw_only=True)
    """The name given to the constructor (metrics and events carry it)."""

    _limit: int = attrs.field(default=0, init=False)
    _estimate: float = attrs.field(default=0.0, init=False)
    _in_flight: int = attrs.field(default=0, init=False)
    _waiters: OrderedDict[_Waiter, None] = attrs.field(factory=OrderedDict, init=False)
    _admissions: int = attrs.field(default=0, init=False)
    _decreased_at: int = attrs.field(default=0, init=False)
    _successes: int = attrs.field(default=0, init=False)
    _failures: int = attrs.field(default=0, init=False)
    _slow_calls: int = attrs.field(default=0, init=False)
    _last_rtt: float | None = attrs.field(default=None, init=False)
    _long_rtt: float | None = attrs.field(default=None, init=False)
    # limit_value, made when first asked for (None: nothing updates it)
    _limit_view: ReadOnlyValue[int] | None = attrs.field(default=None, init=False)
    _long_weight: float = attrs.field(default=0.0, init=False)  # 2 / (long_window + 1)

    def __attrs_post_init__(self) -> None:
        check_name(self.name)
        check_int("initial", self._initial)
        check_int("min_limit", self._min_limit)
        check_int("max_limit", self._max_limit)
        if self._min_limit > self._max_limit:
            raise ValueError(
                f"min_limit must be <= max_limit ({self._max_limit}), got {self._min_limit!r}"
            )
        if self._initial < self._min_limit:
            raise ValueError(
                f"initial must be >= min_limit ({self._min_limit}), got {self._initial!r}"
            )
        if self._initial > self._max_limit:
            raise ValueError(
                f"initial must be <= max_limit ({self._max_limit}), got {self._initial!r}"
            )
        check_choice("algorithm", self._algorithm, ("aimd", "gradient"))
        self._backoff_ratio = check_number(
            "backoff_ratio", self._backoff_ratio, minimum=0.0, exclusive=True
        )
        if self._backoff_ratio >= 1.0:
            raise ValueError(f"backoff_ratio must be < 1, got {self._backoff_ratio!r}")
        self._latency_threshold = check_optional_number(
            "latency_threshold", self._latency_threshold, exclusive=True
        )
        self._tolerance = check_number("tolerance", self._tolerance, minimum=1.0)
        self._smoothing = check_number("smoothing", self._smoothing, exclusive=True)
        if self._smoothing > 1.0:
            raise ValueError(f"smoothing must be <= 1, got {self._smoothing!r}")
        self._queue_size = check_number("queue_size", self._queue_size)
        check_int("long_window", self._long_window)
        self._long_weight = 2.0 / (self._long_window + 1)
        self._limit = self._initial
        self._estimate = float(self._initial)
        if _created.watchers:
            _created.announce(self, None)

    def __repr__(self) -> str:
        return (
            f"<trine.AdaptiveLimiter at {id(self):#x}, {self._algorithm} limit "
            f"{self._limit} in [{self._min_limit}, {self._max_limit}], "
            f"{self._in_flight} in flight with {len(self._waiters)} waiting>"
        )

    @property
    def limit(self) -> int:
        """The concurrency limit in force now."""
        return self._limit

    @property
    def limit_value(self) -> ReadOnlyValue[int]:
        """:attr:`limit` as a read-only :class:`trio_util.AsyncValue`, to wait on::

            await limiter.limit_value.wait_value(lambda limit: limit <= 4)

        It changes when a hold ends and the algorithm moves the limit.
        """
        view = self._limit_view
        if view is None:
            view = self._limit_view = ReadOnlyValue(self._limit, "limit_value")
        return view

    def hold(self) -> AbstractAsyncContextManager[AdaptivePermit]:
        """Hold a slot inside ``async with``, waiting for one first; yields the permit.

        The call's duration and outcome are one sample on exit (none if it
        was cancelled).
        """
        return _Hold(self, None)

    def hold_nowait(self) -> AbstractContextManager[AdaptivePermit]:
        """Like :meth:`hold`, but a plain ``with`` that never waits.

        Raises:
          trio.WouldBlock: on entry, if the limit is reached.
        """
        return _HoldNowait(self, None)

    def statistics(self) -> AdaptiveLimiterStatistics:
        """Return a snapshot of the limit and of the samples that moved it."""
        return AdaptiveLimiterStatistics(
            limit=self._limit,
            estimate=self._estimate,
            borrowed_tokens=self._in_flight,
            tasks_waiting=len(self._waiters),
            successes=self._successes,
            failures=self._failures,
            slow_calls=self._slow_calls,
            last_rtt=self._last_rtt,
            long_rtt=self._long_rtt,
        )

    def _permit(self) -> AdaptivePermit:
        self._in_flight += 1
        self._admissions += 1
        return AdaptivePermit(trio.current_time(), self._admissions, self._in_flight >= self._limit)

    def _acquire_nowait(self, arg: None) -> AdaptivePermit:
        if self._waiters or self._in_flight >= self._limit:
            raise trio.WouldBlock
        return self._permit()

    async def _acquire(self, arg: None) -> AdaptivePermit:
        await checkpoint_if_cancelled()
        if not self._waiters and self._in_flight < self._limit:
            # _permit(), inlined: this is the hot path.
            self._in_flight = in_flight = self._in_flight + 1
            self._admissions = admissions = self._admissions + 1
            permit = AdaptivePermit(trio.current_time(), admissions, in_flight >= self._limit)
            await cancel_shielded_checkpoint()
            return permit
        waiter = _Waiter(current_task())
        self._waiters[waiter] = None

        def abort(_: object) -> Abort:
            return _fifo_abort(self._waiters, waiter)

        await wait_task_rescheduled(abort)
        # _wake counted us in flight, numbered us and stamped the moment our
        # wait ended with the clock reading of the release that ended it (one
        # reading serves both holds). Having waited, we saw the limit in use.
        return AdaptivePermit(waiter.start, waiter.arrival, True)

    def _release(self, arg: None, permit: AdaptivePermit, error: BaseException | None) -> None:
        now = None
        if error is None or not _is_cancellation(error):
            failed = permit._failed or isinstance(error, Exception)
            if error is None or failed:  # KeyboardInterrupt and such: no sample
                now = trio.current_time()
                saturated = permit._saturated or bool(self._waiters)
                self._sample(now - permit._start, failed, saturated, permit)
        self._in_flight -= 1
        if self._waiters:
            self._wake(trio.current_time() if now is None else now)

    def _wake(self, now: float) -> None:
        waiters = self._waiters
        while waiters and self._in_flight < self._limit:
            waiter, _ = waiters.popitem(last=False)
            self._in_flight += 1
            self._admissions += 1
            waiter.arrival = self._admissions  # admitted before any later decrease
            waiter.start = now
            _grant(waiter)

    def _sample(self, rtt: float, failed: bool, saturated: bool, permit: AdaptivePermit) -> None:
        self._last_rtt = rtt
        slow = not failed and self._latency_threshold is not None and rtt > self._latency_threshold
        if failed:
            self._failures += 1
        else:
            self._successes += 1
            if slow:
                self._slow_calls += 1
        drop = failed or slow
        if drop:
            if permit._sequence <= self._decreased_at:
                return  # this overload already shrank the limit once
            self._decreased_at = self._admissions
        estimate: float
        if self._algorithm == "aimd":
            if drop:
                estimate = math.floor(self._estimate * self._backoff_ratio)
            elif saturated:
                estimate = self._estimate + 1
            else:
                return
        else:
            estimate = self._gradient_estimate(rtt, failed, drop, saturated)
        # Comparisons rather than min()/max(): this runs once per hold.
        if estimate < self._min_limit:
            estimate = self._min_limit
        elif estimate > self._max_limit:
            estimate = self._max_limit
        self._estimate = float(estimate)
        self._limit = math.floor(estimate)
        if self._limit_view is not None:
            self._limit_view._set(self._limit)

    def _gradient_estimate(self, rtt: float, failed: bool, drop: bool, saturated: bool) -> float:
        long_rtt = self._long_rtt
        if not failed:  # a failure's duration (often a fast error) is not a latency
            if long_rtt is None:
                long_rtt = rtt
            else:
                long_rtt += (rtt - long_rtt) * self._long_weight
                if rtt > 0 and long_rtt > 2.0 * rtt:
                    long_rtt *= 0.95  # latency fell: let the baseline follow
            self._long_rtt = long_rtt
        estimate = self._estimate
        if drop or long_rtt is None:
            gradient = 0.5
        elif rtt <= 0:
            gradient = 1.0
        else:
            gradient = self._tolerance * long_rtt / rtt
            if gradient > 1.0:
                gradient = 1.0
            elif gradient < 0.5:
                gradient = 0.5
        target = estimate * gradient
        if gradient == 1.0 and saturated:
            target += self._queue_size
        if not saturated and target > estimate:
            target = estimate
        return estimate * (1.0 - self._smoothing) + target * self._smoothing
