"""Running a jobs file: a :class:`~trine.TaskGraph` of jobs, each run by the command runner.

One job's path, top to bottom (:meth:`Runner.run_job`): halted runs start
nothing new; a job resumed from the job log or found up to date ends at
once; otherwise its attempts run through a :class:`~trine.Retry` (the jobs
file's ``retry_delay``/``retry_backoff``/``retry_jitter``), each waiting for
the machine's load first if asked, each one command run by the command
runner. Every attempt is recorded as it ends (the live display, the job
log, ``--logs``), and the outcome is decided once the last one ended.

Stopping (Ctrl-C, SIGTERM, ``--halt now``) does not cancel the commands
through Trio: running ones get ``SIGTERM`` in their process group, and
``SIGKILL`` after ``kill_grace`` (or at once on a second Ctrl-C), so each
ends as a real attempt with its return code, and the graph finishes on its
own. Jobs waiting for a retry or for the load are cancelled; jobs not
started are not started. If the commands have not ended a few seconds after
``SIGKILL``, the run is cancelled through Trio as a last resort.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
from collections.abc import Callable
from typing import Any, Literal, final

import attrs
import trio

from .._graph import Node, NodeEvent, NodeStatus, TaskGraph, topological_order
from .._hooks import GuardEvent, RetryScheduled
from .._jobs_file import HaltPolicy, Job, JobsFile
from .._limit import WeightedSemaphore
from .._process import Command, CommandResult, CommandStatus, SystemLoad
from .._process._descendants import Batch
from .._process._output import log_name
from .._process._run import Settings, _wait_admitted, could_not_start, run_command
from .._retry import Backoff, Retry
from .._util import signal_name
from ._joblog import JobLog, LoggedJob
from ._progress import Display
from ._records import (
    CANCELLED,
    FAILED_STATUSES,
    RUNNING,
    SKIPPED,
    UP_TO_DATE,
    AttemptRecord,
    JobRecord,
)
from ._up_to_date import freshness

__all__ = ["RunOptions", "Runner"]

_TICK = 0.1
# After SIGKILL, how long the commands have to end before the run is cancelled.
_LAST_RESORT = 5.0
_SHOWN_WAITING = 10
_OK = ("succeeded", UP_TO_DATE)


@final
@attrs.frozen
class RunOptions:
    """How ``trine run`` was asked to run."""

    logs: str | None = None
    joblog: str | None = None
    resume: Literal["all", "failed"] | None = None
    output_tag: bool = False
    halt: HaltPolicy | None = None
    admission: SystemLoad | None = None
    rng: random.Random = attrs.field(factory=random.Random)


class _JobFailed(Exception):
    """Raised by a job's node so that the graph skips its dependents."""


class _NotStarted(Exception):
    """Raised by a job's node when the run halted before it could start."""


class _AttemptFailed(Exception):
    """An attempt failed or timed out: what a job's :class:`~trine.Retry` retries on."""

    def __init__(self, result: CommandResult) -> None:
        super().__init__(result.error)
        self.result = result


def _backoff(job: Job) -> Backoff:
    if job.retry_backoff == "exponential":
        return Backoff.exponential(
            initial=job.retry_delay, maximum=job.retry_max_delay, jitter=job.retry_jitter
        )
    if job.retry_jitter is None:
        return Backoff.constant(job.retry_delay)
    # A constant delay with jitter: the exponential backoff with no growth.
    return Backoff.exponential(
        initial=job.retry_delay,
        maximum=job.retry_delay,
        multiplier=1.0,
        jitter=job.retry_jitter,
    )


def _keep_attempt_logs(logs: str, job_id: str, number: int) -> None:
    """Move attempt *number*'s logs aside (``<id>@<n>.stdout``): the next attempt writes anew."""
    name = log_name(job_id)
    for suffix in ("stdout", "stderr"):
        with contextlib.suppress(OSError):  # no log (it could not be written): nothing to keep
            os.replace(
                os.path.join(logs, f"{name}.{suffix}"),
                os.path.join(logs, f"{name}@{number}.{suffix}"),
            )


