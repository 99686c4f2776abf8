"""StreamEntry: one entry of a Redis stream on its way through a pipeline, and how it is settled.

An entry read by a :class:`~trine.redis.StreamSource` stays pending in its
consumer group until it is *settled*: written on by a sink and acknowledged
(one script), acknowledged alone, or moved to the dead-letter stream. Each
settlement first checks that the entry's delivery is still the current one --
still this consumer's, not delivered again since -- so the result of a
delivery that another consumer reclaimed in the meantime is dropped instead of
being written twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar, final

import attrs

from ._link import _Link, decode

__all__ = ["StreamEntry", "settle"]

T_co = TypeVar("T_co", covariant=True)
U = TypeVar("U")


@final
@attrs.frozen
class _Consumer:
    """Who reads: the stream, the group, the consumer name, and the link to the server."""

    link: _Link
    stream: str
    group: str
    name: str
    dead_letter: str


@final
@attrs.frozen(repr=False)
class StreamEntry(Generic[T_co]):
    """One entry of a Redis stream, as a :class:`~trine.redis.StreamSource` hands it to a pipeline.

    It carries its identity through the stages: a stage that computes
    something from the entry returns ``entry.with_value(result)``, an entry
    with the same id and delivery and a new :attr:`value`, so the last stage
    can settle it -- :func:`~trine.redis.stream_sink` writes :attr:`value` on
    and acknowledges the entry in one step, :meth:`ack` only acknowledges it,
    and :meth:`StreamSource.dead_letter <trine.redis.StreamSource.dead_letter>`
    moves it to the dead-letter stream::

        async def price(entry):
            order = json.loads(entry.value[b"order"])
            return entry.with_value({"order_id": order["id"], "total": total(order)})

    Until it is settled the entry stays pending, and after ``claim_idle``
    seconds another consumer may reclaim it (at least once, never lost).
    """

    stream: str
    """The stream it was read from."""
    id: str
    """Its id in that stream, such as ``"1718000000000-0"``."""
    fields: Mapping[Any, Any]
    """Its fields as read (``bytes`` unless the client decodes responses); what a
    dead letter keeps."""
    deliveries: int
    """Which delivery of the entry this is: 1 when first read, one more each
    time it was reclaimed. A late settlement of an older delivery is refused."""
    value: T_co
    """What the stages made of it: :attr:`fields` when read, then whatever
    :meth:`with_value` put there."""
    _consumer: _Consumer = attrs.field(alias="_consumer")

    def with_value(self, value: U) -> StreamEntry[U]:
        """The same entry (id, delivery, fields) carrying *value*."""
        return StreamEntry(
            self.stream, self.id, self.fields, self.deliveries, value, _consumer=self._consumer
        )

    async def ack(self) -> bool:
        """Acknowledge the entry without writing it anywhere (one round trip).

        Returns ``True`` if this call acknowledged it, ``False`` if it was
        settled already or its delivery is no longer the current one.

        Raises:
          RedisUnavailable: if the server is out of reach.
        """
        consumer = self._consumer
        [result] = await settle(consumer.link, consumer, "ack", [self], target=self.stream)
        return result is not None

    def __repr__(self) -> str:
        return (
            f"<trine.redis.StreamEntry {self.stream}/{self.id} delivery {self.deliveries}: "
            f"{self.value!r}>"
        )


def _flatten(fields: object, name: str) -> list[object]:
    """A mapping of fields as XADD takes them, field, value, ..."""
    if not isinstance(fields, Mapping):
        raise TypeError(f"{name} must be a mapping of stream fields, got {fields!r}")
    if not fields:
        raise ValueError(f"{name} must have at least one field, got {fields!r}")
    flat: list[object] = []
    for field, value in fields.items():
        if not isinstance(field, str | bytes):
            raise TypeError(f"{name} field names must be str or bytes, got {field!r}")
        if isinstance(value, bool) or not isinstance(value, str | bytes | int | float):
            raise TypeError(
                f"{name} values must be str, bytes, int or float, got {value!r} for {field!r}"
            )
        flat += [field, value]
    return flat


async def settle(
    link: _Link,
    consumer: _Consumer,
    mode: Literal["write", "dead", "ack"],
    entries: Sequence[StreamEntry[Any]],
    *,
    target: str,
    maxlen: int | None = None,
    reason: str = "",
) -> list[str | None]:
    """Settle *entries* (read by *consumer*) in one script through *link*.

    Returns, per entry, the id written (``""`` for ack) or ``None``.

    ``None`` means the entry's delivery was no longer the current one, so
    nothing was written or acknowledged.
    """
    args: list[object] = [consumer.group, consumer.name, mode, "" if maxlen is None else maxlen]
    args.append(reason)
    for entry in entries:
        if mode == "ack":
            fields: list[object] = []
        elif mode == "dead":
            fields = _flatten(entry.fields, "fields")
        else:
            fields = _flatten(entry.value, "entry.value")
        args += [entry.id, entry.deliveries, len(fields) // 2, *fields]
    reply = await link.run("stream_settle", [consumer.stream, target], args, shield=True)
    return [None if result == 0 else decode(result) for result in reply]


def entries_of(items: object, name: str) -> list[StreamEntry[Any]]:
    """One entry or an iterable of entries (a batch) as a list, checked."""
    if isinstance(items, StreamEntry):
        return [items]
    if isinstance(items, Iterable) and not isinstance(items, str | bytes | Mapping):
        listed = list(items)
        for item in listed:
            if not isinstance(item, StreamEntry):
                raise TypeError(
                    f"{name} must be StreamEntry items (or batches of them), got {item!r}; "
                    "stages keep an entry's identity with entry.with_value(result)"
                )
        return listed
    raise TypeError(
        f"{name} must be a StreamEntry or a batch of them, got {items!r}; "
        "stages keep an entry's identity with entry.with_value(result)"
    )
