"""What ``trine run`` knows of each job as it runs: what the summary and reports are made of.

Times are seconds from the start of the run, on the Trio clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, final

import attrs
import trio

from .._jobs_file import Job
from .._process import CommandResult
from .._report import ReportAttempt, ReportJob, RunReport

__all__ = [
    "CANCELLED",
    "FAILED_STATUSES",
    "PENDING",
    "RUNNING",
    "SKIPPED",
    "UP_TO_DATE",
    "AttemptRecord",
    "JobRecord",
    "counts",
    "counts_text",
    "job_json",
    "run_report_of",
]

PENDING, RUNNING, SKIPPED, UP_TO_DATE, CANCELLED = (
    "pending",
    "running",
    "skipped",
    "up_to_date",
    "cancelled",
)
FAILED_STATUSES = ("failed", "timed_out", "error")
_ORDER = ("succeeded", UP_TO_DATE, *FAILED_STATUSES, SKIPPED, CANCELLED, RUNNING, PENDING)


@final
@attrs.frozen
class AttemptRecord:
    """One attempt of a job, as it ended."""

    number: int
    start: float
    end: float
    status: str
    returncode: int | None
    error: str | None


@final
@attrs.define(eq=False)
class JobRecord:
    """What is known of one job so far."""

    job: Job
    status: str = PENDING
    ready_at: float | None = None
    """When the jobs it runs after had all succeeded (the run's start without any)."""
    started_at: float | None = None
    """When it was given its slot and resources."""
    finished_at: float | None = None
    attempts: list[AttemptRecord] = attrs.field(factory=list)
    result: CommandResult | None = None
    """The last attempt's result (its output tails)."""
    error: str | None = None
    skipped_because: str | None = None
    resumed: bool = False
    phase: str = ""
    """While it holds its slot: ``attempt`` (its command runs), ``delay`` (before a
    retry), ``admission`` (waiting for the machine's load), or ``""``."""
    phase_since: float = 0.0
    next_attempt_at: float | None = None
    stopping: bool = False
    """Its command was asked to stop (SIGTERM sent) because the run is stopping."""
    announced_waiting: bool = False
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    """Cancelled to end a retry delay or a wait for load when the run stops."""

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def finished(self) -> bool:
        return self.status not in (PENDING, RUNNING)

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def returncode(self) -> int | None:
        return self.attempts[-1].returncode if self.attempts else None

    def detail(self) -> str:
        """Why it ended as it did, in a few words (empty for a plain success)."""
        if self.status == SKIPPED:
            return f"{self.skipped_because} did not succeed"
        if self.error is not None:
            return self.error
        if self.status == CANCELLED and self.started_at is None:
            return "never started"
        return ""


def counts(records: Iterable[JobRecord]) -> dict[str, int]:
    """How many jobs have each status, in a fixed order."""
    found: dict[str, int] = {}
    for record in records:
        found[record.status] = found.get(record.status, 0) + 1
    return {status: found[status] for status in _ORDER if status in found}


def counts_text(records: Iterable[JobRecord]) -> str:
    return ", ".join(f"{count} {status}" for status, count in counts(records).items())


def run_report_of(
    records: Sequence[JobRecord],
    *,
    limit: int,
    resources: Mapping[str, int],
    finished_at: float,
    title: str,
    outcome: str,
) -> RunReport:
    """The :class:`~trine.RunReport` of a run made of these records."""
    ids = {record.name for record in records}
    jobs: list[ReportJob] = []
    attempts: list[ReportAttempt] = []
    for record in records:
        status = record.status if record.finished else CANCELLED
        jobs.append(
            ReportJob(
                record.name,
                status,
                after=[dep for dep in record.job.after if dep in ids],
                uses=dict(record.job.uses),
                started_at=record.started_at,
                finished_at=record.finished_at,
                command=record.job.command(),
                error=record.detail() or None,
                optional=record.job.optional,
                resumed=record.resumed,
            )
        )
        attempts.extend(
            ReportAttempt(
                record.name,
                attempt.number,
                attempt.start,
                attempt.end,
                attempt.status,
                returncode=attempt.returncode,
                command=record.job.command(),
                error=attempt.error,
            )
            for attempt in record.attempts
        )
    return RunReport(
        jobs,
        attempts,
        limit=limit,
        resources=resources,
        started_at=0.0,
        finished_at=finished_at,
        title=title,
        outcome=outcome,
    )


def job_json(record: JobRecord) -> dict[str, Any]:
    """One job of the ``--json`` report."""
    job = record.job
    result = record.result
    attempts = record.attempts
    return {
        "status": record.status,
        "optional": job.optional,
        "cmd": job.argv if isinstance(job.argv, str) else list(job.argv),
        "after": list(job.after),
        "matrix": dict(job.matrix),
        "returncode": record.returncode,
        "attempts": len(attempts),
        "ready_at": record.ready_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "duration": attempts[-1].end - attempts[0].start if attempts else None,
        "error": None if record.status in ("succeeded", SKIPPED) else record.detail() or None,
        "skipped_because": record.skipped_because,
        "resumed": record.resumed,
        "stdout_tail": result.stdout_tail if result else "",
        "stderr_tail": result.stderr_tail if result else "",
    }
