"""Retrying failed calls: :class:`Retry`, :class:`Backoff` and :class:`RetryBudget`.

A :class:`Retry` is an immutable description of *how* to retry (how many
attempts, on which errors, how long to wait between them, within which total
time) plus counters of what it did. One :class:`Retry` can be shared by any
number of tasks. It runs a call three ways::

    retry = trine.Retry(attempts=5, on=httpx.TransportError)

    response = await retry.call(client.get, url)

    @retry
    async def fetch(url: str) -> httpx.Response: ...

    async for attempt in retry:
        with attempt:
            response = await client.get(url)

A :class:`RetryBudget` shared by many :class:`Retry` objects caps retries at a
fraction of the traffic, so that during an outage retries cannot multiply the
load on the service that is already failing (Finagle's design).
"""

from __future__ import annotations

import functools
import math
import random
from abc import ABCMeta
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from types import CoroutineType, FunctionType, MethodType, TracebackType
from typing import (
    Any,
    Literal,
    NoReturn,
    ParamSpec,
    TypeAlias,
    TypeVar,
    TypeVarTuple,
    final,
)

import attrs
import trio

from . import _created
from ._calls import describe_call
from ._hooks import Hook, RetryGaveUp, RetryScheduled, call_hooks, check_hooks
from ._util import (
    NotAwaitableError,
    check_async_callable,
    check_awaitable,
    check_choice,
    check_int,
    check_name,
    check_number,
    exception_matcher,
)
from ._waits import deliberate

__all__ = [
    "Backoff",
    "Retry",
    "RetryAttempt",
    "RetryBudget",
    "RetryBudgetStatistics",
    "RetryOn",
    "RetryStatistics",
]

_T = TypeVar("_T")
_P = ParamSpec("_P")
_Ts = TypeVarTuple("_Ts")

RetryOn: TypeAlias = type[Exception] | tuple[type[Exception], ...] | Callable[[Exception], bool]
"""What :class:`Retry` accepts as ``on=``: an exception class, a tuple of
them, or a predicate that gets the exception and says whether to retry."""

_Jitter: TypeAlias = Literal["full", "equal"] | None
_BackoffKind: TypeAlias = Literal["exponential", "decorrelated", "constant"]


