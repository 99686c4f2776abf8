"""What a command is, and what became of it: :class:`Command`, :class:`CommandResult`.

Everything the operating system would refuse about a command's shape or text
(an empty argv, a NUL byte, an ``=`` in a variable name) is refused here, at
construction, naming the argument; :func:`to_commands` does the same for a
whole batch, naming the command by its index, before anything starts.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import final

import attrs

from .._util import check_bool, check_optional_number, close_unawaited

__all__ = [
    "Command",
    "CommandAttempt",
    "CommandResult",
    "CommandStatus",
    "to_commands",
    "to_env",
    "to_path",
]


class CommandStatus(enum.StrEnum):
    """How a command ended (the :attr:`CommandResult.status`)."""

    SUCCEEDED = "succeeded"
    """It exited with status 0."""
    FAILED = "failed"
    """It exited with a non-zero status or was killed by a signal it did not get from trine."""
    TIMED_OUT = "timed_out"
    """It ran longer than its timeout and was terminated."""
    ERROR = "error"
    """It could not be run as asked: it could not be started (missing
    executable, bad ``cwd``, no permission), or its ``logs=`` files could not
    be created or written. :attr:`CommandResult.error` says why."""
    CANCELLED = "cancelled"
    """It was terminated because the caller was cancelled.

    :func:`run_commands` itself lets :exc:`trio.Cancelled` propagate; this
    status is for reports that record such commands (the ``trine`` CLI after
    Ctrl-C).
    """


def _check_text(name: str, value: str) -> str:
    if "\0" in value:
        raise ValueError(f"{name} must not contain NUL bytes, got {value!r}")
    return value


def _to_argv(value: object) -> tuple[str, ...] | str:
    if isinstance(value, str):
        return _check_text("argv", value)
    if not isinstance(value, list | tuple) and (
        isinstance(value, bytes) or not isinstance(value, Sequence)
    ):
        raise TypeError(f"argv must be a sequence of str, got {value!r}")
    argv = tuple(value)
    if not argv:
        raise ValueError("argv must not be empty")
    if all(type(arg) is str and "\0" not in arg for arg in argv):
        return argv  # the common case, checked in one pass
    items = []
    for arg in argv:
        item = os.fspath(arg) if isinstance(arg, os.PathLike) else arg
        if not isinstance(item, str):
            raise TypeError(f"argv items must be str, got {arg!r}")
        items.append(_check_text("argv", item))
    return tuple(items)


def to_env(value: object, name: str = "env") -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping of str to str, got {value!r}")
    env = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"{name} must map str to str, got {key!r}: {item!r}")
        if not key or "=" in key:
            raise ValueError(f"{name} names must be non-empty and without '=', got {key!r}")
        if "\0" in key or "\0" in item:
            raise ValueError(f"{name} must not contain NUL bytes, got {key!r}: {item!r}")
        env[key] = item
    return env


def to_path(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a path, got {value!r}")
    return _check_text(name, value)


def _to_cwd(value: object) -> str | None:
    return to_path("cwd", value)


def _to_timeout(value: object) -> float | None:
    return check_optional_number("timeout", value, exclusive=True, allow_inf=True)


def _to_id(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"id must be a str, got {value!r}")
    if not value:
        raise ValueError("id must not be empty")
    return value


def _to_shell(value: object) -> bool:
    return check_bool("shell", value)


@final
@attrs.frozen
class Command:
    """One command for :func:`run_commands`, with its own settings.

    A plain argv sequence (``["ls", "-l"]``) is enough for most commands; use
    a :class:`Command` (or a mapping with the same keys) to give one an id,
    its own environment, working directory or timeout, or to run a shell line.

    Args:
      argv: the program and its arguments, or with ``shell=True`` one string
        for ``/bin/sh -c``.
      id: a non-empty name for reports and log files; defaults to the
        command's index in the input.
      env: variables added to (and overriding) the inherited environment and
        :func:`run_commands`'s ``env``.
      cwd: the working directory; defaults to :func:`run_commands`'s ``cwd``.
      timeout: seconds this command may run, overriding :func:`run_commands`'s.
      shell: run *argv* (a string) through ``/bin/sh -c``.

    Raises:
      TypeError: if an argument has the wrong type, or *argv* is a string
        without ``shell=True`` (or a sequence with it).
      ValueError: if *argv* is empty, *id* is ``""``, *timeout* is not
        positive, a variable name is empty or contains ``=``, or *argv*,
        *env* or *cwd* contains a NUL byte (no program could receive it).

    Example::

        Command("grep -c error *.log | sort", shell=True, id="errors", timeout=5)
    """

    argv: tuple[str, ...] | str = attrs.field(converter=_to_argv)
    id: str | None = attrs.field(default=None, converter=_to_id, kw_only=True)
    env: Mapping[str, str] | None = attrs.field(default=None, converter=to_env, kw_only=True)
    cwd: str | None = attrs.field(default=None, converter=_to_cwd, kw_only=True)
    timeout: float | None = attrs.field(default=None, converter=_to_timeout, kw_only=True)
    shell: bool = attrs.field(default=False, converter=_to_shell, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.shell and not isinstance(self.argv, str):
            raise TypeError(f"with shell=True, argv must be one str, got {self.argv!r}")
        if not self.shell and isinstance(self.argv, str):
            raise TypeError(
                f"argv must be a sequence of str, got the str {self.argv!r}: "
                "pass a list, or shell=True to run it through /bin/sh"
            )
        if isinstance(self.argv, str) and not self.argv.strip():
            raise ValueError("argv must not be empty")


@final
@attrs.frozen
class CommandAttempt:
    """One attempt at a command: when it ran, how it ended (:attr:`CommandResult.history`)."""

    started_at: float
    """:func:`trio.current_time` when the attempt's process was started."""
    finished_at: float
    """When its process and what it left in its group were gone."""
    status: CommandStatus
    """How the attempt ended."""
    returncode: int | None
    """Its exit status (negative: killed by that signal); ``None`` if it never started."""
    error: str | None
    """Why it could not be run, failed or was stopped, or ``None``."""


