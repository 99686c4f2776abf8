"""The shared argument checks and their one message style."""

from __future__ import annotations

import functools
import inspect
import math
import re
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest

import trine
from trine._util import (
    NotAwaitableError,
    check_async_callable,
    check_async_function,
    check_awaitable,
    check_bool,
    check_choice,
    check_hashable,
    check_int,
    check_number,
    check_optional_number,
    check_sync_callable,
    check_sync_result,
    describe,
    exception_matcher,
    signal_name,
)


def test_check_int_accepts_minimum() -> None:
    """The minimum itself is allowed."""
    assert check_int("limit", 1) == 1
    assert check_int("attempts", 0, minimum=0) == 0


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, r"^limit must be >= 1, got 0$"),
        (-5, ValueError, r"^limit must be >= 1, got -5$"),
        (1.5, TypeError, r"^limit must be an int, got 1.5$"),
        (True, TypeError, r"^limit must be an int, got True$"),
        ("3", TypeError, r"^limit must be an int, got '3'$"),
    ],
)
def test_check_int_refuses(value: object, error: type[Exception], message: str) -> None:
    """Type first, range second, with the parameter and value named."""
    with pytest.raises(error, match=message):
        check_int("limit", value)


def test_check_number_accepts_ints_and_floats() -> None:
    """Ints are converted to floats; zero passes the default minimum."""
    assert check_number("delay", 0) == 0.0
    assert check_number("delay", 2.5) == 2.5
    assert check_number("timeout", math.inf, allow_inf=True) == math.inf


@pytest.mark.parametrize(
    ("kwargs", "value", "error", "message"),
    [
        ({}, -1, ValueError, r"^delay must be >= 0, got -1$"),
        ({"exclusive": True}, 0, ValueError, r"^delay must be > 0, got 0$"),
        ({}, math.nan, ValueError, r"^delay must not be NaN, got nan$"),
        ({}, math.inf, ValueError, r"^delay must be finite, got inf$"),
        ({"allow_inf": True}, -math.inf, ValueError, r"^delay must be finite, got -inf$"),
        ({}, "1", TypeError, r"^delay must be a number, got '1'$"),
        ({}, False, TypeError, r"^delay must be a number, got False$"),
    ],
)
def test_check_number_refuses(
    kwargs: dict[str, object], value: object, error: type[Exception], message: str
) -> None:
    """Every bad number is refused with one message style."""
    with pytest.raises(error, match=message):
        check_number("delay", value, **kwargs)  # type: ignore[arg-type]


def test_check_optional_number_passes_none() -> None:
    """``None`` means "not set" and passes through."""
    assert check_optional_number("timeout", None) is None
    assert check_optional_number("timeout", 3) == 3.0


def test_check_choice() -> None:
    """A value outside the choices lists what is allowed."""
    assert check_choice("jitter", "full", ("full", "equal", None)) == "full"
    with pytest.raises(ValueError, match=r"^jitter must be one of 'full', None, got 'half'$"):
        check_choice("jitter", "half", ("full", None))


async def _job(x: int) -> int:
    return x


def test_check_async_callable_refuses_coroutine_object() -> None:
    """A coroutine object gets a TypeError saying to pass the function and its arguments."""
    coro = _job(1)
    with pytest.raises(TypeError, match=r"pass the function and its arguments"):
        check_async_callable("fn", coro)
    # It was closed, so Python does not warn that it was never awaited.
    assert coro.cr_frame is None


def test_check_async_callable_refuses_non_callable() -> None:
    """Something that cannot be called is refused by name."""
    with pytest.raises(TypeError, match=r"^fn must be an async function, got 3$"):
        check_async_callable("fn", 3)
    assert check_async_callable("fn", _job) is _job


def test_exception_matcher_classes_tuples_and_groups() -> None:
    """A class or tuple matches instances, and a group only if every leaf matches (as except*)."""
    from trine._util import exception_matcher

    matches = exception_matcher("on", (KeyError, OSError))
    assert matches(KeyError("k"))
    assert matches(ConnectionError("c"))
    assert not matches(ValueError("v"))
    assert matches(ExceptionGroup("g", [KeyError("k"), OSError("o")]))
    assert not matches(ExceptionGroup("g", [KeyError("k"), ValueError("v")]))
    assert not exception_matcher("ignore", ())(KeyError("k"))