class _NoPublicConstructor(ABCMeta):
    """Metaclass refusing ``Class(...)``; the class's factories use ``_create``.

    As ``trio._util.NoPublicConstructor`` does, for objects only trine builds.
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"trine.{cls.__qualname__} has no public constructor")

    def _create(cls: type[_T], *args: object, **kwargs: object) -> _T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]


# --------------------------------------------------------------------------- backoff


@final
@attrs.frozen
class Backoff(metaclass=_NoPublicConstructor):
    """How long to wait before each retry.

    Build one with :meth:`exponential`, :meth:`decorrelated` or
    :meth:`constant`. A backoff is an immutable value; it draws its randomness
    from the :class:`random.Random` it is given, so a seeded generator replays
    the same delays::

        backoff = trine.Backoff.exponential(initial=0.5, maximum=30.0)
        list(itertools.islice(backoff.delays(random.Random(1)), 4))

    The formulas are those of the AWS Architecture Blog's "Exponential Backoff
    And Jitter", with ``n`` counting retries from 0 and
    ``v = min(maximum, initial * multiplier ** n)``:

    ======================== =====================================================
    kind                     delay before retry ``n``
    ======================== =====================================================
    exponential, no jitter   ``v``
    exponential, ``"full"``  ``uniform(0, v)``
    exponential, ``"equal"`` ``v / 2 + uniform(0, v / 2)``
    decorrelated             ``min(maximum, uniform(initial, 3 * previous))``,
                             ``previous`` being the last delay (``initial`` at first)
    constant                 ``delay``
    ======================== =====================================================
    """

    kind: _BackoffKind
    """``"exponential"``, ``"decorrelated"`` or ``"constant"``."""
    initial: float
    """The base delay, in seconds (the delay itself for a constant backoff)."""
    maximum: float
    """No delay is ever longer (a ``retry_after`` hint is capped by it too)."""
    multiplier: float
    """Growth factor per retry (exponential only; ``1.0`` otherwise)."""
    jitter: _Jitter
    """``"full"``, ``"equal"`` or ``None`` (exponential only)."""

    @classmethod
    def exponential(
        cls,
        initial: float = 0.1,
        maximum: float = 10.0,
        multiplier: float = 2.0,
        jitter: _Jitter = "full",
    ) -> Backoff:
        """Delays growing by *multiplier* per retry from *initial* up to *maximum*, with jitter.

        Args:
          initial: the base delay in seconds, ``>= 0``.
          maximum: the cap in seconds, ``>= initial``.
          multiplier: the growth per retry, ``>= 1``.
          jitter: ``"full"`` (the default: ``uniform(0, v)``, which spreads
            clients best), ``"equal"`` (``v/2 + uniform(0, v/2)``, never
            shorter than half) or ``None`` (exactly ``v``).

        Raises:
          TypeError, ValueError: for an argument out of range.
        """
        initial = check_number("initial", initial)
        maximum = _check_maximum(maximum, initial)
        multiplier = check_number("multiplier", multiplier, minimum=1.0)
        jitter = check_choice("jitter", jitter, ("full", "equal", None))
        return cls._create("exponential", initial, maximum, multiplier, jitter)

    @classmethod
    def decorrelated(cls, initial: float = 0.1, maximum: float = 10.0) -> Backoff:
        """AWS's "decorrelated jitter": each delay is ``uniform(initial, 3 * previous)``, capped.

        Args:
          initial: the smallest delay in seconds, ``> 0``; also the first "previous".
          maximum: the cap in seconds, ``>= initial``.

        Raises:
          TypeError, ValueError: for an argument out of range.
        """
        initial = check_number("initial", initial, exclusive=True)
        maximum = _check_maximum(maximum, initial)
        return cls._create("decorrelated", initial, maximum, 1.0, None)

    @classmethod
    def constant(cls, delay: float) -> Backoff:
        """The same *delay* (seconds, ``>= 0``) before every retry.

        Raises:
          TypeError, ValueError: for a *delay* that is not a finite number ``>= 0``.
        """
        delay = check_number("delay", delay)
        return cls._create("constant", delay, delay, 1.0, None)

    def delay(self, retry: int, previous: float, rng: random.Random) -> float:
        """The delay before retry number *retry* (0 for the first retry).

        Args:
          retry: how many retries came before this one.
          previous: the delay before the previous retry (``initial`` for the
            first); only the decorrelated backoff uses it.
          rng: where the jitter comes from.
        """
        if self.kind == "constant":
            return self.initial
        if self.kind == "decorrelated":
            high = max(self.initial, 3.0 * previous)
            # Clamped so float rounding in uniform() can never leave the bounds.
            return min(self.maximum, high, max(self.initial, rng.uniform(self.initial, high)))
        try:
            ceiling = min(self.maximum, self.initial * self.multiplier**retry)
        except OverflowError:  # multiplier ** retry beyond float range
            ceiling = self.maximum
        if self.jitter == "full":
            return min(ceiling, rng.uniform(0.0, ceiling))
        if self.jitter == "equal":
            half = ceiling / 2.0
            return min(ceiling, half + rng.uniform(0.0, half))
        return ceiling

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Yield the delay before each retry, forever (*rng* defaults to a new generator)."""
        # Checked here, not on the first next(): a generator would check late.
        return self._delays(random.Random() if rng is None else _check_rng(rng))

    def _delays(self, rng: random.Random) -> Iterator[float]:
        previous = self.initial
        retry = 0
        while True:
            previous = self.delay(retry, previous, rng)
            yield previous
            retry += 1


def _check_maximum(maximum: object, initial: float) -> float:
    value = check_number("maximum", maximum)
    if value < initial:
        raise ValueError(f"maximum must be >= initial ({initial:g}), got {maximum!r}")
    return value


def _check_rng(rng: object) -> random.Random:
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {rng!r}")
    return rng


_DEFAULT_BACKOFF = Backoff.exponential()

# Types that are certainly callables and not coroutine objects (a Policy
# hands its inner layers over as partials): call() skips the full check.
_PLAIN_CALLABLES = frozenset({FunctionType, MethodType, functools.partial})


# --------------------------------------------------------------------------- budget


@attrs.frozen
class RetryBudgetStatistics:
    """What :meth:`RetryBudget.statistics` reports, counted over the current window."""

    requests: int
    """Calls (first attempts) deposited in the window."""
    retries: int
    """Retries withdrawn in the window."""
    balance: float
    """``ratio * requests + min_per_second * window - retries``: how many more
    retries the window allows now (a retry needs a balance of at least 1)."""
    refusals: int
    """Retries refused since the budget was created."""


_NEVER = -(2**63)  # the bucket number of a slot that was never used


