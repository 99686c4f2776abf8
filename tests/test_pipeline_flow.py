"""Pipeline flow control: buffers that drop (overflow=, latest()), exact fake times, properties."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import trine
from pipeline_support import PipelineWatch, pipeline_tasks, run_watched, sleep_then
from trine import Pipeline, StageError, merge


def ticks(count: int, every: float) -> Any:
    """An async generator function: 0, 1, ... *count* - 1, one every *every* seconds."""

    async def numbers() -> AsyncIterator[int]:
        for number in range(count):
            if number:
                await trio.sleep(every)
            yield number

    return numbers


async def slow(x: int) -> int:
    await trio.sleep(1)
    return x


# --------------------------------------------------------------------------- overflow=


async def test_drop_newest_keeps_the_first_items_and_counts_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A full ``drop_newest`` buffer drops what arrives; each drop is counted and handed on."""
    dropped: list[int] = []
    pipe = Pipeline.source(range(10)).map(
        slow, buffer=2, overflow="drop_newest", on_drop=dropped.append, name="s"
    )
    # The source writes all ten before the stage's first worker runs: it never waits.
    assert await pipe.collect() == [0, 1]
    assert trio.current_time() == 2.0
    assert dropped == [2, 3, 4, 5, 6, 7, 8, 9]
    stats = pipe.statistics().stage("s")
    assert (stats.dropped, stats.items_in, stats.items_out) == (8, 2, 2)


async def test_drop_oldest_keeps_the_newest_items(autojump_clock: trio.testing.MockClock) -> None:
    """A full ``drop_oldest`` buffer makes room by dropping its oldest item."""
    dropped: list[int] = []
    pipe = Pipeline.source(range(10)).map(
        slow, buffer=2, overflow="drop_oldest", on_drop=dropped.append, name="s"
    )
    assert await pipe.collect() == [8, 9]
    assert dropped == [0, 1, 2, 3, 4, 5, 6, 7]
    assert pipe.statistics().stage("s").dropped == 8


