"""The exceptions trine raises on its own.

Everything trine raises itself derives from :class:`TrineError`, so one
``except trine.TrineError`` catches every refusal trine makes. Exceptions
raised by the user's own functions pass through trine unchanged, and
:exc:`trio.Cancelled` is never wrapped or replaced.

The class tree::

    Exception
     └── TrineError
"""

from __future__ import annotations

__all__ = ["TrineError"]


class TrineError(Exception):
    """Base class of every exception that trine raises on its own.

    Exceptions from the functions you pass to trine are never wrapped in a
    :class:`TrineError`; they reach you as they were raised.
    """
