"""Batcher: single loads coalesced into batch calls, with per-item results and cancellation."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import overload

import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
import trine.testing
from trine._util import NotAwaitableError


class Backend:
    """A batch function that records each batch and when it was sent."""

    def __init__(self, duration: float = 1.0) -> None:
        self.duration = duration
        self.batches: list[tuple[list[object], float]] = []
        self.ends: list[str] = []

    async def load_many(self, keys: list[object]) -> list[object]:
        self.batches.append((list(keys), trio.current_time()))
        try:
            await trio.sleep(self.duration)
        except trio.Cancelled:
            self.ends.append(f"cancelled at {trio.current_time():g}")
            raise
        self.ends.append(f"done at {trio.current_time():g}")
        return [f"value of {key}" for key in keys]


async def _load(batcher: trine.Batcher, key: object, out: list[object]) -> None:
    out.append((key, await batcher.load(key), trio.current_time()))


async def test_a_full_batch_is_sent_at_once_and_the_rest_after_max_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """250 loads at t=0 with max_size=100: two batches go at t=0, the last 50 at t=1."""
    backend = Backend()
    results: list[object] = []
    async with trine.Batcher(
        backend.load_many, max_size=100, max_wait=1.0, max_concurrent=4
    ) as batcher:
        async with trio.open_nursery() as nursery:
            for key in range(250):
                nursery.start_soon(_load, batcher, key, results)
        statistics = batcher.statistics()
    assert [(len(keys), sent) for keys, sent in backend.batches] == [
        (100, 0.0),
        (100, 0.0),
        (50, 1.0),
    ]
    assert sorted(key for key, _, _ in results) == list(range(250))  # type: ignore[misc]
    assert all(value == f"value of {key}" for key, value, _ in results)  # type: ignore[misc]
    assert [done for _, _, done in results].count(1.0) == 200  # type: ignore[misc]
    assert [done for _, _, done in results].count(2.0) == 50  # type: ignore[misc]
    assert statistics.batch_sizes == {50: 1, 100: 2}
    assert (statistics.items, statistics.batches, statistics.waiting) == (250, 3, 0)
    assert statistics.batch_latency.count == 3
    assert statistics.batch_latency.mean == 1.0


async def test_a_batch_never_waits_past_max_wait(autojump_clock: trio.testing.MockClock) -> None:
    """Keys arriving at t=0 and t=0.3 go together at t=0.5, max_wait after the first."""
    backend = Backend()
    results: list[object] = []
    async with (
        trine.Batcher(backend.load_many, max_size=100, max_wait=0.5, max_concurrent=2) as batcher,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(_load, batcher, "a", results)
        await trio.sleep(0.3)
        nursery.start_soon(_load, batcher, "b", results)
        await trio.sleep(0.5)  # t=0.8: a new batch, with its own max_wait
        nursery.start_soon(_load, batcher, "c", results)
    assert backend.batches == [(["a", "b"], 0.5), (["c"], 1.3)]
    assert sorted(results) == [  # type: ignore[type-var]
        ("a", "value of a", 1.5),
        ("b", "value of b", 1.5),
        ("c", "value of c", 2.3),
    ]


async def test_max_wait_zero_coalesces_one_tick(autojump_clock: trio.testing.MockClock) -> None:
    """With max_wait=0, the loads started together go in one batch, sent without waiting."""
    backend = Backend()
    results: list[object] = []
    async with trine.Batcher(backend.load_many) as batcher, trio.open_nursery() as nursery:
        for key in range(5):
            nursery.start_soon(_load, batcher, key, results)
    assert [(sorted(keys), sent) for keys, sent in backend.batches] == [([0, 1, 2, 3, 4], 0.0)]


async def test_at_most_max_concurrent_batch_calls_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Four full batches with max_concurrent=2 and 1 s calls: two at t=0, two at t=1."""
    backend = Backend()
    results: list[object] = []
    async with (
        trine.Batcher(backend.load_many, max_size=2, max_wait=10.0, max_concurrent=2) as batcher,
        trio.open_nursery() as nursery,
    ):
        for key in range(8):
            nursery.start_soon(_load, batcher, key, results)
        await trio.testing.wait_all_tasks_blocked()
        statistics = batcher.statistics()
        assert (statistics.in_flight, statistics.waiting) == (2, 4)
    assert sorted(sent for _, sent in backend.batches) == [0.0, 0.0, 1.0, 1.0]
    assert len(results) == 8