async def test_a_slow_stage_behind_drop_oldest_gets_fresh_items(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Items every 0.3 s into a 1 s stage: it takes the newest each time it is free."""
    pipe = Pipeline.source(ticks(10, 0.3)).map(slow, buffer=1, overflow="drop_oldest", name="s")
    # 0 at t=0; at t=1 the newest is 3 (t=0.9), at t=2 it is 6, at t=3 it is 9 (t=2.7).
    assert await pipe.collect() == [0, 3, 6, 9]
    assert trio.current_time() == 4.0
    assert pipe.statistics().stage("s").dropped == 6


async def test_block_is_the_default_and_drops_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``overflow="block"`` (the default) waits for room: every item arrives."""
    pipe = Pipeline.source(range(5)).map(slow, buffer=1, overflow="block", name="s")
    assert await pipe.collect() == [0, 1, 2, 3, 4]
    assert trio.current_time() == 5.0
    assert pipe.statistics().stage("s").dropped == 0


async def test_every_stage_kind_takes_overflow(autojump_clock: trio.testing.MockClock) -> None:
    """filter, flat_map, tap, enumerate, batch, rate_limit and broadcast drop alike."""
    source = Pipeline.source(range(6)).map(lambda x: sleep_then(0, x))
    options: dict[str, Any] = {"buffer": 1, "overflow": "drop_newest", "name": "s"}
    pipes = [
        source.filter(lambda x: sleep_then(1, True), **options),
        source.flat_map(lambda x: sleep_then(1, [x]), **options),
        source.tap(lambda x: sleep_then(1, None), **options),
        source.rate_limit(1, **options),
        source.broadcast(lambda p: p.map(slow, buffer=1), **options),
    ]
    for pipe in pipes:
        await pipe.collect()
        assert pipe.statistics().stage("s").dropped > 0, pipe
    for pipe in [
        Pipeline.source(range(6)).enumerate(**options),
        Pipeline.source(range(6)).batch(1, **options),
    ]:
        async with pipe.open(buffer=0) as out:
            async for _ in out:
                await trio.sleep(1)
        assert pipe.statistics().stage("s").dropped > 0, pipe


async def test_a_keyed_stage_drops_at_its_shared_buffer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With key= and several workers, the buffer in front of the dispatcher drops."""
    dropped: list[int] = []
    pipe = Pipeline.source(range(20)).map(
        slow,
        workers=2,
        key=lambda x: x % 2,
        buffer=2,
        overflow="drop_newest",
        on_drop=dropped.append,
        name="s",
    )
    output = await pipe.collect()
    assert sorted(output + dropped) == list(range(20))
    assert pipe.statistics().stage("s").dropped == len(dropped) > 0


async def test_a_failing_on_drop_fails_the_run(autojump_clock: trio.testing.MockClock) -> None:
    """An ``on_drop`` that raises is the run's failure, a StageError naming the hook and item."""

    def refuse(item: int) -> None:
        raise OSError("full")

    pipe = Pipeline.source(range(5)).map(
        slow, buffer=1, overflow="drop_newest", on_drop=refuse, name="s"
    )
    with pytest.raises(
        StageError, match=r"^the on_drop hook of stage 's' failed on item 1: OSError: full$"
    ) as caught:
        await pipe.collect()
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.item == 1
    assert pipeline_tasks() == []


async def test_an_on_drop_that_returns_a_coroutine_fails_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A lambda around an async function passes the door but is refused when it returns."""

    async def log(item: int) -> None:
        pass

    pipe = Pipeline.source(range(3)).map(
        slow, buffer=1, overflow="drop_newest", on_drop=lambda item: log(item)
    )
    with pytest.raises(StageError, match=r"on_drop must be a plain function") as caught:
        await pipe.collect()
    assert isinstance(caught.value.__cause__, TypeError)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda p: p.map(slow, overflow="drop"),
            ValueError,
            r"^overflow must be one of 'block', 'drop_oldest', 'drop_newest', got 'drop'$",
        ),
        (lambda p: p.map(slow, overflow=1), TypeError, r"^overflow must be a str, got 1$"),
        (
            lambda p: p.map(slow, buffer=0, overflow="drop_oldest"),
            ValueError,
            r"^overflow='drop_oldest' needs a buffer to drop from \(buffer >= 1\), got buffer=0$",
        ),
        (
            lambda p: p.batch(2, overflow="drop_newest", buffer=0),
            ValueError,
            r"^overflow='drop_newest' needs a buffer to drop from",
        ),
        (lambda p: p.map(slow, on_drop=slow), TypeError, r"^on_drop must be a plain function"),
        (lambda p: p.tap(slow, on_drop=1), TypeError, r"^on_drop must be a callable, got 1$"),
    ],
)
def test_overflow_arguments_are_validated_when_building(
    build: Any, error: type[Exception], message: str
) -> None:
    """A bad overflow or on_drop is refused at build time, naming it."""
    with pytest.raises(error, match=message):
        build(Pipeline.source(range(3)))


# --------------------------------------------------------------------------- latest()


async def test_latest_at_the_end_hands_a_slow_reader_the_newest_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``latest()`` last: the open() block always reads the newest result, drops are counted."""
    pipe = Pipeline.source(ticks(10, 0.3)).latest()
    received: list[tuple[float, int]] = []
    async with pipe.open() as out:
        async for x in out:
            received.append((trio.current_time(), x))
            await trio.sleep(1)
    assert received == [(0.0, 0), (1.0, 3), (2.0, 6), (3.0, 9)]
    stats = pipe.statistics()
    assert (stats.output_dropped, stats.output_buffer_used) == (6, 0)


async def test_latest_sets_the_next_stages_buffer(autojump_clock: trio.testing.MockClock) -> None:
    """``latest().map(...)``: the stage's buffer is one item that drops its oldest."""
    dropped: list[int] = []
    pipe = Pipeline.source(ticks(10, 0.3)).latest().map(slow, buffer=50, on_drop=dropped.append)
    assert await pipe.collect() == [0, 3, 6, 9]
    stats = pipe.statistics().stages[0]
    assert (stats.buffer_size, stats.dropped) == (1, 6)
    assert dropped == [1, 2, 4, 5, 7, 8]


async def test_latest_keeps_up_with_a_fast_reader(autojump_clock: trio.testing.MockClock) -> None:
    """A reader that keeps up misses nothing: latest() only drops what would pile up."""
    pipe = Pipeline.source(ticks(5, 1.0)).latest().map(lambda x: sleep_then(0.5, x))
    assert await pipe.collect() == [0, 1, 2, 3, 4]
    assert pipe.statistics().stages[0].dropped == 0


def test_latest_is_refused_where_buffers_are_shared() -> None:
    """A merged input or a broadcast branch cannot end with latest(): it says where to put it."""
    with pytest.raises(ValueError, match=r"^a merged pipeline cannot end with latest\(\)"):
        merge(Pipeline.source([1]).latest(), Pipeline.source([2]))
    with pytest.raises(ValueError, match=r"^a branch cannot end with latest\(\)"):
        Pipeline.source([1]).broadcast(lambda p: p.map(slow).latest())


# --------------------------------------------------------------------------- properties

flow_stage = st.fixed_dictionaries(
    {
        "workers": st.integers(1, 3),
        "buffer": st.integers(1, 4),
        "overflow": st.sampled_from(["block", "drop_oldest", "drop_newest"]),
        "keyed": st.booleans(),
        "fail_modulus": st.none() | st.integers(2, 7),
        "delay_modulus": st.integers(1, 4),
    }
)


def build_flow_pipeline(
    source: Any, stages: list[dict[str, Any]], dropped: list[int], failed: list[int]
) -> Pipeline[int]:
    """Stages that keep items' identity, may sleep or fail, and drop into *dropped*."""
    pipe: Pipeline[int] = Pipeline.source(source)
    for index, spec in enumerate(stages):

        async def work(x: int, spec: dict[str, Any] = spec, index: int = index) -> int:
            delay = (x * (index + 3)) % spec["delay_modulus"] / 10
            if delay:
                await trio.sleep(delay)
            if spec["fail_modulus"] and (x + index) % spec["fail_modulus"] == 0:
                failed.append(x)
                raise ValueError(x)
            return x

        pipe = pipe.map(
            work,
            workers=spec["workers"],
            buffer=spec["buffer"],
            overflow=spec["overflow"],
            on_drop=dropped.append,
            key=(lambda x: x % 3) if spec["keyed"] else None,
            on_error="skip",
            name=f"s{index}",
        )
    return pipe


@settings(max_examples=300)
@given(
    items=st.lists(st.integers(0, 60), max_size=40, unique=True),
    stages=st.lists(flow_stage, min_size=1, max_size=3),
    every=st.sampled_from([0.0, 0.05, 0.1]),
    cancel_at=st.none() | st.integers(0, 30).map(lambda tenths: tenths / 10),
)
def test_overflow_never_exceeds_a_buffer_and_counts_every_drop(
    items: list[int], stages: list[dict[str, Any]], every: float, cancel_at: float | None
) -> None:
    """Each item is delivered, failed or dropped, exactly once; drops are all counted.

    The watch checks every buffer's invariants after every task step (at most
    ``buffer`` items wait, no writer ever parks at a buffer that drops); with
    a cancellation at any time, what was delivered, failed or dropped is still
    disjoint and every drop was counted.
    """
    dropped: list[int] = []
    failed: list[int] = []

    async def source() -> AsyncIterator[int]:
        for item in items:
            if every:
                await trio.sleep(every)
            yield item

    pipe = build_flow_pipeline(source, stages, dropped, failed)
    watch = PipelineWatch(pipe)

    async def main() -> None:
        received: list[int] = []
        with trio.move_on_after(1e9 if cancel_at is None else cancel_at):
            async with pipe.open(buffer=1) as out:
                async for x in out:
                    received.append(x)
                    await trio.sleep(0.1)
        accounted = received + failed + dropped
        assert len(accounted) == len(set(accounted))
        assert set(accounted) <= set(items)
        if cancel_at is None:
            assert sorted(accounted) == sorted(items)
        stats = pipe.statistics()
        assert sum(stage.dropped for stage in stats.stages) == len(dropped)
        for spec, stage in zip(stages, stats.stages, strict=True):
            if spec["overflow"] == "block":
                assert stage.dropped == 0
        assert pipeline_tasks() == []

    run_watched(main, watch)


# --------------------------------------------------------------------------- per_key=


async def test_per_key_runs_two_of_a_key_at_once_and_keeps_input_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """per_key=2, ordered=True: a third item of a key waits for a slot; output in input order."""
    starts: list[tuple[float, int]] = []

    async def work(item: tuple[str, float, int]) -> int:
        starts.append((trio.current_time(), item[2]))
        await trio.sleep(item[1])
        return item[2]

    items = [("a", 3, 0), ("a", 1, 1), ("a", 1, 2), ("b", 1, 3), ("a", 1, 4)]
    pipe = Pipeline.source(items).map(
        work, key=lambda item: item[0], workers=3, per_key=2, ordered=True, name="s"
    )
    assert await pipe.collect() == [0, 1, 2, 3, 4]
    # 2 waits for a slot of "a" until 1 finishes at t=1; 3 ("b") takes the free worker then.
    assert sorted(starts) == [(0.0, 0), (0.0, 1), (1.0, 2), (1.0, 3), (2.0, 4)]
    assert trio.current_time() == 3.0
    stats = pipe.statistics().stage("s")
    assert (stats.items_in, stats.items_out, stats.buffer_size) == (5, 5, 64)


async def test_per_key_unordered_hands_results_on_as_they_finish(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """per_key=2 without ordered: the same schedule, results in the order they finish."""
    items = [("a", 3, 0), ("a", 1, 1), ("a", 1, 2), ("b", 1, 3), ("a", 1, 4)]
    pipe = Pipeline.source(items).map(
        lambda item: sleep_then(item[1], item[2]), key=lambda item: item[0], workers=3, per_key=2
    )
    received: list[tuple[float, int]] = []
    async with pipe.open() as out:
        async for x in out:
            received.append((trio.current_time(), x))
    # 2 and 3 both finish at t=2 (the order between them is the scheduler's).
    assert sorted(received) == [(1.0, 1), (2.0, 2), (2.0, 3), (3.0, 0), (3.0, 4)]
    assert [x for _, x in received][:1] == [1]


async def test_key_with_ordered_keeps_input_order_one_per_key(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """key= with ordered=True (per_key=1): one item of a key at a time, all in input order."""
    items = [("a", 2, 0), ("b", 1, 1), ("a", 1, 2), ("b", 1, 3)]
    pipe = Pipeline.source(items).filter(
        lambda item: sleep_then(item[1], item[2] != 3),
        key=lambda item: item[0],
        workers=4,
        ordered=True,
    )
    # b's second item starts when its first is done (t=1), a's when its first is (t=2).
    assert [item[2] for item in await pipe.collect()] == [0, 1, 2]
    assert trio.current_time() == 3.0


async def test_per_key_failures_skip_and_free_the_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failing call (or key) is the item's failure; its slot goes to the next of its key."""

    async def work(x: int) -> int:
        await trio.sleep(1)
        if x == 1:
            raise ValueError(x)
        return x

    def key(x: int) -> int:
        if x == 4:
            raise KeyError(x)
        return x % 2

    pipe = Pipeline.source(range(6)).map(
        work, key=key, workers=2, per_key=2, ordered=True, on_error="skip", name="s"
    )
    assert await pipe.collect() == [0, 2, 3, 5]
    stats = pipe.statistics().stage("s")
    assert (stats.failed, stats.skipped) == (2, 2)
    assert trio.current_time() == 3.0


async def test_per_key_raise_names_the_key_function(autojump_clock: trio.testing.MockClock) -> None:
    """A key that fails under on_error="raise" fails the run, naming the key function."""
    pipe = Pipeline.source([1, 2]).map(
        slow, key=lambda x: [x], workers=2, per_key=2, ordered=True, name="s"
    )
    with pytest.raises(StageError, match=r"^the key function of stage 's' failed on item 1"):
        await pipe.collect()
    assert pipeline_tasks() == []


@settings(max_examples=300)
@given(
    items=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=30),
    workers=st.integers(2, 4),
    per_key=st.integers(1, 4),
    ordered=st.booleans(),
    buffer=st.none() | st.integers(0, 3),
    fail_modulus=st.none() | st.integers(2, 5),
    cancel_at=st.none() | st.integers(0, 40).map(lambda tenths: tenths / 10),
)
def test_per_key_bound_and_order_hold(
    items: list[tuple[int, int]],
    workers: int,
    per_key: int,
    ordered: bool,
    buffer: int | None,
    fail_modulus: int | None,
    cancel_at: float | None,
) -> None:
    """Never more than per_key calls of a key at once; with per_key=1 a key's calls start in
    input order; with ordered=True the output is in input order; cancelling at any time
    leaves nothing running and nothing delivered twice."""
    per_key = min(per_key, workers)
    numbered = [(key, delay, seq) for seq, (key, delay) in enumerate(items)]
    running: dict[int, int] = {}
    most: dict[int, int] = {}
    started: dict[int, list[int]] = {}

    async def work(item: tuple[int, int, int]) -> int:
        key, delay, seq = item
        running[key] = running.get(key, 0) + 1
        most[key] = max(most.get(key, 0), running[key])
        started.setdefault(key, []).append(seq)
        try:
            if delay:
                await trio.sleep(delay / 10)
            if fail_modulus and seq % fail_modulus == 0:
                raise ValueError(seq)
        finally:
            running[key] -= 1
        return seq

    pipe = Pipeline.source(numbered).map(
        work,
        key=lambda item: item[0],
        workers=workers,
        per_key=per_key,
        ordered=ordered,
        buffer=buffer,
        on_error="skip",
    )
    expected = [seq for _, _, seq in numbered if not (fail_modulus and seq % fail_modulus == 0)]

    async def main() -> None:
        received: list[int] = []
        with trio.move_on_after(1e9 if cancel_at is None else cancel_at):
            async with pipe.open(buffer=1) as out:
                async for seq in out:
                    received.append(seq)
        assert all(count <= per_key for count in most.values())
        if per_key == 1:  # one at a time: a key's calls start in input order
            assert all(sequence == sorted(sequence) for sequence in started.values())
        assert len(received) == len(set(received))
        assert set(received) <= set(expected)
        if ordered:
            assert received == expected[: len(received)]
        if cancel_at is None:
            assert sorted(received) == expected
        assert pipeline_tasks() == []
        assert all(count == 0 for count in running.values())

    run_watched(main, PipelineWatch(pipe))


# --------------------------------------------------------------------------- zip, zip_latest


def tagged(tag: str, count: int, every: float, closed: list[str] | None = None) -> Any:
    """An async generator function: f"{tag}0", f"{tag}1", ..., one every *every* seconds."""

    async def items() -> AsyncIterator[str]:
        try:
            for number in range(count):
                if number:
                    await trio.sleep(every)
                yield f"{tag}{number}"
        finally:
            if closed is not None:
                closed.append(tag)

    return items


async def test_zip_pairs_items_and_ends_with_the_shortest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """zip: one item of each input per tuple; the longer input is cancelled at the end."""
    closed: list[str] = []
    pipe = trine.zip(
        Pipeline.source(tagged("a", 100, 0.5, closed)),
        Pipeline.source(tagged("b", 3, 1.0, closed)).map(str.upper, name="up"),
    ).map(lambda pair: "+".join(pair))
    received: list[tuple[float, str]] = []
    async with pipe.open() as out:
        async for joined in out:
            received.append((trio.current_time(), joined))
    assert received == [(0.0, "a0+B0"), (1.0, "a1+B1"), (2.0, "a2+B2")]
    assert sorted(closed) == ["a", "b"]
    assert pipe.statistics().stage("zip[1].up").items_out == 3
    assert pipeline_tasks() == []


async def test_zip_latest_emits_on_every_new_item(autojump_clock: trio.testing.MockClock) -> None:
    """zip_latest: a tuple of the newest of each, once all have one, at each new item."""
    pipe = trine.zip_latest(
        Pipeline.source(tagged("a", 3, 1.0)), Pipeline.source(tagged("b", 2, 1.5))
    )
    received: list[tuple[float, tuple[Any, ...]]] = []
    async with pipe.open() as out:
        async for row in out:
            received.append((trio.current_time(), row))
    assert received == [
        (0.0, ("a0", "b0")),
        (1.0, ("a1", "b0")),
        (1.5, ("a1", "b1")),
        (2.0, ("a2", "b1")),
    ]


async def test_zip_latest_partial_fills_in_the_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """partial=True: tuples from the first item of any input, the others given as default."""
    pipe = trine.zip_latest(
        Pipeline.source(tagged("a", 2, 1.0)),
        Pipeline.source(tagged("b", 1, 0)).map(lambda x: sleep_then(1.5, x)),
        partial=True,
        default="-",
    )
    assert await pipe.collect() == [("a0", "-"), ("a1", "-"), ("a1", "b0")]
    assert trio.current_time() == 1.5


async def test_zip_latest_after_latest_gives_a_slow_reader_fresh_rows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """zip_latest(...).latest(): a slow reader sees the newest row, never a backlog."""
    pipe = trine.zip_latest(Pipeline.source(tagged("a", 10, 0.3)), Pipeline.source(["b"])).latest()
    received: list[tuple[Any, ...]] = []
    async with pipe.open() as out:
        async for row in out:
            received.append(row)
            await trio.sleep(1)
    assert received == [("a0", "b"), ("a3", "b"), ("a6", "b"), ("a9", "b")]


async def test_an_input_of_zip_that_fails_fails_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A failing stage of an input is the run's StageError; nothing is left running."""

    def boom(x: int) -> int:
        raise OSError(x)

    pipe = trine.zip(Pipeline.source(range(3)), Pipeline.source(range(3)).map(boom, name="b"))
    with pytest.raises(StageError, match=r"^stage 'zip\[1\]\.b' failed on item 0: OSError: 0$"):
        await pipe.collect()
    assert pipeline_tasks() == []


async def test_zips_nest_and_merge(autojump_clock: trio.testing.MockClock) -> None:
    """A zip may be an input of a merge or of another zip; one-shot sources are claimed once."""
    inner = trine.zip(Pipeline.source([1, 2]), Pipeline.source(["x", "y"]))
    both = merge(inner, trine.zip(Pipeline.source([3]), Pipeline.source(["z"])))
    assert sorted(await both.collect()) == [(1, "x"), (2, "y"), (3, "z")]
    nested = trine.zip(inner, Pipeline.source([True, False]))
    assert await nested.collect() == [((1, "x"), True), ((2, "y"), False)]
    once = trine.zip(Pipeline.source(iter([1])), Pipeline.source([2]))
    assert await once.collect() == [(1, 2)]
    with pytest.raises(RuntimeError, match=r"one-shot iterator that an earlier run"):
        await once.collect()


def test_zip_arguments_are_validated() -> None:
    """No inputs, a non-pipeline, a branch, an input ending with latest(), a bad partial."""
    with pytest.raises(ValueError, match=r"^zip needs at least one pipeline$"):
        trine.zip()
    with pytest.raises(TypeError, match=r"^pipelines must be Pipelines, got 1$"):
        trine.zip_latest(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^an input of zip cannot end with latest\(\)"):
        trine.zip(Pipeline.source([1]).latest())
    with pytest.raises(TypeError, match=r"^partial must be True or False, got 1$"):
        trine.zip_latest(Pipeline.source([1]), partial=1)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(
    sizes=st.lists(st.integers(0, 8), min_size=1, max_size=3),
    every=st.lists(st.integers(0, 3), min_size=3, max_size=3),
    latest=st.booleans(),
    cancel_at=st.none() | st.integers(0, 30).map(lambda tenths: tenths / 10),
)
def test_zips_match_their_models_and_cancel_cleanly(
    sizes: list[int], every: list[int], latest: bool, cancel_at: float | None
) -> None:
    """zip is Python's zip; zip_latest's last row is every input's last item; no task is left."""
    inputs = [
        Pipeline.source(tagged(str(number), size, every[number] / 10)).map(
            lambda x: sleep_then(0.1, x)
        )
        for number, size in enumerate(sizes)
    ]
    pipe = trine.zip_latest(*inputs) if latest else trine.zip(*inputs)
    columns = [[f"{number}{i}" for i in range(size)] for number, size in enumerate(sizes)]

    async def main() -> None:
        received: list[tuple[Any, ...]] = []
        with trio.move_on_after(1e9 if cancel_at is None else cancel_at):
            async with pipe.open(buffer=1) as out:
                async for row in out:
                    received.append(row)
        if latest:
            # Each row moves one input on by one item, in each input's order.
            for before, after in itertools.pairwise(received):
                assert sum(b != a for b, a in zip(before, after, strict=True)) == 1
            if cancel_at is None and all(sizes):
                assert received[-1] == tuple(column[-1] for column in columns)
                assert len(received) == sum(sizes) - len(sizes) + 1
        else:
            expected = list(zip(*columns, strict=False))
            assert received == expected[: len(received)]
            if cancel_at is None:
                assert received == expected
        assert pipeline_tasks() == []

    run_watched(main, PipelineWatch(pipe))
