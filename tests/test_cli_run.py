"""``trine run`` on par with GNU parallel and ninja: job log and resume, halt policies,
retry delays, skip when up to date, matrices, selections, live output, Ctrl-C twice.

Every test drives a real jobs file through ``python -m trine`` in a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import trine as trine_lib
from test_cli import PY, cli_env, trine, write
from trine._cli import main
from trine._cli._joblog import JobLog, JobLogError, read_joblog
from trine._cli._progress import estimate_remaining, make_display
from trine._cli._runner import Runner, RunOptions, _backoff
from trine._jobs_file import parse_jobs

# A job that appends its name to a file, so a test can count how often each ran.
_APPEND = "import sys; print(sys.argv[2], file=open(sys.argv[1], 'a'))"


def _runs(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _append_job(name: str, runs: Path, **keys: str) -> str:
    extra = "".join(f"{key} = {value}\n" for key, value in keys.items())
    return f'[jobs.{name}]\ncmd = ["{PY}", "-c", "{_APPEND}", "{runs}", "{name}"]\n{extra}'


def _report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _output_file(tmp_path: Path) -> Path:
    return tmp_path / f"out-{len(list(tmp_path.glob('out-*')))}.txt"


async def _interrupt(
    tmp_path: Path, args: list[str], ready: Any, signals: int = 1, between: float = 0.5
) -> tuple[int, str]:
    """Start ``trine`` with *args*, wait until *ready()*, send SIGINT *signals* times."""
    out = _output_file(tmp_path)
    with out.open("w") as stdout:
        process = await trio.lowlevel.open_process(
            [PY, "-m", "trine", *args],
            env=cli_env(tmp_path),
            stdout=stdout,
            stderr=subprocess.STDOUT,
        )
    try:
        with trio.fail_after(30):
            while not ready():  # noqa: ASYNC110  # what another process writes
                await trio.sleep(0.02)
        for number in range(signals):
            if number:
                await trio.sleep(between)
                assert process.returncode is None, "trine ended before the second signal"
            process.send_signal(signal.SIGINT)
        with trio.fail_after(20):
            returncode = await process.wait()
    finally:
        if process.returncode is None:  # only if the test failed before trine exited
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
    return returncode, out.read_text()


def _gone(pid: int) -> bool:
    with contextlib.suppress(psutil.NoSuchProcess):  # gone, or a zombie of a non-reaping init
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return True


# ----------------------------------------------------------------------------
# Job log and resume


async def test_interrupted_run_resumes_from_the_job_log(tmp_path: Path) -> None:
    """SIGINT mid-run, then --resume: the jobs that finished do not run again."""
    runs = tmp_path / "runs.txt"
    pid_file = tmp_path / "slow.pid"
    slow = tmp_path / "slow.py"
    slow.write_text(
        textwrap.dedent(
            f"""
            import os, pathlib, sys, time
            open({str(runs)!r}, "a").write("slow\\n")
            marker = pathlib.Path({str(tmp_path / "slow.marker")!r})
            if not marker.exists():
                marker.write_text("")
                pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))
                time.sleep(60)
            """
        )
    )
    jobs = "\n".join(
        [
            "[run]\nlimit = 4\nkill_grace = 1\n",
            _append_job("one", runs),
            _append_job("two", runs),
            _append_job("three", runs),
            f'[jobs.slow]\ncmd = ["{PY}", "{slow}"]\n',
            _append_job("after_slow", runs, after='["slow"]'),
        ]
    )
    path = write(tmp_path, jobs)
    joblog = tmp_path / "joblog.jsonl"
    first = tmp_path / "first.json"

    def ready() -> bool:
        # The job log, not runs.txt: a job that has appended its name may still be
        # exiting, and a SIGINT then cancels it.
        succeeded = {
            name for name, job in read_joblog(str(joblog)).items() if job.status == "succeeded"
        }
        return pid_file.exists() and {"one", "two", "three"} <= succeeded

    returncode, _ = await _interrupt(
        tmp_path, ["run", str(path), "--joblog", str(joblog), "--json", str(first)], ready
    )
    assert returncode == 130
    assert _gone(int(pid_file.read_text()))
    statuses = {name: job["status"] for name, job in _report(first)["jobs"].items()}
    assert statuses == {
        "one": "succeeded",
        "two": "succeeded",
        "three": "succeeded",
        "slow": "cancelled",
        "after_slow": "cancelled",
    }
    logged = [json.loads(line) for line in joblog.read_text().splitlines()]
    assert {(entry["id"], entry["status"], entry["final"]) for entry in logged} == {
        ("one", "succeeded", True),
        ("two", "succeeded", True),
        ("three", "succeeded", True),
        ("slow", "cancelled", True),
    }
    [slow_entry] = [entry for entry in logged if entry["id"] == "slow"]
    assert (slow_entry["exit_code"], slow_entry["signal"]) == (None, 15)
    assert slow_entry["command"] == f"{PY} {slow}"

    second = tmp_path / "second.json"
    process = trine(
        tmp_path, "run", str(path), "--joblog", str(joblog), "--resume", "--json", str(second)
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert sorted(_runs(runs)) == ["after_slow", "one", "slow", "slow", "three", "two"]
    jobs_after = _report(second)["jobs"]
    assert {name for name, job in jobs_after.items() if job["resumed"]} == {"one", "two", "three"}
    assert "5 jobs: 5 succeeded (3 from the job log) in " in process.stdout
    # The log was appended to: the resumed run's attempts follow the first run's.
    assert len(joblog.read_text().splitlines()) == len(logged) + 2


def test_resume_keeps_failures_and_resume_failed_runs_them_again(tmp_path: Path) -> None:
    """--resume skips failed jobs too (dependents stay skipped); --resume-failed reruns them."""
    runs = tmp_path / "runs.txt"
    flaky = tmp_path / "flaky.py"
    flaky.write_text(
        textwrap.dedent(
            f"""
            import pathlib, sys
            open({str(runs)!r}, "a").write("flaky\\n")
            marker = pathlib.Path({str(tmp_path / "flaky.marker")!r})
            if not marker.exists():
                marker.write_text("")
                sys.exit(5)
            """
        )
    )
    path = write(
        tmp_path,
        "\n".join(
            [
                f'[jobs.flaky]\ncmd = ["{PY}", "{flaky}"]\n',
                _append_job("ok", runs),
                _append_job("child", runs, after='["flaky"]'),
            ]
        ),
    )
    joblog = str(tmp_path / "joblog.jsonl")
    assert trine(tmp_path, "run", str(path), "--joblog", joblog).returncode == 1
    assert sorted(_runs(runs)) == ["flaky", "ok"]
    report = tmp_path / "r.json"
    again = trine(tmp_path, "run", str(path), "--joblog", joblog, "--resume", "--json", str(report))
    assert again.returncode == 1
    assert sorted(_runs(runs)) == ["flaky", "ok"]
    jobs = _report(report)["jobs"]
    assert (jobs["flaky"]["status"], jobs["flaky"]["resumed"]) == ("failed", True)
    assert jobs["flaky"]["error"] == "exited with status 5"
    assert jobs["child"]["status"] == "skipped"
    last = trine(tmp_path, "run", str(path), "--joblog", joblog, "--resume-failed")
    assert last.returncode == 0, last.stdout + last.stderr
    assert sorted(_runs(runs)) == ["child", "flaky", "flaky", "ok"]


def test_resume_needs_a_job_log(tmp_path: Path) -> None:
    """--resume without --joblog is exit 2; a job log that is not one is exit 2 too."""
    path = write(tmp_path, '[jobs.a]\ncmd = ["true"]\n')
    process = trine(tmp_path, "run", str(path), "--resume")
    assert process.returncode == 2
    assert process.stderr == "trine: --resume needs --joblog FILE: the log of the run to resume\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n{"id": "a", "attempt": 1}\n')
    process = trine(tmp_path, "run", str(path), "--resume-failed", "--joblog", str(bad))
    assert process.returncode == 2
    assert process.stderr == (
        f"trine: --joblog {bad}: line 1: not a job record (needs id, attempt, final, status, "
        "command)\n"
    )


def test_a_job_whose_command_changed_is_not_resumed(tmp_path: Path) -> None:
    """The job log names a command: a job with another command now runs again."""
    runs = tmp_path / "runs.txt"
    joblog = str(tmp_path / "joblog.jsonl")
    path = write(tmp_path, _append_job("a", runs))
    assert trine(tmp_path, "run", str(path), "--joblog", joblog).returncode == 0
    assert trine(tmp_path, "run", str(path), "--joblog", joblog, "--resume").returncode == 0
    assert _runs(runs) == ["a"]
    path.write_text(path.read_text().replace('"a"]', '"a", "--changed"]'))
    assert trine(tmp_path, "run", str(path), "--joblog", joblog, "--resume").returncode == 0
    assert _runs(runs) == ["a", "a"]


def test_resume_after_a_cut_short_last_line_drops_it(tmp_path: Path) -> None:
    """Regression: --resume after a run killed mid-line drops the cut line; the log stays whole."""
    runs = tmp_path / "runs.txt"
    jobs = [_append_job("a", runs), _append_job("b", runs, after='["a"]')]
    path = write(tmp_path, "\n".join(jobs))
    joblog = tmp_path / "joblog.jsonl"
    assert trine(tmp_path, "run", str(path), "--joblog", str(joblog)).returncode == 0
    first, second = joblog.read_text().splitlines()
    assert json.loads(first)["id"] == "a"
    joblog.write_text(f"{first}\n{second[:30]}")  # killed while writing b's line
    for _ in range(2):
        process = trine(tmp_path, "run", str(path), "--joblog", str(joblog), "--resume")
        assert process.returncode == 0, process.stdout + process.stderr
    assert sorted(_runs(runs)) == ["a", "b", "b"]  # b once more, then resumed
    text = joblog.read_text()
    assert text.endswith("\n")
    assert [json.loads(line)["id"] for line in text.splitlines()] == ["a", "b"]


def test_job_log_keeps_a_whole_last_line_that_lost_its_newline(tmp_path: Path) -> None:
    """A last line of whole JSON without its newline is kept; the next record starts a line."""
    path = tmp_path / "joblog.jsonl"
    record = {"id": "a", "attempt": 1, "final": True, "status": "succeeded", "command": "x"}
    path.write_text(json.dumps(record))
    log = JobLog(str(path), append=True)
    log.write(
        job_id="b",
        attempt=1,
        final=True,
        start=1.0,
        end=2.0,
        returncode=-9,
        status="failed",
        error="killed by SIGKILL",
        command="y",
    )
    log.close()
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b"]
    assert set(read_joblog(str(path))) == {"a", "b"}


def test_a_whole_last_line_that_is_not_json_is_refused(tmp_path: Path) -> None:
    """Only a last line without its newline counts as cut short; a whole one must be a record."""
    path = tmp_path / "joblog.jsonl"
    record = {"id": "a", "attempt": 1, "final": True, "status": "succeeded", "command": "x"}
    path.write_text(json.dumps(record) + "\n{not json\n")
    with pytest.raises(JobLogError, match=r"^line 2: not JSON$"):
        read_joblog(str(path))
    path.write_text(json.dumps(record) + "\n{not json")
    assert set(read_joblog(str(path))) == {"a"}


def test_a_job_log_that_cannot_be_written_is_exit_2_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: --joblog in a missing directory is the command line's error, not a traceback."""
    runs = tmp_path / "runs.txt"
    path = write(tmp_path, _append_job("a", runs))
    joblog = tmp_path / "missing" / "joblog.jsonl"
    assert main(["run", str(path), "--joblog", str(joblog), "--progress", "plain"]) == 2
    assert capsys.readouterr().err == (
        f"trine: --joblog {joblog}: cannot write: No such file or directory\n"
    )
    assert _runs(runs) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"attempt": "x"}, "attempt must be a whole number >= 0, got 'x'"),
        ({"attempt": True}, "attempt must be a whole number >= 0, got True"),
        ({"attempt": 1e400}, "attempt must be a whole number >= 0, got inf"),
        ({"signal": "TERM"}, "signal must be null or a whole number >= 1, got 'TERM'"),
        ({"exit_code": 1.5}, "exit_code must be null or a whole number >= 0, got 1.5"),
        ({"error": 5}, "error must be a string or null, got 5"),
    ],
)
def test_a_job_log_record_with_a_field_of_the_wrong_kind_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fields: dict[str, object], message: str
) -> None:
    """Regression: a record's attempt, exit_code, signal or error of the wrong kind is exit 2."""
    path = write(tmp_path, '[jobs.a]\ncmd = ["true"]\n')
    record = {"id": "a", "attempt": 1, "final": True, "status": "failed", "command": "true"}
    joblog = tmp_path / "joblog.jsonl"
    joblog.write_text(json.dumps(record) + "\n" + json.dumps({**record, **fields}) + "\n")
    with pytest.raises(JobLogError, match=rf"^line 2: {re.escape(message)}$"):
        read_joblog(str(joblog))
    assert main(["run", str(path), "--joblog", str(joblog), "--resume"]) == 2
    assert capsys.readouterr().err == f"trine: --joblog {joblog}: line 2: {message}\n"


