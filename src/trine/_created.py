"""A seam for watching trine objects being made (``trine.metrics``' ``register_new()``).

The constructors of the objects an exporter reads end with::

    if _created.watchers:
        hooks = _created.announce(self, hooks)

``watchers`` is a plain module-level count of the blocks open anywhere in the
process, so a constructor pays one attribute read and a truth test when nobody
watches. Which blocks see an object is decided by a
:class:`contextvars.ContextVar`: the blocks open in the *current context* (the
task that opened the block and the tasks it starts inside it, as Trio hands
contexts down), so another task's objects are never announced by accident.

A block gives each object that takes ``hooks=`` one new hook of its own,
appended to the hooks the object was given, then sees the object with that
hook (or ``None`` for an object without hooks).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

import attrs

from ._hooks import Hook

__all__ = ["announce", "watch", "watchers"]

watchers = 0
"""How many :func:`watch` blocks are open in the process (any context)."""


@attrs.frozen
class _Block:
    new_hook: Callable[[], Hook]
    created: Callable[[object, Hook | None], None]


_BLOCKS: contextvars.ContextVar[tuple[_Block, ...]] = contextvars.ContextVar(
    "trine object watchers", default=()
)


def announce(obj: object, hooks: tuple[Hook, ...] | None) -> tuple[Hook, ...]:
    """Show *obj* to the blocks open in this context; return its hooks with theirs added.

    *hooks* is ``None`` for an object that takes no hooks (the result is then
    ``()`` and ignored).
    """
    blocks = _BLOCKS.get()
    if not blocks:
        return () if hooks is None else hooks
    added = tuple(block.new_hook() for block in blocks) if hooks is not None else None
    for index, block in enumerate(blocks):
        block.created(obj, None if added is None else added[index])
    return () if hooks is None or added is None else (*hooks, *added)


@contextlib.contextmanager
def watch(
    new_hook: Callable[[], Hook], created: Callable[[object, Hook | None], None]
) -> Iterator[None]:
    """For the block, give every object announced in this context to *created*.

    An object with hooks gets one from *new_hook* first, which *created* receives.
    """
    global watchers
    watchers += 1
    token = _BLOCKS.set((*_BLOCKS.get(), _Block(new_hook, created)))
    try:
        yield
    finally:
        _BLOCKS.reset(token)
        watchers -= 1
