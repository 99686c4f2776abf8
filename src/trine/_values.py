"""Read-only :class:`trio_util.AsyncValue` views: state a user can wait on.

Objects expose the state users wait for as ``<what>_value`` attributes
(``breaker.state_value``, ``limiter.limit_value``, ``output.delivered_value``,
``graph.finished_value``): a :class:`ReadOnlyValue`, which is a
:class:`trio_util.AsyncValue` whose ``value`` only its owner sets.

Owners make a view only when it is first asked for, and update it only once it
exists, so state nobody watches costs one ``is not None`` test where it
changes; and an update with nobody waiting only stores the value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

import trio_util  # type: ignore[import-untyped]  # trio-util ships no types

__all__ = ["ReadOnlyValue"]

_T = TypeVar("_T")

_set_value = trio_util.AsyncValue.value.fset


@final
class ReadOnlyValue(trio_util.AsyncValue, Generic[_T]):  # type: ignore[misc]  # untyped base
    """A :class:`trio_util.AsyncValue` that trine changes and you read or wait on.

    Everything trio-util's ``AsyncValue`` does works: ``value``,
    ``await wait_value(value_or_predicate)``, ``await wait_transition(...)``,
    ``async for value in eventual_values(...)``, ``transitions(...)`` and
    ``open_transform(fn)``. Only assigning ``value`` is refused: the object
    that owns the view sets it as its state changes::

        await breaker.state_value.wait_value(trine.CircuitState.CLOSED)
        await graph.finished_value.wait_value(lambda done: done >= 10)

    Raises:
      AttributeError: on ``view.value = ...``.
    """

    def __init__(self, value: _T, owner: str) -> None:
        super().__init__(value)
        self._owner = owner

    @property
    def value(self) -> _T:
        """The value now."""
        return self._value

    @value.setter
    def value(self, value: object) -> None:
        raise AttributeError(f"{self._owner} is read-only: trine sets it as the state changes")

    def _set(self, value: _T) -> None:
        """Change the value, waking the waiters it satisfies (only the owner calls this)."""
        if self._level_results or self._edge_results or self._transforms:
            _set_value(self, value)
        else:
            self._value = value  # nobody waits: nothing to wake

    if TYPE_CHECKING:
        # trio-util's methods, typed for this view.
        async def wait_value(
            self, value_or_predicate: _T | Callable[[_T], bool], *, held_for: float = 0.0
        ) -> _T: ...

        async def wait_transition(
            self, value_or_predicate: _T | Callable[[_T, _T], bool] = ...
        ) -> tuple[_T, _T]: ...

        def eventual_values(
            self, value_or_predicate: _T | Callable[[_T], bool] = ..., held_for: float = 0.0
        ) -> AsyncIterator[_T]: ...

        def transitions(
            self, value_or_predicate: _T | Callable[[_T, _T], bool] = ...
        ) -> AsyncIterator[tuple[_T, _T]]: ...

        def open_transform(self, function: Callable[[_T], Any]) -> Any: ...
