"""Fan-out / fan-in: run a few async calls at once and collect their results.

:func:`gather`, :func:`settle`, :func:`race` and :func:`hedge` each open one
nursery, start one task per call and return only when every task they started
has finished, so nothing they start outlives them.

Speed: each call costs one Trio task, exactly what a hand-written nursery
costs: an ``async def`` function is called in its task, as a hand-written
nursery calls it, and trine adds only a type check per function before the
nursery opens (any other callable is called before the tasks start, so its
result can be checked first). Measured with ``python -m benchmarks fan
--repeat 5`` on the shared 2-core machine under heavy load (load average
about 6: times are inflated about 3x; steps and Python calls per task are
exact; the lead re-runs them):

=====================================================  ========  =====  =====  =====
100,000 ``async def f(): return 1``                    per task  ratio  steps  calls
=====================================================  ========  =====  =====  =====
hand-written nursery filling a list (baseline)         55.2 us   1.00   1.000  23.0
``trine.gather``                                       53.0 us   0.96   1.000  23.0
``asyncio.gather`` (asyncio, for reference)            49.7 us   0.90   n/a    23.0
anyio task group filling a list (asyncio, reference)   282.5 us  5.12   n/a    67.0
hand-written nursery filling outcomes (baseline)       32.9 us   1.00   1.000  24.0
``trine.settle``                                       30.6 us   0.93   1.000  24.0
=====================================================  ========  =====  =====  =====

``race`` of 10,000 calls where the first wins at once and the other 9,999 are
cancelled: 133.5 us per call, 1.00x the hand-written nursery that cancels its
own scope (2.0 steps per call for both).
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, NoReturn, Protocol, TypeVar, final

import attrs
import outcome
import trio

from ._deadline import cut_off, resolve_deadline
from ._percentile import Percentile
from ._retry import RetryBudget
from ._util import (
    NotAwaitableError,
    check_async_callable,
    check_awaitable,
    check_int,
    check_number,
)

__all__ = ["Hedge", "HedgeStatistics", "gather", "hedge", "race", "settle"]

_T = TypeVar("_T")

# Types that are callable and can never be awaitable themselves, so they need
# no further check: this keeps validating 100,000 functions cheap.
_PLAIN_CALLABLES = frozenset(
    {
        types.FunctionType,
        types.MethodType,
        types.BuiltinFunctionType,
        functools.partial,
    }
)


def _check_fns(fns: tuple[object, ...]) -> None:
    """Refuse anything in *fns* that is not an async callable, before anything starts."""
    plain = _PLAIN_CALLABLES
    for index, fn in enumerate(fns):
        if type(fn) not in plain:
            try:
                check_async_callable(f"fns[{index}]", fn)
            except TypeError:
                # Close the coroutine objects after the bad one too, so the
                # user sees one TypeError, not also "never awaited" warnings.
                for rest in fns[index + 1 :]:
                    close = getattr(rest, "close", None)
                    if close is not None and isinstance(rest, types.CoroutineType):
                        close()
                raise


_FunctionType: Final = types.FunctionType
_CO_COROUTINE: Final = inspect.CO_COROUTINE


def _surely_async(fn: Any) -> bool:
    """Whether calling *fn* can only make a coroutine: an ``async def`` function,
    or a partial or bound method of one."""
    while type(fn) is functools.partial:
        fn = fn.func
    if type(fn) is types.MethodType:
        fn = fn.__func__
    return type(fn) is _FunctionType and bool(fn.__code__.co_flags & _CO_COROUTINE)


async def _raise(error: Exception) -> NoReturn:
    raise error


def _call(name: str, fn: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
    """``fn()``, checked to be awaitable; an exception from the call is awaited later.

    An exception raised by calling *fn* (a wrapper that fails before it returns
    a coroutine) is that call's failure, exactly as if the coroutine had raised
    it, so it comes back as a coroutine that raises it.

    Raises:
      NotAwaitableError: *fn* returned something that cannot be awaited.
    """
    try:
        awaitable = fn()
    except Exception as error:  # not BaseException: KeyboardInterrupt goes up at once
        return _raise(error)
    if type(awaitable) is not types.CoroutineType:
        awaitable = check_awaitable(name, awaitable)
    return awaitable


def _made(awaitable: Awaitable[_T]) -> Callable[[], Awaitable[_T]]:
    """A zero-argument function returning *awaitable*, already made, for a task to await."""
    return lambda: awaitable


def _starters(
    fns: tuple[Callable[[], Awaitable[Any]], ...],
) -> Sequence[Callable[[], Awaitable[Any]]]:
    """Check every fn, and return what each task calls to get the awaitable it awaits.

    An ``async def`` function (or a partial or method of one) can only make a
    coroutine, so its task calls it, as a hand-written nursery would. Any
    other callable (a lambda, an object with ``__call__``, a plain function
    given by mistake) is called here, before any task starts, as
    :meth:`trio.Nursery.start_soon` calls its function: one that returns
    something that cannot be awaited is a bare :exc:`NotAwaitableError` and
    nothing has started (the coroutines already made are closed).

    Calling every fn here would cost a live coroutine per task while the
    tasks start (~20 % of a trivial task, in the garbage collector's time).
    """
    _check_fns(fns)
    starters: list[Callable[[], Awaitable[Any]]] | None = None  # a copy, once one differs
    made: list[Awaitable[Any]] = []
    try:
        for index, fn in enumerate(fns):
            # The common case inline: a plain async def function.
            if type(fn) is _FunctionType and fn.__code__.co_flags & _CO_COROUTINE:
                continue
            if not _surely_async(fn):
                awaitable = _call(f"fns[{index}]", fn)
                made.append(awaitable)
                if starters is None:
                    starters = list(fns)
                starters[index] = _made(awaitable)
    except BaseException:
        for awaitable in made:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never to be awaited: no "never awaited" warning
        raise
    return fns if starters is None else starters


async def _gather_one(fn: Callable[[], Awaitable[Any]], results: list[Any], index: int) -> None:
    results[index] = await fn()


async def gather(*fns: Callable[[], Awaitable[_T]]) -> list[_T]:
    """Run every function concurrently and return their results in argument order.

    Each *fn* is called with no arguments in its own task of one nursery; use
    :func:`functools.partial` to pass arguments::

        from functools import partial

        page, user = await trine.gather(partial(fetch, "/page"), partial(fetch, "/user"))

    This is the hand-written nursery that fills a list, with the errors a
    nursery gives: the first failure cancels every sibling, and once all have
    finished the failures propagate as an :exc:`ExceptionGroup` (Trio's
    nurseries are strict). Use :func:`settle` to keep going past failures.

    Args:
      *fns: zero-argument async functions.

    Returns:
      ``[await fns[0](), await fns[1](), ...]``, computed concurrently. ``gather()``
      returns ``[]`` (after a checkpoint).

    Raises:
      TypeError: if an item of *fns* is a coroutine object or not callable,
        or calling it returns something that cannot be awaited (a plain
        function, say), before anything starts.
      ExceptionGroup: of the failures, if any *fn* raises.
    """
    starters = _starters(fns)
    if not starters:
        await trio.lowlevel.checkpoint()
        return []
    results: list[Any] = [None] * len(starters)
    async with trio.open_nursery() as nursery:
        for index, start in enumerate(starters):
            nursery.start_soon(_gather_one, start, results, index, name=fns[index])
    return results


async def _settle_one(fn: Callable[[], Awaitable[Any]], results: list[Any], index: int) -> None:
    try:
        value = await fn()
    except NotAwaitableError:
        raise  # a programming error (of a trine call inside fn), never an outcome
    except Exception as exc:  # not BaseException: Cancelled and KeyboardInterrupt propagate
        results[index] = outcome.Error(exc)
    else:
        results[index] = outcome.Value(value)


async def settle(
    *fns: Callable[[], Awaitable[_T]],
    deadline: float | None = None,
    timeout: float | None = None,  # noqa: ASYNC109  # partial results at the deadline, not TooSlowError
) -> list[outcome.Outcome[_T]]:
    """Run every function to completion and return one outcome per function, in order.

    Like :func:`gather`, but a failure neither cancels the siblings nor
    propagates: each result is an :class:`outcome.Value` or an
    :class:`outcome.Error` (call ``.unwrap()`` to get the value or re-raise)::

        results = await trine.settle(partial(fetch, a), partial(fetch, b))
        ok = [r.value for r in results if isinstance(r, outcome.Value)]

    Only :exc:`Exception` is captured. :exc:`trio.Cancelled` is never turned into
    an outcome: cancelling a scope around :func:`settle` cancels every call and
    the cancellation propagates as usual. A :exc:`BaseException` that is not an
    :exc:`Exception` (:exc:`KeyboardInterrupt`, :exc:`SystemExit`) is not a
    result either: it cancels the siblings and propagates as from a Trio
    nursery, inside a :exc:`BaseExceptionGroup`.

    With a *deadline* (or a *timeout*), the calls still running at that moment
    are cancelled and :func:`settle` returns at once with what finished: each
    call cut off has ``outcome.Error(trine.DeadlineExceeded(deadline))``
    instead of a result, where a ``with trio.fail_after(...)`` around it would
    have raised :exc:`trio.TooSlowError` and lost every result::

        results = await trine.settle(*fetches, timeout=2.0)
        late = [r for r in results if isinstance(r, outcome.Error)
                and isinstance(r.error, trine.DeadlineExceeded)]

    A cancellation from outside is still a cancellation: it propagates as
    :exc:`trio.Cancelled`, never as a result, even when it comes at the
    deadline.

    Args:
      *fns: zero-argument async functions (use :func:`functools.partial` for
        arguments).
      deadline: when to cut the calls off, as a :func:`trio.current_time`
        value (absolute, as :func:`trio.move_on_at` takes it). ``None``: never.
      timeout: the same, in seconds from the call (relative, as
        :func:`trio.move_on_after` takes it). Give *deadline* or *timeout*,
        not both.

    Returns:
      One :class:`outcome.Outcome` per *fn*, in argument order. ``settle()``
      returns ``[]`` (after a checkpoint).

    Raises:
      TypeError: if an item of *fns* is a coroutine object or not callable,
        or calling it returns something that cannot be awaited (a plain
        function, say), before anything starts; if *deadline* or *timeout*
        is not a number.
      ValueError: if *deadline* is NaN, *timeout* is negative or NaN, or
        both are given.
    """
    try:
        at = resolve_deadline(deadline, timeout)
    except (TypeError, ValueError):
        _close_coroutines(fns)  # given by mistake: no "never awaited" warning on top
        raise
    starters = _starters(fns)
    if not starters:
        await trio.lowlevel.checkpoint()
        return []
    results: list[Any] = [None] * len(starters)
    if at is not None:
        return await _settle_by(at, fns, starters, results)
    async with trio.open_nursery() as nursery:
        for index, start in enumerate(starters):
            nursery.start_soon(_settle_one, start, results, index, name=fns[index])
    return results


def _close_coroutines(fns: tuple[object, ...]) -> None:
    for fn in fns:
        if isinstance(fn, types.CoroutineType):
            fn.close()


async def _settle_by(
    at: float,
    fns: tuple[Callable[[], Awaitable[Any]], ...],
    starters: Sequence[Callable[[], Awaitable[Any]]],
    results: list[Any],
) -> list[Any]:
    """:func:`settle`'s nursery inside a cancel scope that ends at *at*; the calls cut off
    get :func:`cut_off` outcomes."""
    with trio.CancelScope(deadline=at) as scope:
        async with trio.open_nursery() as nursery:
            for index, start in enumerate(starters):
                nursery.start_soon(_settle_one, start, results, index, name=fns[index])
    if scope.cancelled_caught:
        # Cancelled at the same moment from outside too: that one goes on.
        await trio.lowlevel.checkpoint_if_cancelled()
        for index, result in enumerate(results):
            if result is None:  # every call that finished left an outcome
                results[index] = cut_off(at)
    return results


@final
class _Contest:
    """What the tasks of one :func:`race` or :func:`hedge` share."""

    __slots__ = (
        "cancel_scope",
        "errors",
        "failures_pending",
        "latency",
        "pause",
        "timed",
        "value",
        "winner",
        "won",
    )

    def __init__(self, cancel_scope: trio.CancelScope, size: int) -> None:
        self.cancel_scope = cancel_scope
        self.errors: list[Exception | None] = [None] * size
        self.won = False
        self.value: Any = None
        # Only hedge uses these: failures not yet answered by a new attempt,
        # the cancel scope its starter waits in between attempts (a failure
        # cancels it), which attempt won and how long it took (timed only when
        # a Percentile records it).
        self.failures_pending = 0
        self.pause: trio.CancelScope | None = None
        self.winner = -1
        self.timed = False
        self.latency = 0.0


async def _contend(contest: _Contest, index: int, fn: Callable[[], Awaitable[Any]]) -> None:
    try:
        value = await fn()
    except NotAwaitableError:
        raise  # a programming error (of a trine call inside fn), never a failed attempt
    except Exception as exc:  # not BaseException: Cancelled and KeyboardInterrupt propagate
        contest.errors[index] = exc
        return
    if not contest.won:
        contest.won = True
        contest.value = value
        contest.cancel_scope.cancel()


def _all_failed(noun: str, errors: list[Exception | None]) -> ExceptionGroup[Exception]:
    # Every slot is filled when nobody won: each task either raised or returned.
    failures = [error for error in errors if error is not None]
    if len(failures) == 1:
        return ExceptionGroup(f"the only {noun} failed", failures)
    return ExceptionGroup(f"all {len(failures)} {noun}s failed", failures)


async def race(*fns: Callable[[], Awaitable[_T]]) -> _T:
    """Run every function concurrently; return the first successful result.

    As soon as one *fn* returns, every other is cancelled, and :func:`race`
    returns only after they have all finished unwinding (their ``finally``
    blocks have run)::

        body = await trine.race(partial(fetch, mirror_a), partial(fetch, mirror_b))

    A *fn* that raises does not end the race; the others keep going. Failures
    of the losers are dropped once some *fn* has succeeded.

    Args:
      *fns: one or more zero-argument async functions (use
        :func:`functools.partial` for arguments).

    Returns:
      The value of the first *fn* to return.

    Raises:
      ValueError: if *fns* is empty.
      TypeError: if an item of *fns* is a coroutine object or not callable,
        or calling it returns something that cannot be awaited (a plain
        function, say), before anything starts.
      ExceptionGroup: if every *fn* raised; it holds their exceptions in
        argument order.
    """
    if not fns:
        raise ValueError("fns must contain at least one function, got none")
    starters = _starters(fns)
    async with trio.open_nursery() as nursery:
        contest = _Contest(nursery.cancel_scope, len(starters))
        for index, start in enumerate(starters):
            nursery.start_soon(_contend, contest, index, start, name=fns[index])
    if contest.won:
        return contest.value  # type: ignore[no-any-return]  # set from an fn returning _T
    raise _all_failed("fn", contest.errors)


# --- hedge ------------------------------------------------------------------


class HedgeBudget(Protocol):
    """What ``budget=`` needs: :class:`~trine.RetryBudget`'s two methods.

    Every hedged call deposits one request; every attempt after the first
    must withdraw one, and is not started when :meth:`try_withdraw` says no.
    """

    def deposit(self) -> None: ...

    def try_withdraw(self) -> bool: ...


def check_budget(budget: object) -> HedgeBudget | None:
    """Refuse a ``budget`` that is neither ``None`` nor shaped like a :class:`RetryBudget`."""
    if budget is None:
        return None
    if (
        isinstance(budget, type)
        or not callable(getattr(budget, "deposit", None))
        or not callable(getattr(budget, "try_withdraw", None))
    ):
        raise TypeError(
            f"budget must be a trine.RetryBudget (or have deposit() and try_withdraw()) or None, "
            f"got {budget!r}"
        )
    return budget  # type: ignore[return-value]  # checked structurally above


def check_delay(delay: object) -> float | Percentile:
    """A hedge's ``delay``: seconds ``>= 0``, or a :class:`~trine.Percentile`."""
    if isinstance(delay, Percentile):
        return delay
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise TypeError(f"delay must be a number or a trine.Percentile, got {delay!r}")
    return check_number("delay", delay, minimum=0.0)


@final
class HedgeCounters:
    """What a :class:`Hedge` (or a :class:`~trine.Balancer`) counts of its hedged calls."""

    __slots__ = ("budget_refusals", "calls", "hedges_started", "hedges_won")

    def __init__(self) -> None:
        self.calls = 0
        self.hedges_started = 0
        self.hedges_won = 0
        self.budget_refusals = 0


@final
class Made:
    """An attempt whose awaitable was made before its task starts (to check it first).

    *undo*, if given, is called when the attempt is discarded unstarted (to
    give back what making it took, such as a balancer's pending count).
    """

    __slots__ = ("awaitable", "undo")

    def __init__(self, awaitable: Awaitable[Any], undo: Callable[[], object] | None = None) -> None:
        self.awaitable = awaitable
        self.undo = undo

    def __call__(self) -> Awaitable[Any]:
        return self.awaitable

    def discard(self) -> None:
        """It will never be awaited: close it, so Python does not warn."""
        if isinstance(self.awaitable, types.CoroutineType):
            self.awaitable.close()
        if self.undo is not None:
            self.undo()


async def _hedge_attempt(contest: _Contest, index: int, fn: Callable[[], Awaitable[Any]]) -> None:
    begun = trio.current_time() if contest.timed else 0.0
    try:
        value = await fn()
    except NotAwaitableError:
        raise  # a programming error (of a trine call inside fn), never a failed attempt
    except Exception as exc:  # not BaseException: Cancelled and KeyboardInterrupt propagate
        contest.errors[index] = exc
        contest.failures_pending += 1
        if contest.pause is not None:
            contest.pause.cancel()  # wake the starter: the next attempt starts now
        return
    if not contest.won:
        contest.won = True
        contest.value = value
        contest.winner = index
        if contest.timed:
            contest.latency = trio.current_time() - begun
        contest.cancel_scope.cancel()


async def run_hedge(
    first: Callable[[], Awaitable[Any]],
    more: Callable[[], Callable[[], Awaitable[Any]] | None],
    *,
    delay: float | Percentile,
    attempts: int,
    budget: HedgeBudget | None,
    counters: HedgeCounters | None,
    name: object,
) -> Any:
    """The hedging loop shared by :func:`hedge`, :class:`Hedge` and ``Balancer.hedged_call``.

    *first* is the first attempt; *more* makes each further one when it is
    due (``None``: no further attempt can be made, e.g. no other endpoint is
    left). An attempt that *more* made already (a :class:`Made`) and the
    budget refuses is discarded. A :exc:`NotAwaitableError` from *more* stops
    the other attempts and is raised bare.
    """
    percentile = delay if isinstance(delay, Percentile) else None
    # Read once per call: every hedge of this call waits the same delay.
    wait = delay.delay() if isinstance(delay, Percentile) else delay
    if budget is not None:
        budget.deposit()
    if counters is not None:
        counters.calls += 1
    start = first
    misuse: NotAwaitableError | None = None
    async with trio.open_nursery() as nursery:
        contest = _Contest(nursery.cancel_scope, attempts)
        contest.timed = percentile is not None
        for started in range(1, attempts + 1):
            nursery.start_soon(_hedge_attempt, contest, started - 1, start, name=name)
            if started == attempts:
                break
            if not contest.failures_pending:
                # Wait out the delay; a failure cancels this scope to start the next at once.
                with trio.move_on_after(wait) as pause:
                    contest.pause = pause
                    await trio.sleep_forever()
                contest.pause = None
            if contest.won:
                break
            if contest.failures_pending:
                contest.failures_pending -= 1
            try:
                following = more()
            except NotAwaitableError as error:
                # Not a failed attempt: stop the others and raise it bare, below.
                misuse = error
                nursery.cancel_scope.cancel()
                break
            if following is None:
                break
            if budget is not None and not budget.try_withdraw():
                if isinstance(following, Made):
                    following.discard()
                if counters is not None:
                    counters.budget_refusals += 1
                break  # no more attempts for this call; the ones running go on
            if counters is not None:
                counters.hedges_started += 1
            start = following
    if misuse is not None:
        raise misuse
    if contest.won:
        if contest.winner > 0 and counters is not None:
            counters.hedges_won += 1
        if percentile is not None:
            percentile.record(contest.latency)
        return contest.value
    raise _all_failed("attempt", contest.errors)


def _attempts_of(
    fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Callable[[], Awaitable[Any]]]]:
    """The first attempt of ``fn(*args)`` and the maker of the others.

    Unless *fn* is an ``async def`` function, each attempt's call is made
    before its task starts (the first before anything starts), so a function
    that is not async is a bare TypeError.
    """
    call = functools.partial(fn, *args)
    if _surely_async(fn):
        return call, lambda: call
    return Made(_call("fn", call)), lambda: Made(_call("fn", call))


