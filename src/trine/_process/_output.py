"""A command's output and exit, watched from the task that runs it.

:class:`Output` is where one stream goes: a bounded :class:`Tail` and, with
``logs=``, a file. A *watch* reads both pipes into their outputs and notices
the leader's exit; its ``next_event()`` waits for whatever comes next.

- :class:`EpollWatch` (Linux) does it in the caller's task: one ``epoll``
  holds both pipes and a pidfd of the leader, and Trio waits on that epoll's
  own descriptor, so one wake-up handles output and exit alike. A command
  that prints nothing and exits costs a single wake-up, where
  ``trio.run_process`` runs a reader task per pipe, each paying a checkpoint
  per read.
- :class:`TaskWatch` is the portable one: a task per pipe and one waiting
  for the exit, in a nursery of the caller's.

Either way, closing the watch stops reading at once, whoever still holds the
pipes: that is what lets a timeout end on time.
"""

from __future__ import annotations

import os
import select
import stat
from collections.abc import Callable
from typing import IO, final

import trio

__all__ = [
    "EPOLL",
    "EpollPool",
    "EpollWatch",
    "ExitWatch",
    "Output",
    "Pipes",
    "Tail",
    "TaskWatch",
    "log_name",
    "open_log",
]

# Bytes asked of a pipe per read: large enough that a command printing
# gigabytes costs few scheduler trips, small enough to keep memory flat.
_READ_SIZE = 65536
# Reads of one pipe per drain_now() call: a descendant still writing cannot
# keep the caller reading for ever.
_DRAIN_READS = 16

EPOLL = hasattr(select, "epoll") and hasattr(os, "pidfd_open")
"""Whether :class:`EpollWatch` can be used (Linux 5.3+)."""


