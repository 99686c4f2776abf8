"""Deadlines with partial results: the arguments, and the outcome of a call cut off.

:func:`~trine.settle` and :func:`~trine.map_settled` take ``deadline=`` (an
absolute :func:`trio.current_time` value, as :func:`trio.move_on_at` and
:attr:`trio.CancelScope.deadline` do) or ``timeout=`` (seconds from the call,
as :func:`trio.move_on_after`). At the deadline they cancel the calls still
running and return what finished; each call cut off gets
``outcome.Error(DeadlineExceeded(deadline))`` instead of a result, so nothing
that finished is lost to a :exc:`trio.TooSlowError`.
"""

from __future__ import annotations

import math

import outcome
import trio

from ._errors import DeadlineExceeded
from ._util import check_number

__all__ = ["cut_off", "resolve_deadline"]


def resolve_deadline(deadline: object, timeout: object) -> float | None:
    """The deadline on the Trio clock that *deadline* or *timeout* asks for, or ``None``.

    *deadline* is absolute (any real number; ``math.inf`` is "never"),
    *timeout* is seconds from now (``>= 0``; ``math.inf`` is "never"). At most
    one may be given. Call it inside Trio: *timeout* is counted from
    :func:`trio.current_time`.

    Raises:
      TypeError: if either is not a number (or ``None``).
      ValueError: if *deadline* is NaN or ``-inf``, *timeout* is negative or
        NaN, or both are given.
    """
    at = None
    if deadline is not None:
        at = check_number("deadline", deadline, minimum=-math.inf, allow_inf=True)
    if timeout is None:
        return at
    seconds = check_number("timeout", timeout, allow_inf=True)
    if at is not None:
        raise ValueError(
            f"deadline and timeout cannot both be given, got deadline={deadline!r} "
            f"and timeout={timeout!r}: pass the absolute time or the seconds from now"
        )
    return trio.current_time() + seconds


def cut_off(deadline: float) -> outcome.Error:
    """The outcome of a call cancelled at *deadline*: a fresh :exc:`DeadlineExceeded` each time."""
    return outcome.Error(DeadlineExceeded(deadline))