async def hedge(
    fn: Callable[..., Awaitable[_T]],
    *args: Any,
    delay: float | Percentile,
    attempts: int = 2,
    budget: RetryBudget | None = None,
) -> _T:
    """Call ``fn(*args)``, and call it again each *delay* seconds until one succeeds.

    Hedging trades a little extra load for a shorter tail: if the first
    attempt is slow, a second one starts after *delay* seconds while the first
    keeps running, and whichever returns first wins; every other attempt is
    cancelled and has finished before :func:`hedge` returns::

        # a second request after 0.2 s if the first has not answered
        reply = await trine.hedge(fetch, url, delay=0.2)

    An attempt that *fails* starts the next one at once instead of waiting out
    the delay (as gRPC's hedging does); the delay to the following attempt
    counts from then. At most *attempts* calls are started in all.

    **A delay that adapts.** With ``delay=trine.Percentile(95)`` the delay is
    the 95th percentile of the latencies the hedges using that
    :class:`~trine.Percentile` have seen (a fixed delay until it has
    ``min_samples`` of them); the winning attempt's latency is recorded in it.
    Keep the Percentile and pass the same one to every call.

    **A budget.** With ``budget=trine.RetryBudget(ratio=0.1)`` every call
    deposits one request and every further attempt must withdraw one: when
    the budget refuses, no more attempts start for that call (the ones running
    go on), so hedges stay within 10 % of the calls (plus the budget's
    ``min_per_second`` reserve) however slow the service becomes -- hedging
    never doubles the load of a struggling service. Share the budget with the
    :class:`~trine.Retry` objects that call the same service.

    For counts of hedges started, hedges that won and budget refusals, use a
    :class:`Hedge`.

    Args:
      fn: the async function to call.
      *args: positional arguments for every call of *fn*.
      delay: seconds between the start of one attempt and the next, ``>= 0``,
        or a :class:`~trine.Percentile` of the observed latency.
      attempts: the most calls to start in all, ``>= 1``.
      budget: a :class:`~trine.RetryBudget` (anything with ``deposit()`` and
        ``try_withdraw()``) that every attempt after the first must draw on,
        or ``None``.

    Returns:
      The value of the first attempt to return.

    Raises:
      TypeError: if *fn* is a coroutine object or not callable, or *delay*,
        *attempts* or *budget* has the wrong type, or if calling *fn* returns
        something that cannot be awaited (a programming error, never a failed
        attempt: the other attempts are cancelled and the error is raised bare).
      ValueError: if *delay* is negative or not finite, or *attempts* < 1.
      ExceptionGroup: if every attempt raised; it holds their exceptions in
        the order the attempts started.
    """
    check_async_callable("fn", fn)
    checked_delay = check_delay(delay)
    attempts = check_int("attempts", attempts, minimum=1)
    checked_budget = check_budget(budget)
    first, more = _attempts_of(fn, args)
    result: _T = await run_hedge(
        first,
        more,
        delay=checked_delay,
        attempts=attempts,
        budget=checked_budget,
        counters=None,
        name=fn,
    )
    return result


