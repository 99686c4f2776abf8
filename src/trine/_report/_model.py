"""What a run report is made of, and the numbers computed from it.

A :class:`RunReport` holds the jobs of one run (:class:`ReportJob`: when each
held its slot and resources, what it depended on) and every attempt of each
(:class:`ReportAttempt`: a bar of the timeline). Everything the report shows
is computed from those alone: the critical path, concurrency and each
resource's use over time, the time jobs spent waiting, and the dashboard's
numbers (:class:`ReportSummary`).

The sweep that turns holds into step series and waiting time visits each
job's three moments (ready, started, finished) once, in time order:
O(n log n) for n jobs, so a report of 5,000 jobs is built in milliseconds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, final

import attrs

from .._util import check_int, check_number, close_unawaited

__all__ = [
    "ATTEMPT_STATUSES",
    "JOB_STATUSES",
    "ReportAttempt",
    "ReportJob",
    "ReportSummary",
    "ResourceSummary",
    "RunReport",
]

ATTEMPT_STATUSES = ("succeeded", "failed", "timed_out", "error", "cancelled")
"""How an attempt can end."""
JOB_STATUSES = ("succeeded", "up_to_date", "failed", "timed_out", "error", "skipped", "cancelled")
"""How a job can end: an attempt's outcomes, and ``up_to_date`` (not run: its
outputs were newer than its inputs) and ``skipped`` (a dependency did not succeed)."""
_OK = ("succeeded", "up_to_date")
# Jobs that reached an outcome of their own (not skipped, not stopped).
_DECIDED = ("succeeded", "up_to_date", "failed", "timed_out", "error")


def _time(name: str, value: object) -> float:
    return check_number(name, value, minimum=-math.inf)


def _optional_time(name: str, value: object) -> float | None:
    return None if value is None else _time(name, value)


def _optional_text(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {value!r}")
    return value


def _status(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    text = str.__str__(value)  # a StrEnum member reads as its value
    if text not in choices:
        allowed = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return text


def _id(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def _to_returncode(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"returncode must be an int or None, got {value!r}")
    return value


def _to_after(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        close_unawaited(value)
        raise TypeError(f"after must be a sequence of job ids, got {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"after must be a sequence of job ids, got the item {item!r}")
    return items


def _to_weights(name: str, value: object) -> dict[str, int]:
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(
            f"{name} must be a mapping of resource name to weight (or a sequence of "
            f"names), got {value!r}"
        )
    else:
        items = [(item, 1) for item in value]
    weights: dict[str, int] = {}
    for key, weight in items:
        if not isinstance(key, str) or not key:
            raise TypeError(f"{name} keys must be non-empty strings, got {key!r}")
        weights[key] = check_int(f"{name}[{key!r}]", weight)
    return weights


@final
@attrs.frozen(init=False)
class ReportAttempt:
    """One attempt of one job: a bar of the report's timeline.

    Args:
      job: the id of its :class:`ReportJob`.
      number: which attempt it was, from 1.
      start: when its process started (seconds, on any clock the report's
        other times share: :func:`trio.current_time` for a run).
      end: when it ended (``>= start``).
      status: ``"succeeded"``, ``"failed"``, ``"timed_out"``, ``"error"``
        (it could not be run) or ``"cancelled"``.
      returncode: its exit status (negative: killed by that signal), if any.
      command: the command line, shown when the bar is hovered.
      error: why it failed or was stopped.

    Raises:
      TypeError, ValueError: for an argument of the wrong type or out of range.
    """

    job: str
    number: int
    start: float
    end: float
    status: str
    returncode: int | None
    command: str | None
    error: str | None

    def __init__(
        self,
        job: str,
        number: int,
        start: float,
        end: float,
        status: str,
        *,
        returncode: int | None = None,
        command: str | None = None,
        error: str | None = None,
    ) -> None:
        start = _time("start", start)
        end = _time("end", end)
        if end < start:
            raise ValueError(f"end must be >= start ({start!r}), got {end!r}")
        self.__attrs_init__(
            _id("job", job),
            check_int("number", number),
            start,
            end,
            _status("status", status, ATTEMPT_STATUSES),
            _to_returncode(returncode),
            _optional_text("command", command),
            _optional_text("error", error),
        )

    @property
    def duration(self) -> float:
        """``end - start``."""
        return self.end - self.start


@final
@attrs.frozen(init=False)
class ReportJob:
    """One job of a run: its outcome, its dependencies and when it held its slot.

    Args:
      id: its unique, non-empty id.
      status: how it ended (one of ``"succeeded"``, ``"up_to_date"``,
        ``"failed"``, ``"timed_out"``, ``"error"``, ``"skipped"``, ``"cancelled"``).
      after: the ids of the jobs it depended on.
      uses: the resources it held while it ran, as ``{name: weight}`` (or a
        sequence of names, weight 1 each).
      started_at: when it was given its slot and resources (``None`` if it
        never was); it held them until *finished_at*, attempts, retry delays
        and waits for the machine's load included.
      finished_at: when it ended (or was skipped).
      command: its command line.
      error: why it did not succeed.
      optional: its failure did not fail the run.
      resumed: its outcome was taken from an earlier run's job log.

    Raises:
      TypeError, ValueError: for an argument of the wrong type or out of range.
    """

    id: str
    status: str
    after: tuple[str, ...]
    uses: Mapping[str, int]
    started_at: float | None
    finished_at: float | None
    command: str | None
    error: str | None
    optional: bool
    resumed: bool

    def __init__(
        self,
        id: str,
        status: str,
        *,
        after: Iterable[str] = (),
        uses: Mapping[str, int] | Iterable[str] = (),
        started_at: float | None = None,
        finished_at: float | None = None,
        command: str | None = None,
        error: str | None = None,
        optional: bool = False,
        resumed: bool = False,
    ) -> None:
        started = _optional_time("started_at", started_at)
        finished = _optional_time("finished_at", finished_at)
        if started is not None and finished is not None and finished < started:
            raise ValueError(f"finished_at must be >= started_at ({started!r}), got {finished!r}")
        self.__attrs_init__(
            _id("id", id),
            _status("status", status, JOB_STATUSES),
            _to_after(after),
            _to_weights("uses", uses),
            started,
            finished,
            _optional_text("command", command),
            _optional_text("error", error),
            _bool("optional", optional),
            _bool("resumed", resumed),
        )

    @property
    def held(self) -> float | None:
        """How long it held its slot: ``finished_at - started_at``, or ``None``."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@final
