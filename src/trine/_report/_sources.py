"""A :class:`RunReport` from what a run returned: :func:`run_report`."""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import trio

from .._graph import GraphResult, NodeResult, NodeStatus
from .._limit import WeightedSemaphore
from .._process import CommandResult
from .._util import check_int, close_unawaited
from ._model import ReportAttempt, ReportJob, RunReport

__all__ = ["run_report"]


def _command_line(argv: tuple[str, ...] | str) -> str:
    return argv if isinstance(argv, str) else shlex.join(argv)


def _capacity(name: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return check_int(f"resources[{name!r}]", value)
    if isinstance(value, WeightedSemaphore):
        return value.capacity
    if isinstance(value, trio.CapacityLimiter):
        if value.total_tokens == math.inf:
            # A report draws each resource's use against its capacity.
            raise ValueError(
                f"resources[{name!r}] is a CapacityLimiter of infinite capacity, which a "
                "report cannot draw use against: give the most the run may use, an int"
            )
        return int(value.total_tokens)
    if isinstance(value, trio.Lock | trio.StrictFIFOLock):
        return 1
    raise TypeError(
        f"resources[{name!r}] must be a capacity (an int) or the WeightedSemaphore, "
        f"CapacityLimiter or Lock the graph was given, got {value!r}"
    )


def _to_capacities(resources: object) -> dict[str, int]:
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise TypeError(f"resources must be a mapping of name to capacity, got {resources!r}")
    capacities: dict[str, int] = {}
    for name, value in resources.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"resources keys must be non-empty strings, got {name!r}")
        capacities[name] = _capacity(name, value)
    return capacities


def _to_uses(uses: object) -> dict[str, Any]:
    if uses is None:
        return {}
    if not isinstance(uses, Mapping):
        raise TypeError(f"uses must be a mapping of job id to the resources it held, got {uses!r}")
    return dict(uses)


def _attempts_of(job_id: str, result: CommandResult) -> list[ReportAttempt]:
    command = _command_line(result.argv)
    return [
        ReportAttempt(
            job_id,
            number,
            attempt.started_at,
            attempt.finished_at,
            str(attempt.status),
            returncode=attempt.returncode,
            command=command,
            error=attempt.error,
        )
        for number, attempt in enumerate(result.history, start=1)
    ]


def _from_commands(results: Sequence[CommandResult]) -> tuple[list[ReportJob], list[ReportAttempt]]:
    jobs = []
    attempts: list[ReportAttempt] = []
    for result in results:
        history = result.history
        jobs.append(
            ReportJob(
                result.id,
                str(result.status),
                started_at=history[0].started_at if history else None,
                finished_at=history[-1].finished_at if history else None,
                command=_command_line(result.argv),
                error=result.error,
            )
        )
        attempts.extend(_attempts_of(result.id, result))
    return jobs, attempts


_NODE_STATUS = {
    NodeStatus.SUCCEEDED: "succeeded",
    NodeStatus.FAILED: "failed",
    NodeStatus.SKIPPED: "skipped",
    NodeStatus.CANCELLED: "cancelled",
}


def _node_attempts(result: NodeResult[Any]) -> list[ReportAttempt]:
    value = result.value
    if isinstance(value, CommandResult) and value.history:
        return _attempts_of(result.name, value)
    if result.started_at is None or result.finished_at is None:
        return []
    error = None
    if result.error is not None:
        error = f"{type(result.error).__name__}: {result.error}"
    if result.attempts > 1:
        error = f"{result.attempts} calls" + (f"; {error}" if error else "")
    status = "cancelled" if result.status is NodeStatus.CANCELLED else _NODE_STATUS[result.status]
    return [
        ReportAttempt(result.name, 1, result.started_at, result.finished_at, status, error=error)
    ]


def _from_graph(
    graph_result: GraphResult, uses: Mapping[str, Any]
) -> tuple[list[ReportJob], list[ReportAttempt]]:
    jobs = []
    attempts: list[ReportAttempt] = []
    for result in graph_result:
        error = None
        if result.error is not None:
            error = f"{type(result.error).__name__}: {result.error}"
        elif result.skipped_because is not None:
            error = f"{result.skipped_because.name} did not succeed"
        jobs.append(
            ReportJob(
                result.name,
                _NODE_STATUS[result.status],
                after=[dep.name for dep in result.node.deps],
                uses=uses.get(result.name, {}),
                started_at=result.started_at,
                finished_at=result.finished_at,
                error=error,
            )
        )
        attempts.extend(_node_attempts(result))
    return jobs, attempts


def run_report(
    source: GraphResult | Iterable[CommandResult],
    *,
    limit: int | None = None,
    resources: Mapping[str, object] | None = None,
    uses: Mapping[str, Mapping[str, int] | Sequence[str]] | None = None,
    title: str | None = None,
    outcome: str | None = None,
) -> RunReport:
    """The :class:`RunReport` of a :meth:`TaskGraph.run` or of :func:`run_commands` results.

    From a :class:`~trine.GraphResult`, each node is a job (its ``deps`` its
    dependencies) with one bar from its start to its end; a node whose value
    is a :class:`~trine.CommandResult` gets one bar per attempt of that
    command. From :func:`run_commands` results, each command is a job and
    each entry of its :attr:`~trine.CommandResult.history` an attempt.

    Args:
      source: a :class:`~trine.GraphResult`, or the list
        :func:`~trine.run_commands` returned.
      limit: the run's limit (the graph's, or ``run_commands``'s), drawn
        against concurrency.
      resources: the graph's resources: a capacity per name, or the limiters
        themselves as given to :class:`~trine.TaskGraph`
        (:class:`~trine.WeightedSemaphore`, :class:`trio.CapacityLimiter`,
        :class:`trio.Lock`); a limiter of infinite capacity has none to draw
        use against, so give an int for it.
      uses: the resources each node held, by node name, as given to
        :meth:`~trine.TaskGraph.add` (``{"load": ["db"]}``).
      title: the page's title (default ``"trine run"``).
      outcome: how the run ended, in words.

    Returns:
      The report; ``.to_html()`` draws it, ``.to_dict()`` is its JSON.

    Raises:
      TypeError, ValueError: if an argument has the wrong type or value, or
        *uses* names a resource missing from *resources*.

    Example::

        graph = trine.TaskGraph(limit=4, resources={"db": trine.WeightedSemaphore(2)})
        ...
        result = await graph.run()
        report = trine.run_report(result, limit=4, resources={"db": 2}, uses={"load": ["db"]})
        pathlib.Path("graph.html").write_text(report.to_html())
    """
    limit = None if limit is None else check_int("limit", limit)
    capacities = _to_capacities(resources)
    node_uses = _to_uses(uses)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str, got {title!r}")
    if isinstance(source, GraphResult):
        jobs, attempts = _from_graph(source, node_uses)
    else:
        if isinstance(source, str | bytes | Mapping) or not isinstance(source, Iterable):
            what = "the coroutine object " if hasattr(source, "__await__") else ""
            close_unawaited(source)
            raise TypeError(
                "source must be a GraphResult or the CommandResults of run_commands, "
                f"got {what}{source!r}" + (": await the call first" if what else "")
            )
        results = list(source)
        for index, item in enumerate(results):
            if not isinstance(item, CommandResult):
                raise TypeError(f"source[{index}] must be a CommandResult, got {item!r}")
        jobs, attempts = _from_commands(results)
        if node_uses:
            raise ValueError("uses is for a GraphResult: commands hold no resources")
    return RunReport(
        jobs,
        attempts,
        limit=limit,
        resources=capacities,
        title="trine run" if title is None else title,
        outcome=outcome,
    )
