"""Run many commands concurrently, and CPU-bound functions in worker processes.

:func:`run_commands` starts subprocesses under a concurrency limit and turns
each one's fate into a :class:`CommandResult`: a non-zero exit, a timeout or
a missing executable is a result, never an exception that would cancel the
other commands. Each command runs in its own process group, so on timeout or
cancellation the whole group (the command and whatever it started) gets
``SIGTERM``, then ``SIGKILL`` after a grace period, and the command is reaped
before :func:`run_commands` moves on: nothing is left behind.

:func:`to_process` runs one synchronous, CPU-bound function in a worker
process (through ``trio-parallel``), so it neither blocks the event loop nor
holds the GIL; cancelling the call kills the worker.
"""

from __future__ import annotations

import enum
import inspect
import math
import os
import random
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any, TypeVar, final

import attrs
import trio

from ._retry import Backoff, Retry
from ._util import check_int, check_number, check_optional_number

__all__ = [
    "Command",
    "CommandResult",
    "CommandStatus",
    "LoadSample",
    "SystemLoad",
    "SystemLoadStatistics",
    "run_commands",
    "to_process",
]

_T = TypeVar("_T")

# Bytes asked of the pipe per read: large enough that a command printing
# gigabytes costs few scheduler trips, small enough to keep memory flat.
_READ_SIZE = 65536


class CommandStatus(enum.StrEnum):
    """How a command ended (the :attr:`CommandResult.status`)."""

    SUCCEEDED = "succeeded"
    """It exited with status 0."""
    FAILED = "failed"
    """It exited with a non-zero status or was killed by a signal it did not get from trine."""
    TIMED_OUT = "timed_out"
    """It ran longer than its timeout and was terminated."""
    ERROR = "error"
    """It could not be started (missing executable, bad ``cwd``, no permission)."""
    CANCELLED = "cancelled"
    """It was terminated because the caller was cancelled.

    :func:`run_commands` itself lets :exc:`trio.Cancelled` propagate; this
    status is for reports that record such commands (the ``trine`` CLI after
    Ctrl-C).
    """


def _to_argv(value: object) -> tuple[str, ...] | str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes) or not isinstance(value, Sequence):
        raise TypeError(f"argv must be a sequence of str, got {value!r}")
    argv = tuple(value)
    if not argv:
        raise ValueError("argv must not be empty")
    for arg in argv:
        if not isinstance(arg, str | os.PathLike):
            raise TypeError(f"argv items must be str, got {arg!r}")
    return tuple(os.fspath(arg) for arg in argv)


