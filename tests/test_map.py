"""amap, map_all and for_each: bounds, order, backpressure, errors and cancellation."""

from __future__ import annotations

import inspect
import itertools
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine.testing import ConcurrencyProbe, assert_takes


def sleeper(probe: ConcurrencyProbe, durations: dict[int, float] | None = None, default=1.0):
    """An fn that sleeps for its item's duration inside the probe and returns the item."""

    async def fn(item: int) -> int:
        with probe.track(item):
            await trio.sleep(durations.get(item, default) if durations else default)
        return item

    return fn


async def collect(
    fn: Any, items: Any, *, limit: int, ordered: bool = True, policy: Any = None
) -> list[Any]:
    async with trine.amap(fn, items, limit=limit, ordered=ordered, policy=policy) as results:
        return [result async for result in results]


# -- timing and order ---------------------------------------------------------------


@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_ten_one_second_calls_at_limit_three_take_four_seconds(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """Ten 1 s calls at limit 3 run in waves of 3, 3, 3, 1: exactly 4 s, never 4 at once."""
    probe = ConcurrencyProbe()
    fn = sleeper(probe)
    with assert_takes(4.0):
        if how == "amap":
            assert await collect(fn, range(10), limit=3) == list(range(10))
        elif how == "map_all":
            assert await trine.map_all(fn, range(10), limit=3) == list(range(10))
        else:
            assert await trine.for_each(fn, range(10), limit=3) is None
    assert probe.peak == 3
    assert sorted(probe.times("exit").values()) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4]


async def test_ordered_yields_in_input_order(autojump_clock: trio.testing.MockClock) -> None:
    """With varying durations, ordered results come in input order, each as soon as it can."""
    probe = ConcurrencyProbe()
    durations = {0: 3.0, 1: 1.0, 2: 4.0, 3: 2.5, 4: 1.0}
    yielded: list[tuple[int, float]] = []
    async with trine.amap(sleeper(probe, durations), range(5), limit=2) as results:
        async for result in results:
            yielded.append((result, trio.current_time()))
    # Each item's [start, end]: 0 [0, 3], 1 [0, 1], 2 [1, 5], 3 [3, 5.5], 4 [5, 6].
    assert yielded == [(0, 3.0), (1, 3.0), (2, 5.0), (3, 5.5), (4, 6.0)]
    assert await trine.map_all(sleeper(probe, durations), range(5), limit=2) == list(range(5))


async def test_unordered_yields_in_completion_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With ordered=False, each result comes the moment its call finishes."""
    probe = ConcurrencyProbe()
    durations = {0: 3.0, 1: 1.0, 2: 4.0, 3: 2.5, 4: 1.0}
    yielded: list[tuple[int, float]] = []
    async with trine.amap(sleeper(probe, durations), range(5), limit=2, ordered=False) as results:
        async for result in results:
            yielded.append((result, trio.current_time()))
    assert yielded == [(1, 1.0), (0, 3.0), (2, 5.0), (3, 5.5), (4, 6.0)]
    unordered = await trine.map_all(sleeper(probe, durations), range(5), limit=2, ordered=False)
    assert unordered == [1, 0, 2, 3, 4]


async def test_slow_head_does_not_stall_later_items(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """While a 10 s head runs, later items run on their own times until 2 * limit are pending."""
    probe = ConcurrencyProbe()
    yielded: list[tuple[int, float]] = []
    async with trine.amap(sleeper(probe, {0: 10.0}), range(8), limit=3) as results:
        async for result in results:
            yielded.append((result, trio.current_time()))
    enters, exits = probe.times("enter"), probe.times("exit")
    # Items 1..5 run beside the head, two at a time, finishing at 1, 1, 2, 2, 3.
    assert [exits[i] for i in range(1, 6)] == [1.0, 1.0, 2.0, 2.0, 3.0]
    # Then 6 items (the head + 5 results) are outstanding: the window of 2 * 3
    # is full, so item 6 waits until the head is yielded at 10 s.
    assert enters[6] == 10.0
    assert enters[7] == 10.0
    assert yielded == [(i, 10.0) for i in range(6)] + [(6, 11.0), (7, 11.0)]
    assert probe.peak == 3


async def test_slow_consumer_holds_back_the_workers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Results are not computed faster than they are consumed, beyond the window of 2 * limit."""
    started = 0
    consumed = 0
    most_outstanding = 0

    async def fn(item: int) -> int:
        nonlocal started, most_outstanding
        started += 1
        most_outstanding = max(most_outstanding, started - consumed)
        await trio.sleep(0.1)
        return item

    for ordered in (True, False):
        started = consumed = most_outstanding = 0
        async with trine.amap(fn, itertools.count(), limit=4, ordered=ordered) as results:
            async for _ in results:
                consumed += 1
                await trio.sleep(1)
                if consumed == 20:
                    break
        assert most_outstanding == 8
        # The 20th hand-over freed a slot of the window: 20 + 8 items were taken.
        assert started == 20 + 8


