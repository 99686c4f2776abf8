"""What a command leaves behind: its process group and, on Linux, what escaped it.

Each command starts in a new session, so its process group (pgid = the
leader's pid) holds everything it starts, unless a descendant leaves the
group (``setsid``, ``setpgid``). :class:`Family` signals and watches one
attempt's processes; :class:`Batch` is what the commands of one
:func:`~trine.run_commands` call (or one ``trine run``) share: the tag their
environments carry, the log files they own, and the sweep at the end.

Finding the escapees (Linux)
----------------------------
While a batch runs, this process is a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``): a process whose parent dies is
re-parented to its nearest subreaper ancestor instead of to init, so whatever
a command leaves behind ends up a child of this process, where it can be
signalled and reaped. The kernel hands an adopted process to the first live
thread of the subreaper, the main thread, so reading
``/proc/self/task/<pid>/children`` (a few microseconds) lists every adopted
process; Trio's worker threads fork the commands themselves, which are listed
under those threads. A command's own are told apart from everything else by
the ``TRINE_COMMAND_TAG`` variable every command's environment carries (its
tag, after the tags of any trine runs above it, space-separated), read from
``/proc/<pid>/environ`` while they live, or by their process group. A
descendant that both clears its environment and leaves the group is not
found.

The attribute belongs to the whole process, not to trine: while it is on,
orphans of *any* child (trine's or the program's own) are re-parented here.
So it is on only while some batch runs (a count shared by the batches of the
process, under a lock, as ``trio.run`` may run in several threads), turned off
after the last one, and left alone if the program had set it itself. trine
signals and reaps only processes it has attributed to its commands. An
adopted process it could not attribute (the program's own, or one of a
command's that exited before trine saw it, since a zombie's environment is
gone) stays this process's child: a zombie until the program reaps it or
exits. Elsewhere the subreaper does not exist, commands carry no tag, and
only the process group is stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import final

import trio

from ._output import EpollPool

__all__ = ["FIRST_POLL", "MAX_POLL", "SUBREAPER", "TAG_VARIABLE", "Batch", "Family"]

TAG_VARIABLE = "TRINE_COMMAND_TAG"
"""The environment variable that marks a command's processes as its own."""

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37

# Polling what has no event to wait on (a process group emptying, escapees
# dying) starts fast, since most are gone within milliseconds, and backs off.
FIRST_POLL = 0.001
MAX_POLL = 0.05
# After the last SIGKILL, how long the sweep waits for what it killed to die.
_REAP_WAIT = 1.0
# How often, at most, the end of a command is used to glance at the adopted
# processes, so that those of the batch are known before they exit (a
# zombie's environment is gone) and their zombies can be reaped.
_GLANCE_INTERVAL = 0.1


def _load_prctl() -> Callable[..., int] | None:
    """``prctl`` from libc, where the subreaper and /proc's children lists both exist."""
    if sys.platform != "linux" or not os.path.exists(f"/proc/self/task/{os.getpid()}/children"):
        return None  # pragma: no cover  # not Linux, or a kernel without CONFIG_PROC_CHILDREN
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover  # a libc without prctl
        return None
    return prctl


@final
class _Subreaper:
    """The process's child-subreaper attribute, on while any batch needs it."""

    __slots__ = ("_lock", "_ours", "_prctl", "_users")

    def __init__(self, prctl: Callable[..., int] | None) -> None:
        self._lock = threading.Lock()
        self._prctl = prctl
        self._users = 0
        self._ours = False

    def is_on(self) -> bool:
        """Whether this process is a child subreaper now."""
        if self._prctl is None:
            return False
        state = ctypes.c_int()
        return self._prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(state), 0, 0, 0) == 0 and bool(
            state.value
        )

    def acquire(self) -> bool:
        """Make sure the attribute is on; ``False`` where the platform has none."""
        with self._lock:
            if self._users == 0:
                if self._prctl is None:
                    return False
                if not self.is_on():
                    if self._prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                        return False  # pragma: no cover  # refused by a sandbox
                    self._ours = True
            self._users += 1
            return True

    def release(self) -> None:
        """Undo one :meth:`acquire` that returned ``True``."""
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._ours:
                assert self._prctl is not None
                self._prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
                self._ours = False


# The attribute is the process's, so its count of users is too.
SUBREAPER = _Subreaper(_load_prctl())
_BATCHES = itertools.count(1)


