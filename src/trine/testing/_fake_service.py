"""FakeService: a flaky service scripted by call number, by fake time and by argument."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from typing import Any, Literal, TypeAlias, cast, final

import attrs
import trio

from .._util import check_number, check_sync_callable, check_sync_result, close_unawaited

__all__ = [
    "FakeCall",
    "FakeRequest",
    "FakeScript",
    "FakeService",
    "FakeServiceError",
    "FakeServiceStatistics",
]


class FakeServiceError(ConnectionError):
    """The error a :class:`FakeService` raises for a failing call, by default.

    A :exc:`ConnectionError`, as a real network failure would be, so code
    that catches ``OSError`` treats it as one.

    Attributes:
      call_number: which call failed (from 1).
      retry_after: seconds the service asks the caller to wait (as an HTTP 503
        ``Retry-After`` would), or ``None``. :class:`~trine.Retry` honours it.
    """

    def __init__(self, call_number: int, retry_after: float | None = None) -> None:
        super().__init__(call_number, retry_after)
        self.call_number = call_number
        self.retry_after = retry_after

    def __str__(self) -> str:
        text = f"fake service call {self.call_number} failed"
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g} s"
        return text


@attrs.frozen
class FakeRequest:
    """A call to a :class:`FakeService` as it starts: what its script functions receive."""

    number: int
    """The call's number, from 1, in the order calls started."""
    args: tuple[Any, ...]
    """The positional arguments it was given."""
    start: float
    """:func:`trio.current_time` when it started."""
    key: Hashable
    """What the service's ``key`` made of the arguments (by default the first, or ``None``)."""
    key_number: int
    """Its number, from 1, among the calls with the same :attr:`key`."""


@attrs.frozen
class FakeCall:
    """The record of one finished call to a :class:`FakeService`."""

    number: int
    """The call's number, from 1, in the order calls started."""
    args: tuple[Any, ...]
    """The positional arguments it was given."""
    start: float
    """:func:`trio.current_time` when it started."""
    end: float
    """:func:`trio.current_time` when it returned, raised or was cancelled."""
    outcome: Literal["ok", "error", "cancelled"]
    """How it ended."""
    error: BaseException | None
    """The exception it raised (``None`` for ``"ok"`` and ``"cancelled"``)."""
    key: Hashable = None
    """Its :attr:`FakeRequest.key`."""


@attrs.frozen
class FakeServiceStatistics:
    """Counters of a :class:`FakeService`, from :meth:`FakeService.statistics`."""

    calls: int
    """Calls started."""
    successes: int
    """Calls that returned."""
    failures: int
    """Calls that raised the scripted error."""
    cancelled: int
    """Calls cancelled before they finished."""
    in_flight: int
    """Calls running now."""
    peak_concurrency: int
    """The most calls that were ever running at once."""


Latency: TypeAlias = float | Callable[[FakeRequest], float]
"""Seconds a call takes: a number, or a function ``(request) -> seconds``."""


# -- one script: the rules a service (or one argument of it) follows --------------


def _check_latency(value: object) -> float | Callable[[FakeRequest], float] | None:
    if value is None:
        return None
    if not callable(value):
        return check_number("latency", value)
    function = check_sync_callable("latency", value)
    if _takes_two_positional(function):
        # The first form, (call_number, start_time), still works.
        def from_request(request: FakeRequest) -> float:
            seconds: float = function(request.number, request.start)
            return seconds

        return from_request
    latency: Callable[[FakeRequest], float] = function
    return latency


def _takes_two_positional(function: Callable[..., object]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: the one-argument form
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) == 2


def _check_fail_calls(value: object) -> Callable[[int], bool]:
    if callable(value):
        predicate: Callable[[int], bool] = check_sync_callable("fail_calls", value)
        return predicate
    if isinstance(value, Collection) and not isinstance(value, str | bytes):
        numbers: frozenset[object] = frozenset(value)
        for number in numbers:
            if isinstance(number, bool) or not isinstance(number, int):
                raise TypeError(f"fail_calls must contain only ints, got {number!r}")
            if number < 1:
                raise ValueError(f"fail_calls must contain call numbers >= 1, got {number!r}")
        return numbers.__contains__
    raise TypeError(
        f"fail_calls must be a collection of call numbers or a predicate, got {value!r}"
    )


def _check_outages(value: object) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        close_unawaited(value)  # a coroutine given by mistake: no "never awaited" warning too
        raise TypeError(f"outages must be an iterable of (start, end) pairs, got {value!r}")
    outages = []
    for outage in value:
        if not (isinstance(outage, tuple) and len(outage) == 2):
            raise TypeError(f"outages must contain (start, end) pairs, got {outage!r}")
        start = check_number("outage start", outage[0], minimum=-math.inf)
        end = check_number("outage end", outage[1], minimum=-math.inf, allow_inf=True)
        if end <= start:
            raise ValueError(f"outages must have start < end, got {outage!r}")
        outages.append((start, end))
    return tuple(outages)


