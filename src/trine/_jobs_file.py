"""The jobs file of the ``trine`` command line: reading and validating it.

A jobs file is TOML::

    [run]
    limit = 4            # jobs running at once (default: the number of CPUs)
    timeout = 60         # seconds per attempt, for jobs without their own
    retries = 0          # extra attempts for a failed or timed-out job
    fail_fast = false    # stop everything at the first (non-optional) failure
    max_cpu_percent = 90 # hold new jobs back while the machine is busier
    min_free_memory = 1_000_000_000  # ... or has less free memory (bytes)

    [resources]
    db = 1               # name = capacity

    [jobs.fetch]
    cmd = ["python3", "fetch.py"]

    [jobs.clean]
    cmd = "python3 clean.py | gzip > clean.gz"
    shell = true
    after = ["fetch"]
    uses = {db = 1}      # or a list of names, each with weight 1

Everything is checked before anything runs; each problem is reported with
the path of the offending value (``jobs.clean.after: unknown job 'fetch_tx'``).
This module knows nothing of how the jobs are run.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, final

import attrs

__all__ = [
    "Job",
    "JobsFile",
    "JobsFileError",
    "RunSettings",
    "load_jobs_file",
    "parse_jobs",
    "waves",
]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TOP_KEYS = ("run", "resources", "jobs")
_RUN_KEYS = (
    "limit",
    "timeout",
    "retries",
    "fail_fast",
    "kill_grace",
    "max_cpu_percent",
    "min_free_memory",
)
_JOB_KEYS = (
    "cmd",
    "shell",
    "after",
    "uses",
    "timeout",
    "retries",
    "priority",
    "env",
    "cwd",
    "optional",
    "description",
)


@final
class JobsFileError(ValueError):
    """The jobs file cannot be read or is invalid; one message per problem."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))


@final
@attrs.frozen
class RunSettings:
    """The ``[run]`` table."""

    limit: int
    timeout: float | None
    retries: int
    fail_fast: bool
    kill_grace: float
    max_cpu_percent: float | None
    min_free_memory: int | None


@final
@attrs.frozen
class Job:
    """One ``[jobs.NAME]`` table, validated; ``cwd`` resolved against the file's directory."""

    name: str
    argv: tuple[str, ...] | str
    shell: bool
    after: tuple[str, ...]
    uses: Mapping[str, int]
    timeout: float | None
    retries: int
    priority: int
    env: Mapping[str, str]
    cwd: str
    optional: bool
    description: str | None