async def test_a_full_queue_refuses_at_once(autojump_clock: trio.testing.MockClock) -> None:
    """With max_waiting=3, a fourth unsent key raises BatcherFull at once; a repeat joins."""
    backend = Backend()
    results: list[object] = []
    async with trine.Batcher(
        backend.load_many, max_size=10, max_wait=1.0, max_waiting=3
    ) as batcher:
        async with trio.open_nursery() as nursery:
            for key in "abc":
                nursery.start_soon(_load, batcher, key, results)
            await trio.testing.wait_all_tasks_blocked()
            with trio.testing.assert_checkpoints(), pytest.raises(trine.BatcherFull) as refused:
                await batcher.load("d")
            nursery.start_soon(_load, batcher, "a", results)  # dedupe: no new item
        assert str(refused.value) == (
            "batcher full: 3 items already wait to be sent (max_waiting=3)"
        )
        assert refused.value.max_waiting == 3
        assert isinstance(refused.value, trine.TrineError)
        assert batcher.statistics().items == 4
    assert [(sorted(keys), sent) for keys, sent in backend.batches] == [(["a", "b", "c"], 1.0)]
    assert len(results) == 4


async def test_a_mapping_result_is_read_by_key() -> None:
    """The batch function may return a mapping; a key missing from it fails with KeyError."""

    async def by_key(keys: list[str]) -> Mapping[str, int]:
        return {key: len(key) for key in keys if key != "missing"}

    async with trine.Batcher(by_key, max_wait=0) as batcher:
        assert await batcher.load("abc") == 3
        with pytest.raises(KeyError) as missing:
            await batcher.load("missing")
    assert missing.value.args == ("missing",)
    assert missing.value.__notes__ == ["load_many returned a mapping with no result for this key"]


