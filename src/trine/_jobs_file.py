"""The jobs file of the ``trine`` command line: reading and validating it.

A jobs file is TOML::

    [run]
    limit = 4            # jobs running at once (default: the number of CPUs)
    timeout = 60         # seconds per attempt, for jobs without their own
    retries = 0          # extra attempts for a failed or timed-out job
    retry_delay = 0      # seconds before a retry ...
    retry_backoff = "constant"  # ... or "exponential" (doubling, up to retry_max_delay)
    halt = "soon,fail=3" # stop starting jobs after 3 failures ("now,...": stop running ones too)
    max_cpu_percent = 90 # hold new jobs back while the machine is busier
    min_free_memory = 1_000_000_000  # ... or has less free memory (bytes)

    [resources]
    db = 1               # name = capacity

    [jobs.fetch]
    cmd = ["python3", "fetch.py", "{day}"]
    matrix = { day = ["mon", "tue"] }   # one job per value: fetch.mon, fetch.tue

    [jobs.clean]
    cmd = "python3 clean.py | gzip > clean.gz"
    shell = true
    after = ["fetch"]    # every fetch job
    uses = {db = 1}      # or a list of names, each with weight 1
    inputs = ["*.csv"]   # skipped as up to date when every output is newer
    outputs = ["clean.gz"]

Everything is checked before anything runs, and every problem is reported in
one pass, each with the path of the offending value
(``jobs.clean.after: unknown job 'fetch_tx'``). This module knows nothing of
how the jobs are run.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import re
import shlex
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, final

import attrs

__all__ = [
    "HaltPolicy",
    "Job",
    "JobsFile",
    "JobsFileError",
    "RetrySettings",
    "RunSettings",
    "load_jobs_file",
    "matrix_id",
    "parse_halt",
    "parse_jobs",
    "select",
    "waves",
]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_MATRIX_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.-]+")
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


@final
class JobsFileError(ValueError):
    """The jobs file cannot be read or is invalid; one message per problem."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {problem}" for problem in problems))


@final
@attrs.frozen
class HaltPolicy:
    """When to stop a run early, as GNU parallel's ``--halt when,why=value``."""

    when: Literal["soon", "now"]
    """``"soon"``: start no new job, let running ones finish; ``"now"``: stop them too."""
    why: Literal["fail", "success", "done"]
    """What is counted: jobs that failed, that succeeded, or that finished at all."""
    count: int | None
    """Halt once this many jobs are counted ..."""
    percent: float | None
    """... or this percentage of all the run's jobs (one of the two is set)."""

    def threshold(self, total: int) -> int:
        """How many counted jobs halt a run of *total* jobs (at least 1)."""
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return max(1, math.ceil(total * self.percent / 100 - 1e-9))

    def __str__(self) -> str:
        value = f"{self.count}" if self.count is not None else f"{self.percent:g}%"
        return f"{self.when},{self.why}={value}"


def parse_halt(text: str) -> HaltPolicy | None:
    """Read a halt policy: ``never``, or ``soon|now,fail|success|done=N|N%``.

    Raises:
      ValueError: saying what is wrong with *text*.
    """
    spec = text.strip()
    if spec == "never":
        return None
    when, comma, condition = spec.partition(",")
    why, equals, value = condition.partition("=")
    if not comma or not equals or when not in ("soon", "now"):
        raise ValueError(
            f"must be 'never' or WHEN,WHY=VALUE (WHEN soon or now, WHY fail, success or "
            f"done, VALUE a count or a percentage), got {text!r}"
        )
    if why not in ("fail", "success", "done"):
        raise ValueError(f"the condition must be fail, success or done, got {why!r}")
    count: int | None = None
    percent: float | None = None
    try:
        if value.endswith("%"):
            percent = float(value[:-1])
            if not 0 < percent <= 100:
                raise ValueError
        else:
            count = int(value)
            if count < 1:
                raise ValueError
    except ValueError:
        raise ValueError(
            f"the value must be a count >= 1 or a percentage in (0%, 100%], got {value!r}"
        ) from None
    return HaltPolicy(when, why, count, percent)  # type: ignore[arg-type]  # checked above


