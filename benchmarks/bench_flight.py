"""``SingleFlight.call`` vs a hand-written dict of ``trio.Event``s.

C caller tasks walk the same K keys in step: for each key, the first caller
to arrive starts the run (a function that awaits one checkpoint) and the
other C - 1 join it, so every run is shared by C calls. The baseline is the
dict of events a competent Trio user writes: the first caller runs the
function in its own task, the others wait on its event. That is faster by
construction -- no task per run, the first caller never parks -- and it is
also the pattern whose first caller's cancellation cancels everybody's
result, which SingleFlight exists to avoid. The goal (issue 12): at most
1.5x the hand-written version per call.

Results: see the numbers in this docstring, from
``python -m benchmarks flight --repeat 5``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

import trine
from benchmarks._harness import Case, Variant, run_trio

CALLERS = 10
KEYS = 2_000
N = CALLERS * KEYS

Call = Callable[..., Awaitable[Any]]


async def _fetch(key: int) -> int:
    await trio.lowlevel.checkpoint()
    return key


class _EventFlights:
    """The hand-written pattern: a dict of (event, outcome box) by key."""

    def __init__(self) -> None:
        self.flights: dict[Any, tuple[trio.Event, list[Any]]] = {}

    async def call(self, key: Any, fn: Call, *args: Any) -> Any:
        flight = self.flights.get(key)
        if flight is not None:
            await flight[0].wait()
            box = flight[1]
        else:
            event = trio.Event()
            box = [None, None]
            self.flights[key] = (event, box)
            try:
                box[0] = await fn(*args)
            except Exception as exc:
                box[1] = exc
            finally:
                del self.flights[key]
                event.set()
        if box[1] is not None:
            raise box[1]
        return box[0]


async def _walk(call: Call) -> None:
    for key in range(KEYS):
        assert await call(key, _fetch, key) == key


def _run(open_flights: Callable[[], Any]) -> float:
    async def main() -> float:
        async with open_flights() as flights:
            call = flights.call
            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(CALLERS):
                    nursery.start_soon(_walk, call)
            return time.perf_counter() - start

    return run_trio(main)


class _OpenEvents:
    async def __aenter__(self) -> _EventFlights:
        return _EventFlights()

    async def __aexit__(self, *exc: object) -> None:
        return None


CASES = [
    Case(
        name="flight_shared",
        description=f"{CALLERS} callers share each of {KEYS} runs ({N} calls)",
        per=N,
        variants=[
            Variant("hand-written dict of trio.Event", lambda: _run(_OpenEvents), baseline=True),
            Variant("trine.SingleFlight.call", lambda: _run(trine.SingleFlight)),
        ],
    ),
]
