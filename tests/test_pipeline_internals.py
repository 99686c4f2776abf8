"""The pipeline engine's parts on their own: the buffer, the reorder window, error merging."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from trine import Pipeline, StageError
from trine._pipeline._buffer import END, Buffer
from trine._pipeline._ordered import ReorderWindow
from trine._pipeline._run import Run, merge_errors

# --------------------------------------------------------------------------- buffer


def written(capacity: int, writers: int = 1) -> Buffer:
    buffer = Buffer(capacity)
    for _ in range(writers):
        buffer.add_writer()
    return buffer


async def test_a_buffer_holds_at_most_its_capacity_in_order() -> None:
    """``put_nowait`` appends while there is room, and items come out first in, first out."""
    buffer = written(2)
    assert [buffer.put_nowait(item) for item in "abc"] == [True, True, False]
    assert [buffer.take(), buffer.take()] == ["a", "b"]
    assert buffer.invariant_violations() == []


async def test_a_parked_writers_item_is_moved_in_when_a_reader_makes_room() -> None:
    """Writers park with their item; the reader that takes one moves the oldest writer's in."""
    buffer = written(1, writers=2)
    order: list[str] = []

    async def write(item: str) -> None:
        await buffer.put(item)
        order.append(f"put {item}")

    assert buffer.put_nowait("a")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(write, "b")
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(write, "c")
        await trio.testing.wait_all_tasks_blocked()
        assert buffer.invariant_violations() == []
        assert buffer.take() == "a"  # room for one: "b" moves in, its writer is done
        assert list(buffer.items) == ["b"]
        await trio.testing.wait_all_tasks_blocked()
        assert order == ["put b"]
        assert buffer.take() == "b"
        assert buffer.take() == "c"
    assert order == ["put b", "put c"]


async def test_a_rendezvous_hands_an_item_over_only_to_a_reader() -> None:
    """With capacity 0 an item waits only once handed to a reader, as a memory channel's."""
    buffer = written(0)
    assert not buffer.put_nowait("early")  # nobody is reading
    got: list[Any] = []

    async def read() -> None:
        got.append(await buffer.get())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        assert buffer.put_nowait("a")  # handed to the parked reader
        assert not buffer.put_nowait("b")  # that reader is on its way: no room for more
        assert buffer.invariant_violations() == []
    assert got == ["a"]
    # A writer that parks first is met by the next reader, which takes its item directly.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(buffer.put, "c")
        await trio.testing.wait_all_tasks_blocked()
        assert buffer.invariant_violations() == []
        assert await buffer.get() == "c"


async def test_a_write_wakes_one_reader_and_the_items_travel_together() -> None:
    """Items written together wake one parked reader, not one each; it hands off before blocking."""
    buffer = written(10)
    took: dict[str, list[int]] = {"r1": [], "r2": []}
    release = trio.Event()

    async def read(name: str) -> None:
        while await buffer.wait_item():
            took[name].append(buffer.take())
            buffer.hand_off()  # about to block in "its function"
            await release.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read, "r1")
        nursery.start_soon(read, "r2")
        await trio.testing.wait_all_tasks_blocked()
        for item in range(3):
            buffer.put_nowait(item)
        assert len(buffer._getters) == 1  # one reader woken for three items
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(took["r1"] + took["r2"]) == [0, 1]  # the second was handed off to
        assert buffer.invariant_violations() == []
        nursery.cancel_scope.cancel()


def test_grow_starts_a_reader_once_while_it_is_on_its_way() -> None:
    """With nobody reading, a write starts a reader through ``grow``, and only one."""
    buffer = written(10)
    starts: list[int] = []

    def grow() -> bool:
        starts.append(len(buffer.items))
        return True

    buffer.grow = grow
    for item in range(5):
        buffer.put_nowait(item)
    assert starts == [1]
    buffer.arrived()  # the new reader runs, takes one, then blocks in its function
    buffer.take()
    buffer.hand_off()
    assert starts == [1, 4]
    assert buffer.invariant_violations() == []


async def test_the_buffer_ends_after_its_last_writer_and_readers_see_the_end() -> None:
    """Readers see the end once every writer counted at wiring has left ``producing()``."""
    buffer = written(5, writers=2)
    with buffer.producing():
        buffer.put_nowait(1)
    assert not buffer.ended
    with buffer.producing():
        pass
    assert buffer.ended
    assert not buffer.aborted
    assert [await buffer.get(), await buffer.get()] == [1, END]
    buffer.abort()  # after a normal end: still a normal end
    assert not buffer.aborted


def test_a_writer_leaving_by_an_exception_cuts_the_buffer_short() -> None:
    """``producing()`` left by an exception marks the buffer aborted (bug 2's cure)."""
    buffer = written(5, writers=2)
    with pytest.raises(KeyError), buffer.producing():
        raise KeyError("cancelled, say")
    assert buffer.aborted
    assert buffer.ended


