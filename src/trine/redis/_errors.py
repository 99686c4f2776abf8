"""The exceptions of :mod:`trine.redis`: a server that cannot be reached, a lease that was lost.

The class tree (beside :class:`trine.TrineError`'s own children)::

    Exception
     └── TrineError
          ├── RedisUnavailable    (also ConnectionError)
          └── LeaseLost
"""

from __future__ import annotations

from .._errors import TrineError

__all__ = ["LeaseLost", "RedisUnavailable"]


class RedisUnavailable(TrineError, ConnectionError):
    """A shared guard could not reach its Redis server, and fails closed.

    Raised instead of admitting (or refusing) a call when the guard was made
    with ``on_unavailable="fail_closed"`` (the default) and the round trip
    failed: the connection was refused or lost, the server answered that it
    is loading its data, or no answer came within the guard's ``timeout``.
    The original error is the ``__cause__``. For ``recheck_interval`` seconds
    after a failed round trip the guard does not try the server again and
    raises this at once; the first call after that tries again, so the guard
    recovers by itself when the server is back.

    It is also a :exc:`ConnectionError`, which is what it is.

    Attributes:
      server: the server, as ``"host:port"`` (or the socket path).
      guard: what could not reach it, e.g. ``"rate limiter 'api'"``.
    """

    server: str
    guard: str

    def __init__(self, server: str, guard: str, reason: str) -> None:
        super().__init__(f"redis at {server} is unavailable to {guard}: {reason}")
        self.server = server
        self.guard = guard

    def __reduce__(self) -> tuple[object, ...]:
        reason = str(self).partition(": ")[2]
        return (RedisUnavailable, (self.server, self.guard, reason))


class LeaseLost(TrineError):
    """A :class:`~trine.redis.Semaphore` lease ended while its holder was still inside ``hold()``.

    The server said the slot is no longer this holder's (its lease expired
    before a renewal reached the server, or the server lost its data), or no
    renewal could be confirmed before the lease's time-to-live ran out. The
    holder's block was cancelled when that was found, and this is raised from
    its ``async with``. Another process may hold the slot now: anything the
    holder still writes must carry its fencing token, so that the protected
    resource refuses it.

    Attributes:
      name: the semaphore's name.
      slot: the slot the lease held.
      token: the lease's fencing token.
    """

    name: str
    slot: int
    token: int

    def __init__(self, name: str, slot: int, token: int, reason: str) -> None:
        super().__init__(
            f"semaphore {name!r} lost the lease on slot {slot} (token {token}): {reason}"
        )
        self.name = name
        self.slot = slot
        self.token = token

    def __reduce__(self) -> tuple[object, ...]:
        reason = str(self).partition("): ")[2]
        return (LeaseLost, (self.name, self.slot, self.token, reason))
