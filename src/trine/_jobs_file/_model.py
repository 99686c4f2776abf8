"""What a jobs file says, validated: :class:`JobsFile`, :class:`Job`, the ``[run]`` settings."""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping
from typing import Literal, final

import attrs

__all__ = [
    "HaltPolicy",
    "Job",
    "JobsFile",
    "JobsFileError",
    "RetrySettings",
    "RunSettings",
    "parse_halt",
]


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
