"""The redis-server fixture itself: without redis-server, skip saying why; in CI, fail."""

from __future__ import annotations

import pathlib

import pytest

TESTS = pathlib.Path(__file__).resolve().parent


@pytest.fixture
def no_redis_server(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytest run in a subprocess whose PATH has no redis-server, with the fixture plugin."""
    pytester.makepyfile(test_needs_redis="def test_needs_redis(redis_server): pass\n")
    empty = pytester.mkdir("bin")
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))


def test_without_redis_server_the_redis_tests_skip_saying_why(
    pytester: pytest.Pytester, no_redis_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside CI a missing redis-server skips, and the reason says how to get one."""
    monkeypatch.delenv("CI", raising=False)
    result = pytester.runpytest_subprocess("-p", "_redis_server", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*redis-server is not installed (apt-get install redis-server)*"])


def test_in_ci_a_missing_redis_server_fails_the_redis_tests(
    pytester: pytest.Pytester, no_redis_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CI=true the same run errors instead: CI must run the Redis tests."""
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-p", "_redis_server")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*and CI must run them*"])
