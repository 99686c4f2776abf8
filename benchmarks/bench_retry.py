"""Success-path overhead of Retry around a trivial async function.

Every variant awaits a function that returns at once, N times in one
``trio.run``; the ratio is to awaiting it bare. Nothing fails, so this is the
price of having a retry in place on the path that matters most. Peers
(tenacity's ``AsyncRetrying`` and decorator, stamina's decorator, both of
which sleep with Trio when Trio runs them) are run in the same process.

Results (``python -m benchmarks retry --repeat 5``, medians, 2 shared cores,
N = 20,000 calls; per-call cost and ratio to the bare await)::

    variant                                  per call    ratio
    bare await fn()                            0.11us    1.00x
    hand-written try/except loop               0.39us    3.48x
    trine retry.call(fn)                       0.67us    6.00x
    trine @retry                               1.31us   11.65x
    trine async for attempt in retry           3.80us   33.83x
    trine retry.call, budget                   1.38us   12.23x
    hand-written loop in trio.fail_after      14.14us  125.73x
    trine retry.call, timeout                 15.38us  136.81x
    trine retry.call, budget + timeout        16.62us  147.84x
    tenacity AsyncRetrying (async for)        53.75us  478.04x
    tenacity @retry                           50.15us  445.95x
    stamina @retry                            41.01us  364.70x

What the numbers say: on the success path ``retry.call`` costs about half a
microsecond over a bare await, close to a hand-written try/except loop, and
60-80x less than tenacity or stamina, which build a retry-state object and
consult strategy objects on every call. Two changes got it there: the
counters live in a plain slotted object (the frozen attrs fields give
``Retry`` a Python-level ``__setattr__`` that made each counter update slow:
2.0us -> 0.67us), and the first attempt runs inline in ``call()`` with no
state object until something fails. The decorator adds one coroutine frame;
the ``async for`` form pays for an iterator, an attempt object and two
``__anext__`` calls. A budget adds a clock read and a bucket update
(~0.7us). A ``timeout`` costs one :class:`trio.CancelScope` per call, ~14us
here, which is what ``trio.fail_after`` around a hand-written loop costs too:
it is Trio's price, not trine's. The ratios to "bare" look large only because
the bare function does nothing; next to real I/O the retry is noise.
"""

from __future__ import annotations

import trio

import trine
from benchmarks._harness import Case, Variant, installed, run_trio, timed

N = 20_000


async def _work() -> int:
    return 1


def _run(body) -> float:
    def go() -> None:
        run_trio(body)

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
