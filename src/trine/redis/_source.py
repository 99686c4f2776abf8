"""StreamSource: a Redis stream, read through a consumer group, as a pipeline's source.

The read loop, top to bottom: make sure the group exists; every
``claim_idle / 2`` seconds reclaim the entries idle longer than ``claim_idle``
in any consumer's pending list (``XAUTOCLAIM``, in a script that also moves
entries delivered more than ``max_deliveries`` times to the dead-letter
stream); in between, read new entries (``XREADGROUP``, blocking for at most a
second). Each entry is handed on as a :class:`~trine.redis.StreamEntry` and
stays pending until a stage settles it. No task runs beside the loop: it is
the async iterator the pipeline reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, final

import attrs
import coredis.exceptions
import trio

from .._util import check_int, check_number, check_optional_number
from ._entry import StreamEntry, _Consumer, entries_of, settle
from ._errors import RedisUnavailable
from ._link import Client, _Link, decode

__all__ = ["StreamSource", "StreamSourceStatistics", "check_stream_name", "stream_source"]

# The longest a read blocks on the server, so that claims and the idle stop
# are looked at at least this often.
_LONGEST_BLOCK = 1.0


def check_stream_name(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    if not value:
        raise ValueError(f"{name} must not be empty, got ''")
    return value


@attrs.frozen
class StreamSourceStatistics:
    """What :meth:`StreamSource.statistics` reports about this consumer's reading."""

    read: int
    """New entries read (first deliveries)."""
    reclaimed: int
    """Entries reclaimed from idle pending lists (this consumer's own included)."""
    dead_lettered: int
    """Entries moved to the dead-letter stream: by a reclaim after ``max_deliveries``,
    or by :meth:`StreamSource.dead_letter`."""
    acked: int
    """Entries acknowledged through :meth:`StreamSource.ack` / :meth:`StreamEntry.ack`."""
    stale: int
    """Settlements refused because the entry's delivery was no longer the current one."""
    round_trips: int
    """Commands and scripts run on the server."""
    unavailable: int
    """Round trips that failed because the server was out of reach (the loop waited and went on)."""


