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

import trio

__all__ = ["exception_leaving_the_block"]


def exception_leaving_the_block(
    group: BaseExceptionGroup[BaseException], raised: BaseException | None
) -> BaseException | None:
    """What should leave the block in place of the nursery's *group*, or ``None`` for the group.

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
    _, rest = group.split(lambda error: error is raised or isinstance(error, trio.Cancelled))
    if rest is not None:
        return None
    if raised is not None:
        return raised if any(error is raised for error in group.exceptions) else None
    first = group.exceptions[0]
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first
