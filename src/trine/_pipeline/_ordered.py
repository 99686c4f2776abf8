"""Ordered delivery: an ordered stage's results, handed on in input order from a bounded window.

Each item an ordered stage takes gets the next number. Its results are handed
on when every earlier item's have been: by the worker that finishes it, if
its turn has come and nobody else is handing on (the common case, which
costs one method call), or else by whichever worker is handing on then.

A worker takes an item only while the window has room: at most ``size``
(``workers + buffer``) items are taken and not yet handed on, however slow
the oldest one is. A worker that finds the window full parks until it moves;
each time it moves, *one* parked worker is woken (not all of them), and only
if none is already on its way.

An ordered ``flat_map`` streams the outputs of its oldest item as they come;
a later item keeps at most ``buffer`` outputs until its turn, and then waits,
parked on its own number, until the window reaches it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, final

import trio

from ._call import Blocked

if TYPE_CHECKING:
    from ._buffer import Buffer
    from ._stage import StageRun

__all__ = ["ReorderWindow", "ordered_worker"]


def _park(waiters: dict[Any, trio.lowlevel.Task], key: Any) -> Any:
    """Record the current task in *waiters* under *key*; the abort function for its park."""
    waiters[key] = trio.lowlevel.current_task()

    def abort(_: Any) -> trio.lowlevel.Abort:
        del waiters[key]
        return trio.lowlevel.Abort.SUCCEEDED

    return abort


@final
class ReorderWindow:
    """The numbers an ordered stage has given out, and the results waiting for their turn.

    Invariants (:meth:`invariant_violations`):

    1. ``emitted <= taken`` and ``taken + reserved - emitted <= size``: the
       window never holds more than ``size`` items, counting the ones workers
       parked for an item have reserved room for.
    2. Every number in :attr:`results` and :attr:`kept` is in ``[emitted, taken)``.
    3. At most one task hands results on at a time (:attr:`emitting`).
    """

    __slots__ = (
        "_room_coming",
        "_room_waiters",
        "_stage",
        "_turn_waiters",
        "emitted",
        "emitting",
        "kept",
        "reserved",
        "results",
        "size",
        "starved",
        "taken",
    )

    def __init__(self, stage: StageRun) -> None:
        self._stage = stage
        self.size = stage.stage.workers + stage.stage.buffer
        self.taken = 0
        """Numbers given out: the next item taken is number ``taken``."""
        self.reserved = 0
        """Workers parked for an item that have room in the window kept for it."""
        self.emitted = 0
        """Items whose results have all been handed on (or are being, right now)."""
        self.results: dict[int, Iterable[Any]] = {}
        """Results of finished items, by number, until their turn."""
        self.kept: dict[int, deque[Any]] = {}
        """Outputs an ordered flat_map item still running has kept until its turn."""
        self.emitting = False
        self.starved = False
        """A worker could not start because the window was full (retried when it moves)."""
        self._room_waiters: OrderedDict[object, trio.lowlevel.Task] = OrderedDict()
        self._room_coming = 0
        self._turn_waiters: dict[int, trio.lowlevel.Task] = {}

    # -- taking ----------------------------------------------------------------

    def has_room(self) -> bool:
        return self.taken + self.reserved - self.emitted < self.size

    def reserve(self) -> bool:
        """Keep room for the item the caller is about to take (or wait for).

        If room is left after this, a worker parked on the window is woken
        too: woken workers pass the wake-up on, one at a time, while there is
        room, so none is left parked beside free room.
        """
        if self.taken + self.reserved - self.emitted < self.size:
            self.reserved += 1
            if self._room_waiters and self.has_room():
                self._wake_room_waiter()
            return True
        return False

    def leave(self) -> None:
        """The caller will take no item after all: its input ended, and it is leaving."""
        self.reserved -= 1
        if self._room_waiters and self.has_room():
            self._wake_room_waiter()  # it has to see the end too

    def claim(self) -> int:
        """Turn the caller's reservation into the number of the item it takes now."""
        self.reserved -= 1
        number = self.taken
        self.taken = number + 1
        return number

    async def wait_for_room(self) -> None:
        """Park until the window moves (then check :meth:`reserve` again).

        The caller is about to block, so the buffer first summons a reader for
        the items waiting: a worker parked in it holds a reservation and may
        take one (invariant 3 of the buffer).
        """
        self._stage.inputs.hand_off()
        token = object()
        await trio.lowlevel.wait_task_rescheduled(_park(self._room_waiters, token))
        self._room_coming -= 1

    def hand_off(self, inputs: Buffer) -> None:
        """The calling worker is about to block: let a parked one take what waits.

        A worker parked on the window is woken if the window has room again
        and items wait; otherwise the buffer summons one of its readers.
        """
        if self._room_waiters and inputs.items and self.has_room():
            self._wake_room_waiter()
        else:
            inputs.hand_off()

    def _moved(self) -> None:
        """The window moved by one: wake one parked worker, unless one is on its way."""
        if self._room_waiters:
            self._wake_room_waiter()
        elif self.starved:
            self.starved = False
            self._stage.inputs.hand_off()  # a worker may start now

    def _wake_room_waiter(self) -> None:
        if not self._room_coming:
            _, task = self._room_waiters.popitem(last=False)
            self._room_coming += 1
            trio.lowlevel.reschedule(task)

    # -- handing on ------------------------------------------------------------

    def pass_nowait(self, number: int, result: Any, keep: bool) -> bool:
        """Hand on item *number*'s one result (if *keep*) at once, if that needs no waiting.

        That is: its turn has come, nobody else is handing on, no later result
        is filed, and the output has room. Otherwise return ``False``, and the
        caller awaits :meth:`finish`.
        """
        if number != self.emitted or self.emitting or self.results:
            return False
        stage = self._stage
        if keep:
            if not stage.output.put_nowait(result):
                return False
            stage.items_out += 1
        self.emitted = number + 1
        self._moved()
        return True

    def file(self, number: int, outs: Iterable[Any]) -> bool:
        """File item *number*'s outputs until their turn; whether the caller must :meth:`emit`.

        If another task is handing results on, it will hand these on too.
        """
        self.results[number] = outs
        return not self.emitting

    async def finish(self, number: int, outs: Iterable[Any]) -> None:
        """File item *number*'s outputs; hand on every result whose turn has come."""
        if self.file(number, outs):
            await self.emit()

    async def emit(self) -> None:
        """Hand on, in order, every result whose turn has come; then let the oldest stream.

        That includes what the oldest item kept while still running (an
        ordered ``flat_map``): one at a time, as it may keep more (or finish)
        meanwhile.
        """
        stage = self._stage
        put_nowait = stage.output.put_nowait
        results = self.results
        kept = self.kept
        self.emitting = True
        try:
            while True:
                number = self.emitted
                if number in results:
                    ready = results.pop(number)
                    self.emitted = number + 1
                    self._moved()
                    for result in ready:
                        if put_nowait(result):
                            stage.items_out += 1
                        else:
                            await stage.deliver(result, stage.inputs)
                elif kept.get(number):
                    await stage.deliver(kept[number].popleft(), stage.inputs)
                else:
                    break
        finally:
            self.emitting = False
        # The oldest item is still running: it is its turn to stream now.
        waiter = self._turn_waiters.pop(self.emitted, None)
        if waiter is not None:
            trio.lowlevel.reschedule(waiter)

    async def hand_on(self, number: int, item: Any, keep_at_most: int) -> None:
        """An ordered ``flat_map``'s output *item* of input *number*: stream it or keep it.

        The oldest item's outputs go on at once; a later item's are kept, at
        most *keep_at_most* of them, and then its worker waits for its turn.
        """
        stage = self._stage
        while True:
            if number == self.emitted and not self.emitting:
                if not stage.output.put_nowait(item):
                    self.emitting = True
                    try:
                        await stage.deliver(item, stage.inputs)
                    finally:
                        self.emitting = False
                    return
                stage.items_out += 1
                return
            kept = self.kept[number]
            if len(kept) < keep_at_most:
                kept.append(item)
                return
            self.hand_off(stage.inputs)  # about to block
            await trio.lowlevel.wait_task_rescheduled(_park(self._turn_waiters, number))

    # -- checking --------------------------------------------------------------

    def invariant_violations(self) -> list[str]:
        """The invariants of the class docstring that do not hold now (for the tests)."""
        found = []
        if not self.emitted <= self.taken:
            found.append(f"emitted {self.emitted} is beyond taken {self.taken}")
        if self.taken + self.reserved - self.emitted > self.size:
            found.append(
                f"{self.taken - self.emitted} taken and {self.reserved} reserved "
                f"in a window of {self.size}"
            )
        for number in [*self.results, *self.kept]:
            if not self.emitted <= number < self.taken:
                found.append(f"item {number} is outside [{self.emitted}, {self.taken})")
        return found


