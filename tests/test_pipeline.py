"""Pipeline: stages, shutdown, errors, cancellation, statistics, exact fake times."""

from __future__ import annotations

import math
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import trine
from pipeline_support import Counted, pipeline_tasks, sleep_then
from trine import Pipeline, StageError, TrineError, merge
from trine.testing import ConcurrencyProbe, assert_takes


async def test_map_filter_flat_map_tap_enumerate() -> None:
    """Each stage kind transforms items as documented, sync or async functions alike."""
    seen: list[int] = []

    async def double(x: int) -> int:
        return 2 * x

    async def pairs(x: int) -> AsyncIterator[int]:
        yield x
        yield -x

    result = await (
        Pipeline.source(range(5))
        .map(double)
        .filter(lambda x: x != 4)
        .tap(seen.append)
        .flat_map(pairs)
        .flat_map(lambda x: [x] if x > 0 else [])
        .enumerate(start=1)
        .collect()
    )
    assert result == [(1, 2), (2, 6), (3, 8)]
    assert seen == [0, 2, 6, 8]


async def test_sources_of_every_kind() -> None:
    """Lists, iterators, async iterables, channels and async generator functions are sources."""

    async def numbers() -> AsyncIterator[int]:
        for i in range(3):
            await trio.lowlevel.checkpoint()
            yield i

    send, receive = trio.open_memory_channel[int](10)
    async with send:
        for i in range(3):
            await send.send(i)
    assert await Pipeline.source([0, 1, 2]).collect() == [0, 1, 2]
    assert await Pipeline.source(iter(range(3))).collect() == [0, 1, 2]
    assert await Pipeline.source(numbers).collect() == [0, 1, 2]
    assert await Pipeline.source(numbers()).collect() == [0, 1, 2]
    assert await Pipeline.source(receive).collect() == [0, 1, 2]


async def test_open_yields_items_and_receive_ends_with_end_of_channel() -> None:
    """``open()`` gives an async iterator whose ``receive()`` raises EndOfChannel at the end."""
    async with Pipeline.source([1, 2]).map(lambda x: x * 10).open() as out:
        assert await out.receive() == 10
        assert [x async for x in out] == [20]
        with pytest.raises(trio.EndOfChannel):
            await out.receive()


async def test_run_discards_results() -> None:
    """``run()`` drains the pipeline for its side effects."""
    seen: list[int] = []
    assert await Pipeline.source(range(3)).tap(seen.append).run() is None
    assert seen == [0, 1, 2]


async def test_description_is_reusable_and_immutable() -> None:
    """A pipeline runs again on a re-iterable source, and builders never change their receiver."""
    base = Pipeline.source([1, 2, 3])
    doubled = base.map(lambda x: 2 * x)
    assert await doubled.collect() == [2, 4, 6]
    assert await doubled.collect() == [2, 4, 6]
    assert await base.collect() == [1, 2, 3]


async def test_one_shot_source_refuses_a_second_run() -> None:
    """A consumed iterator cannot be run twice: a clear error says what to use instead."""
    pipe = Pipeline.source(iter([1, 2]))
    assert await pipe.collect() == [1, 2]
    with pytest.raises(
        RuntimeError,
        match=r"^this pipeline's source is a one-shot iterator that an earlier run already "
        r"consumed; to run a pipeline again, build it on a list or an async generator function$",
    ):
        await pipe.collect()


# --------------------------------------------------------------------------- exact times


async def test_three_stages_finish_at_the_computed_time(autojump_clock: Any) -> None:
    """Stages overlap: 6 items through 1 s/2 workers, 2 s/4 workers, 0.5 s/1 worker."""
    # Stage 1 emits two items each second (t=1,1,2,2,3,3). Stage 2 (4 workers)
    # finishes each 2 s after arrival: t=3,3,4,4,5,5. Stage 3 is serial at 0.5 s
    # per item: done at 3.5, 4.0, 4.5, 5.0, 5.5, 6.0.
    pipe = (
        Pipeline.source(range(6))
        .map(lambda x: sleep_then(1, x), workers=2)
        .map(lambda x: sleep_then(2, x), workers=4)
        .map(lambda x: sleep_then(0.5, x))
    )
    with assert_takes(6.0):
        assert sorted(await pipe.collect()) == list(range(6))


async def test_workers_bound_the_concurrency(autojump_clock: Any) -> None:
    """A stage never runs more than ``workers`` calls at once, and keeps them all busy."""
    probe = ConcurrencyProbe()

    async def work(x: int) -> int:
        with probe.track(x):
            await trio.sleep(1)
        return x

    with assert_takes(3.0):
        await Pipeline.source(range(9)).map(work, workers=3).run()
    assert probe.peak == 3


async def test_batch_by_size_and_by_timeout(autojump_clock: Any) -> None:
    """A batch leaves when full, or ``timeout`` after its first item, or at the end."""
    arrivals: list[tuple[float, list[int]]] = []

    async def source() -> AsyncIterator[int]:
        for i in range(3):  # three at once: a full batch at t=0
            yield i
        await trio.sleep(1)
        yield 3  # alone: leaves at t=1.5 by timeout
        await trio.sleep(2)
        yield 4  # t=3; the input ends at t=3.2
        await trio.sleep(0.2)

    pipe = Pipeline.source(source).batch(3, timeout=0.5)
    async with pipe.open() as out:
        async for batch in out:
            arrivals.append((trio.current_time(), batch))
    assert arrivals == [(0.0, [0, 1, 2]), (1.5, [3]), (pytest.approx(3.2), [4])]


