"""Limiters: bounds, order, cancellation, validation, adaptive limits and acquire_all."""

from __future__ import annotations

import contextlib
import math
import pathlib
import pickle
import random
import re
import sys
import textwrap
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine import (
    AdaptiveLimiter,
    Bulkhead,
    BulkheadFull,
    KeyedLimiter,
    PriorityLimiter,
    WeightedSemaphore,
    acquire_all,
)
from trine._limit import open_hold
from trine.testing import ConcurrencyProbe, assert_takes


def _mock_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


# --------------------------------------------------------------------------
# The common contract, over every limiter (and trio.CapacityLimiter)


def _limiters_of_two() -> list[tuple[str, Callable[[], trine.LimiterLike]]]:
    return [
        ("CapacityLimiter", lambda: trio.CapacityLimiter(2)),
        ("WeightedSemaphore", lambda: WeightedSemaphore(2)),
        ("PriorityLimiter", lambda: PriorityLimiter(2)),
        ("KeyedLimiter.per_key", lambda: KeyedLimiter(2).for_key("k")),
        ("KeyedLimiter.total", lambda: KeyedLimiter(5, total=2).for_key("k")),
        ("Bulkhead", lambda: Bulkhead(2, max_waiting=100)),
        ("AdaptiveLimiter", lambda: AdaptiveLimiter(initial=2, min_limit=2, max_limit=2)),
    ]


LIMITERS_OF_TWO = _limiters_of_two()


def _borrowed(limiter: object) -> int:
    if isinstance(limiter, trio.Lock):
        return int(limiter.locked())
    target = getattr(limiter, "limiter", limiter)  # a KeyedLimiter view
    stats = target.statistics()  # type: ignore[attr-defined]
    return int(stats.borrowed_tokens)


def _waiting(limiter: object) -> int:
    target = getattr(limiter, "limiter", limiter)
    return int(target.statistics().tasks_waiting)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "make"), LIMITERS_OF_TWO, ids=[n for n, _ in LIMITERS_OF_TWO])
async def test_common_contract(
    name: str, make: Callable[[], trine.LimiterLike], autojump_clock: trio.abc.Clock
) -> None:
    """Every limiter of 2: bound respected, FIFO start times, entry is a checkpoint,
    cancelled waiters and holders give everything back."""
    limiter = make()
    probe = ConcurrencyProbe()

    async def job(label: int) -> None:
        async with open_hold(limiter):
            with probe.track(label):
                await trio.sleep(1)

    # bound and exact start times: 5 one-second jobs through 2 slots
    with assert_takes(3.0):
        async with trio.open_nursery() as nursery:
            for label in range(5):
                nursery.start_soon(job, label)
                await trio.lowlevel.checkpoint()  # fix the arrival order
    assert probe.peak == 2
    assert probe.times("enter") == {0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0, 4: 2.0}

    # entering is a checkpoint on the fast path too
    with trio.testing.assert_checkpoints():
        async with open_hold(limiter):
            pass

    # a cancelled holder releases; a cancelled waiter never takes a slot
    async with trio.open_nursery() as nursery:
        holder_scopes = [trio.CancelScope(), trio.CancelScope()]
        waiter_scope = trio.CancelScope()

        async def holder(scope: trio.CancelScope) -> None:
            with scope:
                async with open_hold(limiter):
                    await trio.sleep_forever()

        async def waiter() -> None:
            with waiter_scope:
                async with open_hold(limiter):
                    raise AssertionError("a cancelled waiter must not enter")

        nursery.start_soon(holder, holder_scopes[0])
        nursery.start_soon(holder, holder_scopes[1])
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert _borrowed(limiter) == 2
        assert _waiting(limiter) == 1
        waiter_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert _waiting(limiter) == 0
        for scope in holder_scopes:
            scope.cancel()
    assert _borrowed(limiter) == 0
    assert _waiting(limiter) == 0

    # and it still has both slots
    with assert_takes(1.0):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(job, 10)
            nursery.start_soon(job, 11)


@pytest.mark.parametrize(("name", "make"), LIMITERS_OF_TWO, ids=[n for n, _ in LIMITERS_OF_TWO])
async def test_common_contract_cancelled_before_entry(
    name: str, make: Callable[[], trine.LimiterLike]
) -> None:
    """Entering under an already-cancelled scope raises Cancelled and takes nothing."""
    limiter = make()
    with trio.CancelScope() as scope:
        scope.cancel()
        async with open_hold(limiter):
            raise AssertionError("must not enter")
    assert _borrowed(limiter) == 0


# --------------------------------------------------------------------------
# open_hold and the Limiter protocol


async def test_open_hold_accepts_trio_primitives_as_they_are() -> None:
    """Trio's lock-likes are async context managers already: returned unchanged."""
    for primitive in (
        trio.CapacityLimiter(1),
        trio.Semaphore(1),
        trio.Lock(),
        trio.StrictFIFOLock(),
    ):
        assert open_hold(primitive) is primitive
        async with open_hold(primitive):
            pass


async def test_open_hold_calls_hold_on_any_limiter() -> None:
    """A user's own class with hold() is a Limiter too."""

    @attrs.define
    class Counting:
        entered: int = 0

        def hold(self) -> AbstractAsyncContextManager[object]:
            self.entered += 1
            return trio.CapacityLimiter(1)

    mine = Counting()
    async with open_hold(mine):
        pass
    assert mine.entered == 1


