"""Running commands as subprocesses: :func:`run_commands`.

One command's path, top to bottom: :func:`run_command` (retries and
admission) runs attempts; :func:`_run_attempt` opens the logs and turns
whatever happens into an :class:`_Attempt`; :func:`_run_process` starts the
process and watches it; :func:`_supervise` waits for its exit or its
deadline; :func:`_stop` stops what is left, within ``kill_grace``.
"""

from __future__ import annotations

import functools
import math
import os
import random
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, final

import attrs
import trio

from .._retry import Backoff, Retry
from .._util import check_int, check_number, check_optional_number, signal_name
from ._command import (
    Command,
    CommandAttempt,
    CommandResult,
    CommandStatus,
    to_commands,
    to_env,
    to_path,
)
from ._descendants import FIRST_POLL, MAX_POLL, Batch, Family
from ._load import SystemLoad
from ._output import EPOLL, EpollWatch, ExitWatch, Output, Pipes, TaskWatch, log_name, open_log

__all__ = ["Settings", "command_retry", "could_not_start", "run_command", "run_commands"]

_Watch = EpollWatch | ExitWatch | TaskWatch


@final
@attrs.frozen
class Settings:
    """What every command of a batch is run with, unless it says otherwise."""

    timeout: float | None
    cwd: str | None
    output_tail: int
    kill_grace: float
    logs: str | None
    admission: SystemLoad | None
    on_output: Callable[[str, str, bytes], object] | None = None
    """Called with (command id, ``"stdout"`` or ``"stderr"``, bytes) as output
    arrives: the ``trine`` command line's ``--output=tag``."""

    @property
    def capture(self) -> bool:
        """Whether the output is wanted at all (else it goes to ``/dev/null``, unread)."""
        return self.output_tail > 0 or self.logs is not None or self.on_output is not None


@attrs.frozen
class _Attempt:
    status: CommandStatus
    returncode: int | None
    stdout_tail: str
    stderr_tail: str
    error: str | None

    @classmethod
    def could_not_run(cls, error: str) -> _Attempt:
        return cls(CommandStatus.ERROR, None, "", "", error)


class _AttemptFailed(Exception):
    """An attempt failed or timed out: what the per-command :class:`Retry` retries on."""

    def __init__(self, attempt: _Attempt) -> None:
        super().__init__(attempt.error)
        self.attempt = attempt


_NO_BACKOFF = Backoff.constant(0.0)

# The output of a command whose output is not wanted (it goes to /dev/null):
# nothing is ever written to it, so every such command can share it.
_NOWHERE = Output(0)


def command_retry(
    retries: int, backoff: Backoff | None = None, rng: random.Random | None = None
) -> Retry | None:
    """The :class:`Retry` that re-runs a command *retries* times, or ``None`` for no retries."""
    if retries == 0:
        return None
    return Retry(
        retries + 1,
        on=_AttemptFailed,
        backoff=_NO_BACKOFF if backoff is None else backoff,
        rng=rng,
        name="run_commands",
    )


async def _stop(watch: _Watch, family: Family, kill_grace: float) -> None:
    """``SIGTERM`` what is left of the command, ``SIGKILL`` it after *kill_grace*, reap the leader.

    Returns once the leader is reaped, its output read to the end and its
    group gone; at the latest *kill_grace* after it began (plus the moment the
    leader takes to die of ``SIGKILL``), whatever descendants outside the
    group do: their output is no longer read. Shielded: a command being
    stopped is stopped, even if the caller is cancelled meanwhile.
    """
    with trio.CancelScope(shield=True):
        family.terminate()
        with trio.move_on_after(kill_grace):
            await _settle(watch, family)
            return
        family.kill()
        # Only a process stuck in the kernel (a dead NFS mount) outlives SIGKILL for long.
        await _until_exited(watch)