def _to_env(value: object) -> Mapping[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"env must be a mapping of str to str, got {value!r}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"env must map str to str, got {key!r}: {item!r}")
    return dict(value)


def _to_cwd(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"cwd must be a path, got {value!r}")
    return os.fspath(value)


def _to_timeout(value: object) -> float | None:
    return check_optional_number("timeout", value, exclusive=True, allow_inf=True)


def _to_id(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"id must be a str, got {value!r}")
    return value


@final
@attrs.frozen
class Command:
    """One command for :func:`run_commands`, with its own settings.

    A plain argv sequence (``["ls", "-l"]``) is enough for most commands; use
    a :class:`Command` (or a mapping with the same keys) to give one an id,
    its own environment, working directory or timeout, or to run a shell line.

    Args:
      argv: the program and its arguments, or with ``shell=True`` one string
        for ``/bin/sh -c``.
      id: a name for reports; defaults to the command's index in the input.
      env: variables added to (and overriding) the inherited environment and
        :func:`run_commands`'s ``env``.
      cwd: the working directory; defaults to :func:`run_commands`'s ``cwd``.
      timeout: seconds this command may run, overriding :func:`run_commands`'s.
      shell: run *argv* (a string) through ``/bin/sh -c``.

    Raises:
      TypeError: if an argument has the wrong type, or *argv* is a string
        without ``shell=True`` (or a sequence with it).
      ValueError: if *argv* is empty or *timeout* is not positive.

    Example::

        Command("grep -c error *.log | sort", shell=True, id="errors", timeout=5)
    """

    argv: tuple[str, ...] | str = attrs.field(converter=_to_argv)
    id: str | None = attrs.field(default=None, converter=_to_id, kw_only=True)
    env: Mapping[str, str] | None = attrs.field(default=None, converter=_to_env, kw_only=True)
    cwd: str | None = attrs.field(default=None, converter=_to_cwd, kw_only=True)
    timeout: float | None = attrs.field(default=None, converter=_to_timeout, kw_only=True)
    shell: bool = attrs.field(default=False, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.shell, bool):
            raise TypeError(f"shell must be a bool, got {self.shell!r}")
        if self.shell and not isinstance(self.argv, str):
            raise TypeError(f"with shell=True, argv must be one str, got {self.argv!r}")
        if not self.shell and isinstance(self.argv, str):
            raise TypeError(
                f"argv must be a sequence of str, got the str {self.argv!r}: "
                "pass a list, or shell=True to run it through /bin/sh"
            )
        if isinstance(self.argv, str) and not self.argv.strip():
            raise ValueError("argv must not be empty")


@final
@attrs.frozen
class CommandResult:
    """What became of one command run by :func:`run_commands`."""

    id: str
    """The command's id (its index in the input unless one was given)."""
    argv: tuple[str, ...] | str
    """The argv as given (a string for a shell command)."""
    status: CommandStatus
    """How it ended."""
    returncode: int | None
    """The exit status of the last attempt (negative: killed by that signal);
    ``None`` if it never started."""
    stdout_tail: str
    """The last ``output_tail`` bytes of the last attempt's stdout, decoded
    as UTF-8 with ``errors="replace"``."""
    stderr_tail: str
    """The same for stderr."""
    duration: float
    """Seconds on the Trio clock from the first attempt's start to the last one's end."""
    attempts: int
    """How many times it was started (``1 + retries`` at most)."""
    error: str | None
    """Why it could not be started or was stopped, or ``None``."""

    @property
    def succeeded(self) -> bool:
        """``True`` if the command exited with status 0."""
        return self.status is CommandStatus.SUCCEEDED


@final
@attrs.frozen
class LoadSample:
    """One reading of the machine's load, as a :class:`SystemLoad` probe returns it."""

    cpu_percent: float
    """CPU use over all cores since the previous reading, 0 to 100."""
    free_memory: int
    """Bytes of memory available to new processes."""


@final
@attrs.frozen
class SystemLoadStatistics:
    """A snapshot of a :class:`SystemLoad`, from :meth:`SystemLoad.statistics`."""

    tasks_waiting: int
    """Commands waiting for the load to drop before they start."""
    delays: int
    """How many times a command found the machine too busy and waited."""
    last_sample: LoadSample | None
    """The most recent reading, or ``None`` before the first."""


def _psutil_probe() -> Callable[[], LoadSample]:
    try:
        import psutil  # type: ignore[import-untyped]  # optional dependency, imported on use
    except ImportError as exc:
        raise ModuleNotFoundError(
            "SystemLoad needs psutil to read the machine's load: pip install 'trine[load]' "
            "(or pass probe= a function returning a LoadSample)"
        ) from exc
    # The first cpu_percent(None) call only primes psutil's counters.
    psutil.cpu_percent(interval=None)

    def probe() -> LoadSample:
        return LoadSample(
            cpu_percent=float(psutil.cpu_percent(interval=None)),
            free_memory=int(psutil.virtual_memory().available),
        )

    return probe


@final
@attrs.define(eq=False, init=False)
class SystemLoad:
    """Hold back new commands while the machine is busy.

    Passed as ``admission=`` to :func:`run_commands`: before a command starts
    it reads the load, and while CPU use is above *max_cpu_percent* or free
    memory below *min_free_memory* it waits *interval* seconds and reads
    again. Commands are delayed, never failed; those already running are
    left alone.

    Args:
      max_cpu_percent: the CPU use (0-100, over all cores) above which new
        commands wait, or ``None`` for no CPU condition.
      min_free_memory: the bytes of available memory below which new
        commands wait, or ``None``.
      interval: seconds between readings while waiting.
      probe: a function returning a :class:`LoadSample`; by default psutil
        is read (install the ``load`` extra).

    Raises:
      ModuleNotFoundError: if no *probe* is given and psutil is not installed.
      TypeError, ValueError: for arguments of the wrong type or out of range.

    Example::

        load = trine.SystemLoad(max_cpu_percent=90, min_free_memory=2 * 1024**3)
        results = await trine.run_commands(commands, limit=8, admission=load)
    """

    max_cpu_percent: float | None
    min_free_memory: int | None
    interval: float
    _probe: Callable[[], LoadSample]
    _waiting: int = 0
    _delays: int = 0
    _last_sample: LoadSample | None = None

    def __init__(
        self,
        *,
        max_cpu_percent: float | None = None,
        min_free_memory: int | None = None,
        interval: float = 0.5,
        probe: Callable[[], LoadSample] | None = None,
    ) -> None:
        if max_cpu_percent is not None:
            check_number("max_cpu_percent", max_cpu_percent, minimum=0.0, exclusive=True)
        if min_free_memory is not None:
            check_int("min_free_memory", min_free_memory, minimum=0)
        check_number("interval", interval, exclusive=True)
        if probe is not None and not callable(probe):
            raise TypeError(f"probe must be callable, got {probe!r}")
        self.max_cpu_percent = None if max_cpu_percent is None else float(max_cpu_percent)
        self.min_free_memory = min_free_memory
        self.interval = float(interval)
        self._probe = probe if probe is not None else _psutil_probe()
        self._waiting = 0
        self._delays = 0
        self._last_sample = None

    def admits(self, sample: LoadSample) -> bool:
        """Whether a new command may start at this load."""
        if self.max_cpu_percent is not None and sample.cpu_percent > self.max_cpu_percent:
            return False
        return self.min_free_memory is None or sample.free_memory >= self.min_free_memory

    async def wait_admitted(self) -> None:
        """Return once the load allows a new command to start.

        Always a checkpoint; waits in steps of :attr:`interval` seconds.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._waiting += 1
        try:
            delayed = False
            while True:
                sample = self._probe()
                self._last_sample = sample
                if self.admits(sample):
                    break
                if not delayed:
                    delayed = True
                    self._delays += 1
                await trio.sleep(self.interval)
        finally:
            self._waiting -= 1
        if not delayed:
            await trio.lowlevel.cancel_shielded_checkpoint()

    def statistics(self) -> SystemLoadStatistics:
        """Return a fresh :class:`SystemLoadStatistics` snapshot."""
        return SystemLoadStatistics(
            tasks_waiting=self._waiting, delays=self._delays, last_sample=self._last_sample
        )


def _to_command(index: int, item: object) -> Command:
    where = f"commands[{index}]"
    try:
        if isinstance(item, Command):
            command = item
        elif isinstance(item, Mapping):
            unknown = set(item) - {"argv", "id", "env", "cwd", "timeout", "shell"}
            if unknown:
                raise TypeError(f"unknown key {sorted(unknown)[0]!r}")
            if "argv" not in item:
                raise TypeError("missing key 'argv'")
            command = Command(**item)
        elif isinstance(item, str):
            raise TypeError(
                f"must be an argv sequence, a mapping or a Command, got the str {item!r}: "
                "pass a list, or Command(line, shell=True) for a shell line"
            )
        elif isinstance(item, Sequence) and not isinstance(item, bytes):
            command = Command(item)
        else:
            raise TypeError(f"must be an argv sequence, a mapping or a Command, got {item!r}")
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None
    if command.id is None:
        command = attrs.evolve(command, id=str(index))
    return command


class _Tail:
    """The last *size* bytes written to it, in O(size) memory."""

    __slots__ = ("_buffer", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._buffer = bytearray()

    def write(self, data: bytes | bytearray) -> None:
        if self._size == 0:
            return
        self._buffer += data
        # Trim only when twice the size, so trimming is amortised O(1) per byte.
        if len(self._buffer) > 2 * self._size:
            del self._buffer[: -self._size]

    def text(self) -> str:
        return bytes(self._buffer[-self._size :] if self._size else b"").decode(
            "utf-8", errors="replace"
        )


async def _pump(
    stream: trio.abc.ReceiveStream, tail: _Tail, sink: IO[bytes] | None, closed: _OutputClosed
) -> None:
    while chunk := await stream.receive_some(_READ_SIZE):
        tail.write(chunk)
        if sink is not None:
            # A local log file: a buffered write is cheap enough not to need a thread.
            sink.write(chunk)
    closed.stream_closed()


class _OutputClosed:
    """Set once both of a command's output pipes reached end of file.

    That happens when every process holding them (the command and anything
    it started) has exited or closed them: an event to wait on, where polling
    the process group would also count zombies nobody has reaped yet.
    """

    __slots__ = ("event", "open_streams")

    def __init__(self) -> None:
        self.open_streams = 2
        self.event = trio.Event()

    def stream_closed(self) -> None:
        self.open_streams -= 1
        if self.open_streams == 0:
            self.event.set()


def _signal_group(pgid: int, signum: int) -> bool:
    """Send *signum* to the process group; ``False`` if the group is gone."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover  # the pgid was reused by another user
        return False
    return True


async def _stop_group(
    process: trio.Process, pgid: int, grace: float, output: _OutputClosed | None
) -> None:
    """SIGTERM the command's process group, SIGKILL after *grace*, reap the leader.

    Waits for the leader to exit and, if *output* is given, for the output
    pipes to close, which is when the rest of the group has gone too. Runs
    shielded: once we decide to stop a command, it is stopped and reaped even
    if the caller is being cancelled.
    """
    with trio.CancelScope(shield=True):
        if _signal_group(pgid, signal.SIGTERM):
            with trio.move_on_after(grace):
                await process.wait()
                if output is not None:
                    await output.event.wait()
            # Whatever is left (a process ignoring SIGTERM, a child that
            # closed its output) is killed now.
            _signal_group(pgid, signal.SIGKILL)
        await process.wait()


def _open_logs(
    logs: str | None, command_id: str
) -> tuple[IO[bytes], IO[bytes]] | tuple[None, None]:
    if logs is None:
        return None, None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in command_id)
    stdout = open(os.path.join(logs, f"{safe}.stdout"), "wb")  # noqa: SIM115  # closed by caller
    try:
        stderr = open(os.path.join(logs, f"{safe}.stderr"), "wb")  # noqa: SIM115
    except BaseException:
        stdout.close()
        raise
    return stdout, stderr


