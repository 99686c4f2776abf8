"""A :class:`RunReport` drawn as one self-contained HTML page.

Inline CSS and SVG only: no script, no font or stylesheet fetched, so the
file opens anywhere (a CI artifact, a mail attachment) and prints. Hovering a
bar shows its details through SVG ``<title>`` elements, which every browser
renders as a tooltip without any code.

The page, top to bottom: the title and outcome; the dashboard's numbers as
cards; the Gantt timeline (a row per job, a bar per attempt coloured by
outcome, the wait before each job and the slot it held as thin lines, the
critical path outlined and linked); concurrency over time against the limit
and each resource's use against its capacity, on the timeline's time axis;
the slowest jobs and the jobs that did not succeed.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable, Sequence

from .._version import __version__
from ._model import ReportAttempt, ReportJob, ReportSummary, RunReport

__all__ = ["render"]

_WIDTH = 1080
_LABEL = 210  # the label column, shared by the timeline and the charts
_RIGHT = 24
_PLOT = _WIDTH - _LABEL - _RIGHT

_STATUS_TEXT = {
    "succeeded": "succeeded",
    "up_to_date": "up to date",
    "failed": "failed",
    "timed_out": "timed out",
    "error": "error",
    "skipped": "skipped",
    "cancelled": "cancelled",
}

_CSS = """
:root {
  --ink: #1d2433; --muted: #667085; --line: #e4e7ec; --panel: #ffffff; --page: #f5f6f8;
  --succeeded: #2f9e62; --up_to_date: #8fc4e8; --failed: #d9453d; --timed_out: #ef8b2c;
  --error: #9c3fb8; --cancelled: #98a2b3; --skipped: #c0c6d0; --accent: #1f3f8f;
  --critical-band: #fff5d9;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink); font: 14px/1.45 system-ui,
  -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1168px; margin: 0 auto; padding: 24px; }
