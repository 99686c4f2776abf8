"""A redis-server of the tests' own, for tests/test_redis*.py (a pytest plugin: see conftest.py).

The session fixture starts ``redis-server`` on a free loopback port with its
data in a temporary directory, waits until it answers ``PING``, and stops it
at the end. Outside CI a missing ``redis-server`` skips the tests that need
it, saying why; in CI (``CI=true``) it fails them, since .ci/run installs it.
coredis is imported only by the fixtures that use it, so this plugin loads
in an environment without it.
"""

from __future__ import annotations

import gc
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

REDIS_SERVER = shutil.which("redis-server")


def ci_from_environment() -> bool:
    """Whether the tests run in CI (``CI=true``, as .ci/run and CI services set it)."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


IN_CI = ci_from_environment()


# coredis makes a connection's anyio memory streams before it connects and
# closes them only once connected, so every refused connection (the tests that
# stop the server make some) leaves them to the garbage collector, which warns.
# Each Redis test module collects its garbage as it ends, where this filter
# applies, rather than leave it to whichever module (or the session's end)
# comes next. Once per module, not per test: a full collection of the test
# process's heap takes about 0.2 s on a loaded machine, 25 s over the tests.
_UNCLOSED_STREAMS = "ignore:Unclosed <MemoryObject:ResourceWarning:anyio.streams.memory"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", _UNCLOSED_STREAMS)


@pytest.fixture(autouse=True, scope="module")
def _collect_redis_garbage(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if request.module.__name__.startswith("test_redis"):
        gc.collect()


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process: start, stop, kill and start again on the same port."""

    host = "127.0.0.1"

    def __init__(self, directory: pathlib.Path, port: int | None = None) -> None:
        assert REDIS_SERVER is not None
        self.directory = directory
        self.port = free_port() if port is None else port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        assert self.process is None
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", self.host,
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while not self.answers_ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.02)

    def answers_ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and wait for it (its data is not kept: no persistence)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would: every connection drops, every key is lost."""
        process, self.process = self.process, None
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server for the whole session, on a free loopback port."""
    if REDIS_SERVER is None:
        message = (
            "redis-server is not installed (apt-get install redis-server): "
            "the trine.redis tests run against a real server"
        )
        if IN_CI:
            pytest.fail(message + ", and CI must run them")
        pytest.skip(message)
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis_server(redis_server: RedisServer, tmp_path: pathlib.Path) -> Iterator[RedisServer]:
    """A redis-server for one test alone, which it may kill and restart."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Any]:
    """A coredis client of the session's server, emptied first (``FLUSHALL``)."""
    import coredis

    async with coredis.Redis(host=redis_server.host, port=redis_server.port) as client:
        await client.flushall()
        yield client
