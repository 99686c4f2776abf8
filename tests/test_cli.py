"""The ``trine`` command line: jobs-file validation, run, graph, reports, Ctrl-C.

Validation messages are checked in-process through ``main()`` (fast); runs go
through ``python -m trine`` in a real subprocess, as a user would start it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from trine._cli import main
from trine._jobs_file import JobsFileError, load_jobs_file, parse_jobs, waves
from trine._version import __version__

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "jobs.toml"


def write(tmp_path: Path, text: str, name: str = "jobs.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a ``python -m trine`` subprocess of this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    # `python3` in the example's commands is this interpreter.
    env["PATH"] = os.pathsep.join([str(Path(PY).parent), env.get("PATH", "")])
    env["ETL_WORK_DIR"] = str(tmp_path / "work")
    return env


def trine(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "trine", *args],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def errors_of(path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Run ``trine run --dry-run PATH`` in-process; return its error lines (exit 2 asserted)."""
    assert main(["run", "--dry-run", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    prefix = f"trine: {path}: "
    lines = captured.err.splitlines()
    assert all(line.startswith(prefix) for line in lines), lines
    return [line.removeprefix(prefix) for line in lines]


# ----------------------------------------------------------------------------
# Validation: every problem, with its path, exit 2, nothing run


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            """
            [jobs.fetch]
            cmd = ["true"]
            [jobs.analyze]
            cmd = ["true"]
            after = ["fetch_tx"]
            """,
            ["jobs.analyze.after: unknown job 'fetch_tx' (did you mean 'fetch'?)"],
        ),
        (
            """
            [jobs.a]
            cmd = ["true"]
            after = ["b"]
            [jobs.b]
            cmd = ["true"]
            after = ["a"]
            """,
            ["cycle: a -> b -> a"],
        ),
        (
            """
            [jobs.x]
            cmd = ["true"]
            [jobs.a]
            cmd = ["true"]
            after = ["x", "c"]
            [jobs.b]
            cmd = ["true"]
            after = ["a"]
            [jobs.c]
            cmd = ["true"]
            after = ["b"]
            """,
            ["cycle: a -> c -> b -> a"],
        ),
        (
            """
            [jobs.a]
            cmd = ["true"]
            after = ["a"]
            """,
            ["jobs.a.after: a job cannot run after itself"],
        ),
        (
            """
            [jobs.a]
            cmd = "make all"
            """,
            [
                "jobs.a.cmd: is a string: set shell = true to run it through /bin/sh, "
                "or give an array of arguments"
            ],
        ),
        (
            """
            [jobs.a]
            cmd = ["make"]
            shell = true
            """,
            ["jobs.a.cmd: with shell = true, cmd must be one string"],
        ),
        (
            """
            [jobs.a]
            cmd = ["make", 3]
            """,
            [
                "jobs.a.cmd: must be an array of strings (or a string with shell = true), "
                "got an array"
            ],
        ),
        ("[jobs.a]\ncmd = []\n", ["jobs.a.cmd: must not be empty"]),
        ('[jobs.a]\ncmd = ""\nshell = true\n', ["jobs.a.cmd: must not be empty"]),
        ('[jobs.a]\ncmd = "  "\nshell = true\n', ["jobs.a.cmd: must not be empty"]),
        (
            '[jobs.a]\ncmd = ["", "x"]\n',
            ["jobs.a.cmd: the program (the first item) must not be empty"],
        ),
        (
            '[jobs.a]\ncmd = ["true"]\nuses = ["db"]\n',
            [
                "jobs.a.uses: unknown resource 'db' "
                "(no resources are defined: add a [resources] table)"
            ],
        ),
        (
            """
            [run]
            halt = "later,fail=1"
            retry_delay = -1
            retry_backoff = "linear"
            retry_jitter = 3
            [jobs.a]
            cmd = ["true"]
            retry_max_delay = 0.5
            retry_delay = 1
            """,
            [
                "run.retry_delay: must be >= 0 (and finite), got -1",
                "run.retry_backoff: must be 'constant' or 'exponential', got a string 'linear'",
                "run.retry_jitter: must be true, false, 'full' or 'equal', got an integer 3",
                "run.halt: must be 'never' or WHEN,WHY=VALUE (WHEN soon or now, WHY fail, "
                "success or done, VALUE a count or a percentage), got 'later,fail=1'",
                "jobs.a.retry_max_delay: must be >= retry_delay (1), got 0.5",
            ],
        ),
        (
            """
            [run]
            fail_fast = true
            halt = "soon,fail=3"
            [jobs.a]
            cmd = ["true"]
            inputs = ["*.c"]
            """,
            [
                "run.fail_fast: give either fail_fast or halt, not both",
                "jobs.a.inputs: without outputs there is nothing to compare the inputs with: "
                "add outputs",
            ],
        ),
        ("[jobs.a]\nshell = true\n", ["jobs.a: missing key 'cmd'"]),
        (
            """
            [jobs.a]
            cmd = ["true"]
            timeout = "ten"
            retries = -1
            priority = 1.5
            optional = "yes"
            env = { A = 1 }
            cwd = 7
            """,
            [
                "jobs.a.timeout: must be a number of seconds, got a string 'ten'",
                "jobs.a.retries: must be >= 0, got -1",
                "jobs.a.priority: must be an integer, got a float 1.5",
                "jobs.a.env.A: must be a string, got an integer 1",
                "jobs.a.cwd: must be a string, got an integer 7",
                "jobs.a.optional: must be true or false, got a string 'yes'",
            ],
        ),
        (
            """
            [jobs.a]
            cmd = ["true"]
            aftr = ["b"]
            """,
            ["jobs.a: unknown key 'aftr' (did you mean 'after'?)"],
        ),
        (
            """
            [run]
            limit = 0
            timeout = -1
            fail_fast = 1
            max_cpu_percent = 150
            min_free_memory = "1G"
            [jobs.a]
            cmd = ["true"]
            """,
            [
                "run.limit: must be >= 1, got 0",
                "run.timeout: must be > 0 (and finite), got -1",
                "run.fail_fast: must be true or false, got an integer 1",
                "run.max_cpu_percent: must be a percentage in (0, 100], got an integer 150",
                "run.min_free_memory: must be an integer, got a string '1G'",
            ],
        ),
        (
            """
            [resources]
            db = 0
            [jobs.a]
            cmd = ["true"]
            """,
            ["resources.db: must be >= 1, got 0"],
        ),
        (
            """
            [resources]
            db = 2
            [jobs.a]
            cmd = ["true"]
            uses = ["gpu"]
            [jobs.b]
            cmd = ["true"]
            uses = { db = 3 }
            [jobs.c]
            cmd = ["true"]
            uses = "db"
            """,
            [
                "jobs.a.uses: unknown resource 'gpu' (resources: 'db')",
                "jobs.b.uses.db: weight 3 is more than resource 'db' has (2)",
                "jobs.c.uses: must be an array of resource names or a table of name = weight, "
                "got a string 'db'",
            ],
        ),
        (
            """
            jobs = 3
            extra = 1
            """,
            ["unknown key 'extra'", "jobs: must be a table, got an integer 3"],
        ),
        ("[run]\nlimit = 2\n", ["no jobs: add at least one [jobs.NAME] table"]),
        (
            """
            [jobs."a b"]
            cmd = ["true"]
            """,
            [
                "jobs.'a b': a job name may only contain letters, digits, '_', '-' and '.' "
                "(and may not start with '-' or '.')"
            ],
        ),
        ("[jobs.a]\ncmd = [\n", None),
    ],
)
def test_invalid_jobs_files_are_refused_with_precise_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str] | None
) -> None:
    """Each problem is reported with the path of the value at fault, and exit status 2."""
    problems = errors_of(write(tmp_path, text), capsys)
    if expected is None:  # a TOML syntax error: the parser's own message
        assert len(problems) == 1
        assert problems[0].startswith("invalid TOML: ")
    else:
        assert problems == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[jobs.a]\ncmd = ["true"]\nenv = { "A=B" = "x", "" = "y", "C\\u0000" = "z" }\n',
            [
                "jobs.a.env: a variable name must be non-empty, without '=' and NUL bytes, "
                "got 'A=B'",
                "jobs.a.env: a variable name must be non-empty, without '=' and NUL bytes, got ''",
                "jobs.a.env: a variable name must be non-empty, without '=' and NUL bytes, "
                "got 'C\\x00'",
            ],
        ),
        (
            '[jobs.a]\ncmd = ["echo", "a\\u0000b"]\nenv = { A = "\\u0000" }\n'
            'cwd = "d\\u0000"\n[jobs.b]\ncmd = "echo \\u0000"\nshell = true\n',
            [
                "jobs.a.cmd: must not contain NUL bytes, got 'a\\x00b'",
                "jobs.a.env.A: must not contain NUL bytes, got '\\x00'",
                "jobs.a.cwd: must not contain NUL bytes, got 'd\\x00'",
                "jobs.b.cmd: must not contain NUL bytes, got 'echo \\x00'",
            ],
        ),
        (
            '[jobs.a]\ncmd = ["{p}", "{q}"]\nmatrix = { p = ["", "true"], q = ["\\u0000"] }\n'
            '[jobs.b]\ncmd = ["{p}"]\nmatrix = { p = ["", "true"] }\n',
            [
                "jobs.a.matrix.q: must not contain NUL bytes, got '\\x00'",
                "jobs.b[p=].cmd: the program (the first item) must not be empty",
            ],
        ),
        (
            """
            [run]
            retry_max_delay = 0.5
            [jobs.a]
            cmd = ["false"]
            retry_delay = 1
            retry_backoff = "exponential"
            [jobs.b]
            cmd = ["false"]
            retry_delay = 1
            [jobs.c]
            cmd = ["false"]
            retry_delay = 1
            retry_max_delay = 2
            """,
            [
                "jobs.a.retry_delay: must be <= retry_max_delay (0.5, from [run]), got 1; "
                "give the job its own retry_max_delay",
                "jobs.b.retry_delay: must be <= retry_max_delay (0.5, from [run]), got 1; "
                "give the job its own retry_max_delay",
            ],
        ),
        (
            f"""
            [run]
            retries = {sys.maxsize}
            limit = 99999999999999999999
            min_free_memory = {sys.maxsize + 1}
            [resources]
            db = {10**40}
            [jobs.a]
            cmd = ["false"]
            retries = {sys.maxsize}
            """,
            [
                f"run.limit: must be <= {sys.maxsize}, got 99999999999999999999",
                f"run.retries: must be <= {sys.maxsize - 1}, got {sys.maxsize}",
                f"run.min_free_memory: must be <= {sys.maxsize}, got {sys.maxsize + 1}",
                f"resources.db: must be <= {sys.maxsize}, got an int of about 10**40",
                f"jobs.a.retries: must be <= {sys.maxsize - 1}, got {sys.maxsize}",
            ],
        ),
    ],
)
def test_what_would_fail_at_run_time_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    """Regression: env names, NUL bytes, a retry_delay over [run]'s retry_max_delay and
    counts past sys.maxsize are refused by the checks (exit 2), not found by the run."""
    assert errors_of(write(tmp_path, text), capsys) == expected


