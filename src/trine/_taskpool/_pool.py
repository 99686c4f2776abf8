"""The TaskPool class: its block, starting, a task's life, reading results."""

from __future__ import annotations

import functools
import inspect
import types
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Literal,
    TypeVar,
    TypeVarTuple,
    final,
    overload,
)

import outcome
import trio

from .._block import exception_leaving_the_block
from .._fan import _call, _surely_async
from .._policy import SupportsCall, _check_call_guard
from .._stats import LatencyHistogram, LatencySummary
from .._util import (
    NotAwaitableError,
    check_async_callable,
    check_bool,
    check_choice,
    check_int,
)
from ._calls import _checked, _close, _Made, _Request
from ._statistics import TaskPoolStatistics

if TYPE_CHECKING:
    from typing import Self

    # Defaults (PEP 696), as AsyncCache has them: `async with TaskPool(limit=5) as
    # pool` is a TaskPool[Any, Any], TaskPool[str](...) keeps its types, and in
    # collect mode the second parameter (what results() yields) is an Outcome.
    from typing_extensions import TypeVar as _TypeVarWithDefault

    _T = _TypeVarWithDefault("_T", default=Any)
    _Y = _TypeVarWithDefault("_Y", default=_T)
else:
    _T = TypeVar("_T")
    _Y = TypeVar("_Y")

_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")

__all__ = ["TaskPool"]

_FunctionType: Final = types.FunctionType
_CO_COROUTINE: Final = inspect.CO_COROUTINE
_current_time: Final = trio.current_time
# How many tasks' durations wait in a list before they go into the latency
# histogram at once: memory stays O(1), the histogram's work runs in C.
_DURATIONS_BATCH: Final = 256
_current_task: Final = trio.lowlevel.current_task
_checkpoint_if_cancelled: Final = trio.lowlevel.checkpoint_if_cancelled
_cancel_shielded_checkpoint: Final = trio.lowlevel.cancel_shielded_checkpoint
_reschedule: Final = trio.lowlevel.reschedule

_ON_ERROR: Final = ("raise", "collect")

# Where a pool is in its life.
_NEW: Final = 0
_OPEN: Final = 1  # its block runs
_CLOSING: Final = 2  # its block has ended; its tasks are finishing
_CLOSED: Final = 3

# An ordered pool's placeholder for a task that ended without a result
# (cancelled), so the reader passes over its place.
_NO_RESULT: Final[Any] = object()
_NO_FUNCTION: Final[Any] = object()  # what start has found plain before its first call
_MISSING: Final[Any] = object()


