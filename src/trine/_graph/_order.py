"""Cycle detection and topological order over named dependencies (the jobs file uses them)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from .._errors import CycleError

__all__ = ["find_cycle", "topological_order"]


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return a cycle of *deps* as ``[a, b, ..., a]``, or ``None`` if there is none.

    *deps* maps each name to the names it depends on; a dependency that is
    not a key of *deps* is ignored here. Iterative depth-first search, O(V + E).
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(deps, white)
    for root in deps:
        if colour[root] != white:
            continue
        colour[root] = grey
        path = [root]
        stack = [iter(deps[root])]
        while stack:
            for dep in stack[-1]:
                state = colour.get(dep)
                if state is None or state == black:
                    continue
                if state == grey:
                    return [*path[path.index(dep) :], dep]
                colour[dep] = grey
                path.append(dep)
                stack.append(iter(deps[dep]))
                break
            else:
                colour[path.pop()] = black
                stack.pop()
    return None


def topological_order(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Return the names of *deps* ordered so that each comes after its dependencies.

    Among names free to go next, the order of *deps* is kept (Kahn's algorithm
    over the keys in order), so ``graph.add`` can be called in the returned
    order. O(V + E).

    Raises:
      CycleError: naming a cycle, if there is one.
      ValueError: naming the first dependency that is not a key of *deps*.
    """
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    remaining: dict[str, int] = {}
    for name, names in deps.items():
        count = 0
        for dep in names:
            if dep not in dependents:
                raise ValueError(f"{name!r} depends on unknown {dep!r}")
            dependents[dep].append(name)
            count += 1
        remaining[name] = count
    position = {name: index for index, name in enumerate(deps)}
    ready = [position[name] for name, count in remaining.items() if count == 0]
    heapq.heapify(ready)
    keys = list(deps)
    order: list[str] = []
    while ready:
        name = keys[heapq.heappop(ready)]
        order.append(name)
        for dependent in dependents[name]:
            remaining[dependent] -= 1
            if remaining[dependent] == 0:
                heapq.heappush(ready, position[dependent])
    if len(order) < len(keys):
        cycle = find_cycle(deps)
        assert cycle is not None
        raise CycleError(cycle)
    return order
