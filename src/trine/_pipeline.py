"""Pipelines: stages of workers joined by bounded buffers, as nested nurseries.

A :class:`Pipeline` is an immutable *description*: a source and a chain of
stages. :meth:`Pipeline.open` runs it in one nursery, with one child nursery
per stage holding that stage's workers, so a Trio task tree reads
pipeline → stage → workers.

Why not memory channels between stages? In Trio every ``send`` and every
``receive`` is a trip through the scheduler (about 8 µs here), whatever the
user's function costs. Stages here are joined by :class:`_Buffer`, a bounded
deque with its own wait queues, and a worker never yields while it has work
it can do without waiting: it takes the next waiting item, calls the
function, hands the result downstream and goes on to the next item, parking
only when its input is empty, its output is full or the function itself
blocks. A stage that finds several items ready therefore moves them all in
one trip through the scheduler (opportunistic chunking: nothing waits for a
chunk to fill), while every function is still called once per item, every
result is handed on as soon as it exists, and every bound counts items.

The bounds are a memory channel's: at most ``buffer`` items wait in front of
a stage, and each worker holds the one item it is working on (or the one
result it is handing on). The function is started by hand
(``coroutine.send(None)``) so that a worker knows when it is about to block:
if items are still waiting then, it wakes one idle sibling to take them, so a
stage of many workers behaves as workers taking one item at a time would.
"""

from __future__ import annotations

import inspect
import itertools
import math
import reprlib
import types
from collections import OrderedDict, deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from contextlib import asynccontextmanager
from typing import Any, Generic, Literal, TypeVar, final, overload

import attrs
import trio

from ._errors import StageError
from ._policy import SupportsCall, _check_call_guard
from ._rate import RateLimiter
from ._stats import LatencyHistogram, LatencySummary
from ._util import (
    check_async_callable,
    check_choice,
    check_int,
    check_number,
    close_unawaited,
)

__all__ = [
    "Pipeline",
    "PipelineOutput",
    "PipelineStatistics",
    "StageStatistics",
    "merge",
]

T = TypeVar("T")
U = TypeVar("U")
T_co = TypeVar("T_co", covariant=True)

OnError = Literal["raise", "skip"] | Callable[[Any, Exception], Any]
_ON_ERROR_CHOICES: tuple[str, ...] = ("raise", "skip")
_EXECUTORS: tuple[str | None, ...] = (None, "thread", "process")
# collect() and run() keep everything they receive, so their last hop may be
# wide: it only bounds how many results wait for the caller's task.
_COLLECT_BUFFER = 1024


# --------------------------------------------------------------------------- buffer

_END: Any = object()
"""What :meth:`_Buffer.get` returns once every producer is done and the buffer is empty."""


def _parked_in(waiters: OrderedDict[trio.lowlevel.Task, None]) -> Callable[[Any], Any]:
    """Add the current task to *waiters*; return the abort function for its park.

    Used as ``await trio.lowlevel.wait_task_rescheduled(_parked_in(waiters))``:
    a waker pops the task and reschedules it; cancellation removes it.
    """
    task = trio.lowlevel.current_task()
    waiters[task] = None

    def abort(_: Any) -> trio.lowlevel.Abort:
        del waiters[task]
        return trio.lowlevel.Abort.SUCCEEDED

    return abort


@final
class _Buffer:
    """A bounded FIFO of items between two stages (or the last stage and the caller).

    Like a memory channel of ``capacity`` items: at most ``capacity`` items
    wait here, and a consumer holds the item it took. Every task that writes
    here is counted once with :meth:`add_producer` when the run is wired, and
    calls :meth:`close_producer` once when it is done; when none is left and
    the buffer is empty, consumers see the end.

    Producers append with :meth:`put_nowait` (or :meth:`put` to wait for
    room); consumers take from :attr:`items` directly (``popleft``) and then
    call :meth:`freed` if producers are parked. Waking is frugal, because
    every wake-up is a trip through the scheduler: a put wakes a parked
    consumer only if none is already on its way, a consumer about to block
    while items still wait hands them on with :meth:`pass_on`, and a taken
    item wakes a parked producer only if the room is not already promised
    to another.
    """

    __slots__ = (
        "_getters",
        "_getters_woken",
        "_producers",
        "_putters",
        "_putters_woken",
        "capacity",
        "items",
    )

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[Any] = deque()
        self._producers = 0
        # Parked tasks, oldest first, and how many were woken but have not run yet.
        self._getters: OrderedDict[trio.lowlevel.Task, None] = OrderedDict()
        self._getters_woken = 0
        self._putters: OrderedDict[trio.lowlevel.Task, None] = OrderedDict()
        self._putters_woken = 0

    # producer side
    def put_nowait(self, item: Any) -> bool:
        """Append *item* if there is room; return whether it was appended."""
        items = self.items
        if len(items) >= self.capacity:
            return False
        items.append(item)
        if self._getters and not self._getters_woken:
            self._wake_getter()
        return True

    async def put(self, item: Any) -> None:
        """Append *item*, parking until there is room (hot loops try :meth:`put_nowait` first)."""
        while len(self.items) >= self.capacity:
            await trio.lowlevel.wait_task_rescheduled(_parked_in(self._putters))
            self._putters_woken -= 1
        self.items.append(item)
        if self._getters and not self._getters_woken:
            self._wake_getter()

    def add_producer(self, count: int = 1) -> None:
        """Count *count* more tasks that will write here (before the run starts)."""
        self._producers += count

    def close_producer(self) -> None:
        """One producer is done; after the last, consumers see the end."""
        self._producers -= 1
        if self._producers <= 0:
            while self._getters:
                self._wake_getter()

    # consumer side
    async def wait_item(self) -> bool:
        """Park until an item waits; ``False`` if none ever will (every producer is done)."""
        while not self.items:
            if self._producers <= 0:
                return False
            await trio.lowlevel.wait_task_rescheduled(_parked_in(self._getters))
            self._getters_woken -= 1
        return True

    def take(self) -> Any:
        """Take the oldest item (the caller knows there is one)."""
        item = self.items.popleft()
        if self._putters:
            self.freed()
        return item

    async def get(self) -> Any:
        """Take the oldest item, parking while there is none; :data:`_END` after the last."""
        if not self.items and not await self.wait_item():
            return _END
        return self.take()

    def freed(self) -> None:
        """Items were taken: wake parked producers for the room not yet promised."""
        room = self.capacity - len(self.items)
        putters = self._putters
        while putters and self._putters_woken < room:
            task, _ = putters.popitem(last=False)
            self._putters_woken += 1
            trio.lowlevel.reschedule(task)

    def pass_on(self) -> None:
        """The caller is about to block: wake a parked consumer for the items still waiting."""
        if self.items and self._getters and not self._getters_woken:
            self._wake_getter()

    def _wake_getter(self) -> None:
        task, _ = self._getters.popitem(last=False)
        self._getters_woken += 1
        trio.lowlevel.reschedule(task)


