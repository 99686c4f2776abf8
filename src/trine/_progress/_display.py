"""Whether a progress display draws at all, and the task that redraws it.

A display draws only on a terminal, and only with rich installed (the
``cli`` extra). Anywhere else it costs one check when it opens: no rich
import, no task, no reading of counters.
"""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, Final, final

import trio
import trio_util  # type: ignore[import-untyped]  # trio-util ships no type hints

from .._block import exception_leaving_the_block
from ._render import LiveArea

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["CallCounts", "check_console", "live", "show_calls", "terminal_console"]

DEFAULT_REFRESH: Final = 0.25
"""Seconds between two frames, unless ``refresh=`` says otherwise."""

Frame = Callable[[float], "RenderableType"]

NO_RICH: Final = (
    "trine's progress display draws nothing: it needs rich, which is not installed "
    "(pip install 'trine[cli]')"
)


def check_console(console: object) -> None:
    """Refuse a *console* that is not a :class:`rich.console.Console` (or ``None``)."""
    if console is None:
        return
    try:
        from rich.console import Console
    except ImportError:  # then no Console can have been made
        Console = None  # type: ignore[assignment,misc]
    if Console is None or not isinstance(console, Console):
        raise TypeError(f"console must be a rich.console.Console or None, got {console!r}")


def terminal_console(console: Console | None) -> Console | None:
    """The console to draw on, or ``None`` when the display should draw nothing.

    *console* given: it, if it is a terminal. Otherwise stdout's, if stdout is
    a terminal and rich is installed; a terminal without rich is told so,
    once per call site, by a :exc:`RuntimeWarning`.
    """
    if console is not None:
        return console if console.is_terminal else None
    try:
        tty = sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, OSError, ValueError):  # replaced, or closed
        tty = False
    if not tty:
        return None
    try:
        from rich.console import Console
    except ImportError:
        warnings.warn(NO_RICH, RuntimeWarning, stacklevel=4)
        return None
    return Console(highlight=False)


async def _redraw(area: LiveArea, frame: Frame, refresh: float) -> None:
    """Draw a frame every *refresh* seconds from now (the first one is drawn already)."""
    async with aclosing(trio_util.periodic(refresh)) as ticks:
        async for _, since_last in ticks:
            if since_last is None:
                continue  # the frame of the start, drawn before any task ran
            try:
                area.update(frame(trio.current_time()))
            except OSError:  # stdout's reader has gone: the run matters more than the display
                return


@asynccontextmanager
async def live(console: Console, frame: Frame, refresh: float) -> AsyncGenerator[None]:
    """Draw ``frame(now)`` on *console* every *refresh* seconds while the block runs.

    The redrawing task lives in a nursery of this block and is cancelled when
    the block ends; then the last frame is drawn and left on the screen. An
    exception of the block leaves it as itself, not in a group.
    """
    area = LiveArea(console, transient=False)
    # The first frame now, before any task of the run has had a turn: the state
    # at the start, whichever task the scheduler picks first.
    with suppress(OSError):
        area.update(frame(trio.current_time()))
    raised: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_redraw, area, frame, refresh)
            try:
                yield
            except BaseException as exc:
                raised = exc
                raise
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        leaving = exception_leaving_the_block(group, raised)
        if leaving is None:
            raise
        raised = leaving
    finally:
        with suppress(OSError):  # stdout's reader has gone
            area.stop(frame(trio.current_time()))
    if raised is not None:
        raise raised  # outside the except clause, so its __context__ stays its own


@final
class CallCounts:
    """How many calls of a map's function have started and finished (``progress=True``)."""

    __slots__ = ("done", "started", "total")

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.started = 0
        self.done = 0

    def wrap(
        self,
        fn: Callable[[Any], Awaitable[Any]],
        awaitable: Callable[[object], Awaitable[Any]],
    ) -> Callable[[Any], Awaitable[Any]]:
        """*fn*, counting its calls; *awaitable* checks what it returned if not a coroutine."""

        async def counted(item: Any) -> Any:
            self.started += 1
            result = fn(item)
            if type(result) is not types.CoroutineType:
                result = awaitable(result)
            value = await result
            self.done += 1
            return value

        return counted


@asynccontextmanager
async def show_calls(total: int | None) -> AsyncGenerator[CallCounts | None]:
    """A display of a map's calls, if one draws: its counts (``None`` when nothing draws)."""
    console = terminal_console(None)
    if console is None:
        yield None
        return
    from ._frames import MapFrame

    counts = CallCounts(total)

    def read() -> tuple[int, int, int | None]:
        return counts.done, counts.started - counts.done, counts.total

    async with live(console, MapFrame(read, trio.current_time()), DEFAULT_REFRESH):
        yield counts
