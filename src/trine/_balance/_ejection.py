"""OutlierEjection: the settings of Envoy's consecutive-failure ejection, checked at the door."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .._util import ExceptionFilter, check_int, check_number, exception_matcher

__all__ = ["OutlierEjection"]


def _fraction(name: str) -> Callable[[Any, Any, object], None]:
    def validate(instance: Any, attribute: Any, value: object) -> None:
        number = check_number(name, value)
        if number > 1:
            raise ValueError(f"{name} must be <= 1, got {value!r}")

    return validate


def _positive(name: str) -> Callable[[Any, Any, object], None]:
    def validate(instance: Any, attribute: Any, value: object) -> None:
        check_number(name, value, exclusive=True)

    return validate


def _count(name: str) -> Callable[[Any, Any, object], None]:
    def validate(instance: Any, attribute: Any, value: object) -> None:
        check_int(name, value)

    return validate


def _filter(name: str) -> Callable[[Any, Any, object], None]:
    def validate(instance: Any, attribute: Any, value: object) -> None:
        exception_matcher(name, value, only_exceptions=True)

    return validate


@attrs.frozen
class OutlierEjection:
    """Take an endpoint out of the rotation for a while after a run of failures (Envoy's).

    ::

        balancer = trine.Balancer(hosts, ejection=trine.OutlierEjection(consecutive_failures=5))

    After *consecutive_failures* failed calls in a row on one endpoint, it is
    *ejected*: not chosen for ``base_time * n`` seconds, where ``n`` counts its
    ejections (capped at *max_time*), so an endpoint that keeps failing stays
    out longer each time. ``n`` goes down by one for every *base_time* seconds
    the endpoint spends back in service. At most a *max_ejected* share of the
    endpoints is ejected at once (but always at least one may be), so a
    failure of every endpoint does not empty the balancer by ejection alone.

    Ejection needs no timer: an ejected endpoint is back as soon as its time
    is up, read from the clock the next time it is considered.

    Args:
      consecutive_failures: failures in a row that eject, ``>= 1``.
      base_time: seconds of the first ejection, ``> 0``.
      max_time: the longest ejection, in seconds, ``> 0``.
      max_ejected: the share of the endpoints that may be ejected at once,
        in ``[0, 1]``.
      record: the exceptions that count as failures: a class, a tuple of
        classes or a predicate (others reset the run, as a success does).

    Raises:
      TypeError, ValueError: for an argument of the wrong type or out of range.
    """

    consecutive_failures: int = attrs.field(default=5, validator=_count("consecutive_failures"))
    base_time: float = attrs.field(default=30.0, validator=_positive("base_time"))
    max_time: float = attrs.field(default=300.0, validator=_positive("max_time"))
    max_ejected: float = attrs.field(default=0.1, validator=_fraction("max_ejected"))
    record: ExceptionFilter = attrs.field(default=(Exception,), validator=_filter("record"))
