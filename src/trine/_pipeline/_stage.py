"""One stage during a run: its task and nursery, its workers, its counters, its failures.

A stage's task writes the stage's output (``with output.producing():``) and
opens the nursery its workers live in, so a Trio task tree reads pipeline ->
stage -> workers, and the output closes exactly when the last worker is done.
What the workers do depends on the stage's kind; each kind is one module:

========================  =============================================
map, filter, tap,         :mod:`._transform` (one result per item)
enumerate
the same, ``ordered``     :mod:`._ordered` (a reorder window)
the same, ``key=``        :mod:`._keyed` (a dispatcher and a queue per worker)
``key=``, ``per_key`` >1  :mod:`._per_key` (slots per key; ordered or not)
or ``ordered``
flat_map                  :mod:`._flat_map`
batch                     :mod:`._batch`
rate_limit                :mod:`._rate_limit`
broadcast                 :mod:`._broadcast`
========================  =============================================

Workers start as items need them: the first when the stage starts, each
further one when an item waits and every worker started so far is busy (the
buffer calls :meth:`StageRun.start_worker` through its ``grow`` hook). So a
stage never has more workers than it has had items at once, and
``workers=10**6`` costs nothing until a million items are in flight.
"""

from __future__ import annotations

import inspect
import math
import reprlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, final

import trio

from .._errors import StageError
from .._stats import LatencyHistogram
from .._util import NotAwaitableError, check_sync_result, close_unawaited
from . import _batch, _broadcast, _flat_map, _keyed, _ordered, _per_key, _rate_limit, _transform
from ._call import KeyFailed, make_call
from ._statistics import StageStatistics

if TYPE_CHECKING:
    from ._buffer import Buffer
    from ._description import Stage
    from ._run import Run

__all__ = ["StageRun", "Worker"]

Worker = Callable[["StageRun", "Buffer"], Awaitable[None]]
"""A worker's loop: it reads the given buffer (the stage's, or its queue) until the end."""