@attrs.frozen
class _Attempt:
    status: CommandStatus
    returncode: int | None
    stdout_tail: str
    stderr_tail: str
    error: str | None


class _AttemptFailed(Exception):
    """An attempt failed or timed out: what the per-command :class:`Retry` retries on."""

    def __init__(self, attempt: _Attempt) -> None:
        super().__init__(attempt.error)
        self.attempt = attempt


def _command_retry(retries: int, backoff: Backoff | None, rng: random.Random | None) -> Retry:
    return Retry(
        retries + 1,
        on=_AttemptFailed,
        backoff=_NO_BACKOFF if backoff is None else backoff,
        rng=rng,
        name="run_commands",
    )


_NO_BACKOFF = Backoff.constant(0.0)


async def _run_attempt(
    command: Command,
    *,
    attempt_timeout: float,
    env: Mapping[str, str] | None,
    cwd: str | None,
    output_tail: int,
    kill_grace: float,
    logs: str | None,
) -> _Attempt:
    stdout_sink, stderr_sink = _open_logs(logs, command.id or "")
    try:
        try:
            process = await trio.lowlevel.open_process(
                command.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=cwd,
                shell=command.shell,
                # Its own process group, so a timeout stops everything it started.
                start_new_session=True,
            )
        except OSError as exc:
            return _Attempt(CommandStatus.ERROR, None, "", "", f"cannot start: {exc}")
        assert process.stdout is not None
        assert process.stderr is not None
        pgid = process.pid
        stdout, stderr = _Tail(output_tail), _Tail(output_tail)
        output = _OutputClosed()
        timed_out = False
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, process.stdout, stdout, stdout_sink, output)
                nursery.start_soon(_pump, process.stderr, stderr, stderr_sink, output)
                with trio.move_on_after(attempt_timeout) as scope:
                    await process.wait()
                timed_out = scope.cancelled_caught
                # On timeout stop it; after a normal exit stop what it left
                # running in its group, which would otherwise hold the pipes open.
                await _stop_group(process, pgid, kill_grace, output)
        except BaseException:
            # Cancelled (the pumps too, so their end of file will not come):
            # stop the group without waiting for the output.
            await _stop_group(process, pgid, kill_grace, None)
            raise
        finally:
            with trio.CancelScope(shield=True):
                await process.stdout.aclose()
                await process.stderr.aclose()
    finally:
        if stdout_sink is not None and stderr_sink is not None:
            stdout_sink.close()
            stderr_sink.close()
    returncode = process.returncode
    if timed_out:
        status = CommandStatus.TIMED_OUT
        error: str | None = f"timed out after {attempt_timeout:g} s"
    elif returncode == 0:
        status, error = CommandStatus.SUCCEEDED, None
    else:
        status = CommandStatus.FAILED
        if returncode is not None and returncode < 0:
            error = f"killed by {signal.Signals(-returncode).name}"
        else:
            error = f"exited with status {returncode}"
    return _Attempt(status, returncode, stdout.text(), stderr.text(), error)


