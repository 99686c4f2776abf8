"""The order jobs can run in: a cycle, the waves, the jobs a selection needs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ._model import Job

__all__ = ["find_cycle", "select", "waves"]


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """The first cycle met by a depth-first search in file order, as ``[a, b, a]``."""
    done: set[str] = set()
    for root in deps:
        if root in done:
            continue
        path = [root]
        on_path = {root}
        stack = [iter(deps[root])]
        while stack:
            for dep in stack[-1]:
                if dep in on_path:
                    return [*path[path.index(dep) :], dep]
                if dep in done:
                    continue
                path.append(dep)
                on_path.add(dep)
                stack.append(iter(deps[dep]))
                break
            else:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
    return None


def waves(jobs: Mapping[str, Job]) -> list[list[str]]:
    """Group the jobs into waves: a job's wave is one more than its latest dependency's.

    Every job of a wave can run at the same time once the waves before it are
    done (resources and ``limit`` permitting). Jobs keep file order within a wave.
    Dependencies on jobs not in *jobs* are ignored.
    """
    level: dict[str, int] = {}

    def wave_of(name: str) -> int:
        # Iterative, so a long chain of jobs does not hit the recursion limit.
        stack = [name]
        while stack:
            current = stack[-1]
            pending = [dep for dep in jobs[current].after if dep in jobs and dep not in level]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            level[current] = 1 + max(
                (level[dep] for dep in jobs[current].after if dep in jobs), default=-1
            )
        return level[name]

    grouped: list[list[str]] = []
    for name in jobs:
        index = wave_of(name)
        while len(grouped) <= index:
            grouped.append([])
        grouped[index].append(name)
    return grouped


def select(jobs: Mapping[str, Job], wanted: Iterable[str]) -> dict[str, Job]:
    """The jobs named in *wanted* (ids or tables' names) and every job they depend on.

    Raises:
      KeyError: with the first name that is neither.
    """
    groups: dict[str, list[str]] = {}
    for name, job in jobs.items():
        groups.setdefault(job.group or name, []).append(name)
        if job.group and job.group != name:
            groups.setdefault(name, []).append(name)
    chosen: set[str] = set()
    stack: list[str] = []
    for name in wanted:
        if name not in groups:
            raise KeyError(name)
        stack.extend(groups[name])
    while stack:
        name = stack.pop()
        if name not in chosen:
            chosen.add(name)
            stack.extend(jobs[name].after)
    return {name: job for name, job in jobs.items() if name in chosen}