def _check_optional_function(name: str, value: object) -> Callable[..., Any] | None:
    if value is None:
        return None
    if not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r}")
    return check_sync_callable(name, value)


@attrs.frozen
class _Rules:
    """One script, validated: what FakeService and FakeScript both hold."""

    latency: float | Callable[[FakeRequest], float] | None
    fails_number: Callable[[int], bool]
    outages: tuple[tuple[float, float], ...]
    fail: Callable[[FakeRequest], object] | None
    error: Callable[[FakeRequest], BaseException] | None
    retry_after: float | None

    @classmethod
    def build(
        cls,
        latency: object,
        fail_calls: object,
        outages: object,
        fail: object,
        error: object,
        retry_after: object,
    ) -> _Rules:
        return cls(
            latency=_check_latency(latency),
            fails_number=_check_fail_calls(fail_calls),
            outages=_check_outages(outages),
            fail=_check_optional_function("fail", fail),
            error=_check_optional_function("error", error),
            retry_after=None if retry_after is None else check_number("retry_after", retry_after),
        )

    def fails(self, number: int, request: FakeRequest) -> bool:
        """Whether these rules fail *request*, whose number under them is *number*."""
        if self.fails_number(number):
            return True
        start = request.start
        if any(begin <= start < end for begin, end in self.outages):
            return True
        if self.fail is None:
            return False
        answer = check_sync_result("fail", self.fail(request))
        return bool(answer)


_SCRIPT_FIELDS = ("latency", "fail_calls", "outages", "fail", "error", "retry_after")
"""The fields of a FakeService that make up its script (its rules)."""


def _script(values: Mapping[str, object]) -> tuple[_Rules, dict[str, object]]:
    """The rules of a service's script fields *values*, checked, and what each field keeps.

    A collection of call numbers is kept as a frozenset and the outages as a tuple, so
    the fields show what the service follows and cannot be changed in place unseen.
    """
    if values["latency"] is None:
        raise TypeError("latency must be a number or a function, got None")
    rules = _Rules.build(*(values[name] for name in _SCRIPT_FIELDS))
    latency, fail_calls = values["latency"], values["fail_calls"]
    if not callable(fail_calls):
        fail_calls = frozenset(cast("Collection[int]", fail_calls))  # checked by _Rules.build
    kept = {
        "latency": latency if callable(latency) else rules.latency,
        "fail_calls": fail_calls,
        "outages": rules.outages,
        "fail": values["fail"],
        "error": values["error"],
        "retry_after": rules.retry_after,
    }
    return rules, kept


def _check_scripts(value: object) -> dict[Hashable, FakeScript]:
    if not isinstance(value, Mapping):
        raise TypeError(f"scripts must be a mapping of keys to FakeScripts, got {value!r}")
    for key, script in value.items():
        if not isinstance(script, FakeScript):
            raise TypeError(f"scripts must map keys to FakeScripts, got {script!r} for {key!r}")
    return dict(value)


def _rescript(service: FakeService, attribute: attrs.Attribute[Any], value: object) -> object:
    """``on_setattr`` of a script field: check the script as the constructor does, and
    make the calls that start from now on follow it."""
    values = {name: getattr(service, name) for name in _SCRIPT_FIELDS}
    values[attribute.name] = value
    rules, kept = _script(values)
    object.__setattr__(service, "_rules", rules)
    return kept[attribute.name]


def _set_scripts(service: FakeService, attribute: attrs.Attribute[Any], value: object) -> object:
    return _check_scripts(value)


def _set_key(service: FakeService, attribute: attrs.Attribute[Any], value: object) -> object:
    return check_sync_callable("key", value)


def _seconds(latency: float | Callable[[FakeRequest], float], request: FakeRequest) -> float:
    if not callable(latency):
        return latency
    return check_number("latency", check_sync_result("latency", latency(request)))