def test_limit_beyond_sys_maxsize_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: --limit above sys.maxsize is refused by the option parser (exit 2)."""
    path = write(tmp_path, '[jobs.a]\ncmd = ["true"]\n')
    with pytest.raises(SystemExit) as info:
        main(["run", str(path), "--limit", "99999999999999999999"])
    assert info.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"argument --limit: must be <= {sys.maxsize}, got 99999999999999999999\n"
    )


# ----------------------------------------------------------------------------
# Ctrl-C


@pytest.mark.parametrize("progress", ["plain", "rich"])
async def test_ctrl_c_twice_kills_at_once(tmp_path: Path, progress: str) -> None:
    """A job that ignores SIGTERM shows "stopping"; a second Ctrl-C kills it at once."""
    pid_file = tmp_path / "stubborn.pid"
    code = (
        "import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    )
    path = write(
        tmp_path,
        f'[run]\nkill_grace = 30\n[jobs.stubborn]\ncmd = ["{PY}", "-c", "{code}", "{pid_file}"]\n',
    )
    report = tmp_path / "r.json"
    with trio.fail_after(15):  # well within the 30 s grace
        returncode, out = await _interrupt(
            tmp_path,
            ["run", "--progress", progress, str(path), "--json", str(report)],
            lambda: pid_file.exists() and pid_file.read_text(),
            signals=2,
        )
    assert returncode == 130
    assert _gone(int(pid_file.read_text()))
    if progress == "plain":
        assert (
            "stopping  interrupted by SIGINT: SIGTERM sent to 1 running job, SIGKILL in 30s "
            "(Ctrl-C again: at once)\n" in out
        )
        assert "stopping  SIGINT again: SIGKILL sent to every job\n" in out
    else:  # the live line of the job says it is being stopped
        assert re.search(r"stubborn  stopping \(\d+\.\ds\)", out), out
        assert "stopping: interrupted by SIGINT, SIGKILL in " in out
    job = _report(report)["jobs"]["stubborn"]
    assert (job["status"], job["attempts"], job["returncode"]) == ("cancelled", 1, -9)
    assert job["error"] == "stopped (interrupted by SIGINT): killed by SIGKILL"


# ----------------------------------------------------------------------------
# Halt policies


def test_halt_soon_lets_running_jobs_finish_and_starts_nothing(tmp_path: Path) -> None:
    """--halt soon,fail=2: after two failures nothing starts; the running job finishes."""
    fail = "import sys, time; time.sleep(0.2); sys.exit(1)"
    path = write(
        tmp_path,
        f"""
        [run]
        limit = 3
        [jobs.f1]
        cmd = ["{PY}", "-c", "{fail}"]
        [jobs.f2]
        cmd = ["{PY}", "-c", "{fail}"]
        [jobs.slow]
        cmd = ["{PY}", "-c", "import time; time.sleep(1.5)"]
        [jobs.later]
        cmd = ["true"]
        after = ["slow"]
        """,
    )
    report = tmp_path / "r.json"
    process = trine(tmp_path, "run", str(path), "--halt", "soon,fail=2", "--json", str(report))
    assert process.returncode == 1
    data = _report(report)
    assert data["outcome"] == "failed (halted: 2 jobs failed, --halt soon,fail=2)"
    assert {name: job["status"] for name, job in data["jobs"].items()} == {
        "f1": "failed",
        "f2": "failed",
        "slow": "succeeded",
        "later": "cancelled",
    }
    assert data["jobs"]["later"]["error"] == "not started: 2 jobs failed, --halt soon,fail=2"
    assert data["jobs"]["later"]["started_at"] is None


def test_halt_now_by_percentage_stops_running_jobs(tmp_path: Path) -> None:
    """[run] halt = "now,fail=50%": half the jobs failed, the others are stopped at once."""
    fail = "import sys, time; time.sleep(0.3); sys.exit(1)"
    path = write(
        tmp_path,
        f"""
        [run]
        halt = "now,fail=50%"
        kill_grace = 1
        limit = 4
        [jobs.f1]
        cmd = ["{PY}", "-c", "{fail}"]
        [jobs.f2]
        cmd = ["{PY}", "-c", "{fail}"]
        [jobs.s1]
        cmd = ["{PY}", "-c", "import time; time.sleep(30)"]
        [jobs.s2]
        cmd = ["{PY}", "-c", "import time; time.sleep(30)"]
        """,
    )
    report = tmp_path / "r.json"
    process = trine(tmp_path, "run", str(path), "--json", str(report))
    assert process.returncode == 1
    data = _report(report)
    assert data["outcome"] == "failed (halted: 2 jobs failed, --halt now,fail=50%)"
    jobs = data["jobs"]
    assert [jobs[name]["status"] for name in ("f1", "f2", "s1", "s2")] == [
        "failed",
        "failed",
        "cancelled",
        "cancelled",
    ]
    # All four run at once (limit = 4, not the machine's core count), so both
    # sleepers were running and are stopped by SIGTERM.
    for name in ("s1", "s2"):
        assert (jobs[name]["returncode"], jobs[name]["attempts"]) == (-15, 1)
    assert data["duration"] < 20


def test_halt_on_success(tmp_path: Path) -> None:
    """halt soon,success=1: once a job succeeded nothing more starts, and the run succeeds."""
    path = write(
        tmp_path,
        '[run]\nhalt = "soon,success=1"\n[jobs.a]\ncmd = ["true"]\n'
        '[jobs.b]\ncmd = ["true"]\nafter = ["a"]\n',
    )
    report = tmp_path / "r.json"
    process = trine(tmp_path, "run", str(path), "--json", str(report))
    assert process.returncode == 0
    data = _report(report)
    assert data["outcome"] == "succeeded (halted: 1 job succeeded, --halt soon,success=1)"
    assert data["jobs"]["b"]["status"] == "cancelled"


def test_fail_fast_on_the_command_line(tmp_path: Path) -> None:
    """--fail-fast is --halt now,fail=1; it cannot be given with --halt."""
    path = write(
        tmp_path,
        f"""
        [run]
        kill_grace = 0.5
        [jobs.bad]
        cmd = ["false"]
        [jobs.slow]
        cmd = ["{PY}", "-c", "import time; time.sleep(30)"]
        """,
    )
    report = tmp_path / "r.json"
    process = trine(tmp_path, "run", str(path), "--fail-fast", "--json", str(report))
    assert process.returncode == 1
    assert _report(report)["jobs"]["slow"]["status"] == "cancelled"
    both = trine(tmp_path, "run", str(path), "--fail-fast", "--halt", "soon,fail=1")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr


# ----------------------------------------------------------------------------
# Retries, up to date, matrices, selections, output


def test_retry_delay_and_backoff_come_from_the_jobs_file(tmp_path: Path) -> None:
    """retry_delay = 0.3, exponential: the retries start 0.3 s and 0.6 s after the failures."""
    counter = tmp_path / "count"
    code = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n)); "
        "print('attempt', n, file=sys.stderr); sys.exit(0 if n == 3 else 1)"
    )
    path = write(
        tmp_path,
        f"""
        [jobs.flaky]
        cmd = ["{PY}", "-c", "{code}", "{counter}"]
        retries = 3
        retry_delay = 0.3
        retry_backoff = "exponential"
        """,
    )
    report = tmp_path / "r.json"
    joblog = tmp_path / "joblog.jsonl"
    logs = tmp_path / "logs"
    process = trine(
        tmp_path,
        "run",
        str(path),
        "--json",
        str(report),
        "--joblog",
        str(joblog),
        "--logs",
        str(logs),
    )
    assert process.returncode == 0, process.stdout + process.stderr
    timeline = _report(report)["timeline"]
    assert [entry["status"] for entry in timeline] == ["failed", "failed", "succeeded"]
    assert timeline[1]["start"] - timeline[0]["end"] >= 0.3
    assert timeline[2]["start"] - timeline[1]["end"] >= 0.6
    logged = [json.loads(line) for line in joblog.read_text().splitlines()]
    assert [(entry["attempt"], entry["final"], entry["exit_code"]) for entry in logged] == [
        (1, False, 1),
        (2, False, 1),
        (3, True, 0),
    ]
    assert [(logs / name).read_text() for name in ("flaky@1.stderr", "flaky@2.stderr")] == [
        "attempt 1\n",
        "attempt 2\n",
    ]
    assert (logs / "flaky.stderr").read_text() == "attempt 3\n"


def test_backoff_of_each_kind() -> None:
    """The Backoff a job's retry keys make: constant, exponential, with or without jitter."""
    data = {
        "jobs": {
            "c": {"cmd": ["true"], "retries": 1, "retry_delay": 2},
            "e": {"cmd": ["true"], "retries": 1, "retry_delay": 1, "retry_backoff": "exponential"},
            "j": {"cmd": ["true"], "retries": 1, "retry_delay": 1, "retry_jitter": "equal"},
        }
    }
    jobs = parse_jobs(data, path="jobs.toml", base=Path("/")).jobs
    constant, exponential, jittered = (_backoff(jobs[name]) for name in "cej")
    assert (constant.kind, constant.initial) == ("constant", 2.0)
    assert (exponential.kind, exponential.initial, exponential.maximum) == (
        "exponential",
        1.0,
        60.0,
    )
    assert (exponential.multiplier, exponential.jitter) == (2.0, None)
    assert (jittered.multiplier, jittered.maximum, jittered.jitter) == (1.0, 1.0, "equal")