def test_a_bad_env_name_runs_no_job(tmp_path: Path) -> None:
    """Regression: a job with env "A=B" is exit 2 through the real command; no other job runs."""
    marker = tmp_path / "ran"
    path = write(
        tmp_path,
        f"""
        [jobs.a]
        cmd = ["true"]
        env = {{ "A=B" = "x" }}
        [jobs.b]
        cmd = ["{PY}", "-c", "open({str(marker)!r}, 'w')"]
        """,
    )
    process = trine(tmp_path, "run", str(path))
    assert process.returncode == 2
    assert process.stderr == (
        f"trine: {path}: jobs.a.env: a variable name must be non-empty, without '=' and NUL "
        "bytes, got 'A=B'\n"
    )
    assert not marker.exists()


def test_an_integer_too_long_to_read_is_invalid_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: an integer of 5,000 digits is exit 2 with tomllib's reason, not a traceback."""
    [problem] = errors_of(write(tmp_path, f"[run]\nlimit = {'9' * 5000}\n"), capsys)
    assert problem.startswith("invalid TOML: Exceeds the limit (4300 digits)")


def test_a_job_name_or_matrix_key_ending_in_a_newline_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: the name checks match the whole name; a trailing newline is not let through."""
    text = (
        '[jobs."abc\\n"]\ncmd = ["true"]\n'
        '[jobs.m]\ncmd = ["echo", "{k}"]\nmatrix = { "k\\n" = ["1"] }\n'
    )
    assert errors_of(write(tmp_path, text), capsys) == [
        "jobs.'abc\\n': a job name may only contain letters, digits, '_', '-' and '.' "
        "(and may not start with '-' or '.')",
        "jobs.m.matrix.'k\\n': a matrix key may only contain letters, digits and '_' "
        "(not starting with a digit)",
    ]


def test_missing_jobs_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A jobs file that cannot be read is exit 2 with the OS's reason."""
    assert errors_of(tmp_path / "nope.toml", capsys) == ["cannot read: No such file or directory"]


