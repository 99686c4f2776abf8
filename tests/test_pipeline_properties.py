"""Pipeline properties: random pipelines, cancellation at random times, keys, merges, windows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_support import (
    PipelineWatch,
    build_random_pipeline,
    expected_output,
    items_held_bound,
    pipeline_tasks,
    run_watched,
    sleep_then,
    stage_strategy,
)
from trine import Pipeline, merge


@settings(max_examples=400)
@given(
    items=st.lists(st.integers(0, 50), max_size=30, unique=True),
    stages=st.lists(stage_strategy, min_size=1, max_size=4),
)
def test_every_item_is_delivered_once_or_counted_failed(
    items: list[int], stages: list[dict[str, Any]]
) -> None:
    """Random pipelines: exactly-once delivery, failures counted, order kept, memory bounded."""
    watch = PipelineWatch(bound=items_held_bound(stages, output_buffer=64))
    pipe = watch.pipe = build_random_pipeline(watch.count(items), stages, dropped=watch.finish)

    async def main() -> None:
        output: list[int] = []
        async with pipe.open() as out:
            async for x in out:
                watch.finish()
                output.append(x)
        expected, failed = expected_output(items, stages)
        assert sorted(output) == sorted(expected)
        assert len(output) == len(set(output))
        stats = pipe.statistics()
        assert sum(stage.failed for stage in stats.stages) == failed
        assert sum(stage.skipped for stage in stats.stages) == failed
        if all(
            spec["workers"] == 1 or (spec["ordered"] and spec["kind"] != "keyed") for spec in stages
        ):
            assert output == expected
        assert all(stage.busy_workers == 0 for stage in stats.stages)
        assert pipeline_tasks() == []

    run_watched(main, watch)


@settings(max_examples=400)
@given(
    items=st.lists(st.integers(0, 50), max_size=30, unique=True),
    stages=st.lists(stage_strategy, min_size=1, max_size=4),
    cancel_at=st.integers(0, 30).map(lambda tenths: tenths / 10),
    early_exit_after=st.none() | st.integers(0, 5),
)
def test_cancellation_at_any_time_leaves_no_tasks(
    items: list[int],
    stages: list[dict[str, Any]],
    cancel_at: float,
    early_exit_after: int | None,
) -> None:
    """Cancelling from outside, or leaving open() early, at any fake time leaves nothing running.

    The source is a memory channel fed by a producer: the run closes it, so the
    producer is never left waiting to send.
    """
    send, receive = trio.open_memory_channel[int](0)
    pipe = build_random_pipeline(receive, stages)
    watch = PipelineWatch(pipe)

    async def produce() -> None:
        async with send:
            for item in items:
                try:
                    await send.send(item)
                except trio.BrokenResourceError:
                    return

    async def main() -> None:
        received: list[int] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            with trio.move_on_after(cancel_at):
                async with pipe.open() as out:
                    async for x in out:
                        received.append(x)
                        if early_exit_after is not None and len(received) > early_exit_after:
                            break
        with pytest.raises(trio.ClosedResourceError):
            receive.receive_nowait()
        assert pipeline_tasks() == []
        stats = pipe.statistics()
        assert not stats.running
        assert all(stage.busy_workers == 0 for stage in stats.stages)
        assert len(received) == len(set(received))

    run_watched(main, watch)


@given(
    items=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), max_size=40),
    workers=st.integers(2, 4),
    buffer=st.none() | st.integers(0, 4),
)
def test_key_keeps_per_key_order(
    items: list[tuple[int, int]], workers: int, buffer: int | None
) -> None:
    """Items with the same key leave a keyed stage in the order they came in."""
    numbered = [(key, delay, seq) for seq, (key, delay) in enumerate(items)]

    async def work(item: tuple[int, int, int]) -> tuple[int, int, int]:
        await trio.sleep(item[1])
        return item

    pipe = Pipeline.source(numbered).map(
        work, workers=workers, buffer=buffer, key=lambda item: item[0]
    )

    async def main() -> None:
        output = await pipe.collect()
        assert sorted(output) == sorted(numbered)
        for key in range(5):
            sequence = [seq for k, _, seq in output if k == key]
            assert sequence == sorted(sequence)

    run_watched(main, PipelineWatch(pipe))


@given(
    sizes=st.lists(st.integers(0, 15), min_size=1, max_size=3),
    delays=st.lists(st.integers(0, 3), min_size=3, max_size=3),
    buffer=st.integers(0, 3),
    workers=st.integers(1, 3),
)
def test_merge_delivers_everything_within_bounds(
    sizes: list[int], delays: list[int], buffer: int, workers: int
) -> None:
    """Merged pipelines (async sources that block) deliver each item once, buffers bounded."""

    def make_source(number: int, size: int) -> Any:
        async def numbers() -> AsyncIterator[tuple[int, int]]:
            for i in range(size):
                if i % 2:
                    await trio.sleep(delays[number] / 10)
                yield (number, i)

        return numbers

    inputs = [Pipeline.source(make_source(n, size)) for n, size in enumerate(sizes)]
    pipe = merge(*inputs).map(lambda x: sleep_then(0.1, x), workers=workers, buffer=buffer)

    async def main() -> None:
        output = await pipe.collect()
        assert sorted(output) == [(n, i) for n, size in enumerate(sizes) for i in range(size)]

    run_watched(main, PipelineWatch(pipe))


@settings(max_examples=300)
@given(
    plans=st.lists(
        st.tuples(
            st.lists(st.integers(0, 3), max_size=5),  # tenths of a second before each output
            st.none() | st.integers(0, 4),  # fail after this many outputs
        ),
        max_size=8,
    ),
    workers=st.integers(2, 4),
    buffer=st.integers(0, 3),
)
def test_ordered_flat_map_matches_its_model(
    plans: list[tuple[list[int], int | None]], workers: int, buffer: int
) -> None:
    """Ordered flat_map: every output once, items in input order, failures cut an item short."""
    expected = [
        (number, index)
        for number, (delays, fail_after) in enumerate(plans)
        for index in range(len(delays) if fail_after is None else min(fail_after, len(delays)))
    ]

    async def expand(number: int) -> AsyncIterator[tuple[int, int]]:
        delays, fail_after = plans[number]
        for index, delay in enumerate(delays):
            if index == fail_after:
                raise ValueError(number)
            if delay:
                await trio.sleep(delay / 10)
            yield (number, index)

    pipe = Pipeline.source(range(len(plans))).flat_map(
        expand, workers=workers, buffer=buffer, ordered=True, on_error="skip", name="f"
    )

    async def main() -> None:
        with trio.fail_after(1000):
            assert await pipe.collect() == expected
        stats = pipe.statistics().stage("f")
        assert stats.items_out == len(expected)
        assert stats.failed == sum(
            1 for delays, fail_after in plans if fail_after is not None and fail_after < len(delays)
        )

    run_watched(main, PipelineWatch(pipe))


@settings(max_examples=200)
@given(
    items=st.lists(st.integers(0, 50), max_size=20, unique=True),
    stages=st.lists(stage_strategy.map(lambda spec: {**spec, "buffer": 0}), min_size=1, max_size=4),
    output_buffer=st.sampled_from([0, 1]),
)
def test_rendezvous_buffers_deliver_everything_and_keep_nothing_waiting(
    items: list[int], stages: list[dict[str, Any]], output_buffer: int
) -> None:
    """With ``buffer=0`` everywhere, every item arrives once and none waits between stages.

    An item is in a buffer only once handed to a worker on its way (the watch
    checks that after every step), so the run holds only what its workers do.
    """
    watch = PipelineWatch(bound=items_held_bound(stages, output_buffer=output_buffer))
    pipe = watch.pipe = build_random_pipeline(watch.count(items), stages, dropped=watch.finish)

    async def main() -> None:
        output: list[int] = []
        async with pipe.open(buffer=output_buffer) as out:
            async for x in out:
                watch.finish()
                output.append(x)
        expected, _ = expected_output(items, stages)
        assert sorted(output) == sorted(expected)
        if all(
            spec["workers"] == 1 or (spec["ordered"] and spec["kind"] != "keyed") for spec in stages
        ):
            assert output == expected
        assert pipeline_tasks() == []

    run_watched(main, watch)
