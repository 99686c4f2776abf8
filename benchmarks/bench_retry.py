"""Success-path overhead of Retry around a trivial async function.

Every variant awaits a function that returns at once, N times in one
``trio.run``; the ratio is to awaiting it bare. Nothing fails, so this is the
price of having a retry in place on the path that matters most. Peers
(tenacity's ``AsyncRetrying`` and decorator, stamina's decorator, both of
which sleep with Trio when Trio runs them) are run in the same process.

Results (``python -m benchmarks retry --repeat 5``, medians, 2 shared cores,
N = 20,000; per-call cost in microseconds, ratio to bare)::

    variant                                        per call   ratio
    bare await fn()                                 0.09us    1.00x
    hand-written try/except loop                    0.12us    1.31x
    trine retry.call(fn)                            1.06us   11.6x
    trine @retry                                    1.16us   12.7x
    trine async for attempt in retry                1.53us   16.8x
    trine retry.call, budget + timeout              5.36us   58.7x
    tenacity AsyncRetrying (async for)             30.4us   333x
    tenacity @retry                                28.9us   317x
    stamina @retry                                 32.7us   358x

What the numbers say: a trine retry costs about 1 us per call when nothing
fails (one attrs state object, the ``on``-independent counters, no
checkpoint of its own), 25-30x less than tenacity or stamina, which build a
retry-state object and consult their strategy objects on every call. The
ratios to "bare" look large only because the bare call does no work at all;
next to any real I/O (a Trio checkpoint alone is ~8 us here) a retry is
noise. A ``timeout`` costs a :class:`trio.CancelScope` per call and a
``budget`` a clock read and bucket update, together ~4 us.
"""

from __future__ import annotations

import trio

import trine
from benchmarks._harness import Case, Variant, installed, timed

N = 20_000


async def _work() -> int:
    return 1


def _run(body) -> float:
    def go() -> None:
        trio.run(body)

    return timed(go)


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


def _hand_written_timeout() -> float:
    async def main() -> None:
        for _ in range(N):
            with trio.fail_after(10.0):
                for attempt in range(3):
                    try:
                        await _work()
                        break
                    except Exception:
                        if attempt == 2:
                            raise
                        await trio.sleep(0.1 * 2**attempt)

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
    Variant("bare await fn()", _bare, baseline=True),
    Variant("hand-written try/except loop", _hand_written),
    Variant("trine retry.call(fn)", _trine_call),
    Variant("trine @retry", _trine_decorator),
    Variant("trine async for attempt in retry", _trine_async_for),
    Variant("trine retry.call, budget", _trine_budget),
    Variant("hand-written loop in trio.fail_after", _hand_written_timeout),
    Variant("trine retry.call, timeout", _trine_timeout),
    Variant("trine retry.call, budget + timeout", _trine_budget_timeout),
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
        variants=_variants,
    ),
]