def test_a_job_up_to_date_is_skipped_and_its_dependents_run(tmp_path: Path) -> None:
    """outputs newer than every input: up_to_date, not run; a newer input runs it again."""
    runs = tmp_path / "runs.txt"
    source = tmp_path / "in.txt"
    source.write_text("data")
    os.utime(source, (1_000_000, 1_000_000))
    build = f"import shutil; shutil.copy('in.txt', 'out.txt'); {_APPEND}"
    path = write(
        tmp_path,
        f"""
        [jobs.build]
        cmd = ["{PY}", "-c", "{build}", "{runs}", "build"]
        inputs = ["*.txt"]
        outputs = ["out.txt"]
        [jobs.use]
        cmd = ["{PY}", "-c", "{_APPEND}", "{runs}", "use"]
        after = ["build"]
        """.replace('inputs = ["*.txt"]', 'inputs = ["in.txt"]'),
    )
    joblog = tmp_path / "joblog.jsonl"
    assert trine(tmp_path, "run", str(path)).returncode == 0
    assert _runs(runs) == ["build", "use"]
    report = tmp_path / "r.json"
    again = trine(tmp_path, "run", str(path), "--json", str(report), "--joblog", str(joblog))
    assert again.returncode == 0
    assert _runs(runs) == ["build", "use", "use"]
    build_job = _report(report)["jobs"]["build"]
    assert (build_job["status"], build_job["attempts"]) == ("up_to_date", 0)
    [entry] = [json.loads(line) for line in joblog.read_text().splitlines() if '"build"' in line]
    assert (entry["attempt"], entry["status"]) == (0, "up_to_date")
    future = os.stat(tmp_path / "out.txt").st_mtime + 10
    os.utime(source, (future, future))
    assert trine(tmp_path, "run", str(path)).returncode == 0
    assert _runs(runs) == ["build", "use", "use", "build", "use"]


