"""Pipelines: stages of workers joined by bounded buffers, as nested nurseries.

A :class:`Pipeline` is an immutable *description*: a source and a chain of
stages. :meth:`Pipeline.open` runs it in one nursery, with one child nursery
per stage holding that stage's workers, so a Trio task tree reads
pipeline → stage → workers.

Why not memory channels between stages? In Trio every ``send``/``receive``
is a trip through the scheduler (about 8 µs here) whatever the user's function
costs. Stages here are joined by :class:`_ItemBuffer`, a bounded deque of
items with parking-lot wake-ups: a stage that finds several items ready takes
them *all* at once and hands its results downstream together (opportunistic
chunking). Nothing ever waits for a chunk to fill, so no latency is added, and
every bound is still counted in items. Everything a user can see (functions,
``on_error``, statistics, order) stays per item.

A worker runs the user's function on the items of its chunk one after the
other. It starts each call by hand (``coroutine.send(None)``): if the call
finishes without blocking, the next item follows at once; if it is about to
block, the worker first gives the rest of its chunk back to the buffer (so an
idle sibling worker picks it up at the same instant) and then lets the call
block as an ordinary ``await`` would. A stage of many workers therefore
behaves exactly like workers taking one item at a time, while a stage whose
function never blocks moves whole chunks per scheduler trip.
"""

from __future__ import annotations

import inspect
import itertools
import math
import reprlib
import types
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
)
from contextlib import asynccontextmanager
from typing import Any, Generic, Literal, TypeVar, final, overload

import attrs
import trio

from ._errors import StageError
from ._policy import SupportsCall, _check_call_guard
from ._rate import RateLimiter
from ._stats import LatencyHistogram, LatencySummary
from ._util import check_async_callable, check_choice, check_int, check_number

