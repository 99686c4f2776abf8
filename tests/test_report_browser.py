"""The run report in a real browser: headless Chromium renders the example's report.

The DOM Chromium builds (``--dump-dom``) has one bar per attempt of the run
and the critical path marked; the screenshot it takes shows the bars in
their colours. Set ``TRINE_UPDATE_SCREENSHOT=1`` to copy the screenshot to
``docs/_static/run-report.png``, the picture the docs show.

Chromium is Debian's ``chromium`` package, which ``.ci/run`` installs. The
test skips without it, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import html.parser
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from test_cli import PY, ROOT, cli_env

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
_COLOURS = {
    "succeeded": (0x2F, 0x9E, 0x62),
    "failed": (0xD9, 0x45, 0x3D),
    "timed_out": (0xEF, 0x8B, 0x2C),
}


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed, and CI=true: .ci/run installs it with apt-get")
        pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")
    return found


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run(
        [_chromium(), *_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


class _Dom(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bars: list[dict[str, str | None]] = []
        self.critical_rows: list[str] = []
        self.links = 0
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "rect" and "attempt" in classes:
            self.bars.append(found)
        if tag == "rect" and "band" in classes and "critical" in classes:
            self.critical_rows.append(found.get("y") or "")
        if tag == "script":
            self.scripts += 1
        if tag == "link" or found.get("src"):
            self.links += 1


def _pixels(png: bytes) -> tuple[int, int, set[tuple[int, int, int]]]:
    """Width, height and the set of colours of an 8-bit RGB(A) PNG (stdlib only)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, data, width, height, channels = 8, b"", 0, 0, 0
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        body = png[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, interlace) == (8, 0)
            channels = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            data += body
    raw = zlib.decompress(data)
    stride = width * channels
    previous = bytearray(stride)
    colours: set[tuple[int, int, int]] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for index in range(stride):
            left = line[index - channels] if index >= channels else 0
            up = previous[index]
            corner = previous[index - channels] if index >= channels else 0
            if kind == 1:
                line[index] = (line[index] + left) & 0xFF
            elif kind == 2:
                line[index] = (line[index] + up) & 0xFF
            elif kind == 3:
                line[index] = (line[index] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                near = min(
                    (abs(guess - left), 0, left),
                    (abs(guess - up), 1, up),
                    (abs(guess - corner), 2, corner),
                )
                line[index] = (line[index] + near[2]) & 0xFF
        colours.update(tuple(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, colours


def test_the_example_report_renders_in_chromium(tmp_path: Path) -> None:
    """Chromium's DOM has a bar per attempt and the critical path; its screenshot shows them."""
    _chromium()
    page = tmp_path / "run.html"
    report_path = tmp_path / "run.json"
    # Run from the checkout, so that the page's title names examples/jobs.toml as the docs do.
    command = ["run", "examples/jobs.toml", "--report", str(page), "--json", str(report_path)]
    process = subprocess.run(
        [PY, "-m", "trine", *command],
        cwd=ROOT,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    report = json.loads(report_path.read_text())

    dom = _Dom()
    dom.feed(_run_chromium(tmp_path, "--dump-dom", page.as_uri()).stdout)
    timeline = report["timeline"]
    assert len(dom.bars) == len(timeline) == 9
    assert sorted((bar["data-job"], bar["data-attempt"]) for bar in dom.bars) == sorted(
        (entry["id"], str(entry["attempt"])) for entry in timeline
    )
    assert {bar["data-status"] for bar in dom.bars} == {"succeeded", "failed", "timed_out"}
    critical = {bar["data-job"] for bar in dom.bars if "critical" in (bar["class"] or "").split()}
    assert critical == set(report["critical_path"])
    assert len(dom.critical_rows) == len(report["critical_path"])
    assert (dom.scripts, dom.links) == (0, 0)

    screenshot = tmp_path / "run-report.png"
    _run_chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1200,1480", page.as_uri())
    width, height, colours = _pixels(screenshot.read_bytes())
    assert (width, height) == (1200, 1480)
    for status, colour in _COLOURS.items():
        assert colour in colours, f"no {status} bar drawn"
    if os.environ.get("TRINE_UPDATE_SCREENSHOT") == "1":
        shutil.copy(screenshot, ROOT / "docs" / "_static" / "run-report.png")
