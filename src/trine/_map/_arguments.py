"""The checks every map makes at the call: *items*, *fn*, *limit*, *ordered* and *policy*."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TypeVar

from .._policy import SupportsCall, _check_call_guard
from .._util import check_async_callable, check_bool, check_int

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
    # Each item's call goes through the policy: policy.call(fn, item).
    return functools.partial(policy.call, fn)
