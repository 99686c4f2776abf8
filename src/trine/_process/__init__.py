"""Run many commands concurrently, and CPU-bound functions in worker processes.

:func:`run_commands` starts subprocesses under a concurrency limit and turns
each one's fate into a :class:`CommandResult`: a non-zero exit, a timeout, a
missing executable or an unwritable log is a result, never an exception that
would cancel the other commands. Each command runs in its own process group,
so on timeout or cancellation the whole group (the command and whatever it
started) gets ``SIGTERM``, then ``SIGKILL`` after a grace period; the result
comes back by then whatever the command's descendants do, and on Linux even
those that left the group are found and stopped.

:func:`to_process` runs one synchronous, CPU-bound function in a worker
process (through ``trio-parallel``), so it neither blocks the event loop nor
holds the GIL; cancelling the call kills the worker.

The modules, one concept each:

- ``_command``: :class:`Command`, :class:`CommandResult` (and its
  :class:`CommandAttempt` history), :class:`CommandStatus`
  and the checks of a batch of commands.
- ``_load``: :class:`SystemLoad` and :class:`LoadSample` (admission).
- ``_output``: output tails, log files, and the watches that read a
  command's pipes and notice its exit.
- ``_descendants``: process groups, the subreaper and the escapees it finds.
- ``_run``: :func:`run_commands` and one command's path through it.
- ``_worker``: :func:`to_process`.
"""

from __future__ import annotations

from ._command import Command as Command
from ._command import CommandAttempt as CommandAttempt
from ._command import CommandResult as CommandResult
from ._command import CommandStatus as CommandStatus
from ._load import LoadSample as LoadSample
from ._load import SystemLoad as SystemLoad
from ._load import SystemLoadStatistics as SystemLoadStatistics
from ._run import run_commands as run_commands
from ._worker import to_process as to_process

__all__ = [
    "Command",
    "CommandAttempt",
    "CommandResult",
    "CommandStatus",
    "LoadSample",
    "SystemLoad",
    "SystemLoadStatistics",
    "run_commands",
    "to_process",
]
