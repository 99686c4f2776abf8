"""TaskPool: a bounded nursery for work found as it runs."""

from __future__ import annotations

import contextvars
import re
from collections import Counter
from typing import Any

import outcome
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import trine
from trine.testing import ConcurrencyProbe, assert_takes


async def sleep_then(seconds: float, value: Any = None) -> Any:
    await trio.sleep(seconds)
    return seconds if value is None else value


# -- starting and the limit ---------------------------------------------------------


async def test_start_waits_while_limit_tasks_run(autojump_clock: trio.testing.MockClock) -> None:
    """start returns at once while a slot is free, then when one comes free; FIFO."""
    probe = ConcurrencyProbe()
    returned: list[float] = []

    async def job(n: int) -> int:
        with probe.track(n):
            await trio.sleep(1.0 + n * 0.1)
        return n

    async with trine.TaskPool(limit=2, max_results=5) as pool:
        for n in range(5):
            await pool.start(job, n)
            returned.append(trio.current_time())
        results = [r async for r in pool.results()]
    # job 0: 0-1.0, job 1: 0-1.1, job 2: 1.0-2.2, job 3: 1.1-2.4, job 4: 2.2-3.6
    assert returned == pytest.approx([0.0, 0.0, 1.0, 1.1, 2.2])
    assert results == [0, 1, 2, 3, 4]
    assert probe.peak == 2
    assert trio.current_time() == pytest.approx(3.6)


async def test_the_block_waiting_for_room_only_it_would_make_is_told(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The block starting more tasks than max_results before it reads would wait forever:
    start raises RuntimeError saying what to do instead."""
    pool: trine.TaskPool = trine.TaskPool(limit=2)

    async def start_five_then_read() -> None:
        async with pool:
            for n in range(5):
                await pool.start(sleep_then, 1.0, n)

    with pytest.raises(RuntimeError, match=r"^start would wait forever: 2 results are unread"):
        await start_five_then_read()
    assert pool.statistics().started == 3  # the third took the first free slot


async def test_try_start_never_waits(autojump_clock: trio.testing.MockClock) -> None:
    """try_start starts a task while a slot is free, and returns False (calling nothing) if not."""
    called: list[int] = []

    async def job(n: int) -> int:
        called.append(n)
        await trio.sleep(1.0)
        return n

    async with trine.TaskPool(limit=2, max_results=4) as pool:
        with trio.testing.assert_no_checkpoints():
            assert pool.try_start(job, 1)
            assert pool.try_start(job, 2)
            assert not pool.try_start(job, 3)
        await trio.sleep(1.5)
        assert pool.try_start(job, 4)
        results = [r async for r in pool.results()]
    assert sorted(called) == [1, 2, 4]
    assert sorted(results) == [1, 2, 4]


async def test_start_is_a_checkpoint(autojump_clock: trio.testing.MockClock) -> None:
    """start is a checkpoint even when it starts the task at once."""
    async with trine.TaskPool(limit=2) as pool:
        with trio.testing.assert_checkpoints():
            await pool.start(sleep_then, 0.0)


async def test_limit_one_the_only_task_starting_another_never_deadlocks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """At limit=1 the only task calling start hands its slot to the new task and goes on
    once that one has finished."""
    timeline: list[tuple[str, float]] = []

    async def child(name: str) -> str:
        timeline.append((f"{name} runs", trio.current_time()))
        await trio.sleep(1.0)
        return name

    async def parent(pool: trine.TaskPool[str]) -> str:
        await trio.sleep(0.5)
        await pool.start(child, "a")
        timeline.append(("parent goes on", trio.current_time()))
        await pool.start(child, "b")
        timeline.append(("parent goes on", trio.current_time()))
        return "parent"

    async with trine.TaskPool[str](limit=1) as pool:
        await pool.start(parent, pool)
        results = [r async for r in pool.results()]
    assert timeline == [
        ("a runs", 0.5),
        ("parent goes on", 1.5),
        ("b runs", 1.5),
        ("parent goes on", 2.5),
    ]
    assert results == ["a", "b", "parent"]
    assert pool.statistics().paused == 0


async def test_a_task_waiting_in_start_is_not_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """While a task of the pool waits in start, statistics count it paused, not running."""
    async with trine.TaskPool(limit=1) as pool:

        async def parent() -> None:
            await pool.start(sleep_then, 2.0)

        await pool.start(parent)
        await trio.sleep(1.0)
        stats = pool.statistics()
        assert (stats.running, stats.paused, stats.waiting) == (1, 1, 0)
        await trio.sleep(1.5)
        stats = pool.statistics()
        assert (stats.running, stats.paused, stats.started, stats.finished) == (0, 0, 2, 2)
        assert len([r async for r in pool.results()]) == 2


async def test_tasks_taking_their_slot_back_go_before_new_tasks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A freed slot goes to a paused task of the pool before the next task in line."""
    timeline: list[str] = []

    async with trine.TaskPool(limit=1, max_results=3) as pool:

        async def parent() -> None:
            await pool.start(sleep_then, 1.0, "child")
            timeline.append(f"parent back at {trio.current_time()}")
            await trio.sleep(1.0)

        async def outsider() -> None:
            await pool.start(sleep_then, 0.0, "late")
            timeline.append(f"outsider started at {trio.current_time()}")

        await pool.start(parent)
        await trio.sleep(0.5)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outsider)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics().waiting == 1
        assert len([r async for r in pool.results()]) == 3
    assert timeline == ["parent back at 1.0", "outsider started at 2.0"]