async def test_an_exception_in_the_results_fails_only_its_item(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """DataLoader's convention: an Exception instance in the list fails that key only."""

    async def some_missing(keys: list[int]) -> Sequence[str | Exception]:
        return [LookupError(key) if key % 2 else str(key) for key in keys]

    outcomes: dict[int, object] = {}

    async def load(batcher: trine.Batcher[int, str], key: int) -> None:
        try:
            outcomes[key] = await batcher.load(key)
        except LookupError as exc:
            outcomes[key] = exc

    async with trine.Batcher(some_missing, max_wait=0.1) as batcher:
        async with trio.open_nursery() as nursery:
            for key in range(4):
                nursery.start_soon(load, batcher, key)
        assert batcher.statistics().batches == 1
    assert outcomes[0] == "0"
    assert outcomes[2] == "2"
    assert isinstance(outcomes[1], LookupError)
    assert isinstance(outcomes[3], LookupError)


async def test_a_batch_call_that_raises_fails_every_item(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every load of a batch whose call raised gets that same exception."""

    async def down(keys: list[int]) -> list[int]:
        raise ConnectionError("backend down")

    caught: list[BaseException] = []

    async def load(batcher: trine.Batcher[int, int], key: int) -> None:
        with pytest.raises(ConnectionError, match=r"^backend down$") as info:
            await batcher.load(key)
        caught.append(info.value)

    async with trine.Batcher(down, max_wait=0.1) as batcher:
        async with trio.open_nursery() as nursery:
            for key in range(3):
                nursery.start_soon(load, batcher, key)
        assert batcher.statistics().failed_batches == 1
    assert len(caught) == 3
    assert caught[0] is caught[1] is caught[2]


@pytest.mark.parametrize(
    ("returned", "error", "message"),
    [
        (
            [1],
            ValueError,
            r"^load_many returned 1 results for 2 keys: it must return one result per key",
        ),
        ("ab", TypeError, r"^load_many must return a sequence with one result per key"),
        (None, TypeError, r"^load_many must return a sequence .*, got None$"),
    ],
)
async def test_malformed_results_are_a_clear_error_for_every_item(
    autojump_clock: trio.testing.MockClock, returned: object, error: type, message: str
) -> None:
    """A list of the wrong length, a string or None fails each load, saying what was wrong."""

    async def malformed(keys: list[int]) -> object:
        return returned

    failures: list[BaseException] = []

    async def load(batcher: trine.Batcher[int, object], key: int) -> None:
        with pytest.raises(error, match=message) as info:
            await batcher.load(key)
        failures.append(info.value)

    async with trine.Batcher(malformed, max_wait=0.1) as batcher, trio.open_nursery() as nursery:  # type: ignore[arg-type]
        nursery.start_soon(load, batcher, 1)
        nursery.start_soon(load, batcher, 2)
    assert len(failures) == 2


async def test_batcher_mapping_result_for_unhashable_keys_fails_the_loads_not_the_batcher(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Results that cannot be matched to the keys fail that batch's loads; the batcher lives on."""
    calls: list[list[object]] = []

    async def load_many(keys: list[object]) -> dict[object, object]:
        calls.append(keys)
        return {} if len(calls) == 1 else dict.fromkeys(map(tuple, keys), "ok")  # type: ignore[arg-type]

    async with trine.Batcher(load_many, dedupe=False) as batcher:
        message = (
            r"^load_many returned a mapping, but key \[1, 2\] cannot be looked up in it: "
            r"TypeError: unhashable type: 'list'$"
        )
        with pytest.raises(TypeError, match=message) as info:
            await batcher.load([1, 2])
        assert type(info.value.__cause__) is TypeError
        assert await batcher.load((3,)) == "ok"  # the batcher still serves


async def test_batcher_results_that_raise_while_matched_fail_the_loads_not_the_batcher(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A result sequence that raises as it is read fails the loads not yet answered, with a note."""

    class Broken(Sequence[str]):
        def __init__(self, size: int) -> None:
            self.size = size

        def __len__(self) -> int:
            return self.size

        @overload
        def __getitem__(self, index: int) -> str: ...
        @overload
        def __getitem__(self, index: slice) -> Sequence[str]: ...
        def __getitem__(self, index: int | slice) -> str | Sequence[str]:
            if index == 1:
                raise RuntimeError("cannot read row 1")
            return "row 0"

    calls = 0

    async def load_many(keys: list[int]) -> Sequence[str]:
        nonlocal calls
        calls += 1
        return Broken(len(keys)) if calls == 1 else ["ok"] * len(keys)

    results: dict[int, object] = {}

    async def load(batcher: trine.Batcher[int, str], key: int) -> None:
        try:
            results[key] = await batcher.load(key)
        except RuntimeError as error:
            results[key] = error

    async with trine.Batcher(load_many, max_wait=0.1) as batcher:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(load, batcher, 0)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(load, batcher, 1)  # the batch's keys: [0, 1]
        error = results[1]
        assert results[0] == "row 0"
        assert isinstance(error, RuntimeError)
        assert error.__notes__ == ["raised while matching load_many's results to the keys"]
        assert await batcher.load(2) == "ok"  # the batcher still serves


async def test_equal_keys_in_one_batch_are_sent_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With dedupe (default) a repeated key is sent once; with dedupe=False once per load."""
    for dedupe, sent in ((True, ["a", "b"]), (False, ["a", "b", "a"])):
        backend = Backend()
        results: list[object] = []
        async with trine.Batcher(backend.load_many, max_wait=0.1, dedupe=dedupe) as batcher:
            async with trio.open_nursery() as nursery:
                for key in "aba":
                    nursery.start_soon(_load, batcher, key, results)
                    await trio.lowlevel.checkpoint()
            assert batcher.statistics().deduplicated == (1 if dedupe else 0)
        assert [sorted(keys) for keys, _ in backend.batches] == [sorted(sent)]
        assert sorted(key for key, _, _ in results) == ["a", "a", "b"]  # type: ignore[misc]


async def test_a_cancelled_load_leaves_its_batch_before_it_is_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A load cancelled while its batch fills is dropped from it, unless its key has
    another waiter."""
    backend = Backend()
    results: list[object] = []

    async def cancelled(batcher: trine.Batcher, key: str) -> None:
        with trio.move_on_after(0.5):
            await batcher.load(key)

    async with (
        trine.Batcher(backend.load_many, max_wait=1.0) as batcher,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(cancelled, batcher, "gone")
        nursery.start_soon(cancelled, batcher, "shared")
        nursery.start_soon(_load, batcher, "shared", results)
        nursery.start_soon(_load, batcher, "kept", results)
        await trio.sleep(0.6)
        assert batcher.statistics().waiting == 2
    assert [(sorted(keys), sent) for keys, sent in backend.batches] == [(["kept", "shared"], 1.0)]
    assert sorted(results) == [  # type: ignore[type-var]
        ("kept", "value of kept", 2.0),
        ("shared", "value of shared", 2.0),
    ]


async def test_a_load_cancelled_in_flight_discards_its_result(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A waiter cancelled while its batch call runs leaves at once; the others get theirs."""
    backend = Backend()
    results: list[object] = []
    cancelled_at: list[float] = []

    async def cancelled(batcher: trine.Batcher, key: str) -> None:
        with trio.move_on_after(0.5):
            await batcher.load(key)
        cancelled_at.append(trio.current_time())

    async with (
        trine.Batcher(backend.load_many, max_wait=0.1) as batcher,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(cancelled, batcher, "a")
        nursery.start_soon(_load, batcher, "b", results)
    assert cancelled_at == [0.5]
    assert results == [("b", "value of b", 1.1)]
    assert backend.ends == ["done at 1.1"]


async def test_a_sent_batch_nobody_waits_for_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """When every load of a sent batch is cancelled, its call is cancelled too."""
    backend = Backend()
    async with trine.Batcher(backend.load_many, max_wait=0.1) as batcher:
        with trio.move_on_after(0.5):
            async with trio.open_nursery() as nursery:
                for key in "ab":
                    nursery.start_soon(batcher.load, key)
        await trio.testing.wait_all_tasks_blocked()
        statistics = batcher.statistics()
    assert backend.ends == ["cancelled at 0.5"]
    assert (statistics.in_flight, statistics.waiting, statistics.batch_latency.count) == (0, 0, 0)


async def test_an_emptied_batch_starts_afresh(autojump_clock: trio.testing.MockClock) -> None:
    """If every key of the open batch leaves, the next key opens a batch with a fresh max_wait."""
    backend = Backend()
    results: list[object] = []
    async with trine.Batcher(backend.load_many, max_wait=1.0) as batcher:
        with trio.move_on_after(0.5):
            await batcher.load("gone")
        await _load(batcher, "next", results)
    assert backend.batches == [(["next"], 1.5)]
    assert results == [("next", "value of next", 2.5)]


async def test_batch_calls_go_through_the_policy(autojump_clock: trio.testing.MockClock) -> None:
    """With policy=, a failing batch call is retried as a whole, once for all its loads."""
    calls: list[float] = []

    async def flaky(keys: list[int]) -> list[int]:
        calls.append(trio.current_time())
        if len(calls) == 1:
            raise OSError("flaky")
        return [key * 10 for key in keys]

    policy = trine.Policy(retry=trine.Retry(attempts=2, backoff=trine.Backoff.constant(1.0)))
    results: list[object] = []
    async with (
        trine.Batcher(flaky, max_wait=0.1, policy=policy) as batcher,
        trio.open_nursery() as nursery,
    ):
        for key in (1, 2):
            nursery.start_soon(_load, batcher, key, results)
    assert calls == [0.1, 1.1]
    assert sorted(results) == [(1, 10, 1.1), (2, 20, 1.1)]  # type: ignore[type-var]


async def test_no_waits_reaches_a_batch_call_the_timer_sends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A batch opened by a load inside ``no_waits()`` skips its policy's backoff, timer or not."""
    calls: list[float] = []

    async def flaky(keys: list[int]) -> list[int]:
        calls.append(trio.current_time())
        if len(calls) == 1:
            raise OSError("flaky")
        return [key * 10 for key in keys]

    policy = trine.Policy(retry=trine.Retry(attempts=2, backoff=trine.Backoff.constant(10.0)))
    async with trine.Batcher(flaky, max_wait=0.5, policy=policy) as batcher:
        with trine.testing.no_waits():
            assert await batcher.load(1) == 10  # sent by the timer task, at 0.5
    assert calls == [0.5, 0.5]


@pytest.mark.parametrize("inside", ["first", "second"])
async def test_no_waits_follows_each_batch_through_a_reused_sender(
    autojump_clock: trio.testing.MockClock, inside: str
) -> None:
    """A sender that goes on to a queued batch calls it with that batch's ``no_waits()`` setting."""
    calls: list[float] = []

    async def flaky(keys: list[int]) -> list[int]:
        calls.append(trio.current_time())
        await trio.sleep(1.0)
        if len(calls) == 2:  # the second batch's first attempt
            raise OSError("flaky")
        return [key * 10 for key in keys]

    policy = trine.Policy(retry=trine.Retry(attempts=2, backoff=trine.Backoff.constant(10.0)))
    results: list[object] = []
    async with (
        trine.Batcher(flaky, max_size=1, max_concurrent=1, policy=policy) as batcher,
        trio.open_nursery() as nursery,
    ):
        for key, which in ((1, "first"), (2, "second")):
            with trine.testing.no_waits() if which == inside else contextlib.nullcontext():
                nursery.start_soon(_load, batcher, key, results)
            await trio.sleep(0.5)  # each load fills a batch; the second waits behind the first
    # The first batch's sender calls the second when the first is done, at 1.0.
    retried_at = 2.0 if inside == "second" else 12.0
    assert calls == [0.0, 1.0, retried_at]
    assert results == [(1, 10, 1.0), (2, 20, retried_at + 1.0)]


async def test_service_block_cancelled_from_outside_leaves_as_a_bare_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An outer cancellation leaves a Batcher's block (its timer running) as a bare Cancelled."""

    async def load_many(keys: list[int]) -> list[int]:
        return keys

    seen: list[BaseException] = []
    with trio.move_on_after(1.0):
        try:
            async with trine.Batcher(load_many):
                await trio.sleep(5.0)
        except BaseException as error:  # recorded and re-raised: the scope must catch it
            seen.append(error)
            raise
    assert [type(error) for error in seen] == [trio.Cancelled]


async def test_service_exit_cancelled_from_outside_leaves_as_a_bare_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A block that ended, cancelled from outside as its batch calls finish, leaves as Cancelled."""

    async def load_many(keys: list[int]) -> list[int]:
        try:
            await trio.sleep(10.0)
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(2.0)  # a slow cleanup
        return keys

    seen: list[BaseException] = []
    with trio.move_on_after(1.0):
        try:
            async with trine.Batcher(load_many) as batcher:
                with trio.move_on_after(0.5):
                    await batcher.load(1)  # its batch call is cancelled and cleans up
        except BaseException as error:
            seen.append(error)
            raise
    assert trio.current_time() == 2.5
    assert [type(error) for error in seen] == [trio.Cancelled]


async def test_leaving_the_block_tells_outside_loads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Loads from outside the block, queued or in flight, get ClosedResourceError at its end."""
    backend = Backend(duration=10)
    outcomes: list[str] = []

    async def outside(batcher: trine.Batcher, key: str) -> None:
        try:
            await batcher.load(key)
        except trio.ClosedResourceError as exc:
            outcomes.append(f"{key}: {exc} at {trio.current_time():g}")

    async with (
        trio.open_nursery() as nursery,
        trine.Batcher(backend.load_many, max_wait=1.0) as batcher,
    ):
        nursery.start_soon(outside, batcher, "sent")
        await trio.sleep(1.5)
        nursery.start_soon(outside, batcher, "waiting")
        await trio.sleep(0.5)
    closed = "the Batcher was closed (its async with block ended) before this call's result came"
    assert sorted(outcomes) == [f"sent: {closed} at 2", f"waiting: {closed} at 2"]
    assert backend.ends == ["cancelled at 2"]
    with pytest.raises(trio.ClosedResourceError, match=r"^this Batcher is closed"):
        await batcher.load("late")
    with pytest.raises(RuntimeError, match=r"^this Batcher is not open"):
        await trine.Batcher(backend.load_many).load("early")


async def test_a_sync_batch_function_is_named_in_the_error() -> None:
    """A batch function that is not async fails each load with NotAwaitableError naming it."""

    def sync(keys: list[int]) -> list[int]:
        return keys

    async with trine.Batcher(sync) as batcher:  # type: ignore[arg-type]
        with pytest.raises(NotAwaitableError, match=r"^load_many must be an async function"):
            await batcher.load(1)


async def test_bad_arguments_are_refused() -> None:
    """Settings are checked at construction, keys at the load."""
    backend = Backend()
    with pytest.raises(ValueError, match=r"^max_size must be >= 1, got 0$"):
        trine.Batcher(backend.load_many, max_size=0)
    with pytest.raises(ValueError, match=r"^max_wait must be >= 0, got -1$"):
        trine.Batcher(backend.load_many, max_wait=-1)
    with pytest.raises(TypeError, match=r"^dedupe must be True or False, got 1$"):
        trine.Batcher(backend.load_many, dedupe=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^load_many must be an async function"):
        trine.Batcher(backend.load_many([]))  # type: ignore[arg-type]

    def load_each(keys: list[int]) -> Iterator[int]:
        yield from keys

    with pytest.raises(
        TypeError, match=r"^load_many must be an async function, got the generator function "
    ):
        trine.Batcher(load_each)  # type: ignore[arg-type]
    async with trine.Batcher(backend.load_many) as batcher:
        with pytest.raises(TypeError, match=r"^key must be hashable, got \[1\]$"):
            await batcher.load([1])
    assert "0 waiting, 0/1 batch calls in flight" in repr(batcher)


async def test_a_refused_unhashable_key_leaves_no_batch_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The next key opens its own batch: it is sent max_wait after it, not after the refused one."""
    backend = Backend()
    async with trine.Batcher(backend.load_many, max_wait=1.0) as batcher:
        with pytest.raises(TypeError, match=r"^key must be hashable, got \[1\]$"):
            await batcher.load([1])
        await trio.sleep(0.5)
        assert await batcher.load(7) == "value of 7"
    assert backend.batches == [([7], 1.5)]
    assert batcher.statistics().items == 1


async def test_a_refused_unhashable_key_is_a_checkpoint() -> None:
    """Every load is a checkpoint, a refused one too."""
    backend = Backend()
    async with trine.Batcher(backend.load_many) as batcher:
        with trio.testing.assert_checkpoints(), pytest.raises(TypeError):
            await batcher.load([1])


# -- the property: every load gets its own key's result, whatever is cancelled -----------

loads_strategy = st.lists(
    st.tuples(
        st.integers(0, 6),  # key
        st.integers(0, 20),  # start, tenths
        st.one_of(st.none(), st.integers(0, 20)),  # cancelled after, tenths
    ),
    max_size=30,
)


@given(
    loads=loads_strategy,
    max_size=st.integers(1, 5),
    max_wait=st.integers(0, 5),
    max_concurrent=st.integers(1, 3),
    dedupe=st.booleans(),
    failing=st.sets(st.integers(0, 6)),
)
def test_every_load_gets_exactly_its_own_keys_result(
    loads: list[tuple[int, int, int | None]],
    max_size: int,
    max_wait: int,
    max_concurrent: int,
    dedupe: bool,
    failing: set[int],
) -> None:
    """Property: with loads cancelled at arbitrary points, every load that is not cancelled
    gets its own key's value (or its own key's error), batches never exceed max_size,
    a batch of distinct keys when deduplicated, and nothing waits or runs afterwards."""
    batches: list[list[int]] = []

    async def load_many(keys: list[int]) -> list[object]:
        batches.append(list(keys))
        await trio.sleep(0.3)
        return [KeyError(key) if key in failing else ("value", key) for key in keys]

    async def loader(batcher: trine.Batcher, key: int, start: int, cancel: int | None) -> None:
        await trio.sleep(start / 10)
        with trio.move_on_after(math.inf if cancel is None else cancel / 10):
            if key in failing:
                with pytest.raises(KeyError) as info:
                    await batcher.load(key)
                assert info.value.args == (key,)
            else:
                assert await batcher.load(key) == ("value", key)

    async def main() -> None:
        async with trine.Batcher(
            load_many,
            max_size=max_size,
            max_wait=max_wait / 10,
            max_concurrent=max_concurrent,
            dedupe=dedupe,
        ) as batcher:
            async with trio.open_nursery() as nursery:
                for key, start, cancel in loads:
                    nursery.start_soon(loader, batcher, key, start, cancel)
            await trio.testing.wait_all_tasks_blocked()
            statistics = batcher.statistics()
            assert (statistics.waiting, statistics.in_flight) == (0, 0)
            assert sum(statistics.batch_sizes.values()) == statistics.batches == len(batches)
        for keys in batches:
            assert 1 <= len(keys) <= max_size
            if dedupe:
                assert len(set(keys)) == len(keys)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_every_load_is_a_checkpoint() -> None:
    """load() always yields to the scheduler and checks for cancellation."""

    async def instant(keys: list[int]) -> list[int]:
        return keys

    async with trine.Batcher(instant) as batcher:
        with trio.testing.assert_checkpoints():
            assert await batcher.load(1) == 1