@final
@attrs.frozen(kw_only=True)
class FakeScript:
    """How a :class:`FakeService` treats the calls with one argument (one ``key``).

    Given in ``FakeService(scripts={key: FakeScript(...)})``. Its rules *add
    to* the service's: a call with this key fails if the service's rules fail
    it **or** these do; *latency*, *error* and *retry_after*, when
    given, replace the service's for these calls. Call numbers in
    *fail_calls* count only the calls with this key (``{1, 2}``: the first
    two calls for this argument fail)::

        service = FakeService(
            latency=0.1,
            scripts={
                "/slow": FakeScript(latency=2.0),
                "/flaky": FakeScript(fail_calls={1, 2}),
                "/down": FakeScript(outages=[(0.0, 30.0)]),
            },
        )

    Args:
      latency: seconds these calls take, or a function ``(request) -> seconds``
        of the :class:`FakeRequest`; ``None``: the service's.
      fail_calls: the numbers (from 1, among the calls with this key) that
        fail, or a predicate ``(key_number) -> bool``.
      outages: ``(start, end)`` intervals of fake time; a call with this key
        that starts inside one fails.
      fail: a predicate ``(request) -> bool``; a call it answers true for fails.
      error: builds the exception for a failing call, ``(request) -> exception``;
        ``None``: the service's.
      retry_after: the ``retry_after`` of the default error; ``None``: the service's.

    Raises:
      TypeError, ValueError: for an invalid argument, as :class:`FakeService` does.
    """

    latency: Latency | None = None
    fail_calls: Collection[int] | Callable[[int], bool] = ()
    outages: Iterable[tuple[float, float]] = ()
    fail: Callable[[FakeRequest], object] | None = None
    error: Callable[[FakeRequest], BaseException] | None = None
    retry_after: float | None = None
    _rules: _Rules = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        rules = _Rules.build(
            self.latency,
            self.fail_calls,
            self.outages,
            self.fail,
            self.error,
            self.retry_after,
        )
        object.__setattr__(self, "_rules", rules)


def _first_argument(*args: object) -> Hashable:
    if not args:
        return None
    first = args[0]
    try:
        hash(first)
    except TypeError:  # a dict or a list: no key, rather than a failed call
        return None
    return first


