"""Holding new commands back while the machine is busy: :class:`SystemLoad`."""

from __future__ import annotations

from collections.abc import Callable
from typing import final

import attrs
import trio

from .._util import check_int, check_number, check_sync_callable, check_sync_result

__all__ = ["LoadSample", "SystemLoad", "SystemLoadStatistics"]


def _to_cpu_percent(value: object) -> float:
    percent = check_number("cpu_percent", value)
    if percent > 100.0:
        raise ValueError(f"cpu_percent must be <= 100, got {value!r}")
    return percent


def _to_free_memory(value: object) -> int:
    return check_int("free_memory", value, minimum=0)


@final
@attrs.frozen
class LoadSample:
    """One reading of the machine's load, as a :class:`SystemLoad` probe returns it.

    Raises:
      TypeError: if *cpu_percent* is not a real number or *free_memory* not an int.
      ValueError: if *cpu_percent* is outside 0 to 100 (or NaN) or
        *free_memory* is negative.
    """

    cpu_percent: float = attrs.field(converter=_to_cpu_percent)
    """CPU use over all cores since the previous reading, 0 to 100."""
    free_memory: int = attrs.field(converter=_to_free_memory)
    """Bytes of memory available to new processes."""


@final
@attrs.frozen
class SystemLoadStatistics:
    """A snapshot of a :class:`SystemLoad`, from :meth:`SystemLoad.statistics`."""

    tasks_waiting: int
    """Commands waiting for the load to drop before they start."""
    delays: int
    """How many times a command found the machine too busy and waited."""
    last_sample: LoadSample | None
    """The most recent reading, or ``None`` before the first."""


def _psutil_probe() -> Callable[[], LoadSample]:
    try:
        import psutil  # type: ignore[import-untyped]  # optional dependency, imported on use
    except ImportError as exc:
        raise ModuleNotFoundError(
            "SystemLoad needs psutil to read the machine's load: pip install 'trine[load]' "
            "(or pass probe= a function returning a LoadSample)"
        ) from exc
    # The first cpu_percent(None) call only primes psutil's counters.
    psutil.cpu_percent(interval=None)

    def probe() -> LoadSample:
        return LoadSample(
            cpu_percent=min(100.0, float(psutil.cpu_percent(interval=None))),
            free_memory=int(psutil.virtual_memory().available),
        )

    return probe


@final
@attrs.define(eq=False, init=False)
class SystemLoad:
    """Hold back new commands while the machine is busy.

    Passed as ``admission=`` to :func:`run_commands`: before a command starts
    it reads the load, and while CPU use is above *max_cpu_percent* or free
    memory below *min_free_memory* it waits *interval* seconds and reads
    again. Commands are delayed, never failed for the load; those already
    running are left alone. In :func:`run_commands` a probe that raises (or
    returns something other than a :class:`LoadSample`) makes the command
    waiting for it an ``ERROR`` result, never the batch's exception.

    Args:
      max_cpu_percent: the CPU use (above 0, at most 100, over all cores)
        above which new commands wait, or ``None`` for no CPU condition.
      min_free_memory: the bytes of available memory below which new
        commands wait, or ``None``.
      interval: seconds between readings while waiting.
      probe: a plain (not async) function returning a :class:`LoadSample`;
        by default psutil is read (install the ``load`` extra).

    Raises:
      ModuleNotFoundError: if no *probe* is given and psutil is not installed.
      TypeError, ValueError: for arguments of the wrong type or out of range,
        and for an async or generator function as *probe* (it is called
        without awaiting).

    Example::

        load = trine.SystemLoad(max_cpu_percent=90, min_free_memory=2 * 1024**3)
        results = await trine.run_commands(commands, limit=8, admission=load)
    """

    max_cpu_percent: float | None
    min_free_memory: int | None
    interval: float
    _probe: Callable[[], LoadSample]
    _waiting: int = 0
    _delays: int = 0
    _last_sample: LoadSample | None = None

    def __init__(
        self,
        *,
        max_cpu_percent: float | None = None,
        min_free_memory: int | None = None,
        interval: float = 0.5,
        probe: Callable[[], LoadSample] | None = None,
    ) -> None:
        if max_cpu_percent is not None:
            check_number("max_cpu_percent", max_cpu_percent, minimum=0.0, exclusive=True)
            if max_cpu_percent > 100:
                raise ValueError(f"max_cpu_percent must be <= 100, got {max_cpu_percent!r}")
        if min_free_memory is not None:
            check_int("min_free_memory", min_free_memory, minimum=0)
        check_number("interval", interval, exclusive=True)
        if probe is not None:
            check_sync_callable("probe", probe)
        self.max_cpu_percent = None if max_cpu_percent is None else float(max_cpu_percent)
        self.min_free_memory = min_free_memory
        self.interval = float(interval)
        self._probe = probe if probe is not None else _psutil_probe()
        self._waiting = 0
        self._delays = 0
        self._last_sample = None

    def admits(self, sample: LoadSample) -> bool:
        """Whether a new command may start at this load.

        Raises:
          TypeError: if *sample* is not a :class:`LoadSample`.
        """
        if not isinstance(sample, LoadSample):
            raise TypeError(f"sample must be a LoadSample, got {sample!r}")
        if self.max_cpu_percent is not None and sample.cpu_percent > self.max_cpu_percent:
            return False
        return self.min_free_memory is None or sample.free_memory >= self.min_free_memory

    def _read(self) -> LoadSample:
        sample = check_sync_result("probe", self._probe())
        if not isinstance(sample, LoadSample):
            raise TypeError(f"probe must return a LoadSample, got {sample!r}")
        self._last_sample = sample
        return sample

    async def wait_admitted(self) -> None:
        """Return once the load allows a new command to start.

        Always a checkpoint; waits in steps of :attr:`interval` seconds.

        Raises:
          TypeError: if the probe returns something that is not a :class:`LoadSample`.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._waiting += 1
        try:
            delayed = False
            while not self.admits(self._read()):
                if not delayed:
                    delayed = True
                    self._delays += 1
                await trio.sleep(self.interval)
        finally:
            self._waiting -= 1
        if not delayed:
            await trio.lowlevel.cancel_shielded_checkpoint()

    def statistics(self) -> SystemLoadStatistics:
        """Return a fresh :class:`SystemLoadStatistics` snapshot."""
        return SystemLoadStatistics(
            tasks_waiting=self._waiting, delays=self._delays, last_sample=self._last_sample
        )
