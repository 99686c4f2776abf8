"""The jobs file: matrices, halt policies and the up-to-date rule, as properties of logic."""

from __future__ import annotations

import itertools
import math
import os
import shlex
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trine._cli._up_to_date import freshness, is_up_to_date
from trine._jobs_file import HaltPolicy, JobsFileError, matrix_id, parse_halt, parse_jobs


def _parse(jobs: dict[str, Any], **top: Any) -> dict[str, Any]:
    return dict(parse_jobs({"jobs": jobs, **top}, path="jobs.toml", base=Path("/")).jobs)


def _problems(jobs: dict[str, Any], **top: Any) -> list[str]:
    with pytest.raises(JobsFileError) as info:
        parse_jobs({"jobs": jobs, **top}, path="jobs.toml", base=Path("/"))
    return info.value.problems


# ----------------------------------------------------------------------------
# Matrices

_VALUES = st.lists(
    st.one_of(
        # No NUL: a matrix value may be put in a command, and the checks refuse one there.
        st.text(
            st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\0"),
            min_size=1,
            max_size=6,
        ),
        st.integers(-5, 50),
        st.booleans(),
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda value: str(value).lower() if isinstance(value, bool) else str(value),
)
_MATRICES = st.dictionaries(
    st.sampled_from(["os", "py", "target", "arch"]), _VALUES, min_size=1, max_size=3
)


def _text(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@given(_MATRICES)
def test_a_matrix_is_one_job_per_combination(matrix: dict[str, list[object]]) -> None:
    """Any matrix: one job per combination, in order, each with its values substituted,
    and a dependency on the table's name stands for every one of them."""
    placeholders = " ".join(f"{{{key}}}" for key in matrix)
    table = {"cmd": ["echo", placeholders], "matrix": matrix, "env": {"V": placeholders}}
    jobs_table = {"build": table, "after": {"cmd": ["true"], "after": ["build"]}}
    combos = list(itertools.product(*matrix.values()))
    ids = [
        matrix_id("build", dict(zip(matrix, map(_text, combo), strict=True))) for combo in combos
    ]
    if len(set(ids)) < len(ids):
        # Values that differ only in characters an id cannot hold make one id: refused.
        assert any("which is already taken" in problem for problem in _problems(jobs_table))
        return
    jobs = _parse(jobs_table)
    combos = list(itertools.product(*matrix.values()))
    built = [job for job in jobs.values() if job.group == "build"]
    assert len(built) == math.prod(len(values) for values in matrix.values()) == len(combos)
    for job, combo in zip(built, combos, strict=True):
        values = [_text(value) for value in combo]
        assert dict(job.matrix) == dict(zip(matrix, values, strict=True))
        assert job.argv == ("echo", " ".join(values))
        assert job.env == {"V": " ".join(values)}
        assert job.name == matrix_id("build", job.matrix)
    assert jobs["after"].after == tuple(job.name for job in built)


def test_matrix_ids_and_paired_dependencies() -> None:
    """Ids are name.value...; `after = ["build.{os}"]` pairs each job with its own."""
    jobs = _parse(
        {
            "build": {"cmd": ["make", "{os}"], "matrix": {"os": ["linux", "mac os"]}},
            "test": {
                "cmd": "test {os}",
                "shell": True,
                "matrix": {"os": ["linux", "mac os"]},
                "after": ["build.{os}"],
            },
        }
    )
    assert list(jobs) == ["build.linux", "build.mac_os", "test.linux", "test.mac_os"]
    assert jobs["build.mac_os"].argv == ("make", "mac os")
    # In a shell command the value is quoted, as GNU parallel does.
    assert jobs["test.mac_os"].argv == f"test {shlex.quote('mac os')}"
    assert jobs["test.mac_os"].after == ("build.mac_os",)


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        (
            {"a": {"cmd": ["x"], "matrix": {"1key": ["a"], "k": []}}},
            [
                "jobs.a.matrix.'1key': a matrix key may only contain letters, digits and '_' "
                "(not starting with a digit)",
                "jobs.a.matrix.k: must be a non-empty array of strings, numbers or booleans, "
                "got an array",
            ],
        ),
        (
            {"a": {"cmd": ["x"], "matrix": {"k": ["v", "v"]}}},
            ["jobs.a.matrix.k: value 'v' is listed twice"],
        ),
        (
            {"a": {"cmd": ["x"], "matrix": {}}},
            ["jobs.a.matrix: must not be empty: give each key an array of values"],
        ),
        (
            {"a": {"cmd": ["x"], "matrix": {"k": ["b"]}}, "a.b": {"cmd": ["x"]}},
            ["jobs.a.b: 'a.b' is already the id of a matrix job"],
        ),
        (
            {"a": {"cmd": ["x"], "matrix": {"k": ["b"]}, "after": ["a"]}},
            ["jobs.a.after: a job cannot run after itself"],
        ),
        (
            {
                "a": {"cmd": ["x"], "matrix": {"k": ["1", "2"]}},
                "b": {"cmd": ["x"], "matrix": {"k": ["1", "3"]}, "after": ["a.{k}"]},
            },
            ["jobs.b.after: unknown job 'a.3' (from 'a.{k}') (did you mean 'a.2'?)"],
        ),
    ],
)
def test_matrix_problems(jobs: dict[str, Any], expected: list[str]) -> None:
    """Each mistake in a matrix is named with its path."""
    assert _problems(jobs) == expected


