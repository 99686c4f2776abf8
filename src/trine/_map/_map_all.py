"""map_all, map_settled and for_each: every item mapped before the call returns."""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import outcome
import trio

from .._deadline import cut_off, resolve_deadline
from .._policy import SupportsCall
from .._progress._display import show_calls
from .._util import check_bool
from ._arguments import _check_arguments
from ._run import _Run
from ._sources import _length
from ._workers import _MISSING

__all__ = ["for_each", "map_all", "map_settled"]

_T = TypeVar("_T")
_R = TypeVar("_R")


async def map_all(
    fn: Callable[[_T], Awaitable[_R]],
    items: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    ordered: bool = True,
    policy: SupportsCall | None = None,
    progress: bool = False,
) -> list[_R]:
    """Call ``await fn(item)`` for every item, at most *limit* at once, and return the results.

    ::

        pages = await trine.map_all(fetch, urls, limit=10)

    The list holds one result per item: in the order of *items* with
    ``ordered=True``, in the order the calls finished with ``ordered=False``.
    *items* is read lazily as workers free up (it may be a generator or an
    async generator). The first exception from ``fn`` or *items* cancels the
    other calls and propagates in an :exc:`ExceptionGroup`, as from a Trio
    nursery.

    This is the fastest way to map when you want every result: the workers
    write into the list directly, with no iterator in between.

    Args:
      fn: an async function of one argument, or any callable returning an
        awaitable.
      items: an iterable or async iterable of arguments for *fn*.
      limit: the most calls of *fn* to run at once (>= 1).
      ordered: keep the order of *items* (true) or the order of completion.
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn, *args)``)
        that each item's call goes through: ``await policy.call(fn, item)``, so
        retries, timeouts, breakers and limiters shared with other code apply
        per item. *limit* still bounds the calls in flight.
      progress: show a live display of the calls done (of ``len(items)``,
        with a bar and an ETA, when *items* has a length) while the map runs,
        as :func:`trine.progress` does; only on a terminal with rich installed,
        and at no cost anywhere else.

    Returns:
      The results of *fn*, one per item.

    Raises:
      TypeError: at the call, if *fn* is not callable (or is a coroutine
        object), *limit* is not an int, *ordered* is not a bool, or *items*
        is not iterable (a coroutine given as *items* is closed). In an
        :exc:`ExceptionGroup`, once, if calling *fn* returned something that
        cannot be awaited (*fn* is not an async function).
      ValueError: *limit* is less than 1.
      ExceptionGroup: holding the first exception that *fn* or *items* raised.
    """
    call = _check_arguments(fn, items, limit, policy, ordered)
    check_bool("progress", progress)
    run = _Run(call, items, limit, "ordered" if ordered else "unordered")
    await (run.run() if not progress else _run_shown(run, items))
    assert run.results is not None
    return run.results


