"""Pipeline regressions: each test pins one bug, named after its issue and number."""

from __future__ import annotations

import threading
import warnings
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import pytest
import trio
import trio.testing

from pipeline_support import (
    Counted,
    PipelineWatch,
    build_random_pipeline,
    items_held_bound,
    pipeline_tasks,
    run_watched,
    sleep_then,
)
from trine import Pipeline, StageError
from trine.testing import assert_takes

# --------------------------------------------------------------------------- issue 10


async def test_issue10_bug1_a_failure_while_the_caller_is_cancelled_is_one_stage_error(
    autojump_clock: Any,
) -> None:
    """A thread stage failing after the caller's deadline raises one bare StageError."""
    release = threading.Event()

    def slow_then_fail(x: int) -> int:
        release.wait()
        raise ValueError(x)

    async def release_later() -> None:
        await trio.sleep(2)  # after the deadline below: the thread cannot be cancelled
        release.set()

    pipe = Pipeline.source([1]).map(slow_then_fail, executor="thread", name="t")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(release_later)
        with pytest.raises(StageError) as info, trio.move_on_after(1):
            await pipe.run()
    assert type(info.value) is StageError
    assert (info.value.stage, info.value.item) == ("t", 1)
    assert isinstance(info.value.__cause__, ValueError)


async def test_issue10_bug1_a_shielded_stage_failing_during_cancellation_is_one_stage_error(
    autojump_clock: Any,
) -> None:
    """The same with an async stage that finishes its work shielded, then fails."""

    async def shielded_then_fail(x: int) -> int:
        with trio.CancelScope(shield=True):
            await trio.sleep(2)
        raise ValueError(x)

    async def read_until_cancelled() -> None:
        with trio.move_on_after(1):
            async with Pipeline.source([1, 2]).map(shielded_then_fail, workers=2).open() as out:
                async for _ in out:
                    pass  # pragma: no cover  (nothing is delivered)

    with assert_takes(2.0), pytest.raises(StageError) as info:
        await read_until_cancelled()
    assert type(info.value) is StageError
    assert pipeline_tasks() == []


async def _read_outside(pipe: Pipeline[int], stop_at: float) -> list[str]:
    seen: list[str] = []

    async def read(out: Any) -> None:
        try:
            await out.receive()
        except trio.EndOfChannel:
            seen.append("end")
        except trio.ClosedResourceError:
            seen.append("closed")

    async with trio.open_nursery() as nursery:
        with trio.move_on_after(stop_at):
            async with pipe.open() as out:
                nursery.start_soon(read, out)
                await trio.sleep_forever()
    return seen


def test_issue10_bug2_a_reader_outside_a_cancelled_run_never_sees_a_normal_end() -> None:
    """Cancelled from outside, a run is cut short to a reader outside the block, every time.

    Trio runs a batch of ready tasks in a random order, so the old bug showed
    in about half of the runs; twenty runs all see ``ClosedResourceError``.
    """
    pipe = Pipeline.source(range(5)).map(lambda x: sleep_then(10, x))
    outcomes = [
        trio.run(_read_outside, pipe, 1.0, clock=trio.testing.MockClock(autojump_threshold=0))
        for _ in range(20)
    ]
    assert outcomes == [["closed"]] * 20


async def test_issue10_bug2_a_reader_outside_a_run_left_early_is_told_it_was_cut_short(
    autojump_clock: Any,
) -> None:
    """A task reading from outside ``open()`` gets ClosedResourceError, not a normal end."""
    seen: list[str] = []

    async def read(out: Any) -> None:
        try:
            await out.receive()
        except trio.EndOfChannel:
            seen.append("end")
        except trio.ClosedResourceError:
            seen.append("closed")

    pipe = Pipeline.source(range(5)).map(lambda x: sleep_then(10, x))
    async with trio.open_nursery() as nursery, pipe.open() as out:
        nursery.start_soon(read, out)
        await trio.sleep(1)  # then leave early, before any result
    assert seen == ["closed"]


