"""trine.redis.stream_source and stream_sink against a real redis-server, in trine.Pipeline."""

from __future__ import annotations

from typing import Any

import pytest
import trio

coredis = pytest.importorskip("coredis")

import trine  # noqa: E402
import trine.redis  # noqa: E402

pytestmark = pytest.mark.usefixtures("redis_server")


async def fill(client: Any, stream: str, count: int) -> list[str]:
    return [(await client.xadd(stream, {"n": str(n)})).decode() for n in range(count)]


def number(entry: trine.redis.StreamEntry[Any]) -> int:
    return int(entry.value[b"n"])


async def square(entry: trine.redis.StreamEntry[Any]) -> trine.redis.StreamEntry[Any]:
    return entry.with_value({"square": number(entry) ** 2, "from": entry.id})


async def test_a_pipeline_drains_a_stream_into_another(redis_client: Any) -> None:
    """Every entry is read, processed, written on and acknowledged; nothing stays pending."""
    ids = await fill(redis_client, "jobs", 20)
    source = trine.redis.stream_source(
        redis_client, "jobs", group="g", consumer="c", stop_when_idle=0.2
    )
    sink = trine.redis.stream_sink(redis_client, "squares")
    written = await trine.Pipeline.source(source).map(square, workers=4).map(sink).collect()
    assert len(written) == 20
    assert all(isinstance(i, str) for i in written)
    out = [e.field_values for e in await redis_client.xrange("squares")]
    assert sorted(o[b"from"].decode() for o in out) == ids
    assert (await redis_client.xpending("jobs", "g")).pending == 0
    assert source.statistics().read == 20
    assert sink.statistics().written == 20


async def test_a_batch_is_written_in_one_round_trip(redis_client: Any) -> None:
    """After .batch(n), the sink settles a list of entries with one script."""
    await fill(redis_client, "jobs", 10)
    source = trine.redis.stream_source(
        redis_client, "jobs", group="g", consumer="c", count=10, stop_when_idle=0.2
    )
    sink = trine.redis.stream_sink(redis_client, "squares", maxlen=1000)
    batches = await trine.Pipeline.source(source).map(square).batch(5).map(sink).collect()
    assert [len(batch) for batch in batches] == [5, 5]
    assert sink.statistics().round_trips == 2
    assert await redis_client.xlen("squares") == 10


async def test_two_consumers_share_the_entries_between_them(redis_client: Any) -> None:
    """A group hands each entry to one consumer; together they write each once."""
    await fill(redis_client, "jobs", 30)
    sink = trine.redis.stream_sink(redis_client, "squares")

    async def consume(name: str) -> None:
        source = trine.redis.stream_source(
            redis_client, "jobs", group="g", consumer=name, count=2, stop_when_idle=0.3
        )

        async def slow_square(entry: Any) -> Any:
            await trio.sleep(0.005)
            return await square(entry)

        await trine.Pipeline.source(source).map(slow_square).map(sink).run()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume, "a")
        nursery.start_soon(consume, "b")
    squares = sorted(int(e.field_values[b"square"]) for e in await redis_client.xrange("squares"))
    assert squares == [n * n for n in range(30)]


async def test_a_late_result_of_a_reclaimed_delivery_is_not_written(redis_client: Any) -> None:
    """A slow consumer's entry is reclaimed by another; the slow one's write is dropped."""
    await fill(redis_client, "jobs", 1)
    sink = trine.redis.stream_sink(redis_client, "squares")
    slow = trine.redis.stream_source(redis_client, "jobs", group="g", consumer="slow")
    fast = trine.redis.stream_source(
        redis_client, "jobs", group="g", consumer="fast", claim_idle=0.3, stop_when_idle=0.1
    )
    async with trine.Pipeline.source(slow).open() as taken:
        [entry] = [await taken.receive()]
    await trio.sleep(0.35)  # idle past claim_idle: "slow" looks dead
    [reclaimed] = await trine.Pipeline.source(fast).collect()
    assert reclaimed.deliveries == 2
    assert await sink(await square(entry)) is None  # the first delivery: fenced off
    assert await sink(await square(reclaimed)) is not None
    assert await sink(await square(reclaimed)) is None  # settled already
    assert await redis_client.xlen("squares") == 1
    assert sink.statistics().stale == 2


async def test_ack_and_dead_letter_settle_without_the_sink(redis_client: Any) -> None:
    """source.ack as a last stage; source.dead_letter as on_error moves failures at once."""
    await fill(redis_client, "jobs", 4)
    source = trine.redis.stream_source(
        redis_client, "jobs", group="g", consumer="c", stop_when_idle=0.2
    )

    async def odd_fails(entry: Any) -> Any:
        if number(entry) % 2:
            raise ValueError(f"odd {number(entry)}")
        return entry

    acked = await (
        trine.Pipeline.source(source)
        .map(odd_fails, on_error=source.dead_letter)
        .map(source.ack)
        .collect()
    )
    assert acked == [1, 1]
    dead = [e.field_values for e in await redis_client.xrange("jobs:dead")]
    assert [d[b"dead_letter.reason"] for d in dead] == [b"ValueError: odd 1", b"ValueError: odd 3"]
    assert (await redis_client.xpending("jobs", "g")).pending == 0
    assert (source.statistics().acked, source.statistics().dead_lettered) == (2, 2)


async def test_an_entry_acks_itself_once(redis_client: Any) -> None:
    """StreamEntry.ack: True the first time, False after."""
    await fill(redis_client, "jobs", 1)
    source = trine.redis.stream_source(redis_client, "jobs", group="g", consumer="c")
    async with trine.Pipeline.source(source).open() as entries:
        entry = await entries.receive()
    assert repr(entry).startswith(f"<trine.redis.StreamEntry jobs/{entry.id} delivery 1: ")
    assert await entry.ack()
    assert not await entry.ack()


async def test_the_sink_refuses_what_it_cannot_write(redis_client: Any) -> None:
    """Not an entry, or a value that is not a mapping of fields: TypeError saying what to do."""
    await fill(redis_client, "jobs", 1)
    source = trine.redis.stream_source(redis_client, "jobs", group="g", consumer="c")
    sink = trine.redis.stream_sink(redis_client, "out")
    async with trine.Pipeline.source(source).open() as entries:
        entry = await entries.receive()
    with pytest.raises(TypeError, match=r"entry.with_value\(result\)"):
        await sink({"n": 1})  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^entry.value must be a mapping of stream fields"):
        await sink(entry.with_value(42))
    with pytest.raises(ValueError, match=r"^entry.value must have at least one field"):
        await sink(entry.with_value({}))
    with pytest.raises(TypeError, match=r"entry.value values must be str, bytes, int or float"):
        await sink(entry.with_value({"x": None}))
    assert await redis_client.xlen("out") == 0


async def test_a_new_group_starts_where_asked(redis_client: Any) -> None:
    """start='$' skips what is already in the stream; the default '0' reads it all."""
    await fill(redis_client, "jobs", 3)
    late = trine.redis.stream_source(
        redis_client, "jobs", group="late", consumer="c", start="$", stop_when_idle=0.1
    )
    assert await trine.Pipeline.source(late).collect() == []
    early = trine.redis.stream_source(
        redis_client, "jobs", group="early", consumer="c", stop_when_idle=0.1
    )
    assert [number(e) for e in await trine.Pipeline.source(early).collect()] == [0, 1, 2]
