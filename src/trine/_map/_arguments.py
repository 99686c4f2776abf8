"""The checks every map makes at the call: *items*, *fn*, *limit*, *ordered* and *policy*."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TypeVar

import trio

from .._policy import SupportsCall, _check_call_guard
from .._util import NotAwaitableError, check_async_callable, check_bool, check_int

__all__ = ["_check_arguments"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def _check_items(items: object) -> None:
    if isinstance(items, Iterable | AsyncIterable):
        return
    if inspect.iscoroutine(items):
        items.close()  # it will never be awaited: no "never awaited" warning on top
        raise TypeError(
            f"items must be an iterable or an async iterable, got the coroutine object {items!r}: "
            "await it to get the items, or pass an async generator"
        )
    raise TypeError(f"items must be an iterable or an async iterable, got {items!r}")


def _check_arguments(
    fn: Callable[[_T], Awaitable[_R]],
    items: object,
    limit: object,
    policy: SupportsCall | None,
    ordered: object = False,
) -> Callable[[_T], Awaitable[_R]]:
    """Validate the arguments; return the function the workers call for each item."""
    _check_items(items)  # first, so that a coroutine given as items is closed
    check_async_callable("fn", fn)
    check_int("limit", limit)
    check_bool("ordered", ordered)
    if policy is None:
        return fn
    _check_call_guard("policy", policy)
    return _through_policy(policy, fn)


def _through_policy(
    policy: SupportsCall, fn: Callable[[_T], Awaitable[_R]]
) -> Callable[[_T], Awaitable[_R]]:
    """``policy.call(fn, item)`` for each item, raising a misused *fn* once per map.

    The policy finds out that *fn* is not async (:exc:`NotAwaitableError`)
    inside its call, where the workers' own once-only check cannot see it:
    the first call to find it raises, which cancels the map, and a call that
    finds it after that waits for the cancellation instead of raising it again.
    """
    misused = False

    async def call(item: _T) -> _R:
        nonlocal misused
        try:
            return await policy.call(fn, item)
        except NotAwaitableError:
            if misused:
                await trio.sleep_forever()
            misused = True
            raise

    return call
