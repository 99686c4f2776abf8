"""docs/guide/observing.rst shows what its programs really print."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

from _extras import require

ROOT = pathlib.Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide" / "observing.rst"

require("prometheus_client", extra="prometheus")


def _block_after(marker: str, kind: str = "text") -> str:
    """The body of the first ``code-block:: kind`` after *marker* in the guide."""
    text = GUIDE.read_text()
    rest = text[text.index(marker) :]
    found = re.search(rf"^\.\. code-block:: {kind}\n\n((?:    .*\n|\n)+)", rest, re.M)
    assert found is not None, marker
    return textwrap.dedent(found.group(1)).strip("\n") + "\n"


def _run(path: pathlib.Path, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def _workers_in_any_order(text: str) -> str:
    """Which fetch worker sleeps and which waits changes from run to run: sort them."""
    lines = text.splitlines()
    indexes = [n for n, line in enumerate(lines) if re.search(r"fetch worker \d+: ", line)]
    described = sorted(lines[n].split(": ", 1)[1] for n in indexes)
    for n, description in zip(indexes, described, strict=True):
        prefix = re.sub(r"fetch worker \d+: .*", "fetch worker N: ", lines[n])
        lines[n] = prefix + description
    return "\n".join(lines) + "\n"


def test_the_example_prints_what_the_guide_quotes() -> None:
    """examples/observing.py: the tree, the stalls and the scrape, as the guide shows them."""
    printed = _run(ROOT / "examples" / "observing.py", ROOT).stdout
    quoted = _block_after("It prints")
    assert _workers_in_any_order(printed) == _workers_in_any_order(quoted)


def test_the_stall_example_prints_what_the_guide_quotes(tmp_path: pathlib.Path) -> None:
    """The guide's app.py logs one warning per handler, as quoted (durations aside)."""
    (tmp_path / "app.py").write_text(_block_after("saved as ``app.py``", "python"))
    logged = _run(tmp_path / "app.py", tmp_path).stderr
    quoted = _block_after("prints (the durations are real time")

    def without_durations(text: str) -> list[str]:
        return sorted(re.sub(r"for \d+\.\d{3} s", "for N s", line) for line in text.splitlines())

    assert without_durations(logged) == without_durations(quoted)
    for seconds in re.findall(r"for (\d+\.\d{3}) s", logged):
        assert float(seconds) >= 0.2