@attrs.frozen
class ResourceSummary:
    """How one resource was used over a run."""

    name: str
    capacity: int
    """What it could give at once."""
    peak: int
    """The most that was held at once."""
    mean: float
    """The time-weighted mean held."""
    utilisation: float
    """``mean / capacity``."""
    waited: float
    """Job-seconds that ready jobs waited because this resource was short (a job
    waiting for two resources counts for both)."""


@final
@attrs.frozen
class ReportSummary:
    """The dashboard's numbers, from :meth:`RunReport.summary`."""

    total_time: float
    """Seconds from the run's start to its end."""
    jobs: int
    """How many jobs the run had."""
    counts: Mapping[str, int]
    """Jobs by status."""
    attempts: int
    """Attempts started, retries included."""
    retries: int
    """Attempts beyond the first of each job."""
    success_rate: float | None
    """Of the jobs that reached an outcome of their own (not skipped nor
    cancelled), the fraction that succeeded or were up to date; ``None`` if none did."""
    jobs_per_second: float | None
    """Those jobs per second of the run (``None`` for a run that took no time)."""
    mean_concurrency: float
    """The time-weighted mean of jobs running."""
    peak_concurrency: int
    """The most jobs running at once."""
    utilisation: float | None
    """``mean_concurrency / limit`` (``None`` without a limit)."""
    busy_time: float
    """Job-seconds that jobs' attempts ran."""
    held_time: float
    """Job-seconds that jobs held a slot (their attempts, retry delays and waits for load)."""
    waiting_for_slot: float
    """Job-seconds that ready jobs waited while every slot under the limit was taken."""
    waiting_for_resources: float
    """Job-seconds that ready jobs waited, slots free, for a resource that was short."""
    waiting_other: float
    """Job-seconds that ready jobs waited, slots and their resources free: held
    back behind a higher-priority job that reserved a resource they share."""
    critical_path: tuple[str, ...]
    """The chain of dependencies that ended last, first job first."""
    critical_path_time: float
    """Seconds the critical path's jobs held their slots, together."""
    slowest: tuple[tuple[str, float], ...]
    """Up to five (id, seconds held) of the jobs that held their slot longest."""
    resources: tuple[ResourceSummary, ...]
    """Each resource's use."""