def test_open_hold_refuses_other_objects_naming_the_argument() -> None:
    """Anything else is a TypeError naming the caller's parameter."""
    message = (
        "policy.limiter must be a limiter (an object with a hold() method, or a "
        "trio.CapacityLimiter, trio.Semaphore or trio.Lock), got 3"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        open_hold(3, name="policy.limiter")  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# WeightedSemaphore


async def test_weighted_semaphore_heavy_head_blocks_light_waiters(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Strict FIFO: a light waiter behind a heavy one waits even though it would fit."""
    sem = WeightedSemaphore(10)
    probe = ConcurrencyProbe()

    async def job(label: str, weight: int, seconds: float) -> None:
        async with sem.hold(weight):
            with probe.track(label):
                await trio.sleep(seconds)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(job, "first", 6, 2)
        await trio.sleep(0.5)
        nursery.start_soon(job, "heavy", 10, 1)
        await trio.sleep(0.5)
        nursery.start_soon(job, "light", 1, 1)
        await trio.testing.wait_all_tasks_blocked()
        assert sem.statistics() == trine.WeightedSemaphoreStatistics(
            borrowed_tokens=6, total_tokens=10, tasks_waiting=2
        )
    assert probe.times("enter") == {"first": 0.0, "heavy": 2.0, "light": 3.0}
    assert sem.statistics().borrowed_tokens == 0


async def test_weighted_semaphore_cancelled_head_wakes_waiters_that_now_fit(
    autojump_clock: trio.abc.Clock,
) -> None:
    """When the heavy head of the queue is cancelled, light ones behind it enter at once."""
    sem = WeightedSemaphore(10)
    entered: dict[str, float] = {}

    async def job(label: str, weight: int) -> None:
        async with sem.hold(weight):
            entered[label] = trio.current_time()
            await trio.sleep(5)

    heavy_cancel = trio.CancelScope()

    async def heavy_job() -> None:
        with heavy_cancel:
            await job("heavy", 8)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(job, "first", 6)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(heavy_job)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(job, "light1", 2)
        nursery.start_soon(job, "light2", 2)
        await trio.sleep(1)
        assert sem.statistics().tasks_waiting == 3
        heavy_cancel.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert entered == {"first": 0.0, "light1": 1.0, "light2": 1.0}
        assert sem.statistics().borrowed_tokens == 10
    assert sem.statistics().borrowed_tokens == 0


async def test_weighted_semaphore_hold_nowait() -> None:
    """hold_nowait enters if the weight fits and nobody waits, else raises WouldBlock."""
    sem = WeightedSemaphore(3)
    with sem.hold_nowait(2):
        assert sem.statistics().borrowed_tokens == 2
        with pytest.raises(trio.WouldBlock):
            sem.hold_nowait(2).__enter__()
        with sem.hold_nowait(1):
            assert sem.statistics().borrowed_tokens == 3
    assert sem.statistics().borrowed_tokens == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"capacity": 0}, ValueError, "capacity must be >= 1, got 0"),
        ({"capacity": 1.5}, TypeError, "capacity must be an int, got 1.5"),
    ],
)
def test_weighted_semaphore_validation(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """The capacity is checked at construction."""
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        WeightedSemaphore(**kwargs)


@pytest.mark.parametrize(
    ("weight", "error", "message"),
    [
        (4, ValueError, "weight must be <= capacity (3), got 4"),
        (0, ValueError, "weight must be >= 1, got 0"),
        ("2", TypeError, "weight must be an int, got '2'"),
    ],
)
def test_weighted_semaphore_weight_validation(
    weight: object, error: type[Exception], message: str
) -> None:
    """A weight that could never fit is refused at the call, not left to hang."""
    sem = WeightedSemaphore(3)
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        sem.hold(weight)  # type: ignore[arg-type]
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        sem.hold_nowait(weight)  # type: ignore[arg-type]


def test_weighted_semaphore_repr() -> None:
    """The repr shows tokens borrowed and tasks waiting."""
    sem = WeightedSemaphore(5)
    assert re.fullmatch(
        r"<trine\.WeightedSemaphore at 0x[0-9a-f]+, 0/5 borrowed with 0 waiting>", repr(sem)
    )
    assert sem.capacity == 5


# --------------------------------------------------------------------------
# PriorityLimiter


async def test_priority_limiter_serves_lower_numbers_first_fifo_within(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Waiters enter by (priority, arrival): lower number first, FIFO within one."""
    limiter = PriorityLimiter(1)
    order: list[str] = []

    async def job(label: str, priority: int) -> None:
        async with limiter.hold(priority=priority):
            order.append(label)
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(job, "holder", 0)
        await trio.testing.wait_all_tasks_blocked()
        for label, priority in [("b1", 5), ("a1", 1), ("b2", 5), ("a2", 1), ("urgent", -3)]:
            nursery.start_soon(job, label, priority)
            await trio.testing.wait_all_tasks_blocked()
        assert limiter.statistics() == trine.PriorityLimiterStatistics(
            borrowed_tokens=1, total_tokens=1, tasks_waiting=5
        )
    assert order == ["holder", "urgent", "a1", "a2", "b1", "b2"]


async def test_priority_limiter_cancelled_waiters_are_skipped_and_swept(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A cancelled waiter never enters, and its heap entry does not outlive the queue."""
    limiter = PriorityLimiter(1)
    order: list[int] = []

    async def job(label: int, scope: trio.CancelScope) -> None:
        with scope:
            async with limiter.hold(priority=label):
                order.append(label)
                await trio.sleep(1)

    scopes = [trio.CancelScope() for _ in range(60)]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(job, -1, trio.CancelScope())
        await trio.testing.wait_all_tasks_blocked()
        for label, scope in enumerate(scopes):
            nursery.start_soon(job, label, scope)
        await trio.testing.wait_all_tasks_blocked()
        for scope in scopes[:50]:
            scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.statistics().tasks_waiting == 10
        assert len(limiter._heap) <= 2 * 10 + 16
    assert order == [-1, *range(50, 60)]
    assert limiter._heap == []


def test_priority_limiter_validation() -> None:
    """total and priority are checked at the door."""
    with pytest.raises(ValueError, match=r"^total must be >= 1, got 0$"):
        PriorityLimiter(0)
    with pytest.raises(TypeError, match=r"^priority must be an int, got 1\.5$"):
        PriorityLimiter(1).hold(priority=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^priority must be an int, got True$"):
        PriorityLimiter(1).hold_nowait(priority=True)


def test_priority_limiter_hold_nowait_and_repr() -> None:
    """hold_nowait raises WouldBlock when full; the repr shows the state."""
    limiter = PriorityLimiter(1)
    with limiter.hold_nowait():
        with pytest.raises(trio.WouldBlock):
            limiter.hold_nowait(priority=-100).__enter__()
        assert re.fullmatch(
            r"<trine\.PriorityLimiter at 0x[0-9a-f]+, 1/1 borrowed with 0 waiting>",
            repr(limiter),
        )
    assert limiter.statistics().borrowed_tokens == 0
    assert limiter.total == 1


# --------------------------------------------------------------------------
# KeyedLimiter


async def test_keyed_limiter_per_key_and_total(autojump_clock: trio.abc.Clock) -> None:
    """At most per_key per key and total overall, with exact start times."""
    limiter = KeyedLimiter(2, total=3)
    probe = ConcurrencyProbe()
    per_key_peak: dict[str, int] = {}
    per_key_now: dict[str, int] = {}

    async def job(label: str, key: str) -> None:
        async with limiter.hold(key):
            per_key_now[key] = per_key_now.get(key, 0) + 1
            per_key_peak[key] = max(per_key_peak.get(key, 0), per_key_now[key])
            with probe.track(label):
                await trio.sleep(1)
            per_key_now[key] -= 1

    async with trio.open_nursery() as nursery:
        for index, key in enumerate("aaabbc"):
            nursery.start_soon(job, f"{key}{index}", key)
            await trio.lowlevel.checkpoint()
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.statistics() == trine.KeyedLimiterStatistics(
            borrowed_tokens=3, total_tokens=3, per_key=2, keys=3, tasks_waiting=3
        )
    assert probe.peak == 3
    assert per_key_peak == {"a": 2, "b": 1, "c": 1}
    # a0 a1 b3 enter at 0; at 1 they leave and the longest waiters whose key has
    # room take their places: a2, b4, c5
    assert probe.times("enter") == {
        "a0": 0.0,
        "a1": 0.0,
        "b3": 0.0,
        "a2": 1.0,
        "b4": 1.0,
        "c5": 1.0,
    }
    assert limiter.statistics().keys == 0


async def test_keyed_limiter_total_is_fifo_among_keys_with_room(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A freed total slot goes to the earliest waiter whose key has room, not to a
    later one whose key happened to free first."""
    limiter = KeyedLimiter(1, total=2)
    entered: dict[str, float] = {}

    async def job(label: str, key: str, seconds: float) -> None:
        async with limiter.hold(key):
            entered[label] = trio.current_time()
            await trio.sleep(seconds)

    async with trio.open_nursery() as nursery:
        # a0 and b0 hold; a1 waits for key a; c waits for total; b1 waits for key b
        for label, key, seconds in [("a0", "a", 2), ("b0", "b", 1), ("a1", "a", 1)]:
            nursery.start_soon(job, label, key, seconds)
            await trio.lowlevel.checkpoint()
        nursery.start_soon(job, "c", "c", 5)
        await trio.lowlevel.checkpoint()
        nursery.start_soon(job, "b1", "b", 1)
    # at 1 b0 leaves: c (arrived before b1) gets the total slot, b1 keeps waiting;
    # at 2 a0 leaves: a1 (arrived before b1) enters; b1 enters at 3 when a1 leaves.
    assert entered == {"a0": 0.0, "b0": 0.0, "a1": 2.0, "c": 1.0, "b1": 3.0}


async def test_keyed_limiter_cancelled_ready_waiter_promotes_the_next(
    autojump_clock: trio.abc.Clock,
) -> None:
    """When a waiter blocked only on total is cancelled, the next waiter for its key
    takes its place in the total queue, ahead of later arrivals for other keys."""
    limiter = KeyedLimiter(2, total=2)
    entered: dict[str, float] = {}
    w1_scope = trio.CancelScope()

    async def job(label: str, key: str, seconds: float, scope: trio.CancelScope) -> None:
        with scope:
            async with limiter.hold(key):
                entered[label] = trio.current_time()
                await trio.sleep(seconds)

    async with trio.open_nursery() as nursery:
        for label, key, seconds, scope in [
            ("h", "k", 10, trio.CancelScope()),
            ("g", "j", 1, trio.CancelScope()),
            ("w1", "k", 1, w1_scope),  # key k has room: waits for total
            ("w2", "k", 1, trio.CancelScope()),  # key k would be full with w1 in
            ("x", "m", 1, trio.CancelScope()),  # waits for total, after w2
        ]:
            nursery.start_soon(job, label, key, seconds, scope)
            await trio.lowlevel.checkpoint()
        await trio.sleep(0.5)
        w1_scope.cancel()
    # at 1 g leaves: w2 (arrived before x, key k has room now) enters
    assert entered == {"h": 0.0, "g": 0.0, "w2": 1.0, "x": 2.0}


async def test_keyed_limiter_forgets_idle_keys(autojump_clock: trio.abc.Clock) -> None:
    """Memory does not grow with the keys ever seen: idle keys are dropped, cancelled
    waiters included."""
    limiter = KeyedLimiter(1, total=4)

    async def job(key: int) -> None:
        async with limiter.hold(key):
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        for key in range(200):
            nursery.start_soon(job, key)
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.statistics().keys == 200
        assert limiter.statistics().tasks_waiting == 196
    assert len(limiter._keys) == 0
    assert limiter._ready == []

    async with trio.open_nursery() as nursery:
        for key in range(100):
            nursery.start_soon(job, key % 3)
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    assert len(limiter._keys) == 0
    assert limiter._ready == []
    assert limiter.statistics().borrowed_tokens == 0


async def test_keyed_limiter_sweeps_cancelled_ready_waiters(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Cancelled waiters blocked on total do not pile up in the ready queue."""
    limiter = KeyedLimiter(5, total=1)
    scopes = [trio.CancelScope() for _ in range(60)]
    order: list[int] = []

    async def job(key: int, scope: trio.CancelScope) -> None:
        with scope:
            async with limiter.hold(key):
                order.append(key)
                await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(job, -1, trio.CancelScope())
        await trio.testing.wait_all_tasks_blocked()
        for key, scope in enumerate(scopes):
            nursery.start_soon(job, key, scope)
            await trio.lowlevel.checkpoint()
        for scope in scopes[:50]:
            scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.statistics().tasks_waiting == 10
        assert limiter.statistics().keys == 11
        assert len(limiter._ready) <= 2 * 10 + 16
    assert order == [-1, *range(50, 60)]
    assert limiter._ready == []
    assert limiter.statistics().keys == 0


async def test_keyed_limiter_hold_nowait_refusals() -> None:
    """hold_nowait refuses when the total is full, the key is full, or the key has
    waiters."""
    limiter = KeyedLimiter(1, total=2)
    with limiter.hold_nowait("a"), limiter.hold_nowait("b"):
        with pytest.raises(trio.WouldBlock):
            limiter.hold_nowait("c").__enter__()  # total full
        with pytest.raises(trio.WouldBlock):
            limiter.hold_nowait("a").__enter__()  # key full
    assert limiter.statistics().keys == 0
    async with trio.open_nursery() as nursery, limiter.hold("a"):
        nursery.start_soon(_enter_and_leave, limiter, "a")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.WouldBlock):
            limiter.hold_nowait("a").__enter__()  # key has a waiter
    assert limiter.statistics() == trine.KeyedLimiterStatistics(0, 2, 1, 0, 0)


async def _enter_and_leave(limiter: KeyedLimiter, key: str) -> None:
    async with limiter.hold(key):
        pass


async def test_keyed_limiter_for_key_is_a_limiter() -> None:
    """for_key(key) binds one key so it fits where a Limiter is expected."""
    limiter = KeyedLimiter(1)
    view = limiter.for_key(("host", 443))
    async with open_hold(view):
        assert limiter.statistics().borrowed_tokens == 1
        with pytest.raises(trio.WouldBlock):
            limiter.hold_nowait(("host", 443)).__enter__()
        with limiter.hold_nowait("other"):
            assert limiter.statistics().keys == 2
    assert limiter.statistics().keys == 0
    assert repr(view).endswith("for key ('host', 443)>")


def test_keyed_limiter_validation() -> None:
    """per_key, total and keys are checked at the door."""
    with pytest.raises(ValueError, match=r"^per_key must be >= 1, got 0$"):
        KeyedLimiter(0)
    with pytest.raises(ValueError, match=r"^total must be >= 1, got 0$"):
        KeyedLimiter(1, total=0)
    with pytest.raises(TypeError, match=r"^total must be an int, got 2\.0$"):
        KeyedLimiter(1, total=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^key must be hashable, got \[1\]$"):
        KeyedLimiter(1).hold([1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^key must be hashable, got \{\}$"):
        KeyedLimiter(1).for_key({})  # type: ignore[arg-type]


def test_keyed_limiter_repr() -> None:
    """The repr shows borrowed/total, per-key limit, keys and waiters."""
    limiter = KeyedLimiter(2)
    assert re.fullmatch(
        r"<trine\.KeyedLimiter at 0x[0-9a-f]+, 0/unlimited borrowed \(2 per key\) "
        r"over 0 keys with 0 waiting>",
        repr(limiter),
    )
    assert (limiter.per_key, limiter.total) == (2, None)


# --------------------------------------------------------------------------
# Bulkhead


async def test_bulkhead_rejects_at_once_when_queue_full(autojump_clock: trio.abc.Clock) -> None:
    """Beyond max_concurrent + max_waiting, hold() raises BulkheadFull without waiting."""
    bulkhead = Bulkhead(2, max_waiting=1)

    async def job() -> None:
        async with bulkhead.hold():
            await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(job)
        await trio.testing.wait_all_tasks_blocked()
        with assert_takes(0.0), pytest.raises(BulkheadFull) as info:
            async with bulkhead.hold():
                raise AssertionError("must not enter")
        assert bulkhead.statistics() == trine.BulkheadStatistics(
            borrowed_tokens=2, total_tokens=2, tasks_waiting=1, admitted=2, rejected=1
        )
    assert str(info.value) == "bulkhead full: 2 of 2 slots in use and 1 of 1 waiting places taken"
    assert (info.value.max_concurrent, info.value.max_waiting) == (2, 1)
    assert (info.value.max_wait, info.value.timed_out) == (None, False)
    assert isinstance(info.value, trine.TrineError)
    assert bulkhead.statistics() == trine.BulkheadStatistics(
        borrowed_tokens=0, total_tokens=2, tasks_waiting=0, admitted=3, rejected=1
    )


async def test_bulkhead_default_refuses_any_wait(autojump_clock: trio.abc.Clock) -> None:
    """max_waiting=0 (the default): a call that cannot enter at once is refused, at a
    checkpoint."""
    bulkhead = Bulkhead(1)
    async with bulkhead.hold():
        with trio.testing.assert_checkpoints(), pytest.raises(BulkheadFull):
            async with bulkhead.hold():
                pass


async def test_bulkhead_max_wait_rejects_at_exact_time(autojump_clock: trio.abc.Clock) -> None:
    """A waiter that waited max_wait seconds raises BulkheadFull(timed_out=True) then."""
    bulkhead = Bulkhead(1, max_waiting=5, max_wait=2.5)
    outcomes: dict[str, object] = {}

    async def job(label: str, seconds: float) -> None:
        try:
            async with bulkhead.hold():
                outcomes[label] = trio.current_time()
                await trio.sleep(seconds)
        except BulkheadFull as error:
            outcomes[label] = (trio.current_time(), str(error), error.timed_out)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(job, "long", 10)
        await trio.lowlevel.checkpoint()
        nursery.start_soon(job, "late", 1)
        await trio.sleep(1)
        nursery.start_soon(job, "later", 1)
    message = "bulkhead full: waited 2.5 s (max_wait) and none of its 1 slots came free"
    assert outcomes == {
        "long": 0.0,
        "late": (2.5, message, True),
        "later": (3.5, message, True),
    }
    assert bulkhead.statistics().rejected == 2
    assert bulkhead.statistics().admitted == 1


async def test_bulkhead_waiter_admitted_before_max_wait(autojump_clock: trio.abc.Clock) -> None:
    """A waiter whose slot frees within max_wait enters normally."""
    bulkhead = Bulkhead(1, max_waiting=1, max_wait=2)
    entered: list[float] = []

    async def job(seconds: float) -> None:
        async with bulkhead.hold():
            entered.append(trio.current_time())
            await trio.sleep(seconds)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(job, 1.5)
        await trio.lowlevel.checkpoint()
        nursery.start_soon(job, 1)
    assert entered == [0.0, 1.5]
    assert bulkhead.statistics().rejected == 0


def test_bulkhead_full_pickles() -> None:
    """BulkheadFull survives pickling (keyword-only constructor)."""
    error = BulkheadFull(max_concurrent=3, max_waiting=0, max_wait=None, timed_out=False)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert copy.max_concurrent == 3


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((0,), {}, ValueError, "max_concurrent must be >= 1, got 0"),
        ((1,), {"max_waiting": -1}, ValueError, "max_waiting must be >= 0, got -1"),
        ((1,), {"max_waiting": None}, TypeError, "max_waiting must be an int, got None"),
        ((1,), {"max_wait": -1}, ValueError, "max_wait must be >= 0, got -1"),
        ((1,), {"max_wait": "1"}, TypeError, "max_wait must be a number, got '1'"),
    ],
)
def test_bulkhead_validation(
    args: tuple[object, ...], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every argument is checked at construction."""
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        Bulkhead(*args, **kwargs)


def test_bulkhead_hold_nowait_and_repr() -> None:
    """hold_nowait raises WouldBlock (not counted as a rejection); repr shows state."""
    bulkhead = Bulkhead(1, max_waiting=3, max_wait=1)
    with bulkhead.hold_nowait():
        with pytest.raises(trio.WouldBlock):
            bulkhead.hold_nowait().__enter__()
        assert re.fullmatch(
            r"<trine\.Bulkhead at 0x[0-9a-f]+, 1/1 borrowed with 0/3 waiting>", repr(bulkhead)
        )
    assert bulkhead.statistics().rejected == 0
    assert (bulkhead.max_concurrent, bulkhead.max_waiting, bulkhead.max_wait) == (1, 3, 1.0)


# --------------------------------------------------------------------------
# AdaptiveLimiter


async def _wave(
    limiter: AdaptiveLimiter, seconds: list[float], *, fail: bool = False, mark: bool = False
) -> None:
    """Run one call per entry of *seconds*, all at once; each lasts that long."""

    async def call(duration: float) -> None:
        with contextlib.suppress(ValueError):
            async with limiter.hold() as permit:
                await trio.sleep(duration)
                if mark:
                    permit.mark_failure()
                if fail:
                    raise ValueError("boom")

    async with trio.open_nursery() as nursery:
        for duration in seconds:
            nursery.start_soon(call, duration)
            await trio.lowlevel.checkpoint()


async def test_aimd_moves_as_computed(autojump_clock: trio.abc.Clock) -> None:
    """AIMD: +1 for a success that saw the limit in use, floor(limit * ratio) on a
    drop (exception, mark_failure, slow call), clamped to [min_limit, max_limit]."""
    limiter = AdaptiveLimiter(
        initial=1, min_limit=1, max_limit=5, backoff_ratio=0.5, latency_threshold=1.0
    )
    limits = []
    script: list[tuple[list[float], dict[str, bool]]] = [
        ([0.5], {}),  # alone at limit 1: in use -> 2
        ([0.5], {}),  # 1 of 2: not in use -> 2
        ([0.5, 0.5], {}),  # the second saw 2 of 2 -> 3
        ([0.5, 0.5, 0.5], {}),  # -> 4
        ([0.5] * 4, {}),  # -> 5
        ([0.5] * 5, {}),  # -> 5 (max_limit)
        ([0.5], {"fail": True}),  # exception -> floor(2.5) = 2
        ([0.5, 0.5], {}),  # -> 3
        ([0.5, 0.5, 2.0], {}),  # the one that saw 3 of 3 was slow -> floor(1.5) = 1
        ([0.5], {"mark": True}),  # mark_failure -> floor(0.5) = 0 -> min_limit 1
        ([0.5], {}),  # -> 2
    ]
    for seconds, flags in script:
        await _wave(limiter, seconds, **flags)
        limits.append(limiter.statistics().limit)
    assert limits == [2, 2, 3, 4, 5, 5, 2, 3, 1, 1, 2]
    stats = limiter.statistics()
    assert (stats.successes, stats.failures, stats.slow_calls) == (22, 2, 1)
    assert (stats.borrowed_tokens, stats.tasks_waiting, stats.last_rtt) == (0, 0, 0.5)
    assert stats.long_rtt is None


async def test_aimd_decreases_once_per_overload(autojump_clock: trio.abc.Clock) -> None:
    """Failures of calls already in flight at a decrease do not shrink the limit again."""
    limiter = AdaptiveLimiter(initial=8, max_limit=8, backoff_ratio=0.5)
    await _wave(limiter, [1.0] * 8, fail=True)
    assert limiter.statistics().limit == 4
    assert limiter.statistics().failures == 8
    await _wave(limiter, [1.0], fail=True)
    assert limiter.statistics().limit == 2


async def test_adaptive_waiters_and_shrinking_limit(autojump_clock: trio.abc.Clock) -> None:
    """The limit in force bounds concurrency; a waiter's duration starts when it enters,
    and a success seen with waiters queued counts as in use."""
    limiter = AdaptiveLimiter(initial=2, max_limit=10)
    probe = ConcurrencyProbe()

    async def call(label: int) -> None:
        async with limiter.hold():
            with probe.track(label):
                await trio.sleep(1)

    async with trio.open_nursery() as nursery:
        for label in range(5):
            nursery.start_soon(call, label)
            await trio.lowlevel.checkpoint()
    assert probe.peak <= 4
    assert limiter.statistics().last_rtt == 1.0
    assert limiter.statistics().limit > 2


async def test_adaptive_cancellation_is_not_a_sample(autojump_clock: trio.abc.Clock) -> None:
    """A cancelled call is neither success nor failure and does not move the limit."""
    limiter = AdaptiveLimiter(initial=1, max_limit=5)
    with trio.move_on_after(1):
        async with limiter.hold():
            await trio.sleep(5)
    stats = limiter.statistics()
    assert (stats.limit, stats.successes, stats.failures, stats.last_rtt) == (1, 0, 0, None)
    assert stats.borrowed_tokens == 0


async def test_adaptive_cancelled_nursery_inside_is_not_a_sample(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Cancellation arriving through a nursery inside hold() is not a sample either."""
    limiter = AdaptiveLimiter(initial=1, max_limit=5)
    with trio.move_on_after(1):
        async with limiter.hold(), trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            nursery.start_soon(trio.sleep_forever)
    stats = limiter.statistics()
    assert (stats.successes, stats.failures, stats.borrowed_tokens) == (0, 0, 0)


async def test_adaptive_failure_group_is_a_failure(autojump_clock: trio.abc.Clock) -> None:
    """An ExceptionGroup of errors from a nursery inside hold() is one failure."""
    limiter = AdaptiveLimiter(initial=4, max_limit=5, backoff_ratio=0.5)

    async def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ExceptionGroup):
        async with limiter.hold(), trio.open_nursery() as nursery:
            nursery.start_soon(boom)
    assert (limiter.statistics().failures, limiter.limit) == (1, 2)


async def test_gradient_moves_as_computed(autojump_clock: trio.abc.Clock) -> None:
    """Gradient: long-term EMA vs sample, gradient clamped to [0.5, 1], smoothing,
    queue_size added only when in use and latency is not rising."""
    limiter = AdaptiveLimiter(
        initial=10,
        max_limit=100,
        algorithm="gradient",
        smoothing=0.5,
        tolerance=1.0,
        queue_size=4,
        long_window=3,  # EMA factor 2 / (3 + 1) = 0.5
    )
    estimates = []
    for seconds, flags in [
        ([1.0], {}),  # long 1, gradient 1, not in use: 10
        ([2.0], {}),  # long 1.5, gradient 0.75: 10*.5 + 7.5*.5 = 8.75
        ([4.0], {}),  # long 2.75, gradient 0.6875 -> 7.3828125
        ([1.0], {"fail": True}),  # drop: gradient 0.5 -> 5.537109375
        ([1.0] * 5, {}),  # the 5th saw 5 of 5 with gradient 1: +4 * 0.5 -> 7.537109375
    ]:
        await _wave(limiter, seconds, **flags)
        stats = limiter.statistics()
        estimates.append((stats.estimate, stats.limit))
    assert estimates == [
        (10.0, 10),
        (8.75, 8),
        (7.3828125, 7),
        (5.537109375, 5),
        (7.537109375, 7),
    ]
    assert limiter.statistics().long_rtt == 1.0546875


async def test_gradient_does_not_grow_when_not_in_use_or_latency_rises(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Gradient2's flaw avoided: unsaturated calls, and saturated calls with rising
    latency inside the tolerance, never raise the limit."""
    limiter = AdaptiveLimiter(initial=4, max_limit=1000, algorithm="gradient")
    for step in range(200):
        await _wave(limiter, [1.0 + step * 0.001])  # 1 of 4: never in use
    assert limiter.statistics().limit == 4
    limiter = AdaptiveLimiter(initial=1, max_limit=1000, algorithm="gradient", tolerance=1.5)
    await _wave(limiter, [1.0])
    for step in range(200):
        # always in use (1 of 1) and 1.2x slower than the long average at first
        await _wave(limiter, [1.2 * (1.0 + step * 0.01)])
    assert limiter.statistics().limit == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"initial": 0, "max_limit": 5}, ValueError, "initial must be >= 1, got 0"),
        ({"initial": 1, "max_limit": 0}, ValueError, "max_limit must be >= 1, got 0"),
        (
            {"initial": 1, "min_limit": 0, "max_limit": 5},
            ValueError,
            "min_limit must be >= 1, got 0",
        ),
        (
            {"initial": 3, "min_limit": 6, "max_limit": 5},
            ValueError,
            "min_limit must be <= max_limit (5), got 6",
        ),
        (
            {"initial": 2, "min_limit": 3, "max_limit": 5},
            ValueError,
            "initial must be >= min_limit (3), got 2",
        ),
        ({"initial": 6, "max_limit": 5}, ValueError, "initial must be <= max_limit (5), got 6"),
        ({"initial": 1.0, "max_limit": 5}, TypeError, "initial must be an int, got 1.0"),
        (
            {"initial": 1, "max_limit": 5, "algorithm": "vegas"},
            ValueError,
            "algorithm must be one of 'aimd', 'gradient', got 'vegas'",
        ),
        (
            {"initial": 1, "max_limit": 5, "backoff_ratio": 1},
            ValueError,
            "backoff_ratio must be < 1, got 1.0",
        ),
        (
            {"initial": 1, "max_limit": 5, "backoff_ratio": 0},
            ValueError,
            "backoff_ratio must be > 0, got 0",
        ),
        (
            {"initial": 1, "max_limit": 5, "latency_threshold": 0},
            ValueError,
            "latency_threshold must be > 0, got 0",
        ),
        (
            {"initial": 1, "max_limit": 5, "tolerance": 0.5},
            ValueError,
            "tolerance must be >= 1, got 0.5",
        ),
        (
            {"initial": 1, "max_limit": 5, "smoothing": 1.5},
            ValueError,
            "smoothing must be <= 1, got 1.5",
        ),
        (
            {"initial": 1, "max_limit": 5, "smoothing": 0},
            ValueError,
            "smoothing must be > 0, got 0",
        ),
        (
            {"initial": 1, "max_limit": 5, "queue_size": -1},
            ValueError,
            "queue_size must be >= 0, got -1",
        ),
        (
            {"initial": 1, "max_limit": 5, "long_window": 0},
            ValueError,
            "long_window must be >= 1, got 0",
        ),
    ],
)
def test_adaptive_limiter_validation(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every parameter is checked at construction, naming it."""
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        AdaptiveLimiter(**kwargs)


async def test_adaptive_hold_nowait_permit_and_repr() -> None:
    """hold_nowait yields a permit or raises WouldBlock; reprs show the state."""
    limiter = AdaptiveLimiter(initial=1, max_limit=3)
    with limiter.hold_nowait() as permit:
        assert repr(permit) == "<trine.AdaptivePermit ok>"
        with pytest.raises(trio.WouldBlock):
            limiter.hold_nowait().__enter__()
        assert re.fullmatch(
            r"<trine\.AdaptiveLimiter at 0x[0-9a-f]+, aimd limit 1 in \[1, 3\], "
            r"1 in flight with 0 waiting>",
            repr(limiter),
        )
        permit.mark_failure()
        assert permit.failed
    assert limiter.statistics().failures == 1
    assert limiter.limit == 1


# --------------------------------------------------------------------------
# acquire_all


async def test_acquire_all_opposite_orders_do_not_deadlock(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Two tasks taking the same locks in opposite argument order both finish."""
    first, second = trio.Lock(), WeightedSemaphore(1)

    async def take(*limiters: trine.LimiterLike) -> None:
        for _ in range(3):
            async with acquire_all(*limiters):
                await trio.sleep(1)

    with trio.fail_after(100), assert_takes(6.0):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(take, first, second)
            nursery.start_soon(take, second, first)


async def test_acquire_all_undoes_partial_acquisition_on_cancel(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Cancelled while waiting for the second lock: the first is released."""
    free, busy = PriorityLimiter(1), PriorityLimiter(1)
    async with busy.hold():
        with trio.move_on_after(1):
            async with acquire_all(free, busy):
                raise AssertionError("must not enter")
        assert free.statistics().borrowed_tokens == 0
    assert busy.statistics().borrowed_tokens == 0


async def test_acquire_all_releases_in_reverse_on_error() -> None:
    """An error inside releases everything and propagates unchanged."""
    limiters = [trio.CapacityLimiter(1), KeyedLimiter(1).for_key("a"), Bulkhead(1)]
    with pytest.raises(ValueError, match=r"^inside$"):
        async with acquire_all(*limiters):
            raise ValueError("inside")
    assert all(_borrowed(limiter) == 0 for limiter in limiters)


async def test_acquire_all_undoes_partial_acquisition_on_failure() -> None:
    """A refusal from one limiter (a full bulkhead) releases those already taken."""
    lock, bulkhead = trio.Lock(), Bulkhead(1)
    async with bulkhead.hold():
        with pytest.raises(BulkheadFull):
            async with acquire_all(lock, bulkhead):
                raise AssertionError("must not enter")
        assert not lock.locked()


async def test_acquire_all_releases_the_rest_when_one_release_raises() -> None:
    """An error leaving one limiter does not keep the others held."""

    class BrokenRelease:
        async def __aenter__(self) -> None:
            pass

        async def __aexit__(self, *exc_info: object) -> None:
            raise OSError("release failed")

    @attrs.define
    class Broken:
        def hold(self) -> AbstractAsyncContextManager[object]:
            return BrokenRelease()

    first, second = trio.CapacityLimiter(1), trio.CapacityLimiter(1)
    with pytest.raises(OSError, match=r"^release failed$"):
        async with acquire_all(first, Broken(), second):
            pass
    assert (first.borrowed_tokens, second.borrowed_tokens) == (0, 0)


async def test_acquire_all_with_nothing_is_a_checkpoint() -> None:
    """Entering with no limiters still checkpoints."""
    with trio.testing.assert_checkpoints():
        async with acquire_all():
            pass


def test_acquire_all_validation() -> None:
    """Non-limiters and duplicates are refused at the call, naming the position."""
    lock = trio.Lock()
    with pytest.raises(
        ValueError,
        match=r"^limiters\[2\] is the same limiter as limiters\[0\]: pass each one once$",
    ):
        acquire_all(lock, trio.Lock(), lock)
    with pytest.raises(TypeError, match=r"^limiters\[1\] must be a limiter .*, got 'x'$"):
        acquire_all(lock, "x")  # type: ignore[arg-type]


async def test_acquire_all_takes_two_keys_whose_hashes_are_equal() -> None:
    """Two different keys of one KeyedLimiter are two limiters, even when their hashes collide."""
    limiter = KeyedLimiter(1)
    assert hash(-1) == hash(-2)
    async with acquire_all(limiter.for_key(-1), limiter.for_key(-2)):
        assert limiter.statistics().borrowed_tokens == 2
    assert limiter.statistics().borrowed_tokens == 0
    assert limiter.statistics().keys == 0  # both keys are forgotten


@pytest.mark.parametrize(
    ("per_key", "total", "sets"),
    [
        (2, 2, [(1, 2), (2, 1)]),  # the same set: each task's first key used up total
        (1, 2, [(1, 2), (2, 3)]),  # one held 2 and waited for total, the other waited for 2
    ],
)
async def test_acquire_all_takes_the_total_of_one_keyed_limiter_once(
    autojump_clock: trio.abc.Clock, per_key: int, total: int, sets: list[tuple[int, int]]
) -> None:
    """Regression (audit): keys of one KeyedLimiter take their share of total in one step.

    Taken one by one (by hash: int keys order as numbers), each task's first
    key used up ``total`` and each task waited for the other for ever.
    """
    keyed = KeyedLimiter(per_key, total=total)
    entered: list[float] = []

    async def take(keys: tuple[int, int]) -> None:
        async with acquire_all(*(keyed.for_key(key) for key in keys)):
            entered.append(trio.current_time())
            await trio.sleep(1)

    with trio.fail_after(100), assert_takes(2.0):
        async with trio.open_nursery() as nursery:
            for keys in sets:  # both run their first step before either runs its second
                nursery.start_soon(take, keys)
    assert entered == [0.0, 1.0]
    assert keyed.statistics() == trine.KeyedLimiterStatistics(
        borrowed_tokens=0, total_tokens=total, per_key=per_key, keys=0, tasks_waiting=0
    )


async def test_acquire_all_keys_waiting_for_total_are_not_passed_by_later_ones(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Several keys owed their share of total go first: a later one-key task that would fit
    the one free slot waits behind them (FIFO), and they are never starved."""
    keyed = KeyedLimiter(1, total=2)
    entered: dict[str, float] = {}

    async def hold(label: str, seconds: float, *keys: str) -> None:
        async with acquire_all(*(keyed.for_key(key) for key in keys)):
            entered[label] = trio.current_time()
            await trio.sleep(seconds)

    def refused_now(key: str) -> bool:
        try:
            keyed.hold_nowait(key).__enter__()
        except trio.WouldBlock:
            return True
        return False

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold, "p", 2, "p")  # 1 of total until t=2
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(hold, "xy", 1, "x", "y")  # needs 2: waits for p
        await trio.sleep(1)
        nursery.start_soon(hold, "q", 1, "q")  # 1 is free, but xy is owed it
        await trio.testing.wait_all_tasks_blocked()
        assert refused_now("r")  # a fresh key, with total's one free slot: still xy's
        assert keyed.statistics().tasks_waiting == 2
    assert entered == {"p": 0.0, "xy": 2.0, "q": 3.0}


async def test_acquire_all_keys_waiting_for_another_key_hold_up_no_one_else(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A task taking keys a and b that waits for b leaves a's spare room to others."""
    keyed = KeyedLimiter(2, total=10)
    entered: dict[str, float] = {}

    async def hold(label: str, seconds: float, *keys: str) -> None:
        async with acquire_all(*(keyed.for_key(key) for key in keys)):
            entered[label] = trio.current_time()
            await trio.sleep(seconds)

    async with trio.open_nursery() as nursery:
        for label in ("b0", "b1"):  # b is full until t=3
            nursery.start_soon(hold, label, 3, "b")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(hold, "ab", 1, "a", "b")  # waits for b, queued for a
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(hold, "a", 1, "a")  # a has room for both
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(hold, "ac", 1, "a", "c")  # and not for a third
    assert entered == {"b0": 0.0, "b1": 0.0, "ab": 3.0, "a": 0.0, "ac": 1.0}


def test_acquire_all_refuses_more_keys_than_the_total() -> None:
    """Keys of one KeyedLimiter that outnumber its total could never be held: refused."""
    keyed = KeyedLimiter(2, total=2)
    with pytest.raises(
        ValueError,
        match=r"^limiters\[0\], limiters\[2\] and limiters\[3\] are 3 keys of one KeyedLimiter "
        r"whose total is 2: they can never be held at once$",
    ):
        acquire_all(keyed.for_key("a"), trio.Lock(), keyed.for_key("b"), keyed.for_key("c"))
    assert acquire_all(keyed.for_key("a"), keyed.for_key("b"))  # as many as total: fine


class _Colliding:
    """A key whose hash is the same for every value: equal by value only."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __hash__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Colliding) and other.value == self.value

    def __repr__(self) -> str:
        return f"_Colliding({self.value})"


def test_acquire_all_refuses_equal_keys_of_one_keyed_limiter() -> None:
    """Equal keys (``1`` and ``1.0``, equal objects) are one limiter, refused as a duplicate."""
    limiter = KeyedLimiter(1)
    message = r"^limiters\[1\] is the same limiter as limiters\[0\]: pass each one once$"
    with pytest.raises(ValueError, match=message):
        acquire_all(limiter.for_key(1), limiter.for_key(1.0))
    with pytest.raises(
        ValueError,
        match=r"^limiters\[2\] is the same limiter as limiters\[0\]: pass each one once$",
    ):
        acquire_all(
            limiter.for_key(_Colliding(1)),
            limiter.for_key(_Colliding(2)),
            limiter.for_key(_Colliding(1)),
        )


# --------------------------------------------------------------------------
# Properties: random schedules with cancellations


@attrs.frozen
class _Arrival:
    at: float
    hold: float
    cancel_after: float | None
    arg: Any


def _arrivals(arg: st.SearchStrategy[Any]) -> st.SearchStrategy[list[_Arrival]]:
    one = st.builds(
        _Arrival,
        at=st.integers(0, 6).map(float),
        hold=st.integers(0, 3).map(float),
        cancel_after=st.none() | st.integers(0, 5).map(float),
        arg=arg,
    )
    return st.lists(one, min_size=1, max_size=20)


@attrs.define
class _Record:
    entered: dict[int, float] = attrs.field(factory=dict)
    cancelled: dict[int, float] = attrs.field(factory=dict)
    rejected: dict[int, float] = attrs.field(factory=dict)


def _run_schedule(
    arrivals: list[_Arrival],
    hold: Callable[[Any], AbstractAsyncContextManager[object]],
    on_enter: Callable[[int, Any], None],
    on_exit: Callable[[int, Any], None],
    *,
    expected: type[BaseException] | None = None,
) -> _Record:
    """Run every arrival on the fake clock; arrival i starts at at + i/1000 so ties
    have a definite order."""
    record = _Record()

    async def one(index: int, arrival: _Arrival) -> None:
        await trio.sleep(arrival.at + index / 1000)
        scope = trio.CancelScope()
        if arrival.cancel_after is not None:
            scope.deadline = trio.current_time() + arrival.cancel_after
        with scope:
            try:
                async with hold(arrival.arg):
                    record.entered[index] = trio.current_time()
                    on_enter(index, arrival.arg)
                    try:
                        await trio.sleep(arrival.hold)
                    finally:
                        on_exit(index, arrival.arg)
            except BaseException as error:
                if expected is None or not isinstance(error, expected):
                    raise
                if index not in record.entered:
                    record.rejected[index] = trio.current_time()
        if scope.cancelled_caught and index not in record.entered:
            record.cancelled[index] = trio.current_time()

    async def main() -> None:
        with trio.fail_after(1000):
            async with trio.open_nursery() as nursery:
                for index, arrival in enumerate(arrivals):
                    nursery.start_soon(one, index, arrival)

    trio.run(main, clock=_mock_clock())
    return record


def _starts(arrivals: list[_Arrival]) -> dict[int, float]:
    return {i: a.at + i / 1000 for i, a in enumerate(arrivals)}


def _check_order(
    arrivals: list[_Arrival], record: _Record, better: Callable[[int, int], bool]
) -> None:
    """No task entered at time t while a *better* task that arrived strictly before t
    kept waiting past t."""
    starts = _starts(arrivals)
    for winner, t in record.entered.items():
        for other, start in starts.items():
            if other == winner or start >= t or not better(other, winner):
                continue
            left = min(
                record.entered.get(other, math.inf),
                record.cancelled.get(other, math.inf),
                record.rejected.get(other, math.inf),
            )
            assert left <= t + 1e-9, (winner, other, record)


@given(arrivals=_arrivals(st.integers(1, 4)), capacity=st.integers(4, 6))
def test_property_weighted_semaphore(arrivals: list[_Arrival], capacity: int) -> None:
    """Random weights, holds and cancellations: weight in use never exceeds capacity,
    strict FIFO, and every token comes back."""
    sem = WeightedSemaphore(capacity)
    in_use = [0]

    def enter(index: int, weight: int) -> None:
        in_use[0] += weight
        assert in_use[0] <= capacity

    def leave(index: int, weight: int) -> None:
        in_use[0] -= weight

    record = _run_schedule(arrivals, sem.hold, enter, leave)
    starts = _starts(arrivals)
    _check_order(arrivals, record, lambda a, b: starts[a] < starts[b])
    assert sem.statistics() == trine.WeightedSemaphoreStatistics(0, capacity, 0)


@given(arrivals=_arrivals(st.integers(0, 3)), total=st.integers(1, 3))
def test_property_priority_limiter(arrivals: list[_Arrival], total: int) -> None:
    """Random priorities: never more than total inside, better (priority, arrival)
    first, nothing lost, no heap entries left."""
    limiter = PriorityLimiter(total)
    in_use = [0]

    def enter(index: int, priority: int) -> None:
        in_use[0] += 1
        assert in_use[0] <= total

    def leave(index: int, priority: int) -> None:
        in_use[0] -= 1

    record = _run_schedule(arrivals, lambda p: limiter.hold(priority=p), enter, leave)
    starts = _starts(arrivals)
    _check_order(
        arrivals,
        record,
        lambda a, b: (arrivals[a].arg, starts[a]) < (arrivals[b].arg, starts[b]),
    )
    assert limiter.statistics() == trine.PriorityLimiterStatistics(0, total, 0)
    assert limiter._heap == []


@given(
    arrivals=_arrivals(st.sampled_from("abc")),
    per_key=st.integers(1, 2),
    total=st.none() | st.integers(1, 3),
)
def test_property_keyed_limiter(arrivals: list[_Arrival], per_key: int, total: int | None) -> None:
    """Random keys: per-key and total bounds hold, FIFO within a key, idle keys are
    forgotten and nothing is lost."""
    limiter = KeyedLimiter(per_key, total=total)
    by_key: dict[Hashable, int] = {}
    overall = [0]

    def enter(index: int, key: str) -> None:
        by_key[key] = by_key.get(key, 0) + 1
        overall[0] += 1
        assert by_key[key] <= per_key
        assert total is None or overall[0] <= total

    def leave(index: int, key: str) -> None:
        by_key[key] -= 1
        overall[0] -= 1

    record = _run_schedule(arrivals, limiter.hold, enter, leave)
    starts = _starts(arrivals)
    _check_order(
        arrivals,
        record,
        lambda a, b: arrivals[a].arg == arrivals[b].arg and starts[a] < starts[b],
    )
    assert limiter.statistics() == trine.KeyedLimiterStatistics(0, total, per_key, 0, 0)
    assert limiter._ready == []


@given(
    arrivals=_arrivals(st.none()),
    max_concurrent=st.integers(1, 3),
    max_waiting=st.integers(0, 3),
    max_wait=st.none() | st.integers(0, 3).map(float),
)
def test_property_bulkhead(
    arrivals: list[_Arrival], max_concurrent: int, max_waiting: int, max_wait: float | None
) -> None:
    """Random loads: never more than max_concurrent inside or max_waiting queued, FIFO,
    every call admitted, rejected or cancelled, and nothing lost."""
    bulkhead = Bulkhead(max_concurrent, max_waiting=max_waiting, max_wait=max_wait)
    in_use = [0]

    def enter(index: int, arg: None) -> None:
        in_use[0] += 1
        assert in_use[0] <= max_concurrent
        assert bulkhead.statistics().tasks_waiting <= max_waiting

    def leave(index: int, arg: None) -> None:
        in_use[0] -= 1

    record = _run_schedule(arrivals, lambda _: bulkhead.hold(), enter, leave, expected=BulkheadFull)
    starts = _starts(arrivals)
    _check_order(arrivals, record, lambda a, b: starts[a] < starts[b])
    stats = bulkhead.statistics()
    assert (stats.borrowed_tokens, stats.tasks_waiting) == (0, 0)
    assert stats.admitted == len(record.entered)
    assert stats.rejected == len(record.rejected)
    assert stats.admitted + stats.rejected + len(record.cancelled) == len(arrivals)


@given(
    arrivals=_arrivals(st.booleans()),
    algorithm=st.sampled_from(["aimd", "gradient"]),
)
def test_property_adaptive_limiter(arrivals: list[_Arrival], algorithm: str) -> None:
    """Random loads and failures: the limit stays in [min_limit, max_limit], calls
    inside never exceed max_limit, FIFO order holds, and nothing is lost."""
    limiter = AdaptiveLimiter(
        initial=2,
        min_limit=1,
        max_limit=4,
        algorithm=algorithm,  # type: ignore[arg-type]
        latency_threshold=2.5,
    )
    in_use = [0]

    def enter(index: int, fail: bool) -> None:
        in_use[0] += 1
        assert in_use[0] <= 4
        assert 1 <= limiter.limit <= 4

    def leave(index: int, fail: bool) -> None:
        in_use[0] -= 1
        if fail:
            raise ValueError("failed call")

    record = _run_schedule(arrivals, lambda _: limiter.hold(), enter, leave, expected=ValueError)
    starts = _starts(arrivals)
    _check_order(arrivals, record, lambda a, b: starts[a] < starts[b])
    stats = limiter.statistics()
    assert (stats.borrowed_tokens, stats.tasks_waiting) == (0, 0)
    assert 1 <= stats.limit <= 4


@given(
    subsets=st.lists(
        st.tuples(
            st.permutations(range(5)),
            st.integers(1, 5),
            st.integers(0, 3),
            st.none() | st.integers(0, 4),
        ),
        min_size=1,
        max_size=12,
    ),
    seed=st.integers(0, 2**16),
)
def test_property_acquire_all_never_deadlocks(
    subsets: list[tuple[list[int], int, int, int | None]], seed: int
) -> None:
    """Many tasks take random subsets of shared locks and limiters in random argument
    orders, some cancelled at random times; all finish before a deadline that serial
    execution would meet, and every lock is free afterwards."""
    rng = random.Random(seed)
    limiters: list[trine.LimiterLike] = [
        trio.Lock(),
        trio.CapacityLimiter(1),
        WeightedSemaphore(1),
        PriorityLimiter(1),
        KeyedLimiter(1).for_key("k"),
    ]
    finished = []

    async def task(order: list[int], hold: int, cancel_after: int | None) -> None:
        chosen = [limiters[i] for i in order]
        with trio.move_on_after(math.inf if cancel_after is None else cancel_after):
            async with acquire_all(*chosen):
                await trio.sleep(hold)
        finished.append(order)

    async def main() -> None:
        deadline = sum(hold for _, _, hold, _ in subsets) + 1
        with trio.fail_after(deadline):
            async with trio.open_nursery() as nursery:
                for permutation, size, hold, cancel_after in subsets:
                    order = list(permutation[:size])
                    rng.shuffle(order)
                    nursery.start_soon(task, order, hold, cancel_after)

    trio.run(main, clock=_mock_clock())
    assert len(finished) == len(subsets)
    lock, capacity_limiter = limiters[0], limiters[1]
    assert isinstance(lock, trio.Lock)
    assert isinstance(capacity_limiter, trio.CapacityLimiter)
    assert not lock.locked()
    assert capacity_limiter.borrowed_tokens == 0
    assert all(_borrowed(limiter) == 0 for limiter in limiters[2:])


@given(
    subsets=st.lists(
        st.tuples(
            st.permutations(range(5)),
            st.integers(2, 5),
            st.integers(0, 3),
            st.none() | st.integers(0, 4),
        ),
        min_size=1,
        max_size=12,
    ),
    seed=st.integers(0, 2**16),
)
def test_property_acquire_all_never_deadlocks_on_keys_whose_hashes_are_equal(
    subsets: list[tuple[list[int], int, int, int | None]], seed: int
) -> None:
    """Tasks take random subsets of keys with one hash (each task its own, equal key objects)
    in random orders, some cancelled; all finish in time, and nothing stays held."""
    rng = random.Random(seed)
    keyed = KeyedLimiter(1)
    lock = trio.Lock()
    finished = []

    async def task(order: list[int], hold: int, cancel_after: int | None) -> None:
        # Fresh key objects per task: equal keys must order the same in every task.
        chosen = [lock if i == 4 else keyed.for_key(_Colliding(i)) for i in order]
        with trio.move_on_after(math.inf if cancel_after is None else cancel_after):
            async with acquire_all(*chosen):
                await trio.sleep(hold)
        finished.append(order)

    async def main() -> None:
        deadline = sum(hold for _, _, hold, _ in subsets) + 1
        with trio.fail_after(deadline):
            async with trio.open_nursery() as nursery:
                for permutation, size, hold, cancel_after in subsets:
                    order = list(permutation[:size])
                    rng.shuffle(order)
                    nursery.start_soon(task, order, hold, cancel_after)

    trio.run(main, clock=_mock_clock())
    assert len(finished) == len(subsets)
    assert not lock.locked()
    stats = keyed.statistics()
    assert (stats.borrowed_tokens, stats.tasks_waiting, stats.keys) == (0, 0, 0)


@given(
    limits=st.lists(
        st.tuples(st.integers(1, 2), st.sampled_from([1, 2, 2, 3, None])), min_size=2, max_size=2
    ),
    tasks=st.lists(
        st.tuples(
            st.permutations(range(7)),
            st.integers(1, 4),
            st.booleans(),
            st.integers(0, 2),
            st.sampled_from([None, None, None, 0, 1, 2]),
        ),
        min_size=2,
        max_size=10,
    ),
    seed=st.integers(0, 2**16),
)
def test_property_acquire_all_of_keys_never_deadlocks_nor_exceeds_a_limit(
    limits: list[tuple[int, int | None]],
    tasks: list[tuple[list[int], int, bool, int, int | None]],
    seed: int,
) -> None:
    """Tasks take random sets of keys of two KeyedLimiters (random per_key and total) and a
    lock, in random orders, some one key through hold(), some cancelled; all finish in time,
    no key or total is ever exceeded, and nothing is left borrowed, queued or remembered."""
    rng = random.Random(seed)
    keyed = [KeyedLimiter(per_key, total=total) for per_key, total in limits]
    lock = trio.Lock()
    # items 0-2: keys of keyed[0], 3-5: keys of keyed[1], 6: the lock
    inside: dict[tuple[int, int], int] = {}
    finished = []

    def limiter(item: int) -> trine.LimiterLike:
        return lock if item == 6 else keyed[item // 3].for_key(item % 3)

    def check_bounds() -> None:
        for index, limiter in enumerate(keyed):
            held = [inside.get((index, key), 0) for key in range(3)]
            assert max(held) <= limiter.per_key
            assert limiter.total is None or sum(held) <= limiter.total
            assert limiter.statistics().borrowed_tokens >= sum(held)

    def chosen(permutation: list[int], size: int) -> list[int]:
        items: list[int] = []
        for item in permutation[:size]:  # no more keys of one than its total: refused
            total = None if item == 6 else keyed[item // 3].total
            if total is None or sum(other // 3 == item // 3 for other in items) < total:
                items.append(item)
        return items

    async def task(items: list[int], plain: bool, hold: int, cancel_after: int | None) -> None:
        keys = [(item // 3, item % 3) for item in items if item != 6]
        with trio.move_on_after(math.inf if cancel_after is None else cancel_after):
            cm: AbstractAsyncContextManager[object]
            if plain and len(items) == 1 and keys:
                cm = keyed[keys[0][0]].hold(keys[0][1])
            else:
                cm = acquire_all(*(limiter(item) for item in items))
            async with cm:
                for key in keys:
                    inside[key] = inside.get(key, 0) + 1
                check_bounds()
                try:
                    await trio.sleep(hold)
                finally:
                    for key in keys:
                        inside[key] -= 1
        finished.append(items)

    async def main() -> None:
        # Serial execution would meet it: someone is always inside until all are done.
        deadline = sum(hold for _, _, _, hold, _ in tasks) + 1
        with trio.fail_after(deadline):
            async with trio.open_nursery() as nursery:
                for permutation, size, plain, hold, cancel_after in tasks:
                    nursery.start_soon(task, chosen(permutation, size), plain, hold, cancel_after)
                    if rng.random() < 0.25:  # mostly all start in one batch, contending
                        await trio.lowlevel.checkpoint()

    trio.run(main, clock=_mock_clock())
    assert len(finished) == len(tasks)
    assert not lock.locked()
    for limiter in keyed:
        stats = limiter.statistics()
        assert (stats.borrowed_tokens, stats.tasks_waiting, stats.keys) == (0, 0, 0)
        assert limiter._ready == []
        assert limiter._admit_below == (sys.maxsize if limiter.total is None else limiter.total)


async def test_acquire_all_of_one_limiter_behaves_as_acquire_all() -> None:
    """One limiter, the fast path: a checkpoint, entered as None, released, never swallowing."""

    class Swallowing:
        async def __aenter__(self) -> str:
            return "mine"

        async def __aexit__(self, *exc_info: object) -> bool:
            return True  # would swallow an error if acquire_all let it

    @attrs.define
    class Mine:
        def hold(self) -> AbstractAsyncContextManager[object]:
            return Swallowing()

    for limiter in [
        trio.CapacityLimiter(1),
        trio.Lock(),
        WeightedSemaphore(1),
        PriorityLimiter(1),
        Bulkhead(1),
        KeyedLimiter(1).for_key("k"),
        AdaptiveLimiter(initial=1, max_limit=1),
        Mine(),
    ]:
        # Entering checkpoints as entering the limiter does (Mine's does not).
        mine = isinstance(limiter, Mine)
        with contextlib.nullcontext() if mine else trio.testing.assert_checkpoints():
            async with acquire_all(limiter) as entered:
                assert entered is None
        with pytest.raises(ValueError, match=r"^inside$"):
            async with acquire_all(limiter):
                raise ValueError("inside")
        if not isinstance(limiter, Mine):
            assert _borrowed(limiter) == 0, limiter


def test_acquire_all_of_one_limiter_names_a_bad_one() -> None:
    """``acquire_all(x)`` refuses a non-limiter as limiters[0], as with several."""
    with pytest.raises(TypeError, match=r"^limiters\[0\] must be a limiter .*, got 3$"):
        acquire_all(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make",
    [
        lambda: [WeightedSemaphore(1)],
        lambda: [trio.CapacityLimiter(1)],
        lambda: [AdaptiveLimiter(initial=1, max_limit=1)],
        lambda: [trio.Lock(), PriorityLimiter(1), KeyedLimiter(1).for_key("k")],
    ],
)
async def test_leaving_gives_the_slot_back_inside_the_aexit_call(
    make: Callable[[], list[trine.LimiterLike]],
) -> None:
    """Regression (hardening, KeyboardInterrupt): the release happens in the call, not the await.

    Python looks for signals between ``async with`` calling ``__aexit__`` and
    awaiting what it returned; a Ctrl-C there must find the slot given back.
    """
    limiters = make()
    for hold in [acquire_all(*limiters), *(open_hold(x) for x in limiters if hasattr(x, "hold"))]:
        await hold.__aenter__()
        pending = hold.__aexit__(None, None, None)
        assert all(_borrowed(limiter) == 0 for limiter in limiters)
        assert await pending is None


async def test_acquire_all_enters_and_leaves_ki_protected() -> None:
    """Regression (hardening, KeyboardInterrupt): acquire_all's enter and exit are protected.

    A Ctrl-C landing between taking one limiter and recording it left it
    borrowed; now it waits for the next checkpoint.
    """
    seen: list[bool] = []

    class Recording:
        async def __aenter__(self) -> None:
            seen.append(trio.lowlevel.currently_ki_protected())

        async def __aexit__(self, *exc_info: object) -> None:
            seen.append(trio.lowlevel.currently_ki_protected())

    @attrs.define
    class Mine:
        def hold(self) -> AbstractAsyncContextManager[object]:
            return Recording()

    async with acquire_all(Mine(), trio.Lock()):
        seen.append(trio.lowlevel.currently_ki_protected())
    async with acquire_all(Mine()):
        pass
    assert seen == [True, False, True, True, True]


# --------------------------------------------------------------------------
# The guide's examples run as written (on the fake clock)

_GUIDE = pathlib.Path(__file__).parent.parent / "docs" / "guide" / "limiters.rst"


def _guide_examples() -> list[str]:
    blocks = re.findall(
        r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", _GUIDE.read_text(), re.M
    )
    return [textwrap.dedent(block) for block in blocks]


@pytest.mark.parametrize("source", _guide_examples())
def test_guide_examples_run(source: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every ``code-block:: python`` in docs/guide/limiters.rst runs and its asserts hold."""
    assert source.rstrip().endswith("trio.run(main)")
    namespace: dict[str, Any] = {}
    exec(compile(source.rstrip().removesuffix("trio.run(main)"), str(_GUIDE), "exec"), namespace)
    trio.run(namespace["main"], clock=_mock_clock())


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (lambda: KeyedLimiter(2), "; pass keyed.for_key(key)"),
        (lambda: Bulkhead, "; pass an instance, not the class"),
    ],
)
def test_acquire_all_refuses_a_limiter_whose_hold_needs_arguments_at_the_call(
    make: Callable[[], Any], hint: str
) -> None:
    """Regression (audit): a KeyedLimiter itself, or a limiter class, is refused by
    acquire_all at the call as by Policy, naming its position (it failed on entry with
    Python's "hold() missing 1 required positional argument")."""
    from trine._limit import hold_opener

    limiter = make()
    message = f"must be a limiter whose hold() takes no arguments, got {limiter!r}{hint}"
    for args, name in [((limiter,), "limiters[0]"), ((trio.Lock(), limiter), "limiters[1]")]:
        with pytest.raises(TypeError, match=f"^{re.escape(name + ' ' + message)}$"):
            acquire_all(*args)
    with pytest.raises(TypeError, match=f"^{re.escape('limiter ' + message)}$"):
        hold_opener(limiter)


def test_hold_opener_refuses_a_keyed_limiter_and_suggests_for_key() -> None:
    """A KeyedLimiter needs a key: hold_opener says to bind one with for_key."""
    from trine._limit import hold_opener

    keyed = KeyedLimiter(2)
    with pytest.raises(
        TypeError, match=r"hold\(\) takes no arguments, got .*; pass keyed\.for_key\(key\)$"
    ):
        hold_opener(keyed)
    assert hold_opener(keyed.for_key("a"))  # a bound key is a Limiter
    capacity = trio.CapacityLimiter(1)
    assert hold_opener(capacity)() is capacity
