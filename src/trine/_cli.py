"""The ``trine`` command line: run a jobs file as a graph of commands.

``trine run jobs.toml`` runs the jobs of a TOML jobs file (see
:mod:`trine._jobs_file` for the format) as concurrently as their ``after``
dependencies, the ``limit`` and the named ``resources`` allow, each through
the command runner (timeouts, retries, process-group kills), scheduled by a
:class:`~trine.TaskGraph`. ``trine graph jobs.toml`` prints the plan.

Exit codes: 0 every job succeeded (optional jobs and the jobs skipped
because of them aside), 1 a job failed, 2 the jobs file is invalid (nothing
ran), 130 interrupted by Ctrl-C (143 by SIGTERM): running commands were
terminated and the report was still written.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any, Protocol, final

import attrs
import trio

from ._graph import Node, NodeEvent, NodeStatus, TaskGraph, topological_order
from ._jobs_file import Job, JobsFile, JobsFileError, load_jobs_file, waves
from ._limit import WeightedSemaphore
from ._process import Command, CommandResult, CommandStatus, SystemLoad
from ._process._descendants import Batch
from ._process._run import Settings, command_retry, run_command

__all__ = ["main"]

_PROG = "trine"
# Exit codes.
_OK, _FAILED, _INVALID = 0, 1, 2
# Statuses a job can end with, beyond the command runner's.
_SKIPPED, _PENDING, _RUNNING = "skipped", "pending", "running"
_REFRESH_INTERVAL = 0.1


@final
@attrs.define(eq=False)
class _JobRecord:
    """What is known of one job so far; the report is made of these."""

    job: Job
    status: str = _PENDING
    started_at: float | None = None
    finished_at: float | None = None
    result: CommandResult | None = None
    skipped_because: str | None = None

    @property
    def finished(self) -> bool:
        return self.status not in (_PENDING, _RUNNING)

    @property
    def failed(self) -> bool:
        return self.status in (
            CommandStatus.FAILED,
            CommandStatus.TIMED_OUT,
            CommandStatus.ERROR,
        )

    def detail(self) -> str:
        if self.status == _SKIPPED:
            return f"{self.skipped_because} did not succeed"
        if self.result is not None and self.result.error is not None:
            return self.result.error
        if self.status == CommandStatus.CANCELLED and self.started_at is None:
            return "never started"
        return ""


class _JobFailed(Exception):
    """Raised by a job's node so the graph skips its dependents."""

    def __init__(self, result: CommandResult) -> None:
        super().__init__(result.error)
        self.result = result


class _Progress(Protocol):
    def job_started(self, record: _JobRecord, now: float) -> None: ...
    def job_finished(self, record: _JobRecord, now: float) -> None: ...
    def refresh(self, now: float) -> None: ...
    def summary(self, records: Sequence[_JobRecord], elapsed: float, outcome: str) -> None: ...


