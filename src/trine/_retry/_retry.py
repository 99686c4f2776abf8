"""What :class:`Retry` is: how to retry, and the loop that does it for one call."""

from __future__ import annotations

import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from types import CoroutineType, FunctionType, MethodType
from typing import Any, Literal, ParamSpec, TypeAlias, TypeVar, TypeVarTuple, final

import attrs
import trio

from .. import _created
from .._calls import describe_call
from .._hooks import Hook, RetryGaveUp, RetryScheduled, call_hooks, check_hooks
from .._util import (
    NotAwaitableError,
    check_async_callable,
    check_awaitable,
    check_int,
    check_number,
    exception_matcher,
)
from .._waits import deliberate
from ._attempt import RetryAttempt, _RetryIterator, _Run
from ._backoff import _DEFAULT_BACKOFF, Backoff, _check_rng
from ._budget import RetryBudget

__all__ = ["Retry", "RetryOn", "RetryStatistics"]

_T = TypeVar("_T")
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")

RetryOn: TypeAlias = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]
"""What :class:`Retry` accepts as ``on=``: an exception class, a tuple of
them, or a predicate that gets the exception and says whether to retry."""

# Types that are certainly callables and not coroutine objects (a Policy
# hands its inner layers over as partials): call() skips the full check.
_PLAIN_CALLABLES = frozenset({FunctionType, MethodType, functools.partial})


@attrs.frozen
class RetryStatistics:
    """What :meth:`Retry.statistics` reports, counted since the :class:`Retry` was created."""

    calls: int
    """Calls started (``call()``, decorated calls, ``async for`` loops)."""
    attempts: int
    """Attempts started, first attempts included."""
    retries: int
    """Attempts started after a failure (``attempts - calls``); a retry whose
    backoff sleep was cancelled is not counted."""
    give_ups: int
    """Calls that ended by re-raising an error: attempts exhausted, budget
    refused, timeout, or an error that is not retried. Cancellation is not a give-up."""
    budget_refusals: int
    """Retries the :class:`RetryBudget` refused."""


