"""Names reach every event: the Policy's name, the function called, the item."""

from __future__ import annotations

import functools

import pytest
import trio

import trine
from trine import AttemptTimedOut, RetryGaveUp, RetryScheduled


class Down(Exception):
    pass


async def fetch(url: str) -> str:
    raise Down(url)


class Client:
    async def get(self, path: str, page: int) -> str:
        raise Down(path)


async def test_a_retry_in_a_policy_takes_the_policys_name(autojump_clock: object) -> None:
    """RetryScheduled/RetryGaveUp from a nameless Retry inside Policy(name=) carry that name."""
    events: list[trine.GuardEvent] = []
    retry = trine.Retry(2, backoff=trine.Backoff.constant(1.0), hooks=[events.append])
    policy = trine.Policy(retry=retry, timeout=5.0, name="api")
    with pytest.raises(Down) as caught:
        await policy.call(fetch, "https://example.org/x")
    item = "'https://example.org/x'"
    assert events == [
        RetryScheduled("api", 1, 1.0, events[0].error, "fetch", item),  # type: ignore[union-attr]
        RetryGaveUp("api", 2, caught.value, "attempts", "fetch", item),
    ]


async def test_the_retrys_own_name_wins_over_the_policys(autojump_clock: object) -> None:
    """A Retry with a name keeps it inside a named Policy; with no layer inside either."""
    events: list[trine.GuardEvent] = []
    retry = trine.Retry(2, backoff=trine.Backoff.constant(0), name="own", hooks=[events.append])
    policy = trine.Policy(retry=retry, name="api")
    with pytest.raises(Down):
        await policy.call(fetch, "u")
    assert [(event.name, event.call, event.item) for event in events] == [  # type: ignore[union-attr]
        ("own", "fetch", "'u'"),
        ("own", "fetch", "'u'"),
    ]


async def test_two_policies_sharing_a_retry_each_name_their_events(
    autojump_clock: object,
) -> None:
    """The layer the Retry sees is each Policy's own, so its events name the right one."""
    events: list[trine.GuardEvent] = []
    retry = trine.Retry(1, hooks=[events.append])
    for name in ("first", "second"):
        with pytest.raises(Down):
            await trine.Policy(retry=retry, name=name).call(fetch, "u")
    assert [event.name for event in events] == ["first", "second"]


async def test_events_name_a_method_and_show_no_item_for_two_arguments() -> None:
    """call is the qualified name (Client.get); item is None unless one argument."""
    events: list[trine.GuardEvent] = []
    retry = trine.Retry(1, hooks=[events.append])
    with pytest.raises(Down):
        await retry.call(Client().get, "/users", 2)
    assert isinstance(events[0], RetryGaveUp)
    assert (events[0].call, events[0].item) == ("Client.get", None)


async def test_events_see_through_partials_and_chaos(autojump_clock: object) -> None:
    """A partial names its function; Chaos (innermost) is not what the event names."""
    events: list[trine.GuardEvent] = []
    policy = trine.Policy(
        retry=trine.Retry(1, hooks=[events.append]),
        timeout=1.0,
        chaos=trine.Chaos(latency=5.0),
        hooks=[events.append],
    )

    async def slow(x: int, *, scale: int) -> int:
        await trio.sleep(10)
        return x * scale

    with pytest.raises(trio.TooSlowError):
        await policy.call(functools.partial(slow, scale=2), 7)
    qualname = slow.__qualname__
    assert events[0] == AttemptTimedOut(None, 1.0, qualname, "7")
    assert isinstance(events[1], RetryGaveUp)
    assert (events[1].call, events[1].item) == (qualname, "7")


async def test_a_pipeline_stage_item_is_shown_as_reprlib_shows_it(autojump_clock: object) -> None:
    """Events from a stage's policy carry the stage function and the item, shortened."""
    events: list[trine.GuardEvent] = []
    policy = trine.Policy(
        retry=trine.Retry(2, backoff=trine.Backoff.constant(0.5), hooks=[events.append]),
        name="stage-policy",
    )

    async def parse(record: str) -> str:
        raise Down(record)

    pipe = trine.Pipeline.source(["x" * 200]).map(parse, policy=policy, on_error="skip")
    assert await pipe.collect() == []
    shown = repr("x" * 200)
    assert events[0].item == shown[:28] + "..." + shown[-29:]  # type: ignore[union-attr]
    assert len(events[0].item) == 60  # type: ignore[union-attr, arg-type]
    assert [type(event) for event in events] == [RetryScheduled, RetryGaveUp]
    assert {(event.name, event.call) for event in events} == {  # type: ignore[union-attr]
        ("stage-policy", parse.__qualname__)
    }


async def test_the_async_for_style_has_no_call_to_name() -> None:
    """`async for attempt in retry` has no function: call and item are None."""
    events: list[trine.GuardEvent] = []
    retry = trine.Retry(1, hooks=[events.append])

    async def block() -> None:
        async for attempt in retry:
            with attempt:
                raise Down("x")

    with pytest.raises(Down):
        await block()
    assert events == [RetryGaveUp(None, 1, events[0].error, "attempts")]  # type: ignore[union-attr]