@final
class _TaggedOutput:
    """``--output=tag``: running jobs' output, one whole line at a time, prefixed by the job."""

    _LONGEST = 65536  # a line longer than this is shown in pieces

    def __init__(self, show: Callable[[str, str, str], None]) -> None:
        self._show = show
        self._partial: dict[tuple[str, str], bytes] = {}

    def feed(self, job_id: str, stream: str, data: bytes) -> None:
        key = (job_id, stream)
        buffer = self._partial.pop(key, b"") + data
        *lines, rest = buffer.split(b"\n")
        for line in lines:
            self._show(job_id, stream, line.decode("utf-8", "replace").rstrip("\r"))
        while len(rest) > self._LONGEST:
            self._show(job_id, stream, rest[: self._LONGEST].decode("utf-8", "replace"))
            rest = rest[self._LONGEST :]
        if rest:
            self._partial[key] = rest

    def flush(self, job_id: str) -> None:
        for stream in ("stdout", "stderr"):
            rest = self._partial.pop((job_id, stream), b"")
            if rest:
                self._show(job_id, stream, rest.decode("utf-8", "replace"))


@final
@attrs.define(eq=False)
class Runner:
    """Runs the jobs of a jobs file and keeps a :class:`JobRecord` of each."""

    jobs_file: JobsFile
    options: RunOptions
    resumed: dict[str, LoggedJob] = attrs.field(factory=dict)
    """Jobs the job log says need not run again (``--resume``)."""
    records: list[JobRecord] = attrs.field(init=False)
    display: Display | None = attrs.field(default=None, init=False)
    limit: int = attrs.field(init=False)
    wall_start: float = attrs.field(default=0.0, init=False)
    stop_reason: str | None = attrs.field(default=None, init=False)
    kill_at: float | None = attrs.field(default=None, init=False)
    signal_received: int | None = attrs.field(default=None, init=False)
    halt_reason: str | None = attrs.field(default=None, init=False)
    halting: bool = attrs.field(default=False, init=False)
    _by_name: dict[str, JobRecord] = attrs.field(init=False)
    _dependents: dict[str, list[str]] = attrs.field(init=False)
    _remaining: dict[str, int] = attrs.field(init=False)
    _ready: dict[str, None] = attrs.field(factory=dict, init=False)
    _holding: set[str] = attrs.field(factory=set, init=False)
    _in_use: dict[str, int] = attrs.field(init=False)
    _started: float = attrs.field(default=0.0, init=False)
    _killing: bool = attrs.field(default=False, init=False)
    _signalled: set[int] = attrs.field(factory=set, init=False)
    _halt_counts: dict[str, int] = attrs.field(factory=dict, init=False)
    _run_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope, init=False)
    _batch: Batch | None = attrs.field(default=None, init=False)
    _settings: Settings = attrs.field(init=False)
    _commands: dict[str, Command | str] = attrs.field(init=False)
    _joblog: JobLog | None = attrs.field(default=None, init=False)
    _output: _TaggedOutput | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        jobs = self.jobs_file.jobs
        self.records = [JobRecord(job) for job in jobs.values()]
        self._by_name = {record.name: record for record in self.records}
        self.limit = self.jobs_file.run.limit
        self._dependents = {name: [] for name in jobs}
        self._remaining = {}
        for name, job in jobs.items():
            self._remaining[name] = len(job.after)
            for dep in job.after:
                self._dependents[dep].append(name)
        self._in_use = dict.fromkeys(self.jobs_file.resources, 0)
        if self.options.output_tag:
            self._output = _TaggedOutput(self._show_output)
        self._settings = Settings(
            timeout=None,
            cwd=None,
            output_tail=4096,
            kill_grace=self.jobs_file.run.kill_grace,
            logs=self.options.logs,
            admission=None,  # waited for here, so that the display can say so
            on_output=None if self._output is None else self._output.feed,
        )
        self._commands = {}
        for name, job in jobs.items():
            try:
                self._commands[name] = Command(
                    job.argv,
                    id=name,
                    env=job.env,
                    cwd=job.cwd,
                    timeout=job.timeout,
                    shell=job.shell,
                )
            # The jobs file's checks refuse all Command would (a NUL byte, an '=' in an
            # env name); this is for a JobsFile built some other way.
            except (TypeError, ValueError) as exc:
                self._commands[name] = f"cannot start: {exc}"

    # ------------------------------------------------------------------ the view

    def now(self) -> float:
        return trio.current_time() - self._started

    def waiting(self) -> list[tuple[JobRecord, str]]:
        """The ready jobs that have not started, each with why it is held back."""
        if self.halting:
            return []
        return [
            (self._by_name[name], self._reason(self._by_name[name].job)) for name in self._ready
        ]

    def _reason(self, job: Job) -> str:
        reasons = []
        running = len(self._holding)
        if running >= self.limit:
            reasons.append(f"a slot ({running}/{self.limit} running)")
        capacities = self.jobs_file.resources
        for resource, weight in job.uses.items():
            if self._in_use[resource] + weight > capacities[resource]:
                reasons.append(
                    f"resource {resource} ({self._in_use[resource]}/{capacities[resource]} in use)"
                )
        if not reasons:
            return "waiting behind a job of higher priority that needs the same resources"
        return "waiting for " + " and ".join(reasons)

    # ------------------------------------------------------------------ the run

    async def run(self, display: Display, wall_start: float) -> None:
        self.display = display
        self.wall_start = wall_start
        jobs = self.jobs_file.jobs
        graph = TaskGraph(
            limit=self.limit,
            resources={
                name: WeightedSemaphore(capacity)
                for name, capacity in self.jobs_file.resources.items()
            },
        )
        nodes: dict[str, Node[None]] = {}
        for name in topological_order({name: job.after for name, job in jobs.items()}):
            job = jobs[name]
            nodes[name] = graph.add(
                self.run_job,
                name,
                deps=[nodes[dep] for dep in job.after],
                name=name,
                priority=job.priority,
                resources=dict(job.uses),
            )
        self._started = trio.current_time()
        for record in self.records:
            if not record.job.after:
                record.ready_at = 0.0
                self._ready[record.name] = None
        self.open_joblog()
        try:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._watch_signals, signals)
                    nursery.start_soon(self._tick)
                    with self._run_scope:
                        async with Batch(self.jobs_file.run.kill_grace, None) as self._batch:
                            await graph.run(on_event=self.on_event)
                    nursery.cancel_scope.cancel()
        finally:
            if self._joblog is not None:
                self._joblog.close()
        now = self.now()
        for record in self.records:
            if not record.finished:  # only if the last resort cancelled the run
                record.status = CANCELLED
                record.error = record.error or f"stopped: {self.stop_reason}"
                record.finished_at = now if record.started_at is not None else None

    def open_joblog(self) -> None:
        """Open ``--joblog`` (if asked, and not open yet): anew, or to append when resuming.

        Called before the run starts, so a log that cannot be written is the
        command line's error and nothing runs.

        Raises:
          JobLogError: if the file cannot be opened for writing.
        """
        if self.options.joblog is not None and self._joblog is None:
            self._joblog = JobLog(self.options.joblog, append=self.options.resume is not None)

    @property
    def joblog_error(self) -> str | None:
        return None if self._joblog is None else self._joblog.error

    async def run_job(self, name: str, *dep_results: object) -> None:
        record = self._by_name[name]
        job = record.job
        if self.halting:
            raise _NotStarted
        logged = self.resumed.get(name)
        if logged is not None:
            record.resumed = True
            record.status = logged.status
            record.error = logged.error
            if logged.status in _OK:
                return
            raise _JobFailed
        if job.outputs:
            fresh = freshness(job.cwd, job.inputs, job.outputs)
            if fresh.up_to_date:
                record.status = UP_TO_DATE
                record.error = fresh.reason
                now = self.now()
                self._log_attempt(record, 0, now, now, None, UP_TO_DATE, None, final=True)
                return
        command = self._commands[name]
        if isinstance(command, str):
            now = self.now()
            record.attempts.append(AttemptRecord(1, now, now, "error", None, command))
            record.status, record.error = "error", command
            self._log_attempt(record, 1, now, now, None, "error", command, final=True)
            raise _JobFailed
        result: CommandResult | None = None
        with record.scope:
            result = await self._run_attempts(record, command)
        record.phase = ""
        self._decide(record, result)
        if record.status != "succeeded":
            raise _JobFailed

    async def _run_attempts(self, record: JobRecord, command: Command) -> CommandResult:
        job = record.job
        if job.retries == 0:
            return await self._attempt(record, command)
        retry = Retry(
            job.retries + 1,
            on=_AttemptFailed,
            backoff=_backoff(job),
            rng=self.options.rng,
            name=job.name,
            hooks=[functools.partial(self._on_retry, record)],
        )

        async def once() -> CommandResult:
            result = await self._attempt(record, command)
            if result.status in (CommandStatus.FAILED, CommandStatus.TIMED_OUT) and (
                self.stop_reason is None
            ):
                raise _AttemptFailed(result)
            return result

        try:
            return await retry.call(once)
        except _AttemptFailed as exc:
            return exc.result

    async def _attempt(self, record: JobRecord, command: Command) -> CommandResult:
        admission = self.options.admission
        problem = None
        if admission is not None:
            record.phase, record.phase_since = "admission", self.now()
            problem = await _wait_admitted(admission)
        if self.stop_reason is not None:
            # Stopping: no new attempt. Cancelling the job's own scope ends it here.
            record.scope.cancel()
            await trio.lowlevel.checkpoint()
        assert self._batch is not None
        start = self.now()
        record.phase, record.phase_since = "attempt", start
        if problem is None:
            result = await run_command(command, self._settings, self._batch, None)
        else:
            # The probe failed: this job cannot start, the run goes on (as in run_commands).
            result = could_not_start(command, problem)
        end = self.now()
        status = str(result.status)
        error = result.error
        if record.stopping and status != "succeeded":
            status, error = CANCELLED, f"stopped ({self.stop_reason}): {error}"
        record.attempts.append(
            AttemptRecord(len(record.attempts) + 1, start, end, status, result.returncode, error)
        )
        record.result = result
        if self._output is not None:
            self._output.flush(record.name)
        return result

    def _on_retry(self, record: JobRecord, event: GuardEvent) -> None:
        """A failed attempt is retried after ``event.delay``: show it, log it, keep its logs."""
        if not isinstance(event, RetryScheduled):
            return
        attempt = record.attempts[-1]
        now = self.now()
        record.phase, record.phase_since = "delay", now
        record.next_attempt_at = now + event.delay
        self._log_attempt(
            record,
            attempt.number,
            attempt.start,
            attempt.end,
            attempt.returncode,
            attempt.status,
            attempt.error,
            final=False,
        )
        if self.options.logs is not None:
            _keep_attempt_logs(self.options.logs, record.name, attempt.number)
        assert self.display is not None
        self.display.attempt_failed(record, attempt, event.delay, now)

    def _decide(self, record: JobRecord, result: CommandResult | None) -> None:
        """The job's outcome, once its last attempt ended (or it was stopped between two)."""
        last = record.attempts[-1] if record.attempts else None
        if result is None or last is None:
            record.status = CANCELLED
            record.error = f"stopped ({self.stop_reason}) " + (
                "before its first attempt" if last is None else "before its next attempt"
            )
        else:
            record.status = last.status
            record.error = last.error
        if last is not None:
            self._log_attempt(
                record,
                last.number,
                last.start,
                last.end,
                last.returncode,
                record.status,
                record.error,
                final=True,
            )

    def _log_attempt(
        self,
        record: JobRecord,
        number: int,
        start: float,
        end: float,
        returncode: int | None,
        status: str,
        error: str | None,
        *,
        final: bool,
    ) -> None:
        if self._joblog is not None:
            self._joblog.write(
                job_id=record.name,
                attempt=number,
                final=final,
                start=self.wall_start + start,
                end=self.wall_start + end,
                returncode=returncode,
                status=status,
                error=error,
                command=record.job.command(),
            )

    def _show_output(self, job_id: str, stream: str, line: str) -> None:
        assert self.display is not None
        self.display.output(job_id, stream, line)

    # ------------------------------------------------------------------ graph events

    def on_event(self, event: NodeEvent) -> None:
        name = event.node.name
        record = self._by_name[name]
        now = event.time - self._started
        assert self.display is not None
        if event.kind == "started":
            self._ready.pop(name, None)
            self._holding.add(name)
            for resource, weight in record.job.uses.items():
                self._in_use[resource] += weight
            if not self.halting:
                record.status = RUNNING
                record.started_at = record.phase_since = now
                if name not in self.resumed:
                    self.display.started(record, now)
            return
        self._ready.pop(name, None)
        if name in self._holding:
            self._holding.discard(name)
            for resource, weight in record.job.uses.items():
                self._in_use[resource] -= weight
        result = event.result
        assert result is not None
        self._finish(record, result.status, result.error, result.skipped_because, now)
        self.display.finished(record, now)
        if record.status in _OK:
            for dependent in self._dependents[name]:
                self._remaining[dependent] -= 1
                if self._remaining[dependent] == 0:
                    self._by_name[dependent].ready_at = now
                    self._ready[dependent] = None
        self._check_halt(record, now)

    def _finish(
        self,
        record: JobRecord,
        status: NodeStatus,
        error: BaseException | None,
        skipped_because: Node[Any] | None,
        now: float,
    ) -> None:
        record.finished_at = now
        if status is NodeStatus.SUCCEEDED:
            if record.status == RUNNING:  # a plain success
                record.status = "succeeded"
            return
        if status is NodeStatus.FAILED:
            if isinstance(error, _NotStarted):
                record.status = CANCELLED
                record.error = f"not started: {self.stop_reason or self.halt_reason}"
                record.started_at = None
            elif not isinstance(error, _JobFailed):  # pragma: no cover  # run_job raises no other
                record.status = "error"
                record.error = f"trine: {error!r}"
            return
        if status is NodeStatus.SKIPPED:
            because = skipped_because.name if skipped_because is not None else "a dependency"
            record.skipped_because = because
            cause = self._by_name.get(because)
            if cause is not None and cause.status == CANCELLED:
                record.status = CANCELLED
                record.error = f"not started: {because} was stopped"
            else:
                record.status = SKIPPED
            return
        record.status = CANCELLED
        record.error = record.error or f"stopped: {self.stop_reason}"

    # ------------------------------------------------------------------ halting and stopping

    def _check_halt(self, record: JobRecord, now: float) -> None:
        policy = self.options.halt
        if policy is None or self.halt_reason is not None or record.resumed:
            return
        if record.status in FAILED_STATUSES and not record.job.optional:
            kinds = ("fail", "done")
        elif record.status in _OK:
            kinds = ("success", "done")
        else:
            return
        for kind in kinds:
            self._halt_counts[kind] = self._halt_counts.get(kind, 0) + 1
        count = self._halt_counts.get(policy.why, 0)
        if count < policy.threshold(len(self.records)):
            return
        word = {"fail": "failed", "success": "succeeded", "done": "finished"}[policy.why]
        self.halt_reason = f"{count} job{'s' if count != 1 else ''} {word}, --halt {policy}"
        assert self.display is not None
        if policy.when == "soon":
            self.halting = True
            running = len(self._holding)
            self.display.stopping(
                f"halting ({self.halt_reason}): starting no new job, "
                f"letting {running} running finish",
                now,
            )
        else:
            self.stop(f"halted: {self.halt_reason}", now)

    def stop(self, reason: str, now: float) -> None:
        """Stop the run: no new job, SIGTERM to running commands, SIGKILL after the grace."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self.halting = True
        grace = self.jobs_file.run.kill_grace
        self.kill_at = now + grace
        running = 0
        for record in self.records:
            if record.status != RUNNING:
                continue
            if record.phase == "attempt":
                record.stopping = True
                running += 1
            else:  # a retry delay, a wait for load, or not yet begun
                record.scope.cancel()
        self._signal_leaders(signal.SIGTERM)
        assert self.display is not None
        self.display.stopping(
            f"{reason}: SIGTERM sent to {running} running job{'s' if running != 1 else ''}, "
            f"SIGKILL in {grace:g}s (Ctrl-C again: at once)",
            now,
        )

    def kill_now(self, now: float, why: str) -> None:
        self._killing = True
        if self._batch is not None:
            self._batch.kill_grace = 0.0  # its sweep of leftovers kills at once too
        self._kill_all()
        assert self.display is not None
        self.display.stopping(f"{why}: SIGKILL sent to every job", now)

    def _signal_leaders(self, signum: int) -> None:
        """Signal the process group of every command not signalled yet."""
        if self._batch is None:
            return
        for pid in list(self._batch.leaders):
            if pid in self._signalled:
                continue
            self._signalled.add(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signum)

    def _kill_all(self) -> None:
        batch = self._batch
        if batch is None:
            return
        for pid in list(batch.leaders):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if batch.tag is not None:
            for pid in batch.find(None):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    async def _watch_signals(self, signals: Any) -> None:
        async for signum in signals:
            now = self.now()
            if self.signal_received is None:
                self.signal_received = signum
                self.stop(f"interrupted by {signal_name(signum)}", now)
            elif not self._killing:
                self.kill_now(now, f"{signal_name(signum)} again")

    async def _tick(self) -> None:
        """Every tenth of a second: the display, the waiting jobs, the stop's timers."""
        assert self.display is not None
        while True:
            await trio.sleep(_TICK)
            now = self.now()
            if self.stop_reason is not None:
                assert self.kill_at is not None
                if self._killing:
                    self._kill_all()
                else:
                    self._signal_leaders(signal.SIGTERM)  # commands started meanwhile
                    if now >= self.kill_at:
                        self.kill_now(now, "the kill grace is over")
                if now >= self.kill_at + _LAST_RESORT:
                    self._run_scope.cancel()
            else:
                self._announce_waiting(now)
            self.display.refresh(now)

    def _announce_waiting(self, now: float) -> None:
        fresh = [self._by_name[name] for name in self._ready]
        fresh = [record for record in fresh if not record.announced_waiting]
        if not fresh or self.halting:
            return
        for record in fresh:
            record.announced_waiting = True
        shown = [(record, self._reason(record.job)) for record in fresh[:_SHOWN_WAITING]]
        assert self.display is not None
        self.display.waiting(shown, len(fresh) - len(shown), now)

    # ------------------------------------------------------------------ the end

    def exit_code(self) -> int:
        if self.signal_received is not None:
            return 128 + self.signal_received
        required = [record for record in self.records if record.failed and not record.job.optional]
        return 1 if required else 0

    def outcome(self) -> str:
        if self.signal_received is not None:
            return f"interrupted by {signal_name(self.signal_received)}"
        word = "failed" if self.exit_code() else "succeeded"
        if self.halt_reason is not None:
            return f"{word} (halted: {self.halt_reason})"
        return word
