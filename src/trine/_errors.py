"""The exceptions trine raises on its own.

Everything trine raises itself derives from :class:`TrineError`, so one
``except trine.TrineError`` catches every refusal trine makes. Exceptions
raised by the user's own functions pass through trine unchanged, and
:exc:`trio.Cancelled` is never wrapped or replaced.

The class tree::

    Exception
     └── TrineError
          ├── BatcherFull
          ├── BulkheadFull
          ├── CircuitOpenError
          ├── CycleError          (also ValueError)
          ├── DeadlineExceeded    (also TimeoutError)
          ├── InjectedFault       (also ConnectionError)
          ├── NoEndpointError     (also LookupError)
          ├── RateLimitExceeded   (also trio.WouldBlock)
          └── StageError
"""

from __future__ import annotations

import trio

__all__ = [
    "BatcherFull",
    "BulkheadFull",
    "CircuitOpenError",
    "CycleError",
    "DeadlineExceeded",
    "InjectedFault",
    "NoEndpointError",
    "RateLimitExceeded",
    "StageError",
    "TrineError",
]


class TrineError(Exception):
    """Base class of every exception that trine raises on its own.

    Exceptions from the functions you pass to trine are never wrapped in a
    :class:`TrineError`; they reach you as they were raised.
    """


class RateLimitExceeded(TrineError, trio.WouldBlock):
    """A rate limiter refused a call that was asked not to wait.

    Raised by :meth:`RateLimiter.acquire_nowait <trine.RateLimiter.acquire_nowait>`
    and :meth:`SlidingWindowLimiter.acquire_nowait <trine.SlidingWindowLimiter.acquire_nowait>`.
    It is also a :exc:`trio.WouldBlock`, which Trio's own ``*_nowait`` methods raise.

    Attributes:
      retry_after: seconds until the call would have been admitted had it
        waited in line instead (:class:`~trine.Retry` honours it).
    """

    retry_after: float

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[object, ...]:
        # Keep retry_after through pickling (the default would drop the keyword).
        return (_rebuild_rate_limit_exceeded, (str(self), self.retry_after))


def _rebuild_rate_limit_exceeded(message: str, retry_after: float) -> RateLimitExceeded:
    return RateLimitExceeded(message, retry_after=retry_after)


class BulkheadFull(TrineError):
    """A :class:`~trine.Bulkhead` refused a call instead of queueing it.

    Raised at once when every slot is taken and the waiting room is full, or
    after a waiter has waited ``max_wait`` seconds without getting a slot
    (then :attr:`timed_out` is true). Either way the call never ran.
    """

    max_concurrent: int
    """The bulkhead's ``max_concurrent``."""
    max_waiting: int
    """The bulkhead's ``max_waiting``."""
    max_wait: float | None
    """The bulkhead's ``max_wait``, in seconds (``None``: wait without limit)."""
    timed_out: bool
    """``True`` if the call waited ``max_wait`` seconds, ``False`` if it was refused at once."""

    def __init__(
        self,
        *,
        max_concurrent: int,
        max_waiting: int,
        max_wait: float | None,
        timed_out: bool,
    ) -> None:
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.max_wait = max_wait
        self.timed_out = timed_out
        if timed_out:
            message = (
                f"bulkhead full: waited {max_wait:g} s (max_wait) "
                f"and none of its {max_concurrent} slots came free"
            )
        else:
            message = (
                f"bulkhead full: {max_concurrent} of {max_concurrent} slots in use "
                f"and {max_waiting} of {max_waiting} waiting places taken"
            )
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        # keyword-only __init__: rebuild through a helper so pickling works
        return (
            _rebuild_bulkhead_full,
            (self.max_concurrent, self.max_waiting, self.max_wait, self.timed_out),
        )


def _rebuild_bulkhead_full(
    max_concurrent: int, max_waiting: int, max_wait: float | None, timed_out: bool
) -> BulkheadFull:
    return BulkheadFull(
        max_concurrent=max_concurrent,
        max_waiting=max_waiting,
        max_wait=max_wait,
        timed_out=timed_out,
    )


class BatcherFull(TrineError):
    """A :class:`~trine.Batcher` refused a load because its queue is full.

    Raised at once by :meth:`Batcher.load <trine.Batcher.load>` when
    ``max_waiting`` items already wait to be sent (every concurrent batch
    call is busy, and the batch being filled and the batches queued behind
    them hold that many keys). The load never joined a batch.
    """

    max_waiting: int
    """The batcher's ``max_waiting``."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting
        super().__init__(
            f"batcher full: {max_waiting} items already wait to be sent (max_waiting={max_waiting})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (BatcherFull, (self.max_waiting,))


class CycleError(TrineError, ValueError):
    """The dependencies of a :class:`~trine.TaskGraph` (or of named jobs) form a cycle.

    The message names it, ``cycle: a -> b -> a``, and :attr:`cycle` lists it,
    the first name repeated at the end. It is also a :exc:`ValueError`: a
    cycle is a bad argument.
    """

    cycle: list[str]
    """The names along the cycle, ``["a", "b", "a"]`` for ``a -> b -> a``."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("cycle: " + " -> ".join(self.cycle))

    def __reduce__(self) -> tuple[object, ...]:
        return (CycleError, (self.cycle,))


