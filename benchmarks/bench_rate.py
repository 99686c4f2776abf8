"""Benchmarks for :class:`trine.RateLimiter` and :class:`trine.SlidingWindowLimiter`.

``rate_acquire``: 100,000 ``await limiter.acquire()`` at a rate that never
makes anyone wait, against the same loop with ``await trio.lowlevel.checkpoint()``
in its place (the baseline): both checkpoint exactly once per iteration, so
the ratio is the cost of the GCRA bookkeeping on the fast path. Variants: an
unlimited (``math.inf``) rate, a huge finite rate, 1,000 rotating keys, and
``SlidingWindowLimiter`` with a huge limit. For reference, ``aiolimiter``'s
``AsyncLimiter`` at a huge rate on asyncio (``acquire()`` plus
``asyncio.sleep(0)``, since its fast path does not yield) and the bare
asyncio loop.

Measured (``--repeat 5``, medians, 2 shared cores, noisy), per iteration:

- checkpoint loop 3.23 us (baseline); ``RateLimiter(math.inf)`` 4.19 us
  (1.30x); ``RateLimiter(1e12)`` 4.19 us (1.30x); 1,000 rotating keys
  4.79 us (1.48x); ``SlidingWindowLimiter(10**9, 1.0)`` 4.37 us (1.35x).
- references: ``trio.CapacityLimiter`` acquire + release 4.78 us (1.48x);
  asyncio ``sleep(0)`` loop 2.06 us; aiolimiter ``AsyncLimiter`` +
  ``sleep(0)`` 3.10 us.

The fast path is one dictionary look-up, a few float operations and the one
checkpoint Trio's own ``CapacityLimiter.acquire`` takes: about 1 us on top of
the scheduler trip, less than a ``CapacityLimiter`` round trip. (A first
version that validated the cost with the general helper and went through one
more coroutine frame measured 1.46x; the quick ``type(cost) is int`` test and
the inlined fast path took it to 1.30x.)
"""

from __future__ import annotations

import math

import trio

import trine
from benchmarks._harness import Case, Variant, installed, run_trio, timed

ITERATIONS = 100_000
KEYS = 1_000


def _trio_loop(acquire: object | None) -> float:
    async def main() -> None:
        if acquire is None:
            for _ in range(ITERATIONS):
                await trio.lowlevel.checkpoint()
        else:
            for _ in range(ITERATIONS):
                await acquire()  # type: ignore[operator]

    return timed(lambda: run_trio(main))


def _checkpoint_loop() -> float:
    return _trio_loop(None)


def _rate_unlimited() -> float:
    return _trio_loop(trine.RateLimiter(math.inf).acquire)


def _rate_huge() -> float:
    return _trio_loop(trine.RateLimiter(1e12).acquire)


def _rate_keyed() -> float:
    limiter = trine.RateLimiter(math.inf)

    async def main() -> None:
        for index in range(ITERATIONS):
            await limiter.acquire(key=index % KEYS)

    return timed(lambda: run_trio(main))


def _sliding_window_huge() -> float:
    return _trio_loop(trine.SlidingWindowLimiter(10**9, 1.0).acquire)


def _capacity_limiter() -> float:
    limiter = trio.CapacityLimiter(1)

    async def main() -> None:
        for _ in range(ITERATIONS):
            await limiter.acquire()
            limiter.release()

    return timed(lambda: run_trio(main))


def _asyncio_loop() -> float:
    import asyncio

    async def main() -> None:
        for _ in range(ITERATIONS):
            await asyncio.sleep(0)

    return timed(lambda: asyncio.run(main()))


def _aiolimiter() -> float:
    import asyncio

    from aiolimiter import AsyncLimiter

    async def main() -> None:
        limiter = AsyncLimiter(1e12, 1)
        for _ in range(ITERATIONS):
            await limiter.acquire()
            await asyncio.sleep(0)

    return timed(lambda: asyncio.run(main()))


_variants = [
    Variant("trio: checkpoint loop (baseline)", _checkpoint_loop, baseline=True),
    Variant("trine: RateLimiter(math.inf).acquire()", _rate_unlimited),
    Variant("trine: RateLimiter(1e12).acquire()", _rate_huge),
    Variant(f"trine: RateLimiter(inf), {KEYS} keys", _rate_keyed),
    Variant("trine: SlidingWindowLimiter(10**9, 1)", _sliding_window_huge),
    Variant("trio: CapacityLimiter acquire+release (ref)", _capacity_limiter),
    Variant("asyncio: sleep(0) loop (reference)", _asyncio_loop),
]
if installed("aiolimiter"):
    _variants.append(Variant("aiolimiter: AsyncLimiter + sleep(0)", _aiolimiter))

CASES = [
    Case(
        "rate_acquire",
        f"{ITERATIONS:,} acquires that never wait, each one checkpoint",
        per=ITERATIONS,
        variants=_variants,
    ),
]