@final
@attrs.frozen
class RetrySettings:
    """The ``retry_*`` keys of ``[run]``: every job's defaults."""

    delay: float = 0.0
    backoff: Literal["constant", "exponential"] = "constant"
    jitter: Literal["full", "equal"] | None = None
    max_delay: float | None = None


@final
@attrs.frozen
class RunSettings:
    """The ``[run]`` table."""

    limit: int
    timeout: float | None
    retries: int
    retry: RetrySettings
    halt: HaltPolicy | None
    kill_grace: float
    max_cpu_percent: float | None
    min_free_memory: int | None


@final
@attrs.frozen
class Job:
    """One job, validated: a ``[jobs.NAME]`` table, or one combination of its ``matrix``.

    ``cwd`` is resolved against the file's directory; the ``{key}``
    placeholders of a matrix are replaced.
    """

    name: str
    """Its id: the table's name, or for a matrix ``name.value1.value2``."""
    argv: tuple[str, ...] | str
    shell: bool
    after: tuple[str, ...]
    """The ids of the jobs it runs after (a matrix job's name stands for all of its jobs)."""
    uses: Mapping[str, int]
    timeout: float | None
    retries: int
    retry_delay: float
    retry_backoff: Literal["constant", "exponential"]
    retry_jitter: Literal["full", "equal"] | None
    retry_max_delay: float
    priority: int
    env: Mapping[str, str]
    cwd: str
    optional: bool
    description: str | None
    inputs: tuple[str, ...] = ()
    """Glob patterns (relative to ``cwd``) of the files the job reads."""
    outputs: tuple[str, ...] = ()
    """Glob patterns of the files it writes; with them, it is skipped while up to date."""
    group: str = ""
    """The ``[jobs.NAME]`` it came from (its own name unless it is a matrix job)."""
    matrix: Mapping[str, str] = attrs.field(factory=dict)
    """The matrix values of this job (empty unless it is a matrix job)."""

    def command(self) -> str:
        """The command as one line, as a shell would read it."""
        return self.argv if isinstance(self.argv, str) else shlex.join(self.argv)


@final
@attrs.frozen
class JobsFile:
    """A validated jobs file: settings, resources and jobs in file order."""

    path: str
    run: RunSettings
    resources: Mapping[str, int]
    jobs: Mapping[str, Job]

    def groups(self) -> dict[str, list[str]]:
        """The ids of the jobs of each ``[jobs.NAME]`` table, in order."""
        groups: dict[str, list[str]] = {}
        for name, job in self.jobs.items():
            groups.setdefault(job.group or name, []).append(name)
        return groups


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

    def seconds(self, where: str, value: object, *, zero: bool = False) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, f"must be a number of seconds, got {_describe(value)}")
            return None
        if math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not zero):
            self.fail(where, f"must be {'>= 0' if zero else '> 0'} (and finite), got {value}")
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

    def strings(self, where: str, value: object, what: str) -> list[str] | None:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(where, f"must be an array of {what}, got {_describe(value)}")
            return None
        return value


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
    return parse_jobs(data, path=path, base=Path(path).resolve().parent)


def parse_jobs(data: Mapping[str, Any], *, path: str, base: Path) -> JobsFile:
    """Validate the parsed TOML *data*; relative ``cwd``s are resolved against *base*.

    Raises:
      JobsFileError: listing every problem found.
    """
    check = _Checker()
    check.unknown_keys("", data, _TOP_KEYS)
    run = _parse_run(check, data.get("run", {}))
    resources = _parse_resources(check, data.get("resources", {}))
    raw_jobs = check.table("jobs", data.get("jobs", {}))
    if raw_jobs is not None and not raw_jobs:
        check.problems.append("no jobs: add at least one [jobs.NAME] table")
    templates: dict[str, _Template] = {}
    for name, raw in (raw_jobs or {}).items():
        templates[name] = _parse_template(check, name, raw, run, resources, base)
    jobs = _expand(check, templates)
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
        retry=retry,
        halt=halt,
        kill_grace=kill_grace,
        max_cpu_percent=max_cpu,
        min_free_memory=min_free,
    )