def test_matrix_jobs_run_and_their_dependents_wait_for_all(tmp_path: Path) -> None:
    """A matrix is one job per combination; `after` its name waits for every one."""
    runs = tmp_path / "runs.txt"
    path = write(
        tmp_path,
        f"""
        [jobs.build]
        cmd = ["{PY}", "-c", "{_APPEND}", "{runs}", "build-{{os}}-{{py}}"]
        matrix = {{ os = ["linux", "mac"], py = ["3.11", "3.12"] }}
        [jobs.test]
        cmd = ["{PY}", "-c", "{_APPEND}", "{runs}", "test-{{os}}"]
        matrix = {{ os = ["linux", "mac"] }}
        after = ["build.{{os}}.3.11", "build.{{os}}.3.12"]
        [jobs.ship]
        cmd = ["{PY}", "-c", "{_APPEND}", "{runs}", "ship"]
        after = ["test"]
        """,
    )
    report = tmp_path / "r.json"
    process = trine(tmp_path, "run", str(path), "--json", str(report))
    assert process.returncode == 0, process.stdout + process.stderr
    order = _runs(runs)
    # test-linux needs only the linux builds: it may start before a mac build ends.
    assert sorted(order) == sorted(
        [f"build-{platform}-{py}" for platform in ("linux", "mac") for py in ("3.11", "3.12")]
        + ["test-linux", "test-mac", "ship"]
    )
    for platform in ("linux", "mac"):
        assert order.index(f"test-{platform}") > max(
            order.index(f"build-{platform}-3.11"), order.index(f"build-{platform}-3.12")
        )
    assert order[-1] == "ship"
    jobs = _report(report)["jobs"]
    assert jobs["test.mac"]["after"] == ["build.mac.3.11", "build.mac.3.12"]
    assert jobs["build.linux.3.12"]["matrix"] == {"os": "linux", "py": "3.12"}