@final
class Tail:
    """The last *size* bytes written to it, in O(size) memory."""

    __slots__ = ("_buffer", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._buffer = bytearray()

    def write(self, data: bytes | bytearray) -> None:
        if self._size == 0:
            return
        self._buffer += data
        # Trim only when twice the size, so trimming is amortised O(1) per byte.
        if len(self._buffer) > 2 * self._size:
            del self._buffer[: -self._size]

    def text(self) -> str:
        return bytes(self._buffer[-self._size :] if self._size else b"").decode(
            "utf-8", errors="replace"
        )


def log_name(command_id: str) -> str:
    """*command_id* as a file name: distinct ids never share one.

    Letters, digits, ``-``, ``_`` and ``.`` are kept; every other character,
    ``%`` included, becomes ``%XX`` per UTF-8 byte (``a/b`` is ``a%2Fb``,
    ``a_b`` stays ``a_b``), so the name can be read back into the id.
    """
    return "".join(
        char
        if char.isalnum() or char in "-_."
        else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
        for char in command_id
    )


@final
class Output:
    """Where one of a command's streams goes: its tail and, with ``logs=``, a file."""

    __slots__ = ("log", "log_error", "sink", "tail")

    def __init__(self, tail_size: int, sink: Callable[[bytes], object] | None = None) -> None:
        self.tail = Tail(tail_size)
        self.log: IO[bytes] | None = None
        self.log_error: OSError | None = None
        self.sink = sink
        """Called with each chunk as it arrives (the command line's live output)."""

    def write(self, data: bytes | bytearray) -> None:
        self.tail.write(data)
        if self.sink is not None:
            self.sink(bytes(data))
        if self.log is not None:
            try:
                # A local file: a buffered write is cheap enough not to need a thread.
                self.log.write(data)
            except OSError as exc:  # a full disk: stop logging, say so in the result
                self.log_error = exc
                self._close_log()

    def close_log(self) -> OSError | None:
        """Close the log file, if any; return the first error writing it met."""
        self._close_log()
        return self.log_error

    def _close_log(self) -> None:
        log, self.log = self.log, None
        if log is not None:
            try:
                log.close()
            except OSError as exc:
                self.log_error = self.log_error or exc


def open_log(path: str) -> tuple[IO[bytes], tuple[int, int] | None]:
    """Open *path* for writing without truncating it; return the file and its identity.

    The identity, (device, inode), is ``None`` for what is not a regular file
    (``/dev/null``, a FIFO): those are shared freely and never truncated. The
    caller truncates a regular file once it knows the file is not another
    command's (through a link, or a name a case-insensitive file system does
    not tell apart from another).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        status = os.fstat(fd)
        key = (status.st_dev, status.st_ino) if stat.S_ISREG(status.st_mode) else None
        return open(fd, "wb"), key  # closed by Output
    except BaseException:  # pragma: no cover  # fstat failing on an open fd
        os.close(fd)
        raise


@final
class Pipes:
    """A command's stdout and stderr pipes: the ends it writes, until it starts, and ours.

    Made here rather than by :func:`trio.lowlevel.open_process` so that our
    ends are plain non-blocking descriptors: no stream objects to build and
    no registration with Trio to undo, per command.
    """

    __slots__ = ("_notify", "stderr", "stdout", "write_ends")

    def __init__(self) -> None:
        self.stdout, stdout_w = os.pipe()
        self.stderr, stderr_w = os.pipe()
        os.set_blocking(self.stdout, False)
        os.set_blocking(self.stderr, False)
        self.write_ends = (stdout_w, stderr_w)
        self._notify = False

    def started(self) -> None:
        """Close the write ends: only the command (and what it starts) holds them now."""
        for fd in self.write_ends:
            if fd != -1:
                os.close(fd)
        self.write_ends = (-1, -1)

    def watched_by_trio(self) -> None:
        """Note that Trio waits on our ends, so closing them must tell Trio first."""
        self._notify = True

    def close(self) -> None:
        """Close everything: whoever still writes to the pipes gets EPIPE."""
        self.started()
        for fd in (self.stdout, self.stderr):
            if self._notify:
                trio.lowlevel.notify_closing(fd)
            os.close(fd)


@final
class EpollPool:
    """Epoll objects for :class:`EpollWatch`, reused from one command to the next.

    A new epoll per command would cost its creation, Trio's registration of
    it and its unregistration and closing; a reused one only the registration
    of the command's descriptors, which the watch undoes before giving it back.
    """

    __slots__ = ("_free",)

    def __init__(self) -> None:
        self._free: list[select.epoll] = []

    def take(self) -> select.epoll:
        return self._free.pop() if self._free else select.epoll()

    def give_back(self, epoll: select.epoll) -> None:
        self._free.append(epoll)

    def close(self) -> None:
        """Close every epoll (none may be in use)."""
        for epoll in self._free:
            trio.lowlevel.notify_closing(epoll.fileno())
            epoll.close()
        self._free.clear()


@final
class EpollWatch:
    """Reads a command's pipes and notices its exit in the caller's task, through one epoll."""

    __slots__ = ("_epoll", "_outputs", "_pidfd", "_pool", "_process", "exited")

    def __init__(
        self, process: trio.Process, pidfd: int, outputs: dict[int, Output], pool: EpollPool
    ) -> None:
        # outputs: our end of each pipe, and where what comes out of it goes.
        self._process = process
        self._pidfd = pidfd
        self._outputs = outputs
        self._pool = pool
        self._epoll = pool.take()
        self._epoll.register(pidfd, select.EPOLLIN)
        for fd in outputs:
            self._epoll.register(fd, select.EPOLLIN)
        self.exited = False

    @classmethod
    def create(
        cls, process: trio.Process, outputs: dict[int, Output], pool: EpollPool
    ) -> EpollWatch | None:
        """A watch of *process*; ``None`` if the kernel gives no pidfd (use :class:`TaskWatch`)."""
        try:
            pidfd = os.pidfd_open(process.pid)
        except OSError:  # pragma: no cover  # Linux before 5.3, or a sandbox without it
            return None
        try:
            return cls(process, pidfd, outputs, pool)
        except BaseException:  # pragma: no cover  # epoll_create failed: out of descriptors
            os.close(pidfd)
            raise

    @property
    def drained(self) -> bool:
        """Whether both pipes reached end of file (or there were none)."""
        return not self._outputs

    async def next_event(self) -> None:
        """Wait for output, end of file or the exit, and take in whatever is ready."""
        await trio.lowlevel.wait_readable(self._epoll.fileno())
        exit_ready = False
        for fd, _ in self._epoll.poll(0):
            if fd == self._pidfd:
                exit_ready = True
            elif fd in self._outputs:
                self._read(fd)
        if exit_ready:
            self._reap()

    def drain_now(self) -> bool:
        """Read what the pipes hold without waiting; return whether both reached end of file."""
        for fd in list(self._outputs):
            for _ in range(_DRAIN_READS):
                if not self._read(fd):
                    break
        return self.drained

    def _read(self, fd: int) -> bool:
        """Read one chunk of *fd*; ``False`` once it would block or reached end of file."""
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:  # pragma: no cover  # EIO and the like: as good as end of file
            data = b""
        if data:
            self._outputs[fd].write(data)
            return True
        self._epoll.unregister(fd)
        del self._outputs[fd]
        return False

    def _reap(self) -> None:
        # The pidfd is readable once the leader is a zombie, so this reaps it at once.
        if self._process.poll() is not None:
            self.exited = True
            self._epoll.unregister(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    def close(self) -> None:
        """Stop watching: unregister what is left, give the epoll back, close the pidfd."""
        for fd in self._outputs:  # pipes still open: a descendant outside the group holds them
            self._epoll.unregister(fd)
        self._outputs.clear()
        if self._pidfd != -1:
            self._epoll.unregister(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        self._pool.give_back(self._epoll)


@final
class ExitWatch:
    """The watch of a command whose output goes to ``/dev/null``: only its exit to wait for."""

    __slots__ = ("_process", "exited")

    drained = True

    def __init__(self, process: trio.Process) -> None:
        self._process = process
        self.exited = False

    async def next_event(self) -> None:
        """Wait for the exit (and reap the leader); once it is reaped, nothing more happens."""
        if self.exited:
            await trio.sleep_forever()
        await self._process.wait()
        self.exited = True

    def drain_now(self) -> bool:
        """Always ``True``: there are no pipes."""
        return True

    def close(self) -> None:
        """Nothing to close."""


@final
class TaskWatch:
    """The portable watch: a task per pipe and one for the exit, in the caller's nursery.

    The tasks are shielded, so they keep reading while a cancelled command is
    being stopped; :meth:`close` cancels them.
    """

    __slots__ = ("_changed", "_closed", "_open", "_process", "_scopes", "exited")

    def __init__(
        self, nursery: trio.Nursery, process: trio.Process, outputs: dict[int, Output]
    ) -> None:
        self._process = process
        self._changed = trio.Event()
        self._scopes: list[trio.CancelScope] = []
        self._closed = False
        self._open = len(outputs)
        self.exited = False
        for fd, output in outputs.items():
            nursery.start_soon(self._pump, fd, output)
        nursery.start_soon(self._wait)

    @property
    def drained(self) -> bool:
        """Whether both pipes reached end of file (or there were none)."""
        return self._open == 0

    def _scope(self) -> trio.CancelScope:
        scope = trio.CancelScope(shield=True)
        self._scopes.append(scope)
        if self._closed:
            scope.cancel()
        return scope

    async def _pump(self, fd: int, output: Output) -> None:
        with self._scope():
            while True:
                try:
                    chunk = os.read(fd, _READ_SIZE)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(fd)
                    continue
                except OSError:  # pragma: no cover  # EIO and the like: as good as end of file
                    chunk = b""
                if not chunk:
                    break
                output.write(chunk)
                self._changed.set()
                await trio.lowlevel.checkpoint()
            self._open -= 1
            self._changed.set()

    async def _wait(self) -> None:
        with self._scope():
            await self._process.wait()
            self.exited = True
            self._changed.set()

    async def next_event(self) -> None:
        """Wait for output, end of file or the exit."""
        await self._changed.wait()
        self._changed = trio.Event()

    def drain_now(self) -> bool:
        """Whether both pipes reached end of file (the reader tasks own them)."""
        return self.drained

    def close(self) -> None:
        """Stop watching: cancel the tasks (the nursery's exit waits for them)."""
        self._closed = True
        for scope in self._scopes:
            scope.cancel()