@final
class StageRun:
    """One stage's state during a run: buffers, workers started, window, counters."""

    __slots__ = (
        "branch_entries",
        "branch_runs",
        "busy",
        "call_item",
        "dead_lettered",
        "dropped",
        "failed",
        "inputs",
        "items_in",
        "items_out",
        "key_slots",
        "latency",
        "live",
        "nursery",
        "output",
        "queue_capacity",
        "queues",
        "run",
        "skipped",
        "stage",
        "started",
        "window",
        "worker",
    )

    def __init__(self, run: Run, stage: Stage, inputs: Buffer, output: Buffer) -> None:
        self.run = run
        self.stage = stage
        self.inputs = inputs
        """The buffer in front of the stage."""
        self.output = output
        """The buffer the stage writes (for a broadcast, its branches do)."""
        self.queues: dict[int, Buffer] = {}
        """A keyed stage's queues, by worker number, made as keys first need them."""
        # A keyed worker's queue: four times its share of the buffer, at most the
        # whole buffer (at least one item), so the queues together hold at most
        # 4 * buffer. Smaller queues made the dispatcher and the workers take
        # turns: 0.33 scheduler steps per item at the defaults, against 0.19.
        self.queue_capacity = max(1, min(stage.buffer, 4 * stage.buffer // stage.workers))
        self.branch_entries: list[Buffer] = []
        self.branch_runs: list[list[StageRun]] = []
        self.call_item: Callable[[Any], Any] = (
            make_call(stage) if stage.fn is not None or stage.kind == "enumerate" else _no_call
        )
        self.window: _ordered.ReorderWindow | None = None
        self.key_slots: _per_key.KeySlots | None = None
        self.nursery: trio.Nursery | None = None
        self.worker: Worker | None = None
        self.started = 0
        self.live = 0
        """Workers running now."""
        self.items_in = 0
        self.items_out = 0
        self.failed = 0
        self.skipped = 0
        self.dead_lettered = 0
        self.dropped = 0
        self.busy = 0
        self.latency = LatencyHistogram()
        if stage.overflow != "block":
            inputs.drop_when_full(stage.overflow, self.drop)

    # -- the stage's task ------------------------------------------------------

    async def run_stage(self) -> None:
        """The stage's task: start what its kind needs, in its own nursery."""
        stage = self.stage
        if stage.kind == "broadcast":
            # The branches write the broadcast's output, each in its own stage task.
            await _broadcast.run_broadcast(self)
            return
        with self.output.producing():
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                if stage.kind == "batch":
                    self.started = 1
                    nursery.start_soon(_batch.batch_worker, self, name=f"{stage.name} worker")
                elif stage.kind == "rate_limit":
                    self.started = 1
                    nursery.start_soon(_rate_limit.rate_worker, self, name=f"{stage.name} worker")
                elif stage.key is not None and stage.workers > 1 and not stage.dispatches:
                    # per_key > 1 or ordered: workers share the buffer, keys share slots.
                    if stage.ordered:
                        self.window = _ordered.ReorderWindow(self)
                    self.key_slots = _per_key.KeySlots(stage.per_key)
                    self.serve(_per_key.per_key_worker)
                elif stage.dispatches:
                    # Each worker runs its kind's loop on its own queue.
                    self.worker = (
                        _flat_map.flat_map_worker
                        if stage.kind == "flat_map"
                        else _transform.transform_worker
                    )
                    nursery.start_soon(
                        _keyed.dispatch_by_key, self, name=f"{stage.name} dispatcher"
                    )
                elif stage.kind == "flat_map":
                    if stage.ordered and stage.workers > 1:
                        self.window = _ordered.ReorderWindow(self)
                    self.serve(_flat_map.flat_map_worker)
                elif stage.ordered and stage.workers > 1:
                    self.window = _ordered.ReorderWindow(self)
                    self.serve(_ordered.ordered_worker)
                else:
                    self.serve(_transform.transform_worker)

    def serve(self, worker: Worker) -> None:
        """Read the stage's buffer with *worker* loops: one now, more as items need them."""
        self.worker = worker
        self.inputs.grow = self.start_worker
        self.inputs.start_reader()

    def start_worker(self) -> bool:
        """Start one more worker on the stage's buffer, unless there are enough (the grow hook)."""
        window = self.window
        if window is not None and not window.has_room():
            window.starved = True  # retried when the window moves
            return False
        if _cancelled():
            return False
        self._start(self.inputs)
        if self.started >= self.stage.workers:
            self.inputs.grow = None
        return True

    def start_queue_worker(self, queue: Buffer) -> bool:
        """Start the one worker of a keyed stage's *queue* (its grow hook, used once)."""
        if _cancelled():
            return False
        queue.grow = None
        self._start(queue)
        return True

    def _start(self, inputs: Buffer) -> None:
        assert self.nursery is not None
        self.nursery.start_soon(self._work, inputs, name=f"{self.stage.name} worker {self.started}")
        self.started += 1
        self.live += 1

    async def _work(self, inputs: Buffer) -> None:
        """One worker's task: the kind's loop, then no more workers once the last is gone.

        The last worker leaves when the input has ended or the run is being
        cancelled; a cancelled writer upstream may still write without
        blocking then, and must not start a worker in a nursery that is closing.
        """
        assert self.worker is not None
        try:
            await self.worker(self, inputs)
        finally:
            self.live -= 1
            if not self.live:
                self.inputs.grow = None

    # -- failures --------------------------------------------------------------

    async def fail_item(self, item: Any, exc: Exception, inputs: Buffer) -> bool:
        """Apply the stage's ``on_error`` to *item*'s failure; ``False`` if the run fails."""
        if isinstance(exc, NotAwaitableError):
            # A function that must be async was not (fn with policy=, or one the
            # call gave a guard of its own): a programming error, as every guard
            # and settle() treat it, not the item's failure.
            exc.add_note(f"in stage {self.stage.name!r} of a trine.Pipeline")
            self.run.fail_misused(exc)
            return False
        what = "stage"
        if type(exc) is KeyFailed:
            what, exc = "the key function of stage", exc.error
        stage = self.stage
        on_error = stage.on_error
        self.failed += 1
        if on_error == "skip":
            self.skipped += 1
            return True
        if on_error == "raise":
            self.run.fail(
                StageError(
                    f"{what} {stage.name!r} failed on item {reprlib.repr(item)}: "
                    f"{type(exc).__name__}: {exc}",
                    stage=stage.name,
                    item=item,
                ),
                exc,
            )
            return False
        self.dead_lettered += 1
        try:
            hook_result = on_error(item, exc)
            if inspect.isawaitable(hook_result):
                self.hand_off(inputs)  # about to block
                await hook_result
            elif inspect.isgenerator(hook_result) or inspect.isasyncgen(hook_result):
                # (a lambda or partial around a generator function): it ran nothing
                close_unawaited(hook_result)
                raise TypeError(
                    f"on_error returned the generator {hook_result!r}, so it ran nothing: "
                    "define the hook without yield"
                )
        except Exception as hook_exc:
            self.run.fail(
                StageError(
                    f"the on_error hook of stage {stage.name!r} failed on item "
                    f"{reprlib.repr(item)}: {type(hook_exc).__name__}: {hook_exc}",
                    stage=stage.name,
                    item=item,
                ),
                hook_exc,
            )
            return False
        return True

    def drop(self, item: Any) -> None:
        """The stage's full buffer dropped *item*: count it, hand it to ``on_drop``.

        Called in the task that wrote to the buffer; a failing ``on_drop`` fails the run.
        """
        self.dropped += 1
        on_drop = self.stage.on_drop
        if on_drop is None:
            return
        try:
            check_sync_result("on_drop", on_drop(item))
        except Exception as exc:
            self.run.fail(
                StageError(
                    f"the on_drop hook of stage {self.stage.name!r} failed on item "
                    f"{reprlib.repr(item)}: {type(exc).__name__}: {exc}",
                    stage=self.stage.name,
                    item=item,
                ),
                exc,
            )

    # -- delivery --------------------------------------------------------------

    def hand_off(self, inputs: Buffer) -> None:
        """The calling worker is about to block: summon a sibling for what waits in *inputs*."""
        if self.window is not None:
            self.window.hand_off(inputs)
        else:
            inputs.hand_off()

    async def deliver(self, item: Any, inputs: Buffer) -> None:
        """Hand *item* downstream, waiting for room (hot loops try ``put_nowait`` first).

        Before waiting, a sibling is summoned for what still waits in *inputs*.
        """
        output = self.output
        if not output.put_nowait(item):
            self.hand_off(inputs)
            await output.put(item)
        self.items_out += 1

    # -- statistics ------------------------------------------------------------

    def statistics(self) -> StageStatistics:
        stage = self.stage
        inputs = self.inputs
        used = len(inputs.items) + sum(len(queue.items) for queue in self.queues.values())
        size = inputs.capacity
        if stage.dispatches:
            size += stage.workers * self.queue_capacity
        return StageStatistics(
            name=stage.name,
            kind=stage.kind,
            workers=stage.workers,
            items_in=self.items_in,
            items_out=self.items_out,
            failed=self.failed,
            skipped=self.skipped,
            dead_lettered=self.dead_lettered,
            busy_workers=self.busy,
            buffer_used=used,
            buffer_size=size,
            latency=self.latency.summary(),
            workers_started=self.started,
            dropped=self.dropped,
        )


def _cancelled() -> bool:
    """Whether the calling task is being cancelled.

    Then no worker starts: starting one would only keep a chain of starts
    going (each new worker hands off before it sees the cancellation), so a
    huge ``workers=`` could delay the cancel.
    """
    return trio.current_effective_deadline() == -math.inf


def _no_call(item: Any) -> Any:  # pragma: no cover  (batch, rate_limit, broadcast call nothing)
    raise AssertionError("this stage kind calls no function")
