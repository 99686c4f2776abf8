"""trine.progress and progress=True: the live display, on the fake clock, drawn to a string."""

from __future__ import annotations

import io
import math
import re
import sys

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

import trine

_CONTROL = re.compile(r"\x1b\[\?25[lh]|\x1b\[[0-9;]*m|\r|\x1b\[2K|\x1b\[1A")


class Screen(io.StringIO):
    """A console's file that notes the fake time of every write (rich writes a frame at once)."""

    def __init__(self, tty: bool = False) -> None:
        super().__init__()
        self.writes: list[tuple[float, str]] = []
        self._tty = tty

    def write(self, text: str) -> int:
        self.writes.append((trio.current_time(), text))
        return super().write(text)

    def isatty(self) -> bool:
        return self._tty


def frames(screen: Screen) -> list[tuple[float, str]]:
    """Each frame drawn, with its fake time, without the cursor moves and trailing blanks."""
    shown = []
    for time, text in screen.writes:
        clean = "\n".join(line.rstrip() for line in _CONTROL.sub("", text).split("\n")).strip("\n")
        if clean:
            shown.append((round(time, 6), clean))
    return shown


def terminal(screen: Screen, width: int = 80) -> Console:
    return Console(file=screen, force_terminal=True, width=width, color_system=None)


async def _work(x: int) -> int:
    await trio.sleep(0.3)
    if x == 3:
        raise ValueError(x)
    return x


async def test_pipeline_progress_frames(autojump_clock: trio.testing.MockClock) -> None:
    """Per stage: items in/out/failed, items out per second, buffer fill; the last frame stays."""
    screen = Screen()
    pipe = (
        trine.Pipeline.source(range(5))
        .map(_work, workers=2, name="fetch", on_error="skip")
        .map(_work, name="store", buffer=2)
    )
    async with pipe.open() as out, trine.progress(out, console=terminal(screen), refresh=1):
        results = [item async for item in out]
    assert sorted(results) == [0, 1, 2, 4]
    assert frames(screen) == [
        (
            0.0,
            "⠋ pipeline · 2 stages · running · 0:00\n"
            "  stage  in  out  failed  out/s  buffer\n"
            "  fetch   0    0       0      -  ────────── 0/64\n"
            "  store   0    0       0      -  ────────── 0/2",
        ),
        (
            1.0,
            "⠋ pipeline · 2 stages · running · 0:01\n"
            "  stage  in  out  failed  out/s  buffer\n"
            "  fetch   5    4       1    4.0  ────────── 0/64\n"
            "  store   3    2       0    2.0  ━━━━━───── 1/2",
        ),
        (
            1.5,
            "⠴ pipeline · 2 stages · running · 0:02\n"
            "  stage  in  out  failed  out/s  buffer\n"
            "  fetch   5    4       1    2.7  ────────── 0/64\n"
            "  store   4    4       0    2.7  ────────── 0/2",
        ),
    ]


async def test_graph_progress_frames(autojump_clock: trio.testing.MockClock) -> None:
    """A graph: finished of all, failed, running, the time and an ETA at the rate so far."""
    screen = Screen()
    graph = trine.TaskGraph(limit=2)
    first = graph.add(_work, 1, name="one")
    graph.add(_work, 3, name="fails")
    graph.add(_work, 2, name="two")
    graph.add(lambda x, _: _work(x), 5, deps=[first], name="after")
    async with trine.progress(graph, console=terminal(screen, width=100), refresh=0.5):
        await graph.run()
    assert frames(screen) == [
        (0.0, "⠋ ──────────────────────── 0/4 · 0 running · 0:00 · ETA -"),
        (0.5, "⠴ ━━━━━━━━━━━━──────────── 2/4 · 1 failed · 2 running · 0:00 · ETA ~0:00"),
        (0.6, "⠦ ━━━━━━━━━━━━━━━━━━━━━━━━ 4/4 · 1 failed · 0 running · 0:01 · ETA ~0:00"),
    ]


async def _step(x: int) -> int:
    await trio.sleep(1.1)
    return x