@types.coroutine
def _resume(coroutine: Any, yielded: Any) -> Generator[Any, Any, Any]:
    """Finish *coroutine*, already started by hand and suspended on *yielded*.

    Forwards what Trio sends or throws, exactly as ``await`` would.
    """
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as exc:  # forwarded to the coroutine, which re-raises it
            try:
                yielded = coroutine.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coroutine.send(sent)
            except StopIteration as stop:
                return stop.value


# --------------------------------------------------------------------------- description


@attrs.frozen(eq=False)
class _Stage:
    kind: str
    name: str
    fn: Callable[..., Any] | None = None
    workers: int = 1
    buffer: int = 1
    ordered: bool = False
    key: Callable[[Any], Any] | None = None
    on_error: OnError = "raise"
    policy: SupportsCall | None = None
    executor: str | None = None
    size: int = 0
    timeout: float | None = None
    rate: tuple[float, float, int] | None = None  # rate, per, burst
    branches: tuple[tuple[_Stage, ...], ...] = ()


@attrs.define(eq=False)
class _SourceState:
    """Shared by every pipeline built on one source, so a one-shot source is refused twice."""

    items: object
    kind: str
    used: bool = False


@attrs.define(eq=False)
class _LatestRun:
    run: _Run | None = None


@final
@attrs.frozen(eq=False, repr=False)
class Pipeline(Generic[T_co]):
    """An immutable description of a source and a chain of stages.

    Build one with :meth:`source` and the stage methods, each of which returns
    a *new* pipeline (so a prefix can be shared); run it with :meth:`open`,
    :meth:`collect` or :meth:`run`::

        pipe = (
            Pipeline.source(urls)
            .map(fetch, workers=20)
            .filter(is_interesting)
            .batch(100, timeout=0.5)
            .map(store, workers=2)
        )
        async with pipe.open() as results:
            async for stored in results:
                ...

    Every stage has its own workers (``workers=``) and a bounded buffer in
    front of it (``buffer=``, by default one item per worker), bounded as a
    memory channel is: at most ``buffer`` items wait, and each worker holds
    the one it works on. A worker only yields to Trio when it must wait, so
    items that are ready together move between stages in one trip through
    the scheduler, which is what makes a pipeline several times faster than
    memory channels; every function is still called once per item and every
    result is handed on as soon as it exists.

    When the source is exhausted each stage finishes the items it has and
    closes its output, and the next stage follows: every item is delivered
    exactly once, or its failure goes to the stage's ``on_error``. A failure
    under ``on_error="raise"`` (the default) cancels the whole pipeline and is
    raised as one :exc:`StageError`; cancelling the caller cancels every
    stage promptly; no task outlives :meth:`open`.
    """

    _source_state: _SourceState
    _stages: tuple[_Stage, ...]
    _latest: _LatestRun = attrs.field(factory=_LatestRun)

    # -- building ---------------------------------------------------------

    @classmethod
    def source(
        cls,
        items: Iterable[U]
        | AsyncIterable[U]
        | trio.abc.ReceiveChannel[U]
        | Callable[[], AsyncIterator[U]],
    ) -> Pipeline[U]:
        """Start a pipeline that reads *items*.

        Args:
          items: an iterable (a list can be run again and again; an iterator or
            generator only once, and a generator is closed when the run ends),
            an async iterable, a :class:`trio.abc.ReceiveChannel` (read until
            it ends; the run closes it when it stops reading), or an async
            generator function (called afresh by each run).

        Raises:
          TypeError: if *items* is none of these, or is a coroutine object.
        """
        value: object = items  # checked at run time whatever the annotation says
        if isinstance(value, trio.abc.ReceiveChannel):
            kind = "channel"
        elif inspect.isasyncgenfunction(value):
            kind = "function"
        elif isinstance(value, AsyncIterable):
            kind = "async_iterator" if isinstance(value, AsyncIterator) else "async_iterable"
        elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
            kind = "iterator" if iter(value) is value else "iterable"
        elif callable(value):
            kind = "function"
        else:
            if inspect.isawaitable(value):
                check_async_callable("items", value)  # refuses it with the usual message
            raise TypeError(
                "items must be an iterable, an async iterable, a trio ReceiveChannel "
                f"or an async generator function, got {value!r}"
            )
        return Pipeline(_SourceState(items, kind), ())

    def _then(self, stage: _Stage) -> Pipeline[Any]:
        return Pipeline(self._source_state, (*self._stages, stage))

    def _default_name(self, kind: str, fn: object) -> str:
        base = getattr(fn, "__name__", None) or kind
        if base == "<lambda>":
            base = kind
        return f"{len(self._stages) + 1}:{base}"

    def _check_common(self, kind: str, fn: object, buffer: object, name: object) -> tuple[int, str]:
        """Check the options every stage has; return the buffer and the name to use."""
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        return (
            check_int("buffer", buffer),
            name if isinstance(name, str) else self._default_name(kind, fn),
        )

    def _build(
        self,
        kind: str,
        fn: object,
        *,
        workers: object,
        ordered: object,
        buffer: object,
        on_error: object,
        name: object,
        policy: object,
        key: object = None,
        executor: object = None,
    ) -> _Stage:
        fn = check_async_callable("fn", fn)
        workers = check_int("workers", workers)
        if not isinstance(ordered, bool):
            raise TypeError(f"ordered must be a bool, got {ordered!r}")
        buffer, name = self._check_common(kind, fn, workers if buffer is None else buffer, name)
        if not isinstance(on_error, str):
            on_error = check_async_callable("on_error", on_error)
        else:
            check_choice("on_error", on_error, _ON_ERROR_CHOICES)
        if policy is not None:
            _check_call_guard("policy", policy)
        if key is not None:
            key = check_async_callable("key", key)
            # (an object whose __call__ is async counts as an async function)
            if any(
                inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f)
                for f in (key, type(key).__call__)
            ):
                raise TypeError(
                    "key must be a plain function (its result is hashed to choose a "
                    f"worker), got {key!r}"
                )
            if ordered:
                raise ValueError(
                    "key and ordered cannot be combined: key already keeps per-key order"
                )
        executor = check_choice("executor", executor, _EXECUTORS)
        if executor is not None and policy is not None:
            raise ValueError("executor and policy cannot be combined")
        if executor is not None and inspect.iscoroutinefunction(fn):
            raise TypeError(f"executor={executor!r} runs plain functions, got the async {fn!r}")
        if executor == "process":
            _require_trio_parallel()
        return _Stage(
            kind=kind,
            name=name,
            fn=fn,
            workers=workers,
            buffer=buffer,
            ordered=ordered,
            key=key,
            on_error=on_error,  # type: ignore[arg-type]  # checked above
            policy=policy,  # type: ignore[arg-type]  # checked structurally above
            executor=executor,  # type: ignore[arg-type]  # checked above
        )

    @overload
    def map(
        self,
        fn: Callable[[T_co], Awaitable[U]],
        *,
        workers: int = 1,
        ordered: bool = False,
        buffer: int | None = None,
        key: Callable[[T_co], object] | None = None,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
        executor: Literal["thread", "process"] | None = None,
    ) -> Pipeline[U]: ...
    @overload
    def map(
        self,
        fn: Callable[[T_co], U],
        *,
        workers: int = 1,
        ordered: bool = False,
        buffer: int | None = None,
        key: Callable[[T_co], object] | None = None,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
        executor: Literal["thread", "process"] | None = None,
    ) -> Pipeline[U]: ...
    def map(
        self,
        fn: Callable[[T_co], Any],
        *,
        workers: int = 1,
        ordered: bool = False,
        buffer: int | None = None,
        key: Callable[[T_co], object] | None = None,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
        executor: Literal["thread", "process"] | None = None,
    ) -> Pipeline[Any]:
        """Replace each item by ``fn(item)`` (awaited if it is awaitable).

        Args:
          fn: a function of one item; async or plain.
          workers: how many items are processed at once (``>= 1``).
          ordered: with several workers, emit results in input order (a
            reorder window of ``workers + buffer`` items bounds the memory).
          buffer: how many items may wait for this stage (default: *workers*);
            each worker also holds the item it works on.
          key: with several workers, a plain function: items with equal
            ``key(item)`` always go to the same worker, so their order is
            kept. A dispatcher takes items from the stage's buffer into one
            queue per worker, of ``buffer // workers`` items (at least one), and
            holds one item while that queue is full; a failing key is the
            item's failure.
          on_error: ``"raise"`` (the pipeline fails with :exc:`StageError`),
            ``"skip"`` (the item is dropped and counted), or a dead-letter
            function ``hook(item, exc)``, plain or async, that receives it.
          name: the stage's name in statistics and errors.
          policy: an object with ``async call(fn, *args)`` (a
            :class:`trine.Policy`) that each call goes through; *fn* must be async.
          executor: ``"thread"`` runs a plain *fn* in :func:`trio.to_thread.run_sync`,
            ``"process"`` in a worker process (``trio-parallel``), at most
            *workers* at once. Cancellation kills a worker process, but waits
            for a running thread to return.

        Raises:
          TypeError, ValueError: for an invalid argument, at once.
        """
        return self._then(
            self._build(
                "map",
                fn,
                workers=workers,
                ordered=ordered,
                buffer=buffer,
                on_error=on_error,
                name=name,
                policy=policy,
                key=key,
                executor=executor,
            )
        )

    def filter(
        self,
        fn: Callable[[T_co], Awaitable[object]] | Callable[[T_co], object],
        *,
        workers: int = 1,
        ordered: bool = False,
        buffer: int | None = None,
        key: Callable[[T_co], object] | None = None,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
    ) -> Pipeline[T_co]:
        """Keep the items for which ``fn(item)`` is true (awaited if async).

        Arguments as for :meth:`map`.
        """
        return self._then(
            self._build(
                "filter",
                fn,
                workers=workers,
                ordered=ordered,
                buffer=buffer,
                on_error=on_error,
                name=name,
                policy=policy,
                key=key,
            )
        )

    @overload
    def flat_map(
        self,
        fn: Callable[[T_co], AsyncIterable[U]],
        *,
        workers: int = 1,
        ordered: bool = False,
        buffer: int | None = None,
        key: Callable[[T_co], object] | None = None,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
    ) -> Pipeline[U]: ...
    @overload
    def flat_map(
        self,
        fn: Callable[[T_co], Awaitable[Iterable[U]]],
        *,
        workers: int = 1,
        ordered: bool = False,
        buffer: int | None = None,
        key: Callable[[T_co], object] | None = None,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
    ) -> Pipeline[U]: ...
    @overload
    def flat_map(
        self,
        fn: Callable[[T_co], Iterable[U]],
        *,
        workers: int = 1,
        ordered: bool = False,
        buffer: int | None = None,
        key: Callable[[T_co], object] | None = None,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
    ) -> Pipeline[U]: ...
    def flat_map(
        self,
        fn: Callable[[T_co], Any],
        *,
        workers: int = 1,
        ordered: bool = False,
        buffer: int | None = None,
        key: Callable[[T_co], object] | None = None,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
    ) -> Pipeline[Any]:
        """Replace each item by every item of ``fn(item)``.

        *fn* returns an iterable, an async iterable (an async generator
        function will do), or is async and returns an iterable. Its items are
        handed on one by one as they come, and a generator is closed by the
        worker when it ends. A failure while iterating counts as the input
        item's failure; what was already produced for it has been delivered.
        With ``ordered=True`` the oldest item's outputs stream on, and a later
        item keeps at most ``buffer`` outputs until its turn. Other arguments
        as for :meth:`map`.
        """
        return self._then(
            self._build(
                "flat_map",
                fn,
                workers=workers,
                ordered=ordered,
                buffer=buffer,
                on_error=on_error,
                name=name,
                policy=policy,
                key=key,
            )
        )

    def tap(
        self,
        fn: Callable[[T_co], object],
        *,
        workers: int = 1,
        ordered: bool = False,
        buffer: int | None = None,
        key: Callable[[T_co], object] | None = None,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
    ) -> Pipeline[T_co]:
        """Call ``fn(item)`` (awaited if async) for its side effect; pass the item on.

        Arguments as for :meth:`map`; an item whose call fails is not passed on.
        """
        return self._then(
            self._build(
                "tap",
                fn,
                workers=workers,
                ordered=ordered,
                buffer=buffer,
                on_error=on_error,
                name=name,
                policy=policy,
                key=key,
            )
        )

    def enumerate(
        self, *, start: int = 0, buffer: int = 1, name: str | None = None
    ) -> Pipeline[tuple[int, T_co]]:
        """Replace each item by ``(index, item)``, counting from *start*.

        Args:
          start: the first index.
          buffer: how many items may wait for this stage (``>= 1``).
          name: the stage's name in statistics and errors.
        """
        if isinstance(start, bool) or not isinstance(start, int):
            raise TypeError(f"start must be an int, got {start!r}")
        buffer, name = self._check_common("enumerate", None, buffer, name)
        return self._then(_Stage(kind="enumerate", name=name, size=start, buffer=buffer))

    def batch(
        self,
        size: int,
        timeout: float | None = None,
        *,
        buffer: int | None = None,
        name: str | None = None,
    ) -> Pipeline[list[T_co]]:
        """Group items into lists of *size*.

        A list is emitted when it is full, or when *timeout* seconds have
        passed since the stage took its first item (if *timeout* is given), or
        when the input ends (the last list may be short; an empty list is never
        emitted). Items wait in the stage's buffer only while the previous list
        is being handed on.

        Args:
          size: the most items in a list (``>= 1``).
          timeout: the most seconds a list waits for more items after its first.
          buffer: how many items may wait for this stage (default: *size*).
          name: the stage's name in statistics and errors.

        Raises:
          TypeError, ValueError: if *size* or *buffer* is not an int ``>= 1`` or
            *timeout* not a number ``> 0``.
        """
        size = check_int("size", size)
        if timeout is not None:
            timeout = check_number("timeout", timeout, exclusive=True, allow_inf=True)
        buffer, name = self._check_common("batch", None, size if buffer is None else buffer, name)
        return self._then(
            _Stage(kind="batch", name=name, size=size, timeout=timeout, buffer=buffer)
        )

    def rate_limit(
        self,
        rate: float,
        per: float = 1.0,
        *,
        burst: int = 1,
        buffer: int = 1,
        name: str | None = None,
    ) -> Pipeline[T_co]:
        """Let at most *rate* items through per *per* seconds, evenly spaced.

        Items are delayed, never dropped. Each run of the pipeline paces its
        items with its own :class:`~trine.RateLimiter` ``(rate, per, burst=burst)``,
        so the guarantee is the rate limiter's: in any interval of length *t*
        at most ``burst + rate * t / per`` items leave; with ``burst=1`` the
        *n*-th item after a pause leaves ``n * per / rate`` seconds after the first.

        Args:
          rate, per, burst: as for :class:`~trine.RateLimiter`.
          buffer: how many items may wait for this stage (``>= 1``).
          name: the stage's name in statistics and errors.

        Raises:
          TypeError, ValueError: if *rate*, *per* or *burst* is not valid for
            :class:`~trine.RateLimiter`, or *buffer* is not an int ``>= 1``.
        """
        # Built once here so that bad arguments fail at build time, with
        # RateLimiter's own messages; each run gets a fresh one.
        RateLimiter(rate, per, burst=burst)
        buffer, name = self._check_common("rate_limit", None, buffer, name)
        return self._then(
            _Stage(kind="rate_limit", name=name, rate=(rate, per, burst), buffer=buffer)
        )

    def broadcast(
        self,
        *branches: Callable[[Pipeline[T_co]], Pipeline[U]],
        buffer: int = 1,
        name: str | None = None,
    ) -> Pipeline[U]:
        """Send every item to every branch; emit what all the branches emit.

        Each branch is a function that adds stages to the pipeline it is given
        (``lambda p: p.map(store)``); it runs in the broadcast stage's nursery.
        The outputs of the branches are interleaved as they arrive.

        .. note::
           Backpressure comes from the *slowest* branch: an item goes to the
           next branch only when the previous one had room for it, so a fast
           branch waits for a slow one once the slow branch's buffer is full.

        Args:
          branches: functions that each add stages to the pipeline they are given.
          buffer: how many items may wait for the distributor (``>= 1``).
          name: the stage's name in statistics and errors; the branches'
            stages are called ``name[number].stage``.

        Raises:
          TypeError: if a branch is not callable or does not return a pipeline
            built on the one it was given.
          ValueError: if no branch is given, or *buffer* is not ``>= 1``.
        """
        if not branches:
            raise ValueError("broadcast needs at least one branch")
        buffer, stage_name = self._check_common("broadcast", None, buffer, name)
        built: list[tuple[_Stage, ...]] = []
        for number, branch in enumerate(branches):
            branch = check_async_callable("branch", branch)
            stub: Pipeline[Any] = Pipeline(_SourceState(None, "branch"), ())
            result = branch(stub)
            if not isinstance(result, Pipeline) or result._source_state is not stub._source_state:
                raise TypeError(
                    "each branch must return stages added to the pipeline it is given, "
                    f"got {result!r}"
                )
            built.append(
                tuple(
                    attrs.evolve(stage, name=f"{stage_name}[{number}].{stage.name}")
                    for stage in result._stages
                )
            )
        return self._then(
            _Stage(kind="broadcast", name=stage_name, buffer=buffer, branches=tuple(built))
        )

    # -- running ----------------------------------------------------------

    def _one_shot_sources(self) -> list[_SourceState]:
        state = self._source_state
        if state.kind == "merge":
            pipelines: tuple[Pipeline[Any], ...] = state.items  # type: ignore[assignment]  # see merge()
            return [found for pipeline in pipelines for found in pipeline._one_shot_sources()]
        return [state] if state.kind in ("iterator", "async_iterator", "channel") else []

    def _claim_sources(self) -> None:
        """Mark this run's one-shot sources used, after checking every one of them."""
        if self._source_state.kind == "branch":
            raise RuntimeError("a broadcast branch cannot be run on its own")
        states = self._one_shot_sources()
        for number, state in enumerate(states):
            kind = state.kind.replace("_", " ")
            if any(state is earlier for earlier in states[:number]):
                raise RuntimeError(
                    f"this pipeline reads one one-shot {kind} twice (merging pipelines "
                    "built on the same source); give each input a source of its own"
                )
            if state.used:
                raise RuntimeError(
                    f"this pipeline's source is a one-shot {kind} that an earlier run already "
                    "consumed; to run a pipeline again, build it on a list or an async "
                    "generator function"
                )
        for state in states:
            state.used = True

    def _start_run(self, output_buffer: int) -> _Run:
        self._claim_sources()
        run = _Run(self._stages, self._source_state, output_buffer)
        self._latest.run = run
        return run

    @asynccontextmanager
    async def open(self, *, buffer: int = 1) -> AsyncGenerator[PipelineOutput[T_co], None]:
        """Run the pipeline; yield its output to iterate over.

        Leaving the block cancels whatever is still running. Iterating the
        output checks for cancellation on every item and yields to the
        scheduler at least once per chunk (never more than the last buffer's size).

        Args:
          buffer: how many results may wait for the block (``>= 1``).

        Raises:
          StageError: if a stage with ``on_error="raise"`` fails (the cause
            is its ``__cause__``).
          RuntimeError: if the source is a one-shot iterator consumed by an earlier run.
        """
        buffer = check_int("buffer", buffer)
        run = self._start_run(buffer)
        raised: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                run.start(nursery)
                try:
                    yield run.output
                finally:
                    run.stop()
        except BaseExceptionGroup as group:
            # Workers never raise (a failure is recorded and cancels the run),
            # so the group holds what the block raised.
            if run.failure is not None:
                raise BaseExceptionGroup(
                    "a pipeline stage failed and the open() block raised",
                    [run.failure, *group.exceptions],
                ) from None
            if len(group.exceptions) != 1:
                raise
            raised = group.exceptions[0]  # the block's own exception, raised bare below
        finally:
            run.finished = True
            run.output._closed = True
        if raised is not None:
            # Outside the except clause, so that its cause and context stay its own.
            raise raised
        if run.failure is not None:
            raise run.failure

    async def collect(self) -> list[T_co]:
        """Run the pipeline to the end and return every result, in arrival order.

        Raises:
          StageError: as for :meth:`open`.
        """
        results: list[T_co] = []
        async with self.open(buffer=_COLLECT_BUFFER) as output:
            await output._drain(results.extend)
        return results

    async def run(self) -> None:
        """Run the pipeline to the end, discarding the results.

        Raises:
          StageError: as for :meth:`open`.
        """
        async with self.open(buffer=_COLLECT_BUFFER) as output:
            await output._drain(None)

    def statistics(self) -> PipelineStatistics:
        """Statistics of the latest run of this pipeline (running or finished).

        Before the first run every counter is zero.
        """
        run = self._latest.run
        if run is None:
            return _Run(self._stages, self._source_state, 1).statistics()
        return run.statistics()

    def __repr__(self) -> str:
        names = ", ".join(stage.name for stage in self._stages)
        return f"<trine.Pipeline source={self._source_state.kind} stages=[{names}]>"