async def _settle(watch: _Watch, family: Family) -> None:
    """Return once the leader is reaped, its pipes at end of file, its group and escapees gone."""
    delay = FIRST_POLL
    group_gone = False
    while True:
        wait = math.inf  # output, end of file and the exit are events
        if watch.exited:
            # An empty group stays empty (no process can join it), so once is enough.
            group_gone = group_gone or not family.group_alive()
            escapees = family.terminate()
            if group_gone and not escapees and watch.drain_now():
                return
            # An emptying group and dying escapees give no event: poll them.
            wait, delay = delay, min(delay * 2, MAX_POLL)
        with trio.move_on_after(wait):
            await watch.next_event()


async def _until_exited(watch: _Watch) -> None:
    while not watch.exited:
        await watch.next_event()


async def _supervise(watch: _Watch, family: Family, deadline: float, kill_grace: float) -> bool:
    """Wait for the command to exit or its deadline, then stop what is left; ``True`` on timeout."""
    try:
        if deadline == math.inf:
            await _until_exited(watch)
        else:
            with trio.move_on_at(deadline):
                await _until_exited(watch)
    except BaseException:
        # Cancelled, or KeyboardInterrupt: stop the command before the exception goes on.
        await _stop(watch, family, kill_grace)
        raise
    if not watch.exited:
        await _stop(watch, family, kill_grace)
        return True
    # It exited. Usually nothing is left in its group and its output is all
    # read: a syscall or two, no scheduler trip. Otherwise what it left in the
    # group, and what holds its output from outside, gets SIGTERM now and
    # SIGKILL kill_grace later. (What left the group and let go of the
    # output is the batch's to stop, when it ends.)
    left_in_group = family.signal_group(signal.SIGTERM) and family.group_alive()
    if left_in_group or not watch.drain_now():
        await _stop(watch, family, kill_grace)
    else:
        family.batch.glance()
    return False


async def _run_process(
    command: Command,
    settings: Settings,
    batch: Batch,
    env: Mapping[str, str] | None,
    tag: str | None,
    stdout: Output,
    stderr: Output,
) -> tuple[int | None, bool] | str:
    """Start and watch the command: its ``(returncode, timed_out)``, or why it could not start."""
    pipes = Pipes() if settings.capture else None
    try:
        return await _start_and_watch(command, settings, batch, env, tag, pipes, stdout, stderr)
    finally:
        if pipes is not None:
            pipes.close()