@final
@attrs.define(eq=False, init=False)
class RetryBudget:
    """A cap on retries, as a share of the traffic, shared by many :class:`Retry` objects.

    Retries help when failures are rare and independent; during an outage they
    multiply the load on a service that is already failing (three attempts
    per call triple it). A budget stops that: every call deposits one
    request, every retry must withdraw one, and a retry is allowed only while
    the retries in the last *window* seconds stay within ::

        ratio * requests_in_window + min_per_second * window

    When it is not, the :class:`Retry` gives up at once and re-raises the
    call's error. The ``min_per_second`` reserve lets a quiet client still
    retry. This is Finagle's ``RetryBudget``; share one budget among all the
    :class:`Retry` objects that call the same service::

        budget = trine.RetryBudget(ratio=0.1)
        fetch_retry = trine.Retry(attempts=4, budget=budget)
        store_retry = trine.Retry(attempts=2, budget=budget)

    The window is kept as *buckets* counters of ``window / buckets`` seconds
    each (memory is O(buckets), not O(requests)). At a time ``t`` the window is
    the current bucket and the ``buckets - 1`` before it, so it covers more
    than the last ``window - window / buckets`` seconds and less than the last
    ``window`` seconds. The bound that holds exactly: whenever a retry is
    allowed at time ``t``, the retries in ``[t - window + window / buckets, t]``
    (this one included) are at most ``ratio`` times the requests in
    ``(t - window, t]`` plus ``min_per_second * window``.

    Time comes from :func:`trio.current_time`, so use a budget inside one
    ``trio.run``.

    Args:
      ratio: retries allowed per request, ``>= 0`` (0.2 allows 20% extra load).
      min_per_second: retries per second allowed whatever the traffic, ``>= 0``.
      window: the length of the window in seconds, ``> 0``.
      buckets: how many counters the window is kept in, ``>= 1``.
      name: a name for its metrics and events (a ``str`` or ``None``).

    Raises:
      TypeError, ValueError: for an argument out of range.
    """

    ratio: float = attrs.field(on_setattr=attrs.setters.frozen)
    min_per_second: float = attrs.field(on_setattr=attrs.setters.frozen)
    window: float = attrs.field(on_setattr=attrs.setters.frozen)
    buckets: int = attrs.field(on_setattr=attrs.setters.frozen)
    _width: float = attrs.field(repr=False)
    _bucket_ids: list[int] = attrs.field(repr=False)
    _requests: list[int] = attrs.field(repr=False)
    _retries: list[int] = attrs.field(repr=False)
    _refusals: int = attrs.field(default=0, repr=False)
    name: str | None = attrs.field(default=None)
    """The name given to the constructor (metrics and events carry it)."""

    def __init__(
        self,
        ratio: float = 0.2,
        min_per_second: float = 10.0,
        window: float = 10.0,
        *,
        buckets: int = 10,
        name: str | None = None,
    ) -> None:
        ratio = check_number("ratio", ratio)
        min_per_second = check_number("min_per_second", min_per_second)
        window = check_number("window", window, exclusive=True)
        buckets = check_int("buckets", buckets)
        self.__attrs_init__(
            ratio,
            min_per_second,
            window,
            buckets,
            window / buckets,
            [_NEVER] * buckets,
            [0] * buckets,
            [0] * buckets,
        )
        self.name = check_name(name)
        if _created.watchers:
            _created.announce(self, None)

    def _slot(self) -> tuple[int, int]:
        """The current bucket number and its slot, cleared if it held an old bucket."""
        bucket = math.floor(trio.current_time() / self._width)
        index = bucket % self.buckets
        if self._bucket_ids[index] != bucket:
            self._bucket_ids[index] = bucket
            self._requests[index] = 0
            self._retries[index] = 0
        return bucket, index

    def _totals(self, bucket: int) -> tuple[int, int]:
        oldest = bucket - self.buckets
        requests = retries = 0
        for index, bucket_id in enumerate(self._bucket_ids):
            if bucket_id > oldest:
                requests += self._requests[index]
                retries += self._retries[index]
        return requests, retries

    def deposit(self) -> None:
        """Count one request (a call's first attempt). :class:`Retry` calls this for you."""
        _, index = self._slot()
        self._requests[index] += 1

    def try_withdraw(self) -> bool:
        """Take one retry from the budget if the window allows it.

        Returns:
          ``True`` (and the retry is counted) if retries in the window plus
          this one stay within ``ratio * requests + min_per_second * window``;
          ``False`` (and a refusal is counted) otherwise.
        """
        bucket, index = self._slot()
        requests, retries = self._totals(bucket)
        if retries + 1 <= self.ratio * requests + self.min_per_second * self.window:
            self._retries[index] += 1
            return True
        self._refusals += 1
        return False

    def statistics(self) -> RetryBudgetStatistics:
        """Return a :class:`RetryBudgetStatistics` for the window at the current time."""
        bucket, _ = self._slot()
        requests, retries = self._totals(bucket)
        balance = self.ratio * requests + self.min_per_second * self.window - retries
        return RetryBudgetStatistics(requests, retries, balance, self._refusals)


