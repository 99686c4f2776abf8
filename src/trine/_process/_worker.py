"""CPU-bound Python in a worker process: :func:`to_process`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from .._util import close_unawaited

__all__ = ["to_process"]

_T = TypeVar("_T")


def _check_sync_function(fn: object) -> None:
    """Refuse what a worker process could not run as a plain call: coroutines, async
    functions, and generator functions (calling one only makes a generator, which
    cannot be pickled back)."""
    if inspect.isawaitable(fn):
        close_unawaited(fn)
        raise TypeError(
            f"fn must be a sync function, got the coroutine object {fn!r}: "
            "to_process runs a plain function in a worker process; pass the function "
            "and its arguments (fn, x), and await async functions directly instead"
        )
    if not callable(fn):
        raise TypeError(f"fn must be a sync function, got {fn!r}")
    call = None if isinstance(fn, type) else type(fn).__call__
    if (
        inspect.iscoroutinefunction(fn)
        or inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(fn)
        or inspect.isasyncgenfunction(call)
    ):
        raise TypeError(
            f"fn must be a sync function, got the async function {fn!r}: "
            "to_process runs a plain function in a worker process; await async functions "
            "directly instead"
        )
    if inspect.isgeneratorfunction(fn) or inspect.isgeneratorfunction(call):
        raise TypeError(
            f"fn must be a sync function, got the generator function {fn!r}: "
            "to_process sends back what fn returns, and a generator cannot be; "
            "return a list instead"
        )


async def to_process(fn: Callable[..., _T], *args: Any) -> _T:
    """Run the sync function ``fn(*args)`` in a worker process and return its result.

    For CPU-bound work that would otherwise block the event loop (and the
    GIL). *fn*, *args* and the result must be picklable. Cancelling the call
    kills the worker process (``trio_parallel.run_sync(kill_on_cancel=True)``);
    the function's exception, if it raises, is re-raised here.

    Args:
      fn: a synchronous, picklable (module-level) function.
      *args: its positional arguments.

    Raises:
      ModuleNotFoundError: if trio-parallel is not installed (the ``process`` extra).
      TypeError: if *fn* is not callable, is an async function, a generator
        or async generator function, or is a coroutine object (``f(x)``
        instead of ``f, x``).

    Example::

        digest = await trine.to_process(hash_file, path)
    """
    _check_sync_function(fn)
    try:
        import trio_parallel  # type: ignore[import-untyped]  # optional dependency, imported on use
    except ImportError as exc:
        raise ModuleNotFoundError(
            "to_process needs trio-parallel: pip install 'trine[process]'"
        ) from exc
    result: _T = await trio_parallel.run_sync(fn, *args, kill_on_cancel=True)
    return result