def test_invalid_file_runs_nothing_and_exits_2(tmp_path: Path) -> None:
    """Through the real command: exit 2, the message on stderr, no job started."""
    marker = tmp_path / "ran"
    path = write(
        tmp_path,
        f"""
        [jobs.ok]
        cmd = ["{PY}", "-c", "open({str(marker)!r}, 'w')"]
        [jobs.analyze]
        cmd = ["true"]
        after = ["fetch_tx"]
        """,
    )
    process = trine(tmp_path, "run", str(path))
    assert process.returncode == 2
    assert process.stderr == f"trine: {path}: jobs.analyze.after: unknown job 'fetch_tx'\n"
    assert process.stdout == ""
    assert not marker.exists()


def test_waves_group_jobs_by_longest_dependency_chain(tmp_path: Path) -> None:
    """A job's wave is one after its latest dependency's; file order within a wave."""
    path = write(
        tmp_path,
        """
        [jobs.d]
        cmd = ["true"]
        after = ["c", "a"]
        [jobs.a]
        cmd = ["true"]
        [jobs.c]
        cmd = ["true"]
        after = ["b"]
        [jobs.b]
        cmd = ["true"]
        after = ["a"]
        [jobs.e]
        cmd = ["true"]
        """,
    )
    assert waves(load_jobs_file(path).jobs) == [["a", "e"], ["b"], ["c"], ["d"]]


