"""The job log (``--joblog FILE``) and resuming from it (``--resume``, ``--resume-failed``).

As GNU parallel's ``--joblog``, but one JSON object per line, written and
flushed as each attempt ends, so a run killed at any moment leaves a log of
everything that finished::

    {"id": "fetch", "attempt": 1, "final": true, "start": 1717171717.25,
     "end": 1717171718.5, "duration": 1.25, "exit_code": 0, "signal": null,
     "status": "succeeded", "error": null, "command": "python3 fetch.py"}

``final`` is false for an attempt that was retried. ``start`` and ``end``
are wall-clock (Unix) times; ``signal`` is the number of the signal that
killed the attempt, ``exit_code`` its exit status otherwise. A job found up
to date gets a line with ``"attempt": 0`` and status ``up_to_date``.

Resuming reads the log's last final line per job: ``--resume`` skips every
job that reached an outcome (succeeded, up to date, failed, timed out,
error) with the same command, ``--resume-failed`` only those that succeeded
or were up to date, so the failed ones run again. Cancelled jobs, jobs not
in the log and jobs whose command changed always run. A last line cut short
by a killed run is ignored, and dropped before a resumed run appends.
"""

from __future__ import annotations

import json
import os
from typing import IO, Any, Literal, final

import attrs

from .._util import describe

__all__ = ["JobLog", "JobLogError", "LoggedJob", "read_joblog", "resumable"]

_FINISHED = ("succeeded", "up_to_date", "failed", "timed_out", "error")
_SUCCEEDED = ("succeeded", "up_to_date")
_KEYS = ("id", "attempt", "final", "status", "command")
_CHUNK = 4096  # bytes read at a time, from the end, to find the start of the last line


@final
class JobLogError(Exception):
    """The job log cannot be read back."""


@final
@attrs.frozen
class LoggedJob:
    """A job's outcome as its last final line in the log says."""

    id: str
    status: str
    attempts: int
    returncode: int | None
    error: str | None
    command: str


def read_joblog(path: str) -> dict[str, LoggedJob]:
    """The last final line of each job in the log at *path* (nothing if there is no file).

    A last line cut short (the run was killed while writing it: not JSON, and
    no newline after it) is ignored; :class:`JobLog` drops it before it
    appends.

    Raises:
      JobLogError: for a file that cannot be read, a line that is not a job
        record, or a record whose ``attempt``, ``exit_code``, ``signal`` or
        ``error`` is not what the log writes (``line 3: ...``).
    """
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().split("\n")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise JobLogError(f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    cut_short = lines[-1] != ""  # a whole line ends with a newline
    if not cut_short:
        lines.pop()
    jobs: dict[str, LoggedJob] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if cut_short and number == len(lines):
                break  # cut short by a killed run
            raise JobLogError(f"line {number}: not JSON") from None
        if not isinstance(record, dict) or any(key not in record for key in _KEYS):
            raise JobLogError(f"line {number}: not a job record (needs {', '.join(_KEYS)})")
        if not record["final"]:
            continue
        attempt = _whole_number(number, "attempt", record["attempt"], minimum=0)
        returncode = _optional_number(number, "exit_code", record.get("exit_code"), minimum=0)
        signum = _optional_number(number, "signal", record.get("signal"), minimum=1)
        if signum is not None:
            returncode = -signum
        error = record.get("error")
        if error is not None and not isinstance(error, str):
            raise JobLogError(f"line {number}: error must be a string or null, got {error!r}")
        jobs[str(record["id"])] = LoggedJob(
            id=str(record["id"]),
            status=str(record["status"]),
            attempts=attempt,
            returncode=returncode,
            error=error,
            command=str(record["command"]),
        )
    return jobs


def _whole_number(line: int, key: str, value: object, *, minimum: int) -> int:
    """*value*, the record's *key*, if it is an int ``>= minimum`` (not a bool, not a float)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise JobLogError(
            f"line {line}: {key} must be a whole number >= {minimum}, got {describe(value)}"
        )
    return value


def _optional_number(line: int, key: str, value: object, *, minimum: int) -> int | None:
    """As :func:`_whole_number`, or ``None`` for ``null``."""
    if value is not None and (
        not isinstance(value, int) or isinstance(value, bool) or value < minimum
    ):
        raise JobLogError(
            f"line {line}: {key} must be null or a whole number >= {minimum}, got {describe(value)}"
        )
    return value


def _end_last_line(path: str) -> None:
    """Make the log at *path* end with a whole line, so the next record starts a line of its own.

    A last line without its newline is what a run killed while writing it
    left: cut short, not JSON, and ignored by :func:`read_joblog`, so it is
    dropped. One that is whole JSON (killed just before the newline) was read
    as a record, so it keeps it and gets the newline.
    """
    try:
        file = open(path, "r+b")  # noqa: SIM115  # closed by the with below
    except FileNotFoundError:
        return  # appending creates it
    with file:
        end = file.seek(0, os.SEEK_END)
        if end == 0:
            return
        file.seek(end - 1)
        if file.read(1) == b"\n":
            return
        start, position = 0, end  # where the last line starts: 0 if it is the only one
        while position > 0:
            step = min(_CHUNK, position)
            position -= step
            file.seek(position)
            newline = file.read(step).rfind(b"\n")
            if newline >= 0:
                start = position + newline + 1
                break
        file.seek(start)
        try:
            json.loads(file.read())
        except ValueError:  # not JSON, or not UTF-8: cut short
            file.truncate(start)
        else:
            file.seek(end)
            file.write(b"\n")


def resumable(logged: LoggedJob, command: str, mode: Literal["all", "failed"]) -> bool:
    """Whether a job logged so may be skipped this time (*mode*: ``--resume`` or ``-failed``)."""
    if logged.command != command:
        return False
    return logged.status in (_FINISHED if mode == "all" else _SUCCEEDED)


@final
class JobLog:
    """The log being written: one flushed line per attempt."""

    def __init__(self, path: str, *, append: bool) -> None:
        """Open the log at *path*, anew or (*append*, to resume) after its last whole line.

        Raises:
          JobLogError: if the file cannot be opened for writing.
        """
        try:
            if append:
                _end_last_line(path)
            # Closed by close(); each line is flushed as it is written.
            self._file: IO[str] | None = open(path, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise JobLogError(f"cannot write: {exc.strerror or exc}") from None
        self.error: str | None = None

    def write(
        self,
        *,
        job_id: str,
        attempt: int,
        final: bool,
        start: float,
        end: float,
        returncode: int | None,
        status: str,
        error: str | None,
        command: str,
    ) -> None:
        if self._file is None:
            return
        record: dict[str, Any] = {
            "id": job_id,
            "attempt": attempt,
            "final": final,
            "start": round(start, 3),
            "end": round(end, 3),
            "duration": round(end - start, 3),
            "exit_code": returncode if returncode is None or returncode >= 0 else None,
            "signal": -returncode if returncode is not None and returncode < 0 else None,
            "status": status,
            "error": error,
            "command": command,
        }
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as exc:  # a full disk: stop logging, say so at the end
            self.error = exc.strerror or str(exc)
            self.close()

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError as exc:
                self.error = self.error or exc.strerror or str(exc)
