"""One guard's link to its Redis server: scripts run with a deadline, outages remembered.

Every shared guard talks to the server only through a :class:`_Link`. It runs
the guard's Lua scripts (one round trip each), counts the round trips, and
turns every way the server can be out of reach -- connection refused or lost,
the server still loading its data after a restart, a reply later than the
guard's ``timeout`` -- into :exc:`~trine.redis.RedisUnavailable`. After such a
failure the link is *down* for ``recheck_interval`` seconds: calls do not wait
on the server again until then, so a guard failing open or closed answers at
once during an outage, and the first call after the interval tries the server
again, which is how a guard recovers by itself.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Sequence
from typing import Any, Literal, TypeAlias, final

import coredis
import coredis.exceptions
import trio

from .._util import check_choice, check_number
from ._errors import RedisUnavailable
from ._lua import script_source

__all__ = [
    "OnUnavailable",
    "check_client",
    "check_name",
    "check_on_unavailable",
    "decode",
    "seconds",
]

OnUnavailable: TypeAlias = Literal["fail_closed", "fail_open"]
_ON_UNAVAILABLE: tuple[OnUnavailable, ...] = ("fail_closed", "fail_open")

# What "the server is out of reach" looks like from coredis. ConnectionError
# covers refused and lost connections, BusyLoadingError (a restarted server
# loading its data) and protocol breakage; TimeoutError is coredis's own
# stream_timeout; the cluster and read-only errors come during a failover.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    coredis.exceptions.ConnectionError,
    coredis.exceptions.ClusterDownError,
    coredis.exceptions.TryAgainError,
    coredis.exceptions.ReadOnlyError,
    TimeoutError,
)

Client: TypeAlias = "coredis.Redis[Any] | coredis.RedisCluster[Any]"


def check_client(client: object) -> None:
    """Refuse anything but a coredis client, naming ``client``."""
    if not isinstance(client, coredis.Redis | coredis.RedisCluster):
        raise TypeError(f"client must be a coredis.Redis or coredis.RedisCluster, got {client!r}")


def check_name(name: object) -> str:
    """A guard's name: the part of its Redis keys that every process must agree on."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    if not name:
        raise ValueError("name must not be empty, got ''")
    if "{" in name or "}" in name:
        # The name becomes the keys' hash tag ({name}), which must not nest.
        raise ValueError(f"name must not contain '{{' or '}}', got {name!r}")
    return name


def check_on_unavailable(value: object) -> OnUnavailable:
    if not isinstance(value, str):
        raise TypeError(f"on_unavailable must be 'fail_closed' or 'fail_open', got {value!r}")
    return check_choice("on_unavailable", value, _ON_UNAVAILABLE)  # type: ignore[arg-type]  # a str, checked against the choices


def describe_server(client: Client) -> str:
    """``host:port`` (or the socket path) of the server *client* talks to."""
    location = getattr(client.connection_pool, "location", None)
    if location is not None:
        return repr(location)
    return f"the cluster of {type(client).__name__}"


def decode(value: object) -> str:
    """A reply element as text, whether the client decodes responses or not."""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def seconds(microseconds: object) -> float:
    """A duration the scripts return (microseconds, as a string) in seconds."""
    return float(decode(microseconds)) / 1e6


def microseconds(duration: float) -> str:
    """A duration in seconds as the scripts take it: microseconds, exact to the last bit."""
    return repr(duration * 1e6)


@final
class _Link:
    """How one guard reaches its server (see the module docstring)."""

    __slots__ = (
        "_down_until",
        "_scripts",
        "client",
        "failures",
        "guard",
        "recheck_interval",
        "round_trips",
        "server",
        "timeout",
    )

    def __init__(
        self, client: Client, guard: str, *, timeout: object, recheck_interval: object
    ) -> None:
        check_client(client)
        self.client = client
        self.guard = guard
        self.server = describe_server(client)
        self.timeout = check_number("timeout", timeout, exclusive=True)
        self.recheck_interval = check_number("recheck_interval", recheck_interval)
        self._down_until = -math.inf
        self._scripts: dict[str, Any] = {}
        self.round_trips = 0
        """Scripts that reached the server and came back."""
        self.failures = 0
        """Round trips that failed because the server was out of reach."""

    def is_down(self) -> bool:
        """Whether a recent failure says not to try the server yet."""
        return trio.current_time() < self._down_until

    def unavailable(self, reason: str) -> RedisUnavailable:
        return RedisUnavailable(self.server, self.guard, reason)

    def down_error(self) -> RedisUnavailable:
        """The error for a call made while the link is down (no round trip)."""
        left = self._down_until - trio.current_time()
        return self.unavailable(f"a round trip failed; trying again in {left:.3g} s")

    async def run(
        self, script: str, keys: Sequence[str], args: Sequence[Any], *, shield: bool = False
    ) -> Any:
        """Run *script* on the server and return its reply.

        With *shield*, the round trip is not interrupted by cancellation (the
        deadline still applies): for scripts that take something, whose reply
        the caller must see to give it back.

        Raises:
          RedisUnavailable: if the server is out of reach, or was within the
            last ``recheck_interval`` seconds.
        """
        call = self._scripts.get(script)
        if call is None:
            call = self._scripts[script] = self.client.register_script(script_source(script))
        # A coredis command is sent only when awaited, so building it costs nothing.
        return await self.call(call(keys=keys, args=args), shield=shield)

    async def call(
        self, command: Awaitable[Any], *, shield: bool = False, blocking_for: float = 0.0
    ) -> Any:
        """Await one coredis command under the rules of :meth:`run`.

        *blocking_for* is added to the deadline, for a command that blocks on
        the server that long (a read that waits for entries).
        """
        if trio.current_time() < self._down_until:
            raise self.down_error()
        limit = self.timeout + blocking_for
        # One scope for both: its own deadline cancels it even when it is
        # shielded from the scopes outside (and it is cheaper than fail_after).
        deadline = trio.current_time() + limit
        try:
            with trio.CancelScope(deadline=deadline, shield=shield) as scope:
                reply = await command
        except _UNAVAILABLE as exc:
            self._went_down()
            raise self.unavailable(f"{type(exc).__name__}: {exc}") from exc
        if scope.cancelled_caught:
            self._went_down()
            raise self.unavailable(f"no reply within timeout={limit:g} s")
        self.round_trips += 1
        return reply

    def _went_down(self) -> None:
        self.failures += 1
        self._down_until = trio.current_time() + self.recheck_interval
