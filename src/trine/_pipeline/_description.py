"""The description of a pipeline: a source and a chain of stages, validated as it is built.

Nothing here runs anything. :class:`Pipeline` only records what the user
asked for, in immutable :class:`Stage` values, after checking every argument
at the call; :meth:`Pipeline.open` hands the description to a :class:`~._run.Run`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from contextlib import asynccontextmanager
from typing import Any, Final, Generic, Literal, TypeVar, final, overload

import attrs
import trio

from .. import _created
from .._policy import SupportsCall, _check_call_guard
from .._rate import RateLimiter
from .._util import (
    check_async_callable,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_sync_callable,
)
from ._call import require_trio_parallel
from ._output import PipelineOutput
from ._run import Run
from ._statistics import PipelineStatistics

__all__ = [
    "DEFAULT_BUFFER",
    "JoinSource",
    "Pipeline",
    "SourceState",
    "Stage",
    "merge",
    "zip",
    "zip_latest",
]

T = TypeVar("T")
U = TypeVar("U")
V = TypeVar("V")
T_co = TypeVar("T_co", covariant=True)

OnError = Literal["raise", "skip"] | Callable[[Any, Exception], Any]
_ON_ERROR_CHOICES: tuple[str, ...] = ("raise", "skip")
_EXECUTORS: tuple[str | None, ...] = (None, "thread", "process")
Overflow = Literal["block", "drop_oldest", "drop_newest"]
_OVERFLOWS: tuple[str, ...] = ("block", "drop_oldest", "drop_newest")

DEFAULT_BUFFER = 64
"""Items that may wait in front of a stage (at least one per worker), and for the caller.

A stage takes every item that waits in one trip through the scheduler, so a
buffer of 64 makes a trip carry up to 64 items: the benchmark's three-stage
pipeline takes about 0.06 scheduler steps per item, against 2 with buffers of
one and 6 with memory channels. 64 items per stage is also small enough to be
no memory concern."""

_COLLECT_BUFFER = 1024
"""collect() and run() keep (or drop) everything they receive, so their last hop
is wide: it only bounds how many results wait for the caller's task."""


@attrs.frozen(eq=False)
class Stage:
    """One stage of a description; every field was checked when the stage was added."""

    kind: str
    name: str
    fn: Callable[..., Any] | None = None
    workers: int = 1
    buffer: int = DEFAULT_BUFFER
    ordered: bool = False
    key: Callable[[Any], Any] | None = None
    on_error: OnError = "raise"
    policy: SupportsCall | None = None
    executor: str | None = None
    size: int = 0
    """``batch``: the most items in a list; ``enumerate``: the first index."""
    timeout: float | None = None
    rate: tuple[float, float, int | None] | None = None
    """``rate_limit``: rate, per, burst (``None``: the rate limiter's default)."""
    branches: tuple[tuple[Stage, ...], ...] = ()
    overflow: str = "block"
    """What a write to the stage's full buffer does: ``"block"``, ``"drop_oldest"`` or
    ``"drop_newest"``."""
    on_drop: Callable[[Any], object] | None = None
    per_key: int = 1
    """``key=``: how many items of one key may be in their call at once."""

    @property
    def dispatches(self) -> bool:
        """Whether a dispatcher sends each key to one worker's queue (``key=``, as before)."""
        return self.key is not None and self.workers > 1 and self.per_key == 1 and not self.ordered


@attrs.define(eq=False)
class SourceState:
    """Shared by every pipeline built on one source, so a one-shot source is refused twice."""

    items: object
    kind: str
    """``"iterable"``, ``"iterator"``, ``"async_iterable"``, ``"async_iterator"``,
    ``"channel"``, ``"function"``, ``"merge"`` (items: the pipelines), ``"zip"`` and
    ``"zip_latest"`` (items: a :class:`JoinSource`) or ``"branch"``."""
    used: bool = False


@attrs.frozen(eq=False)
class JoinSource:
    """The source of a zip or zip_latest: the input pipelines and the options."""

    pipelines: tuple[Pipeline[Any], ...]
    partial: bool = False
    default: Any = None