@final
class TaskPool(Generic[_T, _Y]):
    """A nursery with a bound: at most *limit* tasks run at once, and more can be started
    from anywhere, the pool's own tasks included.

    ::

        async with trine.TaskPool(limit=20) as pool:
            await pool.start(crawl, pool, seed_url)   # waits while 20 tasks run
            async for page in pool.results():         # as the tasks finish
                print(page)

    **Starting.** :meth:`start` starts ``fn(*args)`` as a task of the pool,
    waiting first while *limit* tasks run (or while *max_results* results wait
    to be read); waiters are served first in, first out. :meth:`try_start`
    never waits: it starts the task or returns ``False``. Both work from the
    block, from any other task, and from the pool's own tasks, while the pool
    is open (its block runs, or its tasks are still finishing).

    **The rule that keeps the pool from deadlocking.** A task of the pool that
    has to wait in :meth:`start` gives up its slot while it waits, and takes a
    slot back before :meth:`start` returns (such tasks go before new ones).
    So tasks that start tasks never block one another: even at ``limit=1``,
    the only task calling :meth:`start` hands its slot to the new task and
    goes on when that one has finished (or is itself waiting in
    :meth:`start`). *limit* bounds the tasks *running*: a task waiting in
    :meth:`start` is not running, though it still holds whatever it acquired
    (do not hold a lock or a limiter across :meth:`start`). A task cancelled
    while it waits in :meth:`start` also takes its slot back before the
    cancellation goes on, so its clean-up runs within the limit too. Helper
    tasks that a pool task starts in a nursery of its own are not the pool's
    and have no slot to give up: their :meth:`start` waits as an outsider's.

    **Results.** :meth:`results` yields each task's return value as it
    finishes (in the order the tasks started, with ``ordered=True``), and ends
    when the pool is idle: no task runs or waits to start and every result has
    been read. :meth:`start` waits (as for a slot) while *max_results* results
    are unread, so memory is O(*limit* + *max_results*) however many tasks run
    in all: the unread results stay fewer than *max_results* + *limit*, plus
    one per task paused in :meth:`start` (it still owes its result). In an
    ordered pool the task whose result the reader waits for never waits for
    room (that would deadlock), so the results of the tasks it starts can
    pile up behind it. With ``max_results=0`` the pool keeps no results (run
    tasks for what they do). When the block ends, unread results, and those
    of tasks finishing after it, are dropped (counted in
    ``statistics().dropped``): read them inside the block.

    .. warning::
       The task that reads the results must not wait in :meth:`start` for
       room that only its own reading would make. The block doing so (start
       many, then read) would wait forever, so :meth:`start` raises
       :exc:`RuntimeError` instead: start the work from a task of the pool
       (``await pool.start(feed)``), read in another task, or raise
       *max_results*.

    **Errors.** With ``on_error="raise"`` (the default) the pool is a nursery:
    the first task to raise cancels the block and every other task, and the
    failures propagate in an :exc:`ExceptionGroup`. With ``on_error="collect"``
    a failure cancels nothing and is that task's result: :meth:`results`
    yields an :class:`outcome.Outcome` per task (``.unwrap()`` returns the
    value or raises the error). :exc:`trio.Cancelled` is never a result, nor
    is a :exc:`TypeError` from a function that is not async (a programming
    error, raised as in ``"raise"`` mode). An exception raised by the block
    itself cancels the tasks and then leaves the block as itself, bare, as
    from :func:`~trine.amap`. The pool ends when its block has ended and
    every task has finished; nothing it started outlives it.

    Args:
      limit: the most tasks that run at once, ``>= 1``.
      on_error: ``"raise"`` (a failure cancels the pool) or ``"collect"``
        (a failure is that task's result).
      ordered: yield results in the order the tasks started (true), or as
        they finish (false, the default).
      max_results: the most results kept unread; :meth:`start` waits while
        that many are. ``None`` (the default) means *limit*; ``0`` keeps
        none (then :meth:`results` is refused, and ``"collect"`` too, which
        would drop every failure).
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn, *args)``)
        that every task's call goes through: ``await policy.call(fn, *args)``.

    Raises:
      TypeError: if *limit* or *max_results* is not an int, *on_error* is not
        a string, *ordered* is not a bool, or *policy* has no async ``call``.
      ValueError: if *limit* < 1, *max_results* < 0, *on_error* is neither
        choice, or *max_results* is 0 with ``on_error="collect"``.
    """

    __slots__ = (
        "_alive",
        "_cancelled",
        "_cm",
        "_collect",
        "_dropped",
        "_durations",
        "_failed",
        "_keeping",
        "_keeps",
        "_last_reader",
        "_latency",
        "_limit",
        "_max_results",
        "_next_read",
        "_now",
        "_nursery",
        "_ordered",
        "_ordered_tasks",
        "_owner",
        "_past_bound",
        "_paused",
        "_plain_fn",
        "_policy",
        "_reader",
        "_ready",
        "_ready_in_order",
        "_resumers",
        "_running",
        "_slotless",
        "_start_soon",
        "_started",
        "_starters",
        "_state",
        "_stopped",
        "_task_fn",
        "_unread",
    )

    @overload
    def __init__(
        self: TaskPool[_T, _T],
        limit: int,
        *,
        on_error: Literal["raise"] = "raise",
        ordered: bool = False,
        max_results: int | None = None,
        policy: SupportsCall | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self: TaskPool[_T, outcome.Outcome[_T]],
        limit: int,
        *,
        on_error: Literal["collect"],
        ordered: bool = False,
        max_results: int | None = None,
        policy: SupportsCall | None = None,
    ) -> None: ...

    def __init__(
        self,
        limit: int,
        *,
        on_error: Literal["raise", "collect"] = "raise",
        ordered: bool = False,
        max_results: int | None = None,
        policy: SupportsCall | None = None,
    ) -> None:
        self._limit = check_int("limit", limit)
        if not isinstance(on_error, str):
            raise TypeError(f"on_error must be 'raise' or 'collect', got {on_error!r}")
        self._collect = check_choice("on_error", on_error, _ON_ERROR) == "collect"
        self._ordered = check_bool("ordered", ordered)
        self._max_results = (
            self._limit if max_results is None else check_int("max_results", max_results, minimum=0)
        )
        if self._collect and self._max_results == 0:
            raise ValueError(
                "max_results must be >= 1 with on_error='collect', got 0: "
                "a pool that keeps no results would drop every failure"
            )
        _check_call_guard("policy", policy)
        self._policy = policy
        self._keeps = self._max_results > 0  # as configured
        self._keeping = self._keeps  # now: results are dropped once the block ends
        self._state = _NEW
        self._stopped = False  # a task failed (on_error="raise"): nothing more starts
        self._nursery: trio.Nursery | None = None
        # The nursery's start_soon while tasks may start: open and not stopped.
        self._start_soon: Callable[..., None] | None = None
        # What a task runs: a plain function called with the pool first (a
        # bound method kept here would tie the pool to itself in a cycle).
        self._task_fn: Callable[..., Awaitable[None]] = (
            TaskPool._run_unkept if not self._keeps and not self._ordered else TaskPool._run_task
        )
        self._plain_fn: object = _NO_FUNCTION  # the last fn that start found plain
        self._cm: AbstractAsyncContextManager[None] | None = None
        self._running = 0  # slots held
        self._alive = 0  # tasks of the pool not yet finished (running or paused)
        self._paused = 0
        self._past_bound = 0  # ordered: leader's starts admitted with the results full
        self._started = 0
        self._failed = 0
        self._cancelled = 0
        self._dropped = 0
        self._unread = 0
        self._latency = LatencyHistogram()
        # Tasks' durations, folded into _latency in batches (see _run_task).
        self._durations: list[float] = []
        self._now: Callable[[], float] = _current_time
        self._starters: OrderedDict[_Request, None] = OrderedDict()
        self._resumers: OrderedDict[trio.lowlevel.Task, None] = OrderedDict()
        self._slotless: set[trio.lowlevel.Task] = set()  # interrupted while taking one back
        self._ready: deque[Any] = deque()
        self._ready_in_order: dict[int, Any] = {}
        self._ordered_tasks: dict[int, trio.lowlevel.Task] = {}  # ordered: running, by index
        self._next_read = 0
        self._reader: trio.lowlevel.Task | None = None
        self._owner: trio.lowlevel.Task | None = None  # the task running the block
        self._last_reader: trio.lowlevel.Task | None = None

    if not TYPE_CHECKING:
        # At run time, as the type checkers read the defaults: TaskPool[str] is
        # TaskPool[str, str].
        def __class_getitem__(cls, params: object) -> object:
            if not isinstance(params, tuple):
                params = (params, params)
            return super().__class_getitem__(params)

    def __repr__(self) -> str:
        state = ("new", "open", "closing", "closed")[self._state]
        return (
            f"<trine.TaskPool {state} running={self._running}/{self._limit} "
            f"waiting={len(self._starters)} unread={self._unread}>"
        )

    # -- the block ------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state != _NEW:
            raise RuntimeError("a TaskPool can be entered only once: make a new one")
        self._cm = self._open()
        await self._cm.__aenter__()
        self._owner = _current_task()
        # What trio.current_time() returns, read from the run's clock directly:
        # one call per read instead of two, twice per task.
        self._now = trio.lowlevel.current_clock().current_time
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._cm is not None
        return await self._cm.__aexit__(exc_type, exc, traceback)

    @asynccontextmanager
    async def _open(self) -> AsyncGenerator[None]:
        raised: BaseException | None = None  # what the block itself raised
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._start_soon = nursery.start_soon
                self._state = _OPEN
                try:
                    yield
                except BaseException as exc:
                    raised = exc
                    raise
                finally:
                    self._end_of_block()
        except BaseExceptionGroup as group:
            # As amap's block: the block's own exception leaves as itself when
            # besides it the group holds only the tasks' Cancelled, and an outer
            # cancellation that reached only the tasks leaves as one Cancelled.
            leaving = exception_leaving_the_block(group, raised)
            if leaving is None:
                raise
            raised = leaving
        finally:
            self._state = _CLOSED
            self._nursery = None
            self._start_soon = None
            self._fail_waiters()
        if raised is not None:
            raise raised

    def _end_of_block(self) -> None:
        """The block has ended: nobody can read results any more, so keep none."""
        self._state = _CLOSING
        if self._keeping:
            self._keeping = False
            self._dropped += self._unread
            self._unread = 0
            self._ready.clear()
            self._ready_in_order.clear()
            self._admit()  # those waiting for room for a result
        self._wake_reader()

    def _fail_waiters(self) -> None:
        """Wake whoever still waits once the pool has closed (none should): with an error."""
        for request in self._starters:
            _close(request.fn)
            _reschedule(request.task, outcome.Error(RuntimeError(self._closed_message())))
        self._starters.clear()

    def _closed_message(self) -> str:
        if self._stopped and self._state != _CLOSED:
            return "the TaskPool is shutting down: one of its tasks failed"
        if self._state == _NEW:
            return "the TaskPool is not open: use it inside `async with TaskPool(...) as pool`"
        return "the TaskPool is closed: its block and all its tasks have finished"

    # -- starting -----------------------------------------------------------------

    async def start(self, fn: Callable[[*_Ts], Awaitable[_T]], *args: *_Ts) -> None:
        """Start ``fn(*args)`` as a task of the pool, waiting first while the pool is full.

        The pool is full while *limit* tasks run, or while *max_results*
        results wait to be read. Callers wait first in, first out; a task of
        the pool gives up its slot while it waits (see the class docstring).
        When :meth:`start` returns, the task has started (it is scheduled to
        run). The task runs in a copy of the caller's :mod:`contextvars`
        context, as with :meth:`trio.Nursery.start_soon`, even when it waited
        in line. It is a checkpoint.

        Args:
          fn: an async function (pass the function and its arguments, not
            ``fn(*args)``), or any callable returning an awaitable.
          *args: positional arguments for *fn*.

        Raises:
          TypeError: if *fn* is a coroutine object or not callable, or (*fn*
            not being an ``async def`` function, which is called right away)
            calling it returns something that cannot be awaited.
          RuntimeError: if the pool is not open (before its block, or after
            it has closed), or is shutting down because a task failed
            (``on_error="raise"``; also for a caller already waiting in line);
            if the caller is the pool's block and would wait for room for
            results that no other task reads (it would wait forever).
        """
        await _checkpoint_if_cancelled()
        call: Callable[..., Any] = fn
        call_args: tuple[Any, ...] = args
        name: object = fn
        # The common case inline: an async def function and no policy; the
        # last function that passed this test is not tested again.
        if fn is not self._plain_fn:
            if (
                type(fn) is _FunctionType
                and fn.__code__.co_flags & _CO_COROUTINE
                and self._policy is None
            ):
                self._plain_fn = fn
            else:
                call, call_args, name = self._prepare(fn, args)
        start_soon = self._start_soon
        if start_soon is None:
            _close(call)
            raise RuntimeError(self._closed_message())
        if (
            self._running < self._limit
            and not self._starters
            and (self._unread < self._max_results or not self._keeping)
        ):
            # _launch, written out: this is the path of nearly every task.
            index = self._started
            self._started = index + 1
            self._running += 1
            self._alive += 1
            start_soon(self._task_fn, self, index, call, call_args, name=name)
        else:
            await self._wait_to_start(call, call_args, name)
        await _cancel_shielded_checkpoint()

    def try_start(self, fn: Callable[[*_Ts], Awaitable[_T]], *args: *_Ts) -> bool:
        """Start ``fn(*args)`` as a task of the pool if it is not full; never wait.

        Returns:
          ``True`` if the task started, ``False`` if *limit* tasks run, the
          results are full, or others wait in line (then *fn* is not called).

        Raises:
          TypeError: as :meth:`start`.
          RuntimeError: if the pool is not open, or is shutting down because
            a task failed.
        """
        check_async_callable("fn", fn)
        if self._start_soon is None:
            raise RuntimeError(self._closed_message())
        if not self._can_start():
            return False
        call, call_args, name = self._prepare(fn, args)
        self._launch(call, call_args, name)
        return True

    def _prepare(
        self, fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> tuple[Callable[..., Any], tuple[Any, ...], object]:
        """What the task will call and with what; refuses what is not an async function.

        An ``async def`` function is called in its task, as a nursery calls it.
        Any other callable is called here, as :meth:`trio.Nursery.start_soon`
        calls its function, so one that is not async is a :exc:`TypeError`
        at :meth:`start` (an exception raised by the call is the task's).
        """
        if self._policy is not None:
            # Called by the policy (maybe after a wait, maybe again): checked at each call.
            check_async_callable("fn", fn)
            return self._policy.call, (fn if _surely_async(fn) else _checked(fn), *args), fn
        if _surely_async(fn):
            return fn, args, fn
        check_async_callable("fn", fn)
        return _Made(_call("fn", functools.partial(fn, *args))), (), fn

    def _can_start(self) -> bool:
        # Nobody takes a slot back while one is free (it is handed on at once),
        # so an empty line of starters means nobody is ahead.
        return (
            self._running < self._limit
            and (self._unread < self._max_results or not self._keeping)
            and not self._starters
        )

    def _launch(self, fn: Callable[..., Any], args: tuple[Any, ...], name: object) -> None:
        """Start the task now, in a slot of its own."""
        assert self._start_soon is not None
        index = self._started
        self._started = index + 1
        self._running += 1
        self._alive += 1
        self._start_soon(self._task_fn, self, index, fn, args, name=name)

    async def _wait_to_start(
        self, fn: Callable[..., Any], args: tuple[Any, ...], name: object
    ) -> None:
        task = _current_task()
        member = task.parent_nursery is self._nursery  # a task of this pool
        if member:
            self._paused += 1
            self._free_slot()  # handed to the next in line
        try:
            # Only giving up a slot can have made room since start looked.
            if member and self._can_start():
                self._launch(fn, args, name)
                return
            if member and self._running < self._limit and task is self._leader():
                self._past_bound += 1
                self._launch(fn, args, name)
                return
            request = _Request(task, fn, args, name)
            self._starters[request] = None
            # With every slot taken, a running task will admit the caller.
            stuck = None if self._running >= self._limit else self._stuck()
            if stuck is not None:
                del self._starters[request]
                _close(fn)
                raise stuck
            try:
                await trio.lowlevel.wait_task_rescheduled(
                    functools.partial(self._abort_start, request)
                )
            except BaseException:
                _close(fn)
                raise
        finally:
            if member:
                await self._take_slot_back(task)
                self._paused -= 1

    def _abort_start(self, request: _Request, _: object) -> trio.lowlevel.Abort:
        del self._starters[request]
        return trio.lowlevel.Abort.SUCCEEDED

    async def _take_slot_back(self, task: trio.lowlevel.Task) -> None:
        """Wait (shielded: even a cancelled task cleans up within the limit) for a slot."""
        if self._running < self._limit and not self._resumers:
            self._running += 1
            return
        self._resumers[task] = None
        with trio.CancelScope(shield=True):
            await trio.lowlevel.wait_task_rescheduled(functools.partial(self._abort_resume, task))

    def _abort_resume(self, task: trio.lowlevel.Task, _: object) -> trio.lowlevel.Abort:
        # Only KeyboardInterrupt gets here (the wait is shielded): go on without a slot.
        del self._resumers[task]
        self._slotless.add(task)
        return trio.lowlevel.Abort.SUCCEEDED

    def _free_slot(self) -> None:
        self._running -= 1
        self._admit()

    def _admit(self) -> None:
        """Hand free slots on: to tasks taking theirs back first, then to the line of starters."""
        while self._running < self._limit:
            if self._resumers:
                task, _ = self._resumers.popitem(last=False)
                self._running += 1
                _reschedule(task)
            elif not self._starters:
                return
            elif self._unread < self._max_results or not self._keeping:
                request, _ = self._starters.popitem(last=False)
                self._launch_request(request)
            else:
                leading = self._leader_request()
                if leading is not None:
                    del self._starters[leading]
                    self._past_bound += 1
                    self._launch_request(leading)
                    continue
                stuck = self._stuck()
                if stuck is not None:
                    head, _ = self._starters.popitem(last=False)
                    _reschedule(head.task, outcome.Error(stuck))
                return

    def _launch_request(self, request: _Request) -> None:
        """Start a waiting caller's task and wake the caller.

        This runs in whichever task freed the slot; start_soon copies the
        current context, so the task would see that task's contextvars.
        Starting it from the caller's context, it sees the caller's, as a task
        started on the fast path (and by :meth:`trio.Nursery.start_soon`) does.
        """
        request.context.run(self._launch, request.fn, request.args, request.name)
        _reschedule(request.task)

    def _leader(self) -> trio.lowlevel.Task | None:
        """In an ordered pool, the task whose result the reader waits for next.

        It never waits for room for results: room is made by reading, and the
        reader waits for it. Only the results of tasks it starts can pile up
        behind it beyond *max_results*.
        """
        if not self._ordered:
            return None
        return self._ordered_tasks.get(self._next_read)

    def _leader_request(self) -> _Request | None:
        """The leader's place in the line of starters, if it waits there (a slow path)."""
        leader = self._leader()
        if leader is None or not self._starters:
            return None
        for request in self._starters:
            if request.task is leader:
                return request
        return None

    def _stuck(self) -> RuntimeError | None:
        """The error for the block's task waiting in line for room for results when no
        other task reads them: it would wait forever, so it is told instead."""
        if not self._starters or self._running >= self._limit:
            return None
        head = next(iter(self._starters))
        if head.task is not self._owner or self._last_reader not in (None, self._owner):
            return None
        return RuntimeError(
            f"start would wait forever: {self._unread} results are unread "
            f"(max_results={self._max_results}) and only this task, the pool's block, reads "
            "them; read them first, start the work from a task of the pool "
            "(await pool.start(feed)), or pass max_results=0 to keep no results"
        )

    # -- a task ---------------------------------------------------------------------

    async def _run_task(self, index: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        now = self._now
        started = now()
        if self._ordered:
            self._ordered_tasks[index] = _current_task()
        try:
            value = await fn(*args)
        except Exception as exc:  # not BaseException: Cancelled and KeyboardInterrupt propagate
            if not self._collect or isinstance(exc, NotAwaitableError):
                self._task_failed(index, exc, now() - started)
                raise
            self._failed += 1
            self._record(now() - started)
            self._task_done(index, outcome.Error(exc))
        except BaseException as exc:
            self._task_failed(index, exc, 0.0)
            raise
        else:
            self._record(now() - started)
            self._task_done(index, outcome.Value(value) if self._collect else value)

    async def _run_unkept(self, index: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """:meth:`_run_task` for a pool that keeps no results and no order (``max_results=0``).

        The common shape of a crawler or a fan-out: nothing to deliver, so a
        finished task only counts and hands its slot on.
        """
        now = self._now
        started = now()
        try:
            await fn(*args)
        except BaseException as exc:
            self._task_failed(index, exc, now() - started)
            raise
        # _record, written out: this is the path of nearly every task.
        durations = self._durations
        durations.append(now() - started)
        if len(durations) >= _DURATIONS_BATCH:
            self._fold_durations()
        self._task_left()

    def _task_failed(self, index: int, exc: BaseException, seconds: float) -> None:
        """Count a task whose exception stops the pool, *seconds* after it started.

        A failure (``on_error="raise"``) and a programming error
        (:exc:`NotAwaitableError`, never a result) cancel the pool; a
        cancellation or a KeyboardInterrupt is counted as neither.
        """
        if isinstance(exc, Exception):
            self._failed += 1
            if not isinstance(exc, NotAwaitableError):
                self._record(seconds)
            self._stop()
        else:
            self._cancelled += 1
        self._task_done(index, _NO_RESULT)

    def _record(self, seconds: float) -> None:
        """Keep a task's duration: a list append, the histogram's work once per batch (in C)."""
        self._durations.append(seconds)
        if len(self._durations) >= _DURATIONS_BATCH:
            self._fold_durations()

    def _fold_durations(self) -> None:
        self._latency._record_all(self._durations)
        self._durations.clear()

    def _stop(self) -> None:
        """A task's failure will cancel the pool: start nothing more, from now on."""
        if not self._stopped:
            self._stopped = True
            self._start_soon = None  # start and try_start refuse from now on
            assert self._nursery is not None
            # The nursery would cancel itself once the exception leaves the task;
            # cancelling now aborts the waits in start of the block and of the
            # pool's tasks, and those still in line (outsiders) get an error.
            self._nursery.cancel_scope.cancel()
            self._fail_waiters()

    def _task_done(self, index: int, result: Any) -> None:
        if self._ordered:
            del self._ordered_tasks[index]
        if self._keeping:
            self._deliver(index, result)
        elif self._keeps and result is not _NO_RESULT:
            self._dropped += 1
        self._task_left()

    def _task_left(self) -> None:
        """A task of the pool has finished: its slot goes to whoever waits for one."""
        self._alive -= 1
        if self._slotless and _current_task() in self._slotless:
            self._slotless.discard(_current_task())
        else:
            self._running -= 1
            if self._resumers or self._starters:
                self._admit()  # hand the slot on
        if not self._alive:
            self._wake_reader()  # the pool may be idle: the reader ends

    def _deliver(self, index: int, result: Any) -> None:
        if self._ordered:
            self._ready_in_order[index] = result
            if result is not _NO_RESULT:
                self._unread += 1
            if index == self._next_read:
                self._wake_reader()
        elif result is not _NO_RESULT:
            self._ready.append(result)
            self._unread += 1
            self._wake_reader()

    # -- reading ------------------------------------------------------------------

    def results(self) -> AsyncIterator[_Y]:
        """An async iterator of the tasks' results, as they finish (or in start order).

        Iterate it inside the block. It ends when the pool is idle: no task
        runs, none waits to start, and every result has been read; tasks
        started after that are read with a new :meth:`results`. Only one task
        may wait for a result at a time. Each step is a checkpoint.

        In ``"collect"`` mode each result is an :class:`outcome.Outcome`.

        Raises:
          RuntimeError: if the pool keeps no results (``max_results=0``), or
            is not open; while iterating, if the block has ended.
          trio.BusyResourceError: while iterating, if another task is already
            waiting for a result.
        """
        if not self._keeps:
            raise RuntimeError(
                "this TaskPool keeps no results (max_results=0): give max_results >= 1 to read them"
            )
        if self._state != _OPEN:
            raise RuntimeError(self._read_outside_message())
        self._last_reader = _current_task()
        return _Results(self)

    def _read_outside_message(self) -> str:
        if self._state == _NEW:
            return self._closed_message()
        return "TaskPool results were read after the pool's block ended: read them inside it"

    async def _next_result(self) -> Any:
        await trio.lowlevel.checkpoint_if_cancelled()
        self._last_reader = _current_task()
        while True:
            if self._state != _OPEN:
                raise RuntimeError(self._read_outside_message())
            result = self._take()
            if result is not _MISSING:
                if self._starters:
                    self._admit()  # room for one more result
                return result
            if not self._alive and not self._starters:
                # The end is a full checkpoint, like waiting would have been.
                await trio.lowlevel.cancel_shielded_checkpoint()
                raise StopAsyncIteration
            if self._reader is not None:
                raise trio.BusyResourceError(
                    "another task is already waiting for a TaskPool result"
                )
            self._reader = _current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort_read)

    def _take(self) -> Any:
        """The next result to hand to the reader, or ``_MISSING``."""
        if not self._ordered:
            if not self._ready:
                return _MISSING
            self._unread -= 1
            return self._ready.popleft()
        ready = self._ready_in_order
        while True:
            result = ready.pop(self._next_read, _MISSING)
            if result is _MISSING:
                return _MISSING
            self._next_read += 1
            if result is not _NO_RESULT:
                self._unread -= 1
                return result

    def _wake_reader(self) -> None:
        reader = self._reader
        if reader is not None:
            self._reader = None
            _reschedule(reader)

    def _abort_read(self, _: object) -> trio.lowlevel.Abort:
        self._reader = None
        return trio.lowlevel.Abort.SUCCEEDED

    # -- statistics ---------------------------------------------------------------

    def _latency_summary(self) -> LatencySummary:
        self._fold_durations()
        return self._latency.summary()

    def statistics(self) -> TaskPoolStatistics:
        """A frozen snapshot of the pool's counters; see :class:`TaskPoolStatistics`."""
        return TaskPoolStatistics(
            limit=self._limit,
            running=self._running,
            waiting=len(self._starters),
            paused=self._paused,
            started=self._started,
            # Every task that ended and was not cancelled finished.
            finished=self._started - self._alive - self._cancelled,
            failed=self._failed,
            cancelled=self._cancelled,
            unread=self._unread,
            dropped=self._dropped,
            latency=self._latency_summary(),
        )


@final
class _Results(Generic[_R]):
    """The async iterator :meth:`TaskPool.results` returns."""

    __slots__ = ("_pool",)

    def __init__(self, pool: TaskPool[Any, _R]) -> None:
        self._pool = pool

    def __aiter__(self) -> _Results[_R]:
        return self

    async def __anext__(self) -> _R:
        result: _R = await self._pool._next_result()
        return result
