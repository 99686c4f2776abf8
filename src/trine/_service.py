"""The shape every service shares: one nursery, owned through ``async with``.

A service (:class:`~trine.SingleFlight`, :class:`~trine.AsyncCache`,
:class:`~trine.Batcher`) runs work that outlives the call that asked for it
-- a shared run, a background refresh, a batch call -- so that one caller's
cancellation cannot cancel it for the others. That work needs a task, and a
task needs a nursery: the service opens one in ``__aenter__`` and closes it
in ``__aexit__``, so nothing it starts outlives its ``async with``.

:class:`ServiceNursery` is that nursery's life cycle, shared by the three: the
block's own exception leaves bare (the background tasks never raise one of
their own: they hand every failure to their waiters), and so does an outer
cancellation, as one :exc:`trio.Cancelled`, however many background tasks it
reached (:mod:`trine._block`, shared with amap); leaving the block cancels
the work still in flight, and a service is opened at most once.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Literal, final

import attrs
import trio

from ._block import exception_leaving_the_block

__all__ = ["ServiceNursery", "closed_error"]


def closed_error(service: str) -> trio.ClosedResourceError:
    """What a waiter gets when its service's ``async with`` ends before its answer."""
    return trio.ClosedResourceError(
        f"the {service} was closed (its async with block ended) before this call's result came"
    )


@final
@attrs.define(eq=False)
class ServiceNursery:
    """Opens, and on exit cancels and closes, the one nursery of the service *owner*."""

    owner: str
    """The service's class name, for messages."""
    state: Literal["new", "open", "closed"] = attrs.field(default="new", init=False)
    _manager: AbstractAsyncContextManager[trio.Nursery] | None = attrs.field(
        default=None, init=False
    )

    def not_open(self) -> Exception:
        """The error for a call made while the service is not open (before or after)."""
        if self.state == "closed":
            return trio.ClosedResourceError(f"this {self.owner} is closed: its async with ended")
        return RuntimeError(
            f"this {self.owner} is not open: use it inside 'async with {self.owner}(...) as ...:'"
        )

    async def open(self) -> trio.Nursery:
        if self.state != "new":
            raise RuntimeError(f"a {self.owner} can be opened only once")
        self.state = "open"
        manager = self._manager = trio.open_nursery()
        return await manager.__aenter__()

    async def close(
        self,
        nursery: trio.Nursery,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Cancel the work still running, wait for it, and re-raise the block's exception bare.

        Returns what ``__aexit__`` returns: whether the block's exception is swallowed.
        """
        self.state = "closed"
        manager = self._manager
        assert manager is not None
        # Every waiter inside the block has its answer or has left: what still
        # runs serves nobody in the block.
        nursery.cancel_scope.cancel()
        raised: BaseException
        try:
            return bool(await manager.__aexit__(exc_type, exc, tb))
        except BaseExceptionGroup as group:
            # The background tasks hand failures to their waiters instead of
            # raising them, so the group holds the block's own exception and,
            # if an outer cancellation reached them too, their Cancelled.
            leaving = exception_leaving_the_block(group, exc)
            if leaving is None:
                raise
            raised = leaving
        # Outside the except clause, so that its cause and context stay its own.
        raise raised
