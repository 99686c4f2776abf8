"""What ``trine run`` shows while it runs, and the summary at the end.

Two displays with one interface: :class:`RichDisplay` on a terminal (a live
area: a spinner, a bar with done/total and an ETA, a line per running or
waiting job; event lines printed above it) and :class:`PlainDisplay` for
pipes and CI logs (one timestamped line per event). Both show a failed
attempt when it happens, why a ready job is held back ("waiting for resource
db (1/1 in use)"), jobs being stopped, and with ``--output=tag`` the running
jobs' output, one prefixed line at a time.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Any, Protocol, final

from .._progress._render import LiveArea, bar_row, clock, middle, spinner
from ._records import FAILED_STATUSES, RUNNING, SKIPPED, AttemptRecord, JobRecord, counts_text

__all__ = [
    "Display",
    "GuardedDisplay",
    "PlainDisplay",
    "RichDisplay",
    "estimate_remaining",
    "make_display",
    "silence_stdout",
]

_SHOWN_RUNNING = 10
_SHOWN_WAITING = 5


def estimate_remaining(
    durations: Sequence[float], running: Sequence[float], pending: int, slots: int
) -> float | None:
    """Seconds until every job is done, from the durations of the jobs done so far.

    Each running job is expected to take the mean duration (so what is left of
    it is the mean less its elapsed time, at least 0), each pending job the
    mean, spread over the *slots* that can run at once: GNU parallel's
    ``--eta``, which knows nothing of dependencies either.

    Args:
      durations: how long each finished job ran.
      running: how long each running job has run so far.
      pending: jobs not started yet.
      slots: jobs that can run at once (>= 1).

    Returns:
      The estimate, or ``None`` before any job finished.
    """
    if not running and not pending:
        return 0.0
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    work = sum(max(mean - elapsed, 0.0) for elapsed in running) + pending * mean
    return work / max(1, min(slots, pending + len(running)))


class RunView(Protocol):
    """What a display reads of the run."""

    @property
    def records(self) -> Sequence[JobRecord]: ...
    @property
    def limit(self) -> int: ...
    @property
    def wall_start(self) -> float: ...
    @property
    def stop_reason(self) -> str | None: ...
    @property
    def kill_at(self) -> float | None: ...

    def waiting(self) -> list[tuple[JobRecord, str]]: ...


class Display(Protocol):
    def started(self, record: JobRecord, now: float) -> None: ...
    def attempt_failed(
        self, record: JobRecord, attempt: AttemptRecord, retry_in: float, now: float
    ) -> None: ...
    def finished(self, record: JobRecord, now: float) -> None: ...
    def waiting(self, held: Sequence[tuple[JobRecord, str]], more: int, now: float) -> None: ...
    def stopping(self, text: str, now: float) -> None: ...
    def output(self, job_id: str, stream: str, line: str) -> None: ...
    def refresh(self, now: float) -> None: ...
    def summary(self, elapsed: float, outcome: str) -> None: ...


def _attempts_text(record: JobRecord) -> str:
    total = record.job.retries + 1
    return f"attempt {len(record.attempts)}/{total}"


def _finish_detail(record: JobRecord) -> str:
    parts = [record.detail()] if record.detail() else []
    if len(record.attempts) > 1:
        parts.append(f"{len(record.attempts)} attempts")
    if record.resumed:
        parts.append("from the job log")
    if record.job.optional and record.failed:
        parts.append("optional")
    return "; ".join(parts)


def _eta_text(view: RunView, now: float) -> str:
    durations = [
        record.finished_at - record.started_at
        for record in view.records
        if record.finished_at is not None and record.started_at is not None and record.attempts
    ]
    running = [
        now - record.started_at
        for record in view.records
        if record.status == RUNNING and record.started_at is not None
    ]
    pending = sum(1 for record in view.records if not record.finished and record.status != RUNNING)
    estimate = estimate_remaining(durations, running, pending, view.limit)
    return "ETA -" if estimate is None else f"ETA ~{clock(estimate)}"


def _summary_rows(records: Sequence[JobRecord]) -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for record in records:
        if record.status in ("succeeded", "up_to_date"):
            continue
        duration = "-"
        if record.attempts:
            duration = f"{record.attempts[-1].end - record.attempts[0].start:.2f}s"
        returncode = "-" if record.returncode is None else str(record.returncode)
        detail = record.detail()
        if record.job.optional:
            detail = f"{detail}; optional" if detail else "optional"
        rows.append(
            (record.name, record.status, str(len(record.attempts)), returncode, duration, detail)
        )
    return rows


def _excerpts(records: Sequence[JobRecord], lines: int = 5) -> list[tuple[str, str]]:
    """The last lines of stderr (or stdout) of each job that failed."""
    excerpts = []
    for record in records:
        if record.failed and record.result is not None:
            text = record.result.stderr_tail or record.result.stdout_tail
            tail = text.rstrip("\n").splitlines()[-lines:]
            if tail:
                excerpts.append((record.name, "\n".join(tail)))
    return excerpts


def _slowest_text(records: Sequence[JobRecord]) -> str:
    ran = [
        (record.attempts[-1].end - record.attempts[0].start, record.name)
        for record in records
        if record.attempts
    ]
    ran.sort(key=lambda item: (-item[0], item[1]))
    return ", ".join(f"{name} {seconds:.2f}s" for seconds, name in ran[:3])


def _counts_line(records: Sequence[JobRecord], elapsed: float, outcome: str) -> str:
    resumed = sum(1 for record in records if record.resumed)
    note = f" ({resumed} from the job log)" if resumed else ""
    return f"{len(records)} jobs: {counts_text(records)}{note} in {elapsed:.2f}s: {outcome}"


@final
class PlainDisplay:
    """One timestamped line per event: for pipes, CI logs and files."""

    def __init__(self, view: RunView, out: IO[str]) -> None:
        self._view = view
        self._out = out

    def _line(self, now: float, text: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self._view.wall_start + now))
        self._out.write(f"[{stamp} {now:7.2f}s] {text}\n")
        self._out.flush()

    def _progress(self) -> str:
        records = self._view.records
        done = sum(1 for record in records if record.finished)
        return f"[{done}/{len(records)}]"

    def started(self, record: JobRecord, now: float) -> None:
        self._line(now, f"started   {record.name}")

    def attempt_failed(
        self, record: JobRecord, attempt: AttemptRecord, retry_in: float, now: float
    ) -> None:
        self._line(
            now,
            f"retrying  {record.name}: attempt {attempt.number}/{record.job.retries + 1} "
            f"{attempt.status} ({attempt.error}); next in {retry_in:.2f}s",
        )

    def finished(self, record: JobRecord, now: float) -> None:
        detail = _finish_detail(record)
        suffix = f" ({detail})" if detail else ""
        self._line(now, f"{record.status:<9} {record.name}{suffix}  {self._progress()}")

    def waiting(self, held: Sequence[tuple[JobRecord, str]], more: int, now: float) -> None:
        for record, reason in held:
            self._line(now, f"waiting   {record.name}: {reason.removeprefix('waiting ')}")
        if more:
            self._line(now, f"waiting   ... and {more} more jobs")

    def stopping(self, text: str, now: float) -> None:
        self._line(now, f"stopping  {text}")

    def output(self, job_id: str, stream: str, line: str) -> None:
        mark = "|" if stream == "stdout" else "!"
        self._out.write(f"{job_id} {mark} {line}\n")
        self._out.flush()

    def refresh(self, now: float) -> None:
        pass

    def summary(self, elapsed: float, outcome: str) -> None:
        records = self._view.records
        out = self._out
        rows = _summary_rows(records)
        if rows:
            header = ("job", "status", "attempts", "exit", "duration", "why")
            table = [header, *rows]
            widths = [max(len(row[column]) for row in table) for column in range(5)]
            out.write("\n")
            for row in table:
                cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
                out.write("  ".join([*cells, row[5]]).rstrip() + "\n")
        for name, text in _excerpts(records):
            out.write(f"\n--- {name}: last output ---\n{text}\n")
        slowest = _slowest_text(records)
        out.write("\n" + (f"slowest: {slowest}\n" if slowest else ""))
        out.write(_counts_line(records, elapsed, outcome) + "\n")
        out.flush()


_STYLES = {
    "succeeded": "green",
    "up_to_date": "green",
    "failed": "bold red",
    "timed_out": "bold red",
    "error": "bold red",
    "skipped": "yellow",
    "cancelled": "magenta",
    "running": "cyan",
    "pending": "dim",
}


@final
class RichDisplay:
    """A live area (spinner, bar, ETA, running and waiting jobs), event lines above it."""

    def __init__(self, view: RunView, *, force_terminal: bool) -> None:
        self._view = view
        # The live area trine.progress draws in too; the summary replaces it.
        self._live = LiveArea(None, transient=True, force_terminal=force_terminal)
        self._console = self._live.console

    def _stamp(self, now: float) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self._view.wall_start + now))
        return f"[dim]{stamp} {now:6.2f}s[/]"

    def _print(self, text: str) -> None:
        self._live.print(text)

    def _render(self, now: float) -> Any:
        from rich.console import Group
        from rich.markup import escape
        from rich.text import Text

        view = self._view
        records = view.records
        done = sum(1 for record in records if record.finished)
        running = [record for record in records if record.status == RUNNING]
        failed = sum(1 for record in records if record.status in FAILED_STATUSES)
        spin = spinner(now)
        parts: list[str] = []
        if failed:
            parts.append(f"[bold red]{failed} failed[/]")
        skipped = sum(1 for record in records if record.status == SKIPPED)
        if skipped:
            parts.append(f"[yellow]{skipped} skipped[/]")
        parts.append(f"{len(running)} running")
        waiting = view.waiting()
        if waiting:
            parts.append(f"{len(waiting)} waiting")
        parts.append(clock(now))
        parts.append(_eta_text(view, now))
        lines: list[Any] = [bar_row(spin, done, len(records), parts)]
        for record in running[:_SHOWN_RUNNING]:
            lines.append(Text.from_markup(self._running_line(record, now, spin, escape)))
        if len(running) > _SHOWN_RUNNING:
            lines.append(Text(f"  ... and {len(running) - _SHOWN_RUNNING} more running", "dim"))
        for record, reason in waiting[:_SHOWN_WAITING]:
            lines.append(
                Text.from_markup(f"  [dim]… {escape(middle(record.name))}  {escape(reason)}[/]")
            )
        if len(waiting) > _SHOWN_WAITING:
            lines.append(Text(f"  ... and {len(waiting) - _SHOWN_WAITING} more waiting", "dim"))
        if view.stop_reason is not None:
            kill = ""
            if view.kill_at is not None:
                kill = f", SIGKILL in {max(0.0, view.kill_at - now):.1f}s"
            lines.append(
                Text.from_markup(f"[magenta]stopping: {escape(view.stop_reason)}{kill}[/]")
            )
        return Group(*lines)

    def _running_line(self, record: JobRecord, now: float, spin: str, escape: Any) -> str:
        name = escape(middle(record.name))
        elapsed = now - (record.started_at or now)
        if record.stopping:
            return f"  [magenta]{spin} {name}  stopping ({elapsed:.1f}s)[/]"
        if record.phase == "delay" and record.next_attempt_at is not None:
            wait = max(0.0, record.next_attempt_at - now)
            return (
                f"  [yellow]{spin} {name}  {_attempts_text(record)} failed, next in {wait:.1f}s[/]"
            )
        if record.phase == "admission":
            return f"  [dim]{spin} {name}  waiting for the machine's load to drop[/]"
        detail = f"{now - record.phase_since:.1f}s"
        if record.job.timeout is not None:
            detail += f" of {record.job.timeout:g}s"
        if record.job.retries:
            detail = f"attempt {len(record.attempts) + 1}/{record.job.retries + 1}, {detail}"
        return f"  [cyan]{spin} {name}[/]  {detail}"

    def started(self, record: JobRecord, now: float) -> None:
        self.refresh(now)

    def attempt_failed(
        self, record: JobRecord, attempt: AttemptRecord, retry_in: float, now: float
    ) -> None:
        from rich.markup import escape

        self._print(
            f"{self._stamp(now)} [yellow]retrying [/] {escape(record.name)}  "
            f"[dim]attempt {attempt.number}/{record.job.retries + 1} {attempt.status}: "
            f"{escape(attempt.error or '')}; next in {retry_in:.2f}s[/]"
        )
        self.refresh(now)

    def finished(self, record: JobRecord, now: float) -> None:
        from rich.markup import escape

        style = _STYLES.get(record.status, "")
        detail = _finish_detail(record)
        self._print(
            f"{self._stamp(now)} [{style}]{record.status:<9}[/] {escape(record.name)}"
            + (f"  [dim]{escape(detail)}[/]" if detail else "")
        )
        self.refresh(now)

    def waiting(self, held: Sequence[tuple[JobRecord, str]], more: int, now: float) -> None:
        pass  # the live area shows them

    def stopping(self, text: str, now: float) -> None:
        from rich.markup import escape

        self._print(f"{self._stamp(now)} [magenta]stopping [/] {escape(text)}")
        self.refresh(now)

    def output(self, job_id: str, stream: str, line: str) -> None:
        from rich.markup import escape

        mark = "[dim]|[/]" if stream == "stdout" else "[red]![/]"
        self._print(f"[cyan]{escape(job_id)}[/] {mark} {escape(line)}")

    def refresh(self, now: float) -> None:
        self._live.update(self._render(now))

    def summary(self, elapsed: float, outcome: str) -> None:
        from rich.markup import escape
        from rich.table import Table

        self._live.stop()
        records = self._view.records
        rows = _summary_rows(records)
        if rows:
            table = Table(title="did not succeed", title_justify="left")
            for column in ("job", "status", "attempts", "exit", "duration", "why"):
                numeric = column in ("attempts", "exit", "duration")
                table.add_column(
                    column,
                    justify="right" if numeric else "left",
                    overflow="fold",
                    no_wrap=numeric,
                )
            for name, status, attempts, returncode, duration, detail in rows:
                table.add_row(
                    escape(name),
                    f"[{_STYLES.get(status, '')}]{status}[/]",
                    attempts,
                    returncode,
                    duration,
                    escape(detail),
                )
            self._console.print(table)
        for name, text in _excerpts(records):
            self._console.rule(f"{escape(name)}: last output", align="left")
            self._console.print(text, markup=False, highlight=False)
        slowest = _slowest_text(records)
        if slowest:
            self._console.print(f"[dim]slowest: {escape(slowest)}[/]")
        line = escape(_counts_line(records, elapsed, outcome))
        head, _, tail = line.rpartition(": ")
        self._console.print(f"{head}: [bold]{tail}[/]")


def silence_stdout() -> None:
    """Send what is still written to stdout to ``/dev/null`` (its reader has gone: ``| head``)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover  # stdout is not a file
        pass
    finally:
        os.close(devnull)