header { display: flex; align-items: baseline; gap: 14px; flex-wrap: wrap; margin-bottom: 18px; }
h1 { font-size: 22px; margin: 0; font-weight: 650; }
h2 { font-size: 15px; margin: 0 0 10px; font-weight: 650; }
.outcome { padding: 2px 10px; border-radius: 999px; font-weight: 600; font-size: 13px;
  background: #e7f5ed; color: #1c6b41; }
.outcome.bad { background: #fde8e7; color: #a4231c; }
.outcome.stopped { background: #eef0f3; color: #475467; }
.subtitle { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin-bottom: 18px; }
@media (max-width: 900px) { .cards { grid-template-columns: repeat(2, 1fr); } }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 650; margin: 2px 0;
  font-variant-numeric: tabular-nums; }
.card .detail { color: var(--muted); font-size: 12.5px; }
section.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 16px 16px 10px; margin-bottom: 18px; overflow-x: auto; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 0 0 10px; color: var(--muted);
  font-size: 12.5px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.swatch { width: 14px; height: 10px; border-radius: 2px; display: inline-block; }
.swatch.critical { background: none; border: 2px solid var(--accent); }
.swatch.wait { height: 0; border-top: 2px dashed #b8bfca; }
.swatch.hold { height: 0; border-top: 2px solid #7b8595; }
svg { display: block; font-family: inherit; width: 100%; max-width: 1080px; height: auto; }
h3 { font-size: 13.5px; margin: 14px 0 0; font-weight: 650; }
h3 .detail { color: var(--muted); font-weight: 400; margin-left: 8px; }
svg text { fill: var(--ink); font-size: 12px; }
svg .axis text, svg .tick { fill: var(--muted); font-size: 11px; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .band { fill: #f8f9fb; }
svg .band.critical { fill: var(--critical-band); }
svg .label.critical { font-weight: 700; fill: var(--accent); }
svg .label.skipped, svg .label.cancelled { fill: var(--muted); font-style: italic; }
svg .wait { stroke: #b8bfca; stroke-width: 2; stroke-dasharray: 3 3; }
svg .hold { stroke: #7b8595; stroke-width: 1.5; }
svg .attempt { stroke: rgba(0,0,0,.18); stroke-width: 1; }
svg .attempt:hover, svg .marker:hover { filter: brightness(1.12); stroke: var(--ink);
  stroke-width: 1.5; }
svg .attempt.critical { stroke: var(--accent); stroke-width: 2.2; }
svg .critical-link { stroke: var(--accent); stroke-width: 1.6; fill: none; opacity: .75; }
svg .s-succeeded { fill: var(--succeeded); } svg .s-up_to_date { fill: var(--up_to_date); }
svg .s-failed { fill: var(--failed); } svg .s-timed_out { fill: var(--timed_out); }
svg .s-error { fill: var(--error); } svg .s-cancelled { fill: var(--cancelled); }
svg .s-skipped { fill: var(--skipped); }
svg .area { fill: #cfd9f2; stroke: var(--accent); stroke-width: 1.5; }
svg .area.resource { fill: #d8efe2; stroke: #2f7d55; }
svg .limit { stroke: var(--failed); stroke-width: 1.5; stroke-dasharray: 6 4; }
svg .limit-label { fill: var(--failed); font-size: 11px; }
svg .chart-title { font-weight: 650; }
svg .chart-detail { fill: var(--muted); font-size: 11.5px; }
.swatch.s-succeeded { background: var(--succeeded); }
.swatch.s-up_to_date { background: var(--up_to_date); }
.swatch.s-failed { background: var(--failed); }
.swatch.s-timed_out { background: var(--timed_out); }
.swatch.s-error { background: var(--error); } .swatch.s-cancelled { background: var(--cancelled); }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
@media (max-width: 900px) { .columns { grid-template-columns: 1fr; } }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
  word-break: break-all; }
.pill { display: inline-block; padding: 0 7px; border-radius: 999px; font-size: 12px; color: #fff; }
.pill.s-succeeded { background: var(--succeeded); } .pill.s-up_to_date { background: #4f8fbf; }
.pill.s-failed { background: var(--failed); } .pill.s-timed_out { background: var(--timed_out); }
.pill.s-error { background: var(--error); } .pill.s-cancelled { background: #7b8595; }
.pill.s-skipped { background: #98a2b3; }
.meter { height: 8px; background: #dbe3f6; border-radius: 4px; }
.meter > div { height: 8px; background: var(--accent); border-radius: 4px; }
.none { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; text-align: center; margin: 8px 0 24px; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def seconds(value: float) -> str:
    """*value* seconds for a person: ``0.42s``, ``12.3s``, ``2m 05s``, ``1h 02m``."""
    if value < 0.01:
        return "0s" if value <= 0 else f"{value * 1000:.0f}ms"
    if value < 10:
        return f"{value:.2f}".rstrip("0").rstrip(".") + "s"
    if value < 60:
        return f"{value:.1f}".rstrip("0").rstrip(".") + "s"
    if value < 3600:
        minutes, rest = divmod(round(value), 60)
        return f"{minutes}m {rest:02d}s"
    hours, rest = divmod(round(value), 3600)
    return f"{hours}h {rest // 60:02d}m"


def _middle(text: str, width: int) -> str:
    """*text* shortened in the middle to *width* characters, so ends stay readable."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2 :]


def _ticks(span: float, count: int = 8) -> list[float]:
    """Round tick positions from 0 to *span*, at most about *count* + 1 of them."""
    if span <= 0:
        return [0.0]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = magnitude
    for multiple in (1, 2, 5, 10):
        step = multiple * magnitude
        if span / step <= count:
            break
    return [index * step for index in range(int(span / step + 1e-9) + 1)]


class _Scale:
    """Seconds from the run's start to x in the plot area."""

    def __init__(self, report: RunReport) -> None:
        self.origin = report.started_at
        self.span = report.total_time if report.total_time > 0 else 1.0

    def x(self, time: float) -> float:
        return _LABEL + (time - self.origin) / self.span * _PLOT


def _attempt_title(attempt: ReportAttempt, attempts_of_job: int, origin: float) -> str:
    lines = [f"{attempt.job} · attempt {attempt.number} of {attempts_of_job}"]
    status = _STATUS_TEXT[attempt.status]
    lines.append(f"{status}: {attempt.error}" if attempt.error else status)
    lines.append(
        f"{seconds(attempt.start - origin)} → {seconds(attempt.end - origin)} "
        f"({seconds(attempt.duration)})"
    )
    if attempt.returncode is not None:
        lines.append(f"exit code {attempt.returncode}")
    if attempt.command:
        lines.append(f"$ {attempt.command}")
    return "\n".join(lines)


def _job_title(job: ReportJob, ready: float | None, origin: float) -> str:
    lines = [job.id, _STATUS_TEXT[job.status] + (f": {job.error}" if job.error else "")]
    if job.resumed:
        lines.append("outcome from an earlier run's job log")
    if job.optional:
        lines.append("optional")
    if ready is not None and job.started_at is not None and job.started_at > ready:
        lines.append(f"waited {seconds(job.started_at - ready)} after it was ready")
    if job.held is not None:
        lines.append(f"held its slot {seconds(job.held)}")
    if job.uses:
        lines.append("uses " + ", ".join(f"{name}={weight}" for name, weight in job.uses.items()))
    if job.after:
        lines.append("after " + ", ".join(job.after))
    if job.command:
        lines.append(f"$ {job.command}")
    return "\n".join(lines)


def _row_order(report: RunReport) -> list[ReportJob]:
    first_start: dict[str, float] = {}
    for attempt in report.attempts:
        first_start[attempt.job] = min(first_start.get(attempt.job, math.inf), attempt.start)
    indexed = list(enumerate(report.jobs))

    def key(item: tuple[int, ReportJob]) -> tuple[float, int]:
        index, job = item
        start = job.started_at if job.started_at is not None else first_start.get(job.id)
        if start is None:
            start = job.finished_at if job.finished_at is not None else math.inf
            return (math.inf if job.status == "skipped" else start, index)
        return (start, index)

    return [job for _, job in sorted(indexed, key=key)]


def _axis(scale: _Scale, top: float, bottom: float, label_y: float) -> list[str]:
    parts = ['<g class="axis">']
    for tick in _ticks(scale.span):
        x = scale.x(scale.origin + tick)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{label_y:.1f}" text-anchor="middle">{seconds(tick)}</text>'
        )
    parts.append("</g>")
    return parts


def _gantt(report: RunReport, summary: ReportSummary) -> str:
    scale = _Scale(report)
    origin = report.started_at
    jobs = _row_order(report)
    count = len(jobs)
    row = 24.0 if count <= 40 else max(3.0, min(24.0, 960.0 / count))
    bar = max(2.0, row * 0.62)
    labels = row >= 11
    top = 26.0
    height = top + row * count + 8
    critical = set(summary.critical_path)
    ready = report.ready_at()
    attempts_by_job: dict[str, list[ReportAttempt]] = {}
    for attempt in report.attempts:
        attempts_by_job.setdefault(attempt.job, []).append(attempt)
    centre: dict[str, float] = {}
    parts = [
        f'<svg class="gantt" width="{_WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {_WIDTH} {height:.0f}" role="img" aria-label="timeline of every attempt">'
    ]
    for index, job in enumerate(jobs):
        y = top + index * row
        centre[job.id] = y + row / 2
        band = " critical" if job.id in critical else ""
        if band or index % 2 == 0:
            parts.append(
                f'<rect class="band{band}" x="0" y="{y:.1f}" width="{_WIDTH}" height="{row:.1f}"/>'
            )
    parts.extend(_axis(scale, top - 4, height - 6, 14))
    for index, job in enumerate(jobs):
        y = top + index * row
        middle = y + row / 2
        classes = ["label", job.status] + (["critical"] if job.id in critical else [])
        title = _e(_job_title(job, ready[job.id], origin))
        row_parts = [f'<g class="job" data-job="{_e(job.id)}">']
        if labels:
            marker = "◆ " if job.id in critical else ""
            row_parts.append(
                f'<text class="{" ".join(classes)}" x="{_LABEL - 10}" y="{middle + 4:.1f}" '
                f'text-anchor="end"><title>{title}</title>{_e(marker + _middle(job.id, 28))}</text>'
            )
        ready_at = ready[job.id]
        waited = ready_at is not None and job.started_at is not None and job.started_at > ready_at
        # In rows a few pixels high, thousands of waits would be a grey fog: the
        # concurrency chart tells that story.
        if waited and labels and ready_at is not None and job.started_at is not None:
            row_parts.append(
                f'<line class="wait" x1="{scale.x(ready_at):.1f}" y1="{middle:.1f}" '
                f'x2="{scale.x(job.started_at):.1f}" y2="{middle:.1f}">'
                f"<title>{title}</title></line>"
            )
        if job.started_at is not None and job.finished_at is not None:
            row_parts.append(
                f'<line class="hold" x1="{scale.x(job.started_at):.1f}" y1="{middle:.1f}" '
                f'x2="{scale.x(job.finished_at):.1f}" y2="{middle:.1f}"/>'
            )
        own = attempts_by_job.get(job.id, [])
        for attempt in own:
            x1 = scale.x(attempt.start)
            width = max(3.0, scale.x(attempt.end) - x1)
            crit = " critical" if job.id in critical else ""
            row_parts.append(
                f'<rect class="attempt s-{attempt.status}{crit}" data-job="{_e(job.id)}" '
                f'data-attempt="{attempt.number}" data-status="{attempt.status}" '
                f'x="{x1:.1f}" y="{middle - bar / 2:.1f}" width="{width:.1f}" '
                f'height="{bar:.1f}" rx="2"><title>{_e(_attempt_title(attempt, len(own), origin))}'
                f"</title></rect>"
            )
        if (
            not own
            and job.status in ("up_to_date", "succeeded", "failed")
            and job.finished_at is not None
        ):
            # Not run this time (up to date, or resumed from a job log): a diamond.
            x = scale.x(job.finished_at)
            half = max(2.0, bar / 2)
            row_parts.append(
                f'<path class="marker s-{job.status}" data-job="{_e(job.id)}" '
                f'd="M{x:.1f} {middle - half:.1f} L{x + half:.1f} {middle:.1f} '
                f'L{x:.1f} {middle + half:.1f} L{x - half:.1f} {middle:.1f} Z">'
                f"<title>{title}</title></path>"
            )
        row_parts.append("</g>")
        parts.extend(row_parts)
    path = summary.critical_path
    by_id = {job.id: job for job in report.jobs}
    for first, second in itertools.pairwise(path):
        a, b = by_id[first], by_id[second]
        if a.finished_at is None or b.started_at is None:
            continue
        x1, y1 = scale.x(a.finished_at), centre[first]
        x2, y2 = scale.x(b.started_at), centre[second]
        parts.append(
            f'<path class="critical-link" d="M{x1:.1f} {y1:.1f} C{x1 + 14:.1f} {y1:.1f} '
            f'{x2 - 14:.1f} {y2:.1f} {x2:.1f} {y2:.1f}"/>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _legend(report: RunReport) -> str:
    statuses = [status for status in _STATUS_TEXT if status != "skipped"]
    present = {attempt.status for attempt in report.attempts}
    present |= {job.status for job in report.jobs if job.status == "up_to_date"}
    items = [
        f'<span><i class="swatch s-{status}"></i>{_STATUS_TEXT[status]}</span>'
        for status in statuses
        if status in present
    ]
    items.append('<span><i class="swatch critical"></i>critical path</span>')
    items.append('<span><i class="swatch wait"></i>ready, waiting for a slot or resource</span>')
    items.append('<span><i class="swatch hold"></i>holding its slot (retry delays, load)</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def _visible_steps(steps: Sequence[tuple[float, int]], shortest: float) -> list[tuple[float, int]]:
    """*steps* without the values that last less than *shortest*: a job ending and the
    next starting a few microseconds later would draw a one-pixel spike."""
    visible: list[tuple[float, int]] = []
    for index, (time, value) in enumerate(steps):
        following = steps[index + 1][0] if index + 1 < len(steps) else math.inf
        if following - time < shortest:
            continue
        if visible and visible[-1][1] == value:
            continue
        visible.append((time, value))
    return visible


def _step_chart(
    scale: _Scale,
    steps: Sequence[tuple[float, int]],
    end: float,
    ceiling: int | None,
    ceiling_label: str,
    title: str,
    detail: str,
    css: str,
    height: int,
) -> str:
    peak = max((value for _, value in steps), default=0)
    top_value = max(peak, ceiling or 0, 1)
    plot_top, plot_bottom = 12.0, height - 22.0

    def y(value: float) -> float:
        return plot_bottom - value / top_value * (plot_bottom - plot_top)

    parts = [
        f'<h3>{_e(title)}<span class="detail">{_e(detail)}</span></h3>',
        f'<svg class="chart" width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" '
        f'role="img" aria-label="{_e(title)}">',
    ]
    parts.extend(_axis(scale, plot_top, plot_bottom, height - 6))
    step = max(1, math.ceil(top_value / 4))
    for value in range(0, top_value + 1, step):
        parts.append(
            f'<text class="tick" x="{_LABEL - 8}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{value}</text>'
        )
    if steps:
        points = [f"M{scale.x(steps[0][0]):.1f} {y(0):.1f}"]
        for time, value in _visible_steps(steps, scale.span / 1000):
            points.append(f"H{scale.x(time):.1f} V{y(value):.1f}")
        points.append(f"H{scale.x(end):.1f} V{y(0):.1f} Z")
        parts.append(f'<path class="area {css}" d="{" ".join(points)}"/>')
    if ceiling is not None:
        parts.append(
            f'<line class="limit" x1="{_LABEL}" y1="{y(ceiling):.1f}" x2="{_LABEL + _PLOT}" '
            f'y2="{y(ceiling):.1f}"/>'
        )
        parts.append(
            f'<text class="limit-label" x="{_LABEL + _PLOT}" y="{y(ceiling) - 4:.1f}" '
            f'text-anchor="end">{_e(ceiling_label)}</text>'
        )
    parts.append(
        f'<line class="grid" x1="{_LABEL}" y1="{y(0):.1f}" x2="{_LABEL + _PLOT}" y2="{y(0):.1f}"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _charts(report: RunReport, summary: ReportSummary) -> str:
    scale = _Scale(report)
    detail = f"mean {summary.mean_concurrency:.2f}, peak {summary.peak_concurrency}"
    if summary.utilisation is not None:
        detail += f", {summary.utilisation:.0%} of the limit"
    parts = [
        _step_chart(
            scale,
            report.concurrency(),
            report.finished_at,
            report.limit,
            f"limit {report.limit}",
            "jobs running",
            detail,
            "",
            150,
        )
    ]
    use = report.resource_use()
    for resource in summary.resources:
        parts.append(
            _step_chart(
                scale,
                use[resource.name],
                report.finished_at,
                resource.capacity,
                f"capacity {resource.capacity}",
                f"resource {resource.name}",
                f"mean {resource.mean:.2f} ({resource.utilisation:.0%}), "
                f"waited {seconds(resource.waited)}",
                "resource",
                104,
            )
        )
    return "\n".join(parts)


def _card(label: str, value: str, detail: str) -> str:
    return (
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="detail">{_e(detail)}</div></div>'
    )


def _cards(report: RunReport, summary: ReportSummary) -> str:
    counts = ", ".join(
        f"{count} {_STATUS_TEXT[status]}" for status, count in summary.counts.items()
    )
    decided = sum(
        summary.counts.get(status, 0)
        for status in ("succeeded", "up_to_date", "failed", "timed_out", "error")
    )
    ok = summary.counts.get("succeeded", 0) + summary.counts.get("up_to_date", 0)
    waiting = summary.waiting_for_resources + summary.waiting_for_slot + summary.waiting_other
    slowest = summary.slowest[0] if summary.slowest else None
    started = sum(1 for job in report.jobs if job.started_at is not None)
    cards = [
        _card(
            "total time", seconds(summary.total_time), f"{summary.jobs} jobs: {counts or 'none'}"
        ),
        _card(
            "success rate",
            "-" if summary.success_rate is None else f"{summary.success_rate:.0%}",
            f"{ok} of the {decided} jobs that ran to an outcome",
        ),
        _card(
            "throughput",
            "-" if summary.jobs_per_second is None else f"{summary.jobs_per_second:.2f} jobs/s",
            f"{summary.attempts} attempts, {summary.retries} "
            + ("retry" if summary.retries == 1 else "retries"),
        ),
        _card(
            "concurrency",
            f"{summary.mean_concurrency:.2f}" + (f" of {report.limit}" if report.limit else ""),
            (
                f"{summary.utilisation:.0%} utilisation, peak {summary.peak_concurrency}"
                if summary.utilisation is not None
                else f"peak {summary.peak_concurrency}, no limit"
            ),
        ),
        _card(
            "time running",
            seconds(summary.busy_time),
            f"job-seconds of attempts; slots held {seconds(summary.held_time)}",
        ),
        _card(
            "time waiting",
            seconds(waiting),
            f"job-seconds ready but held back: {seconds(summary.waiting_for_resources)} for "
            f"resources, {seconds(summary.waiting_for_slot)} for a slot"
            + (f"; {seconds(waiting / started)} a job" if started else ""),
        ),
        _card(
            "critical path",
            seconds(summary.critical_path_time),
            " → ".join(summary.critical_path) if summary.critical_path else "nothing ran",
        ),
        _card(
            "slowest job", seconds(slowest[1]) if slowest else "-", slowest[0] if slowest else ""
        ),
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def _slowest_table(report: RunReport, summary: ReportSummary) -> str:
    if not summary.slowest:
        return '<p class="none">No job ran.</p>'
    by_id = {job.id: job for job in report.jobs}
    attempts = {job.id: 0 for job in report.jobs}
    for attempt in report.attempts:
        attempts[attempt.job] += 1
    longest = summary.slowest[0][1] or 1.0
    rows = []
    for job_id, held in summary.slowest:
        job = by_id[job_id]
        rows.append(
            f'<tr><td class="id">{_e(job_id)}</td>'
            f'<td><span class="pill s-{job.status}">{_STATUS_TEXT[job.status]}</span></td>'
            f'<td class="num">{attempts[job_id]}</td><td class="num">{seconds(held)}</td>'
            f'<td style="width:30%"><div class="meter"><div style="width:{held / longest:.0%}">'
            f"</div></div></td></tr>"
        )
    return (
        "<table><tr><th>job</th><th>status</th><th>attempts</th><th>held</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _problems_table(report: RunReport) -> str:
    rows = [
        f'<tr><td class="id">{_e(job.id)}</td>'
        f'<td><span class="pill s-{job.status}">{_STATUS_TEXT[job.status]}</span>'
        + (' <span class="none">optional</span>' if job.optional else "")
        + f"</td><td>{_e(job.error or '')}</td></tr>"
        for job in report.jobs
        if job.status not in ("succeeded", "up_to_date")
    ]
    if not rows:
        return '<p class="none">Every job succeeded.</p>'
    return "<table><tr><th>job</th><th>status</th><th>why</th></tr>" + "".join(rows) + "</table>"


def _outcome_class(outcome: str | None, counts: Iterable[str]) -> str:
    if outcome is None:
        bad = any(status in ("failed", "timed_out", "error") for status in counts)
        return "bad" if bad else ""
    if outcome.startswith("interrupted") or outcome.startswith("halted"):
        return "stopped"
    return "" if outcome.startswith("succeeded") else "bad"


def render(report: RunReport) -> str:
    """The HTML page of *report*."""
    summary = report.summary()
    outcome = report.outcome
    outcome_html = ""
    if outcome is not None:
        outcome_html = (
            f'<span class="outcome {_outcome_class(outcome, summary.counts)}">{_e(outcome)}</span>'
        )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(report.title)}</title>",
            f"<style>{_CSS}</style></head><body><main>",
            f"<header><h1>{_e(report.title)}</h1>{outcome_html}"
            f'<span class="subtitle">{summary.jobs} jobs in {seconds(summary.total_time)}</span>'
            "</header>",
            _cards(report, summary),
            '<section class="panel"><h2>Timeline</h2>',
            _legend(report),
            _gantt(report, summary),
            "</section>",
            '<section class="panel"><h2>Concurrency and resources</h2>',
            _charts(report, summary),
            "</section>",
            '<div class="columns"><section class="panel"><h2>Slowest jobs</h2>',
            _slowest_table(report, summary),
            '</section><section class="panel"><h2>Did not succeed</h2>',
            _problems_table(report),
            "</section></div>",
            f"<footer>trine {_e(__version__)} · a self-contained page: no script, "
            "nothing fetched</footer>",
            "</main></body></html>",
            "",
        ]
    )