def test_relative_cwd_is_resolved_against_the_jobs_file(tmp_path: Path) -> None:
    """Jobs run in the jobs file's directory, or cwd relative to it."""
    path = write(
        tmp_path,
        """
        [jobs.a]
        cmd = ["true"]
        [jobs.b]
        cmd = ["true"]
        cwd = "sub"
        """,
    )
    (tmp_path / "sub").mkdir()
    jobs = load_jobs_file(path).jobs
    assert jobs["a"].cwd == str(tmp_path)
    assert jobs["b"].cwd == str(tmp_path / "sub")


def test_every_problem_is_reported_in_one_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression (issue 16): a missing target and a cycle show even beside other errors."""
    problems = errors_of(
        write(
            tmp_path,
            """
            [jobs.a]
            cmd = ["true"]
            timeout = "ten"
            after = ["b", "nope"]
            [jobs.b]
            cmd = ["true"]
            after = ["a"]
            """,
        ),
        capsys,
    )
    assert problems == [
        "jobs.a.timeout: must be a number of seconds, got a string 'ten'",
        "jobs.a.after: unknown job 'nope'",
        "cycle: a -> b -> a",
    ]


def test_a_file_that_is_not_utf8_names_the_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression (issue 16): not UTF-8 is exit 2 naming the offset, not a traceback."""
    path = tmp_path / "jobs.toml"
    path.write_bytes(b'[jobs.a]\ncmd = ["echo", "caf\xe9"]\n')
    assert errors_of(path, capsys) == [
        "not UTF-8: byte 0xe9 at offset 28 (line 2, column 20); save the file as UTF-8"
    ]


def test_paths_are_checked_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing cwd, a cwd that is a file, a directory given as the program: all named."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "notes.txt").write_text("")
    problems = errors_of(
        write(
            tmp_path,
            """
            [jobs.a]
            cmd = ["true"]
            cwd = "missing"
            [jobs.b]
            cmd = ["true"]
            cwd = "notes.txt"
            [jobs.c]
            cmd = ["./tools", "--help"]
            """,
        ),
        capsys,
    )
    assert problems == [
        f"jobs.a.cwd: {str(tmp_path / 'missing')!r} does not exist",
        f"jobs.b.cwd: {str(tmp_path / 'notes.txt')!r} is not a directory",
        "jobs.c.cmd: './tools' is a directory, not a program",
    ]


def test_an_invalid_file_still_writes_the_json_report(tmp_path: Path) -> None:
    """--json of an invalid file: outcome "invalid" and every problem, exit 2."""
    path = write(tmp_path, '[jobs.a]\ncmd = ["true"]\nafter = ["b"]\n')
    report_path = tmp_path / "r.json"
    assert main(["run", str(path), "--json", str(report_path)]) == 2
    assert json.loads(report_path.read_text()) == {
        "jobs_file": str(path),
        "outcome": "invalid",
        "exit_code": 2,
        "problems": [f"{path}: jobs.a.after: unknown job 'b'"],
    }


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`trine --version` prints the version."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"trine {__version__}\n"