# --------------------------------------------------------------------------- retry


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


@attrs.define(eq=False)
class _Run:
    """The state of one call across its attempts."""

    previous: float
    """The last backoff delay (for decorrelated jitter)."""
    deadline: float | None
    attempt: int = 1
    last_error: Exception | None = None


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
        delay = self.backoff.delay(attempt - 1, run.previous, self._rng)
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


@final
class RetryAttempt(metaclass=_NoPublicConstructor):
    """One attempt of an ``async for attempt in retry:`` loop; use it as ``with attempt:``.

    Leaving the ``with`` block with a retryable error swallows the error and
    the loop retries after the backoff; leaving it normally ends the loop;
    giving up lets the error out of the ``with`` (with its note). With a
    timeout, the block runs inside a :class:`trio.CancelScope` whose deadline
    is the call's; if it passes, the ``with`` raises :exc:`trio.TooSlowError`.
    """

    __slots__ = ("_iterator", "_number", "_scope")

    def __init__(self, iterator: _RetryIterator, number: int) -> None:
        self._iterator = iterator
        self._number = number
        self._scope: trio.CancelScope | None = None

    @property
    def number(self) -> int:
        """Which attempt this is, from 1."""
        return self._number

    def __repr__(self) -> str:
        return f"<trine.RetryAttempt number={self._number}>"

    def __enter__(self) -> None:
        iterator = self._iterator
        if iterator.entered:
            raise RuntimeError("a RetryAttempt can be entered only once")
        iterator.entered = True
        deadline = iterator.run.deadline
        if deadline is not None:
            self._scope = trio.CancelScope(deadline=deadline)
            self._scope.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        iterator = self._iterator
        run = iterator.run
        retry = iterator.retry
        scope, self._scope = self._scope, None
        if scope is not None and scope.__exit__(exc_type, exc, traceback):
            # The call's deadline cancelled the block.
            iterator.finished = True
            raise retry._timed_out(run) from run.last_error
        if exc is None or not isinstance(exc, Exception):
            # Success ends the loop; Cancelled and other BaseExceptions pass unchanged.
            iterator.finished = True
            return False
        if _awaited_a_non_awaitable(exc):
            iterator.finished = True
            raise NotAwaitableError(
                "the block of `async for attempt in retry:` awaited something that cannot be "
                f"awaited ({exc}): the function it calls must be defined with async def"
            ) from exc
        delay = retry._after_failure(exc, run)
        if delay is None:
            iterator.finished = True
            return False
        iterator.delay = delay
        return True


def _awaited_a_non_awaitable(error: Exception) -> bool:
    """Whether *error* is Python's own TypeError for ``await`` on something not awaitable.

    Raised by the ``await`` in the block itself (no deeper frame), with one of
    the interpreter's two messages; a TypeError from the called code is
    an ordinary failure.
    """
    if type(error) is not TypeError:
        return False
    traceback = error.__traceback__
    if traceback is None or traceback.tb_next is not None:
        return False
    message = str(error)
    return message.endswith("can't be used in 'await' expression") or message.startswith(
        "__await__() returned"
    )


@final
class _RetryIterator(AsyncIterator[RetryAttempt]):
    """What ``async for`` iterates: it starts the call, then sleeps between attempts."""

    __slots__ = ("delay", "entered", "finished", "retry", "run", "started")

    def __init__(self, retry: Retry) -> None:
        self.retry = retry
        self.run = _Run(retry.backoff.initial, None)
        self.started = False
        self.delay = 0.0
        self.entered = False
        self.finished = False

    async def __anext__(self) -> RetryAttempt:
        retry = self.retry
        if not self.started:
            self.started = True
            self.run = retry._start()
            return RetryAttempt._create(self, 1)
        if self.finished:
            raise StopAsyncIteration
        if not self.entered:
            self.finished = True
            raise RuntimeError(
                "the body of `async for attempt in retry:` must run inside `with attempt:`"
            )
        await trio.sleep(deliberate(self.delay))
        self.run.attempt += 1
        retry._counts.retries += 1
        self.entered = False
        return RetryAttempt._create(self, self.run.attempt)
