"""run_commands, Command, SystemLoad and to_process, against real subprocesses.

The subprocesses run on the real clock, so these tests assert outcomes
(statuses, exit codes, output, which processes still exist), never exact
durations of a command (only of waits the autojump clock fakes, as for
admission); each script is short so every test stays well under a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import trine
from trine import Command, CommandResult, CommandStatus, LoadSample, SystemLoad
from trine._process import _descendants, _run
from trine._process._descendants import SUBREAPER, TAG_VARIABLE
from trine._process._output import Tail as _Tail
from trine._process._output import log_name

PY = sys.executable
LINUX = sys.platform == "linux"
linux_only = pytest.mark.skipif(not LINUX, reason="the subreaper and /proc are Linux's")


@pytest.fixture(params=["epoll", "tasks"])
def watch_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with each way of watching a command: one epoll (Linux), or a task per pipe."""
    if request.param == "tasks":
        monkeypatch.setattr(_run, "EPOLL", False)
    elif not _run.EPOLL:
        pytest.skip("no epoll and pidfd here")
    return str(request.param)


@pytest.fixture
def strays() -> Iterator[list[int]]:
    """Pids a test saw; whichever still exists at the end is killed (and reaped, if ours)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def py(code: str) -> list[str]:
    return [PY, "-c", code]


def _is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def gone(pid: int) -> bool:
    """Whether *pid* stops running within a second.

    A process killed by a signal may still be tearing down for a moment after
    its pipes closed; and a grandchild reparented to an init that does not
    reap (as in some containers) stays a zombie, which counts as gone.
    """
    with trio.move_on_after(1):
        while not _is_gone(pid):  # noqa: ASYNC110  # another process: nothing to wait on
            await trio.sleep(0.01)
    return _is_gone(pid)


async def test_exit_codes_and_output_tails_in_input_order(watch_kind: str) -> None:
    """Each command gets a result, in input order, with its exit status and output."""
    results = await trine.run_commands(
        [
            py("print('one')"),
            py("import sys; sys.stderr.write('bad'); sys.exit(3)"),
            py("print('three')"),
        ],
        limit=2,
    )
    assert [r.id for r in results] == ["0", "1", "2"]
    assert [r.status for r in results] == [
        CommandStatus.SUCCEEDED,
        CommandStatus.FAILED,
        CommandStatus.SUCCEEDED,
    ]
    assert [r.returncode for r in results] == [0, 3, 0]
    assert results[0].stdout_tail == "one\n"
    assert results[1].stderr_tail == "bad"
    assert results[1].error == "exited with status 3"
    assert results[0].succeeded
    assert not results[1].succeeded
    assert all(r.attempts == 1 and r.duration > 0 for r in results)


async def test_missing_executable_is_an_error_result() -> None:
    """A command that cannot start is a result with status error, not an exception."""
    [result] = await trine.run_commands([["trine-no-such-program-xyz", "-v"]], limit=1, retries=2)
    assert result.status is CommandStatus.ERROR
    assert result.returncode is None
    assert result.attempts == 1  # never retried: it would not start next time either
    assert result.error is not None
    assert result.error.startswith("cannot start: [Errno 2] No such file or directory")


async def test_bad_cwd_is_an_error_result(tmp_path: Path) -> None:
    """A working directory that does not exist makes an error result."""
    [result] = await trine.run_commands([py("pass")], limit=1, cwd=tmp_path / "missing")
    assert result.status is CommandStatus.ERROR


async def test_output_tail_keeps_the_last_bytes_of_a_big_output(watch_kind: str) -> None:
    """Only the last output_tail bytes are kept, of outputs far larger than that."""
    code = "import sys; sys.stdout.write('x' * 5_000_000 + 'END'); sys.stderr.write('e' * 100)"
    [result] = await trine.run_commands([py(code)], limit=1, output_tail=10)
    assert result.stdout_tail == "xxxxxxxEND"
    assert result.stderr_tail == "e" * 10


async def test_output_tail_zero_keeps_nothing() -> None:
    """output_tail=0 keeps no output at all."""
    [result] = await trine.run_commands([py("print('hi')")], limit=1, output_tail=0)
    assert result.stdout_tail == ""
    assert result.succeeded


async def test_undecodable_output_is_replaced() -> None:
    """Bytes that are not UTF-8 become replacement characters."""
    code = "import sys; sys.stdout.buffer.write(b'ok\\xff')"
    [result] = await trine.run_commands([py(code)], limit=1)
    assert result.stdout_tail == "ok\ufffd"


async def test_command_env_cwd_and_shell(tmp_path: Path) -> None:
    """env adds to the inherited environment; Command overrides env, cwd and runs shell lines."""
    results = await trine.run_commands(
        [
            Command("echo $A-$B; pwd", shell=True, env={"B": "own"}, cwd=tmp_path, id="sh"),
            {"argv": py("import os; print(os.environ['A'], 'PATH' in os.environ)"), "id": "map"},
        ],
        limit=2,
        env={"A": "run", "B": "run"},
    )
    assert [r.id for r in results] == ["sh", "map"]
    assert results[0].stdout_tail == f"run-own\n{tmp_path}\n"
    assert results[0].argv == "echo $A-$B; pwd"
    assert results[1].stdout_tail == "run True\n"


async def test_timeout_terminates_the_command(watch_kind: str) -> None:
    """A command over its timeout gets SIGTERM and a timed_out result."""
    code = "import time, os; print(os.getpid(), flush=True); time.sleep(30)"
    [result] = await trine.run_commands([py(code)], limit=1, timeout=0.3)
    assert result.status is CommandStatus.TIMED_OUT
    assert result.returncode == -signal.SIGTERM
    assert result.error == "timed out after 0.3 s"
    assert await gone(int(result.stdout_tail))


async def test_sigterm_ignoring_command_is_killed_after_the_grace(watch_kind: str) -> None:
    """A command that ignores SIGTERM is killed with SIGKILL after kill_grace."""
    code = (
        "import signal, time, os; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print(os.getpid(), flush=True); time.sleep(30)"
    )
    [result] = await trine.run_commands([py(code)], limit=1, timeout=0.3, kill_grace=0.2)
    assert result.status is CommandStatus.TIMED_OUT
    assert result.returncode == -signal.SIGKILL
    assert await gone(int(result.stdout_tail))


@pytest.mark.skipif(not hasattr(signal, "SIGRTMIN"), reason="no real-time signals here")
async def test_a_command_killed_by_a_real_time_signal_is_a_failed_result(watch_kind: str) -> None:
    """Regression: a real-time signal (no Signals member) is a failed result, not a crash."""
    code = "import os, signal; os.kill(os.getpid(), signal.SIGRTMIN + 6)"
    results = await trine.run_commands([py(code), py("print('other')")], limit=2)
    assert [r.status for r in results] == [CommandStatus.FAILED, CommandStatus.SUCCEEDED]
    assert results[0].returncode == -(signal.SIGRTMIN + 6)
    assert results[0].error == "killed by SIGRTMIN+6"
    assert results[1].stdout_tail == "other\n"


# The command starts a grandchild that ignores SIGTERM and shares its stdout,
# waits until the grandchild has installed its handler, prints its pid, then
# sleeps {sleep} seconds.
GRANDCHILD = (
    "import os, subprocess, sys, time; r, w = os.pipe();"
    "child = subprocess.Popen([sys.executable, '-c', "
    "'import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " os.write(int(sys.argv[1]), b\\'x\\'); time.sleep(30)', str(w)], pass_fds=(w,));"
    "os.read(r, 1); print(child.pid, flush=True); time.sleep({sleep})"
)


async def test_timeout_stops_the_grandchildren_too(watch_kind: str) -> None:
    """On timeout the whole process group goes, including a SIGTERM-ignoring grandchild."""
    [result] = await trine.run_commands(
        [py(GRANDCHILD.format(sleep=30))], limit=1, timeout=0.5, kill_grace=0.2
    )
    assert result.status is CommandStatus.TIMED_OUT
    assert await gone(int(result.stdout_tail))


async def test_background_process_left_by_a_finished_command_is_stopped(watch_kind: str) -> None:
    """A command that exits leaving a child running succeeds, and the child is stopped."""
    [result] = await trine.run_commands(
        [py(GRANDCHILD.format(sleep=0))], limit=1, timeout=5, kill_grace=0.2
    )
    assert result.status is CommandStatus.SUCCEEDED
    assert await gone(int(result.stdout_tail))


# The command starts a grandchild in a session of its own (so outside the
# command's process group) that shares its stdout and stderr, prints its pid,
# tells the command it is ready, and sleeps a minute; SIGTERM does {handler}
# to it. The command then writes the grandchild's pid to the file argv[1], if
# given, and sleeps {sleep} seconds.
ESCAPEE = (
    "import os, subprocess, sys, time; r, w = os.pipe();"
    "child = subprocess.Popen([sys.executable, '-c', "
    "'import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.{handler});"
    " print(os.getpid(), flush=True); os.write(int(sys.argv[1]), b\\'x\\'); time.sleep(60)',"
    " str(w)], pass_fds=(w,), start_new_session=True);"
    "os.read(r, 1); sys.argv[1:] and open(sys.argv[1], 'w').write(str(child.pid));"
    "time.sleep({sleep})"
)
# Far below the escapee's minute, far above what the machine needs.
SLACK = 5.0


def escapee(handler: str = "SIG_IGN", sleep: float = 60, pid_file: Path | None = None) -> list[str]:
    return [
        *py(ESCAPEE.format(handler=handler, sleep=sleep)),
        *([str(pid_file)] if pid_file else []),
    ]


def reaped(pid: int) -> bool:
    """Whether *pid* is gone entirely: not running, and no zombie left either."""
    return not psutil.pid_exists(pid)


async def test_timeout_is_kept_when_a_descendant_leaves_the_group_and_holds_the_output(
    watch_kind: str, strays: list[int]
) -> None:
    """Regression (issue 11): a setsid'd descendant holding the pipes cannot stretch a timeout.

    It used to keep run_commands reading its output for as long as it lived.
    """
    start = trio.current_time()
    [result] = await trine.run_commands([escapee()], limit=1, timeout=2, kill_grace=0.5)
    elapsed = trio.current_time() - start
    strays.append(int(result.stdout_tail))
    assert result.status is CommandStatus.TIMED_OUT
    assert result.returncode == -signal.SIGTERM
    assert elapsed < 2 + 0.5 + SLACK
    if LINUX:
        # Adopted by the subreaper, found by its tag, killed and reaped.
        assert reaped(int(result.stdout_tail))


async def test_command_leaving_a_setsid_descendant_on_its_pipes_returns_after_the_grace(
    watch_kind: str, strays: list[int]
) -> None:
    """A command that exits leaving an escapee on its pipes is reported kill_grace later."""
    start = trio.current_time()
    [result] = await trine.run_commands([escapee(sleep=0)], limit=1, kill_grace=0.5)
    elapsed = trio.current_time() - start
    strays.append(int(result.stdout_tail))
    assert result.status is CommandStatus.SUCCEEDED
    assert elapsed < 0.5 + SLACK
    if LINUX:
        assert reaped(int(result.stdout_tail))


@linux_only
async def test_escapee_that_obeys_sigterm_is_stopped_without_waiting_the_grace(
    strays: list[int],
) -> None:
    """An escapee gets SIGTERM like the group: one that obeys it ends the wait at once."""
    start = trio.current_time()
    [result] = await trine.run_commands(
        [escapee(handler="SIG_DFL", sleep=0)], limit=1, kill_grace=30
    )
    strays.append(int(result.stdout_tail))
    assert result.status is CommandStatus.SUCCEEDED
    assert trio.current_time() - start < SLACK  # not the 30 s grace
    assert reaped(int(result.stdout_tail))


# A daemon the textbook way: fork, setsid, fork again, output to /dev/null,
# pid written to the file argv[1], then sleep argv[2] seconds; the command
# exits once the pid is written.
DAEMON = (
    "import os, sys, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        null = os.open(os.devnull, os.O_RDWR)\n"
    "        for fd in (0, 1, 2): os.dup2(null, fd)\n"
    "        open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()))\n"
    "        os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "        time.sleep(float(sys.argv[2]))\n"
    "    os._exit(0)\n"
    "while not os.path.exists(sys.argv[1]): time.sleep(0.01)\n"
)


@linux_only
async def test_detached_daemon_is_stopped_before_run_commands_returns(
    tmp_path: Path, strays: list[int]
) -> None:
    """A daemon that left the group and closed its output is found by its tag and reaped."""
    pid_file = tmp_path / "daemon.pid"
    results = await trine.run_commands(
        [[PY, "-c", DAEMON, str(pid_file), "60"]], limit=1, kill_grace=1
    )
    pid = int(pid_file.read_text())
    strays.append(pid)
    assert [r.status for r in results] == [CommandStatus.SUCCEEDED]
    assert reaped(pid)


@linux_only
async def test_daemon_that_exits_during_the_batch_leaves_no_zombie(
    tmp_path: Path, strays: list[int]
) -> None:
    """An escapee seen alive is known as the batch's, so its zombie is reaped when it exits."""
    pid_file = tmp_path / "daemon.pid"
    results = await trine.run_commands(
        [[PY, "-c", DAEMON, str(pid_file), "0.2"], py("import time; time.sleep(1.5)")],
        limit=2,
    )
    pid = int(pid_file.read_text())
    strays.append(pid)
    assert all(r.succeeded for r in results)
    assert reaped(pid)


