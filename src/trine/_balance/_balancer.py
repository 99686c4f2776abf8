"""Balancer: its life cycle, membership, calls, hedged calls and statistics.

The choice of an endpoint (:mod:`._choice`) and the books of each call
(:mod:`._records`) are its base classes, so a call reaches them through
``self`` as before; the health checks (:mod:`._health`) run as tasks.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import types
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar, TypeVarTuple, final

import trio
from trio.lowlevel import checkpoint_if_cancelled

from .._breaker import CircuitBreaker
from .._fan import HedgeCounters, Made, check_budget, check_delay, run_hedge
from .._percentile import Percentile
from .._retry import RetryBudget
from .._service import ServiceNursery
from .._util import (
    NotAwaitableError,
    check_async_callable,
    check_async_function,
    check_awaitable,
    check_choice,
    check_int,
    check_number,
    check_sync_callable,
    describe,
    exception_matcher,
)
from ._choice import _Choice
from ._ejection import OutlierEjection
from ._endpoint import _Endpoint
from ._health import check_health, sweep
from ._records import _Records
from ._statistics import BalancerStatistics, EndpointStatistics

__all__ = ["Balancer"]

_E = TypeVar("_E")
_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

Strategy: TypeAlias = Literal["round_robin", "weighted", "least_pending", "peak_ewma"]
_STRATEGIES: Final = ("round_robin", "weighted", "least_pending", "peak_ewma")

_CoroutineType: Final = types.CoroutineType
_PLAIN_CALLABLES: Final = frozenset({types.FunctionType, types.MethodType, functools.partial})
_current_time: Final = trio.current_time
_exp: Final = math.exp
_current_task: Final = trio.lowlevel.current_task

# The endpoints the current task's last failed calls went to, per balancer:
# the next call of the same task through that balancer avoids them if it can.
# The mark names its task because a new task starts with a copy of its
# parent's context: a mark inherited that way is the parent's, not the child's.
_avoid: ContextVar[tuple[object, trio.lowlevel.Task, frozenset[Hashable]] | None] = ContextVar(
    "trine_balancer_avoid", default=None
)


async def _awaiting(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


def _close_if_unstarted(awaitable: object) -> None:
    """Close a coroutine a refusing breaker never awaited, so Python does not warn."""
    if isinstance(awaitable, _CoroutineType) and (
        inspect.getcoroutinestate(awaitable) == inspect.CORO_CREATED
    ):
        awaitable.close()


# -- the balancer ------------------------------------------------------------------


def _check_where(where: object) -> Callable[[Any], object] | None:
    if where is None:
        return None
    checked: Callable[[Any], object] = check_sync_callable("where", where)
    return checked


def _check_weight(name: str, value: object) -> float:
    return check_number(name, value, exclusive=True)


@final
class Balancer(_Choice, _Records, Generic[_E]):
    """Spread calls over several endpoints, around the ones that are failing.

    ::

        balancer = trine.Balancer(["10.0.0.1", "10.0.0.2", "10.0.0.3"], strategy="peak_ewma")
        async with balancer:
            reply = await balancer.call(fetch, path)      # fetch(endpoint, path)

    Each :meth:`call` chooses one endpoint and awaits ``fn(endpoint, *args)``.

    **Strategies.**

    ``"round_robin"``
        Each endpoint in turn.
    ``"weighted"``
        Smooth weighted round robin (nginx's): an endpoint of weight 5 gets 5
        calls in 7 next to two of weight 1, spread out (``a a b a c a a``),
        never in a burst.
    ``"least_pending"``
        The endpoint with the fewest calls running (ties in turn).
    ``"peak_ewma"`` (the default)
        Power of two choices, as tower and Finagle do: pick two endpoints at
        random (from *rng*) and send the call to the cheaper, where the cost
        is the latency estimate times ``pending + 1``. The estimate is a
        *peak* EWMA: a slower answer replaces it at once, faster ones pull it
        down with a time constant of *decay* seconds, and it decays towards
        zero while an endpoint gets no answers, so a once-slow endpoint is
        tried again. It is never below the mean age of the calls still
        pending there (a hanging endpoint looks slower the longer it hangs),
        and a failure can only raise it (a fast error does not make a broken
        endpoint look fast). An endpoint with no answer yet costs nothing
        while idle (so it is tried) and is avoided while busy; one whose
        first call failed is taken to be as slow as the slowest endpoint.

    ``where=`` on a call restricts it to the endpoints a predicate accepts
    (capability routing: ``where=lambda ep: ep.has_gpu``); the strategy
    chooses among those.

    **Health.** An endpoint is *available* unless its breaker would refuse
    the call (``breaker=`` makes one :class:`~trine.CircuitBreaker` per
    endpoint), it is ejected (``ejection=``, see :class:`OutlierEjection`), or
    its last ``health_check`` failed. Only available endpoints are chosen.
    When no endpoint the call may use is available, the call is refused at
    once with :exc:`~trine.CircuitOpenError`, whose ``retry_after`` is the
    soonest any of them will be back; when there is no such endpoint at all,
    with :exc:`~trine.NoEndpointError`.

    **Membership.** :meth:`add` and :meth:`remove` work while calls run. A
    removed endpoint is never chosen again; the calls already running on it
    finish normally.

    **Retries elsewhere.** Put the retry *outside* the balancer::

        policy = trine.Policy(retry=trine.Retry(attempts=3))
        reply = await policy.call(balancer.call, fetch, path)

    A call that fails marks its endpoint in the calling task; that task's
    next call through this balancer avoids the endpoints its failed calls
    went to, as long as another available endpoint may take it (a success
    clears the mark). So each attempt of the retry goes to a different
    endpoint while there is one. The mark is the task's own: tasks it starts
    afterwards do not inherit it. A retry *inside* (``policy=`` here) retries
    on the same endpoint.

    **Hedging.** :meth:`hedged_call` sends a backup attempt to a *different*
    endpoint when the first is slow.

    Every call and the periodic health checks need the balancer open: use it
    in ``async with balancer:``, whose nursery runs the health checks.

    Args:
      endpoints: the endpoints to start with (hashable values: addresses,
        ``(host, port)`` tuples, frozen objects); more can be added later.
      strategy: ``"round_robin"``, ``"weighted"``, ``"least_pending"`` or
        ``"peak_ewma"``.
      weights: each endpoint's weight (``> 0``, default 1) for
        ``"weighted"``: a mapping, or a function ``(endpoint) -> weight``.
      breaker: a function ``(endpoint) -> trine.CircuitBreaker`` called once
        per endpoint as it joins; every call on the endpoint goes through its
        breaker.
      ejection: an :class:`OutlierEjection`, or ``None`` for none.
      health_check: an async function ``(endpoint) -> bool``, called for
        every endpoint every *check_interval* seconds in the balancer's
        nursery (and at once for one added); returning ``False``, raising, or
        taking longer than *check_interval* marks the endpoint unhealthy
        until a later check passes.
      check_interval: seconds between health checks, ``> 0``.
      decay: the peak EWMA's time constant, in seconds, ``> 0``.
      rng: the :class:`random.Random` that ``peak_ewma``'s two choices come
        from (seed it to replay a run).
      policy: a :class:`~trine.Policy` (or anything with ``async call(fn,
        *args)``) each call on an endpoint goes through, inside its breaker:
        ``policy.call(fn, endpoint, *args)``. A timeout here is per endpoint.
      name: shown in reprs and in the :exc:`~trine.CircuitOpenError` of a refusal.

    Raises:
      TypeError, ValueError: for an argument of the wrong type or out of range,
        or an endpoint given twice.
    """

    __slots__ = (
        "_breaker_factory",
        "_by_key",
        "_calls",
        "_check_interval",
        "_decay",
        "_draining",
        "_eject_matches",
        "_ejection",
        "_endpoints",
        "_health_check",
        "_hedges",
        "_name",
        "_next_sweep",
        "_nursery",
        "_open",
        "_policy",
        "_random",
        "_rerouted",
        "_service",
        "_strategy",
        "_weights",
    )

    def __init__(
        self,
        endpoints: Iterable[_E] = (),
        *,
        strategy: Strategy = "peak_ewma",
        weights: Mapping[_E, float] | Callable[[_E], float] | None = None,
        breaker: Callable[[_E], CircuitBreaker] | None = None,
        ejection: OutlierEjection | None = None,
        health_check: Callable[[_E], Awaitable[object]] | None = None,
        check_interval: float = 10.0,
        decay: float = 10.0,
        rng: random.Random | None = None,
        policy: Any = None,
        name: str | None = None,
    ) -> None:
        given: object = endpoints
        if isinstance(given, str | bytes) or not isinstance(given, Iterable):
            if isinstance(given, types.CoroutineType):
                given.close()
            raise TypeError(
                f"endpoints must be an iterable of endpoints (a list of addresses, say), "
                f"got {given!r}"
            )
        self._strategy = check_choice("strategy", strategy, _STRATEGIES)
        if weights is not None and not isinstance(weights, Mapping):
            check_sync_callable("weights", weights)
        self._weights = weights
        self._breaker_factory = None if breaker is None else check_sync_callable("breaker", breaker)
        if ejection is not None and not isinstance(ejection, OutlierEjection):
            raise TypeError(f"ejection must be a trine.OutlierEjection or None, got {ejection!r}")
        self._ejection = ejection
        self._eject_matches = (
            None
            if ejection is None
            else exception_matcher("record", ejection.record, only_exceptions=True)
        )
        self._health_check = (
            None if health_check is None else check_async_function("health_check", health_check)
        )
        self._check_interval = check_number("check_interval", check_interval, exclusive=True)
        self._decay = check_number("decay", decay, exclusive=True)
        if rng is None:
            rng = random.Random()
        elif not isinstance(rng, random.Random):
            raise TypeError(f"rng must be a random.Random or None, got {rng!r}")
        self._random = rng.random
        if policy is not None and (
            isinstance(policy, type)
            or not inspect.iscoroutinefunction(getattr(policy, "call", None))
        ):
            raise TypeError(f"policy must have an async call(fn, *args) method, got {policy!r}")
        self._policy = policy
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {name!r}")
        self._name = name
        self._service = ServiceNursery("Balancer")
        self._nursery: trio.Nursery | None = None
        self._open = False
        self._endpoints: list[_Endpoint] = []
        self._by_key: dict[Any, _Endpoint] = {}
        self._draining: list[_Endpoint] = []
        self._cursor = 0
        self._next_sweep = math.inf
        self._calls = 0
        self._refusals = 0
        self._rerouted = 0
        self._hedges = HedgeCounters()
        for endpoint in given:
            self.add(endpoint)

    def __repr__(self) -> str:
        name = "" if self._name is None else f" {self._name!r}"
        return (
            f"<trine.Balancer{name} {self._strategy} at {id(self):#x}, {self._service.state}, "
            f"{len(self._endpoints)} endpoints>"
        )

    # -------------------------------------------------------------- life cycle

    async def __aenter__(self) -> Balancer[_E]:
        nursery = self._nursery = await self._service.open()
        self._open = True
        if self._health_check is not None:
            nursery.start_soon(sweep, self, nursery, name="trine.Balancer health checks")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        nursery, self._nursery = self._nursery, None
        assert nursery is not None
        self._open = False
        return await self._service.close(nursery, exc_type, exc, tb)

    # -------------------------------------------------------------- membership

    @property
    def endpoints(self) -> tuple[_E, ...]:
        """The endpoints now, in the order they were added."""
        return tuple(endpoint.key for endpoint in self._endpoints)

    @property
    def strategy(self) -> str:
        """The strategy that chooses the endpoints."""
        return self._strategy

    def add(self, endpoint: _E, *, weight: float | None = None) -> None:
        """Add *endpoint*: the next calls may go to it (a health check of it starts now).

        Args:
          endpoint: a hashable endpoint not in the balancer already.
          weight: its weight for ``"weighted"``, ``> 0``; by default what
            ``weights=`` says, or 1.

        Raises:
          TypeError: if *endpoint* is not hashable, or *weight* is not a number.
          ValueError: if *endpoint* is in the balancer already, or *weight* is not ``> 0``.
        """
        try:
            known = endpoint in self._by_key
        except TypeError:
            raise TypeError(f"endpoint must be hashable, got {endpoint!r}") from None
        if known:
            raise ValueError(f"endpoint {endpoint!r} is in the balancer already")
        weight = self._weight_of(endpoint) if weight is None else _check_weight("weight", weight)
        breaker: CircuitBreaker | None = None
        if self._breaker_factory is not None:
            made: object = self._breaker_factory(endpoint)
            if not isinstance(made, CircuitBreaker):
                raise TypeError(
                    f"breaker must return a trine.CircuitBreaker, got {describe(made)} "
                    f"for {endpoint!r}"
                )
            breaker = made
        state = _Endpoint(endpoint, weight, breaker)
        self._endpoints.append(state)
        self._by_key[endpoint] = state
        if self._open and self._health_check is not None and self._nursery is not None:
            state.checking = True
            self._nursery.start_soon(check_health, self, state, name="trine.Balancer health check")

    def _weight_of(self, endpoint: _E) -> float:
        weights = self._weights
        if weights is None:
            return 1.0
        if isinstance(weights, Mapping):
            return _check_weight("weights", weights.get(endpoint, 1.0))
        return _check_weight("weights", weights(endpoint))

    def remove(self, endpoint: _E) -> None:
        """Take *endpoint* out: no call goes to it any more; the ones running finish.

        Raises:
          TypeError: if *endpoint* is not hashable.
          ValueError: if *endpoint* is not in the balancer.
        """
        try:
            state = self._by_key.pop(endpoint)
        except TypeError:
            raise TypeError(f"endpoint must be hashable, got {endpoint!r}") from None
        except KeyError:
            raise ValueError(f"endpoint {endpoint!r} is not in the balancer") from None
        self._endpoints.remove(state)
        state.removed = True
        if state.pending:
            self._draining.append(state)

    # ------------------------------------------------------------------- calls

    def _not_open(self) -> Exception:
        if self._service.state == "new":
            return self._service.not_open()
        # Closed, or closing: the block has ended either way.
        return trio.ClosedResourceError("this Balancer is closed: its async with ended")

    def _check_open(self, fn: object) -> None:
        if not self._open:
            raise self._not_open()
        if type(fn) not in _PLAIN_CALLABLES:
            check_async_callable("fn", fn)

    async def call(
        self,
        fn: Callable[[_E, *_Ts], Awaitable[_T]],
        /,
        *args: *_Ts,
        where: Callable[[_E], object] | None = None,
    ) -> _T:
        """Choose an available endpoint and return ``await fn(endpoint, *args)``.

        The call goes through the endpoint's breaker (if it has one) and the
        balancer's ``policy`` (if any). Its latency and outcome update the
        endpoint's statistics, latency estimate and failure run; a failure
        also makes this task's next call avoid the endpoint when it can (see
        *Retries elsewhere* above).

        Args:
          fn: an async function taking the endpoint first.
          *args: the rest of its positional arguments.
          where: a plain function ``(endpoint) -> bool``: only endpoints it
            accepts may take this call.

        Returns:
          what *fn* returned.

        Raises:
          TypeError: if *fn* is not an async function or *where* not a plain one.
          RuntimeError: outside the balancer's ``async with``.
          trio.ClosedResourceError: after it.
          CircuitOpenError: at once, if every endpoint the call may use is
            open, ejected or unhealthy; ``retry_after`` is the soonest one is back.
          NoEndpointError: at once, if the balancer has no endpoint the call may use.
          Exception: whatever *fn* raised, unchanged.
        """
        if not self._open:
            raise self._not_open()
        if type(fn) not in _PLAIN_CALLABLES:
            check_async_callable("fn", fn)
        if where is not None:
            where = _check_where(where)
        await checkpoint_if_cancelled()
        token = _avoid.get()
        avoid = (
            token[2]
            if token is not None and token[0] is self and token[1] is _current_task()
            else None
        )
        now = _current_time()
        endpoint = self._choose(now, where, avoid, None)
        if endpoint is None:
            await self._refuse(now, where)
        self._calls += 1
        if avoid is not None and endpoint.key not in avoid:
            self._rerouted += 1
        # _begin(endpoint, now), inlined
        endpoint.pending += 1
        endpoint.started += now
        endpoint.calls += 1
        policy = self._policy
        try:
            coro = (
                fn(endpoint.key, *args) if policy is None else policy.call(fn, endpoint.key, *args)
            )
            if type(coro) is not _CoroutineType:
                coro = check_awaitable("fn", coro)
        except NotAwaitableError:
            self._forget(endpoint, now)
            raise
        except BaseException as error:  # fn raised before returning its coroutine
            self._finish(endpoint, now, error)
            self._failed(avoid, endpoint.key, error)
            raise
        breaker = endpoint.breaker
        awaited = coro if breaker is None else breaker.call(_awaiting, coro)
        try:
            result = await awaited
        except BaseException as error:
            _close_if_unstarted(coro)
            self._finish(endpoint, now, error)
            self._failed(avoid, endpoint.key, error)
            raise
        self._succeeded(endpoint, now)
        if token is not None:
            _avoid.set(None)
        return result

    def _failed(
        self, avoid: frozenset[Hashable] | None, key: Hashable, error: BaseException
    ) -> None:
        """Remember a failed endpoint for this task's next call (a retry: elsewhere)."""
        if isinstance(error, Exception) and not isinstance(error, NotAwaitableError):
            keys = frozenset((key,)) if avoid is None else avoid | {key}
            _avoid.set((self, _current_task(), keys))

    async def hedged_call(
        self,
        fn: Callable[[_E, *_Ts], Awaitable[_T]],
        /,
        *args: *_Ts,
        delay: float | Percentile,
        attempts: int = 2,
        where: Callable[[_E], object] | None = None,
        budget: RetryBudget | None = None,
    ) -> _T:
        """Like :meth:`call`, but send a backup attempt to *another* endpoint if the first is slow.

        The first attempt goes where :meth:`call` would send it. If it has
        not answered after *delay* seconds (or fails), another attempt starts
        on a different available endpoint, chosen by the strategy among the
        endpoints not tried yet; and so on, up to *attempts* in all, while
        untried endpoints remain. The first attempt to return wins; the others
        are cancelled and have finished before this returns. With
        ``delay=trine.Percentile(95)`` the delay follows the observed latency;
        with ``budget=trine.RetryBudget(...)`` backup attempts stay within its
        share of the calls (see :func:`trine.hedge`).

        Args:
          fn: an async function taking the endpoint first.
          *args: the rest of its positional arguments.
          delay: seconds between attempts, ``>= 0``, or a :class:`~trine.Percentile`.
          attempts: the most attempts, each on its own endpoint, ``>= 1``.
          where: a plain function ``(endpoint) -> bool`` restricting the endpoints.
          budget: a :class:`~trine.RetryBudget` every attempt after the first
            draws on, or ``None``.

        Returns:
          what the winning attempt's *fn* returned.

        Raises:
          TypeError, ValueError: for a bad argument.
          CircuitOpenError, NoEndpointError: at once, as :meth:`call` raises them.
          ExceptionGroup: if every attempt raised; their exceptions in start order.
        """
        self._check_open(fn)
        checked_delay = check_delay(delay)
        attempts = check_int("attempts", attempts, minimum=1)
        checked_budget = check_budget(budget)
        if where is not None:
            where = _check_where(where)
        await checkpoint_if_cancelled()
        token = _avoid.get()
        avoid = (
            token[2]
            if token is not None and token[0] is self and token[1] is _current_task()
            else None
        )
        now = _current_time()
        endpoint = self._choose(now, where, avoid, None)
        if endpoint is None:
            await self._refuse(now, where)
        self._calls += 1
        if avoid is not None and endpoint.key not in avoid:
            self._rerouted += 1
        tried: set[Hashable] = {endpoint.key}
        first = self._attempt(endpoint, now, fn, args, where, tried)

        def more() -> Made | None:
            moment = _current_time()
            following = self._choose(moment, where, None, tried)
            if following is None:
                return None
            tried.add(following.key)
            return self._attempt(following, moment, fn, args, where, tried)

        misuse: BaseException | None = None
        try:
            result: _T = await run_hedge(
                first,
                more,
                delay=checked_delay,
                attempts=attempts,
                budget=checked_budget,
                counters=self._hedges,
                name=fn,
            )
        except ExceptionGroup as group:
            wrong, _ = group.split(NotAwaitableError)
            if wrong is None:
                keys = frozenset(tried) if avoid is None else avoid | tried
                _avoid.set((self, _current_task(), keys))
                raise
            misuse = wrong.exceptions[0]  # a programming error, not a failed attempt
        if misuse is not None:
            raise misuse  # bare, outside the except clause, as hedge() raises it
        if token is not None:
            _avoid.set(None)
        return result

    def _attempt(
        self,
        endpoint: _Endpoint,
        now: float,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        where: Callable[[Any], object] | None,
        tried: set[Hashable],
    ) -> Made:
        """One hedged attempt, counted as pending on *endpoint* from now (the choice)."""
        self._begin(endpoint, now)
        run = self._run_attempt(endpoint, now, fn, args, where, tried)
        return Made(run, lambda: self._forget(endpoint, now))

    async def _run_attempt(
        self,
        endpoint: _Endpoint,
        start: float,
        fn: Callable[..., Awaitable[_T]],
        args: tuple[Any, ...],
        where: Callable[[Any], object] | None,
        tried: set[Hashable],
    ) -> _T:
        """The task of one hedged attempt: call *fn* on *endpoint*, or another if it went."""
        now = _current_time()
        if endpoint.removed or not self._available(endpoint, now):
            # Removed, or taken out, between the choice and this task's first step:
            # no call may go to it now, so choose again among the untried.
            self._forget(endpoint, start)
            replacement = self._choose(now, where, None, tried)
            if replacement is None:
                raise self._refusal(now, where)
            tried.add(replacement.key)
            endpoint = replacement
            start = now
            self._begin(endpoint, start)
        policy = self._policy
        try:
            coro = (
                fn(endpoint.key, *args) if policy is None else policy.call(fn, endpoint.key, *args)
            )
            if type(coro) is not _CoroutineType:
                coro = check_awaitable("fn", coro)
        except NotAwaitableError:
            self._forget(endpoint, start)
            raise
        except BaseException as error:  # fn raised before returning its coroutine
            self._finish(endpoint, start, error)
            raise
        breaker = endpoint.breaker
        awaited = coro if breaker is None else breaker.call(_awaiting, coro)
        try:
            result: _T = await awaited
        except BaseException as error:
            _close_if_unstarted(coro)
            self._finish(endpoint, start, error)
            raise
        self._finish(endpoint, start, None)
        return result

    # -------------------------------------------------------------- statistics

    def _state_of(self, endpoint: _Endpoint, now: float) -> tuple[str, float]:
        if endpoint.removed:
            return "removed", 0.0
        until = endpoint.ejected_until
        if until is not None and now < until:
            return "ejected", until - now
        if endpoint.down:
            return "unhealthy", 0.0
        breaker = endpoint.breaker
        if breaker is not None and not self._breaker_admits(breaker):
            return breaker.state.value, 0.0
        return "available", 0.0

    def statistics(self) -> BalancerStatistics[_E]:
        """Return a snapshot: per endpoint, and the balancer's calls and hedges."""
        now = _current_time()
        rows = []
        for endpoint in [*self._endpoints, *self._draining]:
            state, ejected_for = self._state_of(endpoint, now)
            ewma = endpoint.ewma
            rows.append(
                EndpointStatistics(
                    endpoint=endpoint.key,
                    state=state,
                    pending=endpoint.pending,
                    calls=endpoint.calls,
                    failures=endpoint.failures,
                    latency=None
                    if ewma is None
                    else ewma * _exp((endpoint.stamp - now) / self._decay),
                    weight=endpoint.weight,
                    ejections=endpoint.ejections,
                    ejected_for=ejected_for,
                )
            )
        hedges = self._hedges
        return BalancerStatistics(
            strategy=self._strategy,
            endpoints=tuple(rows),
            calls=self._calls,
            refusals=self._refusals,
            rerouted=self._rerouted,
            hedged_calls=hedges.calls,
            hedges_started=hedges.hedges_started,
            hedges_won=hedges.hedges_won,
            budget_refusals=hedges.budget_refusals,
        )
