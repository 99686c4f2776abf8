"""The Lua scripts the shared guards run on the server, read from ``lua/*.lua``.

Each script is the shared prelude (the server's clock, numbers as exact
strings) followed by the files it names here, in order. Every decision a
guard makes is one of these scripts, so it is atomic on the server: no other
client's command runs between its reads and its writes.
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["SCRIPTS", "script_source"]

SCRIPTS: dict[str, tuple[str, ...]] = {
    "rate_acquire": ("rate_acquire",),
    "rate_refund": ("rate_refund",),
    "window_acquire": ("window_acquire",),
    "window_refund": ("window_refund",),
    "semaphore_acquire": ("semaphore_acquire",),
    "semaphore_renew": ("semaphore_renew",),
    "semaphore_release": ("semaphore_release",),
    "semaphore_leave": ("semaphore_leave",),
    "breaker_enter": ("breaker_common", "breaker_enter"),
    "breaker_record": ("breaker_common", "breaker_record"),
    "breaker_control": ("breaker_common", "breaker_control"),
    "budget_sync": ("budget_sync",),
    "stream_claim": ("stream_common", "stream_claim"),
    "stream_settle": ("stream_common", "stream_settle"),
}
"""Every script by name, and the files after the prelude that make it up."""


@functools.cache
def _file(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


@functools.cache
def script_source(name: str) -> str:
    """The full source of the script *name*: the prelude, then its files."""
    return "\n".join([_file("prelude"), *(_file(part) for part in SCRIPTS[name])])
