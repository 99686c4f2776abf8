"""Per-key parallelism: up to ``per_key`` items of one key in the stage at once, in order if asked.

A stage with ``key=`` and several workers that asks for ``per_key > 1`` or
``ordered=True`` has no dispatcher: its workers read the stage's buffer
directly, as an unkeyed stage's do. Before its call, an item takes one of
its key's ``per_key`` slots (:class:`KeySlots`), and gives it back when the
call is done. A worker whose item's key has every slot taken parks, holding
the item, until a slot is handed to it -- first come, first served; with
``per_key=1`` a key's items run one after another in the order they came --
while the other workers go on with other keys. With ``ordered=True`` the
results go through the stage's reorder window (:mod:`._ordered`) and leave
in input order, as Akka's ``mapAsyncPartitioned``; otherwise they leave as
they finish.

Memory: the window bounds an ordered stage (``workers + buffer`` items taken
and not handed on); without it, each worker holds one item. :class:`KeySlots`
keeps an entry only for a key with an item in the stage: O(workers).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, final

import trio

from ._call import Blocked, KeyFailed, make_key_value

if TYPE_CHECKING:
    from ._buffer import Buffer
    from ._stage import StageRun

__all__ = ["KeySlots", "per_key_worker"]


@final
class KeySlots:
    """How many items of each key are in their call, and the workers waiting for a slot.

    Invariants (:meth:`invariant_violations`):

    1. No key has more than ``per_key`` items in their call.
    2. A worker waits for a key's slot only while that key has all ``per_key``
       (a freed slot is handed straight to the oldest waiter: nobody barges in).
    3. A key with nothing in its call and nobody waiting has no entry.
    """

    __slots__ = ("_waiters", "busy", "per_key")

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self.busy: dict[Any, int] = {}
        """Items in their call, by key."""
        self._waiters: dict[Any, OrderedDict[trio.lowlevel.Task, None]] = {}

    def acquire_nowait(self, key: Any) -> bool:
        """Take a slot of *key* if one is free (and nobody waits for one)."""
        busy = self.busy.get(key, 0)
        if busy < self.per_key:
            self.busy[key] = busy + 1
            return True
        return False

    async def acquire(self, key: Any) -> None:
        """Park until a slot of *key* is handed to the calling task."""
        waiters = self._waiters.setdefault(key, OrderedDict())
        task = trio.lowlevel.current_task()
        waiters[task] = None

        def abort(_: Any) -> trio.lowlevel.Abort:
            del waiters[task]
            if not waiters:
                del self._waiters[key]
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def release(self, key: Any) -> None:
        """Give a slot of *key* back: to its oldest waiter, if one waits."""
        waiters = self._waiters.get(key)
        if waiters:
            task, _ = waiters.popitem(last=False)
            if not waiters:
                del self._waiters[key]
            trio.lowlevel.reschedule(task)  # the slot is its now
            return
        busy = self.busy[key] - 1
        if busy:
            self.busy[key] = busy
        else:
            del self.busy[key]

    def invariant_violations(self) -> list[str]:
        """The invariants of the class docstring that do not hold now (for the tests)."""
        found = []
        for key, busy in self.busy.items():
            if not 0 < busy <= self.per_key:
                found.append(f"key {key!r} has {busy} items in their call, per_key={self.per_key}")
        for key, waiters in self._waiters.items():
            if not waiters:
                found.append(f"key {key!r} has an empty wait queue")
            if self.busy.get(key, 0) < self.per_key:
                found.append(f"a worker waits for key {key!r} while it has a free slot")
        return found


async def per_key_worker(stage: StageRun, inputs: Buffer) -> None:
    """Process items one by one, each in one of its key's slots; in order if the stage is."""
    inputs.arrived()
    window = stage.window
    slots = stage.key_slots
    assert slots is not None
    assert stage.stage.key is not None
    key_of = make_key_value(stage.stage.key)
    items = inputs.items
    take = inputs.take
    call_item = stage.call_item
    put_nowait = stage.output.put_nowait
    keeps_item = stage.stage.kind in ("filter", "tap")
    is_filter = stage.stage.kind == "filter"
    now = trio.lowlevel.current_clock().current_time
    record = stage.latency.record
    started = now()
    while True:
        # Take the next item (in an ordered stage, if the window has room for it).
        if window is not None and not window.reserve():
            await window.wait_for_room()
            started = now()
            continue
        if not items:
            if not await inputs.wait_item():
                if window is not None:
                    window.leave()
                return
            started = now()
        number = window.claim() if window is not None else 0
        item = take()
        stage.items_in += 1
        # Take a slot of its key, then call the function.
        try:
            try:
                key = key_of(item)
            except Exception as exc:
                raise KeyFailed(exc) from exc
            if not slots.acquire_nowait(key):
                stage.hand_off(inputs)  # about to block
                await slots.acquire(key)
                started = now()
            try:
                result = call_item(item)
                if type(result) is Blocked:
                    result = await result.finish(stage, inputs)
            finally:
                slots.release(key)
        except Exception as exc:
            record(now() - started)
            if not await stage.fail_item(item, exc, inputs):
                return
            if window is not None:
                await window.finish(number, ())
            started = now()
            continue
        finished = now()
        record(finished - started)
        started = finished
        # The kind's step, then delivery (in order, through the window).
        keep = True
        if keeps_item:
            keep = bool(result) if is_filter else True
            result = item
        if window is not None:
            if not window.pass_nowait(number, result, keep) and window.file(
                number, (result,) if keep else ()
            ):
                await window.emit()
                started = now()
        elif keep:
            if put_nowait(result):
                stage.items_out += 1
            else:
                await stage.deliver(result, inputs)
                started = now()
