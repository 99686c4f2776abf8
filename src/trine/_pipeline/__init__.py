"""Pipelines: stages of workers joined by bounded buffers, as nested nurseries.

A :class:`Pipeline` is an immutable *description*; :meth:`Pipeline.open`
runs it in one nursery, with one child nursery per stage holding that
stage's workers. Read the package in the order one item travels:

============== ==================================================================
``_description`` the description and the validation of every argument
``_run``         one run: wiring the buffers, the nursery, stopping, the one error
``_source``      the source task, reading items into the first buffer
``_buffer``      the bounded buffer between two stages, and its invariants
``_stage``       a stage's task, its workers (started as items need them), failures
``_call``        calling the function on an item, and awaiting what it returns
``_transform``   map / filter / tap / enumerate: take, call, keep, deliver
``_ordered``     ordered delivery through a reorder window
``_keyed``       keyed dispatch to one queue per worker
``_join``        zip and zip_latest: tuples from several pipelines
``_per_key``     ``per_key=`` (and ``key=`` with ``ordered``): slots per key
``_flat_map``    flat_map, ``_batch`` batch, ``_rate_limit`` rate_limit,
                 ``_broadcast`` broadcast
``_output``      the caller's end of the last buffer
``_statistics``  the statistics types
============== ==================================================================

Why not memory channels between stages? In Trio every ``send`` and every
``receive`` is a trip through the scheduler (about 8 µs here), whatever the
user's function costs. A worker here never yields while it has work it can do
without waiting, so items ready together move between stages in one trip.
"""

from ._description import Pipeline as Pipeline
from ._description import merge as merge
from ._description import zip as zip
from ._description import zip_latest as zip_latest
from ._output import PipelineOutput as PipelineOutput
from ._statistics import PipelineStatistics as PipelineStatistics
from ._statistics import StageStatistics as StageStatistics

__all__ = [
    "Pipeline",
    "PipelineOutput",
    "PipelineStatistics",
    "StageStatistics",
    "merge",
    "zip",
    "zip_latest",
]
