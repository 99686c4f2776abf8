"""trine: structured-concurrency toolkit for Trio.

Everything public is importable from ``trine`` itself; the private modules
(``trine._fan``, ``trine._map``, ...) are an implementation detail.
"""

from __future__ import annotations

from ._errors import StageError as StageError
from ._errors import TrineError as TrineError
from ._hooks import AttemptTimedOut as AttemptTimedOut
from ._hooks import CallRejected as CallRejected
from ._hooks import CircuitStateChanged as CircuitStateChanged
from ._hooks import FallbackUsed as FallbackUsed
from ._hooks import GuardEvent as GuardEvent
from ._hooks import Hook as Hook
from ._hooks import RetryGaveUp as RetryGaveUp
from ._hooks import RetryScheduled as RetryScheduled
from ._pipeline import Pipeline as Pipeline
from ._pipeline import PipelineOutput as PipelineOutput
from ._pipeline import PipelineStatistics as PipelineStatistics
from ._pipeline import StageStatistics as StageStatistics
from ._pipeline import merge as merge
from ._stats import LatencyHistogram as LatencyHistogram
from ._stats import LatencySummary as LatencySummary
from ._version import __version__ as __version__

__all__ = [
    "AttemptTimedOut",
    "CallRejected",
    "CircuitStateChanged",
    "FallbackUsed",
    "GuardEvent",
    "Hook",
    "LatencyHistogram",
    "LatencySummary",
    "Pipeline",
    "PipelineOutput",
    "PipelineStatistics",
    "RetryGaveUp",
    "RetryScheduled",
    "StageError",
    "StageStatistics",
    "TrineError",
    "merge",
]


def _fixup_module_metadata(module_name: str, namespace: dict[str, object]) -> None:
    """Make every public name report ``trine`` as its module, as Trio does.

    Reprs, tracebacks and Sphinx then say ``trine.X``, not ``trine._fan.X``.
    """
    seen: set[int] = set()

    def fix(qualname: str, name: str, obj: object) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        module = getattr(obj, "__module__", None)
        if module is None or not module.startswith("trine."):
            return
        try:
            obj.__module__ = module_name
        except (AttributeError, TypeError):  # some builtins refuse; leave them
            return
        if isinstance(obj, type):
            obj.__name__ = name
            obj.__qualname__ = qualname
            for attr_name, attr_value in obj.__dict__.items():
                fix(f"{qualname}.{attr_name}", attr_name, attr_value)

    for name in namespace["__all__"]:  # type: ignore[attr-defined]
        fix(name, name, namespace[name])


_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
