"""task_tree(): the live Trio task tree as text, with what each task waits on."""

from __future__ import annotations

import re

import trio

from trine._util import describe

from ._describe import describe_wait, time

__all__ = ["task_tree"]


def task_tree(*, root: trio.lowlevel.Task | None = None) -> str:
    """The tasks of the current Trio run as a tree, each with what it waits on.

    Nurseries and their tasks nest as they do in the program; each task is
    shown by its name (trine names its tasks: ``trine.Pipeline stage 'parse'``
    and its ``parse worker 0``, a graph's node by the node's name) and, when it
    is blocked, what it waits for in words: ``waiting for RateLimiter (10 per
    1 s, 3 waiting)``, ``waiting in Bulkhead (10/10 in use, 2 waiting)``,
    ``sleeping until t=12.5 (in 2.5 s)``, or the line of user code it is
    suspended in: ``in fetch (app.py:12)``. Tasks of one nursery are sorted by
    name. Trio's own system tasks are left out::

        Trio task tree at t=3
        main: waiting for 1 child task to finish
        └── nursery
            └── fetch: waiting for RateLimiter (1 per 1 s, 2 waiting)

    It is a snapshot: call it from any task (the calling task shows as
    ``running``); :func:`dump_on_signal` prints it when the process gets a
    signal.

    Args:
      root: the task to start from (by default the whole run, from its main task).

    Returns:
      The tree, one line per task or nursery, ending with a newline.

    Raises:
      RuntimeError: if called outside a Trio run.
      TypeError: if *root* is not a :class:`trio.lowlevel.Task`.
    """
    if root is not None and not isinstance(root, trio.lowlevel.Task):
        raise TypeError(f"root must be a trio.lowlevel.Task or None, got {describe(root)}")
    lines = [f"Trio task tree at t={time(trio.current_time())}"]
    me = trio.lowlevel.current_task()
    if root is None:
        init = trio.lowlevel.current_root_task()
        assert init is not None  # inside a run, as current_time() just said
        tops = [
            task
            for nursery in init.child_nurseries
            for task in _sorted(nursery.child_tasks)
            if not _is_trio_system_task(task)
        ]
        for task in tops:
            _render(task, me, "", "", lines)
    else:
        _render(root, me, "", "", lines)
    return "\n".join(lines) + "\n"


def _render(
    task: trio.lowlevel.Task, me: trio.lowlevel.Task, first: str, rest: str, lines: list[str]
) -> None:
    state = "running (this task called task_tree)" if task is me else describe_wait(task)
    lines.append(f"{first}{task.name}: {state}")
    nurseries = task.child_nurseries
    for n, nursery in enumerate(nurseries):
        last_nursery = n == len(nurseries) - 1
        lines.append(f"{rest}{'└── ' if last_nursery else '├── '}nursery")
        inside = rest + ("    " if last_nursery else "│   ")
        children = _sorted(nursery.child_tasks)
        for c, child in enumerate(children):
            last = c == len(children) - 1
            _render(
                child,
                me,
                inside + ("└── " if last else "├── "),
                inside + ("    " if last else "│   "),
                lines,
            )


def _natural(name: str) -> list[str | int]:
    """Sort key: ``worker 2`` before ``worker 10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _sorted(tasks: frozenset[trio.lowlevel.Task]) -> list[trio.lowlevel.Task]:
    # A nursery's children are a set: sort them, by name, for a tree that reads
    # the same each time (tasks of one name by what they wait on).
    return sorted(tasks, key=lambda task: (_natural(task.name), describe_wait(task)))


def _is_trio_system_task(task: trio.lowlevel.Task) -> bool:
    """Trio's own helpers in the system nursery (the run_sync_soon task), not the user's."""
    module = getattr(task.coro, "cr_frame", None)
    if module is None:
        return False
    name = module.f_globals.get("__name__", "")
    return isinstance(name, str) and name.partition(".")[0] == "trio"
