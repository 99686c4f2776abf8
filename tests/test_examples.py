"""The programs in examples/ run and print what their docs say."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

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


EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def run_example(name: str) -> str:
    env = dict(os.environ)
    src = str(pathlib.Path(__file__).parent.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    return completed.stdout


def test_crawler_example_prints_what_the_guide_quotes() -> None:
    """examples/crawler.py stores every non-empty page, dead-letters the failures, and its
    exact fake-clock statistics are the ones docs/guide/pipelines.rst quotes."""
    output = run_example("crawler.py")
    first, second, header, *stages = output.splitlines()
    assert first == "stored 186 rows in 10 batches; 8 pages failed"
    assert second == "took 175 ms of fake time; at most 16 fetches at once"
    assert header.split() == ["stage", "in", "out", "failed", "p50", "ms", "p99", "ms"]
    rows = {line.split()[0]: line.split()[1:] for line in stages}
    assert rows["fetch"] == ["200", "192", "8", "9.95", "20.00"]
    assert rows["parse"] == ["192", "192", "0", "0.00", "0.00"]
    assert rows["non-empty"] == ["192", "186", "0", "0.00", "0.00"]
    assert rows["batch"] == ["186", "10", "0", "15.14", "20.00"]
    assert rows["store"] == ["10", "10", "0", "10.00", "10.00"]
    guide = (EXAMPLES.parent / "docs" / "guide" / "pipelines.rst").read_text()
    assert "\n".join(f"    {line}" for line in output.splitlines()) in guide


def test_services_example_prints_what_the_guide_quotes() -> None:
    """examples/services.py turns 20 author lookups into one batch query, serves the second
    view from the cache and 50 concurrent views from one rendering, with the exact
    fake-clock numbers docs/guide/batcher.rst quotes."""
    output = run_example("services.py")
    assert output.splitlines() == [
        "naive: 20 queries, 200 ms for 20 posts",
        "batched: 1 query, 12 ms (20 lookups -> 7 cache loads -> 1 batch)",
        "cached: 0 queries on the second view",
        "50 concurrent views: 1 rendering, 49 shared it, 1 query",
        "cache: 20 hits, 40 misses, 14 loads",
    ]
    guide = (EXAMPLES.parent / "docs" / "guide" / "batcher.rst").read_text()
    assert "\n".join(f"    {line}" for line in output.splitlines()) in guide


def _report(line: str) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, failures) from one of examples/fleet.py's report lines."""
    words = line.split()
    at = words.index("p50")
    return float(words[at + 1]), float(words[at + 4]), int(words[at + 7].split("/")[0])


def test_fleet_example_shows_what_each_piece_buys() -> None:
    """examples/fleet.py, on the fake clock with real loopback sockets: breakers cut the
    failures, a retry outside the balancer goes elsewhere, hedging at p95 cuts the tail
    within its budget, and cancelled hedges' connections are closed, not reused."""
    output = subprocess.run(
        [sys.executable, str(EXAMPLES / "fleet.py"), "--fake-clock"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    lines = output.splitlines()
    assert lines[0] == "400 requests, 12 at a time, to three servers:"
    reports = {line[:28].strip(): _report(line) for line in lines if " p50 " in line}
    assert list(reports) == [
        "round robin",
        "peak_ewma + breakers",
        "... + a retry elsewhere",
        "... + hedging at p95",
    ]
    round_robin, breakers, retry, hedging = reports.values()
    assert round_robin[2] > 20  # a third of the calls go to the server failing 30 %
    assert breakers[2] < round_robin[2] / 2
    assert breakers[0] < round_robin[0]
    assert retry[2] <= 2
    assert hedging[1] < round_robin[1] / 2  # the p99
    assert hedging[2] <= 2
    hedges = next(line for line in lines if line.startswith("  hedges:")).split()
    assert int(hedges[1]) <= 0.1 * 400 + 10  # the budget's ratio and its reserve
    opened = next(line for line in lines if line.startswith("breakers opened:"))
    assert int(opened.split("flaky ")[1]) >= 1
    closed = lines[-1].split()
    assert closed[0] == "connections:"
    assert int(closed[3]) > 0


def test_site_crawler_example_prints_what_the_guide_quotes() -> None:
    """examples/site_crawler.py fetches all 120 pages through a TaskPool, 2 per host at most,
    retries the 11 flaky ones, and its output is the one docs/guide/taskpool.rst quotes."""
    output = run_example("site_crawler.py")
    assert output.splitlines() == [
        "crawled 120 pages from 3 hosts; 12 links led nowhere",
        "11 flaky fetches retried; at most 6 fetches at once, 2 per host",
        "  docs.example    40 pages, at most 2 at once",
        "  blog.example    40 pages, at most 2 at once",
        "  shop.example    40 pages, at most 2 at once",
        "pool: 132 tasks, 132 finished, 12 failed, 0 dropped",
    ]
    guide = (EXAMPLES.parent / "docs" / "guide" / "taskpool.rst").read_text()
    assert "\n".join(f"    {line}" for line in output.splitlines()) in guide


def screen_left(output: str) -> str:
    """What a terminal shows after *output*: rich's live frames, each erasing the last."""
    lines = [""]
    for token in re.split(r"(\x1b\[\?25[lh]|\x1b\[2K|\x1b\[1A|\r|\n)", output):
        if token == "\n":
            lines.append("")
        elif token == "\x1b[2K":
            lines[-1] = ""
        elif token == "\x1b[1A":
            lines.pop()
        elif token and not token.startswith("\x1b") and token != "\r":
            lines[-1] += token
    return "\n".join(line.rstrip() for line in lines).strip("\n") + "\n"


def test_progress_example_leaves_what_the_guide_quotes() -> None:
    """examples/progress.py: the last frame of each display, as docs/guide/observing.rst shows."""
    guide = (EXAMPLES.parent / "docs" / "guide" / "observing.rst").read_text()
    quoted = re.search(
        r"leave on the screen:\n\n\.\. code-block:: text\n\n((?:    .*\n|\n)+)", guide
    )
    assert quoted is not None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES.parent / "src"), env.get("PYTHONPATH", "")])
    completed = subprocess.run(  # bytes: text mode would turn rich's \r into \n
        [sys.executable, str(EXAMPLES / "progress.py")],
        capture_output=True,
        check=True,
        env=env,
        timeout=60,
    )
    output = completed.stdout.decode()
    assert screen_left(output) == textwrap.dedent(quoted.group(1)).strip("\n") + "\n"
    during = re.search(r"of the pipeline:\n\n\.\. code-block:: text\n\n((?:    .*\n|\n)+)", guide)
    assert during is not None
    drawn = [
        screen_left(re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", frame)) for frame in output.split("\r")
    ]
    assert textwrap.dedent(during.group(1)).strip("\n") + "\n" in drawn