def _parse_retry_keys(
    check: _Checker, where: str, table: Mapping[str, Any], default: RetrySettings | None = None
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
                f"must be 'constant' or 'exponential', got {_describe(raw)}",
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
                f"must be true, false, 'full' or 'equal', got {_describe(raw)}",
            )
    max_delay = settings.max_delay
    if "retry_max_delay" in table:
        max_delay = check.seconds(f"{where}.retry_max_delay", table["retry_max_delay"], zero=True)
        if max_delay is not None and max_delay < delay:
            check.fail(
                f"{where}.retry_max_delay",
                f"must be >= retry_delay ({delay:g}), got {max_delay:g}",
            )
    return RetrySettings(delay, backoff, jitter, max_delay)


def _parse_resources(check: _Checker, value: object) -> dict[str, int]:
    table = check.table("resources", value)
    resources: dict[str, int] = {}
    for name, capacity in (table or {}).items():
        checked = check.integer(f"resources.{name}", capacity, 1)
        if checked is not None:
            resources[name] = checked
    return resources


@attrs.define
class _Template:
    """A ``[jobs.NAME]`` table, checked; ``job`` is ``None`` if it has problems."""

    name: str
    after: list[str]
    job: Job | None = None
    matrix: dict[str, list[str]] = attrs.field(factory=dict)


def _parse_template(
    check: _Checker,
    name: str,
    value: object,
    run: RunSettings | None,
    resources: Mapping[str, int],
    base: Path,
) -> _Template:
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
        return _Template(name, [])
    # Dependencies first, so that they are checked whatever else is wrong.
    after = check.strings(f"{where}.after", table.get("after", []), "job names") or []
    check.unknown_keys(where, table, _JOB_KEYS)
    shell = check.boolean(f"{where}.shell", table.get("shell", False))
    argv = _parse_cmd(check, where, table, shell)
    uses = _parse_uses(check, where, table.get("uses", []), resources)
    timeout = run.timeout if run is not None else None
    if "timeout" in table:
        timeout = check.seconds(f"{where}.timeout", table["timeout"])
    retries = check.integer(f"{where}.retries", table.get("retries", run.retries if run else 0), 0)
    retry = _parse_retry_keys(check, where, table, run.retry if run is not None else None)
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
    inputs = check.strings(f"{where}.inputs", table.get("inputs", []), "glob patterns") or []
    outputs = check.strings(f"{where}.outputs", table.get("outputs", []), "glob patterns") or []
    if inputs and not outputs:
        check.fail(
            f"{where}.inputs",
            "without outputs there is nothing to compare the inputs with: add outputs",
        )
    matrix = _parse_matrix(check, where, table.get("matrix"))
    template = _Template(name, after, matrix=matrix)
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
    check: _Checker, where: str, table: Mapping[str, Any], shell: bool | None
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
        elif shell is True:
            return cmd
        return None
    if isinstance(cmd, list) and cmd and all(isinstance(arg, str) for arg in cmd):
        if shell is True:
            check.fail(f"{where}.cmd", "with shell = true, cmd must be one string")
        elif not cmd[0]:
            check.fail(f"{where}.cmd", "the program (the first item) must not be empty")
        return tuple(cmd)
    if isinstance(cmd, list) and not cmd:
        check.fail(f"{where}.cmd", "must not be empty")
    else:
        check.fail(
            f"{where}.cmd",
            f"must be an array of strings (or a string with shell = true), got {_describe(cmd)}",
        )
    return None


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
_MAX_COMBINATIONS = 100_000