def merge(*pipelines: Pipeline[T]) -> Pipeline[T]:
    """A pipeline whose source is the outputs of *pipelines*, interleaved as they arrive.

    Each input pipeline runs with its own source and stages inside the merged
    pipeline's nursery; the merged output ends when all of them have ended.
    Stages added to the result apply to the items of every input::

        both = merge(Pipeline.source(local_files), Pipeline.source(remote_urls).map(download))
        await both.map(index, workers=4).run()

    Raises:
      TypeError: if an argument is not a :class:`Pipeline`.
      ValueError: if no pipeline is given.
    """
    if not pipelines:
        raise ValueError("merge needs at least one pipeline")
    for pipeline in pipelines:
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"merge takes Pipelines, got {pipeline!r}")
        if pipeline._source_state.kind == "branch":
            raise TypeError("a broadcast branch cannot be merged: it has no source of its own")
    # Each input's stages are renamed after its place, as a broadcast's
    # branches are, so that no two stages of the merged run share a name.
    renamed: tuple[Pipeline[T], ...] = tuple(
        Pipeline(
            pipeline._source_state,
            tuple(
                attrs.evolve(stage, name=f"merge[{number}].{stage.name}")
                for stage in pipeline._stages
            ),
        )
        for number, pipeline in enumerate(pipelines)
    )
    return Pipeline(_SourceState(renamed, "merge"), ())


