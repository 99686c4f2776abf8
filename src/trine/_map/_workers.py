"""What every worker of a map shares: the yield interval, and a ``fn`` that is not async."""

from __future__ import annotations

import types
from collections.abc import Awaitable
from typing import Any, Final

import trio

from .._util import NotAwaitableError, check_awaitable

__all__ = ["_MISSING", "_YIELD_EVERY", "_CoroutineType", "_Workers"]

_MISSING: Final[Any] = object()
_CoroutineType: Final = types.CoroutineType

# A worker whose ``fn`` never yields would otherwise run the whole input
# without letting another task (or a deadline, or Ctrl-C) in. Every this many
# items of its own it passes through a full checkpoint. map_all's workers skip
# it when other workers took items meanwhile, which they can only have done
# while this worker was suspended (so it did yield): a worker never runs more
# than 2 * _YIELD_EVERY items without yielding, and with an ``fn`` that yields
# the checkpoint (a scheduler trip, ~4 % of such an item) is almost never paid.
_YIELD_EVERY: Final = 64


class _Workers:
    """What every worker of one map shares about a ``fn`` that is not async."""

    __slots__ = ("_misused",)

    def __init__(self) -> None:
        self._misused = False

    def _awaitable(self, result: object) -> Awaitable[Any]:
        """*result*, what ``fn(item)`` returned when it is not a coroutine, if it can be awaited.

        Workers call this only off the fast path (``type(result)`` is not a
        coroutine). The first worker to find a non-awaitable raises
        :exc:`NotAwaitableError`, which cancels the map; a worker that finds
        one after it waits for that cancellation instead of raising the same
        error again, so the nursery's group holds it once.
        """
        try:
            return check_awaitable("fn", result)
        except NotAwaitableError:
            if self._misused:
                return trio.sleep_forever()  # noqa: ASYNC105  # the worker awaits it at once
            self._misused = True
            raise
