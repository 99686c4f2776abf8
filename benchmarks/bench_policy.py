"""Success-path overhead of :class:`trine.Policy` around a trivial async function.

Each case awaits a function that returns at once, ``N`` times in a row, and
compares ``policy.call(fn)`` with the same guards written by hand in Trio
(the baseline) and with calling ``fn`` bare.

What the numbers say (``python -m benchmarks policy --repeat 5``, medians,
2 shared cores, so +-10 %)::

    policy_empty            bare await fn(x)                     0.10 us   1.00x
                            Policy().call(fn, x)                 0.27 us   2.67x
                            @Policy() decorated fn(x)            0.27 us   2.62x
    policy_timeout          trio: with fail_after(5): fn(x)      7.02 us   1.00x
                            Policy(timeout=5).call(fn, x)        6.37 us   0.91x
    policy_limiter_timeout  trio: async with limiter+fail_after 14.61 us   1.00x
                            Policy(limiter=.., timeout=5).call  12.63 us   0.86x

A full ``Policy(retry=Retry(attempts=3), breaker=CircuitBreaker(),
limiter=CapacityLimiter(10), timeout=5)`` (``policy_full``, one run under
load from other work)::

    bare await fn(x)                                  0.12 us    1.00x
    by hand: retry loop + limiter + fail_after       12.86 us  109.5x
    Policy(retry, breaker, limiter, timeout)         15.99 us  136.1x

  The hand-written loop has no breaker; the breaker (~1.5 us) and the retry
  layer (~0.7 us) are most of the 3 us difference. Nearly all the rest is
  Trio's: one checkpoint for the limiter and one cancel scope per attempt.

* An empty Policy costs ~0.17 us per call over a bare await: one Python
  call to the prebuilt chain plus the ``fn`` check (plain functions, bound
  methods and partials skip the full ``check_async_callable``; before that
  shortcut ``Policy().call`` cost 1.0 us, 8.9x bare).
* With layers, the cost is the Trio machinery, not the Policy: a cancel
  scope with a deadline is ~6-7 us here, and acquiring a CapacityLimiter is
  a checkpoint (a trip through the scheduler). The Policy is slightly
  *faster* than the hand-written code because it enters a bare
  ``move_on_after`` scope instead of ``fail_after``'s generator-based
  context manager; absent layers add nothing, since the chain is built once
  at construction and layers that only hand the call on add no coroutine
  frame.
"""

from __future__ import annotations

import trio

import trine
from benchmarks._harness import Case, Variant, run_trio, timed

N = 20_000


async def _trivial(x: int) -> int:
    return x


def _run(main) -> float:
    return timed(lambda: run_trio(main))


def _bare() -> float:
    async def main() -> None:
        for i in range(N):
            await _trivial(i)

    return _run(main)


def _policy(policy: trine.Policy):
    def run() -> float:
        async def main() -> None:
            call = policy.call
            for i in range(N):
                await call(_trivial, i)

        return _run(main)

    return run


def _decorated(policy: trine.Policy):
    def run() -> float:
        wrapped = policy(_trivial)

        async def main() -> None:
            for i in range(N):
                await wrapped(i)

        return _run(main)

    return run


def _by_hand_timeout() -> float:
    async def main() -> None:
        for i in range(N):
            with trio.fail_after(5.0):
                await _trivial(i)

    return _run(main)


def _by_hand_limiter_timeout() -> float:
    async def main() -> None:
        limiter = trio.CapacityLimiter(10)
        for i in range(N):
            async with limiter:
                with trio.fail_after(5.0):
                    await _trivial(i)

    return _run(main)


def _policy_limiter_timeout() -> float:
    # A CapacityLimiter belongs to one trio.run, so build the Policy inside it.
    async def main() -> None:
        policy = trine.Policy(limiter=trio.CapacityLimiter(10), timeout=5.0)
        call = policy.call
        for i in range(N):
            await call(_trivial, i)

    return _run(main)


def _by_hand_full() -> float:
    # What a careful user writes without trine: a retry loop around a limiter
    # and a per-attempt timeout (and no breaker, which is too long to write inline).
    async def main() -> None:
        limiter = trio.CapacityLimiter(10)
        for i in range(N):
            for attempt in range(3):
                try:
                    async with limiter:
                        with trio.fail_after(5.0):
                            await _trivial(i)
                    break
                except Exception:
                    if attempt == 2:
                        raise
                    await trio.sleep(0.1 * 2**attempt)

    return _run(main)


def _policy_full() -> float:
    async def main() -> None:
        policy = trine.Policy(
            retry=trine.Retry(attempts=3),
            breaker=trine.CircuitBreaker(),
            limiter=trio.CapacityLimiter(10),
            timeout=5.0,
        )
        call = policy.call
        for i in range(N):
            await call(_trivial, i)

    return _run(main)


CASES = [
    Case(
        name="policy_empty",
        description=f"Policy() around a trivial async fn, {N} calls",
        per=N,
        variants=[
            Variant("bare await fn(x)", _bare, baseline=True),
            Variant("trine Policy().call(fn, x)", _policy(trine.Policy())),
            Variant("trine @Policy() decorated fn(x)", _decorated(trine.Policy())),
        ],
    ),
    Case(
        name="policy_timeout",
        description=f"Policy(timeout=5) around a trivial async fn, {N} calls",
        per=N,
        variants=[
            Variant("trio: with fail_after(5): await fn(x)", _by_hand_timeout, baseline=True),
            Variant("trine Policy(timeout=5).call(fn, x)", _policy(trine.Policy(timeout=5.0))),
            Variant("bare await fn(x)", _bare),
        ],
    ),
    Case(
        name="policy_limiter_timeout",
        description=f"Policy(limiter=CapacityLimiter(10), timeout=5), {N} calls",
        per=N,
        variants=[
            Variant(
                "trio: async with limiter + fail_after", _by_hand_limiter_timeout, baseline=True
            ),
            Variant("trine Policy(limiter=..., timeout=5).call", _policy_limiter_timeout),
            Variant("bare await fn(x)", _bare),
        ],
    ),
    Case(
        name="policy_full",
        description=f"Policy(retry, breaker, limiter, timeout) around a trivial fn, {N} calls",
        per=N,
        variants=[
            Variant("bare await fn(x)", _bare, baseline=True),
            Variant("trio by hand: retry loop + limiter + fail_after", _by_hand_full),
            Variant("trine Policy(retry, breaker, limiter, timeout)", _policy_full),
        ],
    ),
]
