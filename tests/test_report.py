"""Run reports: the numbers, the critical path, JSON and the HTML page (trine.run_report)."""

from __future__ import annotations

import html.parser
import itertools
import math
import sys

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import trine
from trine import ReportAttempt, ReportJob, RunReport


async def _sleep(seconds: float, *deps: object) -> float:
    await trio.sleep(seconds)
    return seconds


async def _fail(seconds: float, *deps: object) -> None:
    await trio.sleep(seconds)
    raise OSError("disk full")


async def test_graph_report_has_exact_times_on_the_fake_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A TaskGraph run's report: holds, waits for a resource, the critical path, exactly."""
    graph = trine.TaskGraph(limit=2, resources={"db": trine.WeightedSemaphore(1)})
    a = graph.add(_sleep, 1.0, name="a")
    b = graph.add(_sleep, 2.0, name="b", resources=["db"])
    c = graph.add(_sleep, 1.0, deps=[a], name="c", resources=["db"])
    graph.add(_sleep, 0.5, deps=[b, c], name="d")
    graph.add(_fail, 0.25, name="e")
    start = trio.current_time()
    result = await graph.run()
    report = trine.run_report(
        result,
        limit=2,
        resources={"db": trine.WeightedSemaphore(1)},
        uses={"b": ["db"], "c": ["db"]},
    )
    assert report.started_at == start
    assert report.total_time == 3.5
    assert report.critical_path() == ("a", "c", "d")
    origin = [(time - start, count) for time, count in report.concurrency()]
    # a and b at 0 (e waits for a slot), e at 1 for 0.25 s, c at 2 once b frees db, d at 3.
    assert origin == [(0.0, 2), (1.25, 1), (3.5, 0)]
    assert [(time - start, held) for time, held in report.resource_use()["db"]] == [
        (0.0, 1),
        (3.0, 0),
    ]
    summary = report.summary()
    assert summary.counts == {"succeeded": 4, "failed": 1}
    assert summary.success_rate == 0.8
    assert summary.critical_path_time == 2.5
    assert summary.held_time == 1.0 + 2.0 + 1.0 + 0.5 + 0.25
    assert summary.mean_concurrency == pytest.approx(summary.held_time / 3.5)
    assert summary.utilisation == pytest.approx(summary.held_time / 3.5 / 2)
    # e waited a second for a slot; c waited from 1 to 2 for db, slots free from 1.25.
    assert summary.waiting_for_slot == 1.25
    assert summary.waiting_for_resources == 0.75
    assert summary.resources[0].waited == 0.75
    assert summary.slowest[0] == ("b", 2.0)
    [failed] = [job for job in report.jobs if job.status == "failed"]
    assert failed.error == "OSError: disk full"


