"""The exceptions trine raises on its own.

Everything trine raises itself derives from :class:`TrineError`, so one
``except trine.TrineError`` catches every refusal trine makes. Exceptions
raised by the user's own functions pass through trine unchanged, and
:exc:`trio.Cancelled` is never wrapped or replaced.

The class tree::

    Exception
     └── TrineError
          └── RateLimitExceeded   (also trio.WouldBlock)
"""

from __future__ import annotations

import trio

__all__ = ["RateLimitExceeded", "TrineError"]


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
