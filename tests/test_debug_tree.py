"""trine.debug.task_tree and dump_on_signal: the tree of known programs, on the fake clock."""

from __future__ import annotations

import io
import os
import signal
import sys
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import trine
import trine.debug


async def parked_in_user_code() -> None:
    """Blocks in nothing trine or Trio can name: the tree shows this line."""
    await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.SUCCEEDED)


PARKED_LINE = parked_in_user_code.__code__.co_firstlineno + 2


async def program(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """One task waiting on each kind of thing the tree describes."""
    rate = trine.RateLimiter(1, per=10.0)
    bulkhead = trine.Bulkhead(2, max_waiting=3)
    semaphore = trine.WeightedSemaphore(3)
    keyed = trine.KeyedLimiter(1, total=4)
    lock = trio.Lock()
    limiter = trio.CapacityLimiter(1)
    send, receive = trio.open_memory_channel[int](0)
    release = trio.Event()
    retry = trine.Retry(3, backoff=trine.Backoff.constant(4.0), name="fetch")
    graph = trine.TaskGraph()
    first = graph.add(trio.sleep, 5, name="compile")
    graph.add(trio.sleep, 1, deps=[first], name="link")

    async def hold(cm: Any) -> None:
        async with cm:
            await release.wait()

    async def fail() -> None:
        raise OSError("down")

    async def locked() -> None:
        async with lock:
            await release.wait()

    async with trio.open_nursery() as nursery:

        async def start(fn: Any, *args: Any, name: str) -> None:
            # One at a time, so which task gets a slot first is fixed.
            nursery.start_soon(fn, *args, name=name)
            await trio.testing.wait_all_tasks_blocked()

        await rate.acquire()
        await start(rate.acquire, name="acquire rate")
        for n in range(3):
            await start(hold, bulkhead.hold(), name=f"bulkhead {n}")
        await start(hold, semaphore.hold(3), name="weight 3")
        await start(hold, semaphore.hold(1), name="weight 1")
        await start(hold, keyed.hold("k"), name="key k 0")
        await start(hold, keyed.hold("k"), name="key k 1")
        await start(locked, name="lock owner")
        await start(lock.acquire, name="lock waiter")
        await start(hold, limiter, name="capacity 0")
        await start(hold, limiter, name="capacity 1")
        await start(receive.receive, name="receiver")
        await start(retry.call, fail, name="retrying")
        await start(graph.run, name="graph")
        await start(trio.sleep, 2.5, name="sleeper")
        await start(trio.sleep_forever, name="forever")
        await start(parked_in_user_code, name="parked")
        await trio.sleep(0.5)
        await trio.testing.wait_all_tasks_blocked()
        task_status.started(trio.lowlevel.current_task())
        await release.wait()
        nursery.cancel_scope.cancel()
    del send


async def test_the_tree_of_a_known_program(autojump_clock: trio.testing.MockClock) -> None:
    """Each blocked task says what it waits on, from statistics, in exact words."""
    async with trio.open_nursery() as nursery:
        task = await nursery.start(program, name="program")
        tree = trine.debug.task_tree(root=task)
        nursery.cancel_scope.cancel()
    assert tree == (
        "Trio task tree at t=0.5\n"
        "program: waiting for an Event\n"
        "└── nursery\n"
        "    ├── acquire rate: waiting for RateLimiter (1 per 10 s, 1 waiting)\n"
        "    ├── bulkhead 0: waiting for an Event\n"
        "    ├── bulkhead 1: waiting for an Event\n"
        "    ├── bulkhead 2: waiting in Bulkhead (2/2 in use, 1 waiting)\n"
        "    ├── capacity 0: waiting for an Event\n"
        "    ├── capacity 1: waiting for a CapacityLimiter (1/1 in use, 1 waiting)\n"
        "    ├── forever: sleeping forever\n"
        "    ├── graph: running TaskGraph (1 running, 0 ready, 1 pending, 0/2 done)\n"
        "    │   └── nursery\n"
        "    │       └── compile: sleeping until t=5 (in 4.5 s)\n"
        "    ├── key k 0: waiting for an Event\n"
        "    ├── key k 1: waiting for KeyedLimiter (1 per key; 1/4 in use over 1 key,"
        " 1 waiting)\n"
        "    ├── lock owner: waiting for an Event\n"
        "    ├── lock waiter: waiting for a Lock held by 'lock owner' (1 waiting)\n"
        f"    ├── parked: in parked_in_user_code (test_debug_tree.py:{PARKED_LINE})\n"
        "    ├── receiver: waiting to receive from a memory channel (0/0 buffered,"
        " 1 sender open)\n"
        "    ├── retrying: backing off in Retry 'fetch': sleeping until t=4 (in 3.5 s)\n"
        "    ├── sleeper: sleeping until t=2.5 (in 2 s)\n"
        "    ├── weight 1: waiting for WeightedSemaphore (3/3 in use, 1 waiting)\n"
        "    └── weight 3: waiting for an Event\n"
    )


def test_the_whole_run_from_the_main_task() -> None:
    """By default the tree starts at the main task, without Trio's system tasks."""

    async def main() -> str:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 3, name="sleeper")
            await trio.testing.wait_all_tasks_blocked()
            tree = trine.debug.task_tree()
            nursery.cancel_scope.cancel()
        return tree

    tree = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert tree == (
        "Trio task tree at t=0\n"
        f"{main.__module__}.{main.__qualname__}: running (this task called task_tree)\n"
        "└── nursery\n"
        "    └── sleeper: sleeping until t=3 (in 3 s)\n"
    )