def test_unknown_job_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Naming a job that does not exist is exit 2 with a suggestion."""
    assert main(["run", "--dry-run", str(EXAMPLE), "reprot"]) == 2
    assert (
        capsys.readouterr().err == f"trine: {EXAMPLE}: no job 'reprot' (did you mean 'report'?)\n"
    )


# ----------------------------------------------------------------------------
# graph and --dry-run


def test_graph_prints_the_waves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`trine graph` prints each wave with each job's dependencies and resources."""
    assert main(["graph", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (f"{EXAMPLE}: 9 jobs in 4 waves, limit 4, resources net=2, db=1")
    assert (
        "wave 2:\n  clean  (after fetch_orders, fetch_customers; uses db=1; timeout 30s)\n" in out
    )
    assert "  geocode  (after clean; timeout 1.5s; optional)\n" in out
    assert (
        "  analyse_sales  (after clean, fetch_rates; uses db=1; priority 1; timeout 30s)\n" in out
    )
    assert (
        "  fetch_rates  (uses net=1; timeout 30s; "
        "retries 2 after 0.25s doubling up to 60s)\n" in out
    )


def test_graph_of_named_jobs_shows_what_they_need(capsys: pytest.CaptureFixture[str]) -> None:
    """`trine graph jobs.toml analyse_regions`: that job and the jobs it runs after."""
    assert main(["graph", str(EXAMPLE), "analyse_regions"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{EXAMPLE}: 4 jobs in 3 waves, limit 4, resources net=2, db=1"
    assert "report" not in out
    assert "fetch_rates" not in out


def test_graph_dot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`trine graph --dot` prints Graphviz: a node per job, an edge per dependency."""
    path = write(
        tmp_path,
        """
        [resources]
        db = 1
        [jobs.a]
        cmd = ["true"]
        [jobs.b]
        cmd = ["true"]
        after = ["a"]
        uses = ["db"]
        optional = true
        """,
    )
    assert main(["graph", "--dot", str(path)]) == 0
    assert capsys.readouterr().out == textwrap.dedent(
        """\
        digraph jobs {
          rankdir=LR;
          node [shape=box];
          "a" [label="a"];
          "b" [style=dashed, label="b\\ndb=1"];
          "a" -> "b";
        }
        """
    )


def test_dry_run_prints_the_plan_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`trine run --dry-run` shows the commands per wave and starts none of them."""
    marker = tmp_path / "ran"
    path = write(
        tmp_path,
        f"""
        [jobs.touch]
        cmd = ["{PY}", "-c", "open({str(marker)!r}, 'w')"]
        [jobs.after]
        cmd = "echo done | wc -c"
        shell = true
        after = ["touch"]
        """,
    )
    assert main(["run", "--dry-run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "wave 2:\n  after  (after touch)\n      $ echo done | wc -c\n" in out
    assert out.endswith("dry run: nothing was started\n")
    assert not marker.exists()


# ----------------------------------------------------------------------------
# Running


def test_example_runs_and_shows_every_status(tmp_path: Path) -> None:
    """The example ETL exits 0 with a retried job, a timed-out optional job and a skip."""
    report_path = tmp_path / "report.json"
    html_path = tmp_path / "run.html"
    logs = tmp_path / "logs"
    process = trine(
        tmp_path,
        "run",
        str(EXAMPLE),
        "--json",
        str(report_path),
        "--logs",
        str(logs),
        "--report",
        str(html_path),
        "--progress",
        "plain",
    )
    assert process.returncode == 0, process.stdout + process.stderr
    report = json.loads(report_path.read_text())
    assert report["exit_code"] == 0
    assert report["outcome"] == "succeeded"
    assert report["counts"] == {"succeeded": 7, "timed_out": 1, "skipped": 1}
    jobs = report["jobs"]
    assert jobs["fetch_rates"]["status"] == "succeeded"
    assert jobs["fetch_rates"]["attempts"] == 2
    assert jobs["geocode"]["status"] == "timed_out"
    assert jobs["geocode"]["optional"] is True
    assert jobs["geocode"]["error"] == "timed out after 1.5 s"
    assert jobs["geocode"]["returncode"] == -15
    assert jobs["map_regions"]["status"] == "skipped"
    assert jobs["map_regions"]["skipped_because"] == "geocode"
    assert jobs["map_regions"]["started_at"] is None
    assert jobs["report"]["stdout_tail"].startswith("orders: ")
    # The db resource (capacity 1) kept its three users apart.
    db_users = [jobs[name] for name in ("clean", "analyse_sales", "analyse_regions")]
    spans = sorted((job["started_at"], job["finished_at"]) for job in db_users)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    # The timeline has every attempt; the flaky fetch's first one failed, and the
    # second came retry_delay later, through trine.Retry.
    rates = [entry for entry in report["timeline"] if entry["id"] == "fetch_rates"]
    assert [(entry["attempt"], entry["status"]) for entry in rates] == [
        (1, "failed"),
        (2, "succeeded"),
    ]
    assert rates[1]["start"] - rates[0]["end"] >= 0.25
    assert len(report["timeline"]) == 9
    ran = [name for name in jobs if jobs[name]["started_at"] is not None]
    last = max(ran, key=lambda name: jobs[name]["finished_at"])
    assert report["critical_path"][-1] == last  # report, unless geocode's timeout ended later
    assert report["critical_path"][0].startswith("fetch_")
    assert report["resources"] == {"net": 2, "db": 1}
    assert report["summary"]["retries"] == 1
    # --logs keeps every attempt: the 503 of the first is not lost.
    assert "503 Service Unavailable" in (logs / "fetch_rates@1.stderr").read_text()
    assert (logs / "fetch_rates.stderr").read_text() == ""
    assert (logs / "report.stdout").read_text() == jobs["report"]["stdout_tail"]
    assert (logs / "geocode.stdout").read_text() == "geocoding regions...\n"
    # The failed attempt is shown when it happens; held jobs say what they wait for.
    assert (
        "retrying  fetch_rates: attempt 1/3 failed (exited with status 1); next in 0.25s\n"
        in process.stdout
    )
    assert "waiting   fetch_rates: for resource net (2/2 in use)\n" in process.stdout
    # The summary lists what did not succeed and counts the rest.
    assert "\njob          status     attempts  exit  duration  why\n" in process.stdout
    assert "\ngeocode      timed_out  1         -15   " in process.stdout
    assert "\nmap_regions  skipped    0         -     -         geocode did not succeed\n" in (
        process.stdout
    )
    assert "\nclean " not in process.stdout
    summary = process.stdout.split("\n\n")[-1]
    assert summary.startswith("slowest: ")
    assert "\n9 jobs: 7 succeeded, 1 timed_out, 1 skipped in " in summary
    assert summary.endswith(f": succeeded\nreport: {html_path}\n")
    page = html_path.read_text()
    assert page.count('<rect class="attempt ') == 9
    assert "<script" not in page


def test_failure_exits_1_and_skips_dependents(tmp_path: Path) -> None:
    """A failed job makes exit 1; its dependents are skipped, independent jobs still run."""
    path = write(
        tmp_path,
        f"""
        [jobs.bad]
        cmd = ["{PY}", "-c", "import sys; print('oops', file=sys.stderr); sys.exit(4)"]
        [jobs.child]
        cmd = ["true"]
        after = ["bad"]
        [jobs.grandchild]
        cmd = ["true"]
        after = ["child"]
        [jobs.independent]
        cmd = ["true"]
        [jobs.missing]
        cmd = ["trine-no-such-program"]
        optional = true
        """,
    )
    report_path = tmp_path / "r.json"
    process = trine(tmp_path, "run", str(path), "--json", str(report_path))
    assert process.returncode == 1
    jobs = json.loads(report_path.read_text())["jobs"]
    assert {name: job["status"] for name, job in jobs.items()} == {
        "bad": "failed",
        "child": "skipped",
        "grandchild": "skipped",
        "independent": "succeeded",
        "missing": "error",
    }
    assert jobs["bad"]["returncode"] == 4
    assert jobs["bad"]["error"] == "exited with status 4"
    assert jobs["grandchild"]["skipped_because"] == "bad"
    assert "--- bad: last output ---\noops\n" in process.stdout
    assert process.stdout.endswith(": failed\n")


@pytest.mark.skipif(not hasattr(signal, "SIGRTMIN"), reason="no real-time signals here")
def test_job_killed_by_a_real_time_signal_is_failed(tmp_path: Path) -> None:
    """Regression: a job killed by SIGRTMIN+6 is failed, named so, and logged with the number."""
    path = write(
        tmp_path,
        f"""
        [jobs.rt]
        cmd = ["{PY}", "-c", "import os, signal; os.kill(os.getpid(), signal.SIGRTMIN + 6)"]
        [jobs.other]
        cmd = ["true"]
        """,
    )
    report_path, joblog = tmp_path / "r.json", tmp_path / "j.log"
    process = trine(tmp_path, "run", str(path), "--json", str(report_path), "--joblog", str(joblog))
    assert process.returncode == 1, process.stdout + process.stderr
    jobs = json.loads(report_path.read_text())["jobs"]
    assert (jobs["rt"]["status"], jobs["other"]["status"]) == ("failed", "succeeded")
    assert jobs["rt"]["returncode"] == -(signal.SIGRTMIN + 6)
    assert jobs["rt"]["error"] == "killed by SIGRTMIN+6"
    [logged] = [json.loads(line) for line in joblog.read_text().splitlines() if '"rt"' in line]
    assert (logged["exit_code"], logged["signal"]) == (None, signal.SIGRTMIN + 6)


def test_job_that_cannot_run_shows_why(tmp_path: Path) -> None:
    """Regression (issue 11): an error job's message is shown and reported, not just `error`."""
    path = write(
        tmp_path,
        """
        [jobs.missing]
        cmd = ["trine-no-such-program-xyz"]
        [jobs.unlogged]
        cmd = ["echo", "x"]
        [jobs.fine]
        cmd = ["echo", "fine"]
        """,
    )
    logs = tmp_path / "logs"
    (logs / "unlogged.stdout").mkdir(parents=True)
    report_path = tmp_path / "r.json"
    process = trine(
        tmp_path,
        "run",
        "--progress",
        "plain",
        str(path),
        "--logs",
        str(logs),
        "--json",
        str(report_path),
    )
    assert process.returncode == 1
    jobs = json.loads(report_path.read_text())["jobs"]
    missing = "cannot start: [Errno 2] No such file or directory: 'trine-no-such-program-xyz'"
    unlogged = f"cannot write logs: [Errno 21] Is a directory: '{logs / 'unlogged.stdout'}'"
    assert {name: (job["status"], job["error"]) for name, job in jobs.items()} == {
        "missing": ("error", missing),
        "unlogged": ("error", unlogged),
        "fine": ("succeeded", None),
    }
    assert f"error     missing ({missing})" in process.stdout
    assert f"error     unlogged ({unlogged})" in process.stdout
    assert (logs / "fine.stdout").read_text() == "fine\n"


def test_fail_fast_cancels_the_rest(tmp_path: Path) -> None:
    """With fail_fast, the first failure stops running jobs; they are reported cancelled."""
    path = write(
        tmp_path,
        f"""
        [run]
        fail_fast = true
        kill_grace = 0.5
        [jobs.slow]
        cmd = ["{PY}", "-c", "import time; time.sleep(30)"]
        [jobs.bad]
        cmd = ["{PY}", "-c", "import sys, time; time.sleep(0.2); sys.exit(1)"]
        [jobs.later]
        cmd = ["true"]
        after = ["slow"]
        """,
    )
    report_path = tmp_path / "r.json"
    process = trine(tmp_path, "run", str(path), "--json", str(report_path))
    assert process.returncode == 1
    report = json.loads(report_path.read_text())
    assert report["outcome"] == "failed (halted: 1 job failed, --halt now,fail=1)"
    assert {name: job["status"] for name, job in report["jobs"].items()} == {
        "slow": "cancelled",
        "bad": "failed",
        "later": "cancelled",
    }


def test_retries_and_timeouts_from_the_run_table(tmp_path: Path) -> None:
    """[run] timeout and retries apply to every job without its own."""
    path = write(
        tmp_path,
        f"""
        [run]
        timeout = 0.3
        retries = 1
        kill_grace = 0.2
        [jobs.hang]
        cmd = ["{PY}", "-c", "import time; time.sleep(30)"]
        [jobs.quick]
        cmd = ["{PY}", "-c", "import time; time.sleep(30)"]
        timeout = 0.1
        retries = 0
        """,
    )
    report_path = tmp_path / "r.json"
    process = trine(tmp_path, "run", str(path), "--json", str(report_path))
    assert process.returncode == 1
    jobs = json.loads(report_path.read_text())["jobs"]
    assert (jobs["hang"]["status"], jobs["hang"]["attempts"]) == ("timed_out", 2)
    assert (jobs["quick"]["status"], jobs["quick"]["error"]) == (
        "timed_out",
        "timed out after 0.1 s",
    )


def test_admission_settings_and_limit_override(tmp_path: Path) -> None:
    """[run] max_cpu_percent/min_free_memory admit jobs on an idle-enough machine; --limit wins."""
    path = write(
        tmp_path,
        f"""
        [run]
        limit = 4
        max_cpu_percent = 100
        min_free_memory = 0
        [jobs.a]
        cmd = ["{PY}", "-c", "import time; time.sleep(0.1)"]
        [jobs.b]
        cmd = ["{PY}", "-c", "import time; time.sleep(0.1)"]
        """,
    )
    report_path = tmp_path / "r.json"
    process = trine(tmp_path, "run", "--limit", "1", str(path), "--json", str(report_path))
    assert process.returncode == 0, process.stderr
    jobs = json.loads(report_path.read_text())["jobs"]
    assert jobs["a"]["finished_at"] <= jobs["b"]["started_at"]


def test_rich_progress_renders(tmp_path: Path) -> None:
    """--progress rich draws the live display and a summary table, even into a pipe."""
    path = write(tmp_path, '[jobs.hello]\ncmd = ["echo", "hi"]\n')
    process = trine(tmp_path, "run", "--progress", "rich", str(path))
    assert process.returncode == 0, process.stderr
    assert "hello" in process.stdout
    assert "1 jobs: 1 succeeded in" in process.stdout


async def test_ctrl_c_terminates_children_and_writes_the_report(tmp_path: Path) -> None:
    """SIGINT to `trine run`: exit 130, running children gone, report written."""
    pid_file = tmp_path / "child.pid"
    code = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    path = write(
        tmp_path,
        f"""
        [run]
        kill_grace = 0.5
        [jobs.long]
        cmd = ["{PY}", "-c", "{code}", "{pid_file}"]
        [jobs.next]
        cmd = ["true"]
        after = ["long"]
        [jobs.quick]
        cmd = ["true"]
        """,
    )
    report_path = tmp_path / "r.json"
    process = await trio.lowlevel.open_process(
        [PY, "-m", "trine", "run", str(path), "--json", str(report_path)],
        env=cli_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with trio.fail_after(20):
            while not (pid_file.exists() and pid_file.read_text()):  # noqa: ASYNC110  # another process
                await trio.sleep(0.02)
        child = int(pid_file.read_text())
        process.send_signal(signal.SIGINT)
        with trio.fail_after(20):
            returncode = await process.wait()
    finally:
        if process.returncode is None:  # only if the test failed before trine exited
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
    assert returncode == 130
    with contextlib.suppress(psutil.NoSuchProcess):  # gone, or a zombie of a non-reaping init
        assert psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    report = json.loads(report_path.read_text())
    assert report["outcome"] == "interrupted by SIGINT"
    assert report["exit_code"] == 130
    statuses = {name: job["status"] for name, job in report["jobs"].items()}
    assert statuses == {"long": "cancelled", "next": "cancelled", "quick": "succeeded"}
    long = report["jobs"]["long"]
    assert long["started_at"] is not None
    # A job stopped while it ran keeps its attempt and the return code it ended with.
    assert (long["attempts"], long["returncode"]) == (1, -15)
    assert long["error"] == "stopped (interrupted by SIGINT): killed by SIGTERM"
    assert [entry["status"] for entry in report["timeline"] if entry["id"] == "long"] == [
        "cancelled"
    ]
    assert report["jobs"]["next"]["started_at"] is None
    assert report["jobs"]["next"]["error"] == "not started: long was stopped"


def test_main_requires_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`trine` alone prints usage and exits 2 (argparse)."""
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage: trine" in capsys.readouterr().err


@given(
    st.integers(min_value=1, max_value=8).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=16),
        )
    )
)
def test_cycles_are_found_and_waves_respect_dependencies(
    graph: tuple[int, list[tuple[int, int]]],
) -> None:
    """Any dependency graph: a real cycle is named, or every job's wave follows its deps'."""
    n, edges = graph
    after: dict[str, list[str]] = {f"j{i}": [] for i in range(n)}
    for job, dep in edges:
        if job != dep and f"j{dep}" not in after[f"j{job}"]:
            after[f"j{job}"].append(f"j{dep}")
    data = {"jobs": {name: {"cmd": ["true"], "after": deps} for name, deps in after.items()}}
    # Kahn's algorithm decides whether there is a cycle.
    remaining = {name: set(deps) for name, deps in after.items()}
    while True:
        free = [name for name, deps in remaining.items() if not deps]
        if not free:
            break
        for name in free:
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(free)
    try:
        jobs_file = parse_jobs(data, path="jobs.toml", base=Path("/"))
    except JobsFileError as exc:
        assert remaining, "a cycle was reported in an acyclic graph"
        [problem] = exc.problems
        cycle = problem.removeprefix("cycle: ").split(" -> ")
        assert cycle[0] == cycle[-1]
        assert len(set(cycle[:-1])) == len(cycle) - 1
        for job, dep in itertools.pairwise(cycle):
            assert dep in after[job]
    else:
        assert not remaining, "a cyclic graph was accepted"
        wave_of = {name: index for index, wave in enumerate(waves(jobs_file.jobs)) for name in wave}
        assert set(wave_of) == set(after)
        for name, deps in after.items():
            assert all(wave_of[dep] < wave_of[name] for dep in deps)
            assert wave_of[name] == 0 or any(wave_of[dep] == wave_of[name] - 1 for dep in deps)