@final
class GuardedDisplay:
    """A display that stops showing, and lets the run go on, once its output is gone.

    A reader that left (``trine run ... | head``) makes every write fail with
    ``EPIPE``; the jobs, the job log and the reports matter more than the display.
    """

    def __init__(self, display: Display) -> None:
        self._display: Display | None = display

    def _call(self, method: str, *args: Any) -> None:
        if self._display is None:
            return
        try:
            getattr(self._display, method)(*args)
        except OSError:
            self._display = None
            silence_stdout()

    def started(self, record: JobRecord, now: float) -> None:
        self._call("started", record, now)

    def attempt_failed(
        self, record: JobRecord, attempt: AttemptRecord, retry_in: float, now: float
    ) -> None:
        self._call("attempt_failed", record, attempt, retry_in, now)

    def finished(self, record: JobRecord, now: float) -> None:
        self._call("finished", record, now)

    def waiting(self, held: Sequence[tuple[JobRecord, str]], more: int, now: float) -> None:
        self._call("waiting", held, more, now)

    def stopping(self, text: str, now: float) -> None:
        self._call("stopping", text, now)

    def output(self, job_id: str, stream: str, line: str) -> None:
        self._call("output", job_id, stream, line)

    def refresh(self, now: float) -> None:
        self._call("refresh", now)

    def summary(self, elapsed: float, outcome: str) -> None:
        self._call("summary", elapsed, outcome)


def make_display(mode: str, view: RunView, out: IO[str], isatty: bool) -> Display:
    """The display *mode* asks for (``auto``: rich on a terminal, if rich is installed).

    Raises:
      ImportError: for ``rich`` without the rich package.
    """
    if mode == "rich" or (mode == "auto" and isatty):
        try:
            return GuardedDisplay(RichDisplay(view, force_terminal=mode == "rich"))
        except ImportError:
            if mode == "rich":
                raise
    return GuardedDisplay(PlainDisplay(view, out))