def test_the_invariant_check_reports_a_broken_buffer() -> None:
    """The checker the property tests run after every step can fail."""
    buffer = written(1)
    buffer.items.extend([1, 2])
    buffer.arrived()
    assert buffer.invariant_violations() == [
        "2 items wait in a buffer of 1",
        "more readers arrived than were woken or started",
    ]


# --------------------------------------------------------------------------- reorder window


def ordered_stage(workers: int = 2, buffer: int = 1) -> Any:
    pipe = Pipeline.source([0]).map(lambda x: x, workers=workers, buffer=buffer, ordered=True)
    run = Run(pipe._stages, pipe._source_state, 10)
    stage = run.stage_runs[0]
    stage.window = ReorderWindow(stage)
    return stage


async def test_the_window_gives_numbers_in_order_and_stops_at_its_size() -> None:
    """At most ``workers + buffer`` items are taken and not handed on, reservations included."""
    window = ordered_stage(workers=2, buffer=1).window
    assert [window.reserve() for _ in range(4)] == [True, True, True, False]
    assert [window.claim(), window.claim()] == [0, 1]
    window.leave()
    assert window.invariant_violations() == []
    assert (window.taken, window.reserved, window.emitted) == (2, 0, 0)


async def test_results_leave_in_order_whatever_order_they_finish_in() -> None:
    """A later result waits for its turn; the oldest one's finish hands on both, in order."""
    stage = ordered_stage(workers=3, buffer=1)
    window = stage.window
    for _ in range(3):
        window.reserve()
    numbers = [window.claim() for _ in range(3)]
    assert numbers == [0, 1, 2]
    assert not window.pass_nowait(2, "c", keep=True)  # not its turn
    await window.finish(2, ["c"])
    assert not window.pass_nowait(0, "a", keep=True)  # its turn, but a later result waits
    await window.finish(0, ["a"])
    assert list(stage.output.items) == ["a"]
    await window.finish(1, ["b"])
    assert list(stage.output.items) == ["a", "b", "c"]
    assert (window.emitted, window.results) == (3, {})
    window.reserve()
    assert window.pass_nowait(window.claim(), "d", keep=True)  # the common case: at once
    assert list(stage.output.items) == ["a", "b", "c", "d"]
    assert window.invariant_violations() == []


def test_the_window_check_reports_a_broken_window() -> None:
    """The checker the property tests run after every step can fail."""
    window = ordered_stage().window
    window.results[5] = ["x"]
    assert window.invariant_violations() == ["item 5 is outside [0, 0)"]


# --------------------------------------------------------------------------- merging errors


def group(*errors: BaseException) -> BaseExceptionGroup[BaseException]:
    return BaseExceptionGroup("Exceptions from Trio nursery", list(errors))


def cancelled() -> trio.Cancelled:
    return trio.Cancelled._create()  # type: ignore[attr-defined, no-any-return]


def failure() -> StageError:
    return StageError("stage 'm' failed on item 1: KeyError: 1", stage="m", item=1)


def test_only_cancellations_are_raised_as_they_came() -> None:
    """Nothing but Cancelled: the nursery's own group, for the scope that cancelled."""
    raised = group(cancelled(), group(cancelled()))
    assert merge_errors(raised, None, None) is raised


def test_a_failure_beats_the_cancellations_around_it() -> None:
    """A stage failure during an outer cancellation is raised alone (bug 1)."""
    error = failure()
    assert merge_errors(group(cancelled(), group(cancelled())), error, cancelled()) is error


def test_a_keyboard_interrupt_from_a_stage_is_raised_bare() -> None:
    """KeyboardInterrupt nested in a stage's nursery group comes out alone (bug 3)."""
    interrupt = KeyboardInterrupt()
    assert merge_errors(group(group(interrupt), cancelled()), None, cancelled()) is interrupt


def test_the_blocks_exception_is_raised_as_the_object_the_block_raised() -> None:
    """The block's own error comes out bare, even a group Trio rebuilt on the way (bug 9)."""
    error = ValueError("mine")
    assert merge_errors(group(error, cancelled()), None, error) is error
    mine = ExceptionGroup("mine", [KeyError(1), OSError(2)])
    rebuilt = mine.derive(list(mine.exceptions))  # what a cancel scope's split() does
    assert merge_errors(group(rebuilt, cancelled()), None, mine) is mine


def test_a_failure_and_the_blocks_exception_are_raised_together() -> None:
    """Two real errors: one group, the stage's failure first."""
    error, block = failure(), OSError("cleaning up failed")
    merged = merge_errors(group(block, cancelled()), error, block)
    assert isinstance(merged, BaseExceptionGroup)
    assert str(merged) == "a pipeline stage failed and the open() block raised (2 sub-exceptions)"
    assert list(merged.exceptions) == [error, block]


def test_a_block_cancelled_inside_its_own_nursery_counts_as_cancelled() -> None:
    """A block that raised a group of cancellations only adds nothing to a failure."""
    error = failure()
    block = group(cancelled())
    assert merge_errors(group(block), error, block) is error