@final
@attrs.define(eq=False, repr=False, init=False)
class StreamSource:
    """A Redis stream read by one consumer of a group: ``Pipeline.source(source)``.

    Build it with :func:`stream_source`. Iterating it reads the stream forever
    (or until *stop_when_idle*), yielding :class:`StreamEntry` items; each
    pipeline run reads afresh from where the group is.
    """

    _consumer: _Consumer = attrs.field(init=False)
    _claim_idle: float = attrs.field(init=False)
    _max_deliveries: int = attrs.field(init=False)
    _count: int = attrs.field(init=False)
    _start: str = attrs.field(init=False)
    _stop_when_idle: float | None = attrs.field(init=False)
    _read: int = attrs.field(init=False, default=0)
    _reclaimed: int = attrs.field(init=False, default=0)
    _dead_lettered: int = attrs.field(init=False, default=0)
    _acked: int = attrs.field(init=False, default=0)
    _stale: int = attrs.field(init=False, default=0)

    def __init__(
        self,
        consumer: _Consumer,
        *,
        claim_idle: float,
        max_deliveries: int,
        count: int,
        start: str,
        stop_when_idle: float | None,
    ) -> None:
        self.__attrs_init__()
        self._consumer = consumer
        self._claim_idle = claim_idle
        self._max_deliveries = max_deliveries
        self._count = count
        self._start = start
        self._stop_when_idle = stop_when_idle

    @property
    def stream(self) -> str:
        """The stream read."""
        return self._consumer.stream

    @property
    def group(self) -> str:
        """The consumer group."""
        return self._consumer.group

    @property
    def consumer(self) -> str:
        """This consumer's name in the group."""
        return self._consumer.name

    @property
    def dead_letter_stream(self) -> str:
        """Where entries go that were delivered more than ``max_deliveries`` times."""
        return self._consumer.dead_letter

    def __repr__(self) -> str:
        return (
            f"<trine.redis.StreamSource {self.stream!r} group={self.group!r} "
            f"consumer={self.consumer!r} on {self._consumer.link.server}>"
        )

    # -- reading ------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[StreamEntry[dict[Any, Any]]]:
        return self._entries()

    async def _entries(self) -> AsyncIterator[StreamEntry[dict[Any, Any]]]:
        link = self._consumer.link
        claim_every = self._claim_idle / 2
        next_claim = trio.current_time()  # first: pick up what a dead consumer left
        cursor = "0-0"
        last_news = trio.current_time()
        group_ready = False
        while True:
            try:
                if not group_ready:
                    await self._create_group()
                    group_ready = True
                if trio.current_time() >= next_claim:
                    cursor, claimed = await self._claim(cursor)
                    # A scan that stopped early goes on at once; a full one waits.
                    next_claim = trio.current_time() + (0.0 if cursor != "0-0" else claim_every)
                    if claimed:
                        last_news = trio.current_time()
                    for entry in claimed:
                        yield entry
                block = min(_LONGEST_BLOCK, max(0.0, next_claim - trio.current_time()))
                if self._stop_when_idle is not None:
                    block = min(block, self._stop_when_idle)
                fresh = await self._read_new(block)
            except RedisUnavailable:
                await trio.sleep(link.recheck_interval)
                continue
            except coredis.exceptions.StreamConsumerGroupError:
                group_ready = False  # the server lost the group (a restart without data)
                continue
            if fresh:
                last_news = trio.current_time()
                for entry in fresh:
                    yield entry
            elif (
                self._stop_when_idle is not None
                and trio.current_time() - last_news >= self._stop_when_idle
            ):
                return

    async def _create_group(self) -> None:
        consumer = self._consumer
        command = consumer.link.client.xgroup_create(
            consumer.stream, consumer.group, self._start, mkstream=True
        )
        # BUSYGROUP: another consumer made it first.
        with contextlib.suppress(coredis.exceptions.StreamDuplicateConsumerGroupError):
            await consumer.link.call(command)

    def _entry(
        self, entry_id: object, deliveries: int, fields: Mapping[Any, Any]
    ) -> StreamEntry[Any]:
        values = dict(fields)
        return StreamEntry(
            self._consumer.stream,
            decode(entry_id),
            values,
            deliveries,
            values,
            _consumer=self._consumer,
        )

    async def _claim(self, cursor: str) -> tuple[str, list[StreamEntry[Any]]]:
        consumer = self._consumer
        reply = await consumer.link.run(
            "stream_claim",
            [consumer.stream, consumer.dead_letter],
            [
                consumer.group,
                consumer.name,
                int(self._claim_idle * 1000),
                cursor,
                self._count,
                self._max_deliveries,
            ],
        )
        self._dead_lettered += int(reply[1])
        claimed = []
        for entry_id, deliveries, flat in reply[2:]:
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            claimed.append(self._entry(entry_id, int(deliveries), fields))
        self._reclaimed += len(claimed)
        return decode(reply[0]), claimed

    async def _read_new(self, block: float) -> list[StreamEntry[Any]]:
        consumer = self._consumer
        link = consumer.link
        milliseconds = int(block * 1000)
        command = link.client.xreadgroup(
            consumer.group,
            consumer.name,
            streams={consumer.stream: ">"},
            count=self._count,
            block=milliseconds if milliseconds > 0 else None,
        )
        reply = await link.call(command, blocking_for=block)
        if not reply:
            return []
        fresh = [
            self._entry(item.identifier, 1, item.field_values)
            for items in reply.values()
            for item in items
        ]
        self._read += len(fresh)
        return fresh

    # -- settling -----------------------------------------------------------------

    async def ack(self, entries: StreamEntry[Any] | Iterable[StreamEntry[Any]]) -> int:
        """Acknowledge *entries* (one, or a batch) without writing them anywhere; one round trip.

        Usable as a pipeline's last stage for work that has no output stream:
        ``.map(source.ack)`` (or after ``.batch(n)``). Returns how many this
        call acknowledged; an entry settled already, or whose delivery is no
        longer the current one, is skipped.

        Raises:
          TypeError: if *entries* holds something else than entries.
          RedisUnavailable: if the server is out of reach.
        """
        listed = entries_of(entries, "entries")
        if not listed:
            return 0
        consumer = self._consumer
        results = await settle(consumer.link, consumer, "ack", listed, target=consumer.stream)
        done = sum(result is not None for result in results)
        self._acked += done
        self._stale += len(results) - done
        return done

    async def dead_letter(self, entry: StreamEntry[Any], error: BaseException) -> bool:
        """Move *entry* to the dead-letter stream now, with *error* as the reason; one round trip.

        Its signature is a pipeline's ``on_error`` function's, so a stage can
        dead-letter what it fails on at the first failure:
        ``.map(handle, on_error=source.dead_letter)``. The dead letter holds the
        entry's original fields and ``dead_letter.stream``,
        ``dead_letter.id``, ``dead_letter.deliveries`` and
        ``dead_letter.reason``. Returns ``False`` if the entry's delivery is
        no longer the current one (nothing was written).

        Raises:
          TypeError: if *entry* is not a :class:`StreamEntry`.
          RedisUnavailable: if the server is out of reach.
        """
        if not isinstance(entry, StreamEntry):
            raise TypeError(f"entry must be a StreamEntry, got {entry!r}")
        reason = f"{type(error).__name__}: {error}"
        consumer = self._consumer
        [result] = await settle(
            consumer.link, consumer, "dead", [entry], target=consumer.dead_letter, reason=reason
        )
        if result is None:
            self._stale += 1
            return False
        self._dead_lettered += 1
        return True

    def statistics(self) -> StreamSourceStatistics:
        """Return a fresh :class:`StreamSourceStatistics`."""
        link = self._consumer.link
        return StreamSourceStatistics(
            read=self._read,
            reclaimed=self._reclaimed,
            dead_lettered=self._dead_lettered,
            acked=self._acked,
            stale=self._stale,
            round_trips=link.round_trips,
            unavailable=link.failures,
        )