@final
@attrs.define(eq=False)
class FakeService:
    """A flaky service for tests, scripted by call number, by fake time and by argument.

    Each call sleeps for its *latency* on the Trio clock, then either returns
    its call number or raises. A call fails if its
    number is in *fail_calls*, if it **starts** inside one of the *outages*
    (``[start, end)`` intervals of :func:`trio.current_time`), if *fail*
    answers true for it, or if the :class:`FakeScript` for its argument says
    so. Every finished call is recorded in :attr:`calls`, with its arguments,
    start, end and outcome.

    A flaky service, failing its second and third calls::

        service = FakeService(latency=0.1, fail_calls={2, 3})

        assert await service.call("GET /") == 1      # takes 0.1 s
        with pytest.raises(FakeServiceError):
            await service.call("GET /")              # call 2 fails after 0.1 s
        assert service.calls[0].args == ("GET /",)

    A slow endpoint, by argument (a function of the :class:`FakeRequest`)::

        service = FakeService(latency=lambda call: 2.0 if call.args[0] == "/report" else 0.05)

    An outage that recovers, and one argument that is always broken::

        service = FakeService(
            latency=0.2,
            outages=[(10.0, 40.0)],                  # calls starting in [10, 40) fail
            scripts={"/legacy": FakeScript(fail=lambda call: True)},
        )

    The script may be changed mid-test by assigning its fields (*latency*,
    *fail_calls*, *outages*, *fail*, *error*, *retry_after*, *scripts*,
    *key*): the value is checked as the constructor checks it, and the calls
    that start after it follow it (a call already running keeps the script it
    started under). To take the service down now::

        service.outages = [(trio.current_time(), math.inf)]

    *fail_calls* (a collection) is kept as a ``frozenset`` and *outages* as a
    tuple, so they are changed by assignment, not in place.

    Args:
      latency: seconds each call takes, or a function ``(request) -> seconds``
        of its :class:`FakeRequest` (the older form ``(call_number,
        start_time) -> seconds``, a function of two arguments, works too). A
        failing call takes its latency too: it fails when the answer would
        have come.
      fail_calls: the call numbers (from 1) that fail, or a predicate
        ``(call_number) -> bool``.
      outages: ``(start, end)`` intervals of fake time; a call that starts
        inside one fails.
      fail: a predicate ``(request) -> bool`` over the :class:`FakeRequest`
        (arguments, number, start); a call it answers true for fails.
      error: builds the exception for a failing call, ``(request) -> exception``.
        The default raises :class:`FakeServiceError` with *retry_after*.
      retry_after: the ``retry_after`` of the default error.
      scripts: per-argument scripts: a mapping from a key to the
        :class:`FakeScript` for the calls with that key.
      key: a plain function of the call's positional arguments giving the key
        that *scripts* and :attr:`FakeRequest.key` use. Default: the first
        argument (``None`` for a call with none, or whose first argument is
        not hashable).

    Raises:
      TypeError, ValueError: for an invalid argument, naming it (at construction
        or when a field is assigned).
    """

    latency: Latency = attrs.field(default=0.0, kw_only=True, on_setattr=_rescript)
    fail_calls: Collection[int] | Callable[[int], bool] = attrs.field(
        default=(), kw_only=True, on_setattr=_rescript
    )
    outages: Iterable[tuple[float, float]] = attrs.field(
        default=(), kw_only=True, on_setattr=_rescript
    )
    fail: Callable[[FakeRequest], object] | None = attrs.field(
        default=None, kw_only=True, on_setattr=_rescript
    )
    error: Callable[[FakeRequest], BaseException] | None = attrs.field(
        default=None, kw_only=True, on_setattr=_rescript
    )
    retry_after: float | None = attrs.field(default=None, kw_only=True, on_setattr=_rescript)
    scripts: Mapping[Hashable, FakeScript] = attrs.field(
        factory=dict, kw_only=True, on_setattr=_set_scripts
    )
    key: Callable[..., Hashable] = attrs.field(
        default=_first_argument, kw_only=True, on_setattr=_set_key
    )

    calls: list[FakeCall] = attrs.field(factory=list, init=False)
    """Every finished call, in the order they finished."""
    in_flight: int = attrs.field(default=0, init=False)
    """Calls running now."""
    peak_concurrency: int = attrs.field(default=0, init=False)
    """The most calls that were ever running at once."""
    _started: int = attrs.field(default=0, init=False)
    _started_by_key: dict[Hashable, int] = attrs.field(factory=dict, init=False, repr=False)
    _rules: _Rules = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # object.__setattr__: the fields' on_setattr checks are for later assignments.
        rules, kept = _script({name: getattr(self, name) for name in _SCRIPT_FIELDS})
        for name, value in kept.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_rules", rules)
        object.__setattr__(self, "scripts", _check_scripts(self.scripts))
        object.__setattr__(self, "key", check_sync_callable("key", self.key))

    def fails(self, call_number: int, start: float) -> bool:
        """Whether call *call_number*, starting at fake time *start*, fails by the
        service's number and time rules (*fail_calls* and *outages*)."""
        if self._rules.fails_number(call_number):
            return True
        return any(begin <= start < end for begin, end in self._rules.outages)

    def _request(self, args: tuple[Any, ...]) -> FakeRequest:
        self._started += 1
        key = self.key(*args)
        try:
            key_number = self._started_by_key.get(key, 0) + 1
        except TypeError:
            raise TypeError(f"key must return a hashable value, got {key!r}") from None
        self._started_by_key[key] = key_number
        return FakeRequest(self._started, args, trio.current_time(), key, key_number)

    async def call(self, *args: object) -> int:
        """Make one call: sleep for its latency, then return its number or raise.

        Returns:
          the call's number, from 1.

        Raises:
          FakeServiceError: (or what *error* builds) if the call is scripted to fail.
        """
        request = self._request(args)
        script = self.scripts.get(request.key) if self.scripts else None
        service_rules = self._rules
        rules = service_rules if script is None else script._rules
        latency = service_rules.latency if rules.latency is None else rules.latency
        assert latency is not None  # the service always has one
        seconds = _seconds(latency, request)
        self.in_flight += 1
        self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
        try:
            await trio.sleep(seconds)
        except BaseException:
            self.in_flight -= 1
            self._record(request, "cancelled", None)
            raise
        self.in_flight -= 1
        if service_rules.fails(request.number, request) or (
            script is not None and rules.fails(request.key_number, request)
        ):
            error = self._error(service_rules, rules, request)
            self._record(request, "error", error)
            raise error
        self._record(request, "ok", None)
        return request.number

    def _error(self, service: _Rules, rules: _Rules, request: FakeRequest) -> BaseException:
        build = service.error if rules.error is None else rules.error
        if build is None:
            retry_after = service.retry_after if rules.retry_after is None else rules.retry_after
            return FakeServiceError(request.number, retry_after)
        error = check_sync_result("error", build(request))
        if not isinstance(error, BaseException):
            raise TypeError(f"error must build an exception, got {error!r}")
        return error

    def _record(
        self,
        request: FakeRequest,
        outcome: Literal["ok", "error", "cancelled"],
        error: BaseException | None,
    ) -> None:
        end = trio.current_time()
        self.calls.append(
            FakeCall(request.number, request.args, request.start, end, outcome, error, request.key)
        )

    async def __call__(self, *args: object) -> int:
        """The same as :meth:`call`, so the service itself can be passed as the function."""
        return await self.call(*args)

    def calls_for(self, key: Hashable) -> list[FakeCall]:
        """The finished calls whose key is *key*, in the order they finished."""
        return [record for record in self.calls if record.key == key]

    def statistics(self) -> FakeServiceStatistics:
        """Return a fresh :class:`FakeServiceStatistics` snapshot."""
        outcomes = [record.outcome for record in self.calls]
        return FakeServiceStatistics(
            calls=self._started,
            successes=outcomes.count("ok"),
            failures=outcomes.count("error"),
            cancelled=outcomes.count("cancelled"),
            in_flight=self.in_flight,
            peak_concurrency=self.peak_concurrency,
        )