async def test_services_and_breakers_are_described(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """SingleFlight, AsyncCache, Batcher and a call through a breaker, from their statistics."""

    async def load_many(keys: list[int]) -> list[int]:
        await trio.sleep(10)
        return keys

    breaker = trine.CircuitBreaker(name="api")
    async with (
        trine.SingleFlight() as flights,
        trine.AsyncCache[str, None](10) as cache,
        trine.Batcher(load_many, max_size=2, max_wait=1.0) as batcher,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(flights.call, "k", trio.sleep, 10, name="flight 0")
        nursery.start_soon(flights.call, "k", trio.sleep, 10, name="flight 1")
        nursery.start_soon(cache.get_or_load, "a", trio.sleep, 10, name="cache")
        nursery.start_soon(batcher.load, 1, name="batch")
        nursery.start_soon(breaker.call, trio.sleep, 10, name="breaker")
        await trio.testing.wait_all_tasks_blocked()
        lines = trine.debug.task_tree().splitlines()
        nursery.cancel_scope.cancel()
    expected = {
        "flight 0": "waiting for a shared run of SingleFlight (1 run in flight, 2 waiting)",
        "flight 1": "waiting for a shared run of SingleFlight (1 run in flight, 2 waiting)",
        "cache": "waiting for a load of AsyncCache (1 loading, 0 cached)",
        "batch": "waiting for a batch of Batcher (1 item waiting, 0 batch calls running)",
        "breaker": "calling through CircuitBreaker 'api' (closed): sleeping until t=10 (in 10 s)",
    }
    for name, text in expected.items():
        assert any(line.endswith(f"── {name}: {text}") for line in lines), (name, lines)


async def test_a_pipeline_shows_stages_and_workers(autojump_clock: trio.testing.MockClock) -> None:
    """pipeline -> stage -> worker, with trine's task names and what each waits for.

    Workers start as items need them, so the idle stage 'more' shows one worker.
    """

    async def nap(x: int) -> int:
        await trio.sleep(1)
        return x

    pipe = (
        trine.Pipeline.source(range(10))
        .map(nap, name="nap", buffer=1)
        .map(nap, workers=2, name="more")
    )
    async with pipe.open() as results, trio.open_nursery() as nursery:
        nursery.start_soon(results.__anext__, name="reader")
        await trio.sleep(0.5)
        await trio.testing.wait_all_tasks_blocked()
        lines = [line.lstrip("│ ├└─") for line in trine.debug.task_tree().splitlines()]
        nursery.cancel_scope.cancel()
    assert "reader: waiting for the pipeline's next result (busy workers nap: 1, more: 0)" in lines
    assert "trine.Pipeline source: waiting for room downstream" in lines
    assert "trine.Pipeline stage 'nap': waiting for 1 child task to finish" in lines
    assert "nap worker 0: sleeping until t=1 (in 0.5 s)" in lines
    assert "more worker 0: waiting for an item" in lines
    assert not any(line.startswith("more worker 1") for line in lines)


def test_task_tree_needs_a_run() -> None:
    """Outside Trio it says so."""
    with pytest.raises(RuntimeError):
        trine.debug.task_tree()


def test_root_must_be_a_task() -> None:
    """root= is checked by type."""
    with pytest.raises(TypeError, match=r"^root must be a trio.lowlevel.Task or None, got 1$"):
        trine.debug.task_tree(root=1)  # type: ignore[arg-type]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGUSR1 is POSIX")
async def test_dump_on_signal_prints_the_tree(autojump_clock: trio.testing.MockClock) -> None:
    """Each SIGUSR1 prints the tree to the file; after the block the signal is not caught."""
    out = io.StringIO()
    previous = signal.getsignal(signal.SIGUSR1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 7, name="napper")
        async with trine.debug.dump_on_signal(signal.SIGUSR1, file=out):
            os.kill(os.getpid(), signal.SIGUSR1)
            while not out.getvalue():
                await trio.lowlevel.checkpoint()
        nursery.cancel_scope.cancel()
    lines = out.getvalue().splitlines()
    assert lines[0] == "Trio task tree at t=0"
    assert any(line.endswith("── napper: sleeping until t=7 (in 7 s)") for line in lines)
    assert any(
        line.endswith("── trine.debug.dump_on_signal: running (this task called task_tree)")
        for line in lines
    )
    assert signal.getsignal(signal.SIGUSR1) == previous


@pytest.mark.skipif(not hasattr(signal, "SIGRTMIN"), reason="real-time signals are Linux's")
async def test_dump_on_signal_takes_a_real_time_signal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A real-time signal has a number but no name in signal.Signals: it is taken all the same."""
    out = io.StringIO()
    signum = signal.SIGRTMIN + 6
    async with trine.debug.dump_on_signal(signum, file=out):
        os.kill(os.getpid(), signum)
        while not out.getvalue():
            await trio.lowlevel.checkpoint()
    assert out.getvalue().startswith("Trio task tree at t=0\n")


async def test_dump_on_signal_lets_the_blocks_exception_out_bare() -> None:
    """An exception from the block is itself, not a group."""
    with pytest.raises(KeyError, match="mine"):
        async with trine.debug.dump_on_signal(file=io.StringIO()):
            raise KeyError("mine")


def test_dump_on_signal_checks_its_arguments() -> None:
    """signum must be a signal number; file must have write()."""
    with pytest.raises(TypeError, match=r"^signum must be a signal number \(an int\), got 'x'$"):
        trine.debug.dump_on_signal("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^signum must be a signal number \(an int\), got True$"):
        trine.debug.dump_on_signal(True)
    with pytest.raises(ValueError, match=r"^signum must be a signal number, got 12345$"):
        trine.debug.dump_on_signal(12345)
    with pytest.raises(TypeError, match=r"^file must have a write method, got 1$"):
        trine.debug.dump_on_signal(file=1)  # type: ignore[arg-type]