async def ordered_worker(stage: StageRun, inputs: Buffer) -> None:
    """Process items of an ordered map, filter or tap one by one; results leave in order."""
    inputs.arrived()
    window = stage.window
    assert window is not None
    items = inputs.items
    take = inputs.take
    call_item = stage.call_item
    keeps_item = stage.stage.kind in ("filter", "tap")
    is_filter = stage.stage.kind == "filter"
    now = trio.lowlevel.current_clock().current_time
    record = stage.latency.record
    started = now()
    while True:
        # Take the next item, if the window has room for it.
        if not window.reserve():
            await window.wait_for_room()
            started = now()
            continue
        if not items:
            if not await inputs.wait_item():
                window.leave()
                return
            started = now()
        number = window.claim()
        item = take()
        stage.items_in += 1
        # Call the function.
        try:
            result = call_item(item)
            if type(result) is Blocked:
                result = await result.finish(stage, inputs)
        except Exception as exc:
            record(now() - started)
            if not await stage.fail_item(item, exc, inputs):
                return
            await window.finish(number, ())
            started = now()
            continue
        finished = now()
        record(finished - started)
        started = finished
        # The kind's step, then delivery in order.
        keep = True
        if keeps_item:
            keep = bool(result) if is_filter else True
            result = item
        if not window.pass_nowait(number, result, keep) and window.file(
            number, (result,) if keep else ()
        ):
            await window.emit()
            started = now()
