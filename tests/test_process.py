"""run_commands, Command, SystemLoad and to_process, against real subprocesses.

The subprocesses run on the real clock, so these tests assert outcomes
(statuses, exit codes, output, which processes still exist), never exact
durations; each script is short so every test stays well under a second.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import psutil
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine import Command, CommandResult, CommandStatus, LoadSample, SystemLoad
from trine._process import _Tail

PY = sys.executable


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


async def test_exit_codes_and_output_tails_in_input_order() -> None:
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


async def test_output_tail_keeps_the_last_bytes_of_a_big_output() -> None:
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


async def test_timeout_terminates_the_command() -> None:
    """A command over its timeout gets SIGTERM and a timed_out result."""
    code = "import time, os; print(os.getpid(), flush=True); time.sleep(30)"
    [result] = await trine.run_commands([py(code)], limit=1, timeout=0.3)
    assert result.status is CommandStatus.TIMED_OUT
    assert result.returncode == -signal.SIGTERM
    assert result.error == "timed out after 0.3 s"
    assert await gone(int(result.stdout_tail))


async def test_sigterm_ignoring_command_is_killed_after_the_grace() -> None:
    """A command that ignores SIGTERM is killed with SIGKILL after kill_grace."""
    code = (
        "import signal, time, os; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print(os.getpid(), flush=True); time.sleep(30)"
    )
    [result] = await trine.run_commands([py(code)], limit=1, timeout=0.3, kill_grace=0.2)
    assert result.status is CommandStatus.TIMED_OUT
    assert result.returncode == -signal.SIGKILL
    assert await gone(int(result.stdout_tail))


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


async def test_timeout_stops_the_grandchildren_too() -> None:
    """On timeout the whole process group goes, including a SIGTERM-ignoring grandchild."""
    [result] = await trine.run_commands(
        [py(GRANDCHILD.format(sleep=30))], limit=1, timeout=0.5, kill_grace=0.2
    )
    assert result.status is CommandStatus.TIMED_OUT
    assert await gone(int(result.stdout_tail))


async def test_background_process_left_by_a_finished_command_is_stopped() -> None:
    """A command that exits leaving a child running succeeds, and the child is stopped."""
    [result] = await trine.run_commands(
        [py(GRANDCHILD.format(sleep=0))], limit=1, timeout=5, kill_grace=0.2
    )
    assert result.status is CommandStatus.SUCCEEDED
    assert await gone(int(result.stdout_tail))


async def test_cancellation_stops_and_reaps_running_commands(tmp_path: Path) -> None:
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
    """logs= writes each command's whole stdout and stderr to <id>.stdout / <id>.stderr."""
    code = "import sys; print('a' * 10000); sys.stderr.write('warn')"
    [result] = await trine.run_commands(
        [Command(py(code), id="job/1")], limit=1, output_tail=5, logs=tmp_path
    )
    assert result.stdout_tail == "aaaa\n"
    assert (tmp_path / "job_1.stdout").read_text() == "a" * 10000 + "\n"
    assert (tmp_path / "job_1.stderr").read_text() == "warn"


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
        ({"limit": 1, "output_tail": -1}, ValueError, r"^output_tail must be >= 0, got -1$"),
        ({"limit": 1, "kill_grace": -1}, ValueError, r"^kill_grace must be >= 0, got -1$"),
        ({"limit": 1, "admission": 5}, TypeError, r"^admission must be a SystemLoad, got 5$"),
        ({"limit": 1, "backoff": 0.5}, TypeError, r"^backoff must be a trine.Backoff, got 0.5$"),
        ({"limit": 1, "rng": 3}, TypeError, r"^rng must be a random.Random, got 3$"),
    ],
)
async def test_arguments_are_validated(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    """Every argument is checked at the call, with the house message style."""
    with pytest.raises(error, match=message):
        await trine.run_commands([["true"]], **kwargs)  # type: ignore[arg-type]


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
        ({"probe": 3}, TypeError, r"^probe must be callable, got 3$"),
    ],
)
def test_system_load_arguments_are_validated(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    """SystemLoad validates its arguments."""
    with pytest.raises(error, match=message):
        SystemLoad(**kwargs)  # type: ignore[arg-type]


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