def test_run_only_named_jobs_and_what_they_need(tmp_path: Path) -> None:
    """`trine run jobs.toml c`: c and the jobs it runs after; nothing else."""
    runs = tmp_path / "runs.txt"
    path = write(
        tmp_path,
        "\n".join(
            [
                _append_job("a", runs),
                _append_job("b", runs, after='["a"]'),
                _append_job("c", runs, after='["b"]'),
                _append_job("other", runs),
            ]
        ),
    )
    assert trine(tmp_path, "run", str(path), "c").returncode == 0
    assert _runs(runs) == ["a", "b", "c"]


def test_output_tag_shows_running_jobs_lines(tmp_path: Path) -> None:
    """--output=tag: each line of a running job's output, prefixed by the job, as it comes."""
    code = (
        "import sys; print('one'); print('two'); sys.stdout.write('three'); "
        "print('oops', file=sys.stderr)"
    )
    path = write(tmp_path, f'[jobs.talk]\ncmd = ["{PY}", "-c", "{code}"]\n')
    process = trine(tmp_path, "run", str(path), "--progress", "plain", "--output", "tag")
    assert process.returncode == 0
    lines = [line for line in process.stdout.splitlines() if line.startswith("talk ")]
    assert sorted(lines) == ["talk ! oops", "talk | one", "talk | three", "talk | two"]
    assert lines.index("talk | one") < lines.index("talk | two") < lines.index("talk | three")


