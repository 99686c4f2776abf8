"""Deliberate waits, and the switch that makes them take no time in tests.

A guard that waits *on purpose* -- a retry's backoff, a ``retry_after`` hint
honoured, a circuit breaker's reset timeout -- asks :func:`deliberate` how
long to wait instead of using its setting directly. Normally the answer is
the setting; inside :func:`trine.testing.no_waits` it is zero, so tests of the
logic around retries and breakers (what is retried, what the fallback
answers, when a breaker probes) run without caring about timing, on any clock.
This is stamina's ``set_testing`` idea, scoped instead of global: the switch
is a :class:`contextvars.ContextVar`, so it covers the block that set it and
every Trio task started inside it, and nothing else, not even a test running
next to it.

Waits that *are* the behaviour under test (a timeout, a rate limiter's
spacing, a fake service's latency) never consult it.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType
from typing import final

__all__ = ["SkippedWaits", "deliberate", "waits_skipped"]

_SKIPPED: ContextVar[bool] = ContextVar("trine_waits_skipped", default=False)
# The tokens of the blocks open in this context, innermost last. Held in a ContextVar,
# not on the SkippedWaits, so one object used by concurrent tasks (each in its own
# context) restores each task's own setting.
_OPEN: ContextVar[tuple[Token[bool], ...]] = ContextVar("trine_waits_open", default=())


def waits_skipped() -> bool:
    """Whether deliberate waits take no time here (inside :func:`trine.testing.no_waits`)."""
    return _SKIPPED.get()


def deliberate(seconds: float) -> float:
    """The seconds a guard should really wait for a deliberate wait of *seconds*: ``0.0``
    inside :func:`trine.testing.no_waits`, *seconds* otherwise."""
    return 0.0 if _SKIPPED.get() else seconds


@final
class SkippedWaits:
    """A ``with`` block (not a decorator) inside which deliberate waits take no time.

    Built by :func:`trine.testing.no_waits`. Re-entrant: blocks nest, and
    leaving one restores what the enclosing code had. One object may be used
    by several tasks at once (a module-level ``skip = no_waits()``): what a
    block restores is kept per task (per :mod:`contextvars` context), not on
    the object.
    """

    __slots__ = ("_skip",)

    def __init__(self, skip: bool = True) -> None:
        self._skip = skip

    def __enter__(self) -> None:
        token = _SKIPPED.set(self._skip)
        _OPEN.set((*_OPEN.get(), token))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        *outer, token = _OPEN.get()
        _OPEN.set(tuple(outer))
        _SKIPPED.reset(token)
