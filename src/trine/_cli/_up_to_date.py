"""Skip when up to date, as make and ninja do: outputs newer than every input.

A job that declares ``outputs`` (glob patterns, relative to its ``cwd``) is
up to date when every output pattern matches at least one file and the
oldest output is strictly newer than the newest input. Its dependents then
run as after a success. The check is made when the job would start, so the
inputs its dependencies just wrote are seen.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence

__all__ = ["Freshness", "freshness", "is_up_to_date"]


def is_up_to_date(inputs: Iterable[int], outputs: Iterable[int | None]) -> bool:
    """Whether outputs with these modification times are newer than every input.

    Args:
      inputs: the inputs' modification times.
      outputs: the outputs' (``None`` for an output pattern that matched nothing).
    """
    outputs = list(outputs)
    if not outputs or any(output is None for output in outputs):
        return False
    oldest_output = min(output for output in outputs if output is not None)
    return all(oldest_output > mtime for mtime in inputs)


def _matches(cwd: str, pattern: str) -> list[str]:
    return [os.path.join(cwd, match) for match in glob.glob(pattern, root_dir=cwd, recursive=True)]


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class Freshness:
    """The outcome of :func:`freshness`: whether the job is up to date, and why (not)."""

    __slots__ = ("reason", "up_to_date")

    def __init__(self, up_to_date: bool, reason: str) -> None:
        self.up_to_date = up_to_date
        self.reason = reason


def freshness(cwd: str, inputs: Sequence[str], outputs: Sequence[str]) -> Freshness:
    """Read the files of a job's patterns and say whether it is up to date."""
    output_times: list[int | None] = []
    oldest_output = ""
    oldest: int | None = None
    for pattern in outputs:
        found = [
            (path, time) for path in _matches(cwd, pattern) if (time := _mtime(path)) is not None
        ]
        if not found:
            return Freshness(False, f"no file matches output {pattern!r}")
        for path, time in found:
            output_times.append(time)
            if oldest is None or time < oldest:
                oldest, oldest_output = time, path
    input_times: list[int] = []
    for pattern in inputs:
        paths = _matches(cwd, pattern)
        if not paths:
            return Freshness(False, f"no file matches input {pattern!r}")
        for path in paths:
            time = _mtime(path)
            if time is None:
                continue
            input_times.append(time)
            if oldest is not None and time >= oldest:
                return Freshness(
                    False,
                    f"input {os.path.relpath(path, cwd)!r} is not older than output "
                    f"{os.path.relpath(oldest_output, cwd)!r}",
                )
    assert is_up_to_date(input_times, output_times)
    count = len(output_times)
    return Freshness(
        True,
        f"{count} output{'s' if count != 1 else ''} newer than "
        f"{len(input_times)} input{'s' if len(input_times) != 1 else ''}",
    )