def test_summary_never_cuts_job_names(tmp_path: Path) -> None:
    """Long names that differ only in the middle stay whole in the summary, plain and rich."""
    first = "extract_" + "x" * 30 + "_customers_2024_01_final"
    second = "extract_" + "x" * 30 + "_suppliers_2024_01_final"
    path = write(
        tmp_path,
        f'[jobs.{first}]\ncmd = ["false"]\n[jobs.{second}]\ncmd = ["false"]\n'
        '[jobs.fine]\ncmd = ["true"]\n',
    )
    plain = trine(tmp_path, "run", str(path), "--progress", "plain")
    assert plain.returncode == 1
    table = plain.stdout.split("\n\n")[1]
    assert [line.split()[0] for line in table.splitlines()[1:]] == [first, second]
    assert "fine" not in table
    assert "3 jobs: 1 succeeded, 2 failed in " in plain.stdout
    rich = trine(tmp_path, "run", str(path), "--progress", "rich")
    assert rich.returncode == 1
    letters = "".join(re.findall(r"[a-z0-9_]+", rich.stdout.split("did not succeed")[-1]))
    assert first in letters
    assert second in letters


# ----------------------------------------------------------------------------
# The ETA


def test_eta_from_the_durations_so_far() -> None:
    """The mean duration, less what running jobs have done, over the slots."""
    assert estimate_remaining([], [1.0], 3, 2) is None
    assert estimate_remaining([2.0, 4.0], [], 0, 4) == 0.0
    # mean 3: running jobs need 2 and 0 more, 4 pending need 12: 14 over 4 slots.
    assert estimate_remaining([2.0, 4.0], [1.0, 5.0], 4, 4) == 3.5
    # one slot: everything in sequence.
    assert estimate_remaining([1.0], [], 5, 1) == 5.0


