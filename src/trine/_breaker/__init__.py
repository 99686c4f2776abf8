"""CircuitBreaker: stop calling a service that is failing, and probe it before trusting it again.

The state machine::

                 failures reach the threshold
      ┌────────┐ ─────────────────────────────▶ ┌──────┐
      │ CLOSED │                                │ OPEN │ ◀── force_open() ── FORCED_OPEN
      └────────┘ ◀──┐                           └──────┘     (until reset())
          ▲         │ success_threshold            │ reset_timeout passes
          │         │ probes succeed               ▼ (read lazily from the clock)
          │         │                        ┌───────────┐
          │         └─────────────────────── │ HALF_OPEN │
          │                                  └───────────┘
          │           any probe fails: back to OPEN, for a new reset_timeout
          └── reset() from any state

The breaker's decisions are made by a small synchronous core: ``_admit``
hands out a :class:`_Permit` and ``_finish`` records how the call ended; a
state change goes through ``_change``, which applies one change at a time, so
callbacks always see a chain of changes in order. The async front ends
(``call``, ``async with``, the decorator) only wrap the user's function in it,
so admission is atomic under Trio: the permit is taken before the first
``await``, and no two tasks can both see a free half-open slot.

``call`` has a fast path for the common case, a CLOSED breaker counting
consecutive failures or failure rates over a count window: one check of
``_closed_epoch`` admits the call (no permit object), and a success is one
count and one window write. Everything else (probes, slow calls, time
windows, failures) goes through the core.

**KeyboardInterrupt.** Every frame of the breaker is KI-protected
(:func:`trio.lowlevel.enable_ki_protection`), so a Ctrl-C can never land
between taking a permit and recording its outcome; the user's coroutine is
awaited in an unprotected frame (``_await_unprotected``), so it can be
interrupted as it could without the breaker, and its KeyboardInterrupt is
counted as a cancellation. Inside a :class:`~trine.Policy` that frame is the
Policy's own timeout layer (or the one that awaits fn under a limiter),
which the breaker's Policy layer (``_policy_layer``) awaits directly.

One module per piece: ``_state`` (:class:`CircuitState`), ``_statistics``
(the frozen snapshot), ``_windows`` (the count and time failure windows),
``_core`` (the fields, state machine and synchronous admit/finish books)
and ``_breaker`` (:class:`CircuitBreaker`: settings, statistics and the async
front ends, with the closed fast path inline).
"""

from ._breaker import CircuitBreaker as CircuitBreaker
from ._state import CircuitState as CircuitState
from ._statistics import CircuitBreakerStatistics as CircuitBreakerStatistics

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerStatistics",
    "CircuitState",
]