async def _start_and_watch(
    command: Command,
    settings: Settings,
    batch: Batch,
    env: Mapping[str, str] | None,
    tag: str | None,
    pipes: Pipes | None,
    stdout: Output,
    stderr: Output,
) -> tuple[int | None, bool] | str:
    devnull = batch.devnull()
    try:
        process = await trio.lowlevel.open_process(
            command.argv,
            stdin=devnull,
            stdout=devnull if pipes is None else pipes.write_ends[0],
            stderr=devnull if pipes is None else pipes.write_ends[1],
            env=env,
            cwd=command.cwd if command.cwd is not None else settings.cwd,
            shell=command.shell,
            # Its own session and process group, so stopping it stops what it started.
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:  # ValueError: what the OS refuses that the door missed
        return f"cannot start: {exc}"
    if pipes is not None:
        pipes.started()
    timeout = command.timeout if command.timeout is not None else settings.timeout
    deadline = math.inf if timeout is None else trio.current_time() + timeout
    family = Family(process.pid, tag, batch)
    outputs = {} if pipes is None else {pipes.stdout: stdout, pipes.stderr: stderr}
    batch.leaders.add(process.pid)
    try:
        watch: EpollWatch | ExitWatch | None
        if pipes is None:
            watch = ExitWatch(process)
        else:
            watch = EpollWatch.create(process, outputs, batch.epolls) if EPOLL else None
        if watch is not None:
            try:
                timed_out = await _supervise(watch, family, deadline, settings.kill_grace)
            finally:
                watch.close()
        else:
            if pipes is not None:
                pipes.watched_by_trio()
            async with trio.open_nursery() as nursery:
                task_watch = TaskWatch(nursery, process, outputs)
                try:
                    timed_out = await _supervise(task_watch, family, deadline, settings.kill_grace)
                finally:
                    task_watch.close()
    finally:
        if process.returncode is None:  # pragma: no cover  # an error of ours, not the command's
            with trio.CancelScope(shield=True):
                family.signal_group(signal.SIGKILL)
                await process.wait()
        batch.leaders.discard(process.pid)
    return process.returncode, timed_out


def _open_logs(directory: str, command_id: str, batch: Batch, outputs: list[Output]) -> str | None:
    """Give *outputs* their log files in *directory*; on failure, say why (and keep none open)."""
    name = log_name(command_id)
    problem = None
    try:
        for output, suffix in zip(outputs, ("stdout", "stderr"), strict=True):
            path = os.path.join(directory, f"{name}.{suffix}")
            output.log, key = open_log(path)
            if key is not None:
                owner = batch.claim_log(key, command_id)
                if owner != command_id:
                    problem = f"cannot write logs: {path} is also the log of command {owner!r}"
                    break
                output.log.truncate(0)
    except OSError as exc:
        problem = f"cannot write logs: {exc}"
    if problem is not None:
        for output in outputs:
            output.close_log()
    return problem


async def _run_attempt(
    command: Command,
    settings: Settings,
    batch: Batch,
    env: Mapping[str, str] | None,
    tag: str | None,
) -> _Attempt:
    if settings.on_output is not None:
        assert command.id is not None
        stdout = Output(
            settings.output_tail, functools.partial(settings.on_output, command.id, "stdout")
        )
        stderr = Output(
            settings.output_tail, functools.partial(settings.on_output, command.id, "stderr")
        )
    elif settings.capture:
        stdout, stderr = Output(settings.output_tail), Output(settings.output_tail)
    else:
        stdout = stderr = _NOWHERE
    if settings.logs is not None:
        assert command.id is not None
        problem = _open_logs(settings.logs, command.id, batch, [stdout, stderr])
        if problem is not None:
            return _Attempt.could_not_run(problem)
    try:
        outcome = await _run_process(command, settings, batch, env, tag, stdout, stderr)
    finally:
        log_error = stdout.close_log()
        log_error = stderr.close_log() or log_error
    if isinstance(outcome, str):
        return _Attempt.could_not_run(outcome)
    returncode, timed_out = outcome
    if log_error is not None:
        status, error = CommandStatus.ERROR, f"cannot write logs: {log_error}"
    elif timed_out:
        timeout = command.timeout if command.timeout is not None else settings.timeout
        status, error = CommandStatus.TIMED_OUT, f"timed out after {timeout:g} s"
    elif returncode == 0:
        status, error = CommandStatus.SUCCEEDED, None
    else:
        status = CommandStatus.FAILED
        if returncode is not None and returncode < 0:
            error = f"killed by {signal_name(-returncode)}"
        else:
            error = f"exited with status {returncode}"
    return _Attempt(status, returncode, stdout.tail.text(), stderr.tail.text(), error)


async def _wait_admitted(admission: SystemLoad) -> str | None:
    """Wait until *admission* lets a command start; say why, if its probe failed instead.

    A probe can fail at run time (``/proc`` unreadable in a sandbox, a probe
    of the user's that returns the wrong thing): that costs the one command
    that was waiting, never the batch.
    """
    try:
        await admission.wait_admitted()
    except Exception as exc:  # Cancelled and KeyboardInterrupt are not Exceptions: they pass
        return f"cannot read the load: {type(exc).__name__}: {exc}"
    return None


async def run_command(
    command: Command, settings: Settings, batch: Batch, retry: Retry | None
) -> CommandResult:
    """Run one command (with an id) to its :class:`CommandResult`: attempts, retries, admission."""
    assert command.id is not None
    tag = batch.command_tag()
    env = batch.environment(command.env, tag)
    admission = settings.admission
    history: list[CommandAttempt] = []

    async def attempt_once() -> _Attempt:
        if admission is not None:
            problem = await _wait_admitted(admission)
            if problem is not None:
                # The command never started; it is an error, as one that cannot run.
                now = trio.current_time()
                history.append(CommandAttempt(now, now, CommandStatus.ERROR, None, problem))
                return _Attempt.could_not_run(problem)
        attempt_started = trio.current_time()
        attempt = await _run_attempt(command, settings, batch, env, tag)
        history.append(
            CommandAttempt(
                attempt_started,
                trio.current_time(),
                attempt.status,
                attempt.returncode,
                attempt.error,
            )
        )
        # Failed and timed-out runs are retried; a command that cannot run
        # would not run next time either, so an error is returned as is.
        if retry is not None and attempt.status in (CommandStatus.FAILED, CommandStatus.TIMED_OUT):
            raise _AttemptFailed(attempt)
        return attempt

    if retry is None:
        attempt = await attempt_once()
    else:
        try:
            attempt = await retry.call(attempt_once)
        except _AttemptFailed as exc:
            attempt = exc.attempt
    return _result(command, attempt, history)


def _result(command: Command, attempt: _Attempt, history: list[CommandAttempt]) -> CommandResult:
    """The :class:`CommandResult` of *command*, whose last attempt was *attempt*.

    Its duration runs from the first attempt's start, so the wait for
    ``admission`` before it is not counted (the waits before later attempts,
    as their backoff, are).
    """
    assert command.id is not None
    started = history[0].started_at
    return CommandResult(
        id=command.id,
        argv=command.argv,
        status=attempt.status,
        returncode=attempt.returncode,
        stdout_tail=attempt.stdout_tail,
        stderr_tail=attempt.stderr_tail,
        duration=trio.current_time() - started,
        attempts=len(history),
        error=attempt.error,
        history=tuple(history),
    )


def could_not_start(command: Command, problem: str) -> CommandResult:
    """The result of *command* when it cannot start at all: one attempt, an error, now."""
    now = trio.current_time()
    history = [CommandAttempt(now, now, CommandStatus.ERROR, None, problem)]
    return _result(command, _Attempt.could_not_run(problem), history)


async def run_commands(
    commands: Iterable[Sequence[str] | Mapping[str, Any] | Command],
    *,
    limit: int,
    timeout: float | None = None,  # noqa: ASYNC109  # each command's timeout, not the call's
    retries: int = 0,
    backoff: Backoff | None = None,
    rng: random.Random | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    output_tail: int = 4096,
    kill_grace: float = 5.0,
    logs: str | os.PathLike[str] | None = None,
    admission: SystemLoad | None = None,
) -> list[CommandResult]:
    """Run *commands* as subprocesses, at most *limit* at a time.

    Commands start in input order as slots come free. Each one's outcome is
    a :class:`CommandResult`: a non-zero exit, a timeout, a missing
    executable, a log file that cannot be written or an *admission* probe
    that fails is that command's result,
    never an exception that would cost the others theirs. Output is read as
    it arrives and only the last *output_tail* bytes of each stream are kept,
    so a command printing gigabytes costs O(*output_tail*) memory; with
    ``output_tail=0`` and no *logs* the output goes to ``/dev/null`` unread.

    Commands read from ``/dev/null``. Each runs in a new session (its own
    process group). When it times out, or the call is cancelled, the group
    gets ``SIGTERM``, then ``SIGKILL`` after *kill_grace* seconds; a command
    that exits leaving processes in its group has them stopped the same way.
    A timeout is a promise: *kill_grace* after it the result comes back,
    whatever the command's descendants do, even one that left the group and
    holds the output pipes open (its output is no longer read). On Linux the
    runner is a child subreaper while commands run, so descendants that left
    the group are found, stopped and reaped too, at the latest before
    :func:`run_commands` returns (see the guide's "Stopping commands").

    Args:
      commands: each an argv sequence (``["make", "-j4"]``), a
        :class:`Command`, or a mapping with :class:`Command`'s keys. Ids must
        be unique (a command's default id is its index).
      limit: the most commands running at once.
      timeout: seconds each attempt may run (a command's own ``timeout``
        overrides it), or ``None``.
      retries: how many more times a failed or timed-out command is run
        (through a :class:`~trine.Retry`), at most ``sys.maxsize - 1``. A
        command that cannot run is not retried.
      backoff: the :class:`~trine.Backoff` between a command's attempts;
        default none (run again at once).
      rng: the :class:`random.Random` for the backoff's jitter (seed it to
        replay delays).
      env: variables added to the inherited environment for every command
        (read once, when the call starts).
      cwd: the working directory for commands without their own.
      output_tail: bytes of stdout and of stderr kept per command.
      kill_grace: seconds between ``SIGTERM`` and ``SIGKILL``.
      logs: an existing directory to write each command's full output to, as
        ``<id>.stdout`` and ``<id>.stderr`` (of the last attempt). Characters
        of the id other than letters, digits, ``-``, ``_`` and ``.`` are
        written ``%XX`` (``a/b`` → ``a%2Fb.stdout``), so no two commands
        share a file.
      admission: a :class:`SystemLoad` that delays starts while the machine
        is busy. If its probe fails, the command waiting for it is an
        ``ERROR`` ("cannot read the load: ..."), not retried.

    Returns:
      One :class:`CommandResult` per command, in input order.

    Raises:
      TypeError, ValueError: for a malformed command (named by its index,
        ``commands[3]: ...``), duplicate ids, or a bad argument, before
        anything starts.
      trio.Cancelled: if the call is cancelled; running commands are
        stopped and reaped first.

    Example::

        results = await trine.run_commands(
            [["pytest", "-x", path] for path in shards], limit=4, timeout=600
        )
        failed = [r.id for r in results if not r.succeeded]
    """
    check_int("limit", limit)
    timeout = check_optional_number("timeout", timeout, exclusive=True, allow_inf=True)
    # Each command runs 1 + retries times, a count that must fit in sys.maxsize.
    check_int("retries", retries, minimum=0, maximum=sys.maxsize - 1)
    if backoff is not None and not isinstance(backoff, Backoff):
        raise TypeError(f"backoff must be a trine.Backoff, got {backoff!r}")
    if rng is not None and not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {rng!r}")
    run_env = to_env(env)
    if admission is not None and not isinstance(admission, SystemLoad):
        raise TypeError(f"admission must be a SystemLoad, got {admission!r}")
    settings = Settings(
        timeout=timeout,
        cwd=to_path("cwd", cwd),
        output_tail=check_int("output_tail", output_tail, minimum=0),
        kill_grace=check_number("kill_grace", kill_grace),
        logs=to_path("logs", logs),
        admission=admission,
    )
    specs = to_commands(commands)
    retry = command_retry(retries, backoff, rng)
    results: list[CommandResult] = []
    if not specs:
        await trio.lowlevel.checkpoint()
        return results
    slots: list[CommandResult | None] = [None] * len(specs)
    next_index = 0

    async with Batch(settings.kill_grace, run_env) as batch:

        async def worker() -> None:
            # `limit` workers pull the next command in input order: fewer tasks
            # and scheduler trips than one task per command queued on a limiter.
            nonlocal next_index
            while next_index < len(specs):
                index = next_index
                next_index += 1
                slots[index] = await run_command(specs[index], settings, batch, retry)

        async with trio.open_nursery() as nursery:
            for _ in range(min(limit, len(specs))):
                nursery.start_soon(worker)
    for result in slots:
        assert result is not None
        results.append(result)
    return results