async def test_a_recursive_tree_finishes_within_the_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Tasks that start tasks that start tasks all run, never more than limit at once."""
    running = 0
    peak = 0

    async def node(pool: trine.TaskPool[int], depth: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1.0)
        for _ in range(2 if depth < 4 else 0):
            running -= 1  # waiting in start is not running
            await pool.start(node, pool, depth + 1)
            running += 1
            peak = max(peak, running)
        running -= 1
        return depth

    for limit in (1, 3):
        peak = 0
        async with trine.TaskPool[int](limit=limit) as pool:
            await pool.start(node, pool, 0)
            depths = Counter([r async for r in pool.results()])
        assert depths == {0: 1, 1: 2, 2: 4, 3: 8, 4: 16}
        assert peak == limit


async def test_a_helper_of_a_pool_task_waits_as_an_outsider(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A task started in a pool task's own nursery holds no slot: its start waits in line
    while the pool task keeps its slot (here until the pool task gives up on it)."""
    async with trine.TaskPool(limit=1) as pool:

        async def helper() -> None:
            await pool.start(sleep_then, 1.0, "from the helper")

        async def parent() -> str:
            with trio.move_on_after(3.0):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(helper)
                    await trio.testing.wait_all_tasks_blocked()
                    stats = pool.statistics()
                    assert (stats.running, stats.waiting, stats.paused) == (1, 1, 0)
            return "parent"

        with assert_takes(3.0):
            await pool.start(parent)
            results = [r async for r in pool.results()]
    assert results == ["parent"]
    assert pool.statistics().started == 1


