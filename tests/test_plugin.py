"""The pytest plugin: trine's fixtures in a fresh pytest session, without a conftest.

Each test writes a small test project with ``pytester`` and runs pytest on it.
The plugin comes from trine's ``pytest11`` entry point (nothing in the project
registers it), in both pytest-trio styles: ``trio_mode = true`` and
``@pytest.mark.trio``.
"""

from __future__ import annotations

import pathlib
import re
import textwrap

import pytest

TRIO_MODE = """
[tool.pytest.ini_options]
trio_mode = true
"""

USES_EVERY_FIXTURE = """
import trio
import trine

async def test_kit({marker_arg}autojump_clock, fake_service, concurrency_probe, timeline):
    service = fake_service(latency=1.0, fail_calls={{2}})

    async def fetch(name):
        with concurrency_probe.track(name):
            timeline.record(f"start {{name}}")
            try:
                await service.call(name)
                timeline.record(f"done {{name}}")
            except ConnectionError:
                timeline.record(f"failed {{name}}")

    await trine.for_each(fetch, ["a", "b", "c"], limit=2)
    assert concurrency_probe.peak == 2
    assert service.statistics().failures == 1
    assert sorted(timeline.labels()[:2]) == ["start a", "start b"]
    assert timeline.events[-1].time == 2.0
"""


def test_fixtures_work_in_trio_mode(pytester: pytest.Pytester) -> None:
    """With trio_mode = true, an async test gets every fixture with no conftest."""
    pytester.makepyprojecttoml(TRIO_MODE)
    pytester.makepyfile(USES_EVERY_FIXTURE.format(marker_arg=""))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_fixtures_work_with_the_trio_marker(pytester: pytest.Pytester) -> None:
    """Without trio_mode, ``@pytest.mark.trio`` tests get the same fixtures."""
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\n")
    source = USES_EVERY_FIXTURE.format(marker_arg="").replace(
        "async def test_kit", "import pytest\n\n@pytest.mark.trio\nasync def test_kit"
    )
    pytester.makepyfile(source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_no_waits_fixture_in_a_fresh_session(pytester: pytest.Pytester) -> None:
    """The no_waits fixture switches deliberate waits off for the test that asks for it."""
    pytester.makepyprojecttoml(TRIO_MODE)
    pytester.makepyfile(
        """
        from trine import _waits

        async def test_with(no_waits):
            assert _waits.deliberate(30.0) == 0.0

        async def test_without():
            assert _waits.deliberate(30.0) == 30.0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_failed_timeline_prints_its_diff(pytester: pytest.Pytester) -> None:
    """The report of a failing assert_matches shows expected and recorded lines."""
    pytester.makepyprojecttoml(TRIO_MODE)
    pytester.makepyfile(
        """
        import trio

        async def test_story(autojump_clock, timeline):
            timeline.record("start a")
            await trio.sleep(1.500005)
            timeline.record("retry a")
            timeline.assert_matches([(0.0, "start a"), (1.5, "retry a")])
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the timeline does not match (- expected, + recorded):",
            "*-         1.5  retry a",
            "*+    1.500005  retry a",
        ]
    )


def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    """``-p no:trine`` unloads it: the fixtures are gone."""
    pytester.makepyfile(
        """
        def test_needs_it(timeline):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:trine")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'timeline' not found*"])


def test_the_plugin_is_registered_by_entry_point() -> None:
    """trine's distribution declares the plugin under pytest11, named ``trine``."""
    import importlib.metadata

    points = importlib.metadata.entry_points(group="pytest11", name="trine")
    assert [point.value for point in points] == ["trine.testing._pytest_plugin"]


def test_the_plugin_is_loaded_in_this_session(request: pytest.FixtureRequest) -> None:
    """trine's own tests run with the plugin the entry point installed."""
    plugin = request.config.pluginmanager.get_plugin("trine")
    assert plugin is not None
    assert plugin.__name__ == "trine.testing._pytest_plugin"


# -- the testing guide's examples run as written ----------------------------------

GUIDE = pathlib.Path(__file__).resolve().parent.parent / "docs" / "guide" / "testing.rst"


def _guide_modules() -> list[str]:
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", GUIDE.read_text(), re.M)
    return [textwrap.dedent(block) for block in blocks]


def test_the_testing_guide_has_its_examples() -> None:
    """Each example is a test module (so the test below runs all of them)."""
    modules = _guide_modules()
    assert len(modules) == 10
    assert all("async def test_" in module for module in modules)


def test_the_testing_guide_examples_pass(pytester: pytest.Pytester) -> None:
    """Every ``code-block:: python`` in docs/guide/testing.rst passes as a test module,
    in a project configured with the guide's lines and nothing else."""
    pytester.makepyprojecttoml(TRIO_MODE)
    modules = _guide_modules()
    pytester.makepyfile(**{f"test_guide_{n}": source for n, source in enumerate(modules)})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(modules))