@given(
    st.lists(st.floats(0, 100), min_size=1, max_size=10),
    st.lists(st.floats(0, 100), max_size=5),
    st.integers(0, 50),
    st.integers(1, 8),
)
def test_eta_is_never_negative_and_grows_with_work(
    durations: list[float], running: list[float], pending: int, slots: int
) -> None:
    """Any state: the estimate is >= 0, and one more pending job never shortens it."""
    estimate = estimate_remaining(durations, running, pending, slots)
    more = estimate_remaining(durations, running, pending + 1, slots)
    assert estimate is not None
    assert more is not None
    assert estimate >= 0
    if pending + len(running) >= slots:  # the slots are all in use either way
        assert more >= estimate - 1e-9


def test_a_reader_that_leaves_does_not_stop_the_run(tmp_path: Path) -> None:
    """Regression (issue 16): `trine run ... | head -1` still runs every job, writes its report."""
    path = write(
        tmp_path,
        f'[jobs.a]\ncmd = ["true"]\n[jobs.b]\ncmd = ["{PY}", "-c", "import time; time.sleep(0.5)"]'
        '\n[jobs.c]\ncmd = ["true"]\nafter = ["b"]\n',
    )
    report = tmp_path / "r.json"
    process = subprocess.Popen(
        [PY, "-m", "trine", "run", "--progress", "plain", str(path), "--json", str(report)],
        env=cli_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.readline()
    process.stdout.close()  # as `head -1` does
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == ""
    process.stderr.close()
    assert _report(report)["counts"] == {"succeeded": 3}
    # A pipe whose reader is gone before trine writes: `trine graph` exits as if by SIGPIPE.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        graph = subprocess.run(
            [PY, "-m", "trine", "graph", str(path)],
            env=cli_env(tmp_path),
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (graph.returncode, graph.stderr) == (141, b"")


async def test_a_failing_load_probe_is_the_waiting_jobs_error_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    """As in run_commands: a probe that raises makes the job waiting for it an error."""
    probes = 0

    def probe() -> trine_lib.LoadSample:
        nonlocal probes
        probes += 1
        if probes == 1:
            raise OSError("no /proc here")
        return trine_lib.LoadSample(0.0, 10**9)

    data = {"jobs": {"a": {"cmd": [PY, "-c", "pass"]}, "b": {"cmd": [PY, "-c", "pass"]}}}
    jobs_file = parse_jobs(data, path="jobs.toml", base=tmp_path)
    options = RunOptions(admission=trine_lib.SystemLoad(max_cpu_percent=90.0, probe=probe))
    runner = Runner(jobs_file, options)
    await runner.run(make_display("plain", runner, io.StringIO(), False), 0.0)
    statuses = sorted((record.status, record.attempts[-1].error) for record in runner.records)
    assert statuses == [
        ("error", "cannot read the load: OSError: no /proc here"),
        ("succeeded", None),
    ]
