"""The call: how a stage calls its function on one item, and awaits what that returns.

A stage's function may be plain or async, go through a policy or run in a
thread or a process; :func:`make_call` turns all of that into one
``call_item(item)``. It *starts* an awaitable result by hand
(``coroutine.send(None)``): most calls of quick async functions finish
without blocking, and then ``call_item`` returns the result with no trip
through the scheduler at all. Only a call that really blocks returns a
:class:`Blocked`, which the worker awaits -- and which first lets a sibling
take the items still waiting, since this worker is about to block.
"""

from __future__ import annotations

import inspect
import itertools
import types
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, final

import trio

from .._util import close_unawaited

if TYPE_CHECKING:
    from ._buffer import Buffer
    from ._description import Stage
    from ._stage import StageRun

__all__ = [
    "Blocked",
    "KeyFailed",
    "make_call",
    "make_key_hash",
    "make_key_value",
    "require_trio_parallel",
]

_CoroutineType = types.CoroutineType
_GeneratorType = types.GeneratorType
# Result types already seen not to be awaitable, per stage, up to this many:
# skips inspect.isawaitable's ABC check on the hot path.
_PLAIN_TYPES_KEPT = 64


class KeyFailed(Exception):
    """The key function failed on an item; :attr:`error` is what it raised."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _check_key_type(value: Any, plain_types: set[type]) -> None:
    """Refuse an awaitable or generator key (closing it); else remember its type as checked."""
    if inspect.isawaitable(value):
        close_unawaited(value)
        raise TypeError(f"key must return a hashable value, got {value!r}")
    if inspect.isgenerator(value) or inspect.isasyncgen(value):
        # Hashable, but a new object per item: no two items would share a key.
        close_unawaited(value)
        raise TypeError(
            f"key must return a hashable value, got the generator {value!r}: "
            "return the key, do not yield it"
        )
    value_type = type(value)
    if len(plain_types) < _PLAIN_TYPES_KEPT:
        plain_types.add(value_type)


def make_key_hash(key: Callable[[Any], Any]) -> Callable[[Any], int]:
    """``key_hash(item)``: ``hash(key(item))``; an awaitable is no key, and is closed."""
    plain_types: set[type] = set()

    def key_hash(item: Any) -> int:
        value = key(item)
        if type(value) not in plain_types:
            _check_key_type(value, plain_types)
        return hash(value)

    return key_hash


def make_key_value(key: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``key_of(item)``: ``key(item)``, checked to be hashable; an awaitable is no key."""
    plain_types: set[type] = set()

    def key_of(item: Any) -> Any:
        value = key(item)
        if type(value) not in plain_types:
            _check_key_type(value, plain_types)
        hash(value)  # unhashable: the item's failure here, not later in a dict
        return value

    return key_of


def require_trio_parallel() -> Any:
    """The ``trio_parallel`` module, or an ImportError that says what to install."""
    try:
        import trio_parallel  # type: ignore[import-untyped]  # no type hints upstream
    except ImportError as exc:
        raise ImportError(
            'executor="process" needs trio-parallel: pip install "trine[process]"'
        ) from exc
    return trio_parallel


def _function_of(stage: Stage) -> Callable[[Any], Any]:
    """The stage's function of one item, through its policy or executor if it has one."""
    if stage.kind == "enumerate":
        counter = itertools.count(stage.size)
        return lambda item: (next(counter), item)
    fn = stage.fn
    assert fn is not None
    if stage.policy is not None:
        policy_call = stage.policy.call
        return lambda item: policy_call(fn, item)
    # The stage's own limiter: its threads or processes never queue behind
    # other users of Trio's (or trio-parallel's) default one.
    if stage.executor == "thread":
        limiter = trio.CapacityLimiter(stage.workers)
        to_thread = trio.to_thread.run_sync
        return lambda item: to_thread(fn, item, limiter=limiter)
    if stage.executor == "process":
        limiter = trio.CapacityLimiter(stage.workers)
        to_process = require_trio_parallel().run_sync
        # A worker process can be killed, so cancellation is prompt (as with
        # trine.to_process); a thread can only be waited for.
        return lambda item: to_process(fn, item, limiter=limiter, kill_on_cancel=True)
    if stage.key is not None and stage.workers == 1:
        # One worker takes every key, so there is nothing to dispatch, but the
        # key is still called: a key that fails is the item's failure.
        key_hash = make_key_hash(stage.key)

        def keyed(item: Any) -> Any:
            try:
                key_hash(item)
            except Exception as exc:
                raise KeyFailed(exc) from exc
            return fn(item)

        return keyed
    return fn


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    """*awaitable* awaited exactly as ``await`` does (any ``__await__``, generator-based too)."""
    return await awaitable


def make_call(stage: Stage) -> Callable[[Any], Any]:
    """The stage's ``call_item(item)``: the result, or a :class:`Blocked` to await.

    The result of the function is awaited if ``await`` accepts it: a
    coroutine, a generator-based coroutine, or any object with ``__await__``
    (whatever its ``__await__`` returns, ``await``'s own rules apply).
    Anything else is the result as it is.
    """
    fn = _function_of(stage)
    plain_types: set[type] = set()
    isawaitable = inspect.isawaitable

    def call_item(item: Any) -> Any:
        result = fn(item)
        result_type = type(result)
        if result_type is _CoroutineType:
            step = result
        elif result_type in plain_types:
            return result
        elif isawaitable(result):
            step = _awaited(result)
        else:
            # (a generator may be a generator-based coroutine: never kept as plain)
            if len(plain_types) < _PLAIN_TYPES_KEPT and result_type is not _GeneratorType:
                plain_types.add(result_type)
            return result
        try:
            yielded = step.send(None)
        except StopIteration as stop:
            return stop.value
        return Blocked(step, yielded)

    return call_item


@final
class Blocked:
    """A call that blocked on its first step: await :meth:`finish` for its result."""

    __slots__ = ("step", "yielded")

    def __init__(self, step: Any, yielded: Any) -> None:
        self.step = step
        self.yielded = yielded

    async def finish(self, stage: StageRun, inputs: Buffer) -> Any:
        """Let a sibling take what waits in *inputs*, then finish the call, counted busy."""
        stage.hand_off(inputs)
        stage.busy += 1
        try:
            return await _resume(self.step, self.yielded)
        finally:
            stage.busy -= 1


@types.coroutine
def _resume(coroutine: Any, yielded: Any) -> Generator[Any, Any, Any]:
    """Finish *coroutine*, already started by hand and suspended on *yielded*.

    Forwards what Trio sends or throws, exactly as ``await`` would.
    """
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as exc:  # forwarded to the coroutine, which re-raises it
            try:
                yielded = coroutine.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coroutine.send(sent)
            except StopIteration as stop:
                return stop.value
