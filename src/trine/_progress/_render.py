"""The pieces of trine's live display that ``trine run`` and :func:`trine.progress` share.

A spinner, a bar with ``done/total`` and what else the caller counts, the
clock and the ETA, drawn by rich in a live area that a Trio task refreshes
(rich's own refresh thread stays off). rich is imported only when a display
is built, so a program that never shows one never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.text import Text

__all__ = [
    "LiveArea",
    "bar",
    "bar_row",
    "clock",
    "eta_by_rate",
    "eta_text",
    "middle",
    "spinner",
]

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_NAME_WIDTH = 40
_BAR_WIDTH = 24


def spinner(now: float) -> str:
    """The spinner's frame at *now* (ten frames a second)."""
    return SPINNER[int(now * 10) % len(SPINNER)]


def middle(text: str, width: int = _NAME_WIDTH) -> str:
    """*text* shortened in the middle, so that two long names stay told apart."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2 :]


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a duration."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_by_rate(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left if the rest goes at the rate so far: ``None`` before anything is done."""
    if done >= total:
        return 0.0
    if done <= 0 or elapsed <= 0:
        return None
    return (total - done) * elapsed / done


def eta_text(estimate: float | None) -> str:
    """``ETA ~m:ss``, or ``ETA -`` when there is no estimate yet."""
    return "ETA -" if estimate is None else f"ETA ~{clock(estimate)}"


def bar(done: int, total: int, width: int = _BAR_WIDTH) -> Text:
    """A bar of *width* cells, ``━`` for the part done and a dim ``─`` for the rest.

    Drawn as one :class:`rich.text.Text`, not rich's ProgressBar in a table:
    a frame costs far less to draw that way (a display must not slow the run).
    """
    from rich.text import Text

    filled = width if total <= 0 else min(width, max(0, width * done // total))
    line = Text("━" * filled, style="magenta")
    line.append("─" * (width - filled), style="dim")
    return line


def bar_row(spin: str, done: int, total: int, parts: list[str]) -> Text:
    """The display's head line: spinner, bar, then ``done/total · part · part`` (markup)."""
    from rich.text import Text

    row = Text(spin, style="cyan")
    row.append(" ")
    row.append_text(bar(done, total))
    row.append(" ")
    row.append_text(Text.from_markup(" · ".join([f"{done}/{total}", *parts])))
    return row


@final
class LiveArea:
    """A rich live area redrawn only when :meth:`update` is called (no refresh thread).

    Args:
      console: where to draw; ``None`` for a console on stdout (a terminal is
        forced only with *force_terminal*).
      transient: erase the area when it stops (``trine run`` prints a summary
        instead) rather than leave its last frame on the screen.
      force_terminal: draw even when stdout is not a terminal.
    """

    def __init__(
        self, console: Console | None, *, transient: bool, force_terminal: bool = False
    ) -> None:
        from rich.console import Console  # optional dependency (the cli extra)
        from rich.live import Live

        if console is None:
            console = Console(force_terminal=force_terminal or None, highlight=False)
        self.console = console
        # No auto refresh: that would start a thread; a Trio task calls update().
        self._live = Live(
            console=console, auto_refresh=False, transient=transient, redirect_stdout=False
        )
        self._live.start()

    def update(self, renderable: RenderableType) -> None:
        """Draw *renderable* as the area's new frame."""
        self._live.update(renderable, refresh=True)

    def print(self, text: str) -> None:
        """Print *text* (markup) above the area."""
        self._live.console.print(text, markup=True, highlight=False)

    def stop(self, last: RenderableType | None = None) -> None:
        """Stop the area, drawing *last* as its final frame if given.

        The final frame stays on the screen unless the area is transient.
        """
        if last is not None:
            self._live.update(last, refresh=False)  # stop() draws it, once
        self._live.stop()
