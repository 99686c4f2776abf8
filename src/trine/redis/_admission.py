"""What the two shared rate limiters have in common: reserve on the server, sleep, give back.

An acquire is one script (one round trip): the server either admits the cost
now or *reserves* the earliest time it may go, and says how long that is from
now. The caller sleeps that long on its own clock and goes. So waiting costs
no further round trip and the order of admission is the order in which the
requests reached the server, across every process; the bound holds on the
times the server handed out.

A waiter cancelled during its sleep gives its reservation back (one more,
shielded round trip) as far as the limiter's rule allows. A round trip that
fails because the server is out of reach is handed to ``on_unavailable``:
``"fail_closed"`` raises :exc:`~trine.redis.RedisUnavailable`,
``"fail_open"`` asks the local twin (a :class:`trine.RateLimiter` or
:class:`trine.SlidingWindowLimiter` with the same settings, limiting this
process alone) instead.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import trio

from .._errors import RateLimitExceeded
from ._errors import RedisUnavailable
from ._link import OnUnavailable, _Link, check_name, check_on_unavailable, decode, seconds

__all__ = ["_Admissions", "check_key"]


class _LocalTwin(Protocol):
    async def acquire(self, cost: Any = 1, *, key: Any = None) -> None: ...
    def try_acquire(self, cost: Any = 1, *, key: Any = None) -> bool: ...
    def acquire_nowait(self, cost: Any = 1, *, key: Any = None) -> None: ...


def check_key(key: object) -> str | None:
    """A key is a str (part of a Redis key name) or None (the limiter's default key)."""
    if key is None or isinstance(key, str):
        return key
    raise TypeError(f"key must be a str or None, got {key!r}")


@attrs.define(eq=False, repr=False, init=False)
class _Admissions:
    """The acquire / try / nowait / refund flow; subclasses supply the script and its arguments."""

    _name: str = attrs.field(init=False)
    _link: _Link = attrs.field(init=False)
    _local: _LocalTwin = attrs.field(init=False)
    _on_unavailable: OnUnavailable = attrs.field(init=False)
    _prefix: str = attrs.field(init=False)
    _admitted: int = attrs.field(init=False, default=0)
    _admitted_cost: float = attrs.field(init=False, default=0.0)
    _rejected: int = attrs.field(init=False, default=0)
    _refunded: int = attrs.field(init=False, default=0)
    _fallbacks: int = attrs.field(init=False, default=0)
    _tasks_waiting: int = attrs.field(init=False, default=0)

    _KIND = ""  # in the keys' names
    _LABEL = ""  # in messages
    _ACQUIRE = ""
    _REFUND = ""

    def _setup(
        self,
        client: Any,
        name: object,
        local: _LocalTwin,
        *,
        on_unavailable: object,
        timeout: object,
        recheck_interval: object,
    ) -> None:
        self._name = check_name(name)
        self._on_unavailable = check_on_unavailable(on_unavailable)
        self._link = _Link(
            client,
            f"{self._LABEL} {self._name!r}",
            timeout=timeout,
            recheck_interval=recheck_interval,
        )
        self._local = local
        # One hash tag for every key of the limiter: on a cluster they share a slot.
        self._prefix = f"trine:{self._KIND}:{{{self._name}}}"

    # -- supplied by each limiter -----------------------------------------------

    def _check_cost(self, cost: object) -> float:
        raise NotImplementedError

    def _keys(self, key: str | None) -> list[str]:
        suffix = "" if key is None else f":{key}"
        return [self._prefix + suffix]

    def _acquire_args(self, cost: float, max_wait: float) -> list[object]:
        raise NotImplementedError

    def _refund_args(self, cost: float, reservation: str) -> list[object]:
        raise NotImplementedError

    def _limit_text(self) -> str:
        raise NotImplementedError

    def _unlimited(self) -> bool:
        return False

    # -- the flow -------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name every process uses for this limiter (its Redis keys start ``trine:``)."""
        return self._name

    @property
    def local(self) -> _LocalTwin:
        """The local twin that ``on_unavailable="fail_open"`` falls back to."""
        return self._local

    async def _reserve(
        self, cost: float, key: str | None, max_wait: float
    ) -> tuple[bool, float, str | None]:
        """One round trip: (admitted, wait in seconds, what gives the reservation back)."""
        reply = await self._link.run(
            self._ACQUIRE, self._keys(key), self._acquire_args(cost, max_wait), shield=True
        )
        if int(reply[0]) == 1:
            return True, seconds(reply[1]), decode(reply[3])
        return False, seconds(reply[1]), None

    async def acquire(self, cost: float = 1, *, key: str | None = None) -> None:
        """Wait until *cost* may be admitted for *key* across the fleet, then take it.

        One round trip: the server admits the cost or reserves the earliest
        time it may go, and this call sleeps until then. Always a checkpoint.
        A cancellation that arrives during the round trip takes effect when
        the reply is in (at most ``timeout`` seconds later); one that arrives
        while sleeping gives the reservation back if nothing was reserved
        after it (one more round trip), and otherwise leaves its slot unused.

        Args:
          cost: how many units this call uses (a number > 0, at most the burst).
          key: which independent schedule to use: a str, or ``None`` for the
            limiter's default one.

        Raises:
          RedisUnavailable: if the server is out of reach and the limiter fails closed.
          TypeError, ValueError: for a bad *cost* or *key*.
        """
        number = self._check_cost(cost)
        checked = check_key(key)
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._unlimited():
            self._count_admission(number)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        try:
            admitted, wait, reservation = await self._reserve(number, checked, -1.0)
        except RedisUnavailable as exc:
            await self._fall_back(exc)
            await self._local.acquire(number, key=checked)
            return
        assert admitted
        assert reservation is not None
        self._count_admission(number)
        if wait > 0:
            await self._sleep_reserved(wait, number, checked, reservation)

    async def _sleep_reserved(
        self, wait: float, cost: float, key: str | None, reservation: str
    ) -> None:
        self._tasks_waiting += 1
        try:
            await trio.sleep(wait)
        except BaseException:
            # Cancelled (or interrupted) before its time: the slot is not used.
            self._admitted -= 1
            self._admitted_cost -= cost
            with trio.CancelScope(shield=True):
                try:
                    refunded = await self._link.run(
                        self._REFUND, self._keys(key), self._refund_args(cost, reservation)
                    )
                except RedisUnavailable:
                    refunded = 0
            self._refunded += int(refunded)
            raise
        finally:
            self._tasks_waiting -= 1

    async def try_acquire(self, cost: float = 1, *, key: str | None = None) -> bool:
        """Take *cost* for *key* if the server admits it right now; never waits for a slot.

        One round trip (shielded from cancellation, so a cancelled caller
        knows whether it took the cost), and so a checkpoint. Returns
        ``False``, taking nothing, when the cost could not go at once.
        Arguments and errors as for :meth:`acquire`.
        """
        number = self._check_cost(cost)
        checked = check_key(key)
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._unlimited():
            self._count_admission(number)
            return True
        try:
            admitted, _, _ = await self._reserve(number, checked, 0.0)
        except RedisUnavailable as exc:
            await self._fall_back(exc)
            return self._local.try_acquire(number, key=checked)
        if admitted:
            self._count_admission(number)
        else:
            self._rejected += 1
        return admitted

    async def acquire_nowait(self, cost: float = 1, *, key: str | None = None) -> None:
        """Like :meth:`try_acquire`, but raise instead of returning ``False``.

        Raises:
          RateLimitExceeded: if *cost* cannot go now; its ``retry_after`` is
            how long :meth:`acquire` would have slept, as the server computed it.
          RedisUnavailable, TypeError, ValueError: as for :meth:`acquire`.
        """
        number = self._check_cost(cost)
        checked = check_key(key)
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._unlimited():
            self._count_admission(number)
            return
        try:
            admitted, wait, _ = await self._reserve(number, checked, 0.0)
        except RedisUnavailable as exc:
            await self._fall_back(exc)
            self._local.acquire_nowait(number, key=checked)
            return
        if admitted:
            self._count_admission(number)
            return
        self._rejected += 1
        raise RateLimitExceeded(
            f"{self._limit_text()} exceeded for key {key!r}, retry after {wait:g}s",
            retry_after=wait,
        )

    def _count_admission(self, cost: float) -> None:
        self._admitted += 1
        self._admitted_cost += cost

    async def _fall_back(self, error: RedisUnavailable) -> None:
        """Fail closed (raise *error*) or count a fallback to the local twin.

        A schedule point either way: without a round trip, a loop of calls
        made while the server is down must still let other tasks run.
        """
        await trio.lowlevel.cancel_shielded_checkpoint()
        if self._on_unavailable == "fail_closed":
            raise error
        self._fallbacks += 1