@linux_only
async def test_cancellation_stops_an_escapee_too(tmp_path: Path, strays: list[int]) -> None:
    """Cancelling run_commands stops a descendant outside the group too, within the grace."""
    pid_file = tmp_path / "escapee.pid"

    async def cancel_once_started(scope: trio.CancelScope) -> None:
        while not pid_file.exists() or not pid_file.read_text():  # noqa: ASYNC110  # a file
            await trio.sleep(0.01)
        scope.cancel()

    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as scope:
            nursery.start_soon(cancel_once_started, scope)
            await trine.run_commands([escapee(pid_file=pid_file)], limit=1, kill_grace=0.5)
    assert scope.cancelled_caught
    pid = int(pid_file.read_text())
    strays.append(pid)
    assert reaped(pid)


@linux_only
def test_subreaper_is_on_only_while_commands_run() -> None:
    """The process is a child subreaper while a batch runs, and not before or after."""
    if SUBREAPER.is_on():
        pytest.skip("this process was a subreaper already")
    seen: list[bool] = []

    def probe() -> LoadSample:
        seen.append(SUBREAPER.is_on())
        return LoadSample(0.0, 1)

    async def main() -> None:
        await trine.run_commands([["true"]], limit=1, admission=SystemLoad(probe=probe))

    trio.run(main)
    assert seen == [True]
    assert not SUBREAPER.is_on()


