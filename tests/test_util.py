"""The shared argument checks and their one message style."""

from __future__ import annotations

import math

import pytest

from trine._util import (
    check_async_callable,
    check_choice,
    check_int,
    check_number,
    check_optional_number,
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


def test_exception_matcher_predicates() -> None:
    """A predicate decides; its answer is taken as true or false."""
    from trine._util import exception_matcher

    matches = exception_matcher("on", lambda error: getattr(error, "errno", None))
    assert not matches(OSError("no errno"))
    assert matches(OSError(5, "io"))


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
