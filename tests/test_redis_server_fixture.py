"""The redis-server fixture itself: without redis-server, skip saying why; in CI, fail.

The inner runs are in-process (a subprocess would import pytest and its
plugins again, seconds on a loaded machine), with the plugin's view of the
machine patched: no ``redis-server`` found, and ``CI`` set or not.
"""

from __future__ import annotations

import pytest

import _redis_server


@pytest.fixture
def no_redis_server(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """An inner pytest run that needs the server, on a machine where ``which`` found none."""
    pytester.makepyfile(test_needs_redis="def test_needs_redis(redis_server): pass\n")
    monkeypatch.setattr(_redis_server, "REDIS_SERVER", None)


def test_without_redis_server_the_redis_tests_skip_saying_why(
    pytester: pytest.Pytester, no_redis_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside CI a missing redis-server skips, and the reason says how to get one."""
    monkeypatch.setattr(_redis_server, "IN_CI", False)
    result = pytester.runpytest_inprocess("-p", "_redis_server", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*redis-server is not installed (apt-get install redis-server)*"])


def test_in_ci_a_missing_redis_server_fails_the_redis_tests(
    pytester: pytest.Pytester, no_redis_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CI=true the same run errors instead: CI must run the Redis tests."""
    monkeypatch.setattr(_redis_server, "IN_CI", True)
    result = pytester.runpytest_inprocess("-p", "_redis_server")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*and CI must run them*"])


@pytest.mark.parametrize(
    ("value", "in_ci"),
    [("", False), ("0", False), ("false", False), ("true", True), ("1", True), ("TRUE", True)],
)
def test_ci_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, in_ci: bool
) -> None:
    """CI=true (as CI services set it) or 1 means CI; unset, empty, 0 or false do not."""
    monkeypatch.setenv("CI", value)
    assert _redis_server.ci_from_environment() is in_ci