def _matrix_value(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _parse_matrix(check: _Checker, where: str, value: object) -> dict[str, list[str]]:
    if value is None:
        return {}
    where = f"{where}.matrix"
    table = check.table(where, value)
    if table is None:
        return {}
    if not table:
        check.fail(where, "must not be empty: give each key an array of values")
        return {}
    matrix: dict[str, list[str]] = {}
    for key, values in table.items():
        if not _MATRIX_KEY.match(key):
            check.fail(
                f"{where}.{key}",
                "a matrix key may only contain letters, digits and '_' (not starting with a digit)",
            )
            continue
        texts = [_matrix_value(item) for item in values] if isinstance(values, list) else None
        if not texts or any(text is None for text in texts):
            check.fail(
                f"{where}.{key}",
                "must be a non-empty array of strings, numbers or booleans, "
                f"got {_describe(values)}",
            )
            continue
        seen: set[str] = set()
        for text in texts:
            assert text is not None
            if text in seen:
                check.fail(f"{where}.{key}", f"value {text!r} is listed twice")
            seen.add(text)
        matrix[key] = [text for text in texts if text is not None]
    if math.prod(len(values) for values in matrix.values()) > _MAX_COMBINATIONS:
        check.fail(where, f"makes more than {_MAX_COMBINATIONS:,} jobs")
        return {}
    return matrix


def _combinations(matrix: Mapping[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the matrix's values, the first key varying slowest."""
    keys = list(matrix)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*matrix.values())]


def _id_part(value: str) -> str:
    """*value* as part of a job id: what a job name may not contain becomes ``_``."""
    return _NOT_IN_ID.sub("_", value) or "_"


def matrix_id(name: str, values: Mapping[str, str]) -> str:
    """The id of the job of table *name* for one combination: ``name.value1.value2``."""
    return ".".join([name, *(_id_part(value) for value in values.values())])


def _substitute(text: str, values: Mapping[str, str], quote: bool = False) -> str:
    if "{" not in text:
        return text
    pattern = "|".join(re.escape(key) for key in values)
    return re.sub(
        r"\{(" + pattern + r")\}",
        lambda match: shlex.quote(values[match[1]]) if quote else values[match[1]],
        text,
    )


def _expanded(job: Job, values: Mapping[str, str]) -> Job:
    """The job of one combination: placeholders replaced, shell commands' values quoted."""
    if isinstance(job.argv, str):
        argv: tuple[str, ...] | str = _substitute(job.argv, values, quote=True)
    else:
        argv = tuple(_substitute(arg, values) for arg in job.argv)
    return attrs.evolve(
        job,
        name=matrix_id(job.name, values),
        argv=argv,
        env={key: _substitute(item, values) for key, item in job.env.items()},
        cwd=_substitute(job.cwd, values),
        description=None if job.description is None else _substitute(job.description, values),
        inputs=tuple(_substitute(pattern, values) for pattern in job.inputs),
        outputs=tuple(_substitute(pattern, values) for pattern in job.outputs),
        matrix=dict(values),
    )


def _expand(check: _Checker, templates: Mapping[str, _Template]) -> dict[str, Job]:
    """Expand matrices, resolve dependencies to ids, find a cycle, check the paths."""
    # What each name in `after` stands for: a table's name for all its jobs, an id for one.
    names: dict[str, list[str]] = {}
    combinations: dict[str, list[dict[str, str]]] = {}
    for name, template in templates.items():
        combos = _combinations(template.matrix) if template.matrix else [{}]
        combinations[name] = combos
        ids = [matrix_id(name, values) if values else name for values in combos]
        if name in names:
            check.fail(f"jobs.{name}", f"{name!r} is already the id of a matrix job")
        names[name] = ids
        for job_id in ids if template.matrix else []:
            if job_id in names:
                check.fail(
                    f"jobs.{name}.matrix",
                    f"makes the job id {job_id!r}, which is already taken",
                )
            names[job_id] = [job_id]
    jobs: dict[str, Job] = {}
    deps: dict[str, list[str]] = {}
    for name, template in templates.items():
        for values in combinations[name]:
            job_id = matrix_id(name, values) if values else name
            label = f"jobs.{name}" + (
                "[" + ", ".join(f"{k}={v}" for k, v in values.items()) + "]" if values else ""
            )
            after = _resolve_after(check, f"jobs.{name}.after", template, values, names, job_id)
            deps.setdefault(job_id, after)
            if template.job is None:
                continue
            job = _expanded(template.job, values) if values else template.job
            job = attrs.evolve(job, after=tuple(after))
            _check_paths(check, label, job)
            jobs[job_id] = job
    cycle = _find_cycle(
        {job_id: tuple(dep for dep in after if dep in deps) for job_id, after in deps.items()}
    )
    if cycle is not None:
        check.problems.append("cycle: " + " -> ".join(cycle))
    return jobs


def _resolve_after(
    check: _Checker,
    where: str,
    template: _Template,
    values: Mapping[str, str],
    names: Mapping[str, list[str]],
    job_id: str,
) -> list[str]:
    ids_values = {key: _id_part(value) for key, value in values.items()}
    resolved: list[str] = []
    for entry in template.after:
        target = _substitute(entry, ids_values) if values else entry
        ids = names.get(target)
        if ids is None:
            origin = f" (from {entry!r})" if target != entry else ""
            close = difflib.get_close_matches(target, list(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problem = f"unknown job {target!r}{origin}{hint}"
            if f"{where}: {problem}" not in check.problems:
                check.fail(where, problem)
            continue
        if job_id in ids:
            problem = "a job cannot run after itself"
            if f"{where}: {problem}" not in check.problems:
                check.fail(where, problem)
            continue
        resolved.extend(ids)
    return list(dict.fromkeys(resolved))


def _check_paths(check: _Checker, where: str, job: Job) -> None:
    """Before anything runs: the working directory exists; the program is not a directory."""
    if not os.path.isdir(job.cwd):
        reason = "is not a directory" if os.path.exists(job.cwd) else "does not exist"
        check.fail(f"{where}.cwd", f"{job.cwd!r} {reason}")
        return
    if isinstance(job.argv, tuple) and os.sep in job.argv[0]:
        program = os.path.join(job.cwd, job.argv[0])
        if os.path.isdir(program):
            check.fail(f"{where}.cmd", f"{job.argv[0]!r} is a directory, not a program")


def _find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
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
    Dependencies on jobs not in *jobs* are ignored.
    """
    level: dict[str, int] = {}

    def wave_of(name: str) -> int:
        # Iterative, so a long chain of jobs does not hit the recursion limit.
        stack = [name]
        while stack:
            current = stack[-1]
            pending = [dep for dep in jobs[current].after if dep in jobs and dep not in level]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            level[current] = 1 + max(
                (level[dep] for dep in jobs[current].after if dep in jobs), default=-1
            )
        return level[name]

    grouped: list[list[str]] = []
    for name in jobs:
        index = wave_of(name)
        while len(grouped) <= index:
            grouped.append([])
        grouped[index].append(name)
    return grouped


def select(jobs: Mapping[str, Job], wanted: Iterable[str]) -> dict[str, Job]:
    """The jobs named in *wanted* (ids or tables' names) and every job they depend on.

    Raises:
      KeyError: with the first name that is neither.
    """
    groups: dict[str, list[str]] = {}
    for name, job in jobs.items():
        groups.setdefault(job.group or name, []).append(name)
        if job.group and job.group != name:
            groups.setdefault(name, []).append(name)
    chosen: set[str] = set()
    stack: list[str] = []
    for name in wanted:
        if name not in groups:
            raise KeyError(name)
        stack.extend(groups[name])
    while stack:
        name = stack.pop()
        if name not in chosen:
            chosen.add(name)
            stack.extend(jobs[name].after)
    return {name: job for name, job in jobs.items() if name in chosen}