def test_exception_matcher_closes_a_coroutine_it_refuses() -> None:
    """record=check(err) for record=check: refused by name, and closed, so Python does not warn."""

    async def check(error: BaseException) -> bool:
        return True

    coro = check(ValueError())
    with pytest.raises(TypeError, match=r"^record must be an exception class"):
        exception_matcher("record", coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


def test_exception_matcher_predicates() -> None:
    """A predicate decides; its answer is taken as true or false."""
    from trine._util import exception_matcher

    matches = exception_matcher("on", lambda error: getattr(error, "errno", None))
    assert not matches(OSError("no errno"))
    assert matches(OSError(5, "io"))


async def _async_predicate(error: BaseException) -> bool:
    return False


async def _open_pool() -> object:
    return object()


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("on", lambda on: trine.Retry(on=on)),
        ("record", lambda record: trine.CircuitBreaker(record=record)),
        ("ignore", lambda ignore: trine.CircuitBreaker(ignore=ignore)),
        ("fallback_on", lambda on: trine.Policy(fallback=lambda exc: 0, fallback_on=on)),
        ("discard_on", lambda on: trine.ResourcePool(_open_pool, max_size=1, discard_on=on)),
        ("record", lambda record: trine.OutlierEjection(record=record)),
    ],
)
def test_an_async_predicate_is_refused_at_the_call(name: str, make: Callable[[Any], Any]) -> None:
    """Regression (audit): an async exception filter is refused where it is given.

    Its coroutine is always true and never run: Retry(on=) retried every
    error, CircuitBreaker(ignore=) never opened, and Python warned that the
    coroutine was never awaited.
    """
    with pytest.raises(
        TypeError,
        match=rf"^{name} must be a plain function, got the async function "
        r"<function _async_predicate at .*>: trine calls it without awaiting",
    ):
        make(_async_predicate)


def test_exception_matcher_refuses_and_closes_a_coroutine_a_predicate_returns() -> None:
    """A plain predicate that returns a coroutine is a TypeError on that call, the coroutine
    closed (so Python does not warn); plain answers are taken as before."""
    made: list[Coroutine[Any, Any, bool]] = []

    def calls_async(error: BaseException) -> object:
        if isinstance(error, KeyError):
            return 1
        made.append(_async_predicate(error))
        return made[-1]

    matches = exception_matcher("ignore", calls_async)
    assert matches(KeyError("k"))
    with pytest.raises(
        TypeError,
        match=r"^ignore must be a plain function, but calling it returned <coroutine object "
        r"_async_predicate at .*>: trine calls it without awaiting$",
    ):
        matches(ValueError("v"))
    assert inspect.getcoroutinestate(made[0]) == inspect.CORO_CLOSED


@pytest.mark.parametrize(
    ("value", "kwargs", "error", "message"),
    [
        (
            3,
            {},
            TypeError,
            r"^on must be an exception class, a tuple of them, or a predicate, got 3$",
        ),
        ((KeyError, "x"), {}, TypeError, r"^on must contain only exception classes, got 'x'$"),
        ((), {"allow_empty": False}, ValueError, r"^on must not be an empty tuple: it would match"),
        (
            KeyboardInterrupt,
            {"only_exceptions": True},
            TypeError,
            r"^on must contain only Exception subclasses, got <class 'KeyboardInterrupt'>: ",
        ),
    ],
)
def test_exception_matcher_refuses(
    value: object, kwargs: dict[str, bool], error: type[Exception], message: str
) -> None:
    """Every malformed filter is refused with the parameter named."""
    from trine._util import exception_matcher

    with pytest.raises(error, match=message):
        exception_matcher("on", value, **kwargs)


def test_huge_int_is_described_by_its_size() -> None:
    """An int too large for a float is a ValueError that does not print 400 digits."""
    with pytest.raises(
        ValueError, match=r"^delay must be at most 1\.798e\+308, got an int of about 10\*\*400$"
    ):
        check_number("delay", 10**400)
    with pytest.raises(
        ValueError, match=r"^limit must be <= 9223372036854775807, got 9223372036854775808$"
    ):
        check_int("limit", 2**63)
    assert describe(-(10**40)) == "an int of about -10**40"
    assert describe(12) == "12"


@pytest.mark.parametrize("value", [None, 0, 1, "yes", []])
def test_check_bool_refuses_truthy_values(value: object) -> None:
    """Only True and False are flags."""
    with pytest.raises(
        TypeError, match=rf"^ordered must be True or False, got {re.escape(repr(value))}$"
    ):
        check_bool("ordered", value)
    assert check_bool("ordered", False) is False


def test_check_hashable_names_the_argument() -> None:
    """An unhashable key is refused by name, not with Python's bare message."""
    with pytest.raises(TypeError, match=r"^key must be hashable, got \[1\]$"):
        check_hashable("key", [1])
    assert check_hashable("key", (1,)) == (1,)


async def _coroutine_fn() -> int:
    return 1


def _generator_fn() -> Iterator[int]:
    yield 1


async def _async_generator_fn() -> AsyncIterator[int]:
    yield 1


def test_check_awaitable_says_what_was_returned() -> None:
    """A sync function's value, a generator and an async generator each get their own advice."""
    coroutine = _coroutine_fn()
    assert check_awaitable("fn", coroutine) is coroutine
    coroutine.close()
    with pytest.raises(
        NotAwaitableError,
        match=r"^fn must be an async function, but calling it returned 3, an int: "
        r"define it with async def$",
    ):
        check_awaitable("fn", 3)
    generator = _generator_fn()
    with pytest.raises(NotAwaitableError, match=r"returned a generator: a function with yield"):
        check_awaitable("fn", generator)
    assert generator.gi_frame is None  # closed, so nothing warns later
    with pytest.raises(NotAwaitableError, match=r"returned an async generator: async def with"):
        check_awaitable("fn", _async_generator_fn())


