"""Retrying failed calls: :class:`Retry`, :class:`Backoff` and :class:`RetryBudget`.

A :class:`Retry` is an immutable description of *how* to retry (how many
attempts, on which errors, how long to wait between them, within which total
time) plus counters of what it did. One :class:`Retry` can be shared by any
number of tasks. It runs a call three ways::

    retry = trine.Retry(attempts=5, on=httpx.TransportError)

    response = await retry.call(client.get, url)

    @retry
    async def fetch(url: str) -> httpx.Response: ...

    async for attempt in retry:
        with attempt:
            response = await client.get(url)

A :class:`RetryBudget` shared by many :class:`Retry` objects caps retries at a
fraction of the traffic, so that during an outage retries cannot multiply the
load on the service that is already failing (Finagle's design).

The package's modules: ``_retry`` (:class:`Retry`: what to retry and the
loop of one call), ``_attempt`` (a call's state across its attempts, and
the ``async for attempt in retry`` iterator and its :class:`RetryAttempt`),
``_backoff`` (:class:`Backoff`), ``_budget`` (:class:`RetryBudget`) and
``_constructor`` (the metaclass of objects only trine builds).
"""

from ._attempt import RetryAttempt
from ._backoff import Backoff
from ._budget import RetryBudget, RetryBudgetStatistics
from ._retry import Retry, RetryOn, RetryStatistics

__all__ = [
    "Backoff",
    "Retry",
    "RetryAttempt",
    "RetryBudget",
    "RetryBudgetStatistics",
    "RetryOn",
    "RetryStatistics",
]