async def map_settled(
    fn: Callable[[_T], Awaitable[_R]],
    items: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    ordered: bool = True,
    policy: SupportsCall | None = None,
    deadline: float | None = None,
    timeout: float | None = None,  # noqa: ASYNC109  # partial results at the deadline, not TooSlowError
) -> list[outcome.Outcome[_R]]:
    """Like :func:`map_all`, but return one outcome per item, and stop at a deadline if asked.

    :func:`map_settled` is to :func:`map_all` what :func:`settle` is to
    :func:`gather`: a failing call is that item's :class:`outcome.Error` and
    cancels nothing; every other item is an :class:`outcome.Value`::

        results = await trine.map_settled(fetch, urls, limit=10, timeout=5.0)
        pages = [r.value for r in results if isinstance(r, outcome.Value)]

    With a *deadline* (or a *timeout*), at that moment the calls still
    running are cancelled, no further item is taken from *items* (a generator
    is closed), and :func:`map_settled` returns at once with what finished:
    each call cut off has ``outcome.Error(trine.DeadlineExceeded(deadline))``.
    Items not yet taken at the deadline have no entry, so the list has one
    outcome per item *taken*: with ``ordered=True`` they are the first
    ``len(results)`` items, in order; with ``ordered=False`` the outcomes come
    in the order the calls finished, those cut off last.

    A cancellation from outside is still a cancellation: it propagates as
    :exc:`trio.Cancelled`, never as an outcome. An exception from iterating
    *items* is not an item's outcome: it cancels the calls and propagates in
    an :exc:`ExceptionGroup`, as from :func:`map_all`.

    Args:
      fn: an async function of one argument, or any callable returning an
        awaitable.
      items: an iterable or async iterable of arguments for *fn*.
      limit: the most calls of *fn* to run at once (>= 1).
      ordered: outcomes in the order of *items* (true) or of completion.
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn, *args)``)
        that each item's call goes through; what it finally raises is the
        item's outcome.
      deadline: when to cut the calls off, as a :func:`trio.current_time`
        value (absolute, as :func:`trio.move_on_at` takes it). ``None``: never.
      timeout: the same, in seconds from the call (relative, as
        :func:`trio.move_on_after` takes it). Give *deadline* or *timeout*,
        not both.

    Returns:
      One :class:`outcome.Outcome` per item taken from *items*.

    Raises:
      TypeError: at the call, if *fn* is not callable (or is a coroutine
        object), *limit* is not an int, *ordered* is not a bool, *items* is
        not iterable, or *deadline* or *timeout* is not a number. In an
        :exc:`ExceptionGroup`, once, if calling *fn* returned something that
        cannot be awaited (a programming error, never an item's outcome).
      ValueError: *limit* is less than 1, *deadline* is NaN, *timeout* is
        negative or NaN, or both are given.
      ExceptionGroup: holding the exception that iterating *items* raised.
    """
    call = _check_arguments(fn, items, limit, policy, ordered)
    at = resolve_deadline(deadline, timeout)
    run = _Run(call, items, limit, "ordered" if ordered else "unordered", settle=True)
    with trio.CancelScope(deadline=math.inf if at is None else at) as scope:
        await run.run()
    results = run.results
    assert results is not None
    if scope.cancelled_caught:
        # Cancelled at the same moment from outside too: that one goes on.
        await trio.lowlevel.checkpoint_if_cancelled()
        assert at is not None
        _cut_off_the_rest(results, run.taken, at, ordered=ordered)
    return results


def _cut_off_the_rest(results: list[Any], taken: int, at: float, *, ordered: bool) -> None:
    """Give every item taken whose call was cancelled at *at* its :func:`cut_off` outcome."""
    if ordered:
        # The list grows as results are stored: cut spare slots, add the missing ones.
        del results[taken:]
        results.extend([_MISSING] * (taken - len(results)))
        for index in range(taken):
            if results[index] is _MISSING:
                results[index] = cut_off(at)
    else:
        results.extend(cut_off(at) for _ in range(taken - len(results)))


async def for_each(
    fn: Callable[[_T], Awaitable[object]],
    items: Iterable[_T] | AsyncIterable[_T],
    *,
    limit: int,
    policy: SupportsCall | None = None,
    progress: bool = False,
) -> None:
    """Call ``await fn(item)`` for every item, at most *limit* at once; discard the results.

    ::

        await trine.for_each(download, urls, limit=10)

    Like :func:`map_all` without keeping results: memory stays proportional to
    *limit* however long (or infinite) *items* is. The first exception from
    ``fn`` or *items* cancels the other calls and propagates in an
    :exc:`ExceptionGroup`.

    Args:
      fn: an async function of one argument, or any callable returning an
        awaitable.
      items: an iterable or async iterable of arguments for *fn*.
      limit: the most calls of *fn* to run at once (>= 1).
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn, *args)``)
        that each item's call goes through: ``await policy.call(fn, item)``, so
        retries, timeouts, breakers and limiters shared with other code apply
        per item. *limit* still bounds the calls in flight.
      progress: show a live display of the calls done while they run, as
        :func:`map_all` does.

    Raises:
      TypeError: at the call, if *fn* is not callable (or is a coroutine
        object), *limit* is not an int, or *items* is not iterable (a
        coroutine given as *items* is closed). In an :exc:`ExceptionGroup`,
        once, if calling *fn* returned something that cannot be awaited
        (*fn* is not an async function).
      ValueError: *limit* is less than 1.
      ExceptionGroup: holding the first exception that *fn* or *items* raised.
    """
    call = _check_arguments(fn, items, limit, policy)
    check_bool("progress", progress)
    run = _Run(call, items, limit, "discard")
    await (run.run() if not progress else _run_shown(run, items))


async def _run_shown(run: _Run, items: object) -> None:
    """*run* with its calls counted for a live display, if one draws (``progress=True``)."""
    async with show_calls(_length(items)) as counts:
        if counts is not None:
            run._fn = counts.wrap(run._fn, run._awaitable)
        await run.run()
