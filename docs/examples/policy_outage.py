"""A flaky service called through a Policy, on Trio's fake clock.

Run it with ``python docs/examples/policy_outage.py``: two minutes of
simulated traffic finish at once, with exact times. The service is down for
calls that start between t=10 and t=40; the Policy retries, opens its breaker,
answers from the fallback while the service is down, and closes the breaker
again once a probe gets through.
"""

from __future__ import annotations

import collections

import trio
import trio.testing

import trine
from trine.testing import FakeService


async def main() -> list[str]:
    service = FakeService(latency=0.2, outages=[(10.0, 40.0)])
    log: list[str] = []
    gave_up = 0

    def record(event: trine.GuardEvent) -> None:
        nonlocal gave_up
        match event:
            case trine.CircuitStateChanged(old=old, new=new):
                log.append(f"t={trio.current_time():5.1f}  breaker {old} -> {new}")
            case trine.RetryGaveUp():
                gave_up += 1

    policy = trine.Policy(
        fallback=lambda exc: "cached page",
        retry=trine.Retry(attempts=2, backoff=trine.Backoff.constant(0.5), hooks=[record]),
        breaker=trine.CircuitBreaker(failure_threshold=3, reset_timeout=15.0, hooks=[record]),
        limiter=trine.Bulkhead(4),
        timeout=1.0,
    )
    answers: collections.Counter[str] = collections.Counter()
    while trio.current_time() < 120.0:
        answer = await policy.call(service.call)
        answers["fallback" if answer == "cached page" else "service"] += 1
        await trio.sleep(1.0)
    log.append(f"answers: {dict(answers)}; retry gave up {gave_up} times")
    log.append(f"the service saw {service.statistics().calls} calls in 120 s")
    return log


if __name__ == "__main__":
    for line in trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)):
        print(line)