def stream_source(
    client: Client,
    stream: str,
    *,
    group: str,
    consumer: str,
    claim_idle: float = 30.0,
    max_deliveries: int = 5,
    dead_letter: str | None = None,
    count: int = 16,
    start: str = "0",
    stop_when_idle: float | None = None,
    timeout: float = 1.0,
    recheck_interval: float = 1.0,
) -> StreamSource:
    """A Redis stream, read by *consumer* of *group*, as a :class:`trine.Pipeline` source.

    ::

        source = trine.redis.stream_source(client, "orders", group="billing", consumer=host)
        await (
            trine.Pipeline.source(source)
            .map(charge, workers=8)                        # returns entry.with_value(receipt)
            .map(trine.redis.stream_sink(client, "receipts"))
            .run()
        )

    **Delivery: at least once.** Every entry is handed to some consumer's
    pipeline at least once and stays pending until it is settled -- written
    on and acknowledged by :func:`stream_sink`, acknowledged by
    :meth:`StreamSource.ack` / :meth:`StreamEntry.ack`, or moved by
    :meth:`StreamSource.dead_letter` -- so an entry whose consumer dies, or
    whose stage fails under ``on_error="skip"`` (or ``"raise"``), is
    delivered again: entries idle longer than *claim_idle* in any consumer's
    pending list are reclaimed (``XAUTOCLAIM``) every ``claim_idle / 2``
    seconds, this consumer's own included. An entry delivered more than
    *max_deliveries* times is not handed on again but moved to the
    dead-letter stream (a poisoned entry cannot loop forever). A stage's side
    effects may therefore happen more than once; the settlement itself is
    fenced: it checks, in the same script, that the entry's delivery is still
    the current one, so the late result of a delivery that was reclaimed is
    dropped, and a sink writes each entry's result once.

    Choose *claim_idle* longer than an entry can spend in your pipeline
    (buffers included): an entry still being worked on is reclaimed after it,
    and processed twice (its first result then dropped).

    While the server is out of reach the source waits *recheck_interval*
    seconds and reads on (no entry is lost: they stay in the stream); if the
    server lost the group (a restart without data), it is made again.

    Args:
      client: a ``coredis.Redis`` (or ``RedisCluster``) client.
      stream: the stream's key.
      group: the consumer group (made at *start*, with the stream, if missing).
      consumer: this consumer's name, unique in the group (a host name and pid).
      claim_idle: seconds an entry must be idle in a pending list to be reclaimed (> 0).
      max_deliveries: deliveries after which an entry is dead-lettered (>= 1).
      dead_letter: the dead-letter stream's key (default ``stream + ":dead"``).
        On a cluster, give the streams one hash tag (``{orders}``, ``{orders}:dead``).
      count: entries read or reclaimed per round trip (>= 1).
      start: where a new group starts: ``"0"`` (the whole stream, the
        default) or ``"$"`` (only entries added from now on), or an entry id.
      stop_when_idle: end the source, so that the pipeline finishes, once
        nothing new was read or reclaimed for this many seconds (> 0); ``None``
        (default) reads forever.
      timeout, recheck_interval: as for :class:`trine.redis.RateLimiter`.

    Raises:
      TypeError, ValueError: for an invalid argument, naming it.
    """
    stream = check_stream_name("stream", stream)
    group = check_stream_name("group", group)
    consumer = check_stream_name("consumer", consumer)
    claim_idle = check_number("claim_idle", claim_idle, exclusive=True)
    max_deliveries = check_int("max_deliveries", max_deliveries)
    dead_letter = check_stream_name(
        "dead_letter", f"{stream}:dead" if dead_letter is None else dead_letter
    )
    count = check_int("count", count)
    start = check_stream_name("start", start)
    stop_when_idle = check_optional_number("stop_when_idle", stop_when_idle, exclusive=True)
    link = _Link(
        client,
        f"stream source {stream!r}",
        timeout=timeout,
        recheck_interval=recheck_interval,
    )
    return StreamSource(
        _Consumer(link, stream, group, consumer, dead_letter),
        claim_idle=claim_idle,
        max_deliveries=max_deliveries,
        count=count,
        start=start,
        stop_when_idle=stop_when_idle,
    )