async def test_rate_limit_spaces_items(autojump_clock: Any) -> None:
    """``rate_limit(2)`` lets items through every 0.5 s and drops none."""
    times: list[float] = []
    async with Pipeline.source(range(4)).rate_limit(2).open() as out:
        async for _ in out:
            times.append(trio.current_time())
    assert times == [0.0, 0.5, 1.0, 1.5]


# --------------------------------------------------------------------------- errors


async def test_stage_error_carries_stage_and_item_and_chains_the_cause() -> None:
    """A failing stage raises StageError naming the stage and the item, from the cause."""

    def explode(x: int) -> int:
        if x == 3:
            raise KeyError("boom")
        return x

    with pytest.raises(StageError) as info:
        await Pipeline.source(range(10)).map(explode, name="explode").collect()
    error = info.value
    assert isinstance(error, TrineError)
    assert (error.stage, error.item) == ("explode", 3)
    assert isinstance(error.__cause__, KeyError)
    assert str(error) == "stage 'explode' failed on item 3: KeyError: 'boom'"


async def test_failure_cancels_the_whole_pipeline(autojump_clock: Any) -> None:
    """A raise in one stage cancels the slow work elsewhere at once."""

    async def fail_at_one(x: int) -> int:
        await trio.sleep(1)
        raise ValueError(x)

    pipe = Pipeline.source(range(10)).map(fail_at_one).map(lambda x: sleep_then(100, x))
    with assert_takes(1.0), pytest.raises(StageError):
        await pipe.run()
    assert pipeline_tasks() == []