class DeadlineExceeded(TrineError, TimeoutError):
    """A call was cancelled at the deadline of a partial-results API before it finished.

    Never raised by trine itself: it is what the outcome of such a call holds,
    ``outcome.Error(DeadlineExceeded(...))``, in the list that
    :func:`~trine.settle` or :func:`~trine.map_settled` returns when given
    ``deadline=`` or ``timeout=``. ``result.unwrap()`` raises it. It is also a
    :exc:`TimeoutError`, so ``except TimeoutError`` around the unwrap catches
    it. A call cancelled from outside (a cancel scope around the whole call)
    never gets one: that cancellation propagates as :exc:`trio.Cancelled`.

    Attributes:
      deadline: the deadline, as a :func:`trio.current_time` value.
    """

    deadline: float

    def __init__(self, deadline: float) -> None:
        super().__init__(deadline)
        self.deadline = deadline

    def __str__(self) -> str:
        return (
            f"cancelled at the deadline ({self.deadline:.6g} on the Trio clock) before it finished"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (DeadlineExceeded, (self.deadline,))


class CircuitOpenError(TrineError):
    """A :class:`~trine.CircuitBreaker` refused a call without running it.

    Raised at once, without calling your function, while the breaker is open,
    forced open, or half-open with every probe slot taken.

    Attributes:
      name: the breaker's name, or ``None`` if it was not given one.
      retry_after: seconds (on the Trio clock, ``>= 0``) until the breaker
        would admit a probe: the rest of the reset timeout while it is open,
        ``0.0`` while it is half-open (a slot frees whenever a probe finishes,
        which cannot be predicted), and ``math.inf`` while it is forced open
        (only :meth:`~trine.CircuitBreaker.reset` admits calls again).
        :class:`~trine.Retry` honours it.
      state: the state the breaker was in when it refused, as a string
        (``"open"``, ``"half_open"`` or ``"forced_open"``).
    """

    def __init__(self, name: str | None, retry_after: float, state: str = "open") -> None:
        # args keep every constructor argument, so the error pickles and copies.
        super().__init__(name, retry_after, state)
        self.name = name
        self.retry_after = retry_after
        self.state = state

    def __str__(self) -> str:
        breaker = "circuit breaker" if self.name is None else f"circuit breaker {self.name!r}"
        if self.state == "half_open":
            return f"{breaker} is half-open and all its probe slots are taken; retry shortly"
        if self.state == "forced_open":
            return f"{breaker} is forced open; calls are rejected until reset()"
        return f"{breaker} is open; a probe will be admitted in {self.retry_after:.6g} s"


class StageError(TrineError):
    """A pipeline stage failed on an item (with ``on_error="raise"``).

    The pipeline was cancelled; the exception the stage's function raised is
    this error's ``__cause__``. When the source itself fails, :attr:`stage`
    is ``"source"`` and :attr:`item` is ``None``.
    """

    stage: str
    """The failing stage's name."""
    item: object
    """The item it failed on."""

    def __init__(self, message: str, *, stage: str, item: object) -> None:
        super().__init__(message)
        self.stage = stage
        self.item = item


class InjectedFault(TrineError, ConnectionError):
    """The failure a :class:`~trine.Chaos` injected instead of running the call.

    A :exc:`ConnectionError` too, like the network failure it stands in for,
    so code that handles ``OSError`` (and every guard's default ``on=`` /
    ``record=`` of :exc:`Exception`) treats it as a real one.

    Attributes:
      name: the injecting Chaos's name, or ``None``.
    """

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        source = "chaos" if self.name is None else f"chaos {self.name!r}"
        return f"fault injected by {source}"


class NoEndpointError(TrineError, LookupError):
    """A :class:`~trine.Balancer` has no endpoint that could take the call.

    Raised at once, without calling your function, when the balancer holds
    no endpoint at all or none that the call's ``where=`` predicate accepts.
    (When there are endpoints but every one is open, ejected or unhealthy,
    the balancer raises :exc:`~trine.CircuitOpenError` instead, with the
    soonest ``retry_after``.) It is also a :exc:`LookupError`.

    Attributes:
      endpoints: how many endpoints the balancer held.
    """

    def __init__(self, message: str, *, endpoints: int) -> None:
        super().__init__(message)
        self.endpoints = endpoints

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_no_endpoint_error, (str(self), self.endpoints))


def _rebuild_no_endpoint_error(message: str, endpoints: int) -> NoEndpointError:
    return NoEndpointError(message, endpoints=endpoints)
