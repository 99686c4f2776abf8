"""trine.redis.RetryBudget against a real redis-server: one budget for the fleet."""

from __future__ import annotations

from typing import Any

import pytest
import trio

coredis = pytest.importorskip("coredis")

import trine  # noqa: E402
import trine.redis  # noqa: E402
from _redis_server import free_port  # noqa: E402

pytestmark = pytest.mark.usefixtures("redis_server")


async def test_two_processes_share_one_budget(redis_client: Any) -> None:
    """Requests deposited in one 'process' pay for retries in the other, after a sync."""
    options: dict[str, Any] = {"ratio": 0.5, "min_per_second": 0.0, "sync_interval": 0.05}
    async with (
        trine.redis.RetryBudget(redis_client, "api", **options) as one,
        trine.redis.RetryBudget(redis_client, "api", **options) as two,
    ):
        assert not two.try_withdraw()  # nothing deposited anywhere yet
        for _ in range(4):
            one.deposit()
        await trio.sleep(0.15)  # both synced since
        assert two.statistics().requests == 4
        assert two.try_withdraw()
        assert two.try_withdraw()
        assert not two.try_withdraw()  # 2 retries = 0.5 * 4 requests
        await trio.sleep(0.15)
        assert not one.try_withdraw()  # it sees two's retries
        assert one.statistics().retries == 2


async def test_retry_takes_the_shared_budget(redis_client: Any) -> None:
    """trine.Retry gives up when the fleet's budget is spent, with the budget's note."""
    budget = trine.redis.RetryBudget(redis_client, "api", ratio=0.0, min_per_second=0.0)
    retry = trine.Retry(attempts=3, budget=budget, backoff=trine.Backoff.constant(0))
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        raise OSError("down")

    async with budget:
        with pytest.raises(OSError, match=r"^down") as info:
            await retry.call(flaky)
    assert calls == 1
    assert "the retry budget is exhausted" in str(info.value.__notes__)
    assert budget.statistics().refusals == 1


async def test_leaving_hands_in_what_was_counted(redis_client: Any) -> None:
    """The last counts reach the server when the block ends, not a sync interval later."""
    async with trine.redis.RetryBudget(redis_client, "api", sync_interval=60) as budget:
        for _ in range(3):
            budget.deposit()
    async with trine.redis.RetryBudget(redis_client, "api") as later:
        assert later.statistics().requests == 3
    assert budget.sync_statistics().unsynced_requests == 0


async def test_the_budget_is_shared_only_inside_async_with(redis_client: Any) -> None:
    """Outside its block nothing would be shared: deposit and try_withdraw refuse."""
    budget = trine.redis.RetryBudget(redis_client, "api")
    with pytest.raises(RuntimeError, match=r"only inside `async with budget:`"):
        budget.deposit()
    with pytest.raises(RuntimeError, match=r"only inside"):
        budget.try_withdraw()
    async with budget:
        with pytest.raises(RuntimeError, match=r"already open"):
            async with budget:
                pass  # pragma: no cover - not entered


async def test_an_exception_from_the_block_comes_out_as_itself(redis_client: Any) -> None:
    """The sync task's nursery does not wrap the block's error in a group."""
    with pytest.raises(KeyError, match=r"^'mine'$"):
        async with trine.redis.RetryBudget(redis_client, "api"):
            raise KeyError("mine")


async def test_without_a_server_fail_closed_refuses_and_fail_open_asks_the_local_twin() -> None:
    """While unavailable, fail_closed allows no retry; fail_open lets the local budget decide."""
    async with coredis.Redis(host="127.0.0.1", port=free_port()) as client:
        async with trine.redis.RetryBudget(client, "api") as closed:
            closed.deposit()
            assert not closed.try_withdraw()
            assert closed.sync_statistics().local_decisions == 1
        options: dict[str, Any] = {"ratio": 0.0, "min_per_second": 0.1, "window": 10.0}
        async with trine.redis.RetryBudget(
            client, "api", on_unavailable="fail_open", **options
        ) as opened:
            assert opened.try_withdraw()  # the local reserve: 0.1/s over 10 s
            assert not opened.try_withdraw()
            assert opened.local.statistics().retries == 1