async def test_amap_progress_frames(autojump_clock: trio.testing.MockClock) -> None:
    """amap over a list: done of len(items), a bar, the calls running and an ETA."""
    screen = Screen()
    async with (
        trine.amap(_step, range(6), limit=2) as results,
        trine.progress(results, console=terminal(screen), refresh=2),
    ):
        assert [result async for result in results] == list(range(6))
    assert frames(screen) == [
        (0.0, "⠋ ──────────────────────── 0/6 · 2 running · 0:00 · ETA -"),
        (2.0, "⠋ ━━━━━━━━──────────────── 2/6 · 2 running · 0:02 · ETA ~0:04"),
        (3.3, "⠸ ━━━━━━━━━━━━━━━━━━━━━━━━ 6/6 · 0 running · 0:03 · ETA ~0:00"),
    ]


async def test_amap_progress_without_a_length(autojump_clock: trio.testing.MockClock) -> None:
    """Items without a len(): the calls done and running, no bar, no ETA."""
    screen = Screen()
    async with (
        trine.amap(_step, (x for x in range(3)), limit=2) as results,
        trine.progress(results, console=terminal(screen), refresh=2),
    ):
        assert [result async for result in results] == [0, 1, 2]
    assert frames(screen) == [
        (0.0, "⠋ 0 done · 2 running · 0:00"),
        (2.0, "⠋ 2 done · 1 running · 0:02"),
        (2.2, "⠹ 3 done · 0 running · 0:02"),
    ]


