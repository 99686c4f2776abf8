"""FakeService: a scripted flaky service on the Trio clock."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable
from typing import Literal, TypeAlias, final

import attrs
import trio

from .._util import check_number

__all__ = ["FakeCall", "FakeService", "FakeServiceError", "FakeServiceStatistics"]

Latency: TypeAlias = float | Callable[[int, float], float]
"""Seconds a call takes: a number, or a function ``(call_number, start_time) -> seconds``."""


class FakeServiceError(ConnectionError):
    """The error a :class:`FakeService` raises for a failing call, by default.

    A :exc:`ConnectionError`, as a real network failure would be, so code
    that catches ``OSError`` treats it as one.

    Attributes:
      call_number: which call failed (from 1).
      retry_after: seconds the service asks the caller to wait (as an HTTP 503
        ``Retry-After`` would), or ``None``. :class:`~trine.Retry` honours it.
    """

    def __init__(self, call_number: int, retry_after: float | None = None) -> None:
        super().__init__(call_number, retry_after)
        self.call_number = call_number
        self.retry_after = retry_after

    def __str__(self) -> str:
        text = f"fake service call {self.call_number} failed"
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g} s"
        return text


@attrs.frozen
class FakeCall:
    """The record of one finished call to a :class:`FakeService`."""

    number: int
    """The call's number, from 1, in the order calls started."""
    args: tuple[object, ...]
    """The positional arguments it was given."""
    start: float
    """:func:`trio.current_time` when it started."""
    end: float
    """:func:`trio.current_time` when it returned, raised or was cancelled."""
    outcome: Literal["ok", "error", "cancelled"]
    """How it ended."""
    error: BaseException | None
    """The exception it raised (``None`` for ``"ok"`` and ``"cancelled"``)."""


@attrs.frozen
class FakeServiceStatistics:
    """Counters of a :class:`FakeService`, from :meth:`FakeService.statistics`."""

    calls: int
    """Calls started."""
    successes: int
    """Calls that returned."""
    failures: int
    """Calls that raised the scripted error."""
    cancelled: int
    """Calls cancelled before they finished."""
    in_flight: int
    """Calls running now."""
    peak_concurrency: int
    """The most calls that were ever running at once."""


def _check_latency(value: object) -> Latency:
    if callable(value):
        function: Callable[[int, float], float] = value
        return function
    return check_number("latency", value)