def _require_trio_parallel() -> Any:
    try:
        import trio_parallel  # type: ignore[import-untyped]  # no type hints upstream
    except ImportError as exc:
        raise ImportError(
            'executor="process" needs trio-parallel: pip install "trine[process]"'
        ) from exc
    return trio_parallel


# --------------------------------------------------------------------------- statistics
# --------------------------------------------------------------------------- statistics


@attrs.frozen
class StageStatistics:
    """One stage of a running (or finished) pipeline, as :meth:`Pipeline.statistics` reports it."""

    name: str
    """The stage's name (``name=``, or its position and function name)."""
    kind: str
    """``"map"``, ``"filter"``, ``"flat_map"``, ``"tap"``, ``"enumerate"``, ``"batch"``,
    ``"rate_limit"`` or ``"broadcast"``."""
    workers: int
    """How many workers the stage has."""
    items_in: int
    """Items the stage has taken from its buffer."""
    items_out: int
    """Items the stage has handed downstream (lists, for ``batch``; one per branch
    and item, for ``broadcast``)."""
    failed: int
    """Items whose function (or key function) raised, whatever ``on_error`` then did."""
    skipped: int
    """Failed items dropped by ``on_error="skip"``."""
    dead_lettered: int
    """Failed items handed to an ``on_error`` function."""
    busy_workers: int
    """Workers waiting inside the stage's function right now (for ``flat_map``, also
    iterating an async result, which includes waiting for room downstream)."""
    buffer_used: int
    """Items waiting in the stage's buffer now, and in a keyed stage's queues (not those
    a worker or the dispatcher holds)."""
    buffer_size: int
    """The bound of the stage's buffer (for a keyed stage, plus its workers' queues)."""
    latency: LatencySummary
    """Time per item in the stage: for ``map``, ``filter``, ``tap`` and ``enumerate`` the
    function call; for ``flat_map`` the call and the iteration of what it returned; for
    ``rate_limit`` how long the item was held back; for ``broadcast`` how long it took to
    hand the item to every branch; for ``batch``, one sample per list, from its first
    item to handing it on."""