@pytest.mark.parametrize("where", ["stage", "source", "flat_map", "hook"])
async def test_issue10_bug3_keyboard_interrupt_from_a_stage_arrives_bare(where: str) -> None:
    """KeyboardInterrupt raised in a stage (or the source, or a hook) is raised as itself."""

    def interrupt(*args: Any) -> Any:
        raise KeyboardInterrupt

    def numbers() -> Iterator[int]:
        yield 1
        interrupt()

    pipe: Pipeline[Any]
    if where == "stage":
        pipe = Pipeline.source(range(10)).map(lambda x: sleep_then(0, x)).map(interrupt)
    elif where == "source":
        pipe = Pipeline.source(numbers()).map(lambda x: sleep_then(1, x), workers=2)
    elif where == "flat_map":
        pipe = Pipeline.source(range(3)).flat_map(lambda x: numbers(), workers=2)
    else:
        pipe = Pipeline.source(range(3)).map(lambda x: 1 // 0, on_error=interrupt)
    with pytest.raises(KeyboardInterrupt) as info:
        await pipe.run()
    assert type(info.value) is KeyboardInterrupt
    assert pipeline_tasks() == []


async def test_issue10_bug4_a_channel_closed_under_the_source_is_a_failure() -> None:
    """A ReceiveChannel source closed mid-way (ClosedResourceError) fails the run."""
    send, receive = trio.open_memory_channel[int](0)

    async def produce_then_close() -> None:
        await send.send(1)
        await send.send(2)
        receive.close()  # under the pipeline, which is waiting for the next item

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce_then_close)
        with pytest.raises(StageError, match=r"^the source failed: ClosedResourceError") as info:
            await Pipeline.source(receive).run()
    assert info.value.stage == "source"
    assert isinstance(info.value.__cause__, trio.ClosedResourceError)


@pytest.mark.parametrize("kind", ["map", "filter", "tap", "flat_map"])
async def test_issue10_bug5_a_key_with_one_worker_is_still_called(kind: str) -> None:
    """With ``workers=1`` the key function is called, and its failure is the item's failure."""
    keys: list[int] = []

    def key(x: int) -> int:
        keys.append(x)
        return 1 // x

    stage = getattr(Pipeline.source([1, 0, 2]), kind)
    fn = (lambda x: [x]) if kind == "flat_map" else (lambda x: x)
    pipe = stage(fn, key=key, on_error="skip", name="k")
    assert await pipe.collect() == [1, 2]
    assert keys == [1, 0, 2]
    stats = pipe.statistics().stage("k")
    assert (stats.items_in, stats.failed, stats.skipped) == (3, 1, 1)
    with pytest.raises(
        StageError,
        match=r"^the key function of stage 'k' failed on item 0: ZeroDivisionError: ",
    ):
        await Pipeline.source([1, 0]).map(lambda x: x, key=key, name="k").run()
    with pytest.raises(StageError, match=r"^the key function of stage 'u' failed on item \[1\]: "):
        await Pipeline.source([[1]]).map(lambda x: x, key=lambda x: x, name="u").run()


class IteratorAwaitable:
    """An awaitable whose ``__await__`` returns a plain iterator (not a generator)."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def __await__(self) -> Iterator[Any]:
        return iter(())  # an empty iterator: `await` finishes at once with None


class GeneratorAwaitable:
    """An awaitable whose ``__await__`` is a generator that checkpoints, then returns."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, Any, int]:
        yield from trio.lowlevel.checkpoint().__await__()  # noqa: ASYNC105
        return self.value


async def test_issue10_bug6_any_awaitable_is_awaited_as_await_does() -> None:
    """A result whose ``__await__`` returns a plain iterator is awaited, as ``await`` would."""
    assert await IteratorAwaitable(0) is None  # what plain Trio code gets
    results = await Pipeline.source([1, 2]).map(lambda x: IteratorAwaitable(x)).collect()
    assert results == [None, None]
    assert await Pipeline.source([1, 2]).filter(lambda x: IteratorAwaitable(x)).collect() == []
    assert await Pipeline.source([3, 4]).map(GeneratorAwaitable).collect() == [3, 4]


