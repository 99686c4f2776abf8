"""Tools for a program that seems stuck or slow: the live task tree, a stall detector.

``trine.debug`` is an optional face of trine: the core never imports it, and it
costs nothing until used.

- :func:`task_tree` returns the live Trio task tree as text, with what each
  blocked task waits on; :func:`dump_on_signal` prints it when the process
  gets a signal, so a hung process can be asked what it is doing.
- :func:`watch_blocking` reports every task step that held the event loop for
  longer than a threshold of real time (the sync call hidden in async code).
"""

from __future__ import annotations

from ._dump import dump_on_signal as dump_on_signal
from ._stall import Stall as Stall
from ._stall import watch_blocking as watch_blocking
from ._tree import task_tree as task_tree

__all__ = ["Stall", "dump_on_signal", "task_tree", "watch_blocking"]
