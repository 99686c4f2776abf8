"""Every program in examples/ runs and prints what it promises."""

from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def test_demo_example_runs() -> None:
    """The README's demo fetches from its local service, hedges, and survives an outage."""
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), "--requests", "40"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "fetching 40 records" in out
    assert "trine.map_all(limit=20)" in out
    assert "each call hedged after 50 ms" in out
    assert "answered by the fallback" in out
    assert "closed->open" in out
    assert "now closed" in out