def _counts(records: Sequence[_JobRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[str(record.status)] = counts.get(str(record.status), 0) + 1
    return counts


def _counts_text(records: Sequence[_JobRecord]) -> str:
    order = [
        str(CommandStatus.SUCCEEDED),
        str(CommandStatus.FAILED),
        str(CommandStatus.TIMED_OUT),
        str(CommandStatus.ERROR),
        _SKIPPED,
        str(CommandStatus.CANCELLED),
        _RUNNING,
        _PENDING,
    ]
    counts = _counts(records)
    return ", ".join(f"{counts[status]} {status}" for status in order if counts.get(status))


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _summary_rows(records: Sequence[_JobRecord]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for record in records:
        duration = None
        if record.started_at is not None and record.finished_at is not None:
            duration = record.finished_at - record.started_at
        attempts = str(record.result.attempts) if record.result is not None else "0"
        detail = record.detail()
        if record.job.optional:
            detail = f"{detail}; optional" if detail else "optional"
        rows.append((record.job.name, str(record.status), attempts, _seconds(duration), detail))
    return rows


def _failure_excerpts(records: Sequence[_JobRecord], lines: int = 5) -> list[tuple[str, str]]:
    """The last lines of stderr (or stdout) of each job that failed."""
    excerpts = []
    for record in records:
        if record.failed and record.result is not None:
            text = record.result.stderr_tail or record.result.stdout_tail
            tail = text.rstrip("\n").splitlines()[-lines:]
            if tail:
                excerpts.append((record.job.name, "\n".join(tail)))
    return excerpts


@final
class _PlainProgress:
    """One log line per event: for pipes, CI logs and files."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def _line(self, now: float, text: str) -> None:
        self._out.write(f"[{now:7.2f}s] {text}\n")
        self._out.flush()

    def job_started(self, record: _JobRecord, now: float) -> None:
        self._line(now, f"started   {record.job.name}")

    def job_finished(self, record: _JobRecord, now: float) -> None:
        detail = record.detail()
        attempts = record.result.attempts if record.result is not None else 0
        if attempts > 1:
            detail = f"{detail}, {attempts} attempts" if detail else f"{attempts} attempts"
        if record.job.optional and record.failed:
            detail = f"{detail}; optional"
        suffix = f" ({detail})" if detail else ""
        self._line(now, f"{record.status!s:<9} {record.job.name}{suffix}")

    def refresh(self, now: float) -> None:
        pass

    def summary(self, records: Sequence[_JobRecord], elapsed: float, outcome: str) -> None:
        rows = [("job", "status", "attempts", "duration", "detail"), *_summary_rows(records)]
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        out = self._out
        out.write("\n")
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
            out.write("  ".join([*cells, row[4]]).rstrip() + "\n")
        for name, text in _failure_excerpts(records):
            out.write(f"\n--- {name}: last output ---\n{text}\n")
        out.write(f"\n{len(records)} jobs: {_counts_text(records)} in {elapsed:.2f}s: {outcome}\n")
        out.flush()


_STYLES = {
    "succeeded": "green",
    "failed": "bold red",
    "timed_out": "bold red",
    "error": "bold red",
    "skipped": "yellow",
    "cancelled": "magenta",
    "running": "cyan",
    "pending": "dim",
}


@final
class _RichProgress:
    """A live display (counts and one line per running job), then a summary table."""

    def __init__(self, records: Sequence[_JobRecord], *, force_terminal: bool) -> None:
        from rich.console import Console  # optional dependency (the cli extra)
        from rich.live import Live

        self._records = records
        self._console = Console(force_terminal=force_terminal or None, highlight=False)
        # No auto refresh: that would start a thread; a Trio task calls refresh().
        self._live = Live(
            console=self._console, auto_refresh=False, transient=True, redirect_stdout=False
        )
        self._live.start()

    def _render(self, now: float) -> Any:
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 2))
        done = sum(1 for record in self._records if record.finished)
        grid.add_row(Text(f"{done}/{len(self._records)} done: {_counts_text(self._records)}"))
        for record in self._records:
            if record.status == _RUNNING and record.started_at is not None:
                grid.add_row(
                    Text(f"  ⠿ {record.job.name}  {now - record.started_at:.1f}s", style="cyan")
                )
        return grid

    def job_started(self, record: _JobRecord, now: float) -> None:
        self.refresh(now)

    def job_finished(self, record: _JobRecord, now: float) -> None:
        style = _STYLES.get(str(record.status), "")
        detail = record.detail()
        self._live.console.print(
            f"[{style}]{record.status!s:<9}[/] {record.job.name}"
            + (f"  [dim]{detail}[/]" if detail else ""),
            markup=True,
            highlight=False,
        )
        self.refresh(now)

    def refresh(self, now: float) -> None:
        self._live.update(self._render(now), refresh=True)

    def summary(self, records: Sequence[_JobRecord], elapsed: float, outcome: str) -> None:
        from rich.table import Table

        self._live.stop()
        table = Table(title="trine run", title_justify="left")
        for column in ("job", "status", "attempts", "duration", "detail"):
            table.add_column(
                column, justify="right" if column in ("attempts", "duration") else "left"
            )
        for name, status, attempts, duration, detail in _summary_rows(records):
            table.add_row(
                name, f"[{_STYLES.get(status, '')}]{status}[/]", attempts, duration, detail
            )
        self._console.print(table)
        for name, text in _failure_excerpts(records):
            self._console.rule(f"{name}: last output", align="left")
            self._console.print(text, markup=False, highlight=False)
        self._console.print(
            f"{len(records)} jobs: {_counts_text(records)} in {elapsed:.2f}s: [bold]{outcome}[/]"
        )


def _make_progress(mode: str, records: Sequence[_JobRecord]) -> _Progress:
    if mode == "rich" or (mode == "auto" and sys.stdout.isatty()):
        try:
            return _RichProgress(records, force_terminal=mode == "rich")
        except ImportError:
            if mode == "rich":
                raise
    return _PlainProgress(sys.stdout)


@final
@attrs.define(eq=False)
class _Runner:
    """Runs a jobs file: a TaskGraph of jobs, each a command run by the command runner."""

    jobs_file: JobsFile
    progress_mode: str
    logs: str | None
    admission: SystemLoad | None
    records: dict[str, _JobRecord] = attrs.field(init=False)
    progress: _Progress | None = attrs.field(default=None, init=False)
    started: float = attrs.field(default=0.0, init=False)
    signal_received: int | None = attrs.field(default=None, init=False)
    fail_fast_triggered: bool = attrs.field(default=False, init=False)
    run_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope, init=False)
    batch: Batch | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.records = {name: _JobRecord(job) for name, job in self.jobs_file.jobs.items()}

    async def run_job(self, job: Job, *dep_results: object) -> CommandResult:
        assert self.batch is not None
        settings = Settings(
            timeout=None,
            cwd=None,
            output_tail=4096,
            kill_grace=self.jobs_file.run.kill_grace,
            logs=self.logs,
            admission=self.admission,
        )
        try:
            command = Command(
                job.argv,
                id=job.name,
                env=job.env,
                cwd=job.cwd,
                timeout=job.timeout,
                shell=job.shell,
            )
        except (TypeError, ValueError) as exc:  # e.g. a NUL byte: no program could be given it
            result = CommandResult(
                id=job.name,
                argv=job.argv,
                status=CommandStatus.ERROR,
                returncode=None,
                stdout_tail="",
                stderr_tail="",
                duration=0.0,
                attempts=0,
                error=f"cannot start: {exc}",
            )
        else:
            result = await run_command(command, settings, self.batch, command_retry(job.retries))
        self.records[job.name].result = result
        if not result.succeeded:
            raise _JobFailed(result)
        return result

    def on_event(self, event: NodeEvent) -> None:
        record = self.records[event.node.name]
        now = event.time - self.started
        if event.kind == "started":
            record.status = _RUNNING
            record.started_at = now
            assert self.progress is not None
            self.progress.job_started(record, now)
            return
        if record.finished:
            return
        result = event.result
        assert result is not None
        record.finished_at = now
        if result.status is NodeStatus.SUCCEEDED:
            record.status = str(CommandStatus.SUCCEEDED)
        elif result.status is NodeStatus.FAILED:
            error = result.error
            if isinstance(error, _JobFailed):
                record.status = str(error.result.status)
            else:  # pragma: no cover  # run_job raises nothing else
                record.status = str(CommandStatus.ERROR)
        elif result.status is NodeStatus.SKIPPED:
            record.status = _SKIPPED
            if result.skipped_because is not None:
                record.skipped_because = result.skipped_because.name
        else:
            record.status = str(CommandStatus.CANCELLED)
        assert self.progress is not None
        self.progress.job_finished(record, now)
        if self.jobs_file.run.fail_fast and record.failed and not record.job.optional:
            self.fail_fast_triggered = True
            self.run_scope.cancel()

    async def watch_signals(self, signals: Any) -> None:
        async for signum in signals:
            if self.signal_received is None:
                self.signal_received = signum
                self.run_scope.cancel()

    async def refresh_display(self) -> None:
        assert self.progress is not None
        while True:
            await trio.sleep(_REFRESH_INTERVAL)
            self.progress.refresh(trio.current_time() - self.started)

    async def run(self) -> None:
        jobs = self.jobs_file.jobs
        graph = TaskGraph(
            limit=self.jobs_file.run.limit,
            resources={
                name: WeightedSemaphore(capacity)
                for name, capacity in self.jobs_file.resources.items()
            },
        )
        nodes: dict[str, Node[CommandResult]] = {}
        for name in topological_order({name: job.after for name, job in jobs.items()}):
            job = jobs[name]
            nodes[name] = graph.add(
                self.run_job,
                job,
                deps=[nodes[dep] for dep in job.after],
                name=name,
                priority=job.priority,
                resources=dict(job.uses),
            )
        self.started = trio.current_time()
        assert self.progress is not None
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.watch_signals, signals)
                if isinstance(self.progress, _RichProgress):
                    nursery.start_soon(self.refresh_display)
                with self.run_scope:
                    async with Batch(self.jobs_file.run.kill_grace, None) as self.batch:
                        await graph.run(on_event=self.on_event)
                nursery.cancel_scope.cancel()
        now = trio.current_time() - self.started
        for record in self.records.values():
            if not record.finished:
                # Stopped by Ctrl-C or fail_fast before it finished (or started).
                record.status = str(CommandStatus.CANCELLED)
                record.finished_at = now if record.started_at is not None else None

    def exit_code(self) -> int:
        if self.signal_received is not None:
            return 128 + self.signal_received
        required_failures = [
            record for record in self.records.values() if record.failed and not record.job.optional
        ]
        return _FAILED if required_failures else _OK

    def outcome(self) -> str:
        if self.signal_received is not None:
            return f"interrupted by {signal.Signals(self.signal_received).name}"
        if self.exit_code() == _FAILED:
            return "failed" + (" (fail_fast)" if self.fail_fast_triggered else "")
        return "succeeded"

    def report(self, elapsed: float) -> dict[str, Any]:
        jobs: dict[str, Any] = {}
        for name, record in self.records.items():
            result = record.result
            job = record.job
            jobs[name] = {
                "status": str(record.status),
                "optional": job.optional,
                "cmd": job.argv if isinstance(job.argv, str) else list(job.argv),
                "after": list(job.after),
                "returncode": result.returncode if result else None,
                "attempts": result.attempts if result else 0,
                "started_at": record.started_at,
                "finished_at": record.finished_at,
                "duration": result.duration if result else None,
                "error": result.error if result else None,
                "skipped_because": record.skipped_because,
                "stdout_tail": result.stdout_tail if result else "",
                "stderr_tail": result.stderr_tail if result else "",
            }
        return {
            "jobs_file": self.jobs_file.path,
            "outcome": self.outcome(),
            "exit_code": self.exit_code(),
            "duration": elapsed,
            "counts": _counts(list(self.records.values())),
            "jobs": jobs,
        }


def _error(message: str) -> int:
    sys.stderr.write(f"{_PROG}: {message}\n")
    return _INVALID


def _load(path: str) -> JobsFile | int:
    try:
        return load_jobs_file(path)
    except JobsFileError as exc:
        for problem in exc.problems:
            sys.stderr.write(f"{_PROG}: {exc.path}: {problem}\n")
        return _INVALID


def _command_text(job: Job) -> str:
    return job.argv if isinstance(job.argv, str) else shlex.join(job.argv)


def _plan_text(jobs_file: JobsFile, *, commands: bool) -> str:
    jobs = jobs_file.jobs
    planned = waves(jobs)
    resources = ", ".join(f"{name}={capacity}" for name, capacity in jobs_file.resources.items())
    lines = [
        f"{jobs_file.path}: {len(jobs)} jobs in {len(planned)} waves, "
        f"limit {jobs_file.run.limit}" + (f", resources {resources}" if resources else "")
    ]
    for number, wave in enumerate(planned, start=1):
        lines.append(f"wave {number}:")
        for name in wave:
            job = jobs[name]
            notes = []
            if job.after:
                notes.append("after " + ", ".join(job.after))
            if job.uses:
                notes.append("uses " + ", ".join(f"{r}={w}" for r, w in job.uses.items()))
            if job.priority:
                notes.append(f"priority {job.priority}")
            if job.optional:
                notes.append("optional")
            line = f"  {name}" + (f"  ({'; '.join(notes)})" if notes else "")
            lines.append(line)
            if commands:
                lines.append(f"      $ {_command_text(job)}")
    return "\n".join(lines) + "\n"


def _dot_text(jobs_file: JobsFile) -> str:
    def quote(name: str) -> str:
        return json.dumps(name)

    lines = ["digraph jobs {", "  rankdir=LR;", "  node [shape=box];"]
    for name, job in jobs_file.jobs.items():
        attributes = []
        if job.optional:
            attributes.append("style=dashed")
        # A real newline, which json.dumps writes as the \n Graphviz expects.
        label = "\n".join([name, *(f"{r}={w}" for r, w in job.uses.items())])
        attributes.append(f"label={quote(label)}")
        lines.append(f"  {quote(name)} [{', '.join(attributes)}];")
    for name, job in jobs_file.jobs.items():
        lines.extend(f"  {quote(dep)} -> {quote(name)};" for dep in job.after)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _command_graph(args: argparse.Namespace) -> int:
    loaded = _load(args.jobs_file)
    if isinstance(loaded, int):
        return loaded
    sys.stdout.write(_dot_text(loaded) if args.dot else _plan_text(loaded, commands=False))
    return _OK


def _command_run(args: argparse.Namespace) -> int:
    loaded = _load(args.jobs_file)
    if isinstance(loaded, int):
        return loaded
    jobs_file = loaded
    if args.limit is not None:
        jobs_file = attrs.evolve(jobs_file, run=attrs.evolve(jobs_file.run, limit=args.limit))
    if args.dry_run:
        sys.stdout.write(_plan_text(jobs_file, commands=True))
        sys.stdout.write("dry run: nothing was started\n")
        return _OK
    admission = None
    settings = jobs_file.run
    if settings.max_cpu_percent is not None or settings.min_free_memory is not None:
        try:
            admission = SystemLoad(
                max_cpu_percent=settings.max_cpu_percent,
                min_free_memory=settings.min_free_memory,
            )
        except ModuleNotFoundError as exc:
            return _error(f"{jobs_file.path}: run.max_cpu_percent / run.min_free_memory: {exc}")
    if args.logs is not None:
        try:
            os.makedirs(args.logs, exist_ok=True)
        except OSError as exc:
            return _error(f"--logs {args.logs}: {exc.strerror or exc}")
    runner = _Runner(jobs_file, args.progress, args.logs, admission)
    try:
        runner.progress = _make_progress(args.progress, list(runner.records.values()))
    except ImportError:
        return _error("--progress rich needs the rich package: pip install 'trine[cli]'")

    async def main() -> float:
        await runner.run()
        return trio.current_time() - runner.started

    elapsed = trio.run(main)
    assert runner.progress is not None
    runner.progress.summary(list(runner.records.values()), elapsed, runner.outcome())
    if args.json is not None:
        try:
            with open(args.json, "w", encoding="utf-8") as file:
                json.dump(runner.report(elapsed), file, indent=2)
                file.write("\n")
        except OSError as exc:
            sys.stderr.write(f"{_PROG}: --json {args.json}: {exc.strerror or exc}\n")
            return max(runner.exit_code(), _FAILED)
    return runner.exit_code()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Run a TOML jobs file as a graph of concurrent commands.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run the jobs of a jobs file",
        description="Run the jobs as concurrently as dependencies, limit and resources allow.",
        epilog="Exit status: 0 all succeeded, 1 a job failed, 2 invalid jobs file, "
        "130 interrupted (Ctrl-C).",
    )
    run.add_argument("jobs_file", metavar="JOBS_FILE", help="the TOML jobs file")
    run.add_argument("--json", metavar="PATH", help="write a machine-readable report to PATH")
    run.add_argument("--logs", metavar="DIR", help="keep each job's full stdout/stderr in DIR")
    run.add_argument("--limit", type=_positive_int, help="override [run] limit")
    run.add_argument(
        "--dry-run", action="store_true", help="check the file and print the plan; run nothing"
    )
    run.add_argument(
        "--progress",
        choices=("auto", "rich", "plain"),
        default="auto",
        help="live display: rich on a terminal (auto), or plain log lines",
    )
    run.set_defaults(handler=_command_run)
    graph = commands.add_parser(
        "graph",
        help="print the dependency graph and the planned waves",
        description="Print the jobs' dependency graph and the waves they can run in.",
    )
    graph.add_argument("jobs_file", metavar="JOBS_FILE", help="the TOML jobs file")
    graph.add_argument("--dot", action="store_true", help="print Graphviz dot instead")
    graph.set_defaults(handler=_command_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``trine`` command line on *argv* (default ``sys.argv[1:]``); return its exit code."""
    args = _parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        # Ctrl-C outside the run (while loading or printing): nothing is running.
        sys.stderr.write(f"{_PROG}: interrupted\n")
        return 128 + signal.SIGINT
