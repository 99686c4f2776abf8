"""Reading a jobs file: TOML, then every table checked, then the matrices expanded."""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._checks import Checker, describe
from ._matrix import Template, expand, parse_matrix
from ._model import HaltPolicy, Job, JobsFile, JobsFileError, RetrySettings, RunSettings, parse_halt

__all__ = ["load_jobs_file", "parse_jobs"]

# fullmatch: with match and "$", a name ending in a newline would pass.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_TOP_KEYS = ("run", "resources", "jobs")
_RETRY_KEYS = ("retry_delay", "retry_backoff", "retry_jitter", "retry_max_delay")
_RUN_KEYS = (
    "limit",
    "timeout",
    "retries",
    *_RETRY_KEYS,
    "fail_fast",
    "halt",
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
    *_RETRY_KEYS,
    "priority",
    "env",
    "cwd",
    "optional",
    "description",
    "matrix",
    "inputs",
    "outputs",
)
_DEFAULT_MAX_DELAY = 60.0
# A job runs 1 + retries times, a count that must fit in sys.maxsize (as run_commands').
_MAX_RETRIES = sys.maxsize - 1


def load_jobs_file(path: str | os.PathLike[str]) -> JobsFile:
    """Read and validate the jobs file at *path*.

    Raises:
      JobsFileError: listing every problem found (unreadable file, not UTF-8,
        invalid TOML, wrong types, unknown keys, jobs or resources, missing
        working directories, a cycle).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise JobsFileError(path, [f"cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise JobsFileError(
            path,
            [
                f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                f"(line {line}, column {column}); save the file as UTF-8"
            ],
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise JobsFileError(path, [f"invalid TOML: {exc}"]) from None
    except ValueError as exc:  # an integer of more digits than int() converts
        raise JobsFileError(path, [f"invalid TOML: {exc}"]) from None
    return parse_jobs(data, path=path, base=Path(path).resolve().parent)


def parse_jobs(data: Mapping[str, Any], *, path: str, base: Path) -> JobsFile:
    """Validate the parsed TOML *data*; relative ``cwd``s are resolved against *base*.

    Raises:
      JobsFileError: listing every problem found.
    """
    check = Checker()
    check.unknown_keys("", data, _TOP_KEYS)
    run = _parse_run(check, data.get("run", {}))
    resources = _parse_resources(check, data.get("resources", {}))
    raw_jobs = check.table("jobs", data.get("jobs", {}))
    if raw_jobs is not None and not raw_jobs:
        check.problems.append("no jobs: add at least one [jobs.NAME] table")
    templates: dict[str, Template] = {}
    for name, raw in (raw_jobs or {}).items():
        templates[name] = _parse_template(check, name, raw, run, resources, base)
    jobs = expand(check, templates)
    if check.problems:
        raise JobsFileError(path, check.problems)
    assert run is not None
    return JobsFile(path=path, run=run, resources=resources, jobs=jobs)


def _parse_run(check: Checker, value: object) -> RunSettings | None:
    table = check.table("run", value)
    if table is None:
        return None
    check.unknown_keys("run", table, _RUN_KEYS)
    limit = check.integer("run.limit", table.get("limit", os.cpu_count() or 1), 1)
    timeout = None
    if "timeout" in table:
        timeout = check.seconds("run.timeout", table["timeout"])
    retries = check.integer("run.retries", table.get("retries", 0), 0, _MAX_RETRIES)
    retry = _parse_retry_keys(check, "run", table)
    fail_fast = check.boolean("run.fail_fast", table.get("fail_fast", False))
    halt = None
    if "halt" in table:
        text = check.string("run.halt", table["halt"])
        if text is not None:
            try:
                halt = parse_halt(text)
            except ValueError as exc:
                check.fail("run.halt", str(exc))
        if fail_fast:
            check.fail("run.fail_fast", "give either fail_fast or halt, not both")
    elif fail_fast:
        halt = HaltPolicy("now", "fail", 1, None)
    kill_grace = 5.0
    if "kill_grace" in table:
        kill_grace = check.seconds("run.kill_grace", table["kill_grace"]) or 5.0
    max_cpu = None
    if "max_cpu_percent" in table:
        raw = table["max_cpu_percent"]
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 100:
            check.fail(
                "run.max_cpu_percent", f"must be a percentage in (0, 100], got {describe(raw)}"
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
        retry=retry,
        halt=halt,
        kill_grace=kill_grace,
        max_cpu_percent=max_cpu,
        min_free_memory=min_free,
    )


def _parse_retry_keys(
    check: Checker, where: str, table: Mapping[str, Any], default: RetrySettings | None = None
) -> RetrySettings:
    """The ``retry_*`` keys of a ``[run]`` or job table (a job's default: the run's)."""
    settings = default or RetrySettings()
    delay = settings.delay
    if "retry_delay" in table:
        delay = check.seconds(f"{where}.retry_delay", table["retry_delay"], zero=True) or 0.0
    backoff = settings.backoff
    if "retry_backoff" in table:
        raw = table["retry_backoff"]
        if raw in ("constant", "exponential"):
            backoff = raw
        else:
            check.fail(
                f"{where}.retry_backoff",
                f"must be 'constant' or 'exponential', got {describe(raw)}",
            )
    jitter = settings.jitter
    if "retry_jitter" in table:
        raw = table["retry_jitter"]
        if raw is True or raw == "full":
            jitter = "full"
        elif raw is False:
            jitter = None
        elif raw == "equal":
            jitter = "equal"
        else:
            check.fail(
                f"{where}.retry_jitter",
                f"must be true, false, 'full' or 'equal', got {describe(raw)}",
            )
    max_delay = settings.max_delay
    if "retry_max_delay" in table:
        max_delay = check.seconds(f"{where}.retry_max_delay", table["retry_max_delay"], zero=True)
        if max_delay is not None and max_delay < delay:
            check.fail(
                f"{where}.retry_max_delay",
                f"must be >= retry_delay ({delay:g}), got {max_delay:g}",
            )
    elif max_delay is not None and max_delay < delay:
        # The job's own retry_delay against the [run] table's retry_max_delay: no
        # delay is longer than the maximum, whichever table set them (any backoff).
        check.fail(
            f"{where}.retry_delay",
            f"must be <= retry_max_delay ({max_delay:g}, from [run]), got {delay:g}; "
            "give the job its own retry_max_delay",
        )
    return RetrySettings(delay, backoff, jitter, max_delay)


def _parse_resources(check: Checker, value: object) -> dict[str, int]:
    table = check.table("resources", value)
    resources: dict[str, int] = {}
    for name, capacity in (table or {}).items():
        checked = check.integer(f"resources.{name}", capacity, 1)
        if checked is not None:
            resources[name] = checked
    return resources


def _parse_template(
    check: Checker,
    name: str,
    value: object,
    run: RunSettings | None,
    resources: Mapping[str, int],
    base: Path,
) -> Template:
    where = f"jobs.{name}"
    before = len(check.problems)
    if not _NAME.fullmatch(name):
        check.fail(
            f"jobs.{name!r}",
            "a job name may only contain letters, digits, '_', '-' and '.' "
            "(and may not start with '-' or '.')",
        )
    table = check.table(where, value)
    if table is None:
        return Template(name, [])
    # Dependencies first, so that they are checked whatever else is wrong.
    after = check.strings(f"{where}.after", table.get("after", []), "job names") or []
    check.unknown_keys(where, table, _JOB_KEYS)
    shell = check.boolean(f"{where}.shell", table.get("shell", False))
    argv = _parse_cmd(check, where, table, shell)
    uses = _parse_uses(check, where, table.get("uses", []), resources)
    timeout = run.timeout if run is not None else None
    if "timeout" in table:
        timeout = check.seconds(f"{where}.timeout", table["timeout"])
    retries = check.integer(
        f"{where}.retries", table.get("retries", run.retries if run else 0), 0, _MAX_RETRIES
    )
    retry = _parse_retry_keys(check, where, table, run.retry if run is not None else None)
    priority = table.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        check.fail(f"{where}.priority", f"must be an integer, got {describe(priority)}")
    env: dict[str, str] = {}
    raw_env = check.table(f"{where}.env", table.get("env", {}))
    for key, item in (raw_env or {}).items():
        if not key or "=" in key or "\0" in key:
            check.fail(
                f"{where}.env",
                f"a variable name must be non-empty, without '=' and NUL bytes, got {key!r}",
            )
        elif not isinstance(item, str):
            check.fail(f"{where}.env.{key}", f"must be a string, got {describe(item)}")
        elif check.text(f"{where}.env.{key}", item):
            env[key] = item
    cwd = str(base)
    if "cwd" in table:
        raw_cwd = check.string(f"{where}.cwd", table["cwd"])
        if raw_cwd is not None and check.text(f"{where}.cwd", raw_cwd):
            cwd = str(base / raw_cwd)
    optional = check.boolean(f"{where}.optional", table.get("optional", False))
    description = None
    if "description" in table:
        description = check.string(f"{where}.description", table["description"])
    inputs = check.strings(f"{where}.inputs", table.get("inputs", []), "glob patterns") or []
    outputs = check.strings(f"{where}.outputs", table.get("outputs", []), "glob patterns") or []
    if inputs and not outputs:
        check.fail(
            f"{where}.inputs",
            "without outputs there is nothing to compare the inputs with: add outputs",
        )
    matrix = parse_matrix(check, where, table.get("matrix"))
    template = Template(name, after, matrix=matrix)
    if len(check.problems) > before or argv is None:
        return template
    template.job = Job(
        name=name,
        argv=argv,
        shell=bool(shell),
        after=tuple(dict.fromkeys(after)),
        uses=uses,
        timeout=timeout,
        retries=retries or 0,
        retry_delay=retry.delay,
        retry_backoff=retry.backoff,
        retry_jitter=retry.jitter,
        retry_max_delay=(
            retry.max_delay if retry.max_delay is not None else max(_DEFAULT_MAX_DELAY, retry.delay)
        ),
        priority=priority,
        env=env,
        cwd=cwd,
        optional=bool(optional),
        description=description,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        group=name,
    )
    return template


def _parse_cmd(
    check: Checker, where: str, table: Mapping[str, Any], shell: bool | None
) -> tuple[str, ...] | str | None:
    if "cmd" not in table:
        check.fail(where, "missing key 'cmd'")
        return None
    cmd = table["cmd"]
    if isinstance(cmd, str):
        if shell is False:
            check.fail(
                f"{where}.cmd",
                "is a string: set shell = true to run it through /bin/sh, "
                "or give an array of arguments",
            )
        elif not cmd.strip():
            check.fail(f"{where}.cmd", "must not be empty")
        elif shell is True and check.text(f"{where}.cmd", cmd):
            return cmd
        return None
    if isinstance(cmd, list) and cmd and all(isinstance(arg, str) for arg in cmd):
        if shell is True:
            check.fail(f"{where}.cmd", "with shell = true, cmd must be one string")
        elif not cmd[0]:
            check.fail(f"{where}.cmd", "the program (the first item) must not be empty")
        else:
            for arg in cmd:
                check.text(f"{where}.cmd", arg)  # a problem makes the job none
        return tuple(cmd)
    if isinstance(cmd, list) and not cmd:
        check.fail(f"{where}.cmd", "must not be empty")
    else:
        check.fail(
            f"{where}.cmd",
            f"must be an array of strings (or a string with shell = true), got {describe(cmd)}",
        )
    return None


def _parse_uses(
    check: Checker, where: str, value: object, resources: Mapping[str, int]
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
            f"got {describe(value)}",
        )
        return {}
    uses: dict[str, int] = {}
    for name, weight in items:
        if name not in resources:
            known = (
                "resources: " + ", ".join(repr(known) for known in resources)
                if resources
                else "no resources are defined: add a [resources] table"
            )
            check.fail(where, f"unknown resource {name!r} ({known})")
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


# More combinations than this is a mistake (a run of millions of jobs would
# be written as a program, not a jobs file).