async def test_graph_report_without_resources_given(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Without capacities a node's resources cannot be drawn: uses naming one is refused."""
    graph = trine.TaskGraph()
    graph.add(_sleep, 1.0, name="a")
    result = await graph.run()
    assert [job.id for job in trine.run_report(result).jobs] == ["a"]
    with pytest.raises(ValueError, match=r"^resources: job 'a' uses 'db', which has no capacity"):
        trine.run_report(result, uses={"a": ["db"]})


async def test_run_commands_results_give_a_bar_per_attempt() -> None:
    """Each CommandResult's history becomes its bars: a retried command has two."""
    results = await trine.run_commands(
        [
            [sys.executable, "-c", "pass"],
            trine.Command([sys.executable, "-c", "import sys; sys.exit(3)"], id="bad"),
            ["trine-no-such-program"],
        ],
        limit=2,
        retries=1,
    )
    assert [len(result.history) for result in results] == [1, 2, 1]
    bad = results[1].history
    assert bad[0].finished_at <= bad[1].started_at
    assert [attempt.returncode for attempt in bad] == [3, 3]
    report = trine.run_report(results, limit=2)
    assert [(a.job, a.number, a.status) for a in report.attempts] == [
        ("0", 1, "succeeded"),
        ("bad", 1, "failed"),
        ("bad", 2, "failed"),
        ("2", 1, "error"),
    ]
    assert report.summary().retries == 1
    timeline = report.to_dict()["timeline"]
    assert min(entry["start"] for entry in timeline) == 0.0
    assert {entry["id"] for entry in timeline} == {"0", "bad", "2"}


def _report() -> RunReport:
    jobs = [
        ReportJob("fetch", "succeeded", started_at=0.0, finished_at=2.0, command="get <url>"),
        ReportJob("lint", "failed", started_at=0.0, finished_at=0.5, error="exited with status 1"),
        ReportJob("build", "succeeded", after=["fetch"], started_at=2.5, finished_at=4.0),
        ReportJob("ship", "skipped", after=["lint"], finished_at=0.5),
        ReportJob("docs", "up_to_date", started_at=1.0, finished_at=1.0),
    ]
    attempts = [
        ReportAttempt("fetch", 1, 0.0, 0.8, "failed", returncode=1, command="get <url>"),
        ReportAttempt("fetch", 2, 1.0, 2.0, "succeeded", returncode=0, command="get <url>"),
        ReportAttempt("lint", 1, 0.0, 0.5, "failed", returncode=1),
        ReportAttempt("build", 1, 2.5, 4.0, "succeeded", returncode=0),
    ]
    return RunReport(jobs, attempts, limit=2, title="nightly <build>", outcome="failed")


class _Svg(html.parser.HTMLParser):
    """The attempt bars, critical marks and scripts of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[dict[str, str | None]] = []
        self.critical_labels: list[str] = []
        self.scripts = 0
        self.links: list[str] = []
        self._label: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "rect" and "attempt" in classes:
            self.bars.append(found)
        if tag == "text" and "label" in classes and "critical" in classes:
            self._label = []
        if tag == "script":
            self.scripts += 1
        for name in ("href", "src"):
            if found.get(name):
                self.links.append(found[name] or "")

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self._label.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._label is not None:
            self._label = []  # the label's own text follows its <title>
        elif tag == "text" and self._label is not None:
            self.critical_labels.append("".join(self._label))
            self._label = None


def test_html_draws_a_bar_per_attempt_and_marks_the_critical_path() -> None:
    """The page: one bar per attempt, the critical path marked, no script, nothing fetched."""
    report = _report()
    assert report.critical_path() == ("fetch", "build")
    page = report.to_html()
    parser = _Svg()
    parser.feed(page)
    assert [(bar["data-job"], bar["data-attempt"]) for bar in parser.bars] == [
        ("fetch", "1"),
        ("fetch", "2"),
        ("lint", "1"),
        ("build", "1"),
    ]
    critical = [bar["data-job"] for bar in parser.bars if "critical" in (bar["class"] or "")]
    assert critical == ["fetch", "fetch", "build"]
    assert parser.critical_labels == ["◆ fetch", "◆ build"]
    assert parser.scripts == 0
    assert parser.links == []
    assert "http" not in page
    assert "<title>nightly &lt;build&gt;</title>" in page
    assert "$ get &lt;url&gt;" in page  # hover titles are escaped
    assert "fetch · attempt 1 of 2\nfailed\n0s → 0.8s (0.8s)\nexit code 1\n$ get" in page


def test_report_dict_has_the_timeline_and_the_numbers() -> None:
    """to_dict: every attempt with its times from the start, and the dashboard's numbers."""
    data = _report().to_dict()
    assert data["timeline"][0] == {
        "id": "fetch",
        "attempt": 1,
        "start": 0.0,
        "end": 0.8,
        "duration": 0.8,
        "status": "failed",
        "returncode": 1,
        "command": "get <url>",
        "error": None,
        "resources": {},
    }
    assert data["critical_path"] == ["fetch", "build"]
    assert data["summary"]["counts"] == {"succeeded": 2, "up_to_date": 1, "failed": 1, "skipped": 1}
    assert data["summary"]["success_rate"] == 0.75
    assert data["summary"]["retries"] == 1
    jobs = {job["id"]: job for job in data["jobs"]}
    assert jobs["build"]["ready_at"] == 2.0
    assert data["concurrency"][0] == [0.0, 2]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: RunReport([ReportJob("a", "succeeded"), ReportJob("a", "failed")], []),
            r"^jobs: the id 'a' is used twice$",
        ),
        (
            lambda: RunReport([ReportJob("a", "succeeded", after=["b"])], []),
            r"^jobs: 'a' is after 'b', which is not a job$",
        ),
        (
            lambda: RunReport([], [ReportAttempt("a", 1, 0, 1, "succeeded")]),
            r"^attempts: 'a' is not a job of the report$",
        ),
        (
            lambda: ReportAttempt("a", 1, 2, 1, "failed"),
            r"^end must be >= start \(2\.0\), got 1\.0$",
        ),
        (
            lambda: ReportAttempt("a", 1, 0, 1, "skipped"),
            r"^status must be one of 'succeeded', 'failed', 'timed_out', 'error', 'cancelled', "
            r"got 'skipped'$",
        ),
        (
            lambda: ReportJob("a", "succeeded", started_at=2, finished_at=1),
            r"^finished_at must be >= started_at \(2\.0\), got 1\.0$",
        ),
        (
            lambda: RunReport([], [], started_at=2, finished_at=1),
            r"^finished_at must be >= started_at \(2\.0\), got 1\.0$",
        ),
    ],
)
def test_inconsistent_reports_are_refused(make: object, message: str) -> None:
    """A report whose parts do not fit together is a ValueError saying which part."""
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_an_empty_report_renders() -> None:
    """No job at all: zero time, no critical path, a page that says so."""
    report = RunReport([], [])
    assert report.total_time == 0.0
    assert report.summary().success_rate is None
    assert "No job ran." in report.to_html()