@attrs.frozen
class PipelineStatistics:
    """A snapshot of a pipeline run, as :meth:`Pipeline.statistics` returns it."""

    stages: tuple[StageStatistics, ...]
    """One entry per stage, in order (a broadcast's branch stages follow it)."""
    running: bool
    """Whether the run is still going."""
    output_buffer_used: int
    """Results waiting for the caller now."""

    def stage(self, name: str) -> StageStatistics:
        """The stage called *name*.

        Raises:
          KeyError: if no stage has that name.
        """
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)


# --------------------------------------------------------------------------- running


@final
class PipelineOutput(Generic[T_co]):
    """The results of a running pipeline: ``async for item in output``.

    Also :meth:`receive` (raising :exc:`trio.EndOfChannel` at the end), as a
    :class:`trio.abc.ReceiveChannel` does. Every item checks for cancellation;
    the scheduler is visited whenever no result is waiting, which is at least
    once every ``buffer`` results (the stages cannot refill the buffer while
    your loop runs without yielding). Several tasks may read one output; each
    result goes to one of them. Once :meth:`Pipeline.open` has exited, reading
    raises :exc:`trio.ClosedResourceError`, as a closed channel does.
    """

    __slots__ = ("_buffer", "_closed", "_cut_short", "_run")

    def __init__(self, run: _Run, buffer: _Buffer) -> None:
        self._run = run
        self._buffer = buffer
        self._closed = False
        self._cut_short = False  # the run was stopped before its stages finished

    def __aiter__(self) -> PipelineOutput[T_co]:
        return self

    async def __anext__(self) -> T_co:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError(
                "this pipeline run has ended: read its output inside `async with pipe.open()`"
            )
        buffer = self._buffer
        items = buffer.items
        if not items and not await buffer.wait_item():
            if self._cut_short:
                # The stages closed their outputs because they were cancelled.
                raise trio.ClosedResourceError("this pipeline run was stopped before its end")
            raise StopAsyncIteration
        item = buffer.take()
        if buffer._getters:
            buffer.pass_on()  # another reader waits, and our caller may block next
        return item  # type: ignore[no-any-return]  # buffers hold Any

    async def receive(self) -> T_co:
        """The next result.

        Raises:
          trio.EndOfChannel: when the pipeline has delivered everything.
          trio.ClosedResourceError: after :meth:`Pipeline.open` has exited, or
            (to a task reading from outside the block) when the run was
            stopped before its end.
        """
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise trio.EndOfChannel from None

    async def _drain(self, sink: Callable[[Iterable[Any]], object] | None) -> None:
        buffer = self._buffer
        items = buffer.items
        while await buffer.wait_item():
            if sink is not None:
                sink(items)
            items.clear()
            if buffer._putters:
                buffer.freed()

    def statistics(self) -> PipelineStatistics:
        """The same as :meth:`Pipeline.statistics` for this run."""
        return self._run.statistics()