async def test_short_input_starts_only_as_many_workers_as_items(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Three items at limit 100 start three workers (an async source: four, one finds the end)."""
    counts: list[int] = []

    async def fn(item: int) -> int:
        nursery = trio.lowlevel.current_task().parent_nursery
        assert nursery is not None
        counts.append(len(nursery.child_tasks))
        await trio.sleep(1)
        return item

    async def three() -> AsyncIterator[int]:
        for i in range(3):
            yield i

    assert await collect(fn, range(3), limit=100) == [0, 1, 2]
    assert max(counts) == 3
    counts.clear()
    assert await collect(fn, three(), limit=100) == [0, 1, 2]
    assert max(counts) == 4


# -- sources ------------------------------------------------------------------------


async def test_infinite_generator_early_exit_cancels_and_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Leaving the block early cancels the calls in flight and closes the generator."""
    probe = ConcurrencyProbe()
    closed = False
    taken = 0

    def numbers() -> Iterator[int]:
        nonlocal closed, taken
        try:
            for i in itertools.count():
                taken += 1
                yield i
        finally:
            closed = True

    with assert_takes(3.0):
        async with trine.amap(sleeper(probe), numbers(), limit=3) as results:
            async for result in results:
                if result == 6:
                    break
    assert probe.current == 0
    assert closed
    assert taken <= 7 + 2 * 3


async def test_async_generator_source(autojump_clock: trio.testing.MockClock) -> None:
    """An async generator is consumed lazily, one __anext__ at a time, within the limit."""
    probe = ConcurrencyProbe()
    inside = 0

    async def numbers(n: int) -> AsyncIterator[int]:
        nonlocal inside
        for i in range(n):
            inside += 1
            assert inside == 1, "two tasks inside __anext__ at once"
            await trio.lowlevel.checkpoint()
            inside -= 1
            yield i

    with assert_takes(4.0):
        assert await collect(sleeper(probe), numbers(10), limit=3) == list(range(10))
    assert probe.peak == 3
    unordered = await collect(sleeper(probe), numbers(10), limit=3, ordered=False)
    assert sorted(unordered) == list(range(10))
    with assert_takes(4.0):
        assert await trine.map_all(sleeper(probe), numbers(10), limit=3) == list(range(10))
    with assert_takes(4.0):
        await trine.for_each(sleeper(probe), numbers(10), limit=3)
    assert probe.peak == 3


async def test_async_generator_early_exit_is_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Leaving the block early acloses an async-generator source (its finally runs)."""
    probe = ConcurrencyProbe()
    closed = False

    async def numbers() -> AsyncIterator[int]:
        nonlocal closed
        try:
            for i in itertools.count():
                yield i
        finally:
            closed = True

    async with trine.amap(sleeper(probe), numbers(), limit=3, ordered=False) as results:
        async for result in results:
            if result == 4:
                break
    assert closed
    assert probe.current == 0


async def test_async_iterable_that_is_not_a_generator() -> None:
    """Any object with __aiter__ works as a source."""

    class Countdown:
        def __aiter__(self) -> AsyncIterator[int]:
            return self._run()

        async def _run(self) -> AsyncIterator[int]:
            for i in range(3, 0, -1):
                yield i

    async def double(x: int) -> int:
        return 2 * x

    assert await trine.map_all(double, Countdown(), limit=2) == [6, 4, 2]


# -- errors and cancellation -------------------------------------------------------


@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_failure_cancels_the_rest_and_propagates(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """The first failure cancels every other call at once and arrives in an ExceptionGroup."""
    probe = ConcurrencyProbe()

    async def fn(item: int) -> int:
        with probe.track(item):
            if item == 1:
                await trio.sleep(2)
                raise ValueError("boom")
            await trio.sleep(10)
        return item

    with (
        pytest.RaisesGroup(pytest.RaisesExc(ValueError, match=r"^boom$")),
        assert_takes(2.0),
    ):
        if how == "amap":
            await collect(fn, range(10), limit=3)
        elif how == "map_all":
            await trine.map_all(fn, range(10), limit=3)
        else:
            await trine.for_each(fn, range(10), limit=3)
    assert probe.current == 0
    assert set(probe.times("exit").values()) == {2.0}


def fail_in_the_block(cause: BaseException) -> None:
    """Raise LookupError("mine") from *cause*, while handling a KeyError (its context)."""
    try:
        raise KeyError("context")
    except KeyError:
        raise LookupError("mine") from cause


async def test_regression_issue_10_bug_9_the_blocks_exception_leaves_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An exception raised by the amap block cancels the calls and leaves bare, as from open()."""
    probe = ConcurrencyProbe()
    cause = OSError("cause")

    async def consume() -> None:
        async with trine.amap(sleeper(probe, {0: 1.0}, default=5.0), range(9), limit=3) as results:
            async for _ in results:
                fail_in_the_block(cause)

    with pytest.raises(LookupError, match=r"^mine$") as info, assert_takes(1.0):
        await consume()
    assert probe.current == 0
    assert set(probe.times("exit").values()) == {1.0}
    # Its own traceback, cause and context, not the nursery's.
    assert info.value.__cause__ is cause
    assert isinstance(info.value.__context__, KeyError)
    assert info.traceback[-1].name == "fail_in_the_block"


async def test_regression_issue_10_bug_9_the_blocks_keyboard_interrupt_leaves_bare(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A KeyboardInterrupt raised in the block leaves as itself, not in a BaseExceptionGroup."""
    probe = ConcurrencyProbe()

    async def consume() -> None:
        async with trine.amap(sleeper(probe), range(9), limit=3) as results:
            async for _ in results:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await consume()
    assert probe.current == 0


async def test_regression_issue_10_bug_9_an_outer_cancellation_leaves_the_block_bare(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled from outside, the block's Cancelled leaves as itself; no code after it runs."""
    probe = ConcurrencyProbe()
    seen: list[BaseException] = []
    after_the_block = False
    with assert_takes(1.5), trio.move_on_after(1.5) as scope:
        try:
            async with trine.amap(sleeper(probe, default=5.0), range(9), limit=3) as results:
                async for _ in results:
                    pass
            after_the_block = True
        except BaseException as exc:  # recorded and re-raised: the scope must catch it
            seen.append(exc)
            raise
    assert scope.cancelled_caught
    assert not after_the_block
    assert [type(exc) for exc in seen] == [trio.Cancelled]
    assert probe.current == 0


async def test_an_exit_cancelled_from_outside_leaves_as_a_bare_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A block that ended, cancelled from outside while its calls clean up, leaves as Cancelled."""

    async def slow_cleanup(item: int) -> int:
        try:
            await trio.sleep(10.0)
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(2.0)
        return item

    seen: list[BaseException] = []
    with trio.move_on_after(1.0):
        try:
            async with trine.amap(slow_cleanup, range(3), limit=3) as results:
                await trio.sleep(0.5)
                del results  # leave the block without reading: the calls are cancelled
        except BaseException as exc:  # recorded and re-raised: the scope must catch it
            seen.append(exc)
            raise
    assert trio.current_time() == 2.5
    assert [type(exc) for exc in seen] == [trio.Cancelled]


async def test_a_failure_of_fn_beside_the_blocks_exception_keeps_the_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When fn failed too, the nursery's group holds the failure and the block's exception."""

    async def fn(item: int) -> int:
        await trio.sleep(2)
        raise ValueError("fn")

    with (
        assert_takes(2.0),
        pytest.RaisesGroup(
            pytest.RaisesExc(ValueError, match=r"^fn$"),
            pytest.RaisesExc(LookupError, match=r"^cleanup$"),
        ),
    ):
        async with trine.amap(fn, range(3), limit=3):
            try:
                await trio.sleep(10)  # cancelled when fn fails at 2 s
            finally:
                raise LookupError("cleanup")


async def test_failure_of_the_source_propagates(autojump_clock: trio.testing.MockClock) -> None:
    """An exception from the items iterator is a failure like one from fn."""
    probe = ConcurrencyProbe()

    def numbers() -> Iterator[int]:
        yield from range(5)
        raise KeyError("source")

    with pytest.RaisesGroup(KeyError):
        await collect(sleeper(probe), numbers(), limit=2)
    with pytest.RaisesGroup(KeyError):
        await trine.map_all(sleeper(probe), numbers(), limit=2)
    assert probe.current == 0


@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_outside_cancellation_stops_everything(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """A cancel scope around the call cancels every call in flight at its deadline."""
    probe = ConcurrencyProbe()
    with assert_takes(2.5), trio.move_on_after(2.5) as scope:
        if how == "amap":
            await collect(sleeper(probe), itertools.count(), limit=3)
        elif how == "map_all":
            await trine.map_all(sleeper(probe), itertools.count(), limit=3)
        else:
            await trine.for_each(sleeper(probe), itertools.count(), limit=3)
    assert scope.cancelled_caught
    assert probe.current == 0
    assert Counter(probe.times("exit").values()) == {1.0: 3, 2.0: 3, 2.5: 3}


async def test_each_step_is_a_cancellation_point() -> None:
    """__anext__ raises Cancelled in a cancelled scope even when a result is ready."""

    async def identity(x: int) -> int:
        return x

    async with trine.amap(identity, range(10), limit=2) as results:
        iterator = aiter(results)
        assert await anext(iterator) == 0
        with trio.CancelScope() as scope:
            scope.cancel()
            await anext(iterator)
            pytest.fail("not cancelled")  # pragma: no cover
        assert await anext(iterator) == 1


@pytest.mark.parametrize("empty", [[], (), iter([])])
async def test_empty_input_is_still_a_checkpoint(empty: Any) -> None:
    """map_all, for_each and the end of amap iteration are checkpoints even with no items."""

    async def empty_async() -> AsyncIterator[int]:
        return
        yield  # pragma: no cover

    async def identity(x: int) -> int:
        return x

    with trio.testing.assert_checkpoints():
        assert await trine.map_all(identity, empty, limit=2) == []
    with trio.testing.assert_checkpoints():
        await trine.for_each(identity, empty_async(), limit=2)
    async with trine.amap(identity, empty, limit=2) as results:
        with trio.testing.assert_checkpoints():
            async for _ in results:
                pass  # pragma: no cover


@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_fn_that_never_yields_still_lets_cancellation_in(how: str) -> None:
    """An infinite input and a fn without checkpoints still stop at an outside cancel."""
    calls = 0

    async def busy(x: int) -> int:
        nonlocal calls
        calls += 1
        return x

    with trio.CancelScope() as scope:
        scope.cancel()
        if how == "amap":
            async with trine.amap(busy, itertools.count(), limit=3) as results:
                async for _ in results:
                    pass
        elif how == "map_all":
            await trine.map_all(busy, itertools.count(), limit=3)
        else:
            await trine.for_each(busy, itertools.count(), limit=3)
    assert scope.cancelled_caught
    assert calls < 1000


async def test_deadline_fires_while_fn_never_yields() -> None:
    """A fn with no checkpoint does not hog the run loop: another task gets to run."""
    calls = 0
    ticks = 0

    async def busy(x: int) -> int:
        nonlocal calls
        calls += 1
        return x

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        start = ticks
        await trine.for_each(busy, range(10_000), limit=1)
        assert ticks - start >= 10_000 // 64
        nursery.cancel_scope.cancel()
    assert calls == 10_000


# -- misuse and validation ---------------------------------------------------------


async def test_results_iterated_twice_or_outside_the_block_is_an_error() -> None:
    """Iterating the results a second time, or after the block, raises a RuntimeError saying so."""

    async def identity(x: int) -> int:
        return x

    async with trine.amap(identity, range(3), limit=2) as results:
        assert [r async for r in results] == [0, 1, 2]
        with pytest.raises(RuntimeError, match=r"^amap results can be iterated only once: "):
            async for _ in results:
                pass  # pragma: no cover
    with pytest.raises(RuntimeError, match=r"^amap results were used after their `async with"):
        await anext(results)


async def test_two_consumers_at_once_is_an_error(autojump_clock: trio.testing.MockClock) -> None:
    """A second task waiting for the next result at the same time gets BusyResourceError."""
    probe = ConcurrencyProbe()
    async with (
        trine.amap(sleeper(probe), range(3), limit=1) as results,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(anext, results)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError, match=r"^another task is already waiting"):
            await anext(results)


async def identity(x: object) -> object:
    return x


async def start(how: str, fn: Any, items: Any, **kwargs: Any) -> None:
    """Call amap (sync), or call and await map_all/for_each, with these arguments."""
    if how == "amap":
        trine.amap(fn, items, **kwargs)
    else:
        await getattr(trine, how)(fn, items, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"limit": 0}, ValueError, r"^limit must be >= 1, got 0$"),
        ({"limit": -3}, ValueError, r"^limit must be >= 1, got -3$"),
        ({"limit": 2.0}, TypeError, r"^limit must be an int, got 2\.0$"),
        ({"limit": True}, TypeError, r"^limit must be an int, got True$"),
        (
            {"limit": 2, "items": 3},
            TypeError,
            r"^items must be an iterable or an async iterable, got 3$",
        ),
        ({"limit": 2, "fn": 3}, TypeError, r"^fn must be an async function, got 3$"),
    ],
)
@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_arguments_are_validated_at_the_call(
    kwargs: dict[str, Any], error: type[Exception], message: str, how: str
) -> None:
    """Bad arguments raise at the call (amap) or the await (map_all, for_each), before any work."""
    arguments: dict[str, Any] = {"fn": identity, "items": iter([1, 2]), **kwargs}
    fn, items = arguments.pop("fn"), arguments.pop("items")
    with pytest.raises(error, match=message):
        await start(how, fn, items, **arguments)
    if kwargs.get("items") is None:
        assert next(items) == 1  # nothing was taken from items


