"""The exceptions trine raises on its own.

Everything trine raises itself derives from :class:`TrineError`, so one
``except trine.TrineError`` catches every refusal trine makes. Exceptions
raised by the user's own functions pass through trine unchanged, and
:exc:`trio.Cancelled` is never wrapped or replaced.

The class tree::

    Exception
     └── TrineError
          └── CircuitOpenError
"""

from __future__ import annotations

__all__ = ["CircuitOpenError", "TrineError"]


class TrineError(Exception):
    """Base class of every exception that trine raises on its own.

    Exceptions from the functions you pass to trine are never wrapped in a
    :class:`TrineError`; they reach you as they were raised.
    """


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