@final
class _StageRun:
    """One stage's counters and buffers during a run."""

    __slots__ = (
        "branch_entries",
        "branch_runs",
        "busy",
        "dead_lettered",
        "failed",
        "inputs",
        "items_in",
        "items_out",
        "latency",
        "output",
        "skipped",
        "stage",
    )

    def __init__(self, stage: _Stage, inputs: list[_Buffer], output: _Buffer) -> None:
        self.stage = stage
        self.branch_entries: list[_Buffer] = []
        self.branch_runs: list[list[_StageRun]] = []
        self.inputs = inputs
        """The stage's buffer; for a keyed stage then one queue per worker."""
        self.output = output
        self.items_in = 0
        self.items_out = 0
        self.failed = 0
        self.skipped = 0
        self.dead_lettered = 0
        self.busy = 0
        self.latency = LatencyHistogram()

    async def deliver(self, item: Any, inputs: _Buffer) -> None:
        """Hand *item* downstream; before waiting for room, let a sibling take what waits."""
        if not self.output.put_nowait(item):
            inputs.pass_on()
            await self.output.put(item)
        self.items_out += 1

    def statistics(self) -> StageStatistics:
        stage = self.stage
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
            buffer_used=sum(len(buffer.items) for buffer in self.inputs),
            buffer_size=sum(buffer.capacity for buffer in self.inputs),
            latency=self.latency.summary(),
        )


@final
class _Reorder:
    """An ordered stage's results, emitted in input order from a bounded window.

    A worker may take the item numbered ``taken`` only while it is less than
    ``emitted + window``, so at most ``window`` items are taken and not yet
    emitted, however slow the oldest one is.
    """

    __slots__ = (
        "emitted",
        "emitting",
        "expanding",
        "pending",
        "taken",
        "window",
        "window_moved",
    )

    def __init__(self, window: int) -> None:
        self.window = window
        self.taken = 0
        self.emitted = 0
        self.pending: dict[int, list[Any]] = {}
        """Results of finished items, by input number, until their turn."""
        self.expanding: dict[int, list[Any]] = {}
        """Outputs kept by ``flat_map`` items still being iterated, by input number."""
        self.emitting = False
        self.window_moved = trio.lowlevel.ParkingLot()

    def is_full(self) -> bool:
        return self.taken >= self.emitted + self.window