async def test_a_task_cancelled_in_start_takes_its_slot_back_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A pool task cancelled while it waits in line in start runs its clean-up only once it
    has a slot again, so the clean-up runs within the limit too."""
    timeline: list[tuple[str, float]] = []

    async with trine.TaskPool(limit=1, max_results=5) as pool:

        async def blocker() -> None:
            timeline.append(("blocker runs", trio.current_time()))
            await trio.sleep(2.0)
            timeline.append(("blocker ends", trio.current_time()))

        async def parent() -> None:
            await trio.sleep(1.0)
            with trio.move_on_after(0.5):
                await pool.start(sleep_then, 0.0)  # behind the outsider: it waits
            timeline.append(("parent cleans up", trio.current_time()))

        async def outsider() -> None:
            await pool.start(blocker)

        await pool.start(parent)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(outsider)
        results = [r async for r in pool.results()]
    assert timeline == [
        ("blocker runs", 1.0),
        ("blocker ends", 3.0),
        ("parent cleans up", 3.0),
    ]
    assert len(results) == 2
    assert pool.statistics().started == 2


async def test_a_task_that_waited_to_start_sees_its_callers_contextvars(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A task whose start waited in line runs in a copy of its caller's context, as a task
    started at once does, not in the context of the task that freed the slot."""
    request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="unset")
    seen: list[tuple[str, str, float]] = []

    async def job(name: str) -> None:
        seen.append((name, request.get(), trio.current_time()))
        request.set("changed by the job")  # a task's changes stay in its own copy
        await trio.sleep(1.0)

    async def client(name: str, delay: float) -> None:
        await trio.sleep(delay)
        request.set(name)
        await pool.start(job, name)
        assert request.get() == name

    async with trine.TaskPool(limit=1, max_results=0) as pool:
        async with trio.open_nursery() as nursery:
            for n, name in enumerate(["req-1", "req-2", "req-3"]):
                nursery.start_soon(client, name, n * 0.1)
        await pool.start(job, "block")  # behind req-3: started by req-3's task
    assert seen == [
        ("req-1", "req-1", 0.0),
        ("req-2", "req-2", 1.0),
        ("req-3", "req-3", 2.0),
        ("block", "unset", 3.0),
    ]


# -- results ----------------------------------------------------------------------------


async def test_results_come_as_tasks_finish_or_in_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """results() yields in finish order by default, in start order with ordered=True."""
    for ordered, expected in ((False, [1.0, 2.0, 3.0]), (True, [3.0, 1.0, 2.0])):
        async with trine.TaskPool(limit=3, ordered=ordered) as pool:
            for seconds in (3.0, 1.0, 2.0):
                await pool.start(sleep_then, seconds)
            assert [r async for r in pool.results()] == expected