@final
@attrs.frozen
class CommandResult:
    """What became of one command run by :func:`run_commands`."""

    id: str
    """The command's id (its index in the input unless one was given)."""
    argv: tuple[str, ...] | str
    """The argv as given (a string for a shell command)."""
    status: CommandStatus
    """How it ended."""
    returncode: int | None
    """The exit status of the last attempt (negative: killed by that signal);
    ``None`` if it never started."""
    stdout_tail: str
    """The last ``output_tail`` bytes of the last attempt's stdout, decoded
    as UTF-8 with ``errors="replace"``."""
    stderr_tail: str
    """The same for stderr."""
    duration: float
    """Seconds on the Trio clock from the first attempt's start to the last one's end:
    the wait for ``admission`` before the first attempt is not counted, the
    backoff (and any admission wait) between attempts is."""
    attempts: int
    """How many times it was started (``1 + retries`` at most)."""
    error: str | None
    """Why it could not be run, failed or was stopped, or ``None``."""
    history: tuple[CommandAttempt, ...] = ()
    """Every attempt, in order, with its start and end on the Trio clock (the
    last one is the one :attr:`status` and :attr:`returncode` describe); what
    :func:`trine.run_report` draws."""

    @property
    def succeeded(self) -> bool:
        """``True`` if the command exited with status 0."""
        return self.status is CommandStatus.SUCCEEDED


_COMMAND_KEYS = frozenset({"argv", "id", "env", "cwd", "timeout", "shell"})


def _to_command(index: int, item: object) -> Command:
    """*item* as a :class:`Command` with an id; a TypeError/ValueError names ``commands[index]``."""
    try:
        if isinstance(item, Command):
            return item if item.id is not None else attrs.evolve(item, id=str(index))
        if isinstance(item, Mapping):
            unknown = set(item) - _COMMAND_KEYS
            if unknown:
                raise TypeError(f"unknown key {sorted(unknown)[0]!r}")
            if "argv" not in item:
                raise TypeError("missing key 'argv'")
            if item.get("id") is None:
                return Command(**{**item, "id": str(index)})
            return Command(**item)
        if isinstance(item, str):
            raise TypeError(
                f"must be an argv sequence, a mapping or a Command, got the str {item!r}: "
                "pass a list, or Command(line, shell=True) for a shell line"
            )
        if isinstance(item, Sequence) and not isinstance(item, bytes):
            return Command(item, id=str(index))
        raise TypeError(f"must be an argv sequence, a mapping or a Command, got {item!r}")
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"commands[{index}]: {exc}") from None


def to_commands(commands: object) -> list[Command]:
    """Every command of *commands* checked, with unique ids, or a TypeError/ValueError.

    Raises:
      TypeError: if *commands* is not an iterable, or one command is malformed.
      ValueError: if a command's value is out of range, or two share an id.
    """
    if isinstance(commands, str | bytes) or not isinstance(commands, Iterable):
        what = "the coroutine object " if hasattr(commands, "__await__") else ""
        close_unawaited(commands)
        raise TypeError(
            f"commands must be an iterable of argv sequences, mappings or Commands, "
            f"got {what}{commands!r}"
        )
    specs = [_to_command(index, item) for index, item in enumerate(commands)]
    first: dict[str | None, int] = {}
    for index, command in enumerate(specs):
        earlier = first.setdefault(command.id, index)
        if earlier != index:
            default = " (its index, the default id)" if command.id == str(index) else ""
            raise ValueError(
                f"commands[{index}]: id {command.id!r}{default} is already used by "
                f"commands[{earlier}]; ids must be unique"
            )
    return specs