def _read(path: str) -> bytes | None:
    """The content of a /proc file, or ``None`` if it is gone (plain syscalls: this is hot)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:  # pragma: no cover  # the process went while being read
        return None
    finally:
        os.close(fd)


def _all_children() -> list[int]:
    """The pids of every child of this process, whichever thread forked or adopted it."""
    try:
        threads = os.listdir("/proc/self/task")
    except OSError:  # pragma: no cover  # no /proc
        return []
    pids: list[int] = []
    for thread in threads:
        data = _read(f"/proc/self/task/{thread}/children")
        if data:
            pids.extend(int(pid) for pid in data.split())
    return pids


def _stat(pid: int) -> tuple[bytes, int, int] | None:
    """The state letter, process group and start time of *pid*, or ``None`` if it is gone.

    (pid, start time) names one process for good: a pid can be reused, the pair not.
    """
    data = _read(f"/proc/{pid}/stat")
    if data is None:
        return None
    # "pid (comm) state ppid pgrp ... starttime ...": comm may hold spaces and parentheses.
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def _tags(pid: int) -> list[str]:
    """The trine tags in *pid*'s environment (empty if it has none or cannot be read)."""
    data = _read(f"/proc/{pid}/environ")
    prefix = TAG_VARIABLE.encode() + b"="
    for entry in (data or b"").split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode("utf-8", "replace").split()
    return []


