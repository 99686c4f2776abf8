"""Matrix jobs expanded, dependencies resolved to ids, a cycle found, paths checked.

A job with ``matrix = { target = ["a", "b"], arch = ["x86"] }`` becomes one job
per combination, ``name.a.x86`` and ``name.b.x86``, with every ``{target}``
and ``{arch}`` of its strings replaced (shell-quoted in a shell command). A
dependency on the table's name means every one of its jobs; ``after =
["build.{target}"]`` names the job of the same value.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import re
import shlex
from collections.abc import Mapping

import attrs

from ._checks import Checker, describe
from ._model import Job
from ._order import find_cycle

__all__ = ["Template", "expand", "matrix_id", "parse_matrix"]

_MATRIX_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # fullmatch: "$" passes "a\n"
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_.-]+")


@attrs.define
class Template:
    """A ``[jobs.NAME]`` table, checked; ``job`` is ``None`` if it has problems."""

    name: str
    after: list[str]
    job: Job | None = None
    matrix: dict[str, list[str]] = attrs.field(factory=dict)


_MAX_COMBINATIONS = 100_000


def _matrix_value(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def parse_matrix(check: Checker, where: str, value: object) -> dict[str, list[str]]:
    if value is None:
        return {}
    where = f"{where}.matrix"
    table = check.table(where, value)
    if table is None:
        return {}
    if not table:
        check.fail(where, "must not be empty: give each key an array of values")
        return {}
    matrix: dict[str, list[str]] = {}
    for key, values in table.items():
        if not _MATRIX_KEY.fullmatch(key):
            check.fail(
                f"{where}.{key!r}",  # quoted, as a bad job name: it may hold anything
                "a matrix key may only contain letters, digits and '_' (not starting with a digit)",
            )
            continue
        texts = [_matrix_value(item) for item in values] if isinstance(values, list) else None
        if not texts or any(text is None for text in texts):
            check.fail(
                f"{where}.{key}",
                "must be a non-empty array of strings, numbers or booleans, "
                f"got {describe(values)}",
            )
            continue
        seen: set[str] = set()
        for text in texts:
            assert text is not None
            if text in seen:
                check.fail(f"{where}.{key}", f"value {text!r} is listed twice")
            seen.add(text)
            check.text(f"{where}.{key}", text)  # it may be put in a command
        matrix[key] = list(dict.fromkeys(text for text in texts if text is not None))
    if math.prod(len(values) for values in matrix.values()) > _MAX_COMBINATIONS:
        check.fail(where, f"makes more than {_MAX_COMBINATIONS:,} jobs")
        return {}
    return matrix


def _combinations(matrix: Mapping[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the matrix's values, the first key varying slowest."""
    keys = list(matrix)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*matrix.values())]


def _id_part(value: str) -> str:
    """*value* as part of a job id: what a job name may not contain becomes ``_``."""
    return _NOT_IN_ID.sub("_", value) or "_"


def matrix_id(name: str, values: Mapping[str, str]) -> str:
    """The id of the job of table *name* for one combination: ``name.value1.value2``."""
    return ".".join([name, *(_id_part(value) for value in values.values())])


def _substitute(text: str, values: Mapping[str, str], quote: bool = False) -> str:
    if "{" not in text:
        return text
    pattern = "|".join(re.escape(key) for key in values)
    return re.sub(
        r"\{(" + pattern + r")\}",
        lambda match: shlex.quote(values[match[1]]) if quote else values[match[1]],
        text,
    )


def _expanded(job: Job, values: Mapping[str, str]) -> Job:
    """The job of one combination: placeholders replaced, shell commands' values quoted."""
    if isinstance(job.argv, str):
        argv: tuple[str, ...] | str = _substitute(job.argv, values, quote=True)
    else:
        argv = tuple(_substitute(arg, values) for arg in job.argv)
    return attrs.evolve(
        job,
        name=matrix_id(job.name, values),
        argv=argv,
        env={key: _substitute(item, values) for key, item in job.env.items()},
        cwd=_substitute(job.cwd, values),
        description=None if job.description is None else _substitute(job.description, values),
        inputs=tuple(_substitute(pattern, values) for pattern in job.inputs),
        outputs=tuple(_substitute(pattern, values) for pattern in job.outputs),
        matrix=dict(values),
    )


