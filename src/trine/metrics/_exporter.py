"""What every exporter does: keep the objects to read, count hook events, read both."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import attrs
import trio

import trine
from trine import _created
from trine._util import describe

from ._families import by_name
from ._readers import Distribution, Reader, distribution_of_summary, reader_for, supported_types

__all__ = ["Exporter", "Points"]

Labels: TypeAlias = tuple[str, ...]
Points: TypeAlias = dict[str, list[tuple[Labels, "float | Distribution"]]]
"""Per family name, its ``(label values, value)`` pairs, one per label set."""


@attrs.define
class _Entry:
    get: Callable[[], object | None]
    """The object, or ``None`` once a weakly held one is gone."""
    name: str
    owner: str
    reader: Reader
    strong: bool


@attrs.define
class _Sum:
    """The points several objects gave under one label set, added up."""

    value: float | Distribution
    contributors: int = 1

    def add(self, value: float | Distribution) -> None:
        self.contributors += 1
        if isinstance(value, Distribution):
            assert isinstance(self.value, Distribution)
            # Quantiles of several distributions cannot be added: keep count and sum.
            count = self.value.count + value.count
            self.value = Distribution(count, self.value.total + value.total, ())
        else:
            assert not isinstance(self.value, Distribution)
            self.value += value


class _ObjectHook:
    """The hook :meth:`Exporter.register_new` gives one object it sees made.

    Its events are counted under the name the object's figures are exported
    under (a Retry inside a Policy takes the Policy's name), and a breaker's
    rejections are left to its statistics.
    """

    __slots__ = ("_exporter", "from_breaker", "key")

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter
        self.key = 0
        self.from_breaker = False

    def __call__(self, event: trine.GuardEvent, /) -> None:
        self._exporter._event(event, self)


def _label(name: object) -> str:
    return name if isinstance(name, str) else ""


class Exporter:
    """What :class:`PrometheusExporter` and :class:`OpenTelemetryExporter` share.

    An exporter reads two things, both only when the metrics are collected (a
    scrape, an export), so a registered object costs nothing between
    collections:

    - the ``statistics()`` of every object given to :meth:`register` (or created
      inside :meth:`register_new`);
    - the counts of the events given to :meth:`hook`, for the figures that
      statistics do not keep (a breaker's transitions, retry delays, a
      Policy's rejections, timeouts and fallbacks).

    Every metric carries the object's name in its ``name`` label. Objects that
    share a name (or have none: ``name=""``) are added up: counters and counts
    sum, and a summary keeps only its count and sum. The metrics and their
    labels are listed in :ref:`the table in the guide <metrics-table>`.

    Collection may happen in another thread (prometheus-client's HTTP server,
    an OpenTelemetry periodic reader): the exporter then reads the objects in
    the Trio thread, through :func:`trio.from_thread.run_sync`, because trine
    objects belong to their Trio run. It uses the run in which it was made, or
    in which :meth:`register` or :meth:`register_new` was last called, or an
    event last reached :meth:`hook`. With no run to read in (before
    ``trio.run`` or after it returned), it reads the objects where it is, and
    leaves out those whose ``statistics()`` need a running Trio.

    Make a :class:`PrometheusExporter` or an :class:`OpenTelemetryExporter`:
    an ``Exporter`` itself collects but exports nowhere.
    """

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._events: dict[tuple[str, Labels], float] = {}
        self._delays: dict[Labels, trine.LatencyHistogram] = {}
        self._token: trio.lowlevel.TrioToken | None = None
        self._remember_run()
        self._on_event: dict[type, Callable[[Any, str], None]] = {
            trine.CircuitStateChanged: self._state_changed,
            trine.RetryScheduled: self._retry_scheduled,
            trine.RetryGaveUp: self._retry_gave_up,
            trine.CallRejected: self._call_rejected,
            trine.AttemptTimedOut: self._attempt_timed_out,
            trine.FallbackUsed: self._fallback_used,
        }

    # -- registering ------------------------------------------------------------

    def register(self, obj: object, *, name: str | None = None) -> None:
        """Export *obj*'s figures from now on, until :meth:`unregister`.

        The exporter holds *obj* (so its figures stay exported as long as it is
        registered) and reads its ``statistics()`` at each collection. A
        :class:`~trine.Policy` registers the guards it holds (``retry``,
        ``breaker``, ``rate``, ``limiter``); give the Policy ``hooks=[exporter.hook]``
        too, for its rejections, timeouts and fallbacks.

        Registering an object again changes only its name.

        Args:
          obj: a :class:`~trine.CircuitBreaker`, :class:`~trine.Bulkhead`,
            :class:`~trine.WeightedSemaphore`, :class:`~trine.PriorityLimiter`,
            :class:`~trine.KeyedLimiter`, :class:`~trine.AdaptiveLimiter`,
            :class:`~trine.RateLimiter`, :class:`~trine.SlidingWindowLimiter`,
            :class:`~trine.Retry`, :class:`~trine.RetryBudget`,
            :class:`~trine.Pipeline`, :class:`~trine.TaskGraph`,
            :class:`~trine.AsyncCache`, :class:`~trine.SingleFlight`,
            :class:`~trine.Batcher` or :class:`~trine.Policy`.
          name: the ``name`` label; by default the object's own ``name``
            attribute if it has one, else ``""``. For a Policy, the name of
            those of its guards that have none (by default the Policy's name).

        Raises:
          TypeError: if *obj* is none of these, or *name* is not a ``str``.

        Example::

            exporter.register(trine.Bulkhead(10), name="db")
        """
        self._check_name(name)
        self._remember_run()
        self._add(obj, name, strong=True)

    def unregister(self, obj: object) -> None:
        """Stop exporting *obj*'s figures (and a Policy's guards').

        Event counts already given to :meth:`hook` stay: they are the
        exporter's, not the object's.

        Raises:
          TypeError: if *obj* is not an object :meth:`register` takes.
          ValueError: if *obj* is not registered.
        """
        for guard in self._parts(obj):
            if id(guard) not in self._entries:
                raise ValueError(f"obj is not registered with this exporter: {describe(guard)}")
        for guard in self._parts(obj):
            del self._entries[id(guard)]

    def register_new(self) -> contextlib.AbstractContextManager[None]:
        """Register every trine object created inside the ``with`` block, with hooks.

        While the block is open, each object :meth:`register` takes that is
        created in this task, or in a task started inside the block, is
        registered as it is made, and a CircuitBreaker, Retry or Policy gets
        :meth:`hook` added to its ``hooks=``, so its events are counted with
        no change to the code that makes it::

            exporter = trine.metrics.PrometheusExporter()
            with exporter.register_new():
                await main()   # every breaker, limiter, pipeline... main makes

        Objects registered this way are held weakly: their figures are exported
        while the program holds them and disappear with them (counters that
        vanish read as a reset to the backends, as when a process restarts).
        Objects created after the block (or in tasks started outside it) are
        not registered. Nothing of the block outlives it: how this is done is
        in the :ref:`guide <register-new>`.
        """
        self._remember_run()
        return _created.watch(self._new_hook, self._created)

    # -- events ------------------------------------------------------------------

    def hook(self, event: trine.GuardEvent) -> None:
        """Count *event*: give this to a guard's ``hooks=`` (a :class:`~trine.Hook`).

        Counted: :class:`~trine.CircuitStateChanged` (``trine.breaker.transitions``),
        :class:`~trine.RetryScheduled` (``trine.retry.delay``),
        :class:`~trine.RetryGaveUp` (``trine.retry.gave_up``, by reason; a
        Retry's statistics count give-ups in all),
        :class:`~trine.CallRejected` (``trine.guard.rejections``),
        :class:`~trine.AttemptTimedOut` (``trine.guard.timeouts``) and
        :class:`~trine.FallbackUsed` (``trine.guard.fallbacks``), each under
        the name the event carries. Other objects are ignored.

        Example::

            breaker = trine.CircuitBreaker(name="api", hooks=[exporter.hook])
            exporter.register(breaker)
        """
        self._event(event, None)

    def _new_hook(self) -> _ObjectHook:
        return _ObjectHook(self)

    def _event(self, event: object, source: _ObjectHook | None) -> None:
        handle = self._on_event.get(type(event))
        if handle is None:
            return
        # An event in a later trio.run switches collection to that run (one identity
        # compare per event; an event outside Trio keeps the run remembered).
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:
            if token is not self._token:
                self._token = token
        name = _label(getattr(event, "name", None))
        if source is not None:
            if source.from_breaker and type(event) is trine.CallRejected:
                return  # a breaker's statistics count its rejections already
            entry = self._entries.get(source.key)
            if entry is not None:
                name = entry.name  # the name its figures are exported under
        handle(event, name)

    def _count(self, family: str, labels: Labels) -> None:
        key = (family, labels)
        self._events[key] = self._events.get(key, 0.0) + 1.0

    def _state_changed(self, event: trine.CircuitStateChanged, name: str) -> None:
        self._count("trine.breaker.transitions", (name, event.old, event.new))

    def _retry_scheduled(self, event: trine.RetryScheduled, name: str) -> None:
        histogram = self._delays.get((name,))
        if histogram is None:
            histogram = self._delays[(name,)] = trine.LatencyHistogram()
        histogram.record(event.delay)

    def _retry_gave_up(self, event: trine.RetryGaveUp, name: str) -> None:
        self._count("trine.retry.gave_up", (name, event.reason))

    def _call_rejected(self, event: trine.CallRejected, name: str) -> None:
        self._count("trine.guard.rejections", (name, event.guard))

    def _attempt_timed_out(self, event: trine.AttemptTimedOut, name: str) -> None:
        self._count("trine.guard.timeouts", (name,))

    def _fallback_used(self, event: trine.FallbackUsed, name: str) -> None:
        self._count("trine.guard.fallbacks", (name,))

    # -- reading -------------------------------------------------------------------

    def _collect(self, owner: str | None = None) -> Points:
        """Every point (of the families of *owner*, if given), read in the Trio thread."""
        try:
            trio.lowlevel.current_trio_token()
        except RuntimeError:
            token = self._token
            if token is not None:
                try:
                    return trio.from_thread.run_sync(self._points, owner, trio_token=token)
                except trio.RunFinishedError:
                    if self._token is token:  # not replaced by an event of a new run meanwhile
                        self._token = None
            return self._points(owner, outside_trio=True)
        return self._points(owner)

    def _points(self, owner: str | None, *, outside_trio: bool = False) -> Points:
        sums: dict[tuple[str, Labels], _Sum] = {}

        def add(family: str, labels: Labels, value: float | Distribution) -> None:
            key = (family, labels)
            found = sums.get(key)
            if found is None:
                sums[key] = _Sum(value if isinstance(value, Distribution) else float(value))
            else:
                found.add(value)

        for entry in list(self._entries.values()):
            if owner is not None and entry.owner != owner:
                continue
            obj = entry.get()
            if obj is None:
                continue
            try:
                read = list(entry.reader(obj))
            except RuntimeError:
                # Between Trio runs, an object whose statistics need the run's
                # clock (a breaker applying its reset timeout) cannot be read.
                if outside_trio:
                    continue
                raise
            for family, labels, value in read:
                add(family, (entry.name, *labels), value)
        for (family, labels), count in list(self._events.items()):
            if owner is None or by_name(family).owner == owner:
                add(family, labels, count)
        if owner is None or owner == "retry":
            for labels, histogram in list(self._delays.items()):
                add("trine.retry.delay", labels, distribution_of_summary(histogram.summary()))
        points: Points = {}
        for (family, labels), total in sums.items():
            if by_name(family).kind == "gauge" and total.contributors > 1:
                continue  # a value now that does not add up: ambiguous under one label set
            points.setdefault(family, []).append((labels, total.value))
        return points

    # -- the objects -----------------------------------------------------------------

    def _created(self, obj: object, hook: object) -> None:
        if isinstance(hook, _ObjectHook):
            hook.key = id(obj)
            hook.from_breaker = isinstance(obj, trine.CircuitBreaker)
        if isinstance(obj, trine.Policy) or reader_for(obj) is not None:
            self._add(obj, None, strong=False)

    def _add(self, obj: object, name: str | None, *, strong: bool) -> None:
        if isinstance(obj, trine.Policy):
            default = name if name is not None else _label(obj.name)
            for guard in self._parts(obj):
                own = getattr(guard, "name", None)
                self._add(guard, own if isinstance(own, str) else default, strong=strong)
            return
        found = reader_for(obj)
        if found is None:
            raise TypeError(
                "obj must be a trine object with metrics ("
                + ", ".join(cls.__name__ for cls in supported_types())
                + f") or a Policy, got {describe(obj)}"
            )
        owner, reader = found
        label = name if name is not None else _label(getattr(obj, "name", None))
        key = id(obj)
        entry = self._entries.get(key)
        if entry is not None and entry.get() is obj:
            if strong and not entry.strong:
                self._entries[key] = _Entry(lambda: obj, label, owner, reader, True)
            elif name is not None or strong:
                entry.name = label
            return
        if strong:
            self._entries[key] = _Entry(lambda: obj, label, owner, reader, True)
        else:
            ref = weakref.ref(obj, lambda ref: self._forget(key, ref))
            self._entries[key] = _Entry(ref, label, owner, reader, False)

    def _forget(self, key: int, ref: weakref.ref[object]) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.get is ref:
            del self._entries[key]

    def _parts(self, obj: object) -> Iterable[object]:
        """*obj*, or the guards of a Policy that the exporter reads."""
        if isinstance(obj, trine.Policy):
            return [
                guard
                for guard in (obj.retry, obj.breaker, obj.rate, obj.limiter)
                if guard is not None and reader_for(guard) is not None
            ]
        if reader_for(obj) is None:
            raise TypeError(f"obj must be an object register() takes, got {describe(obj)}")
        return [obj]

    @staticmethod
    def _check_name(name: object) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {describe(name)}")

    def _remember_run(self) -> None:
        # Outside Trio there is no run to remember: a later call may find one.
        with contextlib.suppress(RuntimeError):
            self._token = trio.lowlevel.current_trio_token()
