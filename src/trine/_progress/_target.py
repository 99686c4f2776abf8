""":func:`trine.progress`: the live display of a pipeline, a graph or an amap, in a block."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from .._graph import TaskGraph
from .._map import _MapResults
from .._pipeline import Pipeline, PipelineOutput
from .._util import check_number
from ._display import DEFAULT_REFRESH, Frame, check_console, live, terminal_console
from ._frames import GraphFrame, MapFrame, PipelineFrame

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["progress"]


def _check_target(target: object) -> None:
    if not isinstance(target, PipelineOutput | Pipeline | TaskGraph | _MapResults):
        raise TypeError(
            "target must be a PipelineOutput (from `async with pipe.open() as out`), a Pipeline, "
            f"a TaskGraph, or the results of `async with trine.amap(...)`, got {target!r}"
        )


def _frame(target: Any, start: float) -> Frame:
    if isinstance(target, PipelineOutput | Pipeline):
        return PipelineFrame(target.statistics, start)
    if isinstance(target, TaskGraph):
        return GraphFrame(target.statistics, start)
    return MapFrame(target._progress_counts, start)


def progress(
    target: PipelineOutput[Any] | Pipeline[Any] | TaskGraph | AsyncIterator[Any],
    *,
    refresh: float = DEFAULT_REFRESH,
    console: Console | None = None,
) -> AbstractAsyncContextManager[None]:
    """Show a live display of *target*'s progress while the block runs (on a terminal).

    ::

        async with pipe.open() as out, trine.progress(out):
            async for page in out:
                ...

        async with trine.progress(graph):
            await graph.run()

    The display is ``trine run``'s, drawn by `rich <https://rich.readthedocs.io>`__:

    - a pipeline (its :class:`PipelineOutput`, or the :class:`Pipeline`, whose
      latest run it shows): a line per stage with the items in, out and
      failed, the items out per second since the display opened, and how
      full the stage's buffer is;
    - a :class:`TaskGraph`: a bar of the nodes finished of all, how many
      failed, were skipped or cancelled, how many run, the time, and an ETA at
      the rate so far;
    - the results of :func:`amap`: the items done (of all, with a bar and an
      ETA, when *items* has a ``len()``) and the calls running. For
      :func:`map_all` and :func:`for_each`, which give you no object to pass
      here, say ``progress=True``.

    A background task redraws it every *refresh* seconds (timed by
    :func:`trio.current_time`, so on a fake clock too), in a nursery of this
    block: it ends with the block, which then draws the last frame and leaves
    it on the screen. The display only reads the counters *target* keeps for
    ``statistics()``, so the run itself goes no slower.

    It draws nothing, and costs one check, when *console* (by default stdout)
    is not a terminal: pipes, files, CI logs. rich is the ``cli`` extra
    (``pip install 'trine[cli]'``); without it, on a terminal, nothing is drawn
    and a :exc:`RuntimeWarning` says why.

    An exception raised in the block leaves it as itself, not in a group.

    Args:
      target: what to show: a :class:`PipelineOutput`, a :class:`Pipeline`, a
        :class:`TaskGraph`, or the iterator ``async with amap(...)`` gave.
      refresh: seconds between two frames (> 0).
      console: the :class:`rich.console.Console` to draw on; by default one
        on stdout.

    Raises:
      TypeError: *target* is none of those, *refresh* is not a number, or
        *console* is not a rich console.
      ValueError: *refresh* is not above 0.
    """
    _check_target(target)
    refresh = check_number("refresh", refresh, exclusive=True)
    check_console(console)
    return _progress(target, refresh, console)


@asynccontextmanager
async def _progress(
    target: object, refresh: float, console: Console | None
) -> AsyncGenerator[None]:
    shown = terminal_console(console)
    if shown is None:
        yield
        return
    async with live(shown, _frame(target, trio.current_time()), refresh):
        yield
