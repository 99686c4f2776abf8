"""Hooks: validation and delivery of guard events."""

from __future__ import annotations

import pytest

from trine import GuardEvent, RetryScheduled
from trine._hooks import call_hooks, check_hooks


def test_check_hooks_accepts_none_and_sequences() -> None:
    """``None`` means no hooks; any iterable of callables becomes a tuple."""
    assert check_hooks(None) == ()
    assert check_hooks([print]) == (print,)


def test_check_hooks_refuses_a_single_callable() -> None:
    """Passing one function instead of a list is the common slip; the message says so."""
    with pytest.raises(TypeError, match=r"^hooks must be a sequence of callables, got the single"):
        check_hooks(print)  # type: ignore[arg-type]


def test_check_hooks_refuses_non_callables() -> None:
    """Every element must be callable."""
    with pytest.raises(TypeError, match=r"^hooks must contain only callables, got 3$"):
        check_hooks([3])  # type: ignore[list-item]


def test_call_hooks_delivers_in_order() -> None:
    """Each hook receives the same event, in the order given."""
    seen: list[tuple[str, GuardEvent]] = []
    event = RetryScheduled(name="api", attempt=1, delay=0.5, error=OSError("down"))
    call_hooks((lambda e: seen.append(("a", e)), lambda e: seen.append(("b", e))), event)
    assert seen == [("a", event), ("b", event)]


def test_issue11_check_hooks_refuses_async_functions() -> None:
    """An async hook would never run (trine calls hooks without awaiting): refused by position."""

    async def hook(event: GuardEvent) -> None:
        pass

    with pytest.raises(TypeError, match=r"^hooks\[1\] must be a plain function, got the async "):
        check_hooks([print, hook])  # type: ignore[list-item]


def test_issue11_check_hooks_closes_a_coroutine_object() -> None:
    """hooks=coro() is refused by name, and the coroutine is closed (no "never awaited")."""

    async def make() -> None:
        pass

    with pytest.raises(TypeError, match=r"^hooks must be a sequence of callables, got <coroutine"):
        check_hooks(make())  # type: ignore[arg-type]


def test_issue11_a_hook_returning_a_coroutine_is_refused() -> None:
    """A lambda calling an async function passes the door; the coroutine it returns is not."""

    async def log(event: GuardEvent) -> None:
        pass

    event = RetryScheduled(name=None, attempt=1, delay=0.5, error=OSError("down"))
    with pytest.raises(TypeError, match=r"^hooks must be a plain function, but calling it"):
        call_hooks((lambda e: log(e),), event)