@final
@attrs.frozen
class JobsFile:
    """A validated jobs file: settings, resources and jobs in file order."""

    path: str
    run: RunSettings
    resources: Mapping[str, int]
    jobs: Mapping[str, Job]


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _describe(value: object) -> str:
    if isinstance(value, dict | list):
        return _type_name(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{_type_name(value)} {value!r}"


class _Checker:
    """Collects problems, each with the dotted path of the value at fault."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def unknown_keys(self, where: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                prefix = f"{where}: " if where else ""
                self.problems.append(f"{prefix}unknown key {key!r}{hint}")

    def table(self, where: str, value: object) -> Mapping[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(where, f"must be a table, got {_describe(value)}")
            return None
        return value

    def integer(self, where: str, value: object, minimum: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"must be an integer, got {_describe(value)}")
            return None
        if value < minimum:
            self.fail(where, f"must be >= {minimum}, got {value}")
            return None
        return value

    def seconds(self, where: str, value: object) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, f"must be a number of seconds, got {_describe(value)}")
            return None
        if math.isnan(value) or value <= 0:
            self.fail(where, f"must be > 0, got {value}")
            return None
        return float(value)

    def boolean(self, where: str, value: object) -> bool | None:
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false, got {_describe(value)}")
            return None
        return value

    def string(self, where: str, value: object) -> str | None:
        if not isinstance(value, str):
            self.fail(where, f"must be a string, got {_describe(value)}")
            return None
        return value

    def names(self, where: str, value: object) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(where, f"must be an array of job names, got {_describe(value)}")
            return []
        return value


def load_jobs_file(path: str | os.PathLike[str]) -> JobsFile:
    """Read and validate the jobs file at *path*.

    Raises:
      JobsFileError: listing every problem found (unreadable file, invalid
        TOML, wrong types, unknown keys, jobs or resources, a cycle).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise JobsFileError(path, [f"cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise JobsFileError(path, [f"invalid TOML: {exc}"]) from None
    return parse_jobs(data, path=path, base=Path(path).resolve().parent)


def parse_jobs(data: Mapping[str, Any], *, path: str, base: Path) -> JobsFile:
    """Validate the parsed TOML *data*; relative ``cwd``s are resolved against *base*."""
    check = _Checker()
    check.unknown_keys("", data, _TOP_KEYS)
    run = _parse_run(check, data.get("run", {}))
    resources = _parse_resources(check, data.get("resources", {}))
    jobs: dict[str, Job] = {}
    raw_jobs = check.table("jobs", data.get("jobs", {}))
    if raw_jobs is not None and not raw_jobs:
        check.problems.append("no jobs: add at least one [jobs.NAME] table")
    for name, raw in (raw_jobs or {}).items():
        job = _parse_job(check, name, raw, run, resources, base)
        if job is not None:
            jobs[name] = job
    if raw_jobs:
        for job in jobs.values():
            for dep in job.after:
                if dep not in raw_jobs:
                    check.fail(f"jobs.{job.name}.after", f"unknown job {dep!r}")
                elif dep == job.name:
                    check.fail(f"jobs.{job.name}.after", "a job cannot run after itself")
    if not check.problems:
        cycle = _find_cycle({name: job.after for name, job in jobs.items()})
        if cycle is not None:
            check.problems.append("cycle: " + " -> ".join(cycle))
    if check.problems:
        raise JobsFileError(path, check.problems)
    assert run is not None
    return JobsFile(path=path, run=run, resources=resources, jobs=jobs)


def _parse_run(check: _Checker, value: object) -> RunSettings | None:
    table = check.table("run", value)
    if table is None:
        return None
    check.unknown_keys("run", table, _RUN_KEYS)
    limit = check.integer("run.limit", table.get("limit", os.cpu_count() or 1), 1)
    timeout = None
    if "timeout" in table:
        timeout = check.seconds("run.timeout", table["timeout"])
    retries = check.integer("run.retries", table.get("retries", 0), 0)
    fail_fast = check.boolean("run.fail_fast", table.get("fail_fast", False))
    kill_grace = 5.0
    if "kill_grace" in table:
        kill_grace = check.seconds("run.kill_grace", table["kill_grace"]) or 5.0
    max_cpu = None
    if "max_cpu_percent" in table:
        raw = table["max_cpu_percent"]
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 100:
            check.fail(
                "run.max_cpu_percent", f"must be a percentage in (0, 100], got {_describe(raw)}"
            )
        else:
            max_cpu = float(raw)
    min_free = None
    if "min_free_memory" in table:
        min_free = check.integer("run.min_free_memory", table["min_free_memory"], 0)
    if limit is None or retries is None or fail_fast is None:
        return None
    return RunSettings(
        limit=limit,
        timeout=timeout,
        retries=retries,
        fail_fast=fail_fast,
        kill_grace=kill_grace,
        max_cpu_percent=max_cpu,
        min_free_memory=min_free,
    )


def _parse_resources(check: _Checker, value: object) -> dict[str, int]:
    table = check.table("resources", value)
    resources: dict[str, int] = {}
    for name, capacity in (table or {}).items():
        checked = check.integer(f"resources.{name}", capacity, 1)
        if checked is not None:
            resources[name] = checked
    return resources


def _parse_job(
    check: _Checker,
    name: str,
    value: object,
    run: RunSettings | None,
    resources: Mapping[str, int],
    base: Path,
) -> Job | None:
    where = f"jobs.{name}"
    before = len(check.problems)
    if not _NAME.match(name):
        check.fail(
            f"jobs.{name!r}",
            "a job name may only contain letters, digits, '_', '-' and '.' "
            "(and may not start with '-' or '.')",
        )
    table = check.table(where, value)
    if table is None:
        return None
    check.unknown_keys(where, table, _JOB_KEYS)
    shell = check.boolean(f"{where}.shell", table.get("shell", False))
    argv: tuple[str, ...] | str | None = None
    if "cmd" not in table:
        check.fail(where, "missing key 'cmd'")
    else:
        cmd = table["cmd"]
        if isinstance(cmd, str):
            if shell is True:
                argv = cmd
            elif shell is False:
                check.fail(
                    f"{where}.cmd",
                    "is a string: set shell = true to run it through /bin/sh, "
                    "or give an array of arguments",
                )
        elif isinstance(cmd, list) and cmd and all(isinstance(arg, str) for arg in cmd):
            if shell is True:
                check.fail(f"{where}.cmd", "with shell = true, cmd must be one string")
            argv = tuple(cmd)
        elif isinstance(cmd, list) and not cmd:
            check.fail(f"{where}.cmd", "must not be empty")
        else:
            check.fail(
                f"{where}.cmd",
                f"must be an array of strings (or a string with shell = true), "
                f"got {_describe(cmd)}",
            )
    after = tuple(check.names(f"{where}.after", table.get("after", [])))
    uses = _parse_uses(check, where, table.get("uses", []), resources)
    timeout = run.timeout if run is not None else None
    if "timeout" in table:
        timeout = check.seconds(f"{where}.timeout", table["timeout"])
    retries = check.integer(f"{where}.retries", table.get("retries", run.retries if run else 0), 0)
    priority = table.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        check.fail(f"{where}.priority", f"must be an integer, got {_describe(priority)}")
    env: dict[str, str] = {}
    raw_env = check.table(f"{where}.env", table.get("env", {}))
    for key, item in (raw_env or {}).items():
        if isinstance(item, str):
            env[key] = item
        else:
            check.fail(f"{where}.env.{key}", f"must be a string, got {_describe(item)}")
    cwd = str(base)
    if "cwd" in table:
        raw_cwd = check.string(f"{where}.cwd", table["cwd"])
        if raw_cwd is not None:
            cwd = str(base / raw_cwd)
    optional = check.boolean(f"{where}.optional", table.get("optional", False))
    description = None
    if "description" in table:
        description = check.string(f"{where}.description", table["description"])
    if len(check.problems) > before or argv is None:
        return None
    return Job(
        name=name,
        argv=argv,
        shell=bool(shell),
        after=tuple(dict.fromkeys(after)),
        uses=uses,
        timeout=timeout,
        retries=retries or 0,
        priority=priority,
        env=env,
        cwd=cwd,
        optional=bool(optional),
        description=description,
    )


def _parse_uses(
    check: _Checker, where: str, value: object, resources: Mapping[str, int]
) -> dict[str, int]:
    where = f"{where}.uses"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        items: list[tuple[str, object]] = [(name, 1) for name in value]
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        check.fail(
            where,
            "must be an array of resource names or a table of name = weight, "
            f"got {_describe(value)}",
        )
        return {}
    uses: dict[str, int] = {}
    for name, weight in items:
        if name not in resources:
            known = ", ".join(repr(known) for known in resources) or "none are defined"
            check.fail(where, f"unknown resource {name!r} (resources: {known})")
            continue
        checked = check.integer(f"{where}.{name}", weight, 1)
        if checked is None:
            continue
        if checked > resources[name]:
            check.fail(
                f"{where}.{name}",
                f"weight {checked} is more than resource {name!r} has ({resources[name]})",
            )
            continue
        uses[name] = checked
    return uses


def _find_cycle(deps: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """The first cycle met by a depth-first search in file order, as ``[a, b, a]``."""
    done: set[str] = set()
    for root in deps:
        if root in done:
            continue
        path = [root]
        on_path = {root}
        stack = [iter(deps[root])]
        while stack:
            for dep in stack[-1]:
                if dep in on_path:
                    return [*path[path.index(dep) :], dep]
                if dep in done:
                    continue
                path.append(dep)
                on_path.add(dep)
                stack.append(iter(deps[dep]))
                break
            else:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
    return None


def waves(jobs: Mapping[str, Job]) -> list[list[str]]:
    """Group the jobs into waves: a job's wave is one more than its latest dependency's.

    Every job of a wave can run at the same time once the waves before it are
    done (resources and ``limit`` permitting). Jobs keep file order within a wave.
    """
    level: dict[str, int] = {}

    def wave_of(name: str) -> int:
        # Iterative, so a long chain of jobs does not hit the recursion limit.
        stack = [name]
        while stack:
            current = stack[-1]
            pending = [dep for dep in jobs[current].after if dep not in level]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            level[current] = 1 + max((level[dep] for dep in jobs[current].after), default=-1)
        return level[name]

    grouped: list[list[str]] = []
    for name in jobs:
        index = wave_of(name)
        while len(grouped) <= index:
            grouped.append([])
        grouped[index].append(name)
    return grouped
