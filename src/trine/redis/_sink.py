"""stream_sink: a pipeline's last stage that writes each entry's value on and acks the entry."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, final, overload

import attrs

from .._util import check_int
from ._entry import StreamEntry, entries_of, settle
from ._link import Client, _Link
from ._source import check_stream_name

__all__ = ["StreamSink", "StreamSinkStatistics", "stream_sink"]


@attrs.frozen
class StreamSinkStatistics:
    """What :meth:`StreamSink.statistics` reports."""

    written: int
    """Entries written to the sink's stream (and acknowledged in the same step)."""
    stale: int
    """Entries not written because their delivery was no longer the current one
    (another consumer reclaimed them, or they were settled already)."""
    round_trips: int
    """Scripts run on the server (one per call, per source the batch came from)."""
    unavailable: int
    """Round trips that failed because the server was out of reach."""


@final
@attrs.define(eq=False, repr=False, init=False)
class StreamSink:
    """Writes entries on and acknowledges them: :func:`stream_sink` makes one, a stage calls it.

    Call it with one :class:`StreamEntry` or a batch of them (after
    ``.batch(n)``: one round trip for the whole batch).
    """

    _link: _Link = attrs.field(init=False)
    _stream: str = attrs.field(init=False)
    _maxlen: int | None = attrs.field(init=False)
    _written: int = attrs.field(init=False, default=0)
    _stale: int = attrs.field(init=False, default=0)

    def __init__(self, link: _Link, stream: str, maxlen: int | None) -> None:
        self.__attrs_init__()
        self._link = link
        self._stream = stream
        self._maxlen = maxlen

    @property
    def stream(self) -> str:
        """The stream written to."""
        return self._stream

    @overload
    async def __call__(self, entries: StreamEntry[Any]) -> str | None: ...
    @overload
    async def __call__(self, entries: Iterable[StreamEntry[Any]]) -> list[str | None]: ...
    async def __call__(
        self, entries: StreamEntry[Any] | Iterable[StreamEntry[Any]]
    ) -> str | list[str | None] | None:
        """Write each entry's :attr:`~StreamEntry.value` (a mapping of fields) and acknowledge it.

        Write and acknowledgement are one script per source the entries came
        from, so an entry is in the sink's stream if and only if it was
        acknowledged; an entry whose delivery is no longer the current one
        is neither written nor acknowledged.

        Returns:
          for one entry, the id it was written under, or ``None`` if it was
          not written; for a batch, a list of those.

        Raises:
          TypeError: if an item is not a :class:`StreamEntry`, or its value is
            not a mapping of str or bytes fields to str, bytes, int or float.
          ValueError: if an entry's value has no field.
          RedisUnavailable: if the server is out of reach (nothing was written
            for that source; the entries stay pending, to be delivered again).
        """
        single = isinstance(entries, StreamEntry)
        listed = entries_of(entries, "entries")
        written: dict[int, str | None] = {}
        # One script per source (stream, group, consumer) the batch came from.
        by_source = itertools.groupby(
            sorted(range(len(listed)), key=lambda i: id(listed[i]._consumer)),
            key=lambda i: id(listed[i]._consumer),
        )
        for _, indices in by_source:
            picked = list(indices)
            consumer = listed[picked[0]]._consumer
            results = await settle(
                self._link,
                consumer,
                "write",
                [listed[i] for i in picked],
                target=self._stream,
                maxlen=self._maxlen,
            )
            for i, result in zip(picked, results, strict=True):
                written[i] = result
        outcome = [written[i] for i in range(len(listed))]
        done = sum(result is not None for result in outcome)
        self._written += done
        self._stale += len(outcome) - done
        return outcome[0] if single else outcome

    def statistics(self) -> StreamSinkStatistics:
        """Return a fresh :class:`StreamSinkStatistics`."""
        return StreamSinkStatistics(
            written=self._written,
            stale=self._stale,
            round_trips=self._link.round_trips,
            unavailable=self._link.failures,
        )

    def __repr__(self) -> str:
        maxlen = "" if self._maxlen is None else f" maxlen~{self._maxlen}"
        return f"<trine.redis.StreamSink {self._stream!r}{maxlen}>"


def stream_sink(
    client: Client,
    stream: str,
    *,
    maxlen: int | None = None,
    timeout: float = 1.0,
    recheck_interval: float = 1.0,
) -> StreamSink:
    """A pipeline's last stage: write each entry's value to *stream* and acknowledge the entry.

    ::

        pipe = (
            trine.Pipeline.source(stream_source(client, "orders", group="g", consumer=name))
            .map(price, workers=4)                      # entry.with_value({"total": ...})
            .batch(50, timeout=0.05)                    # optional: one round trip per batch
            .map(trine.redis.stream_sink(client, "priced", maxlen=100_000))
        )

    The write and the acknowledgement are one Lua script, fenced by the
    entry's delivery (see :func:`stream_source`): an entry reaches *stream*
    exactly when it is acknowledged, and the result of a delivery that
    another consumer has reclaimed is dropped, so each entry is written once
    even though it may have been processed more than once.

    Args:
      client: a ``coredis.Redis`` (or ``RedisCluster``) client, of the server
        the entries' source reads from (the write and the acknowledgement are
        one script; on a cluster, give the streams one hash tag).
      stream: the stream's key.
      maxlen: trim *stream* to about this many entries (``MAXLEN ~``, in whole
        nodes, as Redis recommends); ``None`` (default) never trims.
      timeout, recheck_interval: as for :class:`trine.redis.RateLimiter`.

    Raises:
      TypeError, ValueError: for an invalid argument, naming it.
    """
    stream = check_stream_name("stream", stream)
    if maxlen is not None:
        maxlen = check_int("maxlen", maxlen)
    link = _Link(
        client, f"stream sink {stream!r}", timeout=timeout, recheck_interval=recheck_interval
    )
    return StreamSink(link, stream, maxlen)