@final
class _Run:
    """One execution of a pipeline description."""

    def __init__(
        self, stages: tuple[_Stage, ...], source: _SourceState, output_buffer: int
    ) -> None:
        self.failure: StageError | None = None
        self.finished = False
        self.cancel_scope: trio.CancelScope | None = None
        self.stage_runs: list[_StageRun] = []
        """Every stage, branches and merged pipelines included (for statistics)."""
        self.top_level: list[_StageRun] = []
        """The stages the pipeline's own nursery starts (branch stages are their broadcast's)."""
        self.sources: list[tuple[_SourceState, _Buffer]] = []
        self.output_buffer = _Buffer(output_buffer)
        self.output = PipelineOutput[Any](self, self.output_buffer)
        self._wire_pipeline(source, stages, self.output_buffer)

    # Wiring: every task that will write a buffer is counted with it here, so
    # each buffer knows when its last writer is done.

    def _wire_pipeline(
        self, source: _SourceState, stages: tuple[_Stage, ...], downstream: _Buffer
    ) -> None:
        entry = self._wire_chain(stages, downstream, self.top_level)
        if source.kind == "merge":
            for pipeline in source.items:  # type: ignore[attr-defined]  # a tuple of Pipelines
                self._wire_pipeline(pipeline._source_state, pipeline._stages, entry)
        else:
            self.sources.append((source, entry))
            entry.add_producer()  # the source task

    def _wire_chain(
        self, stages: tuple[_Stage, ...], downstream: _Buffer, into: list[_StageRun]
    ) -> _Buffer:
        """Wire *stages*, the last writing into *downstream*; return the buffer the first reads."""
        chain: list[_StageRun] = []
        for stage in reversed(stages):
            shared = _Buffer(stage.buffer)
            stage_run = _StageRun(stage, [shared], downstream)
            if stage.kind != "broadcast":  # a broadcast's branches write, below
                downstream.add_producer(stage.workers)
            if stage.key is not None and stage.workers > 1:
                # A dispatcher task moves items from the shared buffer to one
                # queue per worker, chosen by the item's key. The queues split
                # the stage's bound between them, so the stage holds at most
                # 2 * buffer + 2 * workers + 1 items: O(buffer + workers).
                for _ in range(stage.workers):
                    queue = _Buffer(max(1, stage.buffer // stage.workers))
                    queue.add_producer()
                    stage_run.inputs.append(queue)
            chain.append(stage_run)
            downstream = shared
        for stage_run in reversed(chain):
            self.stage_runs.append(stage_run)
            into.append(stage_run)
            for branch in stage_run.stage.branches:
                # Each branch reads what the broadcast's distributor hands it
                # and writes into the broadcast's own downstream.
                branch_runs: list[_StageRun] = []
                entry = self._wire_chain(branch, stage_run.output, branch_runs)
                entry.add_producer()  # the distributor
                stage_run.branch_entries.append(entry)
                stage_run.branch_runs.append(branch_runs)
        return downstream

    def statistics(self) -> PipelineStatistics:
        return PipelineStatistics(
            stages=tuple(stage_run.statistics() for stage_run in self.stage_runs),
            running=self.cancel_scope is not None and not self.finished,
            output_buffer_used=len(self.output_buffer.items),
        )

    def start(self, nursery: trio.Nursery) -> None:
        self.cancel_scope = nursery.cancel_scope
        for source, entry in self.sources:
            nursery.start_soon(self._read_source, source, entry, name="trine.Pipeline source")
        for stage_run in self.top_level:
            self._start_stage(nursery, stage_run)

    def _start_stage(self, nursery: trio.Nursery, stage_run: _StageRun) -> None:
        nursery.start_soon(
            self._run_stage, stage_run, name=f"trine.Pipeline stage {stage_run.stage.name!r}"
        )

    def fail(self, error: StageError, cause: BaseException) -> None:
        error.__cause__ = cause
        if self.failure is None:
            self.failure = error
        self.stop()

    def stop(self) -> None:
        """Cancel every task of the run; a reader still waiting is told it was cut short."""
        if self.output_buffer._producers > 0:
            self.output._cut_short = True
        assert self.cancel_scope is not None
        self.cancel_scope.cancel()

    async def _failed(
        self,
        stage_run: _StageRun,
        item: Any,
        exc: Exception,
        inputs: _Buffer,
        what: str = "stage",
    ) -> bool:
        """Apply the stage's ``on_error`` to *item*'s failure; ``False`` if the run fails.

        *what* names the failing part in the message (``"the key function of stage"``).
        """
        stage = stage_run.stage
        on_error = stage.on_error
        stage_run.failed += 1
        if on_error == "skip":
            stage_run.skipped += 1
            return True
        if on_error == "raise":
            self.fail(
                StageError(
                    f"{what} {stage.name!r} failed on item {reprlib.repr(item)}: "
                    f"{type(exc).__name__}: {exc}",
                    stage=stage.name,
                    item=item,
                ),
                exc,
            )
            return False
        stage_run.dead_lettered += 1
        try:
            hook_result = on_error(item, exc)
            if inspect.isawaitable(hook_result):
                inputs.pass_on()
                await hook_result
        except Exception as hook_exc:
            self.fail(
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

    # -- source -----------------------------------------------------------

    async def _read_source(self, source: _SourceState, output: _Buffer) -> None:
        items: Any = source.items
        try:
            if source.kind in ("iterable", "iterator"):
                await self._read_iterable(iter(items), output)
            elif source.kind == "channel":
                await self._read_channel(items, output)
            else:
                iterator = items() if source.kind == "function" else aiter(items)
                if not isinstance(iterator, AsyncIterator):
                    raise TypeError(
                        f"the source function must return an async iterator, got {iterator!r}"
                    )
                try:
                    await self._read_async(iterator, output)
                finally:
                    # An async generator is finalized here, in its own task,
                    # not later by the garbage collector. Not shielded: if its
                    # clean-up blocks, a cancelled pipeline must not wait for it.
                    if inspect.isasyncgen(iterator):
                        await iterator.aclose()
        except Exception as exc:
            self.fail(
                StageError(
                    f"the source failed: {type(exc).__name__}: {exc}", stage="source", item=None
                ),
                exc,
            )
            return
        output.close_producer()

    @staticmethod
    async def _read_iterable(iterator: Iterator[Any], output: _Buffer) -> None:
        put_nowait = output.put_nowait
        try:
            for item in iterator:
                if not put_nowait(item):
                    await output.put(item)
        finally:
            if inspect.isgenerator(iterator):
                iterator.close()  # its finally blocks run now, not at garbage collection

    @staticmethod
    async def _read_channel(channel: trio.abc.ReceiveChannel[Any], output: _Buffer) -> None:
        # The pipeline is the channel's consumer, so it closes the channel when
        # it stops reading: a producer still sending learns it at once
        # (BrokenResourceError) instead of waiting forever.
        receive_nowait = getattr(channel, "receive_nowait", None)  # memory channels have it
        put_nowait = output.put_nowait
        try:
            while True:
                try:
                    if receive_nowait is None:
                        item = await channel.receive()
                    else:
                        try:
                            item = receive_nowait()
                        except trio.WouldBlock:
                            item = await channel.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
                if not put_nowait(item):
                    await output.put(item)
        finally:
            await channel.aclose()

    @staticmethod
    async def _read_async(iterator: AsyncIterator[Any], output: _Buffer) -> None:
        put_nowait = output.put_nowait
        async for item in iterator:
            if not put_nowait(item):
                await output.put(item)

    # -- stages -----------------------------------------------------------

    async def _run_stage(self, stage_run: _StageRun) -> None:
        stage = stage_run.stage
        kind = stage.kind
        async with trio.open_nursery() as nursery:
            if kind == "broadcast":
                nursery.start_soon(self._distribute, stage_run, name=f"{stage.name} distributor")
                for branch_runs in stage_run.branch_runs:
                    for branch_run in branch_runs:
                        self._start_stage(nursery, branch_run)
            elif kind == "batch":
                nursery.start_soon(self._batch_worker, stage_run, name=f"{stage.name} worker")
            elif kind == "rate_limit":
                nursery.start_soon(self._rate_worker, stage_run, name=f"{stage.name} worker")
            else:
                call = self._make_call(stage)
                reorder = (
                    _Reorder(stage.workers + stage.buffer)
                    if stage.ordered and stage.workers > 1
                    else None
                )
                keyed = len(stage_run.inputs) > 1
                if keyed:
                    nursery.start_soon(
                        self._dispatch_by_key, stage_run, name=f"{stage.name} dispatcher"
                    )
                for index in range(stage.workers):
                    inputs = stage_run.inputs[index + 1 if keyed else 0]
                    nursery.start_soon(
                        self._worker,
                        stage_run,
                        inputs,
                        call,
                        reorder,
                        name=f"{stage.name} worker {index}",
                    )

    @staticmethod
    def _make_call(stage: _Stage) -> Callable[[Any], Any]:
        if stage.kind == "enumerate":
            counter = itertools.count(stage.size)
            return lambda item: (next(counter), item)
        fn = stage.fn
        assert fn is not None
        if stage.policy is not None:
            policy_call = stage.policy.call
            return lambda item: policy_call(fn, item)
        # The stage's own limiter: its threads or processes never queue behind
        # other users of Trio's (or trio-parallel's) default one.
        if stage.executor == "thread":
            limiter = trio.CapacityLimiter(stage.workers)
            to_thread = trio.to_thread.run_sync
            return lambda item: to_thread(fn, item, limiter=limiter)
        if stage.executor == "process":
            limiter = trio.CapacityLimiter(stage.workers)
            to_process = _require_trio_parallel().run_sync
            # A worker process can be killed, so cancellation is prompt (as
            # with trine.to_process); a thread can only be waited for.
            return lambda item: to_process(fn, item, limiter=limiter, kill_on_cancel=True)
        return fn

    async def _worker(
        self,
        stage_run: _StageRun,
        inputs: _Buffer,
        call: Callable[[Any], Any],
        reorder: _Reorder | None,
    ) -> None:
        """Take items one by one, call the function, hand each result on at once."""
        kind = stage_run.stage.kind
        output = stage_run.output
        put_nowait = output.put_nowait
        items = inputs.items
        now = trio.lowlevel.current_clock().current_time  # trio.current_time, minus two calls
        record = stage_run.latency.record
        coroutine_type = types.CoroutineType
        isawaitable = inspect.isawaitable
        # Types already seen not to be awaitable: skips inspect.isawaitable's ABC check.
        plain_types: set[type] = set()
        number = 0
        outs: list[Any] | None = None  # an ordered stage's results of the current item
        # `started` is when the current item's work began: the end of the
        # previous item's, unless the worker waited in between.
        started = now()
        try:
            while True:
                if not items:
                    if not await inputs.wait_item():
                        return
                    started = now()  # the wait is not the next item's work
                if reorder is not None:
                    if reorder.is_full():
                        await reorder.window_moved.park()
                        started = now()
                        continue
                    number = reorder.taken
                    reorder.taken += 1
                    outs = []
                item = inputs.take()
                stage_run.items_in += 1
                keep = True
                try:
                    result = call(item)
                    result_type = type(result)
                    if result_type is coroutine_type:
                        step = result
                    elif result_type in plain_types:
                        step = None
                    elif isawaitable(result):
                        # (a generator-based coroutine is driven as it is)
                        step = result.__await__() if hasattr(result, "__await__") else result
                    else:
                        step = None
                        if len(plain_types) < 64:
                            plain_types.add(result_type)
                    if step is not None:
                        try:
                            yielded = step.send(None)
                        except StopIteration as stop:
                            result = stop.value
                        else:
                            # About to block: let an idle sibling take what waits.
                            inputs.pass_on()
                            stage_run.busy += 1
                            try:
                                result = await _resume(step, yielded)
                            finally:
                                stage_run.busy -= 1
                    if kind == "flat_map":
                        keep = False  # _expand hands the items on itself
                        await self._expand(stage_run, inputs, result, reorder, number, outs)
                    elif kind == "filter":
                        keep = bool(result)
                        result = item
                    elif kind == "tap":
                        result = item
                except Exception as exc:
                    record(now() - started)
                    if not await self._failed(stage_run, item, exc, inputs):
                        return
                    keep = False
                    started = now()
                else:
                    finished = now()
                    record(finished - started)
                    started = finished
                if reorder is not None:
                    assert outs is not None
                    if keep:
                        outs.append(result)
                    await self._emit_in_order(stage_run, reorder, inputs, number, outs)
                    started = now()
                elif keep:  # stage_run.deliver, inlined: this is the hot path
                    if not put_nowait(result):
                        inputs.pass_on()
                        await output.put(result)
                        started = now()
                    stage_run.items_out += 1
        finally:
            output.close_producer()

    @staticmethod
    async def _expand(
        stage_run: _StageRun,
        inputs: _Buffer,
        produced: object,
        reorder: _Reorder | None,
        number: int,
        outs: list[Any] | None,
    ) -> None:
        """Hand on each item of a ``flat_map`` result as it comes.

        In an ordered stage, the outputs of item *number* wait in *outs* until
        its turn (at most ``buffer`` of them; then iterating waits for the
        turn). The emitter that makes it the oldest hands those on, and from
        then on its outputs stream.
        """
        keep_at_most = stage_run.stage.buffer

        async def hand_on(item: Any) -> None:
            if reorder is not None:
                assert outs is not None
                while number != reorder.emitted or reorder.emitting:
                    if len(outs) < keep_at_most:
                        outs.append(item)
                        return
                    inputs.pass_on()
                    await reorder.window_moved.park()
                # Our turn: the emitter that made us oldest handed on what we kept.
                assert not outs
            await stage_run.deliver(item, inputs)

        if reorder is not None:
            assert outs is not None
            reorder.expanding[number] = outs
        try:
            if isinstance(produced, AsyncIterable):
                inputs.pass_on()  # iterating may block
                stage_run.busy += 1
                try:
                    async for item in produced:
                        await hand_on(item)
                finally:
                    stage_run.busy -= 1
            else:
                for item in produced:  # type: ignore[attr-defined]  # a TypeError is the item's failure
                    await hand_on(item)
        finally:
            if reorder is not None:
                del reorder.expanding[number]
            # Finalized here, in the worker, not later by the garbage collector.
            if inspect.isasyncgen(produced):
                await produced.aclose()
            elif inspect.isgenerator(produced):
                produced.close()

    @staticmethod
    async def _emit_in_order(
        stage_run: _StageRun, reorder: _Reorder, inputs: _Buffer, number: int, outs: list[Any]
    ) -> None:
        """File item *number*'s results; hand on every result whose turn has come.

        That includes what the oldest item kept while it is still being
        iterated (an ordered ``flat_map``): from then on it streams by itself.
        """
        reorder.pending[number] = outs
        if reorder.emitting:
            return  # the worker already emitting will hand ours on
        reorder.emitting = True
        pending = reorder.pending
        try:
            while True:
                while reorder.emitted in pending:
                    ready = pending.pop(reorder.emitted)
                    reorder.emitted += 1
                    if reorder.window_moved:
                        reorder.window_moved.unpark_all()
                    for result in ready:
                        await stage_run.deliver(result, inputs)
                # The item now oldest may still be running: what it kept goes
                # now, one at a time, as it may keep more (or finish) meanwhile.
                kept = reorder.expanding.get(reorder.emitted)
                if not kept:
                    break
                await stage_run.deliver(kept.pop(0), inputs)
        finally:
            reorder.emitting = False
            if reorder.window_moved:
                reorder.window_moved.unpark_all()  # an ordered flat_map may wait for this

    async def _dispatch_by_key(self, stage_run: _StageRun) -> None:
        """Route each item to the queue of the worker its key belongs to."""
        key = stage_run.stage.key
        assert key is not None
        shared, *queues = stage_run.inputs
        count = len(queues)
        try:
            while (item := await shared.get()) is not _END:
                try:
                    value = key(item)
                    if inspect.isawaitable(value):
                        close_unawaited(value)
                        raise TypeError(f"key must return a hashable value, got {value!r}")
                    queue = queues[hash(value) % count]
                except Exception as exc:
                    stage_run.items_in += 1
                    if not await self._failed(
                        stage_run, item, exc, shared, "the key function of stage"
                    ):
                        return
                    continue
                await queue.put(item)  # a full queue holds up every key: head-of-line
        finally:
            for queue in queues:
                queue.close_producer()

    @staticmethod
    async def _distribute(stage_run: _StageRun) -> None:
        """Hand every item to every branch, in turn: the slowest branch sets the pace."""
        inputs = stage_run.inputs[0]
        entries = stage_run.branch_entries
        now = trio.lowlevel.current_clock().current_time
        record = stage_run.latency.record
        try:
            while (item := await inputs.get()) is not _END:
                stage_run.items_in += 1
                started = now()
                for entry in entries:
                    await entry.put(item)
                    stage_run.items_out += 1
                record(now() - started)
        finally:
            for entry in entries:
                entry.close_producer()

    @staticmethod
    async def _batch_worker(stage_run: _StageRun) -> None:
        stage = stage_run.stage
        size = stage.size
        timeout = math.inf if stage.timeout is None else stage.timeout
        inputs = stage_run.inputs[0]
        items = inputs.items
        output = stage_run.output
        now = trio.lowlevel.current_clock().current_time
        record = stage_run.latency.record
        batch: list[Any] = []
        first_at = 0.0

        async def hand_on() -> None:
            nonlocal batch
            ready, batch = batch, []
            await output.put(ready)
            stage_run.items_out += 1
            record(now() - first_at)

        try:
            while True:
                if not items:
                    if not batch:
                        more = await inputs.wait_item()
                    else:
                        with trio.move_on_at(first_at + timeout) as waiting:
                            more = await inputs.wait_item()
                        if waiting.cancelled_caught:  # a partial batch's time is up
                            await hand_on()
                            continue
                    if not more:
                        break
                item = inputs.take()
                stage_run.items_in += 1
                if not batch:
                    first_at = now()
                batch.append(item)
                if len(batch) >= size:
                    await hand_on()
            if batch:
                await hand_on()
        finally:
            output.close_producer()

    @staticmethod
    async def _rate_worker(stage_run: _StageRun) -> None:
        assert stage_run.stage.rate is not None
        rate, per, burst = stage_run.stage.rate
        limiter = RateLimiter(rate, per, burst=burst)
        inputs = stage_run.inputs[0]
        output = stage_run.output
        now = trio.lowlevel.current_clock().current_time
        record = stage_run.latency.record
        try:
            while (item := await inputs.get()) is not _END:
                stage_run.items_in += 1
                taken_at = now()
                if not limiter.try_acquire():
                    await limiter.acquire()
                await output.put(item)
                stage_run.items_out += 1
                record(now() - taken_at)
        finally:
            output.close_producer()
