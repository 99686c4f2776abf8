"""What one frame of the display shows: of a pipeline, a graph, or a map.

Each frame is a callable of the time, reading the counters the object
already keeps (``statistics()``), so showing progress adds nothing to the
run's own path. Rates and ETAs are over the time since the display opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, final

from ._render import bar, bar_row, clock, eta_by_rate, eta_text, middle, spinner

if TYPE_CHECKING:
    from rich.console import RenderableType

    from .._graph import GraphStatistics
    from .._pipeline import PipelineStatistics

__all__ = ["GraphFrame", "MapFrame", "PipelineFrame"]

_BUFFER_BAR = 10


@final
class PipelineFrame:
    """A line for the run, then a row per stage: items in/out/failed, items/s out, buffer fill."""

    def __init__(self, read: Callable[[], PipelineStatistics], start: float) -> None:
        self._read = read
        self._start = start
        self._out_at_start = [stage.items_out for stage in read().stages]

    def __call__(self, now: float) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        statistics = self._read()
        elapsed = now - self._start
        if statistics.running:
            state = "running"
        elif any(stage.items_in for stage in statistics.stages):
            state = "finished"
        else:
            state = "not started"
        noun = "stage" if len(statistics.stages) == 1 else "stages"
        head = Text.from_markup(
            f"[cyan]{spinner(now)}[/] pipeline · {len(statistics.stages)} {noun} · "
            f"{state} · {clock(elapsed)}"
        )
        # Columns padded by hand: a rich Table costs ten times as much to draw.
        rows = [("stage", "in", "out", "failed", "out/s")]
        for index, stage in enumerate(statistics.stages):
            start = self._out_at_start[index] if index < len(self._out_at_start) else 0
            rate = "-" if elapsed <= 0 else f"{(stage.items_out - start) / elapsed:.1f}"
            rows.append(
                (
                    middle(stage.name, 24),
                    str(stage.items_in),
                    str(stage.items_out),
                    str(stage.failed),
                    rate,
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(5)]
        lines: list[Text] = [head]
        for number, row in enumerate(rows):
            line = Text("  " + row[0].ljust(widths[0]), style="bold" if not number else "")
            line.no_wrap = True  # one line a stage; and wrapping is most of a frame's cost
            for column in range(1, 5):
                cell = "  " + row[column].rjust(widths[column])
                failed = column == 3 and number and row[3] != "0"
                line.append(cell, style="bold red" if failed else ("bold" if not number else ""))
            line.append("  ")
            if not number:
                line.append("buffer", style="bold")
            else:
                stage = statistics.stages[number - 1]
                line.append_text(bar(stage.buffer_used, stage.buffer_size, _BUFFER_BAR))
                line.append(f" {stage.buffer_used}/{stage.buffer_size}")
            lines.append(line)
        return Group(*lines)


@final
class GraphFrame:
    """The head line of ``trine run``: done/total, failed, skipped, running, clock, ETA."""

    def __init__(self, read: Callable[[], GraphStatistics], start: float) -> None:
        self._read = read
        self._start = start
        first = read()
        self._finished_at_start = _finished(first)

    def __call__(self, now: float) -> RenderableType:
        statistics = self._read()
        elapsed = now - self._start
        finished = _finished(statistics)
        parts = []
        if statistics.failed:
            parts.append(f"[bold red]{statistics.failed} failed[/]")
        if statistics.skipped:
            parts.append(f"[yellow]{statistics.skipped} skipped[/]")
        if statistics.cancelled:
            parts.append(f"[magenta]{statistics.cancelled} cancelled[/]")
        parts.append(f"{statistics.running} running")
        parts.append(clock(elapsed))
        base = self._finished_at_start if finished >= self._finished_at_start else 0
        estimate = eta_by_rate(finished - base, statistics.nodes - base, elapsed)
        parts.append(eta_text(estimate))
        return bar_row(spinner(now), finished, statistics.nodes, parts)


def _finished(statistics: GraphStatistics) -> int:
    return statistics.succeeded + statistics.failed + statistics.skipped + statistics.cancelled


@final
class MapFrame:
    """Done of total (a bar and an ETA when the input has a length), running, clock."""

    def __init__(self, read: Callable[[], tuple[int, int, int | None]], start: float) -> None:
        self._read = read
        self._start = start
        self._done_at_start = read()[0]

    def __call__(self, now: float) -> RenderableType:
        from rich.text import Text

        done, running, total = self._read()
        elapsed = now - self._start
        parts = [f"{running} running", clock(elapsed)]
        if total is None:
            return Text.from_markup(" · ".join([f"[cyan]{spinner(now)}[/] {done} done", *parts]))
        base = self._done_at_start
        parts.append(eta_text(eta_by_rate(done - base, total - base, elapsed)))
        return bar_row(spinner(now), done, total, parts)
