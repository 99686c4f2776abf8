"""The exceptions trine raises on its own.

Everything trine raises itself derives from :class:`TrineError`, so one
``except trine.TrineError`` catches every refusal trine makes. Exceptions
raised by the user's own functions pass through trine unchanged, and
:exc:`trio.Cancelled` is never wrapped or replaced.

The class tree::

    Exception
     └── TrineError
          └── StageError
"""

from __future__ import annotations

__all__ = ["StageError", "TrineError"]


class TrineError(Exception):
    """Base class of every exception that trine raises on its own.

    Exceptions from the functions you pass to trine are never wrapped in a
    :class:`TrineError`; they reach you as they were raised.
    """


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
