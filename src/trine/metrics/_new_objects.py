"""``Exporter.register_new()``: see each trine object as it is created, for one block.

trine's constructors have no "object created" seam of their own, so while at
least one ``register_new()`` block is open anywhere in the process, the
constructors of the types the exporters read (and :class:`~trine.Policy`)
are wrapped; when the last block closes, the originals are put back. A wrapped
constructor looks at a :class:`contextvars.ContextVar` holding the blocks open
in the *current context* — the task that opened the block and the tasks it
starts inside it, as Trio hands contexts down — and does nothing more when
there are none. So nothing is left behind after the user's block, and another
task's objects are never registered by accident.

Inside a block, a constructor that takes ``hooks=`` (CircuitBreaker, Retry,
Policy) gets a new hook from each block appended to the hooks it was given,
and every new object is handed, with that hook (or ``None``), to each block's
``created`` callback.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from trine import Hook

__all__ = ["watch_new_objects"]


@attrs.frozen
class _Block:
    new_hook: Callable[[], Hook]
    created: Callable[[object, Hook | None], None]


_BLOCKS: contextvars.ContextVar[tuple[_Block, ...]] = contextvars.ContextVar(
    "trine.metrics register_new blocks", default=()
)

# The wrapped types and their own __init__ (None: inherited). Filled when the
# first block opens anywhere and emptied when the last one closes.
_originals: dict[type, Callable[..., None] | None] = {}
_open_blocks = 0


def _wrap(init: Callable[..., None]) -> Callable[..., None]:
    parameter = inspect.signature(init).parameters.get("hooks")
    takes_hooks = parameter is not None and parameter.kind is inspect.Parameter.KEYWORD_ONLY

    @functools.wraps(init)
    def __init__(self: object, *args: Any, **kwargs: Any) -> None:
        blocks = _BLOCKS.get()
        hooks: tuple[Hook | None, ...] = (None,) * len(blocks)
        if blocks and takes_hooks:
            given = kwargs.get("hooks")
            # anything but None, a list or a tuple is left for the constructor
            # to refuse, by name
            if given is None or isinstance(given, list | tuple):
                hooks = tuple(block.new_hook() for block in blocks)
                kwargs["hooks"] = (*(given or ()), *hooks)
        init(self, *args, **kwargs)
        for block, hook in zip(blocks, hooks, strict=True):
            block.created(self, hook)

    return __init__


def _install(types: tuple[type, ...]) -> None:
    for cls in types:
        _originals[cls] = cls.__dict__.get("__init__")
        cls.__init__ = _wrap(cls.__init__)  # type: ignore[misc]  # the one seam; see the module docstring


def _uninstall() -> None:
    for cls, original in _originals.items():
        if original is None:
            del cls.__init__  # type: ignore[misc]  # it was inherited: inherit it again
        else:
            cls.__init__ = original  # type: ignore[misc]
    _originals.clear()


@contextlib.contextmanager
def watch_new_objects(
    types: tuple[type, ...],
    new_hook: Callable[[], Hook],
    created: Callable[[object, Hook | None], None],
) -> Iterator[None]:
    """For the block: give new objects of *types* a hook from *new_hook*, then to *created*."""
    global _open_blocks
    if _open_blocks == 0:
        _install(types)
    _open_blocks += 1
    token = _BLOCKS.set((*_BLOCKS.get(), _Block(new_hook, created)))
    try:
        yield
    finally:
        _BLOCKS.reset(token)
        _open_blocks -= 1
        if _open_blocks == 0:
            _uninstall()
