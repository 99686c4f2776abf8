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
    leaving one restores what the enclosing code had.
    """

    __slots__ = ("_skip", "_tokens")

    def __init__(self, skip: bool = True) -> None:
        self._skip = skip
        self._tokens: list[Token[bool]] = []

    def __enter__(self) -> None:
        self._tokens.append(_SKIPPED.set(self._skip))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _SKIPPED.reset(self._tokens.pop())