def expand(check: Checker, templates: Mapping[str, Template]) -> dict[str, Job]:
    """Expand matrices, resolve dependencies to ids, find a cycle, check the paths."""
    # What each name in `after` stands for: a table's name for all its jobs, an id for one.
    names: dict[str, list[str]] = {}
    combinations: dict[str, list[dict[str, str]]] = {}
    for name, template in templates.items():
        combos = _combinations(template.matrix) if template.matrix else [{}]
        combinations[name] = combos
        ids = [matrix_id(name, values) if values else name for values in combos]
        if name in names:
            check.fail(f"jobs.{name}", f"{name!r} is already the id of a matrix job")
        names[name] = ids
        for job_id in ids if template.matrix else []:
            if job_id in names:
                check.fail(
                    f"jobs.{name}.matrix",
                    f"makes the job id {job_id!r}, which is already taken",
                )
            names[job_id] = [job_id]
    jobs: dict[str, Job] = {}
    deps: dict[str, list[str]] = {}
    for name, template in templates.items():
        for values in combinations[name]:
            job_id = matrix_id(name, values) if values else name
            label = f"jobs.{name}" + (
                "[" + ", ".join(f"{k}={v}" for k, v in values.items()) + "]" if values else ""
            )
            after = _resolve_after(check, f"jobs.{name}.after", template, values, names, job_id)
            deps.setdefault(job_id, after)
            if template.job is None:
                continue
            job = _expanded(template.job, values) if values else template.job
            job = attrs.evolve(job, after=tuple(after))
            _check_paths(check, label, job)
            jobs[job_id] = job
    cycle = find_cycle(
        {job_id: tuple(dep for dep in after if dep in deps) for job_id, after in deps.items()}
    )
    if cycle is not None:
        check.problems.append("cycle: " + " -> ".join(cycle))
    return jobs


def _resolve_after(
    check: Checker,
    where: str,
    template: Template,
    values: Mapping[str, str],
    names: Mapping[str, list[str]],
    job_id: str,
) -> list[str]:
    ids_values = {key: _id_part(value) for key, value in values.items()}
    resolved: list[str] = []
    for entry in template.after:
        target = _substitute(entry, ids_values) if values else entry
        ids = names.get(target)
        if ids is None:
            origin = f" (from {entry!r})" if target != entry else ""
            others = [name for name in names if name not in (job_id, template.name)]
            close = difflib.get_close_matches(target, others, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problem = f"unknown job {target!r}{origin}{hint}"
            if f"{where}: {problem}" not in check.problems:
                check.fail(where, problem)
            continue
        if job_id in ids:
            problem = "a job cannot run after itself"
            if f"{where}: {problem}" not in check.problems:
                check.fail(where, problem)
            continue
        resolved.extend(ids)
    return list(dict.fromkeys(resolved))


def _check_paths(check: Checker, where: str, job: Job) -> None:
    """Before anything runs: the working directory exists; the program is not a directory."""
    if isinstance(job.argv, tuple) and not job.argv[0]:  # a matrix value put there was empty
        check.fail(f"{where}.cmd", "the program (the first item) must not be empty")
        return
    if not os.path.isdir(job.cwd):
        reason = "is not a directory" if os.path.exists(job.cwd) else "does not exist"
        check.fail(f"{where}.cwd", f"{job.cwd!r} {reason}")
        return
    if isinstance(job.argv, tuple) and os.sep in job.argv[0]:
        program = os.path.join(job.cwd, job.argv[0])
        if os.path.isdir(program):
            check.fail(f"{where}.cmd", f"{job.argv[0]!r} is a directory, not a program")
