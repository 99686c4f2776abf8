"""A :class:`~trine.Balancer`'s periodic health checks, run in its nursery.

Nothing here is on a call's path: the balancer starts :func:`sweep` in its
nursery when it opens, and :func:`check_health` for an endpoint added while
it is open.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, Final

import trio

from .._util import NotAwaitableError, check_awaitable
from ._endpoint import _Endpoint

if TYPE_CHECKING:
    from ._balancer import Balancer

__all__ = ["check_health", "sweep"]

_CoroutineType: Final = types.CoroutineType
_current_time: Final = trio.current_time


async def sweep(balancer: Balancer[Any], nursery: trio.Nursery) -> None:
    """Check every endpoint's health every ``check_interval`` seconds, in *nursery*.

    The nursery is passed in, not read from the balancer: a block that ends
    before this task's first step has already let go of it.
    """
    interval = balancer._check_interval
    while balancer._open:
        balancer._next_sweep = _current_time() + interval
        for endpoint in balancer._endpoints:
            if not endpoint.checking:
                endpoint.checking = True
                nursery.start_soon(
                    check_health, balancer, endpoint, name="trine.Balancer health check"
                )
        await trio.sleep_until(balancer._next_sweep)


async def check_health(balancer: Balancer[Any], endpoint: _Endpoint) -> None:
    """Run *endpoint*'s health check once: it is down unless the check returned
    something other than ``False`` within ``check_interval``."""
    check = balancer._health_check
    assert check is not None
    healthy = False
    try:
        with trio.move_on_after(balancer._check_interval):
            coro = check(endpoint.key)
            if type(coro) is not _CoroutineType:
                coro = check_awaitable("health_check", coro)
            healthy = await coro is not False
    except NotAwaitableError:
        raise  # a programming error: it ends the balancer's block
    except Exception:
        healthy = False
    finally:
        endpoint.checking = False
    endpoint.down = not healthy
