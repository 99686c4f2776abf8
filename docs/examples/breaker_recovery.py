"""A circuit breaker opening and recovering around a flaky service, on Trio's fake clock.

Run it with ``python docs/examples/breaker_recovery.py``: the fake clock makes
the 45 seconds of simulated traffic finish at once, with exact times.
"""

from __future__ import annotations

import collections

import trio
import trio.testing

import trine
from trine.testing import FakeService, FakeServiceError


async def main() -> list[str]:
    # Each call takes 0.5 s; the service is down for calls that start in [5, 30).
    service = FakeService(latency=0.5, outages=[(5.0, 30.0)])
    log: list[str] = []
    breaker = trine.CircuitBreaker(
        name="api",
        failure_threshold=3,
        reset_timeout=10.0,
        on_state_change=lambda old, new: log.append(
            f"t={trio.current_time():5.1f}  {old} -> {new}"
        ),
    )
    outcomes: collections.Counter[str] = collections.Counter()
    while trio.current_time() < 45.0:
        try:
            await breaker.call(service.call)
            outcomes["ok"] += 1
        except FakeServiceError:
            outcomes["failed"] += 1
        except trine.CircuitOpenError:
            outcomes["rejected"] += 1  # refused at once: the service is spared this call
        await trio.sleep(0.5)
    log.append(f"outcomes: {dict(outcomes)}; the service saw {service.statistics().calls} calls")
    return log


if __name__ == "__main__":
    for line in trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)):
        print(line)
