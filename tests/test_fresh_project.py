"""The getting-started test passes when copied into a new project.

A newcomer copies the guide's ``pyproject.toml`` lines and its test into an
empty project and runs pytest. This test does exactly that, with no network:
it builds trine's wheel from this checkout, installs it (``--no-deps``) into a
new virtualenv that has nothing else of its own, makes the test tools
(pytest, pytest-trio, trio and their dependencies) visible to it from the
environment running this suite, writes the guide's config and test into a
temporary directory, and runs pytest there in a subprocess. trine's pytest
plugin must come from the installed wheel's entry point: nothing in the
project registers it.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import sysconfig
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide" / "start.rst"
PIP = [sys.executable, "-m", "pip", "--quiet", "--no-input"]


def _blocks(language: str) -> list[str]:
    """The guide's ``code-block:: <language>`` bodies, dedented, in order."""
    text = GUIDE.read_text()
    pattern = rf"^( *)\.\. code-block:: {language}\n\n((?:\1    .*\n|\n)+)"
    return [textwrap.dedent(body).strip() + "\n" for _, body in re.findall(pattern, text, re.M)]


def _run(argv: list[str], cwd: pathlib.Path, env: dict[str, str]) -> str:
    completed = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A new virtualenv with trine's wheel installed, and the test tools visible."""
    work = tmp_path_factory.mktemp("fresh")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    wheels = work / "wheels"
    _run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), str(ROOT)],
        work,
        env,
    )
    (wheel,) = wheels.glob("trine-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], work, env)
    python = venv / "bin" / "python"
    _run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        work,
        env,
    )
    # The test tools, as `pip install pytest pytest-trio` would give them: this
    # suite's site-packages appended to the new one's path. Appended, so the
    # wheel just installed is the trine that is imported (a .pth line adds a
    # directory only; the editable install's own .pth there is not run).
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], work, env
    ).strip()
    (pathlib.Path(site) / "test_tools.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = _run([str(python), "-c", "import trine; print(trine.__file__)"], work, env)
    assert where.startswith(str(venv)), where
    return python


@pytest.mark.parametrize(
    ("style", "config"),
    [("trio_mode", True), ("marker", False)],
)
def test_getting_started_test_passes_in_a_new_project(
    fresh_python: pathlib.Path, tmp_path: pathlib.Path, style: str, config: bool
) -> None:
    """The guide's pyproject.toml lines and its test, in an empty project: pytest passes.
    The marker-style test runs with no trio_mode at all."""
    (toml,) = _blocks("toml")
    trio_mode_test, marker_test = (block for block in _blocks("python") if "def test_" in block)
    (tmp_path / "pyproject.toml").write_text(toml if config else "[tool.pytest.ini_options]\n")
    (tmp_path / "tests").mkdir()
    test = trio_mode_test if style == "trio_mode" else marker_test
    (tmp_path / "tests" / "test_timing.py").write_text(test)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    out = _run([str(fresh_python), "-m", "pytest", "-p", "no:cacheprovider"], tmp_path, env)
    assert re.search(r"^=+ 1 passed in [\d.]+s =+$", out, re.M), out


def test_the_guide_shows_the_config_and_both_styles() -> None:
    """start.rst has the trio_mode lines and the two versions of the first test."""
    assert _blocks("toml") == ["[tool.pytest.ini_options]\ntrio_mode = true\n"]
    tests = [block for block in _blocks("python") if "def test_" in block]
    assert len(tests) == 2
    assert "@pytest.mark.trio" in tests[1]
    assert "@pytest.mark.trio" not in tests[0]