__all__ = [
    "Pipeline",
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


@final
class _ItemBuffer:
    """A bounded FIFO of items between two stages, moved in chunks.

    Occupancy is the items waiting *plus* the items a consumer took for a
    chunk it is still running without blocking (``_reserved``); a consumer
    releases them with :meth:`commit` or returns the unprocessed ones with
    :meth:`give_back`. So ``len(items) + reserved <= capacity`` always holds.
    """

    __slots__ = (
        "_getters",
        "_items",
        "_producers",
        "_putters",
        "_reserved",
        "capacity",
        "peak",
        "taken",
    )

    def __init__(self, capacity: int, producers: int) -> None:
        self.capacity = capacity
        self._items: deque[Any] = deque()
        self._reserved = 0
        self._producers = producers
        self._getters = trio.lowlevel.ParkingLot()
        self._putters = trio.lowlevel.ParkingLot()
        self.peak = 0
        """The largest occupancy ever seen (tests check it never exceeds capacity)."""
        self.taken = 0
        """How many items consumers have taken for good (sequence numbers of ordered stages)."""

    @property
    def used(self) -> int:
        return len(self._items) + self._reserved

    def space(self) -> int:
        return self.capacity - len(self._items) - self._reserved

    def _note_peak(self) -> None:
        used = len(self._items) + self._reserved
        if used > self.peak:
            self.peak = used

    # producer side
    async def wait_space(self) -> int:
        """Wait until at least one item fits; return how many fit. A checkpoint."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.capacity - len(self._items) - self._reserved > 0:
            await trio.lowlevel.cancel_shielded_checkpoint()
        # Measured after the last wait: another producer may have run meanwhile.
        while (space := self.capacity - len(self._items) - self._reserved) <= 0:
            await self._putters.park()
        return space

    def put_nowait(self, items: list[Any]) -> None:
        """Append *items*, which the caller knows fit."""
        self._items.extend(items)
        self._note_peak()
        if self._getters:
            # One consumer takes everything there is; waking them all would
            # only send the others through the scheduler to find it empty.
            self._getters.unpark()

    def put_some_nowait(self, items: list[Any]) -> list[Any]:
        """Append what fits of *items*; return the rest."""
        space = self.capacity - len(self._items) - self._reserved
        if space <= 0:
            return items
        if space >= len(items):
            self.put_nowait(items)
            return []
        self.put_nowait(items[:space])
        return items[space:]

    async def put_many(self, items: list[Any]) -> None:
        """Append *items*, waiting for room as often as needed.

        Checks for cancellation but only yields when it has to wait: the
        worker loops that call it yield once per chunk in :meth:`get_many`.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            items = self.put_some_nowait(items)
            if not items:
                return
            await self._putters.park()

    def close_producer(self) -> None:
        self._producers -= 1
        if self._producers == 0:
            self._getters.unpark_all()

    # consumer side
    async def get_many(self, limit: int | None = None) -> list[Any]:
        """Take every waiting item (at most *limit*); ``[]`` once closed and empty.

        The items stay counted against the capacity until :meth:`commit` or
        :meth:`give_back`. Always a checkpoint.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        parked = False
        while not self._items:
            if self._producers <= 0:
                if not parked:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return []
            await self._getters.park()
            parked = True
        if not parked:
            await trio.lowlevel.cancel_shielded_checkpoint()
            if not self._items:  # a sibling took them while we yielded
                return await self.get_many(limit)
        items = self._items
        if limit is None or len(items) <= limit:
            chunk = list(items)
            items.clear()
        else:
            chunk = [items.popleft() for _ in range(limit)]
            if self._getters:  # what we leave is for the next consumer
                self._getters.unpark()
        self._reserved += len(chunk)
        self.taken += len(chunk)
        return chunk

    def commit(self, count: int) -> None:
        """Release *count* taken items from the capacity."""
        self._reserved -= count
        if self._putters:
            self._putters.unpark_all()

    def give_back(self, items: list[Any], taken: int) -> None:
        """Release *taken* items and put the unprocessed *items* back in front."""
        self._reserved -= taken
        if items:
            self._items.extendleft(reversed(items))
            self.taken -= len(items)
            if self._getters:
                self._getters.unpark()
        if self._putters:
            self._putters.unpark_all()


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
        except BaseException as exc:
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


def _stage_producers(stage: _Stage) -> int:
    """How many tasks write a stage's output (each closes it once when done)."""
    if stage.kind == "broadcast":
        return sum(_stage_producers(branch[-1]) if branch else 1 for branch in stage.branches)
    return stage.workers


def _source_producers(source: _SourceState) -> int:
    if source.kind != "merge":
        return 1
    pipelines: tuple[Pipeline[Any], ...] = source.items  # type: ignore[assignment]  # see merge()
    return sum(_chain_producers(pipeline._source_state, pipeline._stages) for pipeline in pipelines)


def _chain_producers(source: _SourceState, stages: tuple[_Stage, ...]) -> int:
    return _stage_producers(stages[-1]) if stages else _source_producers(source)


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

    Every stage has its own workers (``workers=``) and a bounded input buffer
    (``buffer=``, by default one item per worker). Items move between stages
    in chunks whenever several are ready, which is what makes a pipeline
    several times faster than memory channels, but every function is still
    called once per item and every bound is counted in items.

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
            generator only once), an async iterable, a
            :class:`trio.abc.ReceiveChannel` (read until closed), or an async
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
        buffer = workers if buffer is None else check_int("buffer", buffer)
        if not isinstance(on_error, str):
            on_error = check_async_callable("on_error", on_error)
        else:
            check_choice("on_error", on_error, _ON_ERROR_CHOICES)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        if policy is not None:
            _check_call_guard("policy", policy)
        if key is not None:
            key = check_async_callable("key", key)
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
            name=name if isinstance(name, str) else self._default_name(kind, fn),
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
        """Replace each item by ``fn(item)`` (awaited if *fn* is async).

        Args:
          fn: a function of one item; async or plain.
          workers: how many items are processed at once (``>= 1``).
          ordered: with several workers, emit results in input order (a
            reorder window of ``workers + buffer`` items bounds the memory).
          buffer: how many items may wait for this stage (default: *workers*).
          key: with several workers, items with equal ``key(item)`` always
            go to the same worker, so their order is kept.
          on_error: ``"raise"`` (the pipeline fails with :exc:`StageError`),
            ``"skip"`` (the item is dropped and counted), or a dead-letter
            function ``hook(item, exc)``, plain or async, that receives it.
          name: the stage's name in statistics and errors.
          policy: an object with ``async call(fn, *args)`` (a
            :class:`trine.Policy`) that each call goes through; *fn* must be async.
          executor: ``"thread"`` runs a plain *fn* in :func:`trio.to_thread.run_sync`,
            ``"process"`` in a worker process (``trio-parallel``), at most
            *workers* at once.

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
        function will do), or is async and returns an iterable. A failure
        while iterating counts as the input item's failure; what was already
        produced for it has been delivered. Other arguments as for :meth:`map`.
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
        on_error: OnError = "raise",
        name: str | None = None,
    ) -> Pipeline[T_co]:
        """Call ``fn(item)`` (awaited if async) for its side effect; pass the item on."""
        return self._then(
            self._build(
                "tap",
                fn,
                workers=1,
                ordered=False,
                buffer=None,
                on_error=on_error,
                name=name,
                policy=None,
            )
        )

    def enumerate(self, *, start: int = 0, name: str | None = None) -> Pipeline[tuple[int, T_co]]:
        """Replace each item by ``(index, item)``, counting from *start*."""
        if isinstance(start, bool) or not isinstance(start, int):
            raise TypeError(f"start must be an int, got {start!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        return self._then(
            _Stage(
                kind="enumerate",
                name=name or self._default_name("enumerate", None),
                size=start,
            )
        )

    def batch(
        self, size: int, timeout: float | None = None, *, name: str | None = None
    ) -> Pipeline[list[T_co]]:
        """Group items into lists of *size*.

        A list is emitted when it is full, or when *timeout* seconds have
        passed since its first item arrived (if *timeout* is given), or when
        the input ends (the last list may be short; an empty list is never emitted).

        Raises:
          TypeError, ValueError: if *size* is not an int ``>= 1`` or
            *timeout* not a number ``> 0``.
        """
        size = check_int("size", size)
        if timeout is not None:
            timeout = check_number("timeout", timeout, exclusive=True, allow_inf=True)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        return self._then(
            _Stage(
                kind="batch",
                name=name or self._default_name("batch", None),
                size=size,
                timeout=timeout,
                buffer=size,
            )
        )

    def rate_limit(
        self, rate: float, per: float = 1.0, *, burst: int = 1, name: str | None = None
    ) -> Pipeline[T_co]:
        """Let at most *rate* items through per *per* seconds, evenly spaced.

        Items are delayed, never dropped. Each run of the pipeline paces its
        items with its own :class:`~trine.RateLimiter` ``(rate, per, burst=burst)``,
        so the guarantee is the rate limiter's: in any interval of length *t*
        at most ``burst + rate * t / per`` items leave; with ``burst=1`` the
        *n*-th item after a pause leaves ``n * per / rate`` seconds after the first.

        Raises:
          TypeError, ValueError: if *rate*, *per* or *burst* is not valid for
            :class:`~trine.RateLimiter`.
        """
        # Built once here so that bad arguments fail at build time, with
        # RateLimiter's own messages; each run gets a fresh one.
        RateLimiter(rate, per, burst=burst)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        return self._then(
            _Stage(
                kind="rate_limit",
                name=name or self._default_name("rate_limit", None),
                rate=(rate, per, burst),
            )
        )

    def broadcast(
        self, *branches: Callable[[Pipeline[T_co]], Pipeline[U]], name: str | None = None
    ) -> Pipeline[U]:
        """Send every item to every branch; emit what all the branches emit.

        Each branch is a function that adds stages to the pipeline it is given
        (``lambda p: p.map(store)``); it runs in the broadcast stage's nursery.
        The outputs of the branches are interleaved as they arrive.

        .. note::
           Backpressure comes from the *slowest* branch: an item goes to the
           next branch only when the previous one had room for it, so a fast
           branch waits for a slow one once the slow branch's buffer is full.

        Raises:
          TypeError: if a branch is not callable or does not return a pipeline
            built on the one it was given.
          ValueError: if no branch is given.
        """
        if not branches:
            raise ValueError("broadcast needs at least one branch")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        stage_name = name or self._default_name("broadcast", None)
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
            _Stage(kind="broadcast", name=stage_name, buffer=1, branches=tuple(built))
        )

    # -- running ----------------------------------------------------------

    def _claim_sources(self) -> None:
        state = self._source_state
        if state.kind == "branch":
            raise RuntimeError("a broadcast branch cannot be run on its own")
        if state.kind == "merge":
            for pipeline in state.items:  # type: ignore[attr-defined]  # a tuple of Pipelines
                pipeline._claim_sources()
        elif state.kind in ("iterator", "async_iterator", "channel"):
            if state.used:
                raise RuntimeError(
                    f"this pipeline's source is a one-shot {state.kind.replace('_', ' ')} "
                    "that an earlier run already consumed; to run a pipeline again, "
                    "build it on a list or an async generator function"
                )
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
        try:
            async with trio.open_nursery() as nursery:
                run.start(nursery)
                try:
                    yield run.output
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # Workers never raise (a failure is recorded and cancels the run),
            # so the group holds the block's own exception: give it back bare.
            if len(group.exceptions) == 1 and run.failure is None:
                raise group.exceptions[0] from None
            raise
        finally:
            run.finished = True
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
    return Pipeline(_SourceState(tuple(pipelines), "merge"), ())


def _require_trio_parallel() -> Any:
    try:
        import trio_parallel  # type: ignore[import-untyped]  # no type hints upstream
    except ImportError as exc:
        raise ImportError(
            'executor="process" needs trio-parallel: pip install "trine[process]"'
        ) from exc
    return trio_parallel


# --------------------------------------------------------------------------- statistics


@attrs.frozen
class StageStatistics:
    """One stage of a running (or finished) pipeline, as :meth:`Pipeline.statistics` reports it."""

    name: str
    """The stage's name (``name=``, or its position and function name)."""
    kind: str
    """``"map"``, ``"filter"``, ``"flat_map"``, ``"tap"``, ``"batch"``, ``"enumerate"``
    or ``"rate_limit"``."""
    workers: int
    """How many workers the stage has."""
    items_in: int
    """Items the stage has started to process."""
    items_out: int
    """Items the stage has handed downstream."""
    failed: int
    """Items whose function raised (whatever ``on_error`` then did)."""
    skipped: int
    """Failed items dropped by ``on_error="skip"``."""
    dead_lettered: int
    """Failed items handed to an ``on_error`` function."""
    busy_workers: int
    """Workers processing an item right now."""
    buffer_used: int
    """Items counted against the stage's input buffer now."""
    buffer_size: int
    """The bound of the stage's input buffer."""
    latency: LatencySummary
    """How long the stage's function took per item (``batch``, ``rate_limit`` and
    ``broadcast`` stages call no function and record none)."""


