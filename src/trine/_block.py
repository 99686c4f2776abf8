"""What leaves an ``async with`` block that runs over a nursery of background work.

:func:`~trine.amap` and the services (:class:`~trine.SingleFlight`,
:class:`~trine.AsyncCache`, :class:`~trine.Batcher`) open a nursery for work
of their own around the caller's block. Their caller reads the block as a
context manager's, not a nursery's: what the block raised leaves it as
itself, not wrapped in the :exc:`BaseExceptionGroup` the nursery builds,
which also holds the :exc:`trio.Cancelled` of every background task that an
outer cancellation reached. A failure of the background work itself keeps
the group.
"""

from __future__ import annotations

from collections.abc import Iterator

import trio

__all__ = ["exception_leaving_the_block", "leaves"]


def leaves(error: BaseException) -> Iterator[BaseException]:
    """The exceptions in *error*, with every group opened."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from leaves(inner)
    else:
        yield error


def exception_leaving_the_block(
    group: BaseExceptionGroup[BaseException], raised: BaseException | None
) -> BaseException | None:
    """What should leave the block in place of the nursery's *group*, or ``None`` for the group.

    The block's exception is found in *group* by its leaves, not as an
    object: a group the block raised is rebuilt (copied) by every cancel
    scope it passes on the way out.

    Args:
      group: what the nursery raised.
      raised: what the block itself raised, or ``None``.

    Returns:
      *raised*, if *group* holds it and otherwise only :exc:`trio.Cancelled`
      (nested groups included); the first :exc:`trio.Cancelled`, if the block
      raised nothing and *group* holds only those (an outer cancellation that
      reached the background work while the block was being left); else
      ``None``: the background work failed, and the group should leave.
    """
    from_block = set() if raised is None else {id(leaf) for leaf in leaves(raised)}
    held = False  # whether group holds anything the block raised
    first_cancelled: BaseException | None = None
    for leaf in leaves(group):
        if id(leaf) in from_block:
            held = True
        elif not isinstance(leaf, trio.Cancelled):
            return None
        elif first_cancelled is None:
            first_cancelled = leaf
    if raised is not None:
        return raised if held else None
    return first_cancelled
