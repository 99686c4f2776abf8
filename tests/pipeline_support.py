"""What the pipeline tests share: helpers, random pipelines and a watch on every task step."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import trio
import trio.lowlevel
import trio.testing
from hypothesis import strategies as st

from trine import Pipeline

DEFAULT_BUFFER = 64
"""A stage's buffer when none is given (``max(workers, 64)``), and ``open()``'s."""


async def sleep_then(seconds: float, value: Any) -> Any:
    await trio.sleep(seconds)
    return value


class Counted:
    """An iterator over *items* that counts how many have been taken from it."""

    def __init__(self, items: Iterable[int]) -> None:
        self._items = iter(items)
        self.pulled = 0

    def __iter__(self) -> Counted:
        return self

    def __next__(self) -> int:
        item = next(self._items)
        self.pulled += 1
        return item


def pipeline_tasks() -> list[str]:
    """Names of every running task that belongs to a pipeline."""
    found: list[str] = []

    def walk(task: trio.lowlevel.Task) -> None:
        if task.name.startswith("trine.Pipeline") or " worker" in task.name:
            found.append(task.name)
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    walk(trio.lowlevel.current_root_task())  # type: ignore[arg-type]
    return found


# --------------------------------------------------------------------------- basics


# --------------------------------------------------------------------------- random pipelines

stage_strategy = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["map", "filter", "flat_map", "tap", "keyed", "batch"]),
        "workers": st.integers(1, 4),
        "buffer": st.none() | st.integers(0, 5),
        "ordered": st.booleans(),
        "fail_modulus": st.none() | st.integers(2, 7),
        "delay_modulus": st.integers(1, 4),
    }
)


def build_random_pipeline(
    items: Iterable[int] | trio.abc.ReceiveChannel[int],
    stages: list[dict[str, Any]],
    dropped: Any = lambda x: None,
) -> Pipeline[int]:
    """Each stage keeps an item's identity (so it can be tracked) but may sleep, drop or fail.

    *dropped* is called with each item the moment a stage fails on it or filters it out.
    """
    pipe: Pipeline[int] = Pipeline.source(items)
    for index, spec in enumerate(stages):

        async def work(x: int, spec: dict[str, Any] = spec, index: int = index) -> int:
            delay = (x * (index + 3)) % spec["delay_modulus"] / 10
            if delay:  # some calls finish without blocking: runs mix both kinds
                await trio.sleep(delay)
            if spec["fail_modulus"] and (x + index) % spec["fail_modulus"] == 0:
                dropped(x)
                raise ValueError(x)
            return x

        options: dict[str, Any] = {
            "workers": spec["workers"],
            "buffer": spec["buffer"],
            "ordered": spec["ordered"],
            "on_error": "skip",
            "name": f"s{index}",
        }
        if spec["kind"] == "map":
            pipe = pipe.map(work, **options)
        elif spec["kind"] == "keyed":
            options["ordered"] = False  # key= keeps per-key order by itself
            pipe = pipe.map(work, key=lambda x: x % 3, **options)
        elif spec["kind"] == "batch":
            # Lists of up to `workers + 1` items, then flattened again so the
            # items can still be tracked one by one.
            size = spec["workers"] + 1
            pipe = pipe.batch(size, timeout=0.3, buffer=spec["buffer"], name=f"s{index}")
            pipe = pipe.flat_map(lambda batch: batch, buffer=1, name=f"s{index}.flat")
        elif spec["kind"] == "filter":

            async def keep(x: int, work: Any = work, index: int = index) -> bool:
                kept = (await work(x)) % 5 != index
                if not kept:
                    dropped(x)
                return kept

            pipe = pipe.filter(keep, **options)
        elif spec["kind"] == "flat_map":

            async def one(x: int, work: Any = work) -> list[int]:
                return [await work(x)]

            pipe = pipe.flat_map(one, **options)
        else:
            pipe = pipe.tap(lambda x: None, **options)
    return pipe


def expected_output(items: list[int], stages: list[dict[str, Any]]) -> tuple[list[int], int]:
    """What must come out (in input order) and how many items fail along the way."""
    out, failed = [], 0
    for x in items:
        alive = True
        for index, spec in enumerate(stages):
            if spec["kind"] in ("tap", "batch"):
                continue
            if spec["fail_modulus"] and (x + index) % spec["fail_modulus"] == 0:
                failed += 1
                alive = False
                break
            if spec["kind"] == "filter" and x % 5 == index:
                alive = False
                break
        if alive:
            out.append(x)
    return out, failed


def buffer_of(spec: dict[str, Any], smallest: int) -> int:
    """The buffer a stage of *spec* gets: its own, or the default for *smallest* (workers, size)."""
    return spec["buffer"] if spec["buffer"] is not None else max(smallest, DEFAULT_BUFFER)


def items_held_bound(stages: list[dict[str, Any]], output_buffer: int) -> int:
    """The most items a run of *stages* may hold at once, as the docs promise.

    The source holds the one it is handing on; a stage holds ``buffer`` waiting
    items and one per worker; an ordered stage of several workers also holds
    finished results until their turn (at most ``workers + buffer`` items are
    taken and not yet emitted, plus the one being emitted). A keyed stage adds
    its dispatcher's item and a queue of ``buffer // workers`` (at least one)
    per worker. A batch stage holds its waiting items and one list; the
    flat_map after it (``buffer=1``) one waiting list and the one it expands.
    """
    # The source's item, and the results waiting for the caller (with a
    # rendezvous, the one handed to the caller's task, which has not run yet).
    total = 1 + max(output_buffer, 1)
    for spec in stages:
        workers = spec["workers"]
        if spec["kind"] == "batch":
            size = workers + 1
            total += buffer_of(spec, size) + size + 2 * size
            continue
        buffer = buffer_of(spec, workers)
        if spec["kind"] == "keyed" and workers > 1:
            total += buffer + 1 + workers * max(1, buffer // workers) + workers
        elif spec["ordered"] and workers > 1:
            total += buffer + (workers + buffer) + 1
        else:
            total += buffer + workers
    return total


class PipelineWatch(trio.abc.Instrument):
    """Checks a run after every task step: the ground truth, not the run's own counters.

    Every buffer and every reorder window keeps the invariants its docstring
    states (``invariant_violations()``), and (if *bound* is given) the items
    taken from the source and neither received nor dropped yet never exceed
    *bound*. Trio disables an instrument that raises, so violations are
    collected and asserted on by the test.
    """

    def __init__(self, pipe: Pipeline[Any] | None = None, bound: int | None = None) -> None:
        self.pipe = pipe
        self.bound = bound
        self.source = Counted(())
        self.finished = 0  # received by the test, or dropped by a stage
        self.most_held = 0
        self.violations: list[str] = []

    def count(self, items: list[int]) -> Counted:
        """The source to build the pipeline on, so that the watch counts what it takes."""
        self.source = Counted(items)
        return self.source

    def finish(self, _: object = None) -> None:
        self.finished += 1

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        run = self.pipe._latest.run if self.pipe is not None else None
        if run is None:
            return
        for stage in run.stage_runs:
            for buffer in [stage.inputs, *stage.queues.values()]:
                self.violations.extend(buffer.invariant_violations())
            if stage.window is not None:
                self.violations.extend(stage.window.invariant_violations())
            if stage.key_slots is not None:
                self.violations.extend(stage.key_slots.invariant_violations())
            if stage.started > stage.stage.workers:
                self.violations.append(f"{stage.started} workers started in {stage.stage.name}")
        self.violations.extend(run.output_buffer.invariant_violations())
        for join in run.join_runs:
            for buffer in join.inputs:
                self.violations.extend(buffer.invariant_violations())
        held = self.source.pulled - self.finished
        self.most_held = max(self.most_held, held)
        if self.bound is not None and held > self.bound:
            self.violations.append(f"{held} items held, more than the bound {self.bound}")


def run_watched(main: Any, watch: PipelineWatch) -> None:
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0), instruments=[watch])
    assert watch.violations == []