async def test_skip_counts_and_drops_failures() -> None:
    """``on_error="skip"`` drops the failing items and counts them in statistics."""
    pipe = Pipeline.source(range(10)).map(lambda x: 10 // (x % 3), on_error="skip", name="div")
    assert await pipe.collect() == [10 // (x % 3) for x in range(10) if x % 3]
    stats = pipe.statistics().stage("div")
    assert (stats.items_in, stats.items_out, stats.failed, stats.skipped) == (10, 6, 4, 4)


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_dead_letter_hook_receives_item_and_exception(asynchronous: bool) -> None:
    """An ``on_error`` function (plain or async) gets each failing item and its exception."""
    dead: list[tuple[int, str]] = []

    def record(item: int, exc: Exception) -> None:
        dead.append((item, type(exc).__name__))

    async def record_async(item: int, exc: Exception) -> None:
        await trio.lowlevel.checkpoint()
        record(item, exc)

    pipe = Pipeline.source(range(6)).map(
        lambda x: 1 // (x % 2), on_error=record_async if asynchronous else record, name="m"
    )
    assert await pipe.collect() == [1, 1, 1]
    assert dead == [(0, "ZeroDivisionError"), (2, "ZeroDivisionError"), (4, "ZeroDivisionError")]
    assert pipe.statistics().stage("m").dead_lettered == 3


async def test_failing_hook_fails_the_pipeline() -> None:
    """If the dead-letter hook itself raises, the pipeline fails with its error as the cause."""

    def bad_hook(item: int, exc: Exception) -> None:
        raise RuntimeError("hook")

    with pytest.raises(StageError, match=r"^the on_error hook of stage 'm' failed") as info:
        await Pipeline.source([1]).map(lambda x: 1 // 0, on_error=bad_hook, name="m").run()
    assert isinstance(info.value.__cause__, RuntimeError)


async def test_failing_source_is_a_stage_error() -> None:
    """An exception from the source is a StageError with stage ``"source"``."""

    def broken() -> Any:
        yield 1
        raise OSError("disk")

    with pytest.raises(StageError) as info:
        await Pipeline.source(broken()).run()
    assert (info.value.stage, info.value.item) == ("source", None)
    assert isinstance(info.value.__cause__, OSError)


async def test_block_exception_passes_through_bare() -> None:
    """An exception raised in the ``open()`` block reaches the caller unwrapped."""

    async def body() -> None:
        async with Pipeline.source(range(10)).open() as out:
            async for _ in out:
                1 // 0  # noqa: B018

    with pytest.raises(ZeroDivisionError):
        await body()


# --------------------------------------------------------------------------- cancellation


async def test_leaving_open_early_cancels_the_rest(autojump_clock: Any) -> None:
    """Breaking out of ``open()`` cancels every stage at once; no task is left."""
    pipe = Pipeline.source(range(1000)).map(lambda x: sleep_then(1, x), workers=4)
    with assert_takes(1.0):
        async with pipe.open() as out:
            async for _ in out:
                break
    assert pipeline_tasks() == []
    assert pipe.statistics().running is False


async def test_outside_cancellation_is_prompt_and_leaves_no_tasks(autojump_clock: Any) -> None:
    """A cancel scope around the pipeline cancels it at its deadline, leaving nothing running."""
    pipe = (
        Pipeline.source(range(100))
        .map(lambda x: sleep_then(1, x), workers=2)
        .map(lambda x: sleep_then(3, x))
    )
    with assert_takes(2.5), trio.move_on_after(2.5):
        await pipe.run()
    assert pipeline_tasks() == []


async def test_task_tree_is_pipeline_stage_workers(autojump_clock: Any) -> None:
    """While running, each stage task owns a nursery with its workers."""
    pipe = Pipeline.source(range(10)).map(lambda x: sleep_then(1, x), workers=2, name="slow")
    async with pipe.open() as out:
        await out.receive()
        await trio.testing.wait_all_tasks_blocked()
        stage_task = next(
            task
            for task in trio.lowlevel.current_task().child_nurseries[-1].child_tasks
            if task.name == "trine.Pipeline stage 'slow'"
        )
        (nursery,) = stage_task.child_nurseries
        assert sorted(task.name for task in nursery.child_tasks) == [
            "slow worker 0",
            "slow worker 1",
        ]


# --------------------------------------------------------------------------- statistics


async def test_statistics_while_running(autojump_clock: Any) -> None:
    """``statistics()`` reports busy workers, buffer use and latency during a run."""
    pipe = Pipeline.source(range(10)).map(lambda x: sleep_then(2, x), workers=3, name="s")
    before = pipe.statistics().stage("s")
    assert (before.items_in, before.busy_workers, before.latency.count) == (0, 0, 0)
    async with pipe.open() as out:
        await trio.sleep(1)
        stats = pipe.statistics()
        assert stats.running
        stage = stats.stage("s")
        # Three items in the workers, the other seven wait in a buffer of 64 (the default).
        assert (stage.busy_workers, stage.items_in, stage.buffer_used, stage.buffer_size) == (
            3,
            3,
            7,
            64,
        )
        assert sorted([x async for x in out]) == list(range(10))
    stage = pipe.statistics().stage("s")
    assert (stage.items_out, stage.busy_workers) == (10, 0)
    assert stage.latency.p50 == pytest.approx(2.0, rel=0.01)
    assert out.statistics() == pipe.statistics()


# --------------------------------------------------------------------------- concurrent extras


async def test_ordered_stage_emits_in_input_order(autojump_clock: Any) -> None:
    """``ordered=True`` emits results in input order even when later items finish first."""

    async def work(x: int) -> int:
        await trio.sleep(5 - x)
        return x

    pipe = Pipeline.source(range(5)).map(work, workers=5, ordered=True)
    with assert_takes(5.0):
        assert await pipe.collect() == [0, 1, 2, 3, 4]


async def test_ordered_window_bounds_work_ahead(autojump_clock: Any) -> None:
    """A slow item stalls an ordered stage after ``workers + buffer`` items."""
    started: list[int] = []

    async def work(x: int) -> int:
        started.append(x)
        await trio.sleep(10 if x == 0 else 1)
        return x

    pipe = Pipeline.source(range(20)).map(work, workers=2, buffer=2, ordered=True)
    async with pipe.open() as out:
        await trio.sleep(5)
        assert max(started) == 3  # items 0..3 taken; item 4 waits for 0 to leave
        assert [x async for x in out] == list(range(20))


async def test_key_sends_equal_keys_to_one_worker(autojump_clock: Any) -> None:
    """With ``key=``, items of one key never run at the same time; other keys do."""
    probes = {key: ConcurrencyProbe() for key in "ab"}

    async def work(item: tuple[str, int]) -> tuple[str, int]:
        with probes[item[0]].track(item):
            await trio.sleep(1)
        return item

    items = [("a", i) for i in range(3)] + [("b", i) for i in range(3)]
    pipe = Pipeline.source(items).map(work, workers=4, key=lambda item: item[0])
    output = await pipe.collect()
    assert [i for k, i in output if k == "a"] == [0, 1, 2]
    assert probes["a"].peak == 1
    assert probes["b"].peak == 1


async def test_broadcast_sends_every_item_to_every_branch() -> None:
    """Each branch sees every item; their outputs are merged."""
    result = await (
        Pipeline.source(range(4))
        .broadcast(lambda p: p.map(lambda x: ("a", x)), lambda p: p.map(lambda x: ("b", x)))
        .collect()
    )
    assert sorted(result) == [(k, x) for k in "ab" for x in range(4)]


async def test_broadcast_backpressure_is_set_by_the_slowest_branch(autojump_clock: Any) -> None:
    """A fast branch waits for a slow one once the slow branch's buffer is full."""
    fast_times: list[float] = []

    def fast(p: Pipeline[int]) -> Pipeline[None]:
        return p.map(lambda x: fast_times.append(trio.current_time()))

    def slow(p: Pipeline[int]) -> Pipeline[int]:
        return p.map(lambda x: sleep_then(1, x), buffer=1)

    pipe = Pipeline.source(range(5)).broadcast(fast, slow, name="fan")
    with assert_takes(5.0):
        await pipe.run()
    # Items 0, 1 and 2 reach the fast branch at once: 0 is in the slow worker,
    # 1 in its buffer, and the distributor holds 2 until the slow branch has
    # room (at t=1); each further item passes when the slow branch takes one.
    assert fast_times == [0.0, 0.0, 0.0, 1.0, 2.0]
    assert {stage.name for stage in pipe.statistics().stages} == {
        "fan",
        "fan[0].1:map",
        "fan[1].1:map",
    }


async def test_merge_of_unequal_sources(autojump_clock: Any) -> None:
    """``merge`` interleaves pipelines as items arrive and ends when the longest ends."""
    slow = Pipeline.source(range(3)).map(lambda x: sleep_then(1, ("slow", x)))
    fast = Pipeline.source(range(5)).map(lambda x: ("fast", x))
    merged = merge(slow, fast).map(lambda item: item[0])
    with assert_takes(3.0):
        result = await merged.collect()
    assert result == ["fast"] * 5 + ["slow"] * 3
    # Each input's stages are named after its place, so no two names clash.
    assert [stage.name for stage in merged.statistics().stages] == [
        "1:map",
        "merge[0].1:map",
        "merge[1].1:map",
    ]


def test_merging_one_one_shot_source_twice_is_refused() -> None:
    """Two inputs reading one iterator are refused, and a refused run consumes nothing."""
    shared = Pipeline.source(iter([1, 2]))
    fresh = Pipeline.source(iter([3]))
    with pytest.raises(
        RuntimeError,
        match=r"^this pipeline reads one one-shot iterator twice \(merging pipelines built on "
        r"the same source\); give each input a source of its own$",
    ):
        trio.run(merge(fresh, shared, shared.map(abs)).collect)
    assert trio.run(fresh.collect) == [3]


async def test_policy_wraps_each_call() -> None:
    """Every item's call goes through ``policy.call(fn, item)``."""
    calls: list[int] = []

    class Recording:
        async def call(self, fn: Any, *args: Any) -> Any:
            calls.append(args[0])
            return await fn(*args)

    async def double(x: int) -> int:
        return 2 * x

    assert await Pipeline.source([1, 2]).map(double, policy=Recording()).collect() == [2, 4]
    assert calls == [1, 2]


async def test_thread_executor_runs_sync_functions_in_threads() -> None:
    """``executor="thread"`` runs a plain function off the Trio thread."""
    import threading

    main_thread = threading.get_ident()
    result = await (
        Pipeline.source(range(4))
        .map(lambda x: (x, threading.get_ident() != main_thread), workers=2, executor="thread")
        .collect()
    )
    assert sorted(result) == [(x, True) for x in range(4)]


async def test_process_executor_runs_in_worker_processes() -> None:
    """``executor="process"`` runs a picklable function through trio-parallel."""
    pytest.importorskip("trio_parallel")
    assert sorted(await Pipeline.source([-1, -2]).map(abs, executor="process").collect()) == [1, 2]


def test_process_executor_without_trio_parallel_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without trio-parallel, ``executor="process"`` is refused when building, with the fix."""
    import sys

    monkeypatch.setitem(sys.modules, "trio_parallel", None)
    with pytest.raises(
        ImportError,
        match=r'^executor="process" needs trio-parallel: pip install "trine\[process\]"$',
    ):
        Pipeline.source([1]).map(abs, executor="process")


async def test_waiting_for_a_result_is_a_checkpoint() -> None:
    """Receiving when no result waits yet is a full Trio checkpoint."""
    async with Pipeline.source([1, 2]).open() as out:
        with trio.testing.assert_checkpoints():
            assert await out.receive() == 1


async def test_every_result_checks_for_cancellation() -> None:
    """A cancelled caller gets Cancelled at its next result, even when results are waiting."""
    async with Pipeline.source(range(10)).open(buffer=10) as out:
        assert await out.receive() == 0
        await trio.testing.wait_all_tasks_blocked()
        assert out.statistics().output_buffer_used == 9
        with trio.CancelScope() as scope:
            scope.cancel()
            await out.receive()
            pytest.fail("receive() did not check for cancellation")  # pragma: no cover
        assert scope.cancelled_caught
        assert await out.receive() == 1  # nothing was taken by the cancelled call


# --------------------------------------------------------------------------- validation


def fn(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda p: p.map(fn, workers=0), ValueError, r"^workers must be >= 1, got 0$"),
        (lambda p: p.map(fn, workers=1.5), TypeError, r"^workers must be an int, got 1.5$"),
        (lambda p: p.map(fn, buffer=-1), ValueError, r"^buffer must be >= 0, got -1$"),
        (
            lambda p: p.map(fn, on_error="ignore"),
            ValueError,
            r"^on_error must be one of 'raise', 'skip', got 'ignore'$",
        ),
        (lambda p: p.map(42), TypeError, r"^fn must be an async function, got 42$"),
        (lambda p: p.map(fn, ordered=1), TypeError, r"^ordered must be a bool, got 1$"),
        (lambda p: p.map(fn, name=3), TypeError, r"^name must be a str, got 3$"),
        (
            lambda p: p.map(fn, executor="gpu"),
            ValueError,
            r"^executor must be one of None, 'thread', 'process', got 'gpu'$",
        ),
        (
            lambda p: p.map(fn, policy=object()),
            TypeError,
            r"^policy must have an async call\(fn, \*args\) method, got <object object at .*>$",
        ),
        (
            lambda p: p.flat_map(fn, workers=2, key=fn, ordered=True),
            ValueError,
            r"^key and ordered cannot be combined in flat_map: key already keeps per-key order$",
        ),
        (lambda p: p.broadcast(), ValueError, r"^broadcast needs at least one branch$"),
        (
            lambda p: p.broadcast(lambda q: 42),
            TypeError,
            r"^each branch must return stages added to the pipeline it is given, got 42$",
        ),
        (lambda p: merge(), ValueError, r"^merge needs at least one pipeline$"),
        (lambda p: merge(p, 3), TypeError, r"^pipelines must be Pipelines, got 3$"),
        (
            lambda p: p.map(sleep_then, executor="thread"),
            TypeError,
            r"^executor='thread' runs plain functions, got the async <function sleep_then at .*>$",
        ),
        (lambda p: p.batch(0), ValueError, r"^size must be >= 1, got 0$"),
        (lambda p: p.batch(2, timeout=0), ValueError, r"^timeout must be > 0, got 0$"),
        (lambda p: p.rate_limit(-1), ValueError, r"^rate must be > 0, got -1$"),
        (lambda p: p.rate_limit(1, per=math.nan), ValueError, r"^per must not be NaN, got nan$"),
        (lambda p: p.rate_limit(1, buffer=-1), ValueError, r"^buffer must be >= 0, got -1$"),
        (lambda p: p.batch(2, buffer=-1), ValueError, r"^buffer must be >= 0, got -1$"),
        (
            lambda p: p.broadcast(lambda q: q, buffer=-1),
            ValueError,
            r"^buffer must be >= 0, got -1$",
        ),
        (lambda p: p.enumerate(buffer="1"), TypeError, r"^buffer must be an int, got '1'$"),
        (lambda p: p.tap(print, workers=0), ValueError, r"^workers must be >= 1, got 0$"),
        (
            lambda p: p.map(fn, workers=2, key=sleep_then),
            TypeError,
            r"^key must be a plain function \(its result is hashed to choose a worker\), "
            r"got <function sleep_then at .*>$",
        ),
        (lambda p: p.batch(2, name=1), TypeError, r"^name must be a str, got 1$"),
        (lambda p: p.enumerate(start="0"), TypeError, r"^start must be an int, got '0'$"),
    ],
)
def test_arguments_are_validated_when_building(build: Any, error: Any, message: str) -> None:
    """Every bad argument is refused at build time with a message naming it."""
    with pytest.raises(error, match=message):
        build(Pipeline.source([1]))


def test_coroutine_objects_are_refused() -> None:
    """Passing ``f(x)`` instead of ``f`` is a TypeError that says what to do."""

    async def work(x: int) -> int:
        return x

    with pytest.raises(TypeError, match=r"pass the function and its arguments"):
        Pipeline.source([1]).map(work(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"pass the function and its arguments"):
        Pipeline.source(work(1))  # type: ignore[arg-type]


def test_source_of_the_wrong_type_is_refused() -> None:
    """A non-iterable source is refused, naming what is accepted."""
    with pytest.raises(
        TypeError,
        match=r"^items must be an iterable, an async iterable, a trio ReceiveChannel or an "
        r"async generator function, got 42$",
    ):
        Pipeline.source(42)  # type: ignore[arg-type]


async def test_async_generator_source_is_closed_when_the_run_ends_early() -> None:
    """An async generator source runs its ``finally`` when the pipeline is left early."""
    closed: list[bool] = []

    async def numbers() -> AsyncIterator[int]:
        try:
            for i in range(1000):
                await trio.lowlevel.checkpoint()
                yield i
        finally:
            closed.append(True)

    async with Pipeline.source(numbers).open() as out:
        await out.receive()
    assert closed == [True]


async def test_rate_limit_burst_goes_through_the_rate_limiter(autojump_clock: Any) -> None:
    """``rate_limit(1, burst=3)`` paces with trine.RateLimiter: 3 at once, then one per second."""
    times: list[float] = []
    async with Pipeline.source(range(5)).rate_limit(1, burst=3).open() as out:
        async for _ in out:
            times.append(trio.current_time())
    assert times == [0.0, 0.0, 0.0, 1.0, 2.0]


async def test_channel_source_is_closed_when_the_run_stops_reading() -> None:
    """Leaving a run early closes its channel source, so a producer learns it at once."""
    send, receive = trio.open_memory_channel[int](0)
    outcome: list[str] = []

    async def produce() -> None:
        try:
            for i in range(100):
                await send.send(i)
        except trio.BrokenResourceError:
            outcome.append("broken")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        async with Pipeline.source(receive).open() as out:
            assert await out.receive() == 0
    assert outcome == ["broken"]


async def test_generator_source_is_closed_when_the_run_ends_early() -> None:
    """A generator source runs its ``finally`` when the pipeline is left early."""
    closed: list[bool] = []

    def numbers() -> Iterator[int]:
        try:
            yield from range(1000)
        finally:
            closed.append(True)

    async with Pipeline.source(numbers()).open() as out:
        await out.receive()
    assert closed == [True]


@pytest.mark.parametrize("on_error", ["skip", "raise"])
async def test_key_function_failure_is_the_items_failure(on_error: Any) -> None:
    """A failing ``key`` goes through ``on_error`` with the item, like the function's failure."""
    pipe = Pipeline.source([1, 0, 2]).map(
        lambda x: x, workers=2, key=lambda x: 1 // x, on_error=on_error, name="k"
    )
    if on_error == "skip":
        assert sorted(await pipe.collect()) == [1, 2]
        stats = pipe.statistics().stage("k")
        assert (stats.items_in, stats.failed, stats.skipped) == (3, 1, 1)
        return
    with pytest.raises(StageError) as info:
        await pipe.run()
    assert (info.value.stage, info.value.item) == ("k", 0)
    assert str(info.value) == (
        "the key function of stage 'k' failed on item 0: ZeroDivisionError: "
        "integer division or modulo by zero"
    )


async def test_ordered_flat_map_keeps_input_order(autojump_clock: Any) -> None:
    """An ordered flat_map emits each item's outputs together, in input order."""

    async def spread(x: int) -> AsyncIterator[int]:
        await trio.sleep(3 - x)
        yield x * 10
        yield x * 10 + 1

    pipe = Pipeline.source(range(3)).flat_map(spread, workers=3, ordered=True)
    with assert_takes(3.0):
        assert await pipe.collect() == [0, 1, 10, 11, 20, 21]


async def test_tap_takes_workers_and_a_failing_tap_drops_its_item(autojump_clock: Any) -> None:
    """``tap`` runs on several workers and passes on only the items whose call succeeded."""

    async def check(x: int) -> None:
        await trio.sleep(1)
        if x == 2:
            raise ValueError(x)

    pipe = Pipeline.source(range(4)).tap(check, workers=4, on_error="skip", name="t")
    with assert_takes(1.0):
        assert sorted(await pipe.collect()) == [0, 1, 3]
    assert pipe.statistics().stage("t").skipped == 1


async def test_batch_rate_limit_and_broadcast_record_latency(autojump_clock: Any) -> None:
    """Stages without a function report their time per item in exact fake seconds."""

    async def source() -> AsyncIterator[int]:
        for i in range(4):
            yield i
            await trio.sleep(1)

    pipe = (
        Pipeline.source(source)
        .batch(2, name="batch")  # lists of items 1 s apart: each took 1 s to fill
        .rate_limit(1, per=10, name="rate")  # the second list waits until t=13
        .broadcast(lambda p: p, lambda p: p.map(len), name="fan")
    )
    await pipe.run()
    stats = pipe.statistics()
    assert (stats.stage("batch").items_in, stats.stage("batch").items_out) == (4, 2)
    assert stats.stage("batch").latency.maximum == 1.0
    assert stats.stage("batch").latency.count == 2
    rate = stats.stage("rate").latency
    # The first list arrives at t=1 and passes; the second arrives at t=3 and passes at t=11.
    assert (rate.minimum, rate.maximum) == (0.0, 8.0)
    fan = stats.stage("fan")
    assert (fan.items_in, fan.items_out, fan.latency.count) == (2, 4, 2)


async def test_two_readers_of_one_output_each_get_results(autojump_clock: Any) -> None:
    """Results that arrive together while two tasks wait are shared by both readers."""
    got: list[tuple[str, int]] = []

    async def two_then_nothing() -> AsyncIterator[int]:
        await trio.sleep(1)  # both readers are waiting by now
        yield 0
        yield 1
        await trio.sleep_forever()  # the input never ends, so only a wake-up helps

    async def read(name: str, out: Any) -> None:
        got.append((name, await out.receive()))
        await trio.sleep(5)  # this reader is busy now: the other must get the next result

    async with (
        Pipeline.source(two_then_nothing).open(buffer=2) as out,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(read, "a", out)
        nursery.start_soon(read, "b", out)
        await trio.sleep(2)
        assert sorted(item for _, item in got) == [0, 1]
        assert {name for name, _ in got} == {"a", "b"}
        nursery.cancel_scope.cancel()


async def test_output_is_closed_once_open_has_exited() -> None:
    """Reading after the block raises ClosedResourceError, as a closed channel does."""
    async with Pipeline.source(range(10)).map(lambda x: x).open() as out:
        assert await out.receive() == 0
    with pytest.raises(trio.ClosedResourceError, match=r"^this pipeline run has ended"):
        await out.receive()


async def test_a_stage_failure_and_a_block_error_are_both_raised() -> None:
    """If a stage fails and the block raises while unwinding, neither error is lost."""

    def explode(x: int) -> int:
        raise KeyError(x)

    async def body() -> None:
        async with Pipeline.source([1]).map(explode, name="m").open() as out:
            try:
                await out.receive()
            finally:
                raise OSError("cleaning up failed")

    with pytest.raises(BaseExceptionGroup) as info:
        await body()
    errors = info.value.exceptions
    assert [type(error) for error in errors] == [StageError, OSError]
    assert errors[0].stage == "m"


@pytest.mark.parametrize(("workers", "buffer", "queue"), [(4, 4, 4), (4, 64, 64), (8, 16, 8)])
async def test_keyed_stage_holds_its_buffer_and_queues_of_four_shares(
    workers: int, buffer: int, queue: int, autojump_clock: Any
) -> None:
    """A keyed worker's queue holds ``4 * buffer // workers`` items, at most ``buffer``.

    So a keyed stage holds O(buffer + workers) items: at most 4 * buffer in its queues.
    """
    numbers = Counted(range(1000))
    pipe = Pipeline.source(numbers).map(
        lambda x: sleep_then(math.inf, x), workers=workers, buffer=buffer, key=lambda x: x
    )
    async with pipe.open():
        await trio.testing.wait_all_tasks_blocked()
        # One in each worker, a full queue per worker, one held by the
        # dispatcher, a full stage buffer, and one held by the source.
        assert numbers.pulled == workers + workers * queue + 1 + buffer + 1
        assert pipe.statistics().stages[0].buffer_size == buffer + workers * queue


async def test_flat_map_closes_an_async_generator_in_its_worker() -> None:
    """An async generator a flat_map function returns is finalized before open() returns."""
    finalized_in: list[str] = []

    async def many(x: int) -> AsyncIterator[int]:
        try:
            for i in range(1000):
                yield i  # cancelled while suspended here, waiting for room downstream
        finally:
            finalized_in.append(trio.lowlevel.current_task().name)

    async with Pipeline.source([0]).flat_map(many, name="many").open() as out:
        assert await out.receive() == 0
    assert finalized_in == ["many worker 0"]


async def test_ordered_flat_map_streams_its_oldest_item(autojump_clock: Any) -> None:
    """An ordered flat_map hands on the oldest item's outputs as they come, however many.

    The next item keeps at most ``buffer`` outputs until its turn.
    """
    produced = {0: 0, 1: 0}

    async def endless(x: int) -> AsyncIterator[tuple[int, int]]:
        for i in range(10**9):
            produced[x] += 1
            await trio.sleep(1)
            yield (x, i)

    pipe = Pipeline.source([0, 1]).flat_map(endless, workers=2, ordered=True, buffer=3)
    async with pipe.open() as out:
        assert [await out.receive() for _ in range(5)] == [(0, i) for i in range(5)]
        await trio.sleep(100)
        assert produced[1] == 4  # three kept, the fourth waits to be handed on


async def test_process_executor_kills_its_worker_on_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``executor="process"`` asks trio-parallel to kill a cancelled call's worker process."""
    trio_parallel = pytest.importorskip("trio_parallel")
    calls: list[dict[str, Any]] = []

    async def fake_run_sync(fn: Any, *args: Any, **options: Any) -> Any:
        calls.append(options)
        return fn(*args)

    monkeypatch.setattr(trio_parallel, "run_sync", fake_run_sync)
    assert await Pipeline.source([-1]).map(abs, workers=3, executor="process").collect() == [1]
    assert calls[0]["kill_on_cancel"] is True
    assert calls[0]["limiter"].total_tokens == 3


async def test_generator_based_coroutines_are_awaited() -> None:
    """A function may return a generator-based coroutine (``types.coroutine``)."""
    import types

    @types.coroutine
    def legacy(x: int) -> Any:
        # Awaited by the `yield from`, which is how such coroutines await.
        yield from trio.lowlevel.checkpoint().__await__()  # noqa: ASYNC105
        return x * 2

    assert await Pipeline.source([1, 2]).map(legacy).collect() == [2, 4]


async def test_ordered_flat_map_hands_on_what_the_next_item_kept_at_once(
    autojump_clock: Any,
) -> None:
    """When the oldest item ends, what the next one kept goes out then, not at its next yield."""
    arrivals: list[tuple[float, str]] = []

    async def expand(x: int) -> AsyncIterator[str]:
        if x == 0:
            await trio.sleep(1)
            yield "a0"
        else:
            yield "b1"  # kept: item 0 is still running
            await trio.sleep(10)
            yield "c1"

    pipe = Pipeline.source([0, 1]).flat_map(expand, workers=2, buffer=2, ordered=True)
    async with pipe.open() as out:
        async for produced in out:
            arrivals.append((trio.current_time(), produced))
    assert arrivals == [(1.0, "a0"), (1.0, "b1"), (10.0, "c1")]


async def test_the_blocks_exception_keeps_its_cause() -> None:
    """An exception raised in the block comes out with its own ``__cause__``."""

    async def body() -> None:
        async with Pipeline.source([1]).open() as out:
            await out.receive()
            try:
                {}["missing"]
            except KeyError as error:
                raise ValueError("wrapped") from error

    with pytest.raises(ValueError, match=r"^wrapped$") as info:
        await body()
    assert isinstance(info.value.__cause__, KeyError)


def test_a_key_object_with_an_async_call_is_refused() -> None:
    """An object whose ``__call__`` is async is no plain key function."""

    class Key:
        async def __call__(self, item: int) -> int:
            return item

    with pytest.raises(TypeError, match=r"^key must be a plain function"):
        Pipeline.source([1]).map(fn, workers=2, key=Key())


async def test_a_key_that_returns_an_awaitable_fails_its_item() -> None:
    """A key function returning a coroutine is that item's failure, and the coroutine is closed."""

    async def shard(x: int) -> int:
        return x  # pragma: no cover  (never awaited)

    pipe = Pipeline.source([1]).map(fn, workers=2, key=lambda x: shard(x), name="k")
    with pytest.raises(StageError, match=r"^the key function of stage 'k' failed on item 1: "):
        await pipe.run()


def parity(x: int) -> Iterator[int]:
    """A key written with yield by mistake: a generator function."""
    yield x % 2


def dead_letter(item: int, exc: Exception) -> Iterator[None]:
    """A dead-letter hook written with yield by mistake: calling it runs nothing."""
    yield


async def dead_letter_async(item: int, exc: Exception) -> AsyncIterator[None]:
    yield


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda p: p.map(fn, workers=2, key=parity),
            r"^key must not be a generator function, got <function parity at .*>: ",
        ),
        (
            lambda p: p.map(fn, on_error=dead_letter),
            r"^on_error must not be a generator function, got <function dead_letter at .*>: ",
        ),
        (
            lambda p: p.filter(fn, on_error=dead_letter_async),
            r"^on_error must not be a generator function, got <function dead_letter_async at",
        ),
    ],
)
def test_generator_functions_as_key_or_on_error_are_refused(build: Any, message: str) -> None:
    """A generator function's body never runs when called: refused at build, naming the argument."""
    with pytest.raises(TypeError, match=message):
        build(Pipeline.source([1]))


async def test_a_key_that_returns_a_generator_fails_its_item() -> None:
    """A generator is hashable but new per item, so it can be no key: the item fails, named."""
    pipe = Pipeline.source([1]).map(fn, workers=2, key=lambda x: parity(x), name="k")
    with pytest.raises(StageError, match=r"^the key function of stage 'k' failed on item 1: ") as e:
        await pipe.run()
    assert isinstance(e.value.__cause__, TypeError)
    assert "return the key, do not yield it" in str(e.value.__cause__)


async def test_an_on_error_hook_that_returns_a_generator_fails_the_run() -> None:
    """A hook that turns out to be a generator ran nothing: the run fails, no item is lost."""

    def boom(x: int) -> int:
        raise ValueError(x)

    pipe = Pipeline.source([1, 2]).map(boom, on_error=lambda i, e: dead_letter(i, e), name="m")
    with pytest.raises(StageError, match=r"^the on_error hook of stage 'm' failed on item 1: "):
        await pipe.collect()


@pytest.mark.parametrize("on_error", ["raise", "skip", print])
async def test_a_sync_fn_through_a_policy_is_raised_bare_once(on_error: Any) -> None:
    """With policy=, fn must be async: a programming error, raised bare, not an item's failure."""
    policy = trine.Policy(timeout=5.0)
    pipe = Pipeline.source(range(8)).map(fn, workers=4, policy=policy, on_error=on_error)
    with pytest.raises(
        TypeError, match=r"^fn must be an async function, but calling it returned"
    ) as info:
        await pipe.collect()
    assert info.value.__notes__ == ["in stage '1:fn' of a trine.Pipeline"]
    stage = pipe.statistics().stages[0]
    assert (stage.failed, stage.skipped, stage.dead_lettered) == (0, 0, 0)


async def test_a_guard_misused_inside_a_stages_call_ends_the_run_bare() -> None:
    """A NotAwaitableError from inside fn is a programming error too: on_error never sees it."""

    async def misuses_gather(x: int) -> object:
        return await trine.gather(lambda: x)  # type: ignore[arg-type, return-value]

    pipe = Pipeline.source(range(3)).map(misuses_gather, on_error="skip", name="g")
    with pytest.raises(TypeError, match=r"^fns\[0\] must be an async function") as info:
        await pipe.collect()
    assert info.value.__notes__ == ["in stage 'g' of a trine.Pipeline"]


@pytest.mark.parametrize(
    ("stage", "why"),
    [
        ("map", r"map would hand on the generator itself; flat_map hands on each item it yields"),
        ("filter", r"the generator it returns is always true, so every item would pass"),
        ("tap", r"calling it runs nothing \(define it without yield\)"),
    ],
)
def test_a_generator_function_as_fn_is_refused_but_by_flat_map(stage: str, why: str) -> None:
    """map, filter and tap use what fn returns; a generator function's is a generator object."""
    refused = rf"^fn must not be a generator function, got <function parity at .*>: {why}$"
    with pytest.raises(TypeError, match=refused):
        getattr(Pipeline.source([1]), stage)(parity)
    Pipeline.source([1]).flat_map(parity)  # what a generator function is for


async def test_a_generator_based_coroutine_function_is_still_a_valid_fn() -> None:
    """``@types.coroutine`` makes a generator function awaitable: map awaits it."""

    @types.coroutine
    def double(x: int) -> Iterator[None]:
        yield from ()
        return 2 * x  # type: ignore[misc]

    assert await Pipeline.source([1, 2]).map(double).collect() == [2, 4]
