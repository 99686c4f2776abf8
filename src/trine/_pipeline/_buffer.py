"""The bounded buffer between two stages, with a memory channel's semantics.

Every hop of an item through a pipeline goes through a :class:`Buffer`: the
source writes the first, each stage reads one and writes the next, and the
caller reads the last. It is a ``deque`` with two wait queues, and it is
frugal with wake-ups, because each one is a trip through Trio's scheduler:

- a write wakes a parked reader only if no reader is already on its way, so
  items written together are taken together, in one trip;
- a reader about to block elsewhere (in its function, or waiting for room
  downstream) calls :meth:`Buffer.hand_off`, which wakes another reader for
  the items still waiting -- or starts one, through :attr:`Buffer.grow`: a
  stage starts its workers only as items need them;
- a writer parked for room parks *with its item*; the reader that makes room
  moves the item in and reschedules the writer, so no room is promised to a
  task that has not run yet.

Invariants (:meth:`Buffer.invariant_violations` checks them; the tests do
after every task step):

1. At most ``capacity`` items wait; with ``capacity == 0`` (a rendezvous, as
   ``trio.open_memory_channel(0)``) an item waits only once handed to a reader
   on its way, so never more items than readers on their way.
2. A writer is parked only while there is no room; with ``capacity == 0``,
   only while no reader is parked (a parked reader would have taken the item).
3. A reader is parked only while no item waits, or while another reader is
   already on its way to take them.
4. ``coming`` (readers woken or started and not yet running) is ``>= 0``.
5. The buffer has ended once every writer counted at wiring has left
   :meth:`Buffer.producing`; it was cut short (:attr:`Buffer.aborted`) if
   one of them left by an exception, or the run was stopped before the end.
6. A buffer that drops (:meth:`Buffer.drop_when_full`) never parks a writer:
   an item written while it is full is dropped, or makes room by dropping the
   oldest, and every dropped item is handed to its ``dropped`` function.

Dropping costs nothing on the blocking default's way: :meth:`Buffer.put_nowait`
looks at :attr:`Buffer.overflow` only when it would otherwise return ``False``.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, final

import trio

__all__ = ["END", "Buffer"]

END: Any = object()
"""What :meth:`Buffer.get` returns once the buffer has ended and is empty."""


def _park(waiters: OrderedDict[trio.lowlevel.Task, Any], value: Any) -> Any:
    """Add the current task (with *value*) to *waiters*; return the abort function of its park.

    Used as ``await trio.lowlevel.wait_task_rescheduled(_park(waiters, value))``:
    a waker pops the task and reschedules it; cancellation removes it.
    """
    task = trio.lowlevel.current_task()
    waiters[task] = value

    def abort(_: Any) -> trio.lowlevel.Abort:
        del waiters[task]
        return trio.lowlevel.Abort.SUCCEEDED

    return abort


@final
class Buffer:
    """A bounded FIFO of items between two stages (or the last stage and the caller).

    Writers are counted at wiring (:meth:`add_writer`), before any task runs,
    so a reader never mistakes "no writer has started yet" for "every writer
    is done"; each writer then writes inside ``with buffer.producing():``,
    whose exit -- normal or not -- is that writer's close.

    Readers in hot loops read :attr:`items` directly (``if items:``) and take
    with :meth:`take`; :meth:`wait_item` parks until there is one.
    """

    __slots__ = (
        "_coming",
        "_getters",
        "_putters",
        "_writers",
        "aborted",
        "capacity",
        "grow",
        "items",
        "overflow",
    )

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[Any] = deque()
        self.grow: Callable[[], bool] | None = None
        """Starts one more reader and returns ``True``, or returns ``False`` if no more may
        start; ``None`` once none ever will (set by the stage that reads this buffer)."""
        self.overflow: Callable[[Any], bool] | None = None
        """What to do with an item written while the buffer is full, for a buffer that drops
        (:meth:`drop_when_full`): drop an item and return ``True``."""
        self.aborted = False
        self._writers = 0
        self._getters: OrderedDict[trio.lowlevel.Task, None] = OrderedDict()
        self._putters: OrderedDict[trio.lowlevel.Task, Any] = OrderedDict()
        # Readers woken (or started) that have not run yet: while one is on its
        # way, writes wake nobody else, so items written together travel together.
        self._coming = 0

    # -- wiring and closing ----------------------------------------------------

    def add_writer(self) -> None:
        """Count one more task that will write here (at wiring, before the run starts)."""
        self._writers += 1

    def drop_when_full(self, overflow: str, dropped: Callable[[Any], object]) -> None:
        """Drop items instead of parking writers: ``"drop_oldest"`` or ``"drop_newest"``.

        *dropped* is called with every item dropped, at once, in the writer's
        task. Only for a buffer with room (``capacity >= 1``).
        """
        assert self.capacity >= 1
        items = self.items

        def drop_oldest(item: Any) -> bool:
            oldest = items.popleft()
            items.append(item)
            dropped(oldest)
            return True

        def drop_newest(item: Any) -> bool:
            dropped(item)
            return True

        self.overflow = drop_oldest if overflow == "drop_oldest" else drop_newest

    @contextmanager
    def producing(self) -> Iterator[Buffer]:
        """The block in which one counted writer writes; leaving it closes that writer.

        After the last writer has left, readers see the end once the items are
        taken. A writer that leaves by an exception (the run is cancelled or
        failing) cuts the buffer short: see :meth:`abort`.
        """
        try:
            yield self
        except BaseException:
            self.abort()
            raise
        finally:
            self._writers -= 1
            if self._writers <= 0:
                self._wake_every_getter()

    def abort(self) -> None:
        """Mark the buffer cut short, unless it already ended normally; wake its readers."""
        if self._writers > 0 and not self.aborted:
            self.aborted = True
            self._wake_every_getter()

    @property
    def ended(self) -> bool:
        """Whether no item will ever be written again."""
        return self._writers <= 0 or self.aborted

    # -- writing ---------------------------------------------------------------

    def put_nowait(self, item: Any) -> bool:
        """Append *item* if there is room (or a parked reader to hand it to); return whether."""
        items = self.items
        if len(items) < self.capacity:
            items.append(item)
            if not self._coming and (self._getters or self.grow is not None):
                self._summon()
            return True
        if self._getters and not self.capacity:
            # A rendezvous: the item is handed to a parked reader, woken to take it.
            items.append(item)
            self._wake_getter()
            return True
        if self.overflow is not None:  # a buffer that drops: never full to its writers
            return self.overflow(item)
        return False

    async def put(self, item: Any) -> None:
        """Append *item*, parking with it until a reader makes room.

        Hot loops try :meth:`put_nowait` first; this parks at once if there is
        no room (and, if no reader is on its way, summons one first).
        """
        if self.put_nowait(item):
            return
        if not self._coming:
            self._summon()
        await trio.lowlevel.wait_task_rescheduled(_park(self._putters, item))

    # -- reading ---------------------------------------------------------------

    def start_reader(self) -> None:
        """Start a first reader through :attr:`grow` (a stage's first worker)."""
        assert self.grow is not None
        if self.grow():
            self._coming += 1

    def arrived(self) -> None:
        """A reader started by :attr:`grow` is running now (its first call)."""
        self._coming -= 1

    async def wait_item(self) -> bool:
        """Park until an item waits; ``False`` if none ever will."""
        items = self.items
        while not items:
            if self._putters:
                # Only with capacity 0: the reader takes a parked writer's item.
                task, item = self._putters.popitem(last=False)
                items.append(item)
                trio.lowlevel.reschedule(task)
                return True
            if self._writers <= 0 or self.aborted:
                return False
            await trio.lowlevel.wait_task_rescheduled(_park(self._getters, None))
            self._coming -= 1
        return True

    def take(self) -> Any:
        """Take the oldest item (the caller has seen that there is one)."""
        item = self.items.popleft()
        if self._putters:
            self._admit_putters()
        return item

    async def get(self) -> Any:
        """Take the oldest item, parking while there is none; :data:`END` after the last."""
        if not self.items and not await self.wait_item():
            return END
        return self.take()

    def take_all(self, sink: Callable[[Iterable[Any]], object] | None) -> None:
        """Hand every waiting item to *sink* at once (or drop them), then admit parked writers."""
        if sink is not None:
            sink(self.items)
        self.items.clear()
        if self._putters:
            self._admit_putters()

    def hand_off(self) -> None:
        """The calling reader is about to block: summon another for the items still waiting."""
        if (self.items or self._putters) and not self._coming:
            self._summon()

    # -- waking ----------------------------------------------------------------

    def _summon(self) -> None:
        """Wake a parked reader, or start one; it counts as on its way until it runs."""
        if self._getters:
            self._wake_getter()
        elif self.grow is not None and self.grow():
            self._coming += 1

    def _wake_getter(self) -> None:
        task, _ = self._getters.popitem(last=False)
        self._coming += 1
        trio.lowlevel.reschedule(task)

    def _wake_every_getter(self) -> None:
        while self._getters:
            self._wake_getter()

    def _admit_putters(self) -> None:
        """Move parked writers' items in, oldest first, while there is room."""
        items = self.items
        putters = self._putters
        while putters and len(items) < self.capacity:
            task, item = putters.popitem(last=False)
            items.append(item)
            trio.lowlevel.reschedule(task)

    # -- checking --------------------------------------------------------------

    def invariant_violations(self) -> list[str]:
        """The invariants of the module docstring that do not hold now (for the tests)."""
        found = []
        waiting = len(self.items)
        if waiting > (self.capacity or self._coming):
            found.append(f"{waiting} items wait in a buffer of {self.capacity}")
        if self._putters and (waiting < self.capacity or (not self.capacity and self._getters)):
            found.append("a writer is parked while there is room (or, at capacity 0, a reader)")
        if self._getters and waiting and not self._coming:
            found.append("a reader is parked while items wait and no reader is on its way")
        if self._coming < 0:
            found.append("more readers arrived than were woken or started")
        if self._writers < 0:
            found.append("more writers closed than were counted")
        if self.overflow is not None and self._putters:
            found.append("a writer is parked at a buffer that drops")
        return found

    def __repr__(self) -> str:
        return (
            f"<Buffer {len(self.items)}/{self.capacity} writers={self._writers} "
            f"parked readers={len(self._getters)} writers={len(self._putters)} "
            f"coming={self._coming}{' aborted' if self.aborted else ''}>"
        )
