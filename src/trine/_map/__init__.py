"""Bounded concurrent maps: :func:`amap`, :func:`map_all`, :func:`map_settled`, :func:`for_each`."""

from ._run import _MapResults as _MapResults
from ._run import amap as amap
from ._run import for_each as for_each
from ._run import map_all as map_all
from ._run import map_settled as map_settled

__all__ = ["_MapResults", "amap", "for_each", "map_all", "map_settled"]
