"""The README's tour is examples/tour.py as it is, and its output is what the program prints."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _tour_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## A tour\n", 1)[1].split("\n## ", 1)[0]


def _fenced(section: str, language: str) -> str:
    return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_readme_tour_is_the_example_program() -> None:
    """The README's python block is examples/tour.py after its docstring, unchanged."""
    source = (ROOT / "examples" / "tour.py").read_text()
    program = source.split('"""', 2)[2].lstrip("\n")
    assert _fenced(_tour_section(), "python") == program


def test_the_tour_prints_what_the_readme_shows() -> None:
    """examples/tour.py runs on the fake clock and prints the README's output, exactly."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tour.py")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    assert completed.stdout == _fenced(_tour_section(), "text")
    assert "pipeline: stored 100 rows in 4 batches" in completed.stdout


def test_the_readme_shows_the_library_demo_command() -> None:
    """The library demo has its own command block, as visible as the CLI demo's."""
    readme = (ROOT / "README.md").read_text()
    demo = readme.split("### The library demo\n", 1)[1]
    assert _fenced(demo, "sh").strip() == ".venv/bin/python examples/demo.py"
    assert (ROOT / "examples" / "demo.py").is_file()