@st.composite
def _timelines(draw: st.DrawFn) -> tuple[list[ReportJob], int]:
    """Random jobs with random dependencies, each starting after its dependencies end."""
    count = draw(st.integers(1, 12))
    limit = draw(st.integers(1, 4))
    capacity = draw(st.integers(1, 3))
    jobs: list[ReportJob] = []
    for index in range(count):
        after = draw(st.lists(st.sampled_from(range(index)), unique=True)) if index else []
        ready = max((jobs[dep].finished_at or 0.0 for dep in after), default=0.0)
        start = ready + draw(st.integers(0, 20)) / 4
        held = draw(st.integers(0, 20)) / 4
        uses = {"db": draw(st.integers(1, capacity))} if draw(st.booleans()) else {}
        jobs.append(
            ReportJob(
                f"j{index}",
                draw(st.sampled_from(["succeeded", "failed", "timed_out"])),
                after=[f"j{dep}" for dep in after],
                uses=uses,
                started_at=start,
                finished_at=start + held,
            )
        )
    return jobs, limit


@given(_timelines())
def test_every_wait_is_attributed_and_concurrency_adds_up(
    timeline: tuple[list[ReportJob], int],
) -> None:
    """Any timeline: waits split into slot/resource/other sum to every job's wait; the
    concurrency series integrates to the time held; the critical path is a chain."""
    jobs, limit = timeline
    report = RunReport(jobs, [], limit=limit, resources={"db": 3})
    summary = report.summary()
    ready = report.ready_at()
    waited = sum(
        job.started_at - ready_at
        for job in jobs
        if (ready_at := ready[job.id]) is not None and job.started_at is not None
    )
    attributed = summary.waiting_for_slot + summary.waiting_for_resources + summary.waiting_other
    assert math.isclose(attributed, waited, abs_tol=1e-9)
    steps = report.concurrency()
    area = sum(
        count * (following - time)
        for (time, count), (following, _) in zip(
            steps, [*steps[1:], (report.finished_at, 0)], strict=True
        )
    )
    assert math.isclose(area, summary.held_time, abs_tol=1e-9)
    assert steps[-1][1] == 0 or steps[-1][0] <= report.finished_at
    path = summary.critical_path
    by_id = {job.id: job for job in jobs}
    assert by_id[path[-1]].finished_at == max(job.finished_at or 0.0 for job in jobs)
    for earlier, later in itertools.pairwise(path):
        assert earlier in by_id[later].after
        assert by_id[earlier].finished_at == max(
            by_id[dep].finished_at or 0.0 for dep in by_id[later].after
        )
    assert not by_id[path[0]].after


async def test_an_infinite_capacity_limiter_is_refused_by_name() -> None:
    """A CapacityLimiter(inf) has no capacity to draw use against: a ValueError naming it."""
    graph = trine.TaskGraph(resources={"net": trio.CapacityLimiter(math.inf)})
    graph.add(_sleep, 0.0, name="a", resources=["net"])
    result = await graph.run()
    with pytest.raises(ValueError, match=r"^resources\['net'\] is a CapacityLimiter of infinite"):
        trine.run_report(result, resources={"net": trio.CapacityLimiter(math.inf)})