@attrs.frozen
class PipelineStatistics:
    """A snapshot of a pipeline run, as :meth:`Pipeline.statistics` returns it."""

    stages: tuple[StageStatistics, ...]
    """One entry per stage, in order."""
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
    :class:`trio.abc.ReceiveChannel` does.
    """

    __slots__ = ("_buffer", "_chunk", "_index", "_run")

    def __init__(self, run: _Run, buffer: _ItemBuffer) -> None:
        self._run = run
        self._buffer = buffer
        self._chunk: list[Any] = []
        self._index = 0

    def __aiter__(self) -> PipelineOutput[T_co]:
        return self

    async def __anext__(self) -> T_co:
        if self._index < len(self._chunk):
            await trio.lowlevel.checkpoint_if_cancelled()
            item = self._chunk[self._index]
            self._index += 1
            return item  # type: ignore[no-any-return]  # buffers hold Any
        chunk = await self._buffer.get_many()
        if not chunk:
            raise StopAsyncIteration
        self._buffer.commit(len(chunk))
        self._chunk = chunk
        self._index = 1
        return chunk[0]  # type: ignore[no-any-return]  # buffers hold Any

    async def receive(self) -> T_co:
        """The next result.

        Raises:
          trio.EndOfChannel: when the pipeline has delivered everything.
        """
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise trio.EndOfChannel from None

    async def _drain(self, sink: Callable[[list[Any]], object] | None) -> None:
        if self._index < len(self._chunk):
            if sink is not None:
                sink(self._chunk[self._index :])
            self._chunk = []
        while chunk := await self._buffer.get_many():
            self._buffer.commit(len(chunk))
            if sink is not None:
                sink(chunk)

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

    def __init__(self, stage: _Stage, inputs: list[_ItemBuffer], output: Any) -> None:
        self.stage = stage
        self.branch_entries: list[_ItemBuffer] = []
        self.branch_runs: list[list[_StageRun]] = []
        self.inputs = inputs
        self.output = output
        self.items_in = 0
        self.items_out = 0
        self.failed = 0
        self.skipped = 0
        self.dead_lettered = 0
        self.busy = 0
        self.latency = LatencyHistogram()

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
            buffer_used=sum(buffer.used for buffer in self.inputs),
            buffer_size=sum(buffer.capacity for buffer in self.inputs),
            latency=self.latency.summary(),
        )


@final
class _KeyedRouter:
    """The producer side of a keyed stage: routes each item to its worker's buffer."""

    __slots__ = ("_buffers", "_key")

    def __init__(self, buffers: list[_ItemBuffer], key: Callable[[Any], Any]) -> None:
        self._buffers = buffers
        self._key = key

    async def put_many(self, items: list[Any]) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        buffers = self._buffers
        count = len(buffers)
        for item in items:
            buffer = buffers[hash(self._key(item)) % count]
            while buffer.space() <= 0:
                await buffer._putters.park()
            buffer.put_nowait([item])

    def put_some_nowait(self, items: list[Any]) -> list[Any]:
        buffers = self._buffers
        count = len(buffers)
        for index, item in enumerate(items):
            buffer = buffers[hash(self._key(item)) % count]
            if buffer.space() <= 0:
                return items[index:]
            buffer.put_nowait([item])
        return []

    def close_producer(self) -> None:
        for buffer in self._buffers:
            buffer.close_producer()


