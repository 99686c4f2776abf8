"""``trine graph`` and ``trine run --dry-run``: the plan, as text or Graphviz."""

from __future__ import annotations

import json

from .._jobs_file import Job, JobsFile, waves
from ._up_to_date import freshness

__all__ = ["dot_text", "plan_text"]


def _retries_text(job: Job) -> str:
    text = f"retries {job.retries}"
    if job.retry_delay:
        text += f" after {job.retry_delay:g}s"
        if job.retry_backoff == "exponential":
            text += f" doubling up to {job.retry_max_delay:g}s"
        if job.retry_jitter is not None:
            text += f" with {job.retry_jitter} jitter"
    return text


def _notes(job: Job, *, check_files: bool) -> list[str]:
    notes = []
    if job.after:
        notes.append("after " + ", ".join(job.after))
    if job.uses:
        notes.append("uses " + ", ".join(f"{r}={w}" for r, w in job.uses.items()))
    if job.priority:
        notes.append(f"priority {job.priority}")
    if job.timeout is not None:
        notes.append(f"timeout {job.timeout:g}s")
    if job.retries:
        notes.append(_retries_text(job))
    if job.optional:
        notes.append("optional")
    if job.outputs:
        if check_files:
            fresh = freshness(job.cwd, job.inputs, job.outputs)
            notes.append(("up to date: " if fresh.up_to_date else "to run: ") + fresh.reason)
        else:
            notes.append("skipped when up to date")
    return notes


def plan_text(jobs_file: JobsFile, *, commands: bool) -> str:
    """Each wave of jobs, each job with its dependencies, resources, timeout and retries.

    With *commands* (``--dry-run``), also each command and whether the job is
    up to date now.
    """
    jobs = jobs_file.jobs
    planned = waves(jobs)
    resources = ", ".join(f"{name}={capacity}" for name, capacity in jobs_file.resources.items())
    settings = jobs_file.run
    head = f"{jobs_file.path}: {len(jobs)} jobs in {len(planned)} waves, limit {settings.limit}"
    if resources:
        head += f", resources {resources}"
    if settings.halt is not None:
        head += f", halt {settings.halt}"
    lines = [head]
    for number, wave in enumerate(planned, start=1):
        lines.append(f"wave {number}:")
        for name in wave:
            job = jobs[name]
            notes = _notes(job, check_files=commands)
            lines.append(f"  {name}" + (f"  ({'; '.join(notes)})" if notes else ""))
            if commands:
                lines.append(f"      $ {job.command()}")
    return "\n".join(lines) + "\n"


def dot_text(jobs_file: JobsFile) -> str:
    """The jobs as a Graphviz digraph: a box per job, an edge per dependency."""

    def quote(name: str) -> str:
        return json.dumps(name)

    lines = ["digraph jobs {", "  rankdir=LR;", "  node [shape=box];"]
    for name, job in jobs_file.jobs.items():
        attributes = []
        if job.optional:
            attributes.append("style=dashed")
        details = [f"{r}={w}" for r, w in job.uses.items()]
        if job.timeout is not None:
            details.append(f"timeout {job.timeout:g}s")
        if job.retries:
            details.append(f"retries {job.retries}")
        # A real newline, which json.dumps writes as the \n Graphviz expects.
        label = "\n".join([name, *details])
        attributes.append(f"label={quote(label)}")
        lines.append(f"  {quote(name)} [{', '.join(attributes)}];")
    for name, job in jobs_file.jobs.items():
        lines.extend(f"  {quote(dep)} -> {quote(name)};" for dep in job.after)
    lines.append("}")
    return "\n".join(lines) + "\n"