async def test_start_waits_while_max_results_are_unread(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With max_results unread results queued, start waits until one is read."""
    async with trine.TaskPool(limit=2, max_results=2) as pool:

        async def feed() -> str:
            for n in range(3):
                await pool.start(sleep_then, 1.0, n)
            return "fed"

        await pool.start(feed)
        await trio.sleep(5.0)
        stats = pool.statistics()
        # 0 and 1 finished at 1.0; feed waits in start for room for 2's result.
        assert (stats.unread, stats.started, stats.waiting, stats.paused) == (2, 3, 1, 1)
        first = await pool.results().__anext__()
        await trio.testing.wait_all_tasks_blocked()
        assert pool.statistics().started == 4
        rest = [r async for r in pool.results()]
    assert sorted(map(str, [first, *rest])) == ["0", "1", "2", "fed"]


async def test_results_read_as_they_come_keep_memory_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """However many tasks run, the unread results never pass max_results + limit - 1."""
    most_unread = 0
    async with trine.TaskPool(limit=3, max_results=2) as pool:

        async def feed() -> None:
            for n in range(200):
                await pool.start(sleep_then, 0.1 * (n % 5), n)

        await pool.start(feed)
        seen = 0
        async for _ in pool.results():
            most_unread = max(most_unread, pool.statistics().unread)
            seen += 1
            await trio.sleep(0.05)
    assert seen == 201
    assert most_unread <= 2 + 3 - 1


async def test_max_results_zero_keeps_no_results(autojump_clock: trio.testing.MockClock) -> None:
    """max_results=0 runs tasks for their effects; results() is refused."""
    async with trine.TaskPool(limit=2, max_results=0) as pool:
        for n in range(10):
            await pool.start(sleep_then, 1.0, n)
        with pytest.raises(
            RuntimeError,
            match=r"^this TaskPool keeps no results \(max_results=0\): "
            r"give max_results >= 1 to read them$",
        ):
            pool.results()
    stats = pool.statistics()
    assert (stats.finished, stats.unread, stats.dropped) == (10, 0, 0)
    assert trio.current_time() == 5.0


async def test_results_unread_when_the_block_ends_are_dropped_and_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The block's end drops the unread results, and those of tasks finishing after it."""
    async with trine.TaskPool(limit=3) as pool:
        await pool.start(sleep_then, 1.0)
        await pool.start(sleep_then, 2.0)
        await pool.start(sleep_then, 5.0)
        await trio.sleep(3.0)
    stats = pool.statistics()
    assert (stats.finished, stats.dropped, stats.unread) == (3, 3, 0)
    assert trio.current_time() == 5.0


async def test_the_results_iterator_ends_when_the_pool_is_idle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """results() ends once nothing runs or waits; a later round reads with a new results()."""
    async with trine.TaskPool(limit=2) as pool:
        await pool.start(sleep_then, 1.0)
        assert [r async for r in pool.results()] == [1.0]
        assert [r async for r in pool.results()] == []
        await pool.start(sleep_then, 2.0)
        assert [r async for r in pool.results()] == [2.0]


async def test_two_readers_at_once_is_an_error(autojump_clock: trio.testing.MockClock) -> None:
    """A second task waiting for a result while one already does is a BusyResourceError."""
    async with trine.TaskPool(limit=1) as pool:
        await pool.start(sleep_then, 1.0)

        async def read() -> None:
            async for _ in pool.results():
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(
                trio.BusyResourceError,
                match=r"^another task is already waiting for a TaskPool result$",
            ):
                await pool.results().__anext__()


async def test_results_after_the_block_are_refused(autojump_clock: trio.testing.MockClock) -> None:
    """results() after the block has ended is a RuntimeError that says to read inside it."""
    async with trine.TaskPool(limit=1) as pool:
        results = pool.results()
    message = r"^TaskPool results were read after the pool's block ended: read them inside it$"
    with pytest.raises(RuntimeError, match=message):
        pool.results()
    with pytest.raises(RuntimeError, match=message):
        await results.__anext__()


# -- errors ---------------------------------------------------------------------------


async def fail_after(seconds: float) -> None:
    await trio.sleep(seconds)
    raise ValueError(f"failed after {seconds}")


async def test_on_error_raise_the_first_failure_cancels_the_pool(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With on_error="raise" a failure cancels the block and every task, as a nursery."""
    probe = ConcurrencyProbe()

    async def slow() -> None:
        with probe.track("slow"):
            await trio.sleep(10.0)

    with (
        assert_takes(1.0),
        pytest.RaisesGroup(pytest.RaisesExc(ValueError, match=r"^failed after 1.0$")),
    ):
        async with trine.TaskPool(limit=3) as pool:
            await pool.start(slow)
            await pool.start(fail_after, 1.0)
            async for _ in pool.results():
                pass
    stats = pool.statistics()
    assert (stats.failed, stats.cancelled, stats.finished) == (1, 1, 1)
    assert probe.current == 0


async def test_after_a_failure_an_outsider_cannot_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Once a task has failed (on_error="raise"), start from outside the pool is refused,
    also for an outsider already waiting in line."""
    errors: list[str] = []

    async def outsider(pool: trine.TaskPool) -> None:
        try:
            await pool.start(sleep_then, 1.0)
        except RuntimeError as error:
            errors.append(str(error))

    async with trio.open_nursery() as nursery:
        with pytest.RaisesGroup(ValueError):
            async with trine.TaskPool(limit=1) as pool:
                await pool.start(fail_after, 1.0)
                nursery.start_soon(outsider, pool)
                await trio.sleep(2.0)
        nursery.start_soon(outsider, pool)
    assert errors == [
        "the TaskPool is shutting down: one of its tasks failed",
        "the TaskPool is closed: its block and all its tasks have finished",
    ]


async def test_on_error_collect_keeps_failures_as_outcomes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With on_error="collect" a failure cancels nothing and is that task's Outcome."""
    async with trine.TaskPool(limit=3, on_error="collect", ordered=True) as pool:
        await pool.start(sleep_then, 2.0)
        await pool.start(fail_after, 1.0)
        await pool.start(sleep_then, 3.0)
        results = [r async for r in pool.results()]
    assert results[0] == outcome.Value(2.0)
    assert isinstance(results[1], outcome.Error)
    assert str(results[1].error) == "failed after 1.0"
    assert results[2] == outcome.Value(3.0)
    stats = pool.statistics()
    assert (stats.finished, stats.failed) == (3, 1)
    assert stats.latency.count == 3
    assert (stats.latency.minimum, stats.latency.maximum) == (1.0, 3.0)


async def test_a_plain_function_is_a_type_error_at_start() -> None:
    """start(f) with a plain def function is a bare TypeError at the call; nothing starts."""

    def plain() -> int:
        return 1

    async with trine.TaskPool(limit=1, on_error="collect") as pool:
        with pytest.raises(
            TypeError,
            match=r"^fn must be an async function, but calling it returned 1, an int: "
            r"define it with async def$",
        ):
            await pool.start(plain)  # type: ignore[arg-type]
        assert pool.statistics().started == 0


async def test_a_coroutine_is_refused_with_what_to_pass() -> None:
    """start(fn(x)) is a TypeError saying to pass the function and its arguments."""
    async with trine.TaskPool(limit=1) as pool:
        with pytest.raises(TypeError, match=r"^fn must be an async function, got the coroutine"):
            await pool.start(sleep_then(1.0))  # type: ignore[arg-type]


async def test_a_non_awaitable_from_inside_is_raised_even_when_collecting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A NotAwaitableError inside a task is a programming error, never a collected result."""
    policy = trine.Policy(timeout=1.0)

    def plain() -> int:
        return 1

    with pytest.RaisesGroup(pytest.RaisesExc(TypeError, match=r"^fn must be an async function")):
        async with trine.TaskPool(limit=1, on_error="collect", policy=policy) as pool:
            await pool.start(plain)  # type: ignore[arg-type]


async def test_the_blocks_own_exception_leaves_as_itself(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An exception raised by the block cancels the tasks and leaves bare."""
    probe = ConcurrencyProbe()

    async def slow() -> None:
        with probe.track("slow"):
            await trio.sleep(10.0)

    pool: trine.TaskPool = trine.TaskPool(limit=2)

    async def fail_in_the_block() -> None:
        async with pool:
            await pool.start(slow)
            await trio.sleep(1.0)
            raise LookupError("from the block")

    with assert_takes(1.0), pytest.raises(LookupError, match=r"^from the block$"):
        await fail_in_the_block()
    assert probe.current == 0
    assert pool.statistics().cancelled == 1


async def test_outer_cancellation_cancels_everything(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A scope cancelled around the pool cancels the block and the tasks; none is a result."""
    with trio.move_on_after(1.5) as scope:
        async with trine.TaskPool(limit=2, on_error="collect") as pool:
            await pool.start(sleep_then, 1.0)
            await pool.start(sleep_then, 2.0)
            await pool.start(sleep_then, 2.0)
            async for _ in pool.results():
                pass
    assert scope.cancelled_caught
    stats = pool.statistics()
    assert (stats.finished, stats.cancelled) == (1, 2)


# -- life cycle and arguments ----------------------------------------------------------


async def test_the_pool_is_used_only_inside_its_block() -> None:
    """Starting before the block or after it, or entering twice, is a RuntimeError."""
    pool: trine.TaskPool = trine.TaskPool(limit=1)
    with pytest.raises(RuntimeError, match=r"^the TaskPool is not open: use it inside"):
        await pool.start(sleep_then, 0.0)
    async with pool:
        pass
    with pytest.raises(RuntimeError, match=r"^the TaskPool is closed"):
        pool.try_start(sleep_then, 0.0)
    with pytest.raises(RuntimeError, match=r"^a TaskPool can be entered only once"):
        async with pool:
            pass


async def test_policy_applies_to_every_task(autojump_clock: trio.testing.MockClock) -> None:
    """policy= sends every task's call through it (here a retry)."""
    attempts: Counter[str] = Counter()

    async def flaky(name: str) -> str:
        attempts[name] += 1
        if attempts[name] == 1:
            raise ConnectionError(name)
        return name

    policy = trine.Policy(retry=trine.Retry(attempts=2, backoff=trine.Backoff.constant(0.5)))
    async with trine.TaskPool(limit=2, policy=policy) as pool:
        await pool.start(flaky, "a")
        await pool.start(flaky, "b")
        assert sorted([r async for r in pool.results()]) == ["a", "b"]
    assert attempts == {"a": 2, "b": 2}
    assert trio.current_time() == 0.5


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"limit": 0}, ValueError, "limit must be >= 1, got 0"),
        ({"limit": 2, "on_error": "ignore"}, ValueError, "on_error must be one of 'raise', "),
        ({"limit": 2, "on_error": 1}, TypeError, "on_error must be 'raise' or 'collect', got 1"),
        ({"limit": 2, "max_results": -1}, ValueError, "max_results must be >= 0, got -1"),
        ({"limit": 2, "ordered": 1}, TypeError, "ordered must be True or False, got 1"),
        (
            {"limit": 2, "max_results": 0, "on_error": "collect"},
            ValueError,
            "max_results must be >= 1 with on_error='collect', got 0",
        ),
        ({"limit": 2, "policy": object()}, TypeError, "policy must have an async call"),
    ],
)
def test_bad_arguments_are_refused(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Every argument is checked at construction, naming it."""
    with pytest.raises(error, match=f"^{re.escape(message)}"):
        trine.TaskPool(**kwargs)


async def test_repr_and_statistics_show_the_state(autojump_clock: trio.testing.MockClock) -> None:
    """The repr and statistics() say how full the pool is."""
    pool: trine.TaskPool = trine.TaskPool(limit=2)
    assert repr(pool) == "<trine.TaskPool new running=0/2 waiting=0 unread=0>"
    async with pool:
        await pool.start(sleep_then, 1.0)
        assert repr(pool) == "<trine.TaskPool open running=1/2 waiting=0 unread=0>"
        await trio.sleep(1.5)
        assert repr(pool) == "<trine.TaskPool open running=0/2 waiting=0 unread=1>"
        assert pool.statistics().latency.mean == 1.0
    assert repr(pool) == "<trine.TaskPool closed running=0/2 waiting=0 unread=0>"


def test_subscripting_with_one_type_means_both() -> None:
    """TaskPool[str] at run time is TaskPool[str, str], as type checkers read it."""
    assert trine.TaskPool[str] == trine.TaskPool[str, str]


# -- properties -------------------------------------------------------------------------

_TASKS = 24


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    """A tree of tasks: each sleeps, then starts its children; some fail."""
    size = draw(st.integers(min_value=1, max_value=_TASKS))
    return {
        "durations": draw(st.lists(st.integers(0, 3), min_size=size, max_size=size)),
        "parents": [draw(st.integers(0, k - 1)) for k in range(1, size)],
        "tries": draw(st.lists(st.booleans(), min_size=size, max_size=size)),
        "fails": draw(st.sets(st.integers(0, size - 1), max_size=3)),
        "limit": draw(st.integers(1, 4)),
        "max_results": draw(st.integers(1, 4)),
        "ordered": draw(st.booleans()),
        "read_delay": draw(st.sampled_from([0.0, 0.5, 2.0])),
        # A cancellation from outside: at a fake time between wake-ups, or at an
        # arbitrary scheduler step (mid hand-off, mid start, mid read), or never.
        "cancel_at": draw(st.none() | st.integers(0, 12).map(lambda n: n + 0.25)),
        "cancel_step": draw(st.none() | st.integers(1, 100)),
        "outsider": draw(st.booleans()),
    }


@settings(max_examples=300, deadline=None)
@given(plan=plans())
def test_property_limit_memory_and_exactly_once(plan: dict[str, Any]) -> None:
    """For any tree of tasks starting tasks, cancelled at any moment or not: never more than
    limit run, the unread results stay under max_results + limit, the pool never
    deadlocks, and every started task's result is reported exactly once (read, dropped
    at the block's end, or its task cancelled)."""
    durations = plan["durations"]
    limit = plan["limit"]
    max_results = plan["max_results"]
    children: dict[int, list[int]] = {k: [] for k in range(len(durations))}
    for child, parent in enumerate(plan["parents"], start=1):
        children[parent].append(child)
    started: list[int] = []
    read: list[int] = []
    running = 0
    most_paused = 0
    pool: trine.TaskPool[int, outcome.Outcome[int]] = trine.TaskPool(
        limit=limit, on_error="collect", ordered=plan["ordered"], max_results=max_results
    )

    def check() -> None:
        nonlocal most_paused
        stats = pool.statistics()
        most_paused = max(most_paused, stats.paused)
        assert running <= limit
        assert stats.running <= limit
        # Each task paused in start still owes a result; in an ordered pool the task
        # the reader waits for may start tasks past the bound (it must not wait).
        assert stats.unread <= max_results + limit - 1 + most_paused + pool._past_bound

    async def task(k: int) -> int:
        nonlocal running
        running += 1
        check()
        try:
            await trio.sleep(durations[k])
            for child in children[k]:
                if plan["tries"][child] and pool.try_start(task, child):
                    started.append(child)
                    continue
                running -= 1  # waiting in start is not running
                try:
                    await pool.start(task, child)
                finally:
                    running += 1
                    check()
                started.append(child)
            if k in plan["fails"]:
                raise ValueError(k)
            return k
        finally:
            running -= 1

    async def outsider() -> None:
        for extra in range(len(durations), len(durations) + 3):
            children[extra] = []
            durations.append(1)
            await pool.start(task, extra)
            started.append(extra)

    scope = trio.CancelScope(
        deadline=plan["cancel_at"] if plan["cancel_at"] is not None else float("inf")
    )

    class CancelAtStep(trio.abc.Instrument):
        """Cancels the pool's surroundings just before the scheduler's n-th task step."""

        def __init__(self, step: int | None) -> None:
            self.steps = 0
            self.step = step

        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            self.steps += 1
            if self.steps == self.step:
                scope.cancel()

    async def main() -> None:
        with trio.fail_after(10_000):  # a deadlock fails here instead of hanging
            with scope:  # the MockClock starts at 0: cancel_at is a time from the start
                async with trio.open_nursery() as nursery, pool:
                    await pool.start(task, 0)
                    started.append(0)
                    if plan["outsider"]:
                        nursery.start_soon(outsider)
                        await trio.testing.wait_all_tasks_blocked()
                    async for result in pool.results():
                        check()
                        read.append(
                            result.value
                            if isinstance(result, outcome.Value)
                            else result.error.args[0]  # type: ignore[attr-defined]
                        )
                        await trio.sleep(plan["read_delay"])

    trio.run(
        main,
        clock=trio.testing.MockClock(autojump_threshold=0),
        instruments=[CancelAtStep(plan["cancel_step"])],
    )
    stats = pool.statistics()
    assert len(read) == len(set(read))  # none twice
    assert set(read) <= set(started)
    assert len(started) == len(set(started)) == stats.started
    assert len(read) + stats.dropped + stats.cancelled == stats.started
    assert stats.running == stats.paused == stats.waiting == stats.unread == 0
    assert running == 0
    if not scope.cancel_called:
        # Nothing cancelled: the whole tree ran and every result was read.
        assert sorted(read) == sorted(started) == sorted(children)
        assert stats.failed == len(plan["fails"])


async def test_a_pool_cancelled_from_outside_while_its_tasks_finish_leaves_as_a_bare_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The block ended, the pool waits for its tasks, outer deadline: one Cancelled."""
    seen: list[BaseException] = []
    with trio.move_on_after(1.0) as scope:
        try:
            async with trine.TaskPool(limit=2) as pool:
                await pool.start(trio.sleep, 5.0)
                await pool.start(trio.sleep, 5.0)
        except BaseException as error:  # recorded and re-raised: the scope must catch it
            seen.append(error)
            raise
    assert scope.cancelled_caught
    assert [type(error) for error in seen] == [trio.Cancelled]
    assert trio.current_time() == 1.0
