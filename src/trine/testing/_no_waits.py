"""no_waits(): retries' backoff and breakers' reset timeouts take no time inside it."""

from __future__ import annotations

from .._waits import SkippedWaits

__all__ = ["no_waits"]


def no_waits() -> SkippedWaits:
    """A ``with`` block in which the waits guards make on purpose take no time.

    Inside it, a :class:`~trine.Retry`'s backoff sleeps (and the
    ``retry_after`` hints it honours) and a :class:`~trine.CircuitBreaker`'s
    reset timeout are zero, so a test of the logic around them -- what is
    retried, when the fallback answers, that a breaker opens and probes --
    runs at once on any clock and does not depend on their timing. Waits that
    are the behaviour being tested are untouched: timeouts, rate limiters,
    :class:`FakeService` latency and :class:`~trine.Chaos` delays.

    It covers the block and every Trio task started inside it (it is a
    :class:`contextvars.ContextVar`), and the shared work a service does for
    a call made inside it (a :class:`~trine.SingleFlight` run, an
    :class:`~trine.AsyncCache` load, a :class:`~trine.Batcher` call for a
    batch opened inside it, whichever task runs it), and nothing outside:
    tests running side by side do not see each other's. This is stamina's ``set_testing`` idea::

        async def test_gives_up_after_three_attempts():
            service = FakeService(fail_calls={1, 2, 3})
            with no_waits(), pytest.raises(FakeServiceError):
                await trine.Retry(attempts=3).call(service.call)
            assert service.statistics().calls == 3

    The pytest plugin also offers it as the ``no_waits`` fixture, for a whole
    test. It is a ``with`` block, not a decorator: on an ``async def`` a
    decorator would only cover creating the coroutine.
    """
    return SkippedWaits()
