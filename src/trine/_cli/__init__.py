"""The ``trine`` command line: run a jobs file as a graph of commands.

``trine run jobs.toml`` runs the jobs of a TOML jobs file (see
:mod:`trine._jobs_file` for the format) as concurrently as their ``after``
dependencies, the ``limit`` and the named ``resources`` allow, each through
the command runner (timeouts, retries, process-group kills), scheduled by a
:class:`~trine.TaskGraph`. ``trine graph jobs.toml`` prints the plan.

The modules, one concept each:

- ``_runner``: the run (the graph, each job's attempts, halting, stopping);
- ``_records``: what is known of each job, and the report made of it;
- ``_progress``: the live display and the summary;
- ``_joblog``: ``--joblog``, ``--resume`` and ``--resume-failed``;
- ``_up_to_date``: skipping jobs whose outputs are newer than their inputs;
- ``_plan``: ``trine graph`` and ``--dry-run``.

Exit codes: 0 every job succeeded (optional jobs and the jobs skipped
because of them aside), 1 a job failed, 2 the jobs file (or the command
line) is invalid and nothing ran, 130 interrupted by Ctrl-C (143 by
SIGTERM): running commands were stopped and the reports still written.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs
import trio

from .._jobs_file import JobsFile, JobsFileError, load_jobs_file, parse_halt, select
from .._process import SystemLoad
from .._util import describe
from .._version import __version__
from ._joblog import JobLogError, read_joblog, resumable
from ._plan import dot_text, plan_text
from ._progress import make_display, silence_stdout
from ._records import job_json, run_report_of
from ._runner import Runner, RunOptions

__all__ = ["main"]

_PROG = "trine"
_OK, _FAILED, _INVALID = 0, 1, 2


class _Invalid(Exception):
    """The command line or the jobs file is invalid: exit 2, nothing run."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _write_json(path: str, data: dict[str, Any]) -> str | None:
    """Write *data* to *path*; return why not, or ``None``."""
    try:
        with open(path, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _invalid(args: argparse.Namespace, path: str, problems: list[str]) -> int:
    for problem in problems:
        sys.stderr.write(f"{_PROG}: {problem}\n")
    json_path = getattr(args, "json", None)
    if json_path is not None:
        report: dict[str, Any] = {"jobs_file": path, "outcome": "invalid", "exit_code": _INVALID}
        report["problems"] = problems
        error = _write_json(json_path, report)
        if error is not None:
            sys.stderr.write(f"{_PROG}: --json {json_path}: {error}\n")
    return _INVALID


def _load(args: argparse.Namespace) -> JobsFile:
    """The jobs file, narrowed to the jobs named on the command line (and what they need)."""
    try:
        jobs_file = load_jobs_file(args.jobs_file)
    except JobsFileError as exc:
        raise _Invalid([f"{exc.path}: {problem}" for problem in exc.problems]) from None
    if args.jobs:
        try:
            jobs = select(jobs_file.jobs, args.jobs)
        except KeyError as exc:
            name = exc.args[0]
            names = list(jobs_file.groups()) + list(jobs_file.jobs)
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _Invalid([f"{jobs_file.path}: no job {name!r}{hint}"]) from None
        jobs_file = attrs.evolve(jobs_file, jobs=jobs)
    return jobs_file


def _command_graph(args: argparse.Namespace) -> int:
    jobs_file = _load(args)
    sys.stdout.write(dot_text(jobs_file) if args.dot else plan_text(jobs_file, commands=False))
    return _OK


def _run_settings(args: argparse.Namespace, jobs_file: JobsFile) -> JobsFile:
    """The jobs file's ``[run]`` with the command line's overrides."""
    run = jobs_file.run
    if args.limit is not None:
        run = attrs.evolve(run, limit=args.limit)
    if args.fail_fast:
        run = attrs.evolve(run, halt=parse_halt("now,fail=1"))
    elif args.halt is not None:
        run = attrs.evolve(run, halt=args.halt)
    return attrs.evolve(jobs_file, run=run)


def _options(args: argparse.Namespace, jobs_file: JobsFile) -> tuple[RunOptions, dict[str, Any]]:
    settings = jobs_file.run
    admission = None
    if settings.max_cpu_percent is not None or settings.min_free_memory is not None:
        try:
            admission = SystemLoad(
                max_cpu_percent=settings.max_cpu_percent,
                min_free_memory=settings.min_free_memory,
            )
        except ModuleNotFoundError as exc:
            raise _Invalid(
                [f"{jobs_file.path}: run.max_cpu_percent / run.min_free_memory: {exc}"]
            ) from None
    if args.logs is not None:
        try:
            os.makedirs(args.logs, exist_ok=True)
        except OSError as exc:
            raise _Invalid([f"--logs {args.logs}: {exc.strerror or exc}"]) from None
    resume: Literal["all", "failed"] | None = (
        "all" if args.resume else "failed" if args.resume_failed else None
    )
    resumed = {}
    if resume is not None:
        if args.joblog is None:
            option = "--resume" if args.resume else "--resume-failed"
            raise _Invalid([f"{option} needs --joblog FILE: the log of the run to resume"])
        try:
            logged = read_joblog(args.joblog)
        except JobLogError as exc:
            raise _Invalid([f"--joblog {args.joblog}: {exc}"]) from None
        resumed = {
            name: logged[name]
            for name, job in jobs_file.jobs.items()
            if name in logged and resumable(logged[name], job.command(), resume)
        }
    options = RunOptions(
        logs=args.logs,
        joblog=args.joblog,
        resume=resume,
        output_tag=args.output == "tag",
        halt=settings.halt,
        admission=admission,
    )
    return options, resumed


def _json_report(runner: Runner, jobs_file: JobsFile, elapsed: float) -> dict[str, Any]:
    report = _html_report(runner, jobs_file, elapsed)
    data = report.to_dict()
    return {
        "jobs_file": jobs_file.path,
        "outcome": runner.outcome(),
        "exit_code": runner.exit_code(),
        "duration": elapsed,
        "counts": dict(report.summary().counts),
        "jobs": {record.name: job_json(record) for record in runner.records},
        **{key: data[key] for key in ("limit", "resources", "summary", "critical_path")},
        **{key: data[key] for key in ("timeline", "concurrency", "resource_use")},
    }


def _html_report(runner: Runner, jobs_file: JobsFile, elapsed: float) -> Any:
    return run_report_of(
        runner.records,
        limit=jobs_file.run.limit,
        resources=jobs_file.resources,
        finished_at=elapsed,
        title=f"trine run {jobs_file.path}",
        outcome=runner.outcome(),
    )


def _write_reports(
    args: argparse.Namespace, runner: Runner, jobs_file: JobsFile, elapsed: float
) -> bool:
    """Write ``--json`` and ``--report``; ``False`` if one could not be written."""
    ok = True
    if args.json is not None:
        error = _write_json(args.json, _json_report(runner, jobs_file, elapsed))
        if error is not None:
            sys.stderr.write(f"{_PROG}: --json {args.json}: {error}\n")
            ok = False
    if args.report is not None:
        try:
            with open(args.report, "w", encoding="utf-8") as file:
                file.write(_html_report(runner, jobs_file, elapsed).to_html())
        except OSError as exc:
            sys.stderr.write(f"{_PROG}: --report {args.report}: {exc.strerror or exc}\n")
            ok = False
        else:
            with contextlib.suppress(OSError):  # stdout's reader may have gone
                sys.stdout.write(f"report: {args.report}\n")
    if runner.joblog_error is not None:
        sys.stderr.write(f"{_PROG}: --joblog {args.joblog}: {runner.joblog_error}\n")
        ok = False
    return ok


def _command_run(args: argparse.Namespace) -> int:
    jobs_file = _run_settings(args, _load(args))
    if args.dry_run:
        sys.stdout.write(plan_text(jobs_file, commands=True))
        sys.stdout.write("dry run: nothing was started\n")
        return _OK
    options, resumed = _options(args, jobs_file)
    runner = Runner(jobs_file, options, resumed)
    try:
        display = make_display(args.progress, runner, sys.stdout, sys.stdout.isatty())
    except ImportError:
        raise _Invalid(
            ["--progress rich needs the rich package: pip install 'trine[cli]'"]
        ) from None
    try:
        runner.open_joblog()
    except JobLogError as exc:
        raise _Invalid([f"--joblog {args.joblog}: {exc}"]) from None
    wall_start = time.time()

    async def main() -> float:
        await runner.run(display, wall_start)
        return runner.now()

    elapsed = trio.run(main)
    display.summary(elapsed, runner.outcome())
    written = _write_reports(args, runner, jobs_file, elapsed)
    code = runner.exit_code()
    return code if written else max(code, _FAILED)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    if value > sys.maxsize:
        raise argparse.ArgumentTypeError(f"must be <= {sys.maxsize}, got {describe(value)}")
    return value


def _halt(text: str) -> Any:
    try:
        return parse_halt(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description="Run a TOML jobs file as a graph of concurrent commands."
    )
    parser.add_argument("--version", action="version", version=f"{_PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run the jobs of a jobs file",
        description="Run the jobs as concurrently as dependencies, limit and resources allow.",
        epilog="Exit status: 0 all succeeded, 1 a job failed, 2 invalid jobs file or options, "
        "130 interrupted (Ctrl-C).",
    )
    run.add_argument("jobs_file", metavar="JOBS_FILE", help="the TOML jobs file")
    run.add_argument(
        "jobs", metavar="JOB", nargs="*", help="run only these jobs (and the jobs they need)"
    )
    run.add_argument("--json", metavar="PATH", help="write a machine-readable report to PATH")
    run.add_argument(
        "--report", metavar="PATH", help="write the run report (a self-contained HTML page)"
    )
    run.add_argument("--logs", metavar="DIR", help="keep every attempt's full stdout/stderr in DIR")
    run.add_argument(
        "--joblog", metavar="FILE", help="log each attempt as it ends (JSON lines) to FILE"
    )
    resume = run.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume", action="store_true", help="skip the jobs the --joblog says finished"
    )
    resume.add_argument(
        "--resume-failed",
        action="store_true",
        help="skip the jobs the --joblog says succeeded; run the failed ones again",
    )
    run.add_argument("--limit", type=_positive_int, help="override [run] limit")
    halt = run.add_mutually_exclusive_group()
    halt.add_argument(
        "--halt",
        type=_halt,
        metavar="WHEN,WHY=N",
        help="stop early: soon|now,fail|success|done=N or N%% (overrides [run] halt)",
    )
    halt.add_argument(
        "--fail-fast", action="store_true", help="stop everything at the first failure"
    )
    run.add_argument(
        "--dry-run", action="store_true", help="check the file and print the plan; run nothing"
    )
    run.add_argument(
        "--progress",
        choices=("auto", "rich", "plain"),
        default="auto",
        help="live display: rich on a terminal (auto), or plain log lines",
    )
    run.add_argument(
        "--output",
        choices=("none", "tag"),
        default="none",
        help="tag: show running jobs' output as it comes, each line prefixed by its job",
    )
    run.set_defaults(handler=_command_run)
    graph = commands.add_parser(
        "graph",
        help="print the dependency graph and the planned waves",
        description="Print the jobs' dependency graph and the waves they can run in.",
    )
    graph.add_argument("jobs_file", metavar="JOBS_FILE", help="the TOML jobs file")
    graph.add_argument("jobs", metavar="JOB", nargs="*", help="only these jobs and their needs")
    graph.add_argument("--dot", action="store_true", help="print Graphviz dot instead")
    graph.set_defaults(handler=_command_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``trine`` command line on *argv* (default ``sys.argv[1:]``); return its exit code."""
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        # Job names after options (`trine run jobs.toml --json r.json report`): argparse
        # gives a `*` positional only what comes before the first option.
        if not hasattr(args, "jobs") or any(extra.startswith("-") for extra in extras):
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        args.jobs = [*args.jobs, *extras]
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except _Invalid as exc:
        return _invalid(args, args.jobs_file, exc.problems)
    except BrokenPipeError:
        # The reader of stdout left (`trine graph jobs.toml | head`): as if by SIGPIPE.
        silence_stdout()
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        # Ctrl-C outside the run (while loading or printing): nothing is running.
        sys.stderr.write(f"{_PROG}: interrupted\n")
        return 128 + signal.SIGINT