# ----------------------------------------------------------------------------
# Halt policies


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("never", None),
        ("soon,fail=3", HaltPolicy("soon", "fail", 3, None)),
        ("now,fail=10%", HaltPolicy("now", "fail", None, 10.0)),
        ("now,success=1", HaltPolicy("now", "success", 1, None)),
        ("soon,done=50%", HaltPolicy("soon", "done", None, 50.0)),
    ],
)
def test_halt_policies_read_as_gnu_parallel_writes_them(
    text: str, policy: HaltPolicy | None
) -> None:
    """--halt and [run] halt: never, or when,why=count or percentage."""
    assert parse_halt(text) == policy
    if policy is not None:
        assert str(policy) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", r"^must be 'never' or WHEN,WHY=VALUE"),
        ("later,fail=1", r"^must be 'never' or WHEN,WHY=VALUE"),
        ("soon,oops=1", r"^the condition must be fail, success or done, got 'oops'$"),
        (
            "soon,fail=0",
            r"^the value must be a count >= 1 or a percentage in \(0%, 100%\], got '0'$",
        ),
        (
            "now,fail=150%",
            r"^the value must be a count >= 1 or a percentage in \(0%, 100%\], got '150%'$",
        ),
        ("now,fail=x", r"got 'x'$"),
    ],
)
def test_bad_halt_policies(text: str, message: str) -> None:
    """A halt policy that cannot be read says what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_halt(text)


@given(st.floats(0.01, 100), st.integers(1, 10_000))
def test_a_percentage_halts_once_that_share_of_jobs_is_counted(percent: float, total: int) -> None:
    """fail=P%: the threshold is the smallest count that is at least P% of the jobs (>= 1)."""
    threshold = HaltPolicy("soon", "fail", None, percent).threshold(total)
    assert threshold >= 1
    assert threshold / total >= percent / 100 - 1e-9 or threshold == 1
    assert threshold == 1 or (threshold - 1) / total < percent / 100


def test_fail_fast_is_halt_now_on_the_first_failure() -> None:
    """fail_fast = true in [run] reads as the policy now,fail=1."""
    jobs_file = parse_jobs(
        {"run": {"fail_fast": True}, "jobs": {"a": {"cmd": ["x"]}}}, path="j", base=Path("/")
    )
    assert jobs_file.run.halt == HaltPolicy("now", "fail", 1, None)


# ----------------------------------------------------------------------------
# Up to date


_TIMES = st.lists(st.integers(0, 10), max_size=5)


@given(_TIMES, st.lists(st.one_of(st.none(), st.integers(0, 10)), max_size=5))
def test_up_to_date_means_every_output_newer_than_every_input(
    inputs: list[int], outputs: list[int | None]
) -> None:
    """Any modification times: up to date iff there are outputs, none missing, and the
    oldest is strictly newer than the newest input."""
    expected = bool(outputs) and None not in outputs
    if expected:
        expected = min(t for t in outputs if t is not None) > max(inputs, default=-1)
    assert is_up_to_date(inputs, outputs) is expected


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.lists(st.integers(1, 5), max_size=3))
def test_freshness_of_real_files(tmp_path: Path, outputs: list[int], inputs: list[int]) -> None:
    """Files whose times are set: freshness agrees with the rule, globs included."""
    for old in tmp_path.iterdir():
        old.unlink()
    for kind, times in (("out", outputs), ("in", inputs)):
        for index, seconds in enumerate(times):
            path = tmp_path / f"{kind}{index}.dat"
            path.write_text("")
            os.utime(path, ns=(seconds * 10**9, seconds * 10**9))
    fresh = freshness(str(tmp_path), ["in*.dat"] if inputs else [], ["out*.dat"])
    assert fresh.up_to_date is (min(outputs) > max(inputs, default=0))
    if not inputs:
        assert (
            fresh.reason
            == f"{len(outputs)} output{'s' if len(outputs) > 1 else ''} newer than 0 inputs"
        )


def test_a_missing_output_or_input_is_not_up_to_date(tmp_path: Path) -> None:
    """An output pattern that matches nothing, or an input pattern, means: run it."""
    (tmp_path / "out.txt").write_text("")
    assert (
        freshness(str(tmp_path), [], ["missing.txt"]).reason
        == "no file matches output 'missing.txt'"
    )
    assert (
        freshness(str(tmp_path), ["src/*.c"], ["out.txt"]).reason
        == "no file matches input 'src/*.c'"
    )
    assert freshness(str(tmp_path), [], ["out.txt"]).up_to_date
