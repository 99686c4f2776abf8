"""Every shared guard in one trine.Policy, on a map, a pipeline stage and a graph node.

The issue asks that each distributed guard be usable wherever its local twin
is; this runs all of them together through each consumer of ``policy=``.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("coredis")

import trine
import trine.redis

pytestmark = pytest.mark.usefixtures("redis_server")


def shared_policy(client: Any) -> tuple[trine.Policy, dict[str, Any]]:
    guards: dict[str, Any] = {
        "budget": trine.redis.RetryBudget(client, "svc"),
        "breaker": trine.redis.CircuitBreaker(client, "svc"),
        "rate": trine.redis.RateLimiter(client, "svc", 10_000, burst=100),
        "window": trine.redis.SlidingWindowLimiter(client, "svc-window", 100, 1.0),
        "slots": trine.redis.Semaphore(client, "svc", 2),
    }
    retry = trine.Retry(
        attempts=2, on=(KeyError,), budget=guards["budget"], backoff=trine.Backoff.constant(0)
    )
    policy = trine.Policy(
        retry=retry,
        breaker=guards["breaker"],
        rate=guards["rate"],
        limiter=guards["slots"],
        timeout=5.0,
    )
    return policy, guards


async def test_one_policy_of_shared_guards_serves_a_map_a_stage_and_a_graph_node(
    redis_client: Any,
) -> None:
    """map_all, Pipeline.map and TaskGraph.add take it; every guard saw every call."""
    policy, guards = shared_policy(redis_client)
    window = guards["window"]
    failed_once: set[int] = set()

    async def work(x: int) -> int:
        await window.acquire()  # a limiter used directly, beside the policy
        assert guards["slots"].statistics().held >= 1
        if x == 3 and x not in failed_once:
            failed_once.add(x)
            raise KeyError(x)  # retried once, within the shared budget
        return 10 * x

    async with guards["budget"]:
        assert await trine.map_all(work, range(5), limit=2, policy=policy) == [0, 10, 20, 30, 40]
        staged = await trine.Pipeline.source(range(3)).map(work, workers=2, policy=policy).collect()
        graph = trine.TaskGraph()
        node = graph.add(work, 4, policy=policy)
        result = await graph.run()
    assert sorted(staged) == [0, 10, 20]
    assert result[node].value == 40
    calls = 5 + 1 + 3 + 1  # one retry in the map
    assert guards["rate"].statistics().admitted == calls
    assert guards["slots"].statistics().acquired == calls
    assert guards["breaker"].statistics().calls == calls
    assert guards["breaker"].statistics().failures == 1
    assert window.statistics().admitted == calls
    assert guards["budget"].statistics().retries == 1