class _Reorder:
    """Emits an ordered stage's results in input order (a bounded window)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.pending: dict[int, list[Any]] = {}
        self.next = 0
        self.emitting = False
        self.lot = trio.lowlevel.ParkingLot()


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
        self.sources: list[tuple[_SourceState, _ItemBuffer]] = []
        self.output_buffer = _ItemBuffer(output_buffer, _chain_producers(source, stages))
        self.output = PipelineOutput[Any](self, self.output_buffer)
        self._wire_pipeline(source, stages, self.output_buffer)

    def _wire_pipeline(
        self, source: _SourceState, stages: tuple[_Stage, ...], downstream: _ItemBuffer
    ) -> None:
        entry = self._wire_chain(stages, downstream, _source_producers(source), self.top_level)
        if source.kind == "merge":
            for pipeline in source.items:  # type: ignore[attr-defined]  # a tuple of Pipelines
                self._wire_pipeline(pipeline._source_state, pipeline._stages, entry)
        else:
            self.sources.append((source, entry))

    def _wire_chain(
        self,
        stages: tuple[_Stage, ...],
        downstream: _ItemBuffer,
        first_producers: int,
        into: list[_StageRun],
    ) -> _ItemBuffer:
        """Build *stages*' buffers back to front; return the buffer the chain reads first."""
        chain: list[_StageRun] = []
        for index in range(len(stages) - 1, -1, -1):
            stage = stages[index]
            producers = _stage_producers(stages[index - 1]) if index > 0 else first_producers
            shared = _ItemBuffer(stage.buffer, producers)
            stage_run = _StageRun(stage, [shared], downstream)
            if stage.key is not None and stage.workers > 1:
                # A dispatcher task moves items from the shared buffer to
                # one buffer per worker, chosen by the item's key.
                stage_run.inputs += [_ItemBuffer(stage.buffer, 1) for _ in range(stage.workers)]
            chain.append(stage_run)
            downstream = shared
        chain.reverse()
        for stage_run in chain:
            self.stage_runs.append(stage_run)
            into.append(stage_run)
            for branch in stage_run.stage.branches:
                # Each branch reads what the broadcast's distributor hands it
                # and writes into the broadcast's own downstream.
                branch_runs: list[_StageRun] = []
                stage_run.branch_entries.append(
                    self._wire_chain(branch, stage_run.output, 1, branch_runs)
                )
                stage_run.branch_runs.append(branch_runs)
        return downstream

    def statistics(self) -> PipelineStatistics:
        return PipelineStatistics(
            stages=tuple(stage_run.statistics() for stage_run in self.stage_runs),
            running=self.cancel_scope is not None and not self.finished,
            output_buffer_used=self.output_buffer.used,
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
        assert self.cancel_scope is not None
        self.cancel_scope.cancel()

    # -- source -----------------------------------------------------------

    async def _read_source(self, source: _SourceState, output: _ItemBuffer) -> None:
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
    async def _read_iterable(iterator: Iterable[Any], output: Any) -> None:
        islice = itertools.islice
        while True:
            space = await output.wait_space()
            chunk = list(islice(iterator, space))
            if chunk:
                output.put_nowait(chunk)
            if len(chunk) < space:
                return

    @staticmethod
    async def _read_channel(channel: trio.abc.ReceiveChannel[Any], output: Any) -> None:
        # After a blocking receive another source (merge) may have filled the
        # buffer, so every put that follows a wait goes through put_many.
        while True:
            space = await output.wait_space()
            chunk: list[Any] = []
            try:
                while len(chunk) < space:
                    try:
                        chunk.append(channel.receive_nowait())  # type: ignore[attr-defined]  # memory channels have it
                    except (trio.WouldBlock, AttributeError):
                        if not chunk:
                            chunk.append(await channel.receive())
                        break
            except (trio.EndOfChannel, trio.ClosedResourceError):
                if chunk:
                    await output.put_many(chunk)
                return
            await output.put_many(chunk)

    @staticmethod
    async def _read_async(iterator: AsyncIterator[Any], output: Any) -> None:
        while True:
            space = await output.wait_space()
            chunk: list[Any] = []
            while len(chunk) < space:
                step = iterator.__anext__().__await__()
                try:
                    yielded = step.send(None)
                except StopIteration as stop:
                    chunk.append(stop.value)
                    continue
                except StopAsyncIteration:
                    if chunk:
                        output.put_nowait(chunk)  # nothing blocked since wait_space: it fits
                    return
                # The next item is not ready: hand over what we have first
                # (it fits: nothing has blocked since wait_space).
                if chunk:
                    output.put_nowait(chunk)
                    chunk = []
                try:
                    chunk.append(await _resume(step, yielded))
                except StopAsyncIteration:
                    return
                break  # we blocked: the room counted before may be gone (merge)
            await output.put_many(chunk)

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
    async def _distribute(stage_run: _StageRun) -> None:
        """Hand every item to every branch, in turn: the slowest branch sets the pace."""
        inputs = stage_run.inputs[0]
        entries = stage_run.branch_entries
        try:
            while chunk := await inputs.get_many():
                stage_run.items_in += len(chunk)
                for entry in entries:
                    await entry.put_many(chunk)
                    stage_run.items_out += len(chunk)
                inputs.commit(len(chunk))
        finally:
            for entry in entries:
                entry.close_producer()

    async def _dispatch_by_key(self, stage_run: _StageRun) -> None:
        stage = stage_run.stage
        assert stage.key is not None
        shared, *buffers = stage_run.inputs
        router = _KeyedRouter(buffers, stage.key)
        try:
            while chunk := await shared.get_many():
                try:
                    await router.put_many(chunk)
                except Exception as exc:
                    self.fail(
                        StageError(
                            f"the key function of stage {stage.name!r} failed: "
                            f"{type(exc).__name__}: {exc}",
                            stage=stage.name,
                            item=None,
                        ),
                        exc,
                    )
                    return
                shared.commit(len(chunk))
        finally:
            router.close_producer()

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
        if stage.executor == "thread":
            limiter = trio.CapacityLimiter(stage.workers)
            run_sync = trio.to_thread.run_sync
            return lambda item: run_sync(fn, item, limiter=limiter)
        if stage.executor == "process":
            trio_parallel = _require_trio_parallel()
            limiter = trio.CapacityLimiter(stage.workers)
            return lambda item: trio_parallel.run_sync(fn, item, limiter=limiter)
        return fn

    async def _worker(
        self,
        stage_run: _StageRun,
        inputs: _ItemBuffer,
        call: Callable[[Any], Any],
        reorder: _Reorder | None,
    ) -> None:
        stage = stage_run.stage
        kind = stage.kind
        output = stage_run.output
        on_error = stage.on_error
        latency = stage_run.latency
        now = trio.lowlevel.current_clock().current_time  # trio.current_time, minus two calls
        record = latency.record
        coroutine_type = types.CoroutineType
        isawaitable = inspect.isawaitable
        # Types already seen not to be awaitable: skips inspect.isawaitable's ABC check.
        plain_types: set[type] = set()
        emits_result = kind in ("map", "enumerate")
        try:
            while True:
                limit = None
                if reorder is not None:
                    while (limit := reorder.next + reorder.window - inputs.taken) <= 0:
                        await reorder.lot.park()
                chunk = await inputs.get_many(limit)
                if not chunk:
                    return
                taken = len(chunk)
                first_sequence = inputs.taken - taken
                count = taken
                out: list[Any] = []
                stage_run.busy += 1
                try:
                    started = now()
                    index = 0
                    while index < count:
                        item = chunk[index]
                        index += 1
                        stage_run.items_in += 1
                        results_before = len(out)
                        try:
                            result = call(item)
                            result_type = type(result)
                            if result_type is coroutine_type or (
                                result_type not in plain_types and isawaitable(result)
                            ):
                                step = (
                                    result if result_type is coroutine_type else result.__await__()
                                )
                                try:
                                    yielded = step.send(None)
                                except StopIteration as stop:
                                    result = stop.value
                                else:
                                    # About to block: return the rest of the chunk
                                    # (an idle sibling takes it now) and hand over
                                    # what is done, as far as it fits.
                                    if index < count:
                                        inputs.give_back(chunk[index:], taken)
                                        taken = count = index
                                    if out and reorder is None:
                                        remaining = output.put_some_nowait(out)
                                        stage_run.items_out += len(out) - len(remaining)
                                        out = remaining
                                        results_before = len(out)
                                    result = await _resume(step, yielded)
                            elif len(plain_types) < 64:
                                plain_types.add(result_type)
                            if emits_result:
                                out.append(result)
                            elif kind == "filter":
                                if result:
                                    out.append(item)
                            elif kind == "tap":
                                out.append(item)
                            else:  # flat_map
                                if isinstance(result, AsyncIterable):
                                    # Iterating may block: return the rest of the chunk first.
                                    if index < count:
                                        inputs.give_back(chunk[index:], taken)
                                        taken = count = index
                                    async for produced in result:
                                        out.append(produced)
                                else:
                                    out.extend(result)
                        except Exception as exc:
                            stage_run.failed += 1
                            if on_error == "skip":
                                stage_run.skipped += 1
                            elif on_error == "raise":
                                error = StageError(
                                    f"stage {stage.name!r} failed on item {reprlib.repr(item)}: "
                                    f"{type(exc).__name__}: {exc}",
                                    stage=stage.name,
                                    item=item,
                                )
                                self.fail(error, exc)
                                return
                            else:
                                stage_run.dead_lettered += 1
                                try:
                                    hook_result = on_error(item, exc)
                                    if isawaitable(hook_result):
                                        if index < count:
                                            inputs.give_back(chunk[index:], taken)
                                            taken = count = index
                                        await hook_result
                                except Exception as hook_exc:
                                    error = StageError(
                                        f"the on_error hook of stage {stage.name!r} failed on item "
                                        f"{reprlib.repr(item)}: "
                                        f"{type(hook_exc).__name__}: {hook_exc}",
                                        stage=stage.name,
                                        item=item,
                                    )
                                    self.fail(error, hook_exc)
                                    return
                            del out[results_before:]
                        finished = now()
                        record(finished - started)
                        started = finished
                        if reorder is not None:
                            reorder.pending[first_sequence + index - 1] = out
                            out = []
                    inputs.commit(taken)
                finally:
                    stage_run.busy -= 1
                if reorder is not None:
                    await self._emit_in_order(stage_run, reorder)
                elif out:
                    await output.put_many(out)
                    stage_run.items_out += len(out)
        finally:
            output.close_producer()

    @staticmethod
    async def _emit_in_order(stage_run: _StageRun, reorder: _Reorder) -> None:
        if reorder.emitting:
            return  # the worker already emitting will pick ours up
        reorder.emitting = True
        try:
            pending = reorder.pending
            while reorder.next in pending:
                ready: list[Any] = []
                while reorder.next in pending:
                    ready.extend(pending.pop(reorder.next))
                    reorder.next += 1
                if reorder.lot:
                    reorder.lot.unpark_all()
                if ready:
                    await stage_run.output.put_many(ready)
                    stage_run.items_out += len(ready)
        finally:
            reorder.emitting = False

    async def _batch_worker(self, stage_run: _StageRun) -> None:
        stage = stage_run.stage
        size = stage.size
        timeout = stage.timeout
        inputs = stage_run.inputs[0]
        output = stage_run.output
        pending: list[Any] = []
        deadline = math.inf
        try:
            while True:
                chunk: list[Any] = []
                with trio.move_on_at(deadline) as waiting:
                    chunk = await inputs.get_many()
                if waiting.cancelled_caught:
                    # The deadline passed with a partial batch. (get_many takes
                    # nothing when it is cancelled, so no item is lost here.)
                    deadline = math.inf
                    ready, pending = [pending], []
                    await output.put_many(ready)
                    stage_run.items_out += 1
                    continue
                if not chunk:
                    break
                inputs.commit(len(chunk))
                stage_run.items_in += len(chunk)
                if not pending and timeout is not None:
                    deadline = trio.current_time() + timeout
                ready = []
                for item in chunk:
                    pending.append(item)
                    if len(pending) == size:
                        ready.append(pending)
                        pending = []
                if ready:
                    if pending and timeout is not None:
                        deadline = trio.current_time() + timeout
                    elif not pending:
                        deadline = math.inf
                    await output.put_many(ready)
                    stage_run.items_out += len(ready)
            if pending:
                await output.put_many([pending])
                stage_run.items_out += 1
        finally:
            output.close_producer()

    async def _rate_worker(self, stage_run: _StageRun) -> None:
        assert stage_run.stage.rate is not None
        rate, per, burst = stage_run.stage.rate
        limiter = RateLimiter(rate, per, burst=burst)
        inputs = stage_run.inputs[0]
        output = stage_run.output
        try:
            while chunk := await inputs.get_many():
                inputs.commit(len(chunk))
                for item in chunk:
                    stage_run.items_in += 1
                    await limiter.acquire()
                    await output.put_many([item])
                    stage_run.items_out += 1
        finally:
            output.close_producer()
