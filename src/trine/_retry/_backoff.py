"""How long a :class:`~trine.Retry` waits between attempts: :class:`Backoff`."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Literal, TypeAlias, final

import attrs

from .._util import check_choice, check_int, check_number
from ._constructor import _NoPublicConstructor

__all__ = ["Backoff"]

_Jitter: TypeAlias = Literal["full", "equal"] | None
_BackoffKind: TypeAlias = Literal["exponential", "decorrelated", "constant"]


@final
@attrs.frozen
class Backoff(metaclass=_NoPublicConstructor):
    """How long to wait before each retry.

    Build one with :meth:`exponential`, :meth:`decorrelated` or
    :meth:`constant`. A backoff is an immutable value; it draws its randomness
    from the :class:`random.Random` it is given, so a seeded generator replays
    the same delays::

        backoff = trine.Backoff.exponential(initial=0.5, maximum=30.0)
        list(itertools.islice(backoff.delays(random.Random(1)), 4))

    The formulas are those of the AWS Architecture Blog's "Exponential Backoff
    And Jitter", with ``n`` counting retries from 0 and
    ``v = min(maximum, initial * multiplier ** n)``:

    ======================== =====================================================
    kind                     delay before retry ``n``
    ======================== =====================================================
    exponential, no jitter   ``v``
    exponential, ``"full"``  ``uniform(0, v)``
    exponential, ``"equal"`` ``v / 2 + uniform(0, v / 2)``
    decorrelated             ``min(maximum, uniform(initial, 3 * previous))``,
                             ``previous`` being the last delay (``initial`` at first)
    constant                 ``delay``
    ======================== =====================================================
    """

    kind: _BackoffKind
    """``"exponential"``, ``"decorrelated"`` or ``"constant"``."""
    initial: float
    """The base delay, in seconds (the delay itself for a constant backoff)."""
    maximum: float
    """No delay is ever longer (a ``retry_after`` hint is capped by it too)."""
    multiplier: float
    """Growth factor per retry (exponential only; ``1.0`` otherwise)."""
    jitter: _Jitter
    """``"full"``, ``"equal"`` or ``None`` (exponential only)."""

    @classmethod
    def exponential(
        cls,
        initial: float = 0.1,
        maximum: float = 10.0,
        multiplier: float = 2.0,
        jitter: _Jitter = "full",
    ) -> Backoff:
        """Delays growing by *multiplier* per retry from *initial* up to *maximum*, with jitter.

        Args:
          initial: the base delay in seconds, ``>= 0``.
          maximum: the cap in seconds, ``>= initial``.
          multiplier: the growth per retry, ``>= 1``.
          jitter: ``"full"`` (the default: ``uniform(0, v)``, which spreads
            clients best), ``"equal"`` (``v/2 + uniform(0, v/2)``, never
            shorter than half) or ``None`` (exactly ``v``).

        Raises:
          TypeError, ValueError: for an argument out of range.
        """
        initial = check_number("initial", initial)
        maximum = _check_maximum(maximum, initial)
        multiplier = check_number("multiplier", multiplier, minimum=1.0)
        jitter = check_choice("jitter", jitter, ("full", "equal", None))
        return cls._create("exponential", initial, maximum, multiplier, jitter)

    @classmethod
    def decorrelated(cls, initial: float = 0.1, maximum: float = 10.0) -> Backoff:
        """AWS's "decorrelated jitter": each delay is ``uniform(initial, 3 * previous)``, capped.

        Args:
          initial: the smallest delay in seconds, ``> 0``; also the first "previous".
          maximum: the cap in seconds, ``>= initial``.

        Raises:
          TypeError, ValueError: for an argument out of range.
        """
        initial = check_number("initial", initial, exclusive=True)
        maximum = _check_maximum(maximum, initial)
        return cls._create("decorrelated", initial, maximum, 1.0, None)

    @classmethod
    def constant(cls, delay: float) -> Backoff:
        """The same *delay* (seconds, ``>= 0``) before every retry.

        Raises:
          TypeError, ValueError: for a *delay* that is not a finite number ``>= 0``.
        """
        delay = check_number("delay", delay)
        return cls._create("constant", delay, delay, 1.0, None)

    def delay(self, retry: int, previous: float, rng: random.Random) -> float:
        """The delay before retry number *retry* (0 for the first retry).

        Args:
          retry: how many retries came before this one (an ``int`` >= 0).
          previous: the delay before the previous retry (``initial`` for the
            first; a finite number >= 0); only the decorrelated backoff uses it.
          rng: where the jitter comes from (a :class:`random.Random`).

        Raises:
          TypeError, ValueError: for an argument out of range, naming it.
        """
        return self._delay(
            check_int("retry", retry, minimum=0),
            check_number("previous", previous),
            _check_rng(rng),
        )

    def _delay(self, retry: int, previous: float, rng: random.Random) -> float:
        """:meth:`delay` without the checks: for :class:`Retry`, whose arguments are its own."""
        if self.kind == "constant":
            return self.initial
        if self.kind == "decorrelated":
            high = max(self.initial, 3.0 * previous)
            # Clamped so float rounding in uniform() can never leave the bounds.
            return min(self.maximum, high, max(self.initial, rng.uniform(self.initial, high)))
        try:
            ceiling = min(self.maximum, self.initial * self.multiplier**retry)
        except OverflowError:  # multiplier ** retry beyond float range
            ceiling = self.maximum
        if self.jitter == "full":
            return min(ceiling, rng.uniform(0.0, ceiling))
        if self.jitter == "equal":
            half = ceiling / 2.0
            return min(ceiling, half + rng.uniform(0.0, half))
        return ceiling

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Yield the delay before each retry, forever (*rng* defaults to a new generator)."""
        # Checked here, not on the first next(): a generator would check late.
        return self._delays(random.Random() if rng is None else _check_rng(rng))

    def _delays(self, rng: random.Random) -> Iterator[float]:
        previous = self.initial
        retry = 0
        while True:
            previous = self._delay(retry, previous, rng)
            yield previous
            retry += 1


def _check_maximum(maximum: object, initial: float) -> float:
    value = check_number("maximum", maximum)
    if value < initial:
        raise ValueError(f"maximum must be >= initial ({initial:g}), got {maximum!r}")
    return value


def _check_rng(rng: object) -> random.Random:
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {rng!r}")
    return rng


_DEFAULT_BACKOFF = Backoff.exponential()