@final
@attrs.define(eq=False)
class FakeService:
    """A flaky service, scripted by call number and by fake time, for tests.

    Each call sleeps for its *latency* on the Trio clock, then either returns
    its call number or raises. A call fails if its number is in *fail_calls*
    (or *fail_calls* returns true for it) or if it **starts** inside one of
    the *outages*, ``[start, end)`` intervals of :func:`trio.current_time`.
    Every finished call is recorded in :attr:`calls`::

        service = FakeService(latency=0.1, fail_calls={2, 3}, outages=[(10.0, 20.0)])

        assert await service.call("GET /") == 1      # takes 0.1 s
        with pytest.raises(FakeServiceError):
            await service.call("GET /")              # call 2 fails after 0.1 s
        assert service.calls[0].args == ("GET /",)

    Args:
      latency: seconds each call takes, or a function
        ``(call_number, start_time) -> seconds``. A failing call takes its
        latency too (it fails when the answer would have come).
      fail_calls: the call numbers (from 1) that fail, or a predicate
        ``(call_number) -> bool``.
      outages: ``(start, end)`` intervals of fake time; a call that starts
        inside one fails.
      error: builds the exception for a failing call from its number. The
        default raises :class:`FakeServiceError` with *retry_after*.
      retry_after: the ``retry_after`` of the default error.

    Raises:
      TypeError, ValueError: for an invalid argument.
    """

    latency: Latency = attrs.field(default=0.0, kw_only=True, converter=_check_latency)
    fail_calls: Collection[int] | Callable[[int], bool] = attrs.field(default=(), kw_only=True)
    outages: Iterable[tuple[float, float]] = attrs.field(default=(), kw_only=True)
    error: Callable[[int], BaseException] | None = attrs.field(default=None, kw_only=True)
    retry_after: float | None = attrs.field(default=None, kw_only=True)

    calls: list[FakeCall] = attrs.field(factory=list, init=False)
    """Every finished call, in the order they finished."""
    in_flight: int = attrs.field(default=0, init=False)
    """Calls running now."""
    peak_concurrency: int = attrs.field(default=0, init=False)
    """The most calls that were ever running at once."""
    _started: int = attrs.field(default=0, init=False)
    _outages: tuple[tuple[float, float], ...] = attrs.field(init=False)
    _fails: Callable[[int], bool] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        fail_calls: object = self.fail_calls
        if callable(fail_calls):
            self._fails = fail_calls
        elif isinstance(fail_calls, Collection) and not isinstance(fail_calls, str | bytes):
            numbers: frozenset[object] = frozenset(fail_calls)
            for number in numbers:
                if isinstance(number, bool) or not isinstance(number, int):
                    raise TypeError(f"fail_calls must contain only ints, got {number!r}")
                if number < 1:
                    raise ValueError(f"fail_calls must contain call numbers >= 1, got {number!r}")
            self._fails = numbers.__contains__
        else:
            raise TypeError(
                f"fail_calls must be a collection of call numbers or a predicate, "
                f"got {fail_calls!r}"
            )
        outages = []
        given: Iterable[object] = self.outages  # checked here, whatever the annotation says
        for outage in given:
            if not (isinstance(outage, tuple) and len(outage) == 2):
                raise TypeError(f"outages must contain (start, end) pairs, got {outage!r}")
            start = check_number("outage start", outage[0], minimum=-math.inf)
            end = check_number("outage end", outage[1], minimum=-math.inf, allow_inf=True)
            if end <= start:
                raise ValueError(f"outages must have start < end, got {outage!r}")
            outages.append((start, end))
        self._outages = tuple(outages)
        error: object = self.error
        if error is not None and not callable(error):
            raise TypeError(f"error must be callable or None, got {error!r}")
        if self.retry_after is not None:
            self.retry_after = check_number("retry_after", self.retry_after)

    def fails(self, call_number: int, start: float) -> bool:
        """Whether call *call_number*, starting at fake time *start*, is scripted to fail."""
        if self._fails(call_number):
            return True
        return any(begin <= start < end for begin, end in self._outages)

    async def call(self, *args: object) -> int:
        """Make one call: sleep for its latency, then return its number or raise.

        Raises:
          FakeServiceError: (or what *error* builds) if the call is scripted to fail.
        """
        self._started += 1
        number = self._started
        start = trio.current_time()
        latency = self.latency
        seconds = latency(number, start) if callable(latency) else latency
        self.in_flight += 1
        self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
        try:
            await trio.sleep(seconds)
        except BaseException:
            self.in_flight -= 1
            self.calls.append(FakeCall(number, args, start, trio.current_time(), "cancelled", None))
            raise
        self.in_flight -= 1
        end = trio.current_time()
        if self.fails(number, start):
            error = (
                self.error(number)
                if self.error is not None
                else FakeServiceError(number, self.retry_after)
            )
            self.calls.append(FakeCall(number, args, start, end, "error", error))
            raise error
        self.calls.append(FakeCall(number, args, start, end, "ok", None))
        return number

    async def __call__(self, *args: object) -> int:
        """The same as :meth:`call`, so the service itself can be passed as the function."""
        return await self.call(*args)

    def statistics(self) -> FakeServiceStatistics:
        """Return a fresh :class:`FakeServiceStatistics` snapshot."""
        outcomes = [record.outcome for record in self.calls]
        return FakeServiceStatistics(
            calls=self._started,
            successes=outcomes.count("ok"),
            failures=outcomes.count("error"),
            cancelled=outcomes.count("cancelled"),
            in_flight=self.in_flight,
            peak_concurrency=self.peak_concurrency,
        )