async def test_issue10_bug6_an_await_returning_no_iterator_is_the_items_failure() -> None:
    """``__await__`` returning a non-iterator fails as ``await`` does: the item's TypeError."""

    class Broken:
        def __await__(self) -> Any:
            return 42

    with pytest.raises(StageError, match=r"TypeError: __await__\(\) returned non-iterator"):
        await Pipeline.source([1]).map(lambda x: Broken()).run()


def test_issue10_bug7_an_async_function_that_is_no_generator_is_refused_as_a_source() -> None:
    """``Pipeline.source(async def without yield)`` is a TypeError at once, saying what to pass."""

    async def numbers() -> list[int]:
        return [1, 2]  # pragma: no cover  (never called)

    class AsyncCall:
        async def __call__(self) -> list[int]:
            return [1]  # pragma: no cover  (never called)

    for source in (numbers, AsyncCall()):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and no "coroutine was never awaited"
            with pytest.raises(
                TypeError,
                match=r"^items must be an iterable, an async iterable, a trio ReceiveChannel or "
                r"an async generator function, got the async function .*, which returns one "
                r"value: give it a yield to make it an async generator function$",
            ):
                Pipeline.source(source)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError,
        match=r"^items must be .*, got the generator function <function _numbers at .*>: "
        r"pass a list, or the generator it returns to read it once$",
    ):
        Pipeline.source(_numbers)  # type: ignore[arg-type]


def _numbers() -> Iterator[int]:
    yield 1  # pragma: no cover  (never called)