async def _run_command(
    command: Command,
    *,
    default_timeout: float | None,
    retry: Retry,
    env: Mapping[str, str] | None,
    cwd: str | None,
    output_tail: int,
    kill_grace: float,
    logs: str | None,
    admission: SystemLoad | None,
) -> CommandResult:
    merged_env: dict[str, str] | None = None
    if env is not None or command.env is not None:
        merged_env = {**os.environ, **(env or {}), **(command.env or {})}
    effective_timeout = command.timeout if command.timeout is not None else default_timeout
    if effective_timeout is None:
        effective_timeout = math.inf
    started = trio.current_time()
    attempts = 0

    async def attempt_once() -> _Attempt:
        nonlocal attempts
        if admission is not None:
            await admission.wait_admitted()
        attempts += 1
        attempt = await _run_attempt(
            command,
            attempt_timeout=effective_timeout,
            env=merged_env,
            cwd=command.cwd if command.cwd is not None else cwd,
            output_tail=output_tail,
            kill_grace=kill_grace,
            logs=logs,
        )
        # Failed and timed-out runs are retried; a command that cannot start
        # would not start next time either, so an error is returned as is.
        if attempt.status in (CommandStatus.FAILED, CommandStatus.TIMED_OUT):
            raise _AttemptFailed(attempt)
        return attempt

    try:
        attempt = await retry.call(attempt_once)
    except _AttemptFailed as exc:
        attempt = exc.attempt
    assert command.id is not None
    return CommandResult(
        id=command.id,
        argv=command.argv,
        status=attempt.status,
        returncode=attempt.returncode,
        stdout_tail=attempt.stdout_tail,
        stderr_tail=attempt.stderr_tail,
        duration=trio.current_time() - started,
        attempts=attempts,
        error=attempt.error,
    )


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
    a :class:`CommandResult`; a non-zero exit, a timeout or a missing
    executable does not stop the others and is never raised. Output is read
    as it arrives and only the last *output_tail* bytes of each stream are
    kept, so a command printing gigabytes costs O(*output_tail*) memory.

    Commands read from ``/dev/null`` (nothing waits for a terminal). Each
    command runs in a new session (its own process group). When it
    times out, or the call is cancelled, the group gets ``SIGTERM``, then
    ``SIGKILL`` after *kill_grace* seconds, and the command is reaped before
    anything else happens. A command that exits normally but leaves
    processes running in its group gets the same treatment, so nothing
    outlives :func:`run_commands`.

    Args:
      commands: each an argv sequence (``["make", "-j4"]``), a
        :class:`Command`, or a mapping with :class:`Command`'s keys.
      limit: the most commands running at once.
      timeout: seconds each attempt may run (a command's own ``timeout``
        overrides it), or ``None``.
      retries: how many more times a failed or timed-out command is run
        (through a :class:`~trine.Retry`). A command that cannot start is not
        retried.
      backoff: the :class:`~trine.Backoff` between a command's attempts;
        default none (run again at once).
      rng: the :class:`random.Random` for the backoff's jitter (seed it to
        replay delays).
      env: variables added to the inherited environment for every command.
      cwd: the working directory for commands without their own.
      output_tail: bytes of stdout and of stderr kept per command.
      kill_grace: seconds between ``SIGTERM`` and ``SIGKILL``.
      logs: a directory to write each command's full output to, as
        ``<id>.stdout`` and ``<id>.stderr`` (of the last attempt).
      admission: a :class:`SystemLoad` that delays starts while the machine
        is busy.

    Returns:
      One :class:`CommandResult` per command, in input order.

    Raises:
      TypeError, ValueError: for a malformed command (named by its index,
        ``commands[3]: ...``) or argument, before anything starts.
      trio.Cancelled: if the call is cancelled; running commands are
        stopped and reaped first.

    Example::

        results = await trine.run_commands(
            [["pytest", "-x", path] for path in shards], limit=4, timeout=600
        )
        failed = [r.id for r in results if not r.succeeded]
    """
    check_int("limit", limit)
    check_optional_number("timeout", timeout, exclusive=True, allow_inf=True)
    check_int("retries", retries, minimum=0)
    if backoff is not None and not isinstance(backoff, Backoff):
        raise TypeError(f"backoff must be a trine.Backoff, got {backoff!r}")
    if rng is not None and not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {rng!r}")
    env = _to_env(env)
    cwd_path = _to_cwd(cwd)
    logs_path = _to_cwd(logs)
    check_int("output_tail", output_tail, minimum=0)
    check_number("kill_grace", kill_grace)
    if admission is not None and not isinstance(admission, SystemLoad):
        raise TypeError(f"admission must be a SystemLoad, got {admission!r}")
    specs = [_to_command(index, item) for index, item in enumerate(commands)]
    results: list[CommandResult | None] = [None] * len(specs)
    next_index = 0

    async def worker() -> None:
        # `limit` workers pull the next command in input order: fewer tasks and
        # scheduler trips than one task per command queued on a limiter.
        nonlocal next_index
        while next_index < len(specs):
            index = next_index
            next_index += 1
            results[index] = await _run_command(
                specs[index],
                default_timeout=timeout,
                retry=_command_retry(retries, backoff, rng),
                env=env,
                cwd=cwd_path,
                output_tail=output_tail,
                kill_grace=kill_grace,
                logs=logs_path,
                admission=admission,
            )

    async with trio.open_nursery() as nursery:
        for _ in range(min(limit, len(specs))):
            nursery.start_soon(worker)
    if not specs:
        await trio.lowlevel.checkpoint()
    return [result for result in results if result is not None]


async def to_process(fn: Callable[..., _T], *args: Any) -> _T:
    """Run the sync function ``fn(*args)`` in a worker process and return its result.

    For CPU-bound work that would otherwise block the event loop (and the
    GIL). *fn*, *args* and the result must be picklable. Cancelling the call
    kills the worker process (``trio_parallel.run_sync(kill_on_cancel=True)``);
    the function's exception, if it raises, is re-raised here.

    Args:
      fn: a synchronous, picklable (module-level) function.
      *args: its positional arguments.

    Raises:
      ModuleNotFoundError: if trio-parallel is not installed (the ``process`` extra).
      TypeError: if *fn* is not callable or is an async function.

    Example::

        digest = await trine.to_process(hash_file, path)
    """
    if not callable(fn):
        raise TypeError(f"fn must be a sync function, got {fn!r}")
    if inspect.iscoroutinefunction(fn):
        raise TypeError(f"fn must be a sync function, got the async function {fn!r}")
    try:
        import trio_parallel  # type: ignore[import-untyped]  # optional dependency, imported on use
    except ImportError as exc:
        raise ModuleNotFoundError(
            "to_process needs trio-parallel: pip install 'trine[process]'"
        ) from exc
    result: _T = await trio_parallel.run_sync(fn, *args, kill_on_cancel=True)
    return result
