"""Benchmarks for :func:`trine.gather`, :func:`trine.settle` and :func:`trine.race`.

``gather``: 100,000 tasks that return at once, against the hand-written Trio
nursery filling a list (the baseline), and, for reference, ``asyncio.gather``
and an anyio task group on asyncio where installed. The goal is <= 1.10x the
hand-written nursery: trine adds nothing per task but a cheap type check.
``settle``: the same tasks, against a hand-written nursery whose tasks store
an ``outcome.Value`` or ``outcome.Error`` each.

``race``: 10,000 contenders where the first returns at once and the other
9,999 sleep until cancelled, against a hand-written nursery that cancels its
own scope when a child returns.

Measured 2026-11-24 (``--repeat 5``, medians) on 2 shared cores under heavy
load from other jobs (load average about 6, so times are inflated about 3x;
the steps and Python calls per task are exact):

- gather: hand-written 55.2 us per task, trine.gather 53.0 us (0.96x), both
  1 step and 23.0 Python calls per task; asyncio.gather 49.7 us (0.90x);
  anyio task group on asyncio 282.5 us (5.1x, 67 calls).
- settle: hand-written 32.9 us, trine.settle 30.6 us (0.93x), both 1 step
  and 24.0 calls per task.
- race: hand-written 133.9 us per contender, trine.race 133.5 us (1.00x),
  2.0 steps each.

trine calls an ``async def`` function in its task, as the hand-written
nursery does; calling every function before the tasks start (to check its
result) had cost about 20 % more CPU here, nearly all of it the garbage
collector's, because each task's coroutine then stayed alive until it ran.
"""

from __future__ import annotations

import outcome
import trio

import trine
from benchmarks._harness import Case, Variant, installed, run_trio, timed

GATHER_TASKS = 100_000
RACE_TASKS = 10_000


async def _trivial() -> int:
    return 1


def _gather_trine() -> float:
    fns = [_trivial] * GATHER_TASKS

    async def main() -> None:
        results = await trine.gather(*fns)
        assert len(results) == GATHER_TASKS

    return timed(lambda: run_trio(main))


def _gather_hand_written() -> float:
    fns = [_trivial] * GATHER_TASKS

    async def main() -> None:
        results: list[int | None] = [None] * len(fns)

        async def run(index: int) -> None:
            results[index] = await fns[index]()

        async with trio.open_nursery() as nursery:
            for index in range(len(fns)):
                nursery.start_soon(run, index)
        assert len(results) == GATHER_TASKS

    return timed(lambda: run_trio(main))


def _gather_asyncio() -> float:
    import asyncio

    async def main() -> None:
        results = await asyncio.gather(*(_trivial() for _ in range(GATHER_TASKS)))
        assert len(results) == GATHER_TASKS

    return timed(lambda: asyncio.run(main()))


def _gather_anyio_asyncio() -> float:
    import anyio

    fns = [_trivial] * GATHER_TASKS

    async def main() -> None:
        results: list[int | None] = [None] * len(fns)

        async def run(index: int) -> None:
            results[index] = await fns[index]()

        async with anyio.create_task_group() as group:
            for index in range(len(fns)):
                group.start_soon(run, index)
        assert len(results) == GATHER_TASKS

    return timed(lambda: anyio.run(main, backend="asyncio"))


def _settle_trine() -> float:
    fns = [_trivial] * GATHER_TASKS

    async def main() -> None:
        results = await trine.settle(*fns)
        assert len(results) == GATHER_TASKS

    return timed(lambda: run_trio(main))


def _settle_hand_written() -> float:
    fns = [_trivial] * GATHER_TASKS

    async def main() -> None:
        results: list[outcome.Outcome[int] | None] = [None] * len(fns)

        async def run(index: int) -> None:
            try:
                value = await fns[index]()
            except Exception as exc:
                results[index] = outcome.Error(exc)
            else:
                results[index] = outcome.Value(value)

        async with trio.open_nursery() as nursery:
            for index in range(len(fns)):
                nursery.start_soon(run, index)
        assert len(results) == GATHER_TASKS

    return timed(lambda: run_trio(main))


async def _sleep_forever() -> int:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


def _race_trine() -> float:
    fns = [_trivial] + [_sleep_forever] * (RACE_TASKS - 1)

    async def main() -> None:
        assert await trine.race(*fns) == 1

    return timed(lambda: run_trio(main))


def _race_hand_written() -> float:
    fns = [_trivial] + [_sleep_forever] * (RACE_TASKS - 1)

    async def main() -> None:
        winner: list[int] = []

        async def run(index: int, scope: trio.CancelScope) -> None:
            value = await fns[index]()
            if not winner:
                winner.append(value)
                scope.cancel()

        async with trio.open_nursery() as nursery:
            for index in range(len(fns)):
                nursery.start_soon(run, index, nursery.cancel_scope)
        assert winner == [1]

    return timed(lambda: run_trio(main))


_gather_variants = [
    Variant("hand-written nursery filling a list", _gather_hand_written, baseline=True),
    Variant("trine.gather", _gather_trine),
    Variant("asyncio.gather (asyncio)", _gather_asyncio),
]
if installed("anyio"):
    _gather_variants.append(Variant("anyio task group (asyncio)", _gather_anyio_asyncio))

CASES = [
    Case(
        name="gather",
        description=f"{GATHER_TASKS:,} tasks returning at once",
        per=GATHER_TASKS,
        variants=_gather_variants,
        count_calls=True,
    ),
    Case(
        name="settle",
        description=f"{GATHER_TASKS:,} tasks returning at once, one outcome each",
        per=GATHER_TASKS,
        variants=[
            Variant("hand-written nursery filling outcomes", _settle_hand_written, baseline=True),
            Variant("trine.settle", _settle_trine),
        ],
        count_calls=True,
    ),
    Case(
        name="race",
        description=f"{RACE_TASKS:,} contenders, the first wins at once",
        per=RACE_TASKS,
        variants=[
            Variant("hand-written nursery cancelling itself", _race_hand_written, baseline=True),
            Variant("trine.race", _race_trine),
        ],
    ),
]