async def test_map_all_progress_true(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """map_all(progress=True) draws the same display on stdout, when it is a terminal."""
    screen = Screen(tty=True)
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")  # the bar's empty part is blank
    assert await trine.map_all(_step, [1, 2, 3], limit=2, progress=True) == [1, 2, 3]
    shown = frames(screen)
    assert [time for time, _ in shown] == [0.25 * tick for tick in range(9)] + [2.2]
    assert shown[0] == (0.0, "⠋ ──────────────────────── 0/3 · 0 running · 0:00 · ETA -")
    assert shown[5] == (1.25, "⠹ ━━━━━━━━━━━━━━━━──────── 2/3 · 1 running · 0:01 · ETA ~0:01")
    assert shown[-1] == (2.2, "⠹ ━━━━━━━━━━━━━━━━━━━━━━━━ 3/3 · 0 running · 0:02 · ETA ~0:00")


async def test_for_each_progress_true(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """for_each(progress=True) too; a generator has no length: done and running only."""
    screen = Screen(tty=True)
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")
    await trine.for_each(_step, (x for x in range(3)), limit=2, progress=True)
    assert frames(screen)[-1] == (2.2, "⠹ 3 done · 0 running · 0:02")


async def test_nothing_drawn_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a terminal: nothing is written and no task is started."""
    screen = Screen()
    quiet = Console(file=screen)  # a StringIO: not a terminal
    pipe = trine.Pipeline.source(range(3)).map(_work)
    task = trio.lowlevel.current_task()
    before = len(task.child_nurseries)
    async with pipe.open() as out:
        async with trine.progress(out, console=quiet):
            assert len(task.child_nurseries) == before + 1  # pipe.open()'s only
        assert [item async for item in out] == [0, 1, 2]
    monkeypatch.setattr(sys, "stdout", screen)
    graph = trine.TaskGraph()
    graph.add(_work, 1)
    async with trine.progress(graph):
        assert len(task.child_nurseries) == before
        await graph.run()
    assert await trine.map_all(_work, [1, 2], limit=2, progress=True) == [1, 2]
    assert screen.getvalue() == ""


async def test_a_terminal_without_rich_is_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal without rich installed, nothing is drawn and a warning says why."""
    screen = Screen(tty=True)
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setitem(sys.modules, "rich.console", None)  # import fails, as if not installed
    graph = trine.TaskGraph()
    graph.add(_work, 1)
    with pytest.warns(RuntimeWarning, match=r"needs rich, which is not installed"):
        async with trine.progress(graph):
            await graph.run()
    with pytest.warns(RuntimeWarning, match=r"pip install 'trine\[cli\]'"):
        await trine.map_all(_work, [1], limit=1, progress=True)
    assert screen.getvalue() == ""


async def test_block_error_leaves_as_itself(autojump_clock: trio.testing.MockClock) -> None:
    """An exception of the block comes out bare, after the last frame; no task is left."""
    screen = Screen()
    graph = trine.TaskGraph()
    graph.add(_work, 1)

    async def block() -> None:
        async with trine.progress(graph, console=terminal(screen), refresh=0.1):
            await trio.sleep(0.25)
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        await block()
    assert [time for time, _ in frames(screen)] == [0.0, 0.1, 0.2, 0.25]


async def test_map_error_keeps_its_group(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """map_all(progress=True) fails as map_all does: the ExceptionGroup of fn's error."""
    monkeypatch.setattr(sys, "stdout", Screen(tty=True))
    with pytest.RaisesGroup(ValueError):
        await trine.map_all(_work, [1, 3], limit=2, progress=True)


async def test_progress_arguments_checked() -> None:
    """The target, refresh and console are checked at the call."""
    graph = trine.TaskGraph()
    with pytest.raises(TypeError, match=r"^target must be a PipelineOutput .*, got \[1\]$"):
        trine.progress([1])
    with pytest.raises(TypeError, match=r"^refresh must be a number, got '1'$"):
        trine.progress(graph, refresh="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^refresh must be > 0, got 0$"):
        trine.progress(graph, refresh=0)
    with pytest.raises(TypeError, match=r"^console must be a rich.console.Console or None, got"):
        trine.progress(graph, console=sys.stdout)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^progress must be True or False"):
        await trine.map_all(_work, [1], limit=1, progress=1)  # type: ignore[arg-type]


async def test_cancelled_block_draws_its_last_frame(autojump_clock: trio.testing.MockClock) -> None:
    """Cancelled from outside: the redrawing ends, the last frame is drawn, Cancelled leaves."""
    screen = Screen()
    graph = trine.TaskGraph()
    graph.add(_work, 1)
    with trio.move_on_after(0.35) as scope:
        async with trine.progress(graph, console=terminal(screen), refresh=0.1):
            await trio.sleep(10)
    assert scope.cancelled_caught
    assert [time for time, _ in frames(screen)] == [0.0, 0.1, 0.2, 0.3, 0.35]


@given(
    durations=st.lists(st.integers(min_value=0, max_value=5), max_size=12),
    limit=st.integers(min_value=1, max_value=4),
    refresh=st.sampled_from([0.07, 0.25, 1.0, 3.0]),
    cancel_at=st.none() | st.floats(min_value=0, max_value=8, allow_nan=False),
)
def test_property_frames_on_time_and_nothing_left(
    durations: list[int], limit: int, refresh: float, cancel_at: float | None
) -> None:
    """At any refresh, cancelled at any time: a frame every refresh from the start, one at
    the end with the true count, and no task left behind."""
    screen = Screen()
    end: list[float] = []
    finished: list[int] = []

    async def call(seconds: int) -> int:
        await trio.sleep(seconds * 0.5)
        finished.append(seconds)
        return seconds

    async def main() -> None:
        with trio.move_on_after(math.inf if cancel_at is None else cancel_at):
            async with (
                trine.amap(call, durations, limit=limit) as results,
                trine.progress(results, console=terminal(screen, width=100), refresh=refresh),
            ):
                async for _ in results:
                    pass
        end.append(trio.current_time())
        assert not trio.lowlevel.current_task().child_nurseries

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    shown = frames(screen)
    times = [time for time, _ in shown]
    assert times[:-1] == [round(k * refresh, 6) for k in range(len(times) - 1)]
    assert times[-1] == round(end[0], 6)
    last = shown[-1][1]
    assert f" {len(finished)}/{len(durations)} " in last
    if cancel_at is None:
        assert len(finished) == len(durations)
