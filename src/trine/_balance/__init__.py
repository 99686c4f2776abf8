"""Balancer: calls spread over many endpoints, around the ones that are down.

How it works. Each endpoint has a small record (:class:`_Endpoint`): calls
pending on it, their start times summed, a peak-EWMA latency estimate, its
breaker, ejection and health state, and counters. A call reads the clock
once, *chooses* an endpoint synchronously -- only among the available ones:
not unhealthy, not ejected, and with a breaker that would admit the call now
-- then counts itself pending there and awaits ``fn(endpoint, *args)``
(through the endpoint's breaker, if it has one). Nothing awaits between the
choice and the breaker's admission, so under Trio no other task can change
the picture in between. When the call ends the endpoint's latency estimate,
failure run and ejection are updated. So a call costs a clock read or two, a
few attribute updates and, for ``peak_ewma``, two random numbers and two
``exp`` -- no task, no channel, no checkpoint of its own beyond a cancelled
caller's check.

Removing an endpoint takes it out of the choice at once; the calls already
running on it keep their record and finish normally. A failed call leaves
the failed endpoint in a per-task context variable, which the same task's
next call through the same balancer avoids when another endpoint is
available (the mark names its task, so the tasks it starts, which copy its
context, ignore it): so a :class:`~trine.Retry` (or a Policy's retry) *outside* the
balancer retries on another endpoint.

The balancer's one nursery (:class:`~trine._service.ServiceNursery`) runs
the periodic health checks, when there are any. Breakers and ejections need
no timer: they are read from the clock when an endpoint is considered.

One module per piece: ``_ejection`` (:class:`OutlierEjection`), ``_statistics``
(the frozen snapshots), ``_endpoint`` (the record of one endpoint),
``_choice`` (availability, the strategies and refusals), ``_records`` (each
call's bookkeeping: pending counts, latency estimate, ejection), ``_health``
(the periodic health checks) and ``_balancer`` (:class:`Balancer`: life
cycle, membership, calls, hedged calls and statistics).
"""

from ._balancer import Balancer as Balancer
from ._ejection import OutlierEjection as OutlierEjection
from ._statistics import BalancerStatistics as BalancerStatistics
from ._statistics import EndpointStatistics as EndpointStatistics

__all__ = [
    "Balancer",
    "BalancerStatistics",
    "EndpointStatistics",
    "OutlierEjection",
]
