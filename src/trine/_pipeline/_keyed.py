"""Keyed dispatch: items with equal keys go to one worker, so their order is kept.

A stage with ``key=`` and several workers has a dispatcher task: it takes
every waiting item from the stage's buffer, computes ``hash(key(item))``,
and moves the item into the queue of worker ``hash % workers``. Each queue
has exactly one worker, which runs its kind's loop (:mod:`._transform` or
:mod:`._flat_map`) on it, so two items of one key never run at once and
leave in the order they came. Queues and their workers are made when a key
first needs them.

A queue holds ``4 * buffer // workers`` items (at most ``buffer``, at least
one), so each worker takes many items per trip through the scheduler while
the queues together hold at most ``4 * buffer``. When an item's queue is
full, the dispatcher holds that item and every item behind it waits
(head-of-line blocking), as it would with one channel per worker. So a keyed
stage holds O(buffer + workers) items. A failing key is the item's failure.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING

from ._buffer import Buffer
from ._call import KeyFailed, make_key_hash

if TYPE_CHECKING:
    from ._stage import StageRun

__all__ = ["dispatch_by_key"]


async def dispatch_by_key(stage: StageRun) -> None:
    """Route each item of the stage's buffer to the queue of the worker its key belongs to."""
    assert stage.stage.key is not None
    key_hash = make_key_hash(stage.stage.key)
    workers = stage.stage.workers
    shared = stage.inputs
    items = shared.items
    take = shared.take
    queues = stage.queues
    with ExitStack() as writing:  # the dispatcher writes every queue
        while True:
            if not items and not await shared.wait_item():
                return
            item = take()
            try:
                number = key_hash(item) % workers
            except Exception as exc:
                stage.items_in += 1
                if not await stage.fail_item(item, KeyFailed(exc), shared):
                    return
                continue
            queue = queues.get(number)
            if queue is None:
                queue = queues[number] = Buffer(stage.queue_capacity)
                queue.add_writer()
                writing.enter_context(queue.producing())
                # The queue's one worker starts with its first item.
                queue.grow = lambda queue=queue: stage.start_queue_worker(queue)
            if not queue.put_nowait(item):
                await queue.put(item)  # a full queue holds up every key: head-of-line