class _Counts:
    """What a Retry has done (mutable; see RetryStatistics for the meaning)."""

    # No count of attempts: every call makes one, and every retry one more.
    __slots__ = ("budget_refusals", "calls", "give_ups", "retries")

    def __init__(self) -> None:
        self.calls = 0
        self.retries = 0
        self.give_ups = 0
        self.budget_refusals = 0


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@final
@attrs.define(eq=False, init=False)
class Retry:
    """Run an async call again when it fails with a retryable error.

    Example::

        retry = trine.Retry(
            attempts=5,
            on=(httpx.TransportError, ServerBusy),
            backoff=trine.Backoff.exponential(initial=0.2, maximum=5.0),
            timeout=30.0,
        )
        response = await retry.call(client.get, url)

    The same object works three ways, with the same rules: ``await
    retry.call(fn, *args)``; as a decorator, ``@retry`` on an async function;
    and around a block, ``async for attempt in retry: with attempt: ...``
    (see :class:`RetryAttempt`).

    **Which errors are retried.** Only :class:`Exception` instances that match
    *on*. :exc:`trio.Cancelled`, :exc:`KeyboardInterrupt` and every other
    :class:`BaseException` propagate at once, unchanged, and so do errors that
    do not match *on*. An :class:`ExceptionGroup` matches a class (or tuple)
    if it is an instance itself or if **every** leaf is (as ``except*`` would
    catch the whole group); a predicate gets the exception as raised, groups
    included, and decides.

    **Giving up.** When no attempt is left, the budget refuses, or the next
    attempt would start at or after the timeout, the last error is re-raised
    unchanged (the same object, its traceback intact) with a note (PEP 678)
    such as ``trine.Retry: gave up after 3 attempts``. An error that is not
    retried gets no note.

    **Delays.** Before retry ``n`` (from 0) it waits
    ``backoff.delay(n, previous, rng)``. If the error has a ``retry_after``
    attribute (seconds, e.g. :class:`trine.CircuitOpenError` or an HTTP 429
    client's error), it waits at least that long, capped by ``backoff.maximum``.

    **Timeout.** *timeout* bounds all attempts and sleeps together, from the
    start of the call. A sleep never passes the deadline: if the next attempt
    would start at or after it, the last error is re-raised at once. An
    attempt still running at the deadline is cancelled and
    :exc:`trio.TooSlowError` is raised, chained from the previous attempt's
    error (``__cause__``) if there was one.

    Args:
      attempts: how many attempts in all, ``>= 1`` (1 means no retry).
      on: an :class:`Exception` subclass, a tuple of them, or a predicate
        ``(exc) -> bool``; default every :class:`Exception`.
      backoff: the delays between attempts; default ``Backoff.exponential()``.
      budget: a :class:`RetryBudget`, usually shared; ``None`` for no budget.
      timeout: seconds, ``> 0``, for all attempts together; ``None`` for no limit.
      rng: the :class:`random.Random` for jitter; default a fresh one. Seed it
        to replay delays.
      name: shown in notes and given to hooks.
      hooks: callables that receive a :class:`trine.RetryScheduled` before
        each backoff sleep and a :class:`trine.RetryGaveUp` when it gives up.

    Raises:
      TypeError, ValueError: for an argument out of range.
    """

    attempts: int = attrs.field(on_setattr=attrs.setters.frozen)
    on: RetryOn = attrs.field(on_setattr=attrs.setters.frozen)
    backoff: Backoff = attrs.field(on_setattr=attrs.setters.frozen)
    budget: RetryBudget | None = attrs.field(on_setattr=attrs.setters.frozen)
    timeout: float | None = attrs.field(on_setattr=attrs.setters.frozen)
    name: str | None = attrs.field(on_setattr=attrs.setters.frozen)
    hooks: tuple[Hook, ...] = attrs.field(on_setattr=attrs.setters.frozen, repr=False)
    _rng: random.Random = attrs.field(repr=False)
    _matches: Callable[[BaseException], bool] = attrs.field(repr=False)
    # In a plain object: the frozen fields give Retry a Python-level
    # __setattr__, which would make every counter update slow.
    _counts: _Counts = attrs.field(factory=lambda: _Counts(), init=False, repr=False)

    def __init__(
        self,
        attempts: int = 3,
        *,
        on: RetryOn = (Exception,),
        backoff: Backoff = _DEFAULT_BACKOFF,
        budget: RetryBudget | None = None,
        timeout: float | None = None,
        rng: random.Random | None = None,
        name: str | None = None,
        hooks: Sequence[Hook] | None = None,
    ) -> None:
        attempts = check_int("attempts", attempts)
        matches = exception_matcher("on", on, only_exceptions=True, allow_empty=False)
        if not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a trine.Backoff, got {backoff!r}")
        if budget is not None and not isinstance(budget, RetryBudget):
            raise TypeError(f"budget must be a trine.RetryBudget or None, got {budget!r}")
        if timeout is not None:
            timeout = check_number("timeout", timeout, exclusive=True)
        rng = random.Random() if rng is None else _check_rng(rng)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {name!r}")
        self.__attrs_init__(
            attempts,
            on,
            backoff,
            budget,
            timeout,
            name,
            check_hooks(hooks),
            rng,
            matches,
        )
        if _created.watchers:
            # hooks is frozen to users; the seam adds an exporter's hook once, here
            object.__setattr__(self, "hooks", _created.announce(self, self.hooks))

    # ----------------------------------------------------------------- the three styles

    async def call(self, fn: Callable[[*_Ts], Awaitable[_T]], *args: *_Ts) -> _T:
        """Call ``await fn(*args)``, retrying as configured, and return its result.

        Raises:
          TypeError: if *fn* is a coroutine object rather than a function.
          trio.TooSlowError: if the timeout passed during an attempt.
          Exception: the last attempt's error, when it gives up.
        """
        if type(fn) not in _PLAIN_CALLABLES:  # those need no check: hot path
            check_async_callable("fn", fn)
        counts = self._counts
        counts.calls += 1
        if self.budget is not None:
            self.budget.deposit()
        if self.timeout is None:
            # The success path without a timeout: no state object, one frame.
            try:
                coro = fn(*args)
                if type(coro) is not CoroutineType:  # one comparison on the hot path
                    coro = check_awaitable("fn", coro)
                return await coro
            except Exception as error:
                run = _Run(self.backoff.initial, None)
                delay = self._after_failure(error, run, fn, args)
                if delay is None:
                    raise
            return await self._attempt_loop(fn, args, run, delay)
        deadline = trio.current_time() + self.timeout
        run = _Run(self.backoff.initial, deadline)
        with trio.CancelScope(deadline=deadline):
            return await self._attempt_loop(fn, args, run, None)
        # Only reached when the deadline cancelled an attempt.
        raise self._timed_out(run, fn, args) from run.last_error

    async def _call_layer(
        self,
        layer: Callable[[Any, tuple[Any, ...]], Awaitable[_T]],
        fn: object,
        args: tuple[Any, ...],
    ) -> _T:
        """``call(layer, fn, args)`` without a timeout, for a :class:`~trine.Policy`,
        whose layer is one of its own functions: neither it nor what it returns
        needs a check (the layer that calls *fn* checks what fn returned)."""
        self._counts.calls += 1
        if self.budget is not None:
            self.budget.deposit()
        try:
            return await layer(fn, args)
        except Exception as error:
            run = _Run(self.backoff.initial, None)
            delay = self._after_failure(error, run, layer, (fn, args))
            if delay is None:
                raise
        return await self._attempt_loop(layer, (fn, args), run, delay)

    def __call__(self, fn: Callable[_P, Awaitable[_T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
        """Decorate an async function so that every call of it is retried.

        The wrapper keeps *fn*'s name, docstring and signature::

            @trine.Retry(attempts=3, on=ConnectionError)
            async def fetch(url: str) -> bytes: ...
        """
        check_async_callable("fn", fn)

        @functools.wraps(fn)
        async def retrying(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            if kwargs:
                return await self.call(functools.partial(fn, **kwargs), *args)
            return await self.call(fn, *args)

        return retrying

    def __aiter__(self) -> AsyncIterator[RetryAttempt]:
        """Retry a block: ``async for attempt in retry: with attempt: ...``.

        Each iteration gives a :class:`RetryAttempt`; run the block inside
        ``with attempt:``. A retryable error is swallowed by the ``with`` and
        the loop sleeps, then runs the block again; a success ends the loop;
        giving up re-raises the error from the ``with``::

            async for attempt in trine.Retry(attempts=3, on=OSError):
                with attempt:
                    data = await read_config()
        """
        return _RetryIterator(self)

    def statistics(self) -> RetryStatistics:
        """Return a :class:`RetryStatistics` with the counts so far."""
        return RetryStatistics(
            calls=self._counts.calls,
            attempts=self._counts.calls + self._counts.retries,
            retries=self._counts.retries,
            give_ups=self._counts.give_ups,
            budget_refusals=self._counts.budget_refusals,
        )

    # ----------------------------------------------------------------- machinery

    def _start(self) -> _Run:
        """Count a new call and return its state."""
        counts = self._counts
        counts.calls += 1
        if self.budget is not None:
            self.budget.deposit()
        deadline = None if self.timeout is None else trio.current_time() + self.timeout
        return _Run(self.backoff.initial, deadline)

    async def _attempt_loop(
        self,
        fn: Callable[..., Awaitable[_T]],
        args: tuple[Any, ...],
        run: _Run,
        delay: float | None,
    ) -> _T:
        """Run attempts until one succeeds or the Retry gives up; sleep *delay* first if given."""
        while True:
            if delay is not None:
                # Sleep outside the except block, so that a Cancelled raised
                # here does not get the attempt's error as its __context__.
                await trio.sleep(deliberate(delay))
                run.attempt += 1
                self._counts.retries += 1
            try:
                coro = fn(*args)
                if type(coro) is not CoroutineType:
                    coro = check_awaitable("fn", coro)
                return await coro
            except Exception as error:
                delay = self._after_failure(error, run, fn, args)
                if delay is None:
                    raise

    def _after_failure(
        self,
        error: Exception,
        run: _Run,
        fn: object = None,
        args: tuple[Any, ...] = (),
    ) -> float | None:
        """Decide after a failed attempt: the delay before the next, or None to give up.

        On giving up the note is added and the hooks are called here. A
        NotAwaitableError (fn is not an async function) is a programming
        error, not an attempt that failed: it passes untouched, as
        trio.Cancelled does, and is not a give-up.
        """
        if isinstance(error, NotAwaitableError):
            return None
        if not self._matches(error):
            self._give_up(error, run, "not_retryable", note=None, fn=fn, args=args)
            return None
        attempt = run.attempt
        prefix = "trine.Retry" if self.name is None else f"trine.Retry {self.name!r}"
        gave_up = f"{prefix}: gave up after {_plural(attempt, 'attempt')}"
        if attempt >= self.attempts:
            self._give_up(error, run, "attempts", note=gave_up, fn=fn, args=args)
            return None
        delay = self.backoff._delay(attempt - 1, run.previous, self._rng)
        retry_after = getattr(error, "retry_after", None)
        if (
            isinstance(retry_after, int | float)
            and not isinstance(retry_after, bool)
            and retry_after > delay  # NaN compares False: ignored
        ):
            delay = max(delay, min(float(retry_after), self.backoff.maximum))
        if run.deadline is not None and trio.current_time() + delay >= run.deadline:
            note = f"{gave_up}: the next would start after the {self.timeout:g} s timeout"
            self._give_up(error, run, "timeout", note=note, fn=fn, args=args)
            return None
        if self.budget is not None and not self.budget.try_withdraw():
            self._counts.budget_refusals += 1
            note = f"{gave_up}: the retry budget is exhausted"
            self._give_up(error, run, "budget", note=note, fn=fn, args=args)
            return None
        run.previous = delay
        run.last_error = error
        if self.hooks:
            name, call, item = self._described(fn, args)
            call_hooks(self.hooks, RetryScheduled(name, attempt, delay, error, call, item))
        return delay

    def _give_up(
        self,
        error: BaseException,
        run: _Run,
        reason: Literal["attempts", "budget", "timeout", "not_retryable"],
        *,
        note: str | None,
        fn: object = None,
        args: tuple[Any, ...] = (),
    ) -> None:
        if note is not None and note not in getattr(error, "__notes__", ()):
            error.add_note(note)
        self._counts.give_ups += 1
        if self.hooks:
            name, call, item = self._described(fn, args)
            call_hooks(self.hooks, RetryGaveUp(name, run.attempt, error, reason, call, item))

    def _described(
        self, fn: object, args: tuple[Any, ...]
    ) -> tuple[str | None, str | None, str | None]:
        """The name, call and item an event about ``fn(*args)`` carries."""
        if fn is None:  # the `async for attempt in retry` style: no function
            return self.name, None, None
        described = describe_call(fn, args)
        name = self.name
        if name is None and described.policy is not None:
            name = described.policy[0]  # the Policy's name, when the Retry has none
        return name, described.call, described.item

    def _timed_out(
        self, run: _Run, fn: object = None, args: tuple[Any, ...] = ()
    ) -> trio.TooSlowError:
        """The error for a deadline that cancelled a running attempt (hooks called)."""
        prefix = "trine.Retry" if self.name is None else f"trine.Retry {self.name!r}"
        error = trio.TooSlowError(
            f"{prefix}: the {self.timeout:g} s timeout passed during attempt {run.attempt}"
        )
        self._give_up(error, run, "timeout", note=None, fn=fn, args=args)
        return error