def _to_jobs(value: object) -> tuple[ReportJob, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        close_unawaited(value)
        raise TypeError(f"jobs must be a sequence of ReportJob, got {value!r}")
    jobs = tuple(value)
    for index, job in enumerate(jobs):
        if not isinstance(job, ReportJob):
            raise TypeError(f"jobs[{index}] must be a ReportJob, got {job!r}")
    return jobs


def _to_attempts(value: object) -> tuple[ReportAttempt, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        close_unawaited(value)
        raise TypeError(f"attempts must be a sequence of ReportAttempt, got {value!r}")
    attempts = tuple(value)
    for index, attempt in enumerate(attempts):
        if not isinstance(attempt, ReportAttempt):
            raise TypeError(f"attempts[{index}] must be a ReportAttempt, got {attempt!r}")
    return attempts


def _check_references(
    jobs: tuple[ReportJob, ...], attempts: tuple[ReportAttempt, ...], resources: Mapping[str, int]
) -> None:
    ids: set[str] = set()
    for job in jobs:
        if job.id in ids:
            raise ValueError(f"jobs: the id {job.id!r} is used twice")
        ids.add(job.id)
    for job in jobs:
        for dep in job.after:
            if dep not in ids:
                raise ValueError(f"jobs: {job.id!r} is after {dep!r}, which is not a job")
        for name in job.uses:
            if name not in resources:
                raise ValueError(
                    f"resources: job {job.id!r} uses {name!r}, which has no capacity here"
                )
    for attempt in attempts:
        if attempt.job not in ids:
            raise ValueError(f"attempts: {attempt.job!r} is not a job of the report")


@final
@attrs.frozen(eq=False, init=False)
class RunReport:
    """The report of one run: its jobs, every attempt, and what they add up to.

    Build one with :func:`trine.run_report` from a :class:`~trine.GraphResult`
    or :func:`~trine.run_commands` results (``trine run --report`` and
    ``--json`` write the same), or directly from your own timeline. Then
    :meth:`to_html` draws it (a self-contained page: a Gantt timeline with the
    critical path, concurrency and resources over time, the dashboard's
    numbers), :meth:`to_dict` gives the same data for JSON, and
    :meth:`summary` the numbers.

    Args:
      jobs: the run's jobs (ids unique; ``after`` naming jobs of the report).
      attempts: every attempt of those jobs.
      limit: the most jobs that could run at once, drawn against concurrency.
      resources: each resource's capacity, ``{name: capacity}``.
      started_at: when the run started (default: the earliest time given).
      finished_at: when it ended (default: the latest).
      title: the page's title.
      outcome: how the run ended, in words (``"succeeded"``), shown at the top.

    Raises:
      TypeError, ValueError: for an argument of the wrong type or out of
        range, a duplicate job id, an attempt of a job the report lacks, or a
        job using a resource without a capacity.

    Example::

        report = trine.RunReport(
            [trine.ReportJob("a", "succeeded", started_at=0.0, finished_at=1.0)],
            [trine.ReportAttempt("a", 1, 0.0, 1.0, "succeeded")],
            limit=2,
        )
        pathlib.Path("run.html").write_text(report.to_html())
    """

    jobs: tuple[ReportJob, ...]
    """Every job, in the order given."""
    attempts: tuple[ReportAttempt, ...]
    """Every attempt, in the order given."""
    limit: int | None
    """The run's limit, or ``None``."""
    resources: Mapping[str, int]
    """Each resource's capacity."""
    started_at: float
    """When the run started."""
    finished_at: float
    """When it ended."""
    title: str
    outcome: str | None
    _computed: dict[str, Any] = attrs.field(repr=False)

    def __init__(
        self,
        jobs: Iterable[ReportJob],
        attempts: Iterable[ReportAttempt],
        *,
        limit: int | None = None,
        resources: Mapping[str, int] | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
        title: str = "trine run",
        outcome: str | None = None,
    ) -> None:
        checked_jobs = _to_jobs(jobs)
        checked_attempts = _to_attempts(attempts)
        checked_limit = None if limit is None else check_int("limit", limit)
        capacities = {} if resources is None else _to_weights("resources", resources)
        if not isinstance(title, str):
            raise TypeError(f"title must be a str, got {title!r}")
        start = _optional_time("started_at", started_at)
        end = _optional_time("finished_at", finished_at)
        _check_references(checked_jobs, checked_attempts, capacities)
        times = [attempt.start for attempt in checked_attempts]
        times += [attempt.end for attempt in checked_attempts]
        times += [job.started_at for job in checked_jobs if job.started_at is not None]
        times += [job.finished_at for job in checked_jobs if job.finished_at is not None]
        if start is None:
            start = min(times, default=0.0)
        if end is None:
            end = max([*times, start])
        if end < start:
            raise ValueError(f"finished_at must be >= started_at ({start!r}), got {end!r}")
        self.__attrs_init__(
            checked_jobs,
            checked_attempts,
            checked_limit,
            capacities,
            start,
            end,
            title,
            _optional_text("outcome", outcome),
            {},
        )

    # ------------------------------------------------------------------ computed

    @property
    def total_time(self) -> float:
        """Seconds from the run's start to its end."""
        return self.finished_at - self.started_at

    def ready_at(self) -> dict[str, float | None]:
        """When each job could have started: its last dependency's end (the run's start
        without dependencies); ``None`` if a dependency never finished."""
        cached = self._computed.get("ready")
        if cached is None:
            finished = {job.id: job.finished_at for job in self.jobs}
            cached = {}
            for job in self.jobs:
                ends = [finished[dep] for dep in job.after]
                if any(end is None for end in ends):
                    cached[job.id] = None
                else:
                    cached[job.id] = max(
                        [end for end in ends if end is not None], default=self.started_at
                    )
            self._computed["ready"] = cached
        return dict(cached)

    def critical_path(self) -> tuple[str, ...]:
        """The chain of dependencies that ended last, first job first.

        From the job that finished last (of those that ran), step to the
        dependency that finished last, until a job without dependencies: the
        jobs whose ends set when the run could end.
        """
        cached = self._computed.get("critical")
        if cached is None:
            by_id = {job.id: job for job in self.jobs}
            ran = [
                job
                for job in self.jobs
                if job.started_at is not None and job.finished_at is not None
            ]
            path: list[str] = []
            if ran:
                job = max(ran, key=lambda job: (job.finished_at or 0.0, -len(job.after)))
                while True:
                    path.append(job.id)
                    deps = [by_id[dep] for dep in job.after if by_id[dep].finished_at is not None]
                    if not deps:
                        break
                    job = max(deps, key=lambda dep: dep.finished_at or 0.0)
            cached = tuple(reversed(path))
            self._computed["critical"] = cached
        return cached

    def _sweep(self) -> dict[str, Any]:
        """One pass over every hold and wait, in time order: the series and the waits."""
        cached = self._computed.get("sweep")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        ready = self.ready_at()
        end_of_run = self.finished_at
        # (time, order, kind, job): at equal times ends go first, then starts, then readies.
        events: list[tuple[float, int, int, int]] = []
        for index, job in enumerate(self.jobs):
            if job.started_at is not None:
                events.append((job.started_at, 1, 1, index))
                events.append(
                    (end_of_run if job.finished_at is None else job.finished_at, 0, 2, index)
                )
            ready_at = ready[job.id]
            if ready_at is None or job.status == "skipped":
                continue
            waited_until = job.started_at
            if waited_until is None:  # never started: waited until it was cancelled
                waited_until = job.finished_at if job.finished_at is not None else end_of_run
            if waited_until > ready_at:
                events.append((ready_at, 2, 3, index))
                events.append((waited_until, 0, 4, index))
        events.sort()
        capacities = self.resources
        running = 0
        use = dict.fromkeys(capacities, 0)
        waiting: Counter[tuple[tuple[str, int], ...]] = Counter()
        concurrency: list[tuple[float, int]] = [(self.started_at, 0)]
        use_series: dict[str, list[tuple[float, int]]] = {
            name: [(self.started_at, 0)] for name in capacities
        }
        waits = {"slot": 0.0, "resources": 0.0, "other": 0.0}
        waited = dict.fromkeys(capacities, 0.0)
        area = 0.0
        resource_area = dict.fromkeys(capacities, 0.0)
        now = self.started_at
        limit = self.limit
        for time, _, kind, index in events:
            elapsed = time - now
            if elapsed > 0:
                area += running * elapsed
                for name in capacities:
                    resource_area[name] += use[name] * elapsed
                for signature, count in waiting.items():
                    if not count:
                        continue
                    seconds = count * elapsed
                    if limit is not None and running >= limit:
                        waits["slot"] += seconds
                        continue
                    short = [
                        name for name, weight in signature if use[name] + weight > capacities[name]
                    ]
                    if short:
                        waits["resources"] += seconds
                        for name in short:
                            waited[name] += seconds
                    else:
                        waits["other"] += seconds
                now = time
            job = self.jobs[index]
            signature = tuple(sorted(job.uses.items()))
            if kind in (1, 2):
                step = 1 if kind == 1 else -1
                running += step
                _append_step(concurrency, time, running)
                for name, weight in signature:
                    use[name] += step * weight
                    _append_step(use_series[name], time, use[name])
            elif kind == 3:
                waiting[signature] += 1
            else:
                waiting[signature] -= 1
        total = self.total_time
        cached = {
            "concurrency": concurrency,
            "use": use_series,
            "waits": waits,
            "waited": waited,
            "mean": area / total if total > 0 else 0.0,
            "resource_mean": {
                name: (resource_area[name] / total if total > 0 else 0.0) for name in capacities
            },
        }
        self._computed["sweep"] = cached
        return cached

    def concurrency(self) -> list[tuple[float, int]]:
        """How many jobs held a slot over time: ``(time, count)`` steps, from the start."""
        return list(self._sweep()["concurrency"])

    def resource_use(self) -> dict[str, list[tuple[float, int]]]:
        """For each resource, the weight held over time: ``(time, held)`` steps."""
        return {name: list(steps) for name, steps in self._sweep()["use"].items()}

    def summary(self) -> ReportSummary:
        """The dashboard's numbers (computed once, then kept)."""
        cached = self._computed.get("summary")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        sweep = self._sweep()
        counts = Counter(job.status for job in self.jobs)
        decided = sum(counts[status] for status in _DECIDED)
        ok = sum(counts[status] for status in _OK)
        total = self.total_time
        attempted_jobs = len({attempt.job for attempt in self.attempts})
        held = {job.id: job.held for job in self.jobs if job.held is not None}
        path = self.critical_path()
        peaks = {
            name: max((held_now for _, held_now in steps), default=0)
            for name, steps in sweep["use"].items()
        }
        cached = ReportSummary(
            total_time=total,
            jobs=len(self.jobs),
            counts={status: counts[status] for status in JOB_STATUSES if counts[status]},
            attempts=len(self.attempts),
            retries=len(self.attempts) - attempted_jobs,
            success_rate=ok / decided if decided else None,
            jobs_per_second=decided / total if total > 0 else None,
            mean_concurrency=sweep["mean"],
            peak_concurrency=max((count for _, count in sweep["concurrency"]), default=0),
            utilisation=sweep["mean"] / self.limit if self.limit is not None else None,
            busy_time=sum(attempt.duration for attempt in self.attempts),
            held_time=sum(held.values()),
            waiting_for_slot=sweep["waits"]["slot"],
            waiting_for_resources=sweep["waits"]["resources"],
            waiting_other=sweep["waits"]["other"],
            critical_path=path,
            critical_path_time=sum(held.get(job_id, 0.0) for job_id in path),
            slowest=tuple(sorted(held.items(), key=lambda item: (-item[1], item[0]))[:5]),
            resources=tuple(
                ResourceSummary(
                    name=name,
                    capacity=capacity,
                    peak=peaks[name],
                    mean=sweep["resource_mean"][name],
                    utilisation=sweep["resource_mean"][name] / capacity,
                    waited=sweep["waited"][name],
                )
                for name, capacity in self.resources.items()
            ),
        )
        self._computed["summary"] = cached
        return cached

    # ------------------------------------------------------------------ output

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data; every time is in seconds from the run's start.

        Keys: ``title``, ``outcome``, ``duration``, ``limit``, ``resources``
        (capacities), ``summary`` (:meth:`summary`'s numbers), ``critical_path``,
        ``timeline`` (one entry per attempt: ``id``, ``attempt``, ``start``,
        ``end``, ``duration``, ``status``, ``returncode``, ``command``,
        ``error``, ``resources``), ``jobs`` (``id``, ``status``, ``after``,
        ``uses``, ``ready_at``, ``started_at``, ``finished_at``, ...),
        ``concurrency`` and ``resource_use`` (``[time, value]`` steps).
        """
        origin = self.started_at
        ready = self.ready_at()
        uses = {job.id: dict(job.uses) for job in self.jobs}

        def rel(time: float | None) -> float | None:
            return None if time is None else round(time - origin, 6)

        summary = self.summary()
        return {
            "title": self.title,
            "outcome": self.outcome,
            "duration": round(self.total_time, 6),
            "limit": self.limit,
            "resources": dict(self.resources),
            "summary": _summary_dict(summary),
            "critical_path": list(summary.critical_path),
            "timeline": [
                {
                    "id": attempt.job,
                    "attempt": attempt.number,
                    "start": rel(attempt.start),
                    "end": rel(attempt.end),
                    "duration": round(attempt.duration, 6),
                    "status": attempt.status,
                    "returncode": attempt.returncode,
                    "command": attempt.command,
                    "error": attempt.error,
                    "resources": uses[attempt.job],
                }
                for attempt in sorted(self.attempts, key=lambda a: (a.start, a.job, a.number))
            ],
            "jobs": [
                {
                    "id": job.id,
                    "status": job.status,
                    "after": list(job.after),
                    "uses": dict(job.uses),
                    "ready_at": rel(ready[job.id]),
                    "started_at": rel(job.started_at),
                    "finished_at": rel(job.finished_at),
                    "command": job.command,
                    "error": job.error,
                    "optional": job.optional,
                    "resumed": job.resumed,
                }
                for job in self.jobs
            ],
            "concurrency": [[rel(time), count] for time, count in self.concurrency()],
            "resource_use": {
                name: [[rel(time), held] for time, held in steps]
                for name, steps in self.resource_use().items()
            },
        }

    def to_html(self) -> str:
        """The report as one self-contained HTML page (inline SVG and CSS; no script,
        nothing fetched): open it in any browser, attach it to a CI run."""
        from ._html import render  # the renderer is only needed here

        return render(self)


def _append_step(series: list[tuple[float, int]], time: float, value: int) -> None:
    """Add a step; steps at one time collapse into the last value."""
    if series and series[-1][0] == time:
        series[-1] = (time, value)
        if len(series) > 1 and series[-2][1] == value:
            series.pop()
    elif not series or series[-1][1] != value:
        series.append((time, value))


def _summary_dict(summary: ReportSummary) -> dict[str, Any]:
    def number(value: float | None) -> float | None:
        return None if value is None else round(value, 6)

    return {
        "total_time": number(summary.total_time),
        "jobs": summary.jobs,
        "counts": dict(summary.counts),
        "attempts": summary.attempts,
        "retries": summary.retries,
        "success_rate": number(summary.success_rate),
        "jobs_per_second": number(summary.jobs_per_second),
        "mean_concurrency": number(summary.mean_concurrency),
        "peak_concurrency": summary.peak_concurrency,
        "utilisation": number(summary.utilisation),
        "busy_time": number(summary.busy_time),
        "held_time": number(summary.held_time),
        "waiting_for_slot": number(summary.waiting_for_slot),
        "waiting_for_resources": number(summary.waiting_for_resources),
        "waiting_other": number(summary.waiting_other),
        "critical_path_time": number(summary.critical_path_time),
        "slowest": [{"id": job_id, "duration": number(held)} for job_id, held in summary.slowest],
        "resources": [
            {
                "name": resource.name,
                "capacity": resource.capacity,
                "peak": resource.peak,
                "mean": number(resource.mean),
                "utilisation": number(resource.utilisation),
                "waited": number(resource.waited),
            }
            for resource in summary.resources
        ],
    }
