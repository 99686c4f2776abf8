"""The project's promises about itself: the README's commands and CI agree."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_commands() -> None:
    """The README starts with the demo command and the test command."""
    demo, tests = _readme_commands()
    assert "examples/" in demo
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_exactly() -> None:
    """``.ci/run`` runs the README's test command as written, so neither can drift."""
    _, tests = _readme_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines


def test_readme_demo_exists() -> None:
    """The demo the README runs is in the repository."""
    demo, _ = _readme_commands()
    script = next(part for part in demo.split() if part.startswith("examples/"))
    assert (ROOT / script).is_file()