@attrs.define(eq=False)
class _LatestRun:
    run: Run | None = None


# Why each stage that calls fn for its result refuses a generator function.
_GENERATOR_FN_WHY: Final = {
    "map": "map would hand on the generator itself; flat_map hands on each item it yields",
    "filter": "the generator it returns is always true, so every item would pass",
    "tap": "calling it runs nothing (define it without yield)",
}


def _refuse_generator_function(name: str, fn: object, why: str) -> None:
    """Refuse a generator or async generator function (or object whose ``__call__`` is one).

    Calling one only creates a generator, so the function's body would never
    run: a hook would lose every item it was given, a key would be a new
    object each time.
    """
    call = None if isinstance(fn, type) else type(fn).__call__
    for f in (fn, call):
        if inspect.isasyncgenfunction(f) or (
            inspect.isgeneratorfunction(f) and not _iterable_coroutine(f)
        ):
            raise TypeError(f"{name} must not be a generator function, got {fn!r}: {why}")


def _iterable_coroutine(fn: object) -> bool:
    """Whether *fn* is a generator-based coroutine function (``@types.coroutine``): awaitable."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return code is not None and bool(code.co_flags & inspect.CO_ITERABLE_COROUTINE)


def _source_kind(value: object) -> str:
    """What kind of source *value* is; a TypeError naming ``items`` if it is none."""
    if isinstance(value, trio.abc.ReceiveChannel):
        return "channel"
    if inspect.isasyncgenfunction(value):
        return "function"
    if isinstance(value, AsyncIterable):
        return "async_iterator" if isinstance(value, AsyncIterator) else "async_iterable"
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return "iterator" if iter(value) is value else "iterable"
    if inspect.isawaitable(value):
        check_async_callable("items", value)  # refuses it with the usual message
    what = (
        "items must be an iterable, an async iterable, a trio ReceiveChannel "
        "or an async generator function"
    )
    if callable(value):
        # An object whose __call__ is async is an async function too (a class is not).
        call = None if isinstance(value, type) else type(value).__call__
        if inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(call):
            raise TypeError(
                f"{what}, got the async function {value!r}, which returns one value: "
                "give it a yield to make it an async generator function"
            )
        if inspect.isgeneratorfunction(value):
            raise TypeError(
                f"{what}, got the generator function {value!r}: pass a list, or the "
                "generator it returns to read it once"
            )
        return "function"  # a plain function that returns an async iterator, checked per run
    raise TypeError(f"{what}, got {value!r}")


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
    front of it (``buffer=``, by default 64 items, or one per worker if there
    are more workers), bounded as a memory channel is: at most ``buffer``
    items wait, and each worker holds the one it works on. A worker only
    yields to Trio when it must wait, so items that are ready together move
    between stages in one trip through the scheduler, which is what makes a
    pipeline several times faster than memory channels; every function is
    still called once per item and every result is handed on as soon as it
    exists. Workers start as items need them, never more than ``workers``.

    When the source is exhausted each stage finishes the items it has and
    closes its output, and the next stage follows: every item is delivered
    exactly once, or its failure goes to the stage's ``on_error``. A failure
    under ``on_error="raise"`` (the default) cancels the whole pipeline and is
    raised as one :exc:`StageError`; cancelling the caller cancels every
    stage promptly; no task outlives :meth:`open`.
    """

    _source_state: SourceState
    _stages: tuple[Stage, ...]
    _latest: _LatestRun = attrs.field(factory=_LatestRun)
    _conflate_next: bool = False
    """Set by :meth:`latest`: the next buffer keeps only the newest item."""

    # -- building ---------------------------------------------------------

    def __attrs_post_init__(self) -> None:
        if _created.watchers:
            _created.announce(self, None)

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
            generator function (called afresh by each run; a plain function
            that returns an async iterator will do).

        Raises:
          TypeError: if *items* is none of these: for instance a coroutine
            object, an ``async def`` function without ``yield``, or a
            (synchronous) generator function.
        """
        return Pipeline(SourceState(items, _source_kind(items)), ())

    def _then(self, stage: Stage) -> Pipeline[Any]:
        if self._conflate_next:
            # latest(): the buffer in front of this stage keeps only the newest item.
            stage = attrs.evolve(stage, buffer=1, overflow="drop_oldest")
        return Pipeline(self._source_state, (*self._stages, stage))

    def _name(self, kind: str, fn: object, name: object) -> str:
        """*name* if given (a str), else the stage's position and function name."""
        if name is not None:
            if not isinstance(name, str):
                raise TypeError(f"name must be a str, got {name!r}")
            return name
        base = getattr(fn, "__name__", None) or kind
        if base == "<lambda>":
            base = kind
        return f"{len(self._stages) + 1}:{base}"

    @staticmethod
    def _buffer(buffer: object, default: int) -> int:
        """*buffer* checked (an int ``>= 0``), or *default* for ``None``."""
        return default if buffer is None else check_int("buffer", buffer, minimum=0)

    @staticmethod
    def _overflow(
        overflow: object, on_drop: object, buffer: int
    ) -> tuple[Overflow, Callable[[Any], object] | None]:
        """*overflow* and *on_drop* checked, for a stage whose buffer is *buffer*."""
        if not isinstance(overflow, str):
            raise TypeError(f"overflow must be a str, got {overflow!r}")
        check_choice("overflow", overflow, _OVERFLOWS)
        if overflow != "block" and buffer == 0:
            raise ValueError(
                f"overflow={overflow!r} needs a buffer to drop from (buffer >= 1), got buffer=0"
            )
        if on_drop is not None:
            on_drop = check_sync_callable("on_drop", on_drop)
        return overflow, on_drop  # type: ignore[return-value]  # checked above

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
        overflow: object,
        on_drop: object,
        key: object = None,
        per_key: object = 1,
        executor: object = None,
    ) -> Stage:
        fn = check_async_callable("fn", fn)
        if kind != "flat_map":
            _refuse_generator_function("fn", fn, _GENERATOR_FN_WHY[kind])
        workers = check_int("workers", workers)
        if not isinstance(ordered, bool):
            raise TypeError(f"ordered must be a bool, got {ordered!r}")
        buffer = self._buffer(buffer, max(workers, DEFAULT_BUFFER))
        overflow, on_drop = self._overflow(overflow, on_drop, buffer)
        per_key = check_int("per_key", per_key)
        name = self._name(kind, fn, name)
        if not isinstance(on_error, str):
            on_error = check_async_callable("on_error", on_error)
            _refuse_generator_function(
                "on_error", on_error, "a dead-letter hook is a plain or async function"
            )
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
            _refuse_generator_function(
                "key", key, "its result is hashed to choose a worker: return the key, not yield"
            )
            if ordered and kind == "flat_map":
                raise ValueError(
                    "key and ordered cannot be combined in flat_map: key already keeps "
                    "per-key order"
                )
        if per_key != 1:
            if key is None:
                raise ValueError(f"per_key needs key=, got per_key={per_key!r} and no key")
            if per_key > workers:
                raise ValueError(
                    f"per_key must be <= workers ({workers}), got {per_key!r}: "
                    "at most workers items are in the stage at once"
                )
        executor = check_choice("executor", executor, _EXECUTORS)
        if executor is not None and policy is not None:
            raise ValueError("executor and policy cannot be combined")
        if executor is not None and inspect.iscoroutinefunction(fn):
            raise TypeError(f"executor={executor!r} runs plain functions, got the async {fn!r}")
        if executor == "process":
            require_trio_parallel()
        return Stage(
            kind=kind,
            name=name,
            fn=fn,
            workers=workers,
            buffer=buffer,
            ordered=ordered,
            key=key,
            per_key=per_key,
            on_error=on_error,  # type: ignore[arg-type]  # checked above
            policy=policy,  # type: ignore[arg-type]  # checked structurally above
            executor=executor,  # type: ignore[arg-type]  # checked above
            overflow=overflow,
            on_drop=on_drop,
        )

    @overload
    def map(
        self,
        fn: Callable[[T_co], Awaitable[U]],
        *,
        workers: int = 1,
        ordered: bool = False,
        buffer: int | None = None,
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
        key: Callable[[T_co], object] | None = None,
        per_key: int = 1,
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
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
        key: Callable[[T_co], object] | None = None,
        per_key: int = 1,
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
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
        key: Callable[[T_co], object] | None = None,
        per_key: int = 1,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
        executor: Literal["thread", "process"] | None = None,
    ) -> Pipeline[Any]:
        """Replace each item by ``fn(item)``, awaited if it is awaitable.

        Args:
          fn: a function of one item, async or plain. Whatever it returns that
            ``await`` accepts (a coroutine, or any object with ``__await__``)
            is awaited; anything else is the result as it is. Not a generator
            function (:meth:`flat_map` is for those), refused at once.
          workers: how many items are processed at once (``>= 1``). Workers
            start as items need them: a stage never runs more workers than it
            has had items at once.
          ordered: with several workers, emit results in input order (a
            reorder window of ``workers + buffer`` items bounds the memory).
          buffer: how many items may wait for this stage (``>= 0``; default
            ``max(workers, 64)``); each worker also holds the item it works on.
            ``0`` is a rendezvous, as ``trio.open_memory_channel(0)``: an item
            is handed over only when a worker takes it.
          overflow: what a write to the full buffer does: ``"block"`` (the
            default: wait for room), ``"drop_oldest"`` (drop the oldest waiting
            item to make room) or ``"drop_newest"`` (drop the item written).
            Dropping needs ``buffer >= 1``; a writer never waits at a buffer
            that drops. Dropped items are counted in
            :attr:`StageStatistics.dropped`.
          on_drop: a plain function ``on_drop(item)``, called at once (in the
            writer's task) with each item the buffer drops; if it raises, the
            run fails with :exc:`StageError`.
          key: a plain function: items with equal ``key(item)`` always go to
            the same worker, so their order is kept (and they never run at
            once). With several workers, a dispatcher moves items from the
            stage's buffer into one queue per worker of ``4 * buffer // workers``
            items (at most *buffer*, at least one), and holds one item while
            that queue is full; a failing key is the item's failure, with one
            worker too. With *per_key* above 1 or ``ordered=True`` there is no
            dispatcher: see *per_key*.
          per_key: with *key*, how many items of one key may be in their call
            at once (``1 <= per_key <= workers``; not for :meth:`flat_map`).
            Workers share the stage's buffer and an item waits for a free
            slot of its key, handed out first come, first served; with
            ``ordered=True`` every result leaves in input order (at
            ``per_key=1`` too: one item of a key at a time, all in input order).
          on_error: ``"raise"`` (the pipeline fails with :exc:`StageError`),
            ``"skip"`` (the item is dropped and counted), or a dead-letter
            function ``hook(item, exc)``, plain or async (not a generator
            function), that receives it.
          name: the stage's name in statistics and errors.
          policy: an object with ``async call(fn, *args)`` (a
            :class:`trine.Policy`) that each call goes through; *fn* must be
            async (a plain one is a programming error, not an item's failure:
            the run raises its :exc:`TypeError` bare, whatever *on_error* says,
            as it does any ``NotAwaitableError`` from the stage's call).
          executor: ``"thread"`` runs a plain *fn* in :func:`trio.to_thread.run_sync`,
            ``"process"`` in a worker process (``trio-parallel``), at most
            *workers* at once. Cancellation kills a worker process, but waits
            for a running thread to return.

        Raises:
          TypeError, ValueError: for an invalid argument, at once.

        Example::

            pipe = Pipeline.source(urls).map(fetch, workers=20, key=host_of, per_key=2)
        """
        return self._then(
            self._build(
                "map",
                fn,
                workers=workers,
                ordered=ordered,
                buffer=buffer,
                overflow=overflow,
                on_drop=on_drop,
                on_error=on_error,
                name=name,
                policy=policy,
                key=key,
                per_key=per_key,
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
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
        key: Callable[[T_co], object] | None = None,
        per_key: int = 1,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
    ) -> Pipeline[T_co]:
        """Keep the items for which ``fn(item)`` is true (awaited if awaitable).

        Arguments as for :meth:`map`.
        """
        return self._then(
            self._build(
                "filter",
                fn,
                workers=workers,
                ordered=ordered,
                buffer=buffer,
                overflow=overflow,
                on_drop=on_drop,
                on_error=on_error,
                name=name,
                policy=policy,
                key=key,
                per_key=per_key,
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
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
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
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
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
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
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
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
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
        as for :meth:`map` (but no *per_key*, and no ``ordered=True`` with *key*).

        .. note::
           A generator *fn* returns runs inside the worker: a ``yield`` hands
           the item on from within the generator's own ``with`` blocks, so a
           cancel scope the generator holds open around its ``yield`` also
           covers that hand-off (and is cancelled with the pipeline).
        """
        return self._then(
            self._build(
                "flat_map",
                fn,
                workers=workers,
                ordered=ordered,
                buffer=buffer,
                overflow=overflow,
                on_drop=on_drop,
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
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
        key: Callable[[T_co], object] | None = None,
        per_key: int = 1,
        on_error: OnError = "raise",
        name: str | None = None,
        policy: SupportsCall | None = None,
    ) -> Pipeline[T_co]:
        """Call ``fn(item)`` (awaited if awaitable) for its side effect; pass the item on.

        Arguments as for :meth:`map`; an item whose call fails is not passed on.
        """
        return self._then(
            self._build(
                "tap",
                fn,
                workers=workers,
                ordered=ordered,
                buffer=buffer,
                overflow=overflow,
                on_drop=on_drop,
                on_error=on_error,
                name=name,
                policy=policy,
                key=key,
                per_key=per_key,
            )
        )

    def enumerate(
        self,
        *,
        start: int = 0,
        buffer: int | None = None,
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
        name: str | None = None,
    ) -> Pipeline[tuple[int, T_co]]:
        """Replace each item by ``(index, item)``, counting from *start*.

        Args:
          start: the first index.
          buffer: how many items may wait for this stage (``>= 0``, default 64).
          overflow, on_drop: what a write to the full buffer does, as for :meth:`map`.
          name: the stage's name in statistics and errors.
        """
        if isinstance(start, bool) or not isinstance(start, int):
            raise TypeError(f"start must be an int, got {start!r}")
        buffer = self._buffer(buffer, DEFAULT_BUFFER)
        overflow, on_drop = self._overflow(overflow, on_drop, buffer)
        name = self._name("enumerate", None, name)
        return self._then(
            Stage(
                kind="enumerate",
                name=name,
                size=start,
                buffer=buffer,
                overflow=overflow,
                on_drop=on_drop,
            )
        )

    def batch(
        self,
        size: int,
        timeout: float | None = None,
        *,
        buffer: int | None = None,
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
        name: str | None = None,
    ) -> Pipeline[list[T_co]]:
        """Group items into lists of *size*.

        A list is emitted when it is full, or when *timeout* seconds have
        passed since the stage took its first item (if *timeout* is given), or
        when the input ends (the last list may be short; an empty list is never
        emitted). Items wait in the stage's buffer only while the previous list
        is being handed on.

        Batching pays where the per-item hops are: every stage after a batch
        moves one list per hop instead of *size* items, so put ``batch`` before
        the stages of quick functions, not after them.

        Args:
          size: the most items in a list (``>= 1``).
          timeout: the most seconds a list waits for more items after its first.
          buffer: how many items may wait for this stage (``>= 0``; default
            ``max(size, 64)``).
          overflow, on_drop: what a write to the full buffer does, as for :meth:`map`.
          name: the stage's name in statistics and errors.

        Raises:
          TypeError, ValueError: if *size* is not an int ``>= 1``, *buffer* not
            an int ``>= 0``, or *timeout* not a number ``> 0``.
        """
        size = check_int("size", size)
        if timeout is not None:
            timeout = check_number("timeout", timeout, exclusive=True, allow_inf=True)
        buffer = self._buffer(buffer, max(size, DEFAULT_BUFFER))
        overflow, on_drop = self._overflow(overflow, on_drop, buffer)
        name = self._name("batch", None, name)
        return self._then(
            Stage(
                kind="batch",
                name=name,
                size=size,
                timeout=timeout,
                buffer=buffer,
                overflow=overflow,
                on_drop=on_drop,
            )
        )

    def rate_limit(
        self,
        rate: float,
        per: float = 1.0,
        *,
        burst: int | None = None,
        buffer: int | None = None,
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
        name: str | None = None,
    ) -> Pipeline[T_co]:
        """Let at most *rate* items through per *per* seconds, evenly spaced.

        Items are delayed, never dropped (unless *overflow* asks). Each run of
        the pipeline paces its items with its own :class:`~trine.RateLimiter`
        ``(rate, per, burst=burst)``, so the guarantee is the rate limiter's: in
        any interval of length *t* at most ``burst + rate * t / per`` items
        leave; with ``burst=1`` the *n*-th item after a pause leaves
        ``n * per / rate`` seconds after the first.

        Args:
          rate, per: as for :class:`~trine.RateLimiter`.
          burst: as for :class:`~trine.RateLimiter`; ``None`` (the default)
            means the rate limiter's default burst.
          buffer: how many items may wait for this stage (``>= 0``, default 64).
          overflow, on_drop: what a write to the full buffer does, as for
            :meth:`map` (``"drop_newest"`` sheds what the rate cannot take).
          name: the stage's name in statistics and errors.

        Raises:
          TypeError, ValueError: if *rate*, *per* or *burst* is not valid for
            :class:`~trine.RateLimiter`, or *buffer* is not an int ``>= 0``.
        """
        # Built once here so that bad arguments fail at build time, with
        # RateLimiter's own messages; each run gets a fresh one.
        if burst is None:
            RateLimiter(rate, per)
        else:
            RateLimiter(rate, per, burst=burst)
        buffer = self._buffer(buffer, DEFAULT_BUFFER)
        overflow, on_drop = self._overflow(overflow, on_drop, buffer)
        name = self._name("rate_limit", None, name)
        return self._then(
            Stage(
                kind="rate_limit",
                name=name,
                rate=(rate, per, burst),
                buffer=buffer,
                overflow=overflow,
                on_drop=on_drop,
            )
        )

    def broadcast(
        self,
        *branches: Callable[[Pipeline[T_co]], Pipeline[U]],
        buffer: int | None = None,
        overflow: Overflow = "block",
        on_drop: Callable[[T_co], object] | None = None,
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
          buffer: how many items may wait for the distributor (``>= 0``, default 64).
          overflow, on_drop: what a write to the full buffer does, as for :meth:`map`.
          name: the stage's name in statistics and errors; the branches'
            stages are called ``name[number].stage``.

        Raises:
          TypeError: if a branch is not callable or does not return a pipeline
            built on the one it was given.
          ValueError: if no branch is given, or *buffer* is not ``>= 0``.
        """
        if not branches:
            raise ValueError("broadcast needs at least one branch")
        buffer = self._buffer(buffer, DEFAULT_BUFFER)
        overflow, on_drop = self._overflow(overflow, on_drop, buffer)
        stage_name = self._name("broadcast", None, name)
        built: list[tuple[Stage, ...]] = []
        for number, branch in enumerate(branches):
            branch = check_async_callable("branch", branch)
            stub: Pipeline[Any] = Pipeline(SourceState(None, "branch"), ())
            result = branch(stub)
            if not isinstance(result, Pipeline) or result._source_state is not stub._source_state:
                raise TypeError(
                    "each branch must return stages added to the pipeline it is given, "
                    f"got {result!r}"
                )
            if result._conflate_next:
                raise ValueError(
                    "a branch cannot end with latest(): the branches share the broadcast's "
                    "output; call latest() after the broadcast"
                )
            built.append(
                tuple(
                    attrs.evolve(stage, name=f"{stage_name}[{number}].{stage.name}")
                    for stage in result._stages
                )
            )
        return self._then(
            Stage(
                kind="broadcast",
                name=stage_name,
                buffer=buffer,
                branches=tuple(built),
                overflow=overflow,
                on_drop=on_drop,
            )
        )

    def latest(self) -> Pipeline[T_co]:
        """Conflate: whoever reads next always gets the newest item, never a backlog.

        The buffer in front of the next stage (or, at the end, the results
        waiting for the :meth:`open` block) holds one item, and an item that
        arrives while it is full replaces it: ``buffer=1, overflow="drop_oldest"``
        on the next stage, whatever it asked for. A slow consumer then gets,
        each time it is ready, the newest item, and the ones it missed are
        counted in :attr:`StageStatistics.dropped` (at the end,
        :attr:`PipelineStatistics.output_dropped`), and passed to the next
        stage's ``on_drop``. Writers never wait for it. This is the "latest
        value" channel of trio#987, and Kotlin's ``conflate()``::

            readings = Pipeline.source(sensor).latest().map(render)  # render sees fresh readings

        """
        return Pipeline(self._source_state, self._stages, conflate_next=True)

    # -- running ----------------------------------------------------------

    def _one_shot_sources(self) -> list[SourceState]:
        state = self._source_state
        if state.kind in ("merge", "zip", "zip_latest"):
            pipelines: tuple[Pipeline[Any], ...] = (
                state.items.pipelines if isinstance(state.items, JoinSource) else state.items  # type: ignore[assignment]  # see merge()
            )
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

    @asynccontextmanager
    async def open(
        self, *, buffer: int = DEFAULT_BUFFER
    ) -> AsyncGenerator[PipelineOutput[T_co], None]:
        """Run the pipeline; yield its output to iterate over.

        Leaving the block cancels whatever is still running. Iterating the
        output checks for cancellation on every item and yields to the
        scheduler at least once per chunk (never more than the last buffer's size).

        The block is a context manager, not a nursery: an exception raised by
        the block itself comes out as itself, not in an exception group, as
        from :func:`trine.amap`.

        Args:
          buffer: how many results may wait for the block (``>= 0``, default
            64; ``0`` hands each result over only when the block asks for it).

        Raises:
          StageError: if a stage with ``on_error="raise"`` fails (the cause is
            its ``__cause__``), even while the caller is being cancelled. If
            the block raises too, both come out in one :exc:`BaseExceptionGroup`.
          RuntimeError: if the source is a one-shot iterator consumed by an earlier run.
        """
        buffer = check_int("buffer", buffer, minimum=0)
        self._claim_sources()
        run = self._latest.run = Run(
            self._stages, self._source_state, buffer, conflate_output=self._conflate_next
        )
        async with run.running() as output:
            yield output

    async def collect(self) -> list[T_co]:
        """Run the pipeline to the end and return every result, in arrival order.

        Up to 1,024 results wait for the caller's task (it keeps them all anyway).

        Raises:
          StageError: as for :meth:`open`.
        """
        results: list[T_co] = []
        async with self.open(buffer=_COLLECT_BUFFER) as output:
            await output._drain(results.extend)
        return results

    async def run(self) -> None:
        """Run the pipeline to the end, discarding the results.

        Up to 1,024 results wait to be discarded, as many at a time as there are.

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
            return Run(self._stages, self._source_state, DEFAULT_BUFFER).statistics()
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
    return Pipeline(SourceState(_inputs("merge", pipelines), "merge"), ())


def _inputs(what: str, pipelines: tuple[Pipeline[Any], ...]) -> tuple[Pipeline[Any], ...]:
    """*pipelines*, checked to be inputs of a merge or zip, with their stages renamed."""
    if not pipelines:
        raise ValueError(f"{what} needs at least one pipeline")
    for pipeline in pipelines:
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"pipelines must be Pipelines, got {pipeline!r}")
        if pipeline._source_state.kind == "branch":
            joined = "merged" if what == "merge" else f"an input of {what}"
            raise TypeError(f"a broadcast branch cannot be {joined}: it has no source of its own")
        if what == "merge" and pipeline._conflate_next:
            raise ValueError(
                "a merged pipeline cannot end with latest(): the inputs share one buffer; "
                "call latest() on the merged pipeline"
            )
        if pipeline._conflate_next:
            raise ValueError(
                f"an input of {what} cannot end with latest(): it writes the {what}'s "
                f"own buffer; call latest() on the {what}"
            )
    # Each input's stages are renamed after its place, as a broadcast's
    # branches are, so that no two stages of the run share a name.
    return tuple(
        Pipeline(
            pipeline._source_state,
            tuple(
                attrs.evolve(stage, name=f"{what}[{number}].{stage.name}")
                for stage in pipeline._stages
            ),
        )
        for number, pipeline in enumerate(pipelines)
    )


@overload
def zip(first: Pipeline[T], /) -> Pipeline[tuple[T]]: ...
@overload
def zip(first: Pipeline[T], second: Pipeline[U], /) -> Pipeline[tuple[T, U]]: ...
@overload
def zip(
    first: Pipeline[T], second: Pipeline[U], third: Pipeline[V], /
) -> Pipeline[tuple[T, U, V]]: ...
@overload
def zip(*pipelines: Pipeline[Any]) -> Pipeline[tuple[Any, ...]]: ...
def zip(*pipelines: Pipeline[Any]) -> Pipeline[tuple[Any, ...]]:
    """A pipeline of tuples: the first item of every input, then the second of each, and so on.

    As Python's :func:`zip`, it ends with the shortest input: once any input
    has ended, the inputs still running are cancelled and the zipped output
    ends. Each input runs with its own source and stages in the zip's own
    nursery, inside the run's; up to 64 items of each wait for the others.
    Stages added to the result apply to the tuples::

        checked = trine.zip(Pipeline.source(questions), Pipeline.source(answers).map(check))
        async with checked.open() as pairs:
            async for question, verdict in pairs:
                ...

    Raises:
      TypeError: if an argument is not a :class:`Pipeline`.
      ValueError: if no pipeline is given, or one ends with :meth:`Pipeline.latest`.
    """
    return Pipeline(SourceState(JoinSource(_inputs("zip", pipelines)), "zip"), ())


def zip_latest(
    *pipelines: Pipeline[Any], partial: bool = False, default: Any = None
) -> Pipeline[tuple[Any, ...]]:
    """Tuples of the newest item of every input, one each time any input has a new item.

    The first tuple comes once every input has produced an item (with
    ``partial=True``, at the first item of any input, the inputs with none
    yet given as *default*); after that, each new item of any input makes a
    tuple with the newest item of the others. It ends when every input has
    ended. Tuples are handed on with backpressure, so a slow consumer slows
    the inputs down; add :meth:`Pipeline.latest` to have it see only the
    newest tuple instead::

        views = trine.zip_latest(Pipeline.source(prices), Pipeline.source(rates)).latest()

    Args:
      pipelines: the inputs, each run with its own source and stages in the
        join's own nursery.
      partial: emit tuples before every input has produced an item.
      default: what stands for an input with no item yet (with *partial*).

    Raises:
      TypeError: if an argument is not a :class:`Pipeline`, or *partial* not a bool.
      ValueError: if no pipeline is given, or one ends with :meth:`Pipeline.latest`.
    """
    check_bool("partial", partial)
    inputs = _inputs("zip_latest", pipelines)
    return Pipeline(SourceState(JoinSource(inputs, partial, default), "zip_latest"), ())