@attrs.frozen
class HedgeStatistics:
    """A snapshot of a :class:`Hedge`, from :meth:`Hedge.statistics`."""

    calls: int
    """Hedged calls made (each starts one first attempt)."""
    hedges_started: int
    """Attempts started after the first, in all calls (after a delay or a failure)."""
    hedges_won: int
    """Calls answered by an attempt other than the first: what hedging bought."""
    budget_refusals: int
    """Attempts the budget did not allow (each ends its call's hedging)."""
    delay: float
    """The delay a call made now would wait before its second attempt, in
    seconds (:data:`math.inf`: none would be started)."""


@final
class Hedge:
    """Hedged calls with one set of settings, and counts of what the hedging did.

    :func:`hedge` as an object you keep, so that it can count::

        hedging = trine.Hedge(
            delay=trine.Percentile(95, initial=0.05),
            budget=trine.RetryBudget(ratio=0.1, min_per_second=1),
        )
        reply = await hedging.call(fetch, url)
        hedging.statistics()   # calls, hedges started, hedges that won, budget refusals

    A Hedge has the ``call(fn, *args)`` shape, so it can be given wherever
    trine takes a guard with that shape (``policy=`` of a pipeline stage or of
    a service, ``Policy(retry=...)``).

    Args:
      delay: seconds between attempts, ``>= 0``, or a
        :class:`~trine.Percentile` of the observed latency (which the Hedge
        keeps, and its calls fill).
      attempts: the most calls of the function per hedged call, ``>= 1``.
      budget: a :class:`~trine.RetryBudget` every attempt after the first
        draws on, or ``None``.

    Raises:
      TypeError, ValueError: for an argument of the wrong type or out of range.
    """

    __slots__ = ("_counters", "attempts", "budget", "delay")

    delay: float | Percentile
    """The delay between attempts, or the Percentile it is read from."""
    attempts: int
    """The most attempts per call."""
    budget: HedgeBudget | None
    """The budget further attempts draw on."""

    def __init__(
        self,
        *,
        delay: float | Percentile,
        attempts: int = 2,
        budget: RetryBudget | None = None,
    ) -> None:
        self.delay = check_delay(delay)
        self.attempts = check_int("attempts", attempts, minimum=1)
        self.budget = check_budget(budget)
        self._counters = HedgeCounters()

    async def call(self, fn: Callable[..., Awaitable[_T]], /, *args: Any) -> _T:
        """``await trine.hedge(fn, *args, ...)`` with this Hedge's settings, counted.

        Raises:
          TypeError: if *fn* is a coroutine object or not callable, or returns
            something that cannot be awaited.
          ExceptionGroup: if every attempt raised.
        """
        check_async_callable("fn", fn)
        first, more = _attempts_of(fn, args)
        result: _T = await run_hedge(
            first,
            more,
            delay=self.delay,
            attempts=self.attempts,
            budget=self.budget,
            counters=self._counters,
            name=fn,
        )
        return result

    def statistics(self) -> HedgeStatistics:
        """Return a snapshot of the calls and hedges so far."""
        counters = self._counters
        delay = self.delay
        return HedgeStatistics(
            calls=counters.calls,
            hedges_started=counters.hedges_started,
            hedges_won=counters.hedges_won,
            budget_refusals=counters.budget_refusals,
            delay=delay if isinstance(delay, float) else delay.delay(),
        )

    def __repr__(self) -> str:
        counters = self._counters
        return (
            f"<trine.Hedge delay={self.delay!r} attempts={self.attempts}: "
            f"{counters.calls} calls, {counters.hedges_started} hedges, "
            f"{counters.hedges_won} won>"
        )