def _send(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # gone meanwhile
        os.kill(pid, signum)


def _reap(pid: int) -> None:
    """Reap *pid*, a zombie child of this process."""
    with contextlib.suppress(ChildProcessError):  # reaped meanwhile
        os.waitpid(pid, os.WNOHANG)


@final
class Batch:
    """What the commands of one run share: a tag, a log registry, and the sweep at the end.

    ``async with Batch(...) as batch:`` turns the subreaper on (Linux) for
    the duration, and on the way out stops and reaps whatever the commands
    left that can be found: ``SIGTERM``, then ``SIGKILL`` after *kill_grace*.
    """

    __slots__ = (
        "_adopted",
        "_base_env",
        "_devnull",
        "_env",
        "_glanced_at",
        "_groups",
        "_log_owners",
        "_serial",
        "epolls",
        "escapees",
        "kill_grace",
        "leaders",
        "tag",
    )

    def __init__(self, kill_grace: float, env: Mapping[str, str] | None) -> None:
        self.kill_grace = kill_grace
        self._env = env
        self.tag: str | None = None
        """The batch's tag, or ``None`` where escapees are not tracked."""
        self._base_env: dict[str, str] | None = None
        self._serial = itertools.count()
        self._groups: set[int] = set()
        self._log_owners: dict[tuple[int, int], str] = {}
        self.leaders: set[int] = set()
        """The pids of the commands' leaders while they run: Trio's to reap, never ours."""
        self._devnull = -1
        self._adopted = -1
        self._glanced_at = -math.inf
        self.epolls = EpollPool()
        """Epolls for the commands' watches, reused from one command to the next."""
        self.escapees: dict[tuple[int, int], str] = {}
        """Adopted processes found to be the commands', by (pid, start time), with the
        command's tag: ours to signal and to reap, even as zombies."""

    @trio.lowlevel.enable_ki_protection
    async def __aenter__(self) -> Batch:
        if SUBREAPER.acquire():
            # Adopted processes go to the first live thread, the main one (see
            # above); its list, kept open, is re-read with one pread.
            try:
                self._adopted = os.open(f"/proc/self/task/{os.getpid()}/children", os.O_RDONLY)
            except OSError:  # pragma: no cover  # /proc hidden from this process
                SUBREAPER.release()
            else:
                self.tag = f"{os.getpid()}.{next(_BATCHES)}"
        if self.tag is not None or self._env is not None:
            # Read once per batch: copying os.environ costs tens of microseconds.
            self._base_env = {**os.environ, **(self._env or {})}
        return self

    @trio.lowlevel.enable_ki_protection
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.epolls.close()
        if self._devnull != -1:
            os.close(self._devnull)
            self._devnull = -1
        if self.tag is None:
            return
        try:
            await self._sweep()
        finally:
            try:
                os.close(self._adopted)
            finally:
                SUBREAPER.release()

    def devnull(self) -> int:
        """A descriptor of ``/dev/null`` for the commands' stdin (and discarded output)."""
        if self._devnull == -1:
            self._devnull = os.open(os.devnull, os.O_RDWR)
        return self._devnull

    def command_tag(self) -> str | None:
        """A new tag for one command, or ``None`` where escapees are not tracked."""
        return None if self.tag is None else f"{self.tag}.{next(self._serial)}"

    def environment(self, own: Mapping[str, str] | None, tag: str | None) -> dict[str, str] | None:
        """The environment for a command with variables *own* and *tag*; ``None``: inherit ours."""
        if self._base_env is None:
            return None if own is None else {**os.environ, **own}
        if own is None and tag is None:
            return self._base_env
        env = {**self._base_env, **(own or {})}
        if tag is not None:
            above = env.get(TAG_VARIABLE, "")
            env[TAG_VARIABLE] = f"{above} {tag}" if above else tag
        return env

    def claim_log(self, key: tuple[int, int], command_id: str) -> str:
        """Record that the file *key* (device, inode) is *command_id*'s log; return its owner."""
        return self._log_owners.setdefault(key, command_id)

    def note_group(self, pgid: int) -> None:
        """Remember a group that may still have members for the sweep to reap."""
        if self.tag is not None:
            self._groups.add(pgid)

    def _adopted_children(self) -> list[int]:
        data = b""
        while chunk := os.pread(self._adopted, 65536, len(data)):
            data += chunk
        return [int(pid) for pid in data.split()]

    def find(
        self, command_tag: str | None, group: int = 0, *, everywhere: bool = False
    ) -> list[int]:
        """The running adopted processes of the command tagged *command_tag* (``None``: any).

        Those in process group *group* are left out: the group is signalled
        whole. Each process is attributed once, the first time it is seen
        alive (a zombie's environment is gone), and then remembered in
        :attr:`escapees`, so that its zombie is reaped here later. With
        *everywhere* (the sweep) every thread's children are read, and
        members of the batch's groups count too.
        """
        assert self.tag is not None
        prefix = f"{self.tag}."
        running = []
        leaders, escapees, groups = self.leaders, self.escapees, self._groups
        for pid in _all_children() if everywhere else self._adopted_children():
            if pid in leaders:
                continue
            stat = _stat(pid)
            if stat is None:
                continue
            state, pgid, started = stat
            if state == b"Z":
                if escapees.pop((pid, started), None) is not None or pgid in groups:
                    _reap(pid)
                continue
            owner = escapees.get((pid, started))
            if owner is None:
                owner = next((tag for tag in _tags(pid) if tag.startswith(prefix)), None)
                if owner is not None:
                    escapees[pid, started] = owner
            if command_tag is None:
                if owner is not None or (everywhere and pgid in groups):
                    running.append(pid)
            elif owner == command_tag and pgid != group:
                running.append(pid)
        return running

    def glance(self) -> None:
        """Learn which adopted processes are the batch's, at most every few milliseconds.

        Called as commands end, it costs one read of a /proc file when there
        is nothing new (and nothing, between glances). The processes found
        are not signalled: a command's escapees that do not hold its output
        are stopped by the sweep, when the batch ends.
        """
        if self.tag is None:
            return
        now = trio.current_time()
        if now - self._glanced_at >= _GLANCE_INTERVAL:
            self._glanced_at = now
            self.find(None)

    def _leftovers(self) -> list[int]:
        return self.find(None, everywhere=True)

    async def _sweep(self) -> None:
        with trio.CancelScope(shield=True):
            leftovers = self._leftovers()
            if not leftovers:
                return
            kill_at = trio.current_time() + self.kill_grace
            terminated: set[int] = set()
            delay = FIRST_POLL
            with trio.move_on_at(kill_at + _REAP_WAIT):
                while leftovers:
                    killing = trio.current_time() >= kill_at
                    for pid in leftovers:
                        if killing:
                            _send(pid, signal.SIGKILL)
                        elif pid not in terminated:
                            terminated.add(pid)
                            _send(pid, signal.SIGTERM)
                    await trio.sleep(delay)
                    delay = min(delay * 2, MAX_POLL)
                    leftovers = self._leftovers()


@final
class Family:
    """The processes of one attempt: the leader's group and, on Linux, its escapees."""

    __slots__ = ("_group_terminated", "_terminated", "batch", "pgid", "tag")

    def __init__(self, pgid: int, tag: str | None, batch: Batch) -> None:
        self.pgid = pgid
        self.tag = tag
        self.batch = batch
        self._group_terminated = False
        self._terminated: set[int] = set()

    def signal_group(self, signum: int) -> bool:
        """Send *signum* to the group; ``False`` if the group is gone."""
        if signum == signal.SIGTERM:
            self._group_terminated = True
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:
            return False
        except PermissionError:  # pragma: no cover  # only if the pgid went to another user
            return False
        return True

    def reap_group(self) -> None:
        """Reap the members of the group that were adopted and have exited.

        Only once the leader is reaped: ``waitid(P_PGID)`` would reap it too.
        """
        if self.tag is None:
            return  # without the subreaper no member is ever our child
        while True:
            try:
                if os.waitid(os.P_PGID, self.pgid, os.WEXITED | os.WNOHANG) is None:
                    return
            except ChildProcessError:
                return

    def group_alive(self) -> bool:
        """Whether anything is left in the group (after the leader is reaped)."""
        self.reap_group()
        try:
            os.killpg(self.pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def escapees(self) -> list[int]:
        """This command's running processes outside its group that were adopted."""
        if self.tag is None:
            return []
        return self.batch.find(self.tag, self.pgid)

    def terminate(self) -> int:
        """``SIGTERM`` the group (once) and every escapee found (once each); count the escapees."""
        if not self._group_terminated:
            self.signal_group(signal.SIGTERM)
        escapees = self.escapees()
        if escapees:
            self.batch.note_group(self.pgid)
        for pid in escapees:
            if pid not in self._terminated:
                self._terminated.add(pid)
                _send(pid, signal.SIGTERM)
        return len(escapees)

    def kill(self) -> None:
        """``SIGKILL`` the group and every escapee found."""
        self.batch.note_group(self.pgid)
        self.signal_group(signal.SIGKILL)
        for pid in self.escapees():
            _send(pid, signal.SIGKILL)