def test_not_awaitable_is_never_matched_by_an_exception_filter() -> None:
    """Retry's on=, the breaker's record= and Policy's fallback_on= let it through."""
    error = NotAwaitableError("fn must be an async function")
    assert not exception_matcher("on", (Exception,))(error)
    assert not exception_matcher("on", TypeError)(error)
    assert not exception_matcher("on", lambda exc: True)(error)
    assert exception_matcher("on", TypeError)(TypeError("mine"))


class _AsyncCallable:
    async def __call__(self) -> None:
        pass


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (_coroutine_fn, r"^cb must be a plain function, got the async function <function "),
        (functools.partial(_coroutine_fn), r"^cb must be a plain function, got the async function"),
        (_AsyncCallable(), r"^cb must be a plain function, got the async function"),
        (_generator_fn, r"^cb must be a plain function, got the generator function"),
        (_async_generator_fn, r"^cb must be a plain function, got the generator function"),
        (3, r"^cb must be a callable, got 3$"),
    ],
)
def test_check_sync_callable_refuses_what_would_never_run(fn: object, message: str) -> None:
    """A callback that only makes a coroutine or generator when called is refused."""
    with pytest.raises(TypeError, match=message):
        check_sync_callable("cb", fn)


def test_check_sync_callable_accepts_plain_callables() -> None:
    """Functions, builtins, lambdas and classes are plain callables."""
    for fn in (print, len, lambda: 1, _AsyncCallable, functools.partial(print, 1)):
        assert check_sync_callable("cb", fn) is fn


class _GeneratorCallable:
    def __call__(self) -> Iterator[int]:
        yield 1


class _AsyncGeneratorCallable:
    async def __call__(self) -> AsyncIterator[int]:
        yield 1


class _Methods:
    def generator(self) -> Iterator[int]:
        yield 1


_NO_YIELD = r"define it with async def and no yield$"
_NO_ASYNC_YIELD = r"define it without yield \(an async generator is iterated with async for\)$"


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (
            _generator_fn,
            r"^connect must be an async function, got the generator function <function ",
        ),
        (
            _async_generator_fn,
            r"^connect must be an async function, got the async generator function <function ",
        ),
        (functools.partial(_generator_fn), r"^connect must be .*, got the generator function "),
        (_Methods().generator, r"^connect must be .*, got the generator function <bound method "),
        (
            _GeneratorCallable(),
            r"^connect must be an async function, got <.*_GeneratorCallable object at .*>, "
            r"whose __call__ is a generator function: ",
        ),
        (
            functools.partial(_AsyncGeneratorCallable()),
            r"^connect must be an async function, got functools.partial\(<.*>\), "
            r"whose __call__ is an async generator function: ",
        ),
        (3, r"^connect must be an async function, got 3$"),
    ],
)
def test_check_async_function_refuses_generator_functions(fn: object, message: str) -> None:
    """A generator or async generator function (or a partial, method or object calling one)
    can never make an awaitable: refused, naming the argument and saying what to define."""
    with pytest.raises(TypeError, match=message) as caught:
        check_async_function("connect", fn)
    if "generator" in message:
        tail = _NO_ASYNC_YIELD if "async generator" in message else _NO_YIELD
        assert re.search(tail, str(caught.value))


def test_check_async_function_refuses_a_coroutine_and_accepts_async_callables() -> None:
    """As check_async_callable: a coroutine object is refused; async callables of any shape pass."""
    coro = _job(1)
    with pytest.raises(TypeError, match=r"pass the function and its arguments"):
        check_async_function("fn", coro)
    assert coro.cr_frame is None
    for fn in (_job, functools.partial(_job, 1), _AsyncCallable(), _AsyncCallable, lambda: _job(1)):
        assert check_async_function("fn", fn) is fn


def test_check_sync_result_closes_a_returned_coroutine() -> None:
    """A lambda that returns a coroutine is caught when called, without a warning left behind."""
    coroutine = _coroutine_fn()
    with pytest.raises(TypeError, match=r"^cb must be a plain function, but calling it returned"):
        check_sync_result("cb", coroutine)
    assert coroutine.cr_frame is None
    assert check_sync_result("cb", 3) == 3


def test_signal_name_names_every_signal_number() -> None:
    """A named signal by its name, a real-time one from SIGRTMIN, any other by its number."""
    assert signal_name(signal.SIGTERM) == "SIGTERM"
    assert signal_name(999) == "signal 999"
    if hasattr(signal, "SIGRTMIN"):
        assert signal_name(signal.SIGRTMIN) == "SIGRTMIN"
        assert signal_name(signal.SIGRTMIN + 6) == "SIGRTMIN+6"
        assert signal_name(signal.SIGRTMAX) == "SIGRTMAX"
        assert (
            signal_name(signal.SIGRTMAX - 1) == f"SIGRTMIN+{signal.SIGRTMAX - 1 - signal.SIGRTMIN}"
        )