@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_coroutine_object_is_refused(how: str) -> None:
    """Passing fn(x) instead of fn is a TypeError that says what to do (and no warning follows)."""
    coroutine = identity(1)
    with pytest.raises(
        TypeError,
        match=r"^fn must be an async function, got the coroutine object .*: "
        r"pass the function and its arguments \(f, x\), not the result of calling it \(f\(x\)\)$",
    ):
        await start(how, coroutine, [1], limit=2)


# -- functions that are not async, and other bad input (issue 11) -----------------

NOT_ASYNC = (
    r"^fn must be an async function, but calling it returned 3, an int: define it with async def$"
)


def three(item: object) -> int:
    """A plain function where an async one is needed."""
    return 3


async def run_map(how: str, fn: Any, items: Any, **kwargs: Any) -> Any:
    """Run amap (consuming every result), map_all or for_each to the end."""
    if how == "amap":
        return await collect(fn, items, **kwargs)
    if how == "for_each":
        kwargs.pop("ordered", None)
    return await getattr(trine, how)(fn, items, **kwargs)


async def numbers(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_regression_issue_11_a_sync_fn_is_one_type_error(
    autojump_clock: trio.testing.MockClock, how: str, ordered: bool, asynchronous: bool
) -> None:
    """A plain fn is one TypeError naming fn: every worker hits it, the group holds it once."""
    items = numbers(9) if asynchronous else range(9)
    with pytest.RaisesGroup(pytest.RaisesExc(TypeError, match=NOT_ASYNC)):
        await run_map(how, three, items, limit=3, ordered=ordered)


@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_a_sync_fn_through_a_policy_is_one_type_error(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """With policy=, the policy finds the plain fn out; the group still holds the error once."""
    policy = trine.Policy(timeout=5.0)
    with pytest.RaisesGroup(pytest.RaisesExc(TypeError, match=NOT_ASYNC)):
        await run_map(how, three, range(9), limit=3, policy=policy)
    assert trio.current_time() == 0.0


async def test_map_settled_with_a_sync_fn_through_a_policy_is_one_type_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """map_settled raises the misuse instead of settling it, once, with policy= too."""
    policy = trine.Policy(timeout=5.0)
    with pytest.RaisesGroup(pytest.RaisesExc(TypeError, match=NOT_ASYNC)):
        await trine.map_settled(three, range(9), limit=3, policy=policy)
    assert trio.current_time() == 0.0


@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_regression_issue_11_a_later_non_awaitable_cancels_the_calls(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """An fn that returns a non-awaitable for one item stops the map there, with one TypeError."""
    probe = ConcurrencyProbe()
    slow = sleeper(probe, default=5.0)

    def sometimes(item: int) -> Any:
        return 3 if item == 4 else slow(item)

    async def later(item: int) -> Any:
        await trio.sleep(1)
        return item

    def fn(item: int) -> Any:
        return sometimes(item) if item >= 3 else later(item)

    with assert_takes(1.0), pytest.RaisesGroup(pytest.RaisesExc(TypeError, match=NOT_ASYNC)):
        await run_map(how, fn, range(9), limit=3)
    assert probe.current == 0
    assert probe.times("exit") == {3: 1.0}


@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_lambdas_and_awaitables_are_valid_fns(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """``lambda x: fetch(x)`` and a function returning an object with ``__await__`` both work."""

    class Ready:
        def __init__(self, value: int) -> None:
            self.value = value

        def __await__(self) -> Any:
            return self.value
            yield  # pragma: no cover

    for fn in (lambda x: identity(x), Ready):
        result = await run_map(how, fn, range(4), limit=2)
        assert result == (None if how == "for_each" else [0, 1, 2, 3])


@pytest.mark.parametrize("value", [1, 0, None, "yes", []])
@pytest.mark.parametrize("how", ["amap", "map_all"])
async def test_regression_issue_11_ordered_must_be_a_bool(how: str, value: object) -> None:
    """``ordered=1`` is refused at the call, naming ordered, rather than read as true."""
    with pytest.raises(
        TypeError, match=rf"^ordered must be True or False, got {re.escape(repr(value))}$"
    ):
        await start(how, identity, [1], limit=2, ordered=value)


@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_regression_issue_11_a_coroutine_as_items_is_refused_and_closed(how: str) -> None:
    """``items=fetch_all()`` (not awaited) is a TypeError naming items; the coroutine is closed."""

    async def fetch_all() -> list[int]:
        return [1, 2]  # pragma: no cover

    coroutine = fetch_all()
    with pytest.raises(
        TypeError,
        match=r"^items must be an iterable or an async iterable, got the coroutine object "
        r"<coroutine object .+>: await it to get the items, or pass an async generator$",
    ):
        await start(how, identity, coroutine, limit=2)
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED


@pytest.mark.parametrize("items", [None, 1, object()], ids=["None", "int", "object"])
@pytest.mark.parametrize("how", ["amap", "map_all", "for_each"])
async def test_items_that_cannot_be_iterated_are_refused(how: str, items: object) -> None:
    """None, 1 or object() as items is refused at the call, naming items."""
    with pytest.raises(
        TypeError,
        match=rf"^items must be an iterable or an async iterable, got {re.escape(repr(items))}$",
    ):
        await start(how, identity, items, limit=2)


# -- map_all's result list and its workers' checkpoints (issue 19) -------------------


async def test_map_all_ordered_follows_a_list_that_grows_or_shrinks_while_mapped() -> None:
    """The result list has one slot per item actually taken, whatever the list's length was."""
    growing = [0, 1, 2]

    async def grow(x: int) -> int:
        if x < 10:
            growing.append(x + 3)
        return x

    assert await trine.map_all(grow, growing, limit=1) == list(range(13))
    shrinking = list(range(10))

    async def shrink(x: int) -> int:
        del shrinking[-1]
        return x

    assert await trine.map_all(shrink, shrinking, limit=1) == [0, 1, 2, 3, 4]


async def test_map_all_over_a_range_longer_than_sys_maxsize() -> None:
    """A range too long for len() is mapped like any other (its failure is the only error)."""

    async def fail_at_five(x: int) -> int:
        if x == 5:
            raise ValueError(x)
        return x

    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match=r"^5$")):
        await trine.map_all(fail_at_five, range(10**20), limit=2)


@pytest.mark.parametrize("ordered", [True, False])
async def test_map_all_of_a_long_generator_keeps_every_result(ordered: bool) -> None:
    """A generator of unknown length: the list grows as items come and ends at the last."""

    def generate() -> Iterator[int]:
        yield from range(10_000)

    results = await trine.map_all(identity, generate(), limit=7, ordered=ordered)
    assert results == list(range(10_000)) if ordered else sorted(results) == list(range(10_000))  # type: ignore[arg-type]


class StepLengths(trio.abc.Instrument):
    """Records how many calls of an fn each task step made: the longest run without yielding."""

    def __init__(self, calls: Callable[[], int]) -> None:
        self.calls = calls
        self.at_start = 0
        self.longest = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.at_start = self.calls()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        self.longest = max(self.longest, self.calls() - self.at_start)


@pytest.mark.parametrize("how", ["map_all_ordered", "map_all_unordered", "for_each"])
@pytest.mark.parametrize(("limit", "longest"), [(1, 64), (3, 128)])
async def test_workers_of_an_fn_that_never_yields_yield_every_64_or_128_items(
    how: str, limit: int, longest: int
) -> None:
    """An fn that never yields: one worker yields every 64 items; of several, each yields at
    least every 2 * 64 (it skips a checkpoint only when others took items, so it had yielded)."""
    calls = 0

    async def busy(x: int) -> int:
        nonlocal calls
        calls += 1
        return x

    steps = StepLengths(lambda: calls)
    trio.lowlevel.add_instrument(steps)
    try:
        if how == "for_each":
            await trine.for_each(busy, range(2_000), limit=limit)
        else:
            await trine.map_all(busy, range(2_000), limit=limit, ordered=how == "map_all_ordered")
    finally:
        trio.lowlevel.remove_instrument(steps)
    assert calls == 2_000
    assert steps.longest <= longest
    if limit == 1:
        assert steps.longest == longest  # alone, a worker never skips its checkpoint


# -- properties ---------------------------------------------------------------------

durations_strategy = st.lists(st.integers(min_value=0, max_value=5), max_size=25)


@given(
    durations=durations_strategy,
    limit=st.integers(min_value=1, max_value=6),
    ordered=st.booleans(),
    how=st.sampled_from(["amap", "map_all", "for_each"]),
    asynchronous=st.booleans(),
    consumer_delay=st.integers(min_value=0, max_value=3),
)
def test_property_bounded_exactly_once_and_ordered(
    durations: list[int],
    limit: int,
    ordered: bool,
    how: str,
    asynchronous: bool,
    consumer_delay: int,
) -> None:
    """For any input, at most limit calls run, each item runs once, and the order is as asked."""
    probe = ConcurrencyProbe()
    calls: Counter[int] = Counter()
    consumed = 0
    most_outstanding = 0

    async def fn(item: int) -> int:
        nonlocal most_outstanding
        calls[item] += 1
        most_outstanding = max(most_outstanding, sum(calls.values()) - consumed)
        with probe.track(item):
            await trio.sleep(durations[item])
        return item

    async def async_items() -> AsyncIterator[int]:
        for i in range(len(durations)):
            await trio.lowlevel.checkpoint()
            yield i

    async def main() -> list[int] | None:
        nonlocal consumed
        items = async_items() if asynchronous else iter(range(len(durations)))
        if how == "amap":
            out = []
            async with trine.amap(fn, items, limit=limit, ordered=ordered) as results:
                async for result in results:
                    consumed += 1
                    out.append(result)
                    await trio.sleep(consumer_delay)
            return out
        if how == "map_all":
            return await trine.map_all(fn, items, limit=limit, ordered=ordered)
        await trine.for_each(fn, items, limit=limit)
        return None

    out = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert probe.peak <= limit
    assert probe.current == 0
    assert calls == Counter(range(len(durations)))
    if how == "amap":
        assert most_outstanding <= 2 * limit
    if out is not None:
        if ordered:
            assert out == list(range(len(durations)))
        else:
            assert sorted(out) == list(range(len(durations)))
            # Completion order: a result never comes before one that finished earlier.
            finish = probe.times("exit")
            assert [finish[i] for i in out] == sorted(finish[i] for i in out)


@given(
    durations=durations_strategy,
    limit=st.integers(min_value=1, max_value=6),
    ordered=st.booleans(),
    how=st.sampled_from(["amap", "map_all", "for_each"]),
    asynchronous=st.booleans(),
    cancel_at=st.floats(min_value=0, max_value=20, allow_nan=False),
    fail_item=st.none() | st.integers(min_value=0, max_value=24),
)
def test_property_cancellation_or_failure_at_any_time_leaves_nothing_running(
    durations: list[int],
    limit: int,
    ordered: bool,
    how: str,
    asynchronous: bool,
    cancel_at: float,
    fail_item: int | None,
) -> None:
    """Cancelled at any fake time or failing at any item, no call is left running or run twice."""
    probe = ConcurrencyProbe()
    calls: Counter[int] = Counter()

    async def fn(item: int) -> int:
        calls[item] += 1
        with probe.track(item):
            await trio.sleep(durations[item])
        if item == fail_item:
            raise ValueError(item)
        return item

    def sync_items() -> Iterator[int]:
        yield from range(len(durations))

    async def async_items() -> AsyncIterator[int]:
        for i in range(len(durations)):
            yield i

    failures: list[BaseException] = []

    async def main() -> None:
        items = async_items() if asynchronous else sync_items()
        with trio.move_on_after(cancel_at):
            try:
                if how == "amap":
                    async with trine.amap(fn, items, limit=limit, ordered=ordered) as results:
                        async for _ in results:
                            pass
                elif how == "map_all":
                    await trine.map_all(fn, items, limit=limit, ordered=ordered)
                else:
                    await trine.for_each(fn, items, limit=limit)
            except* ValueError as group:
                failures.extend(group.exceptions)
        assert probe.current == 0
        # The generator is closed (or ran to its end) whatever happened.
        if asynchronous:
            assert items.ag_frame is None  # type: ignore[union-attr]
        else:
            assert inspect.getgeneratorstate(items) == inspect.GEN_CLOSED  # type: ignore[arg-type]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    # At most one failure, the failing item's, and only if that item ran.
    assert [str(e) for e in failures] in ([], [str(fail_item)])
    assert not failures or calls[fail_item] == 1  # type: ignore[index]
    assert probe.current == 0
    assert set(calls.values()) <= {1}
    assert probe.peak <= limit


async def test_policy_wraps_each_items_call(autojump_clock: trio.testing.MockClock) -> None:
    """With policy=, each item's call goes through policy.call(fn, item): a per-item timeout."""
    from trine import Policy

    async def slow(seconds: float) -> float:
        await trio.sleep(seconds)
        return seconds

    policy = Policy(timeout=1.0, fallback=lambda exc: -1.0)
    with assert_takes(1.0):
        assert await trine.map_all(slow, [0.5, 2.0, 0.25], limit=3, policy=policy) == [
            0.5,
            -1.0,
            0.25,
        ]
    async with trine.amap(slow, [3.0, 0.5], limit=2, ordered=False, policy=policy) as results:
        assert [result async for result in results] == [0.5, -1.0]
    seen: list[float] = []

    async def record(seconds: float) -> None:
        seen.append(await slow(seconds))

    await trine.for_each(
        record, [0.1, 5.0], limit=1, policy=Policy(timeout=1.0, fallback=lambda exc: None)
    )
    assert seen == [0.1]


async def test_policy_must_have_an_async_call_method() -> None:
    """A policy without ``async call(fn, *args)`` is refused by name before anything runs."""

    async def double(x: int) -> int:
        return 2 * x

    with pytest.raises(
        TypeError, match=r"^policy must have an async call\(fn, \*args\) method, got 3$"
    ):
        await trine.map_all(double, [1], limit=1, policy=3)  # type: ignore[arg-type]