@linux_only
def test_subreaper_set_by_the_program_is_left_on() -> None:
    """A program that made itself a subreaper stays one after run_commands."""
    if SUBREAPER.is_on():
        pytest.skip("this process was a subreaper already")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_descendants._PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        trio.run(functools.partial(trine.run_commands, [["true"]], limit=1))
        assert SUBREAPER.is_on()
    finally:
        libc.prctl(_descendants._PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@linux_only
async def test_orphans_that_are_not_trines_are_left_alone() -> None:
    """An orphan of the program's own, adopted during a batch, is neither signalled nor reaped."""
    orphans: list[int] = []

    def probe() -> LoadSample:
        # While the subreaper is on, orphan a `sleep` of our own (no trine tag).
        shell = subprocess.run(
            ["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"],
            capture_output=True,
            text=True,
            check=True,
        )
        orphans.append(int(shell.stdout))
        return LoadSample(0.0, 1)

    await trine.run_commands([["true"]], limit=1, admission=SystemLoad(probe=probe))
    [orphan] = orphans
    try:
        assert psutil.Process(orphan).status() != psutil.STATUS_ZOMBIE
        assert psutil.Process(orphan).ppid() == os.getpid()  # adopted, and left as it was
    finally:
        os.kill(orphan, signal.SIGKILL)
        os.waitpid(orphan, 0)  # noqa: ASYNC222  # SIGKILLed: returns at once


@linux_only
async def test_commands_carry_their_tag_after_the_tags_above_them() -> None:
    """Each command's environment has its own tag, after any inherited from a trine run above."""
    code = f"import os; print(os.environ[{TAG_VARIABLE!r}])"
    results = await trine.run_commands(
        [py(code), py(code)], limit=2, env={TAG_VARIABLE: "outer.1.0"}
    )
    tags = [r.stdout_tail.split() for r in results]
    assert [t[0] for t in tags] == ["outer.1.0", "outer.1.0"]
    assert len({t[1] for t in tags}) == 2
    assert all(t[1].startswith(f"{os.getpid()}.") for t in tags)


async def test_timeout_is_kept_without_a_subreaper(
    monkeypatch: pytest.MonkeyPatch, strays: list[int]
) -> None:
    """Where escapees cannot be found, the promise holds: the pipes are no longer read."""
    monkeypatch.setattr(_descendants.SUBREAPER, "_prctl", None)
    start = trio.current_time()
    [result] = await trine.run_commands([escapee()], limit=1, timeout=2, kill_grace=0.5)
    strays.append(int(result.stdout_tail))
    assert result.status is CommandStatus.TIMED_OUT
    assert trio.current_time() - start < 2 + 0.5 + SLACK
    assert psutil.pid_exists(int(result.stdout_tail))  # left running: nothing could find it


class StepCounter(trio.abc.Instrument):
    """Counts the scheduler's task steps."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1


async def test_what_a_command_leaves_in_its_group_is_polled_not_spun_on() -> None:
    """Waiting out the grace for a SIGTERM-ignoring leftover takes a few polls, not a busy loop.

    Pinned because a watch with nothing left to report must block, not return at once.
    """
    counter = StepCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        [result] = await trine.run_commands(
            [py(GRANDCHILD.format(sleep=0))], limit=1, kill_grace=0.5, output_tail=0
        )
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert result.succeeded
    assert counter.steps < 100


async def test_cancellation_stops_and_reaps_running_commands(
    tmp_path: Path, watch_kind: str
) -> None:
    """Cancelling run_commands terminates every running command before it returns."""
    pid_files = [tmp_path / f"{i}.pid" for i in range(3)]
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid()));time.sleep(30)"
    with trio.move_on_after(0.5) as scope:
        await trine.run_commands(
            [[PY, "-c", code, str(path)] for path in pid_files], limit=3, kill_grace=0.2
        )
    assert scope.cancelled_caught
    pids = [int(path.read_text()) for path in pid_files]
    assert all([await gone(pid) for pid in pids])


async def test_retries_rerun_failed_commands_until_success(tmp_path: Path) -> None:
    """A failing command is re-run up to `retries` times; attempts are counted."""
    marker = tmp_path / "count"
    code = (
        "import sys, pathlib; p = pathlib.Path(sys.argv[1]);"
        "n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n));"
        "print(n); sys.exit(0 if n >= 3 else 1)"
    )
    [flaky, always] = await trine.run_commands(
        [[PY, "-c", code, str(marker)], py("import sys; sys.exit(2)")], limit=2, retries=2
    )
    assert flaky.status is CommandStatus.SUCCEEDED
    assert flaky.attempts == 3
    assert flaky.stdout_tail == "3\n"
    assert always.status is CommandStatus.FAILED
    assert always.attempts == 3


async def test_retries_rerun_timed_out_commands() -> None:
    """A timed-out command is retried too, and keeps its timed_out status if it never finishes."""
    [result] = await trine.run_commands(
        [py("import time; time.sleep(30)")], limit=1, timeout=0.1, retries=1, kill_grace=0.1
    )
    assert result.status is CommandStatus.TIMED_OUT
    assert result.attempts == 2


async def test_backoff_waits_between_attempts() -> None:
    """backoff= puts a trine.Backoff delay between a command's attempts."""
    [result] = await trine.run_commands(
        [py("import sys; sys.exit(1)")],
        limit=1,
        retries=2,
        backoff=trine.Backoff.constant(0.1),
    )
    assert result.status is CommandStatus.FAILED
    assert result.attempts == 3
    # Two sleeps of 0.1 s happened in between (a sleep never ends early).
    assert result.duration >= 0.2


async def test_limit_bounds_the_commands_running_at_once(tmp_path: Path) -> None:
    """No more than `limit` commands run at the same time."""
    # Each command holds a lock file while it runs; a command that finds more
    # than `limit` files present records the overlap.
    code = (
        "import os, sys, time, pathlib; d = pathlib.Path(sys.argv[1]);"
        "me = d / str(os.getpid()); me.touch(); n = len(list(d.glob('*')));"
        "time.sleep(0.05); me.unlink(); print(n)"
    )
    results = await trine.run_commands([[PY, "-c", code, str(tmp_path)] for _ in range(6)], limit=2)
    assert all(r.succeeded for r in results)
    assert max(int(r.stdout_tail) for r in results) <= 2


async def test_logs_keep_the_full_output(tmp_path: Path) -> None:
    """logs= writes each command's whole stdout and stderr to <id>.stdout / <id>.stderr.

    A character of the id that is not a letter, digit, '-', '_' or '.' is written %XX.
    """
    code = "import sys; print('a' * 10000); sys.stderr.write('warn')"
    [result] = await trine.run_commands(
        [Command(py(code), id="job/1")], limit=1, output_tail=5, logs=tmp_path
    )
    assert result.stdout_tail == "aaaa\n"
    assert (tmp_path / "job%2F1.stdout").read_text() == "a" * 10000 + "\n"
    assert (tmp_path / "job%2F1.stderr").read_text() == "warn"


async def test_unusable_logs_directory_is_each_commands_error_result(tmp_path: Path) -> None:
    """Regression (issue 11): logs= that cannot be written costs no command its result."""
    a_file = tmp_path / "file"
    a_file.write_text("")
    for logs, why in [
        (tmp_path / "missing", "[Errno 2] No such file or directory"),
        (a_file, "[Errno 20] Not a directory"),
    ]:
        results = await trine.run_commands([py("print(1)"), py("print(2)")], limit=2, logs=logs)
        assert [(r.status, r.error) for r in results] == [
            (CommandStatus.ERROR, f"cannot write logs: {why}: '{logs / f'{i}.stdout'}'")
            for i in range(2)
        ]
        assert all(r.attempts == 1 and r.returncode is None for r in results)


async def test_log_file_that_cannot_be_created_is_that_commands_error(tmp_path: Path) -> None:
    """Regression (issue 11): one command's unwritable log is its own error; the others run."""
    (tmp_path / "b.stdout").mkdir()
    results = await trine.run_commands(
        [
            Command(py("print('a')"), id="a"),
            Command(py("print('b')"), id="b"),
            Command(py("print('c')"), id="c"),
        ],
        limit=3,
        logs=tmp_path,
    )
    assert [r.status for r in results] == [
        CommandStatus.SUCCEEDED,
        CommandStatus.ERROR,
        CommandStatus.SUCCEEDED,
    ]
    assert (
        results[1].error
        == f"cannot write logs: [Errno 21] Is a directory: '{tmp_path / 'b.stdout'}'"
    )
    assert (tmp_path / "a.stdout").read_text() == "a\n"
    assert (tmp_path / "c.stdout").read_text() == "c\n"
    assert not (tmp_path / "b.stderr").exists()  # nothing half-opened is left


async def test_log_files_never_collide(tmp_path: Path) -> None:
    """Regression (issue 11): ids a/b and a_b write different files."""
    results = await trine.run_commands(
        [Command(py("print('slash')"), id="a/b"), Command(py("print('underscore')"), id="a_b")],
        limit=2,
        logs=tmp_path,
    )
    assert all(r.succeeded for r in results)
    assert (tmp_path / "a%2Fb.stdout").read_text() == "slash\n"
    assert (tmp_path / "a_b.stdout").read_text() == "underscore\n"


async def test_a_log_file_that_is_another_commands_is_refused(tmp_path: Path) -> None:
    """Two names for one file (a link, a case-insensitive file system) do not mix two logs."""
    (tmp_path / "y.stdout").symlink_to(tmp_path / "x.stdout")
    results = await trine.run_commands(
        [Command(py("print('x')"), id="x"), Command(py("print('y')"), id="y")],
        limit=1,
        logs=tmp_path,
    )
    assert [r.status for r in results] == [CommandStatus.SUCCEEDED, CommandStatus.ERROR]
    assert results[1].error == (
        f"cannot write logs: {tmp_path / 'y.stdout'} is also the log of command 'x'"
    )
    assert (tmp_path / "x.stdout").read_text() == "x\n"


@linux_only
async def test_a_log_that_fills_up_is_that_commands_error(tmp_path: Path) -> None:
    """A log write that fails (a full disk) makes the command's result an error that says so."""
    (tmp_path / "0.stdout").symlink_to("/dev/full")
    [result] = await trine.run_commands([py("print('x' * 100000)")], limit=1, logs=tmp_path)
    assert result.status is CommandStatus.ERROR
    assert result.returncode == 0
    assert result.error == "cannot write logs: [Errno 28] No space left on device"
    assert result.stdout_tail.endswith("x\n")


async def test_logs_may_go_to_dev_null(tmp_path: Path) -> None:
    """A log linked to /dev/null is not anyone's file: commands may share it."""
    for i in range(2):
        (tmp_path / f"{i}.stdout").symlink_to(os.devnull)
    results = await trine.run_commands([py("print(1)"), py("print(2)")], limit=1, logs=tmp_path)
    assert all(r.succeeded for r in results)


async def test_a_command_the_os_refuses_is_its_own_error_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever the OS refuses at the start is that command's error; the batch goes on."""
    open_process = trio.lowlevel.open_process

    async def refuse_bad(argv: object, **kwargs: object) -> trio.Process:
        if argv == ("bad",):
            raise ValueError("embedded null byte")
        return await open_process(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(trio.lowlevel, "open_process", refuse_bad)
    results = await trine.run_commands([py("print(1)"), ["bad"], py("print(3)")], limit=1)
    assert [r.status for r in results] == [
        CommandStatus.SUCCEEDED,
        CommandStatus.ERROR,
        CommandStatus.SUCCEEDED,
    ]
    assert results[1].error == "cannot start: embedded null byte"
    assert [r.stdout_tail for r in results] == ["1\n", "", "3\n"]


@linux_only
async def test_output_goes_to_dev_null_when_nothing_keeps_it(tmp_path: Path) -> None:
    """With output_tail=0 and no logs the output is not piped (nor read) at all."""
    code = "import os, sys; open(sys.argv[1], 'w').write(os.readlink('/proc/self/fd/1'))"
    out = tmp_path / "stdout"
    [result] = await trine.run_commands([[PY, "-c", code, str(out)]], limit=1, output_tail=0)
    assert result.succeeded
    assert out.read_text() == os.devnull


@linux_only
@settings(max_examples=8, deadline=None)
@given(
    delay=st.floats(min_value=0.0, max_value=0.6),
    kinds=st.lists(st.sampled_from(["sleeper", "escapee", "quick"]), min_size=1, max_size=4),
)
def test_property_cancelled_at_any_moment_nothing_is_left(
    tmp_path_factory: pytest.TempPathFactory, delay: float, kinds: list[str]
) -> None:
    """Cancelled at any moment, run_commands leaves no command and no escapee running."""
    directory = tmp_path_factory.mktemp("pids")
    sleeper = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(30)"
    commands = []
    for i, kind in enumerate(kinds):
        pid_file = directory / f"{i}.pid"
        if kind == "sleeper":
            commands.append([PY, "-c", sleeper, str(pid_file)])
        elif kind == "escapee":
            commands.append(escapee(pid_file=pid_file))
        else:
            commands.append(py("pass"))

    async def main() -> None:
        with trio.move_on_after(delay):
            await trine.run_commands(commands, limit=len(commands), kill_grace=0.2)

    trio.run(main)
    pids = [int(text) for path in directory.iterdir() if (text := path.read_text())]
    left = [pid for pid in pids if not reaped(pid)]
    for pid in left:  # clean up before asserting, so a failure leaks nothing
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert left == []


@given(ids=st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=6, unique=True))
def test_log_names_are_distinct_and_plain(ids: list[str]) -> None:
    """Distinct ids never share a log name, and a name holds no separator or NUL."""
    names = [log_name(i) for i in ids]
    assert len(set(names)) == len(names)
    assert all("/" not in n and "\0" not in n and "\\" not in n for n in names)


async def test_no_commands_returns_an_empty_list() -> None:
    """An empty input returns an empty list."""
    assert await trine.run_commands([], limit=4) == []


def test_command_result_is_frozen() -> None:
    """CommandResult is an immutable value."""
    result = CommandResult(
        id="a",
        argv=("true",),
        status=CommandStatus.SUCCEEDED,
        returncode=0,
        stdout_tail="",
        stderr_tail="",
        duration=0.0,
        attempts=1,
        error=None,
    )
    with pytest.raises(AttributeError):
        result.id = "b"  # type: ignore[misc]
    assert CommandStatus.TIMED_OUT == "timed_out"


@pytest.mark.parametrize(
    ("commands", "error", "message"),
    [
        (
            ["ls -l"],
            TypeError,
            r"^commands\[0\]: must be an argv sequence, a mapping or a "
            r"Command, got the str 'ls -l': pass a list, or Command\(line, shell=True\) "
            r"for a shell line$",
        ),
        ([[]], ValueError, r"^commands\[0\]: argv must not be empty$"),
        (
            [["ok"], 5],
            TypeError,
            r"^commands\[1\]: must be an argv sequence, a mapping or a "
            r"Command, got 5$",
        ),
        ([{"cmd": ["x"]}], TypeError, r"^commands\[0\]: unknown key 'cmd'$"),
        ([{"id": "x"}], TypeError, r"^commands\[0\]: missing key 'argv'$"),
        ([["echo", 1]], TypeError, r"^commands\[0\]: argv items must be str, got 1$"),
        (
            [{"argv": ["x"], "timeout": 0}],
            ValueError,
            r"^commands\[0\]: timeout must be > 0, got 0$",
        ),
        (
            [{"argv": ["x"], "env": {"A": 1}}],
            TypeError,
            r"^commands\[0\]: env must map str to str, got 'A': 1$",
        ),
        (
            [["true"], ["echo", "a\0b"]],
            ValueError,
            r"^commands\[1\]: argv must not contain NUL bytes, got 'a\\x00b'$",
        ),
        (
            [{"argv": ["x"], "env": {"A=B": "1"}}],
            ValueError,
            r"^commands\[0\]: env names must be non-empty and without '=', got 'A=B'$",
        ),
        (
            [Command(["a"], id="x"), {"argv": ["b"], "id": "x"}],
            ValueError,
            r"^commands\[1\]: id 'x' is already used by commands\[0\]; ids must be unique$",
        ),
        (
            [Command(["a"], id="1"), ["b"]],
            ValueError,
            r"^commands\[1\]: id '1' \(its index, the default id\) is already used by "
            r"commands\[0\]; ids must be unique$",
        ),
        ([{"argv": ["x"], "id": ""}], ValueError, r"^commands\[0\]: id must not be empty$"),
    ],
)
async def test_malformed_commands_are_refused_before_anything_runs(
    commands: list[object], error: type[Exception], message: str
) -> None:
    """A malformed command is refused with its index, before any command starts."""
    with pytest.raises(error, match=message):
        await trine.run_commands(commands, limit=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"limit": 0}, ValueError, r"^limit must be >= 1, got 0$"),
        ({"limit": 1, "timeout": -1}, ValueError, r"^timeout must be > 0, got -1$"),
        ({"limit": 1, "retries": -1}, ValueError, r"^retries must be >= 0, got -1$"),
        (
            {"limit": 1, "retries": sys.maxsize},
            ValueError,
            rf"^retries must be <= {sys.maxsize - 1}, got {sys.maxsize}$",
        ),
        ({"limit": 1, "output_tail": -1}, ValueError, r"^output_tail must be >= 0, got -1$"),
        ({"limit": 1, "kill_grace": -1}, ValueError, r"^kill_grace must be >= 0, got -1$"),
        ({"limit": 1, "admission": 5}, TypeError, r"^admission must be a SystemLoad, got 5$"),
        ({"limit": 1, "backoff": 0.5}, TypeError, r"^backoff must be a trine.Backoff, got 0.5$"),
        ({"limit": 1, "rng": 3}, TypeError, r"^rng must be a random.Random, got 3$"),
        ({"limit": 1, "logs": 1}, TypeError, r"^logs must be a path, got 1$"),
        ({"limit": 1, "cwd": "a\0"}, ValueError, r"^cwd must not contain NUL bytes, got 'a\\x00'$"),
        (
            {"limit": 1, "env": {"A": "\0"}},
            ValueError,
            r"^env must not contain NUL bytes, got 'A': '\\x00'$",
        ),
        (
            {"limit": 1, "commands": None},
            TypeError,
            r"^commands must be an iterable of argv sequences, mappings or Commands, got None$",
        ),
    ],
)
async def test_arguments_are_validated(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    """Every argument is checked at the call, with the house message style."""
    arguments = {"commands": [["true"]], **kwargs}
    with pytest.raises(error, match=message):
        await trine.run_commands(**arguments)  # type: ignore[arg-type]


async def test_a_coroutine_object_as_commands_is_refused_and_closed() -> None:
    """commands=coro() is a TypeError, and the coroutine is closed (no 'never awaited')."""

    async def make() -> list[list[str]]:
        return [["true"]]

    coro = make()
    with pytest.raises(TypeError, match=r"^commands must be an iterable .*, got the coroutine"):
        await trine.run_commands(coro, limit=1)  # type: ignore[arg-type]
    assert coro.cr_frame is None  # closed


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"id": ""}, ValueError, r"^id must not be empty$"),
        ({"id": 3}, TypeError, r"^id must be a str, got 3$"),
        ({"argv": ("a\0",)}, ValueError, r"^argv must not contain NUL bytes, got 'a\\x00'$"),
        (
            {"argv": "echo \0", "shell": True},
            ValueError,
            r"^argv must not contain NUL bytes, got 'echo \\x00'$",
        ),
        (
            {"env": {"A": "a\0b"}},
            ValueError,
            r"^env must not contain NUL bytes, got 'A': 'a\\x00b'$",
        ),
        ({"env": {"": "1"}}, ValueError, r"^env names must be non-empty and without '=', got ''$"),
        ({"cwd": 5}, TypeError, r"^cwd must be a path, got 5$"),
        ({"shell": 1}, TypeError, r"^shell must be True or False, got 1$"),
        (
            {"timeout": 10**400},
            ValueError,
            r"^timeout must be at most 1\.798e\+308, got an int of about 10\*\*400$",
        ),
    ],
)
def test_command_arguments_are_validated(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    """Command refuses what no program could be given, naming the argument."""
    arguments: dict[str, object] = {"argv": ("true",), **kwargs}
    with pytest.raises(error, match=message):
        Command(**arguments)  # type: ignore[arg-type]


def test_command_shape_is_checked() -> None:
    """Command refuses a string without shell=True and a list with it."""
    with pytest.raises(TypeError, match=r"^argv must be a sequence of str, got the str 'ls'"):
        Command("ls")
    with pytest.raises(TypeError, match=r"^with shell=True, argv must be one str, got \('ls',\)$"):
        Command(["ls"], shell=True)
    assert Command(["ls", Path("/tmp")]).argv == ("ls", "/tmp")


class FakeLoad:
    """A load probe that reports busy for the first *busy* readings."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.readings = 0

    def __call__(self) -> LoadSample:
        self.readings += 1
        if self.readings <= self.busy:
            return LoadSample(cpu_percent=99.0, free_memory=10**9)
        return LoadSample(cpu_percent=10.0, free_memory=10**9)


async def test_admission_delays_starts_while_the_machine_is_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """SystemLoad waits `interval` between readings until the load allows a start."""
    load = SystemLoad(max_cpu_percent=80, interval=0.25, probe=FakeLoad(busy=3))
    start = trio.current_time()
    await load.wait_admitted()
    assert trio.current_time() - start == 0.75
    stats = load.statistics()
    assert stats.delays == 1
    assert stats.tasks_waiting == 0
    assert stats.last_sample == LoadSample(cpu_percent=10.0, free_memory=10**9)


async def test_admission_checks_free_memory(autojump_clock: trio.testing.MockClock) -> None:
    """min_free_memory holds a start back while available memory is below it."""
    readings = iter([LoadSample(0.0, 100), LoadSample(0.0, 5000)])
    load = SystemLoad(min_free_memory=1000, interval=1, probe=lambda: next(readings))
    start = trio.current_time()
    await load.wait_admitted()
    assert trio.current_time() - start == 1.0


async def test_admission_reports_waiting_tasks(autojump_clock: trio.testing.MockClock) -> None:
    """statistics().tasks_waiting counts the starts held back."""
    load = SystemLoad(max_cpu_percent=50, interval=1, probe=lambda: LoadSample(90.0, 0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(load.wait_admitted)
        nursery.start_soon(load.wait_admitted)
        await trio.testing.wait_all_tasks_blocked()
        assert load.statistics().tasks_waiting == 2
        nursery.cancel_scope.cancel()
    assert load.statistics().tasks_waiting == 0


async def test_admitted_start_is_a_checkpoint() -> None:
    """wait_admitted is a checkpoint even when the load allows a start at once."""
    load = SystemLoad(max_cpu_percent=50, probe=lambda: LoadSample(1.0, 0))
    with trio.testing.assert_checkpoints():
        await load.wait_admitted()


async def test_run_commands_with_admission_runs_everything_once_admitted() -> None:
    """Commands held back by the load run once it drops, and none fails for it."""
    probe = FakeLoad(busy=2)
    load = SystemLoad(max_cpu_percent=80, interval=0.01, probe=probe)
    results = await trine.run_commands([py("print(1)"), py("print(2)")], limit=1, admission=load)
    assert [r.stdout_tail for r in results] == ["1\n", "2\n"]
    assert probe.readings == 4  # two busy readings, then one per start
    assert load.statistics().delays == 1


async def test_duration_leaves_out_the_wait_for_admission(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Regression: duration runs from the first attempt's start, not from the admission wait."""
    load = SystemLoad(max_cpu_percent=80, interval=0.25, probe=FakeLoad(busy=2))
    start = trio.current_time()
    [result] = await trine.run_commands([py("pass")], limit=1, admission=load)
    [attempt] = result.history
    assert attempt.started_at - start == 0.5  # two busy readings, 0.25 s apart
    assert result.duration == attempt.finished_at - attempt.started_at


async def test_run_commands_admission_probe_failure_is_that_commands_error() -> None:
    """A probe that fails once the batch runs makes the waiting command an error, run by run."""
    calls = 0

    def probe() -> LoadSample:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("cannot read /proc/stat")
        if calls == 3:
            return 0.5  # type: ignore[return-value]  # a probe of the user's, wrong
        return LoadSample(cpu_percent=10.0, free_memory=10**10)

    load = SystemLoad(max_cpu_percent=90, probe=probe)
    results = await trine.run_commands(
        [py("print(1)"), py("print(2)"), py("print(3)"), py("print(4)")],
        limit=1,
        retries=2,
        admission=load,
    )
    assert [r.status for r in results] == [
        CommandStatus.SUCCEEDED,
        CommandStatus.ERROR,
        CommandStatus.ERROR,
        CommandStatus.SUCCEEDED,
    ]
    assert [r.stdout_tail for r in results] == ["1\n", "", "", "4\n"]
    assert results[1].error == "cannot read the load: OSError: cannot read /proc/stat"
    assert results[2].error == (
        "cannot read the load: TypeError: probe must return a LoadSample, got 0.5"
    )
    for result in results[1:3]:
        assert result.returncode is None
        assert result.attempts == 1  # an error is not retried
        [attempt] = result.history
        assert (attempt.status, attempt.returncode, attempt.error) == (
            CommandStatus.ERROR,
            None,
            result.error,
        )
    assert load.statistics().tasks_waiting == 0


def test_system_load_reads_psutil_by_default() -> None:
    """Without a probe, SystemLoad reads the real machine through psutil."""
    load = SystemLoad(max_cpu_percent=100.0)
    sample = load._probe()
    assert 0.0 <= sample.cpu_percent <= 100.0
    assert sample.free_memory > 0


def test_system_load_needs_psutil_or_a_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without psutil and without a probe, SystemLoad says which extra to install."""
    monkeypatch.setitem(sys.modules, "psutil", None)
    with pytest.raises(ModuleNotFoundError, match=r"^SystemLoad needs psutil .*trine\[load\]"):
        SystemLoad(max_cpu_percent=50)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_cpu_percent": 0}, ValueError, r"^max_cpu_percent must be > 0, got 0$"),
        ({"min_free_memory": -1}, ValueError, r"^min_free_memory must be >= 0, got -1$"),
        ({"interval": 0}, ValueError, r"^interval must be > 0, got 0$"),
        ({"probe": 3}, TypeError, r"^probe must be a callable, got 3$"),
        ({"max_cpu_percent": 101}, ValueError, r"^max_cpu_percent must be <= 100, got 101$"),
    ],
)
def test_system_load_arguments_are_validated(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    """SystemLoad validates its arguments."""
    with pytest.raises(error, match=message):
        SystemLoad(**kwargs)  # type: ignore[arg-type]


def test_system_load_refuses_an_async_probe() -> None:
    """Regression (issue 11): an async probe would never run; it is refused at the door."""

    async def probe() -> LoadSample:
        return LoadSample(0.0, 1)

    with pytest.raises(TypeError, match=r"^probe must be a plain function, got the async function"):
        SystemLoad(probe=probe)


async def test_a_probe_returning_no_load_sample_is_a_type_error() -> None:
    """What the probe returns is checked, so a wrong probe fails where it is called."""
    load = SystemLoad(max_cpu_percent=50, probe=lambda: 0.5)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"^probe must return a LoadSample, got 0.5$"):
        await load.wait_admitted()
    assert load.statistics().tasks_waiting == 0


def test_admits_wants_a_load_sample() -> None:
    """SystemLoad.admits refuses what is not a LoadSample, naming the argument."""
    load = SystemLoad(max_cpu_percent=50, probe=lambda: LoadSample(0.0, 0))
    with pytest.raises(TypeError, match=r"^sample must be a LoadSample, got 1$"):
        load.admits(1)  # type: ignore[arg-type]
    assert load.admits(LoadSample(50, 0))
    assert not load.admits(LoadSample(50.5, 0))


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((101.0, 1), ValueError, r"^cpu_percent must be <= 100, got 101.0$"),
        ((-1, 1), ValueError, r"^cpu_percent must be >= 0, got -1$"),
        ((math.nan, 1), ValueError, r"^cpu_percent must not be NaN, got nan$"),
        (("5", 1), TypeError, r"^cpu_percent must be a number, got '5'$"),
        ((True, 1), TypeError, r"^cpu_percent must be a number, got True$"),
        ((5.0, -1), ValueError, r"^free_memory must be >= 0, got -1$"),
        ((5.0, 1.5), TypeError, r"^free_memory must be an int, got 1.5$"),
        ((5.0, None), TypeError, r"^free_memory must be an int, got None$"),
    ],
)
def test_load_sample_values_are_validated(
    args: tuple[object, object], error: type[Exception], message: str
) -> None:
    """LoadSample holds a real percentage in [0, 100] and a byte count >= 0."""
    with pytest.raises(error, match=message):
        LoadSample(*args)  # type: ignore[arg-type]
    assert LoadSample(100, 0) == LoadSample(100.0, 0)


def square(x: int) -> int:
    return x * x


def crash(message: str) -> None:
    raise ValueError(message)


def spin() -> None:
    while True:
        pass


async def test_to_process_returns_the_result_and_raises_the_error() -> None:
    """to_process runs a sync function in a worker process, result or exception."""
    assert await trine.to_process(square, 12) == 144
    assert await trine.to_process(os.getpid) != os.getpid()
    with pytest.raises(ValueError, match=r"^boom$"):
        await trine.to_process(crash, "boom")


async def test_to_process_is_cancellable() -> None:
    """Cancelling to_process stops a function that would never return."""
    with trio.move_on_after(0.3) as scope:
        await trine.to_process(spin)
    assert scope.cancelled_caught


async def test_to_process_refuses_async_functions() -> None:
    """to_process wants a sync function."""

    async def work() -> None:
        pass

    with pytest.raises(TypeError, match=r"^fn must be a sync function, got the async function"):
        await trine.to_process(work)


def _numbers() -> Iterator[int]:
    yield 1


async def _async_numbers() -> AsyncIterator[int]:
    yield 1


class _GeneratorCall:
    def __call__(self) -> Iterator[int]:
        yield 1


class _AsyncGeneratorCall:
    async def __call__(self) -> AsyncIterator[int]:
        yield 1


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        (_numbers, "generator function"),
        (functools.partial(_numbers), "generator function"),
        (_GeneratorCall(), "generator function"),
        (_async_numbers, "async function"),
        (_AsyncGeneratorCall(), "async function"),
    ],
)
async def test_to_process_refuses_generator_functions(fn: object, kind: str) -> None:
    """Regression: a generator function is refused at the call, not by pickle in the worker."""
    with pytest.raises(TypeError, match=rf"^fn must be a sync function, got the {kind} "):
        await trine.to_process(fn)  # type: ignore[arg-type]


async def test_to_process_refuses_a_coroutine_object() -> None:
    """to_process(f(x)) is a TypeError saying what to pass; the coroutine is closed."""

    async def work() -> int:
        return 1

    coro = work()
    with pytest.raises(
        TypeError, match=r"^fn must be a sync function, got the coroutine object .*\(fn, x\)"
    ):
        await trine.to_process(coro)  # type: ignore[arg-type]
    assert coro.cr_frame is None


async def test_to_process_needs_trio_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without trio-parallel, to_process says which extra to install."""
    monkeypatch.setitem(sys.modules, "trio_parallel", None)
    with pytest.raises(ModuleNotFoundError, match=r"^to_process needs trio-parallel: "):
        await trine.to_process(square, 2)


@given(
    size=st.integers(min_value=0, max_value=64),
    chunks=st.lists(st.binary(max_size=100), max_size=30),
)
def test_output_tail_is_the_last_bytes_written(size: int, chunks: list[bytes]) -> None:
    """However the output is chunked, the tail is the last `size` bytes, in O(size) memory."""
    tail = _Tail(size)
    for chunk in chunks:
        tail.write(chunk)
        assert len(tail._buffer) <= 2 * size + len(chunk)
    everything = b"".join(chunks)
    expected = everything[-size:] if size else b""
    assert tail.text() == expected.decode("utf-8", errors="replace")