async def test_issue10_bug7_a_plain_function_returning_an_async_iterator_is_a_source() -> None:
    """A plain function (a lambda) that returns an async iterator is still a source, per run."""

    async def numbers(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    pipe = Pipeline.source(lambda: numbers(3))
    assert await pipe.collect() == [0, 1, 2]
    assert await pipe.collect() == [0, 1, 2]


@pytest.mark.parametrize("workers", [10**5, 10**6])
@pytest.mark.parametrize("variant", ["map", "ordered", "keyed", "flat_map"])
async def test_issue10_bug8_huge_workers_start_only_as_items_need_them(
    workers: int, variant: str, autojump_clock: Any
) -> None:
    """``workers=10**6`` starts a worker per item in flight, not a million, and cancels promptly."""
    options: dict[str, Any] = {"workers": workers, "name": "s"}
    if variant == "ordered":
        options["ordered"] = True
    if variant == "keyed":
        options["key"] = lambda x: x
    if variant == "flat_map":
        pipe = Pipeline.source(range(3)).flat_map(lambda x: sleep_then(1, [x]), **options)
    else:
        pipe = Pipeline.source(range(3)).map(lambda x: sleep_then(1, x), **options)
    with assert_takes(1.0):
        assert sorted(await pipe.collect()) == [0, 1, 2]
    assert pipe.statistics().stage("s").workers_started == 3
    # Quick functions need one worker, however many are allowed.
    quick = Pipeline.source(range(1000)).map(lambda x: x, workers=workers, name="q")
    assert len(await quick.collect()) == 1000
    assert quick.statistics().stage("q").workers_started == 1
    # An endless source needs a worker per item: cancelling while they start stops the starts.
    endless = Pipeline.source(iter(int, 1)).map(
        lambda x: sleep_then(1, x), workers=workers, name="e"
    )
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def cancel_soon() -> None:
                for _ in range(50):  # fifty scheduler passes: workers are starting
                    await trio.lowlevel.checkpoint()
                scope.cancel()

            nursery.start_soon(cancel_soon)
            await endless.run()
    started = endless.statistics().stage("e").workers_started
    assert 10 < started < 200
    assert pipeline_tasks() == []


async def test_issue10_bug9_the_blocks_own_exception_comes_out_as_itself() -> None:
    """An exception raised by the ``open()`` block is raised bare, and a group stays that group."""

    async def body(error: BaseException) -> None:
        pipe = Pipeline.source(range(100)).map(lambda x: sleep_then(1, x), workers=3)
        async with pipe.open():
            await trio.testing.wait_all_tasks_blocked()
            raise error

    error = ValueError("mine")
    with pytest.raises(ValueError, match=r"^mine$") as info:
        await body(error)
    assert info.value is error
    group = ExceptionGroup("mine", [KeyError(1), OSError(2)])
    with pytest.raises(ExceptionGroup) as group_info:
        await body(group)
    assert group_info.value is group


# --------------------------------------------------------------------------- issue 5


async def test_issue5_a_blocking_stage_keeps_its_buffer_bounded(autojump_clock: Any) -> None:
    """Regression: behind a fast stage, a blocking one never lets more than ``buffer`` wait.

    An earlier engine released a chunk's items twice when the function blocked,
    so a ``buffer=4`` stage behind a fast one came to hold dozens of items.
    """
    numbers = Counted(range(40))
    pipe = (
        Pipeline.source(numbers)
        .map(lambda x: x, buffer=8)
        .map(lambda x: sleep_then(1, x), buffer=4, name="slow")
    )
    most_held = 0
    received = 0
    async with pipe.open(buffer=1) as out:
        async for _ in out:
            received += 1
            await trio.testing.wait_all_tasks_blocked()
            assert pipe.statistics().stage("slow").buffer_used == max(0, min(4, 39 - received))
            most_held = max(most_held, numbers.pulled - received)
    # Held at most: 4 waiting and 1 in the slow worker, 8 waiting and 1 in the
    # fast worker (holding a result for the full buffer), 1 in the source.
    assert most_held == 15
    assert received == 40


async def test_issue5_flat_map_hands_items_on_as_they_come(autojump_clock: Any) -> None:
    """Regression: a flat_map of a long iterable holds one produced item, not all of them."""
    produced = 0

    def many(x: int) -> Iterator[int]:
        nonlocal produced
        for i in range(1000):
            produced += 1
            yield i

    async with Pipeline.source([0]).flat_map(many).open(buffer=1) as out:
        assert await out.receive() == 0
        await trio.testing.wait_all_tasks_blocked()
        # One received, one waiting in the output buffer, one in the worker's hand.
        assert produced == 3


async def test_findings_a_source_function_returning_no_async_iterator_is_a_type_error() -> None:
    """A plain source function returning 3 is a programming error: a bare TypeError naming items."""

    def three() -> int:
        return 3

    with pytest.raises(TypeError, match=r"^items must be .* but the function returned 3, an int$"):
        await Pipeline.source(three).collect()  # type: ignore[arg-type]


def test_an_ordered_worker_waiting_for_the_window_wakes_a_reader_that_holds_room() -> None:
    """A worker parking on a full window first summons a parked sibling that holds a
    reservation, so no reader waits beside an item it could take (buffer invariant 3)."""
    items = [11, 36, 31, 30, 0, 49, 14, 39, 3, 28, 10, 32, 13, 25, 29, 7, 20, 16, 8, 40, 48, 4, 5]
    items += [37, 23]
    stages: list[dict[str, Any]] = [
        {
            "kind": "filter",
            "workers": 4,
            "buffer": 2,
            "ordered": True,
            "fail_modulus": 5,
            "delay_modulus": 3,
        },
        {
            "kind": "filter",
            "workers": 3,
            "buffer": 3,
            "ordered": False,
            "fail_modulus": 2,
            "delay_modulus": 3,
        },
        {
            "kind": "batch",
            "workers": 2,
            "buffer": 4,
            "ordered": True,
            "fail_modulus": 3,
            "delay_modulus": 1,
        },
    ]
    # Trio runs a batch of ready tasks in a random order: the old bug showed in most
    # runs of this pipeline, not all, so it runs several times.
    for _ in range(50):
        watch = PipelineWatch(bound=items_held_bound(stages, output_buffer=64))
        pipe = watch.pipe = build_random_pipeline(watch.count(items), stages, dropped=watch.finish)

        async def main(pipe: Pipeline[int] = pipe, watch: PipelineWatch = watch) -> None:
            async with pipe.open() as out:
                async for _ in out:
                    watch.finish()

        run_watched(main, watch)
