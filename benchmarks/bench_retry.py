"""Success-path overhead of Retry around a trivial async function.

Every variant awaits a function that returns at once, N times in one
``trio.run``; the ratio is to the hand-written loop. Nothing fails, so this is the
price of having a retry in place on the path that matters most. Peers
(tenacity's ``AsyncRetrying`` and decorator, stamina's decorator, both of
which sleep with Trio when Trio runs them) are run in the same process.

The baselines are the strongest hand-written loops: a try/except loop, and
for a timeout over all attempts the same loop in a bare ``move_on_after``
scope whose ``cancelled_caught`` is checked (``fail_after``, the common
idiom, is an extra row).

Results (``python -m benchmarks retry --repeat 5``, medians of CPU time,
N = 20,000 calls, 2 cores shared with other jobs at a load average of about
5, so +-20 %; calls/item are exact)::

    retry-success-path                        per call   ratio  calls
      hand-written try/except loop              0.42us   1.00x    1.0
      trine retry.call(fn)                      0.52us   1.23x    2.0
      trine @retry                              0.97us   2.32x    3.0
      trine async for attempt in retry          3.08us   7.35x   12.0
      trine retry.call, budget                  1.27us   3.04x    7.0
      bare await fn() (no retry)                0.17us   0.42x    1.0
      tenacity AsyncRetrying (async for)       49.38us 118.00x  165.0
      tenacity @retry                          45.99us 109.90x  179.0
      stamina @retry                           43.41us 103.74x   87.0
    retry-with-timeout
      hand-written loop in move_on_after       10.66us   1.00x   41.0
      hand-written loop in fail_after (weaker) 11.34us   1.06x   47.0
      trine retry.call, timeout                10.36us   0.97x   42.0
      trine retry.call, budget + timeout       12.02us   1.13x   47.0

What the numbers say: on the success path ``retry.call`` costs about a tenth
of a microsecond over a hand-written try/except loop (one Python call: its own
frame), and about 100x less than tenacity or stamina, which build a
retry-state object and consult strategy objects on every call. Two changes got it there: the
counters live in a plain slotted object (the frozen attrs fields give
``Retry`` a Python-level ``__setattr__`` that made each counter update slow:
2.0us -> 0.67us), and the first attempt runs inline in ``call()`` with no
state object until something fails. The decorator adds one coroutine frame;
the ``async for`` form pays for an iterator, an attempt object and two
``__anext__`` calls. A budget adds a clock read and a bucket update
(~0.8us). A ``timeout`` costs one :class:`trio.CancelScope` per call, ~10us
here, which is what the hand-written loop in ``move_on_after`` costs too: it
is Trio's price, not trine's. The ratios to "bare" look large only because
the bare function does nothing; next to real I/O the retry is noise.
"""

from __future__ import annotations

import time

import trio

import trine
from benchmarks._harness import Case, Variant, installed, run_trio

N = 20_000


async def _work() -> int:
    return 1


def _run(body) -> float:
    """CPU seconds of one ``trio.run(body)``: CPU time, not wall time, so that other
    jobs on a shared machine move the ratios less."""
    start = time.process_time()
    run_trio(body)
    return time.process_time() - start


def _bare() -> float:
    async def main() -> None:
        for _ in range(N):
            await _work()

    return _run(main)


def _hand_written() -> float:
    async def main() -> None:
        for _ in range(N):
            for attempt in range(3):
                try:
                    await _work()
                    break
                except Exception:
                    if attempt == 2:
                        raise
                    await trio.sleep(0.1 * 2**attempt)

    return _run(main)


def _hand_written_timeout(*, fail_after: bool) -> float:
    """The loop inside one deadline for all attempts. The strongest form uses a bare
    ``move_on_after`` scope and checks ``cancelled_caught`` (as Retry does);
    ``fail_after``, the common idiom, is a weaker extra row."""

    async def attempts() -> None:
        for attempt in range(3):
            try:
                await _work()
                break
            except Exception:
                if attempt == 2:
                    raise
                await trio.sleep(0.1 * 2**attempt)

    async def main() -> None:
        for _ in range(N):
            if fail_after:
                with trio.fail_after(10.0):
                    await attempts()
            else:
                with trio.move_on_after(10.0) as scope:
                    await attempts()
                if scope.cancelled_caught:
                    raise trio.TooSlowError

    return _run(main)


def _trine_timeout() -> float:
    async def main() -> None:
        retry = trine.Retry(3, timeout=10.0)
        for _ in range(N):
            await retry.call(_work)

    return _run(main)


def _trine_budget() -> float:
    async def main() -> None:
        retry = trine.Retry(3, budget=trine.RetryBudget())
        for _ in range(N):
            await retry.call(_work)

    return _run(main)


def _trine_call() -> float:
    retry = trine.Retry(3)

    async def main() -> None:
        for _ in range(N):
            await retry.call(_work)

    return _run(main)


def _trine_decorator() -> float:
    work = trine.Retry(3)(_work)

    async def main() -> None:
        for _ in range(N):
            await work()

    return _run(main)


def _trine_async_for() -> float:
    retry = trine.Retry(3)

    async def main() -> None:
        for _ in range(N):
            async for attempt in retry:
                with attempt:
                    await _work()

    return _run(main)


def _trine_budget_timeout() -> float:
    async def main() -> None:
        retry = trine.Retry(3, budget=trine.RetryBudget(), timeout=10.0)
        for _ in range(N):
            await retry.call(_work)

    return _run(main)


def _tenacity_async_for() -> float:
    import tenacity

    async def main() -> None:
        for _ in range(N):
            async for attempt in tenacity.AsyncRetrying(
                stop=tenacity.stop_after_attempt(3), reraise=True
            ):
                with attempt:
                    await _work()

    return _run(main)


def _tenacity_decorator() -> float:
    import tenacity

    work = tenacity.retry(stop=tenacity.stop_after_attempt(3), reraise=True)(_work)

    async def main() -> None:
        for _ in range(N):
            await work()

    return _run(main)


def _stamina_decorator() -> float:
    import stamina

    work = stamina.retry(on=Exception, attempts=3)(_work)

    async def main() -> None:
        for _ in range(N):
            await work()

    return _run(main)


_variants = [
    Variant("hand-written try/except loop", _hand_written, baseline=True),
    Variant("trine retry.call(fn)", _trine_call),
    Variant("trine @retry", _trine_decorator),
    Variant("trine async for attempt in retry", _trine_async_for),
    Variant("trine retry.call, budget", _trine_budget),
    Variant("bare await fn() (no retry)", _bare),
]
if installed("tenacity"):
    _variants += [
        Variant("tenacity AsyncRetrying (async for)", _tenacity_async_for),
        Variant("tenacity @retry", _tenacity_decorator),
    ]
if installed("stamina"):
    _variants.append(Variant("stamina @retry", _stamina_decorator))

CASES = [
    Case(
        name="retry-success-path",
        description=f"{N} successful calls of a trivial async fn through a retry",
        per=N,
        count_calls=True,
        variants=_variants,
    ),
    Case(
        name="retry-with-timeout",
        description=f"{N} successful calls with a timeout over all attempts",
        per=N,
        count_calls=True,
        variants=[
            Variant(
                "hand-written loop in move_on_after",
                lambda: _hand_written_timeout(fail_after=False),
                baseline=True,
            ),
            Variant(
                "hand-written loop in fail_after (weaker)",
                lambda: _hand_written_timeout(fail_after=True),
            ),
            Variant("trine retry.call, timeout", _trine_timeout),
            Variant("trine retry.call, budget + timeout", _trine_budget_timeout),
        ],
    ),
]
