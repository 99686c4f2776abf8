"""trine: structured-concurrency toolkit for Trio.

Everything public is importable from ``trine`` itself; the private modules
(``trine._fan``, ``trine._map``, ...) are an implementation detail.
"""

from __future__ import annotations

from ._balance import Balancer as Balancer
from ._balance import BalancerStatistics as BalancerStatistics
from ._balance import EndpointStatistics as EndpointStatistics
from ._balance import OutlierEjection as OutlierEjection
from ._batch import Batcher as Batcher
from ._batch import BatcherStatistics as BatcherStatistics
from ._breaker import CircuitBreaker as CircuitBreaker
from ._breaker import CircuitBreakerStatistics as CircuitBreakerStatistics
from ._breaker import CircuitState as CircuitState
from ._cache import AsyncCache as AsyncCache
from ._cache import AsyncCacheStatistics as AsyncCacheStatistics
from ._chaos import Chaos as Chaos
from ._chaos import ChaosStatistics as ChaosStatistics
from ._errors import BatcherFull as BatcherFull
from ._errors import BulkheadFull as BulkheadFull
from ._errors import CircuitOpenError as CircuitOpenError
from ._errors import CycleError as CycleError
from ._errors import DeadlineExceeded as DeadlineExceeded
from ._errors import InjectedFault as InjectedFault
from ._errors import NoEndpointError as NoEndpointError
from ._errors import RateLimitExceeded as RateLimitExceeded
from ._errors import StageError as StageError
from ._errors import TrineError as TrineError
from ._fan import Hedge as Hedge
from ._fan import HedgeStatistics as HedgeStatistics
from ._fan import gather as gather
from ._fan import hedge as hedge
from ._fan import race as race
from ._fan import settle as settle
from ._flight import SingleFlight as SingleFlight
from ._flight import SingleFlightStatistics as SingleFlightStatistics
from ._graph import GraphResult as GraphResult
from ._graph import GraphStatistics as GraphStatistics
from ._graph import Node as Node
from ._graph import NodeEvent as NodeEvent
from ._graph import NodeResult as NodeResult
from ._graph import NodeStatus as NodeStatus
from ._graph import TaskGraph as TaskGraph
from ._hooks import AttemptTimedOut as AttemptTimedOut
from ._hooks import CallRejected as CallRejected
from ._hooks import CircuitStateChanged as CircuitStateChanged
from ._hooks import FallbackUsed as FallbackUsed
from ._hooks import GuardEvent as GuardEvent
from ._hooks import Hook as Hook
from ._hooks import RetryGaveUp as RetryGaveUp
from ._hooks import RetryScheduled as RetryScheduled
from ._limit import AdaptiveLimiter as AdaptiveLimiter
from ._limit import AdaptiveLimiterStatistics as AdaptiveLimiterStatistics
from ._limit import AdaptivePermit as AdaptivePermit
from ._limit import Bulkhead as Bulkhead
from ._limit import BulkheadStatistics as BulkheadStatistics
from ._limit import KeyedLimiter as KeyedLimiter
from ._limit import KeyedLimiterStatistics as KeyedLimiterStatistics
from ._limit import Limiter as Limiter
from ._limit import LimiterLike as LimiterLike
from ._limit import PriorityLimiter as PriorityLimiter
from ._limit import PriorityLimiterStatistics as PriorityLimiterStatistics
from ._limit import WeightedSemaphore as WeightedSemaphore
from ._limit import WeightedSemaphoreStatistics as WeightedSemaphoreStatistics
from ._limit import acquire_all as acquire_all
from ._map import amap as amap
from ._map import for_each as for_each
from ._map import map_all as map_all
from ._map import map_settled as map_settled
from ._percentile import Percentile as Percentile
from ._pipeline import Pipeline as Pipeline
from ._pipeline import PipelineOutput as PipelineOutput
from ._pipeline import PipelineStatistics as PipelineStatistics
from ._pipeline import StageStatistics as StageStatistics
from ._pipeline import merge as merge
from ._pipeline import zip as zip
from ._pipeline import zip_latest as zip_latest
from ._policy import Policy as Policy
from ._pool import ResourcePool as ResourcePool
from ._pool import ResourcePoolStatistics as ResourcePoolStatistics
from ._process import Command as Command
from ._process import CommandAttempt as CommandAttempt
from ._process import CommandResult as CommandResult
from ._process import CommandStatus as CommandStatus
from ._process import LoadSample as LoadSample
from ._process import SystemLoad as SystemLoad
from ._process import SystemLoadStatistics as SystemLoadStatistics
from ._process import run_commands as run_commands
from ._process import to_process as to_process
from ._progress._target import progress as progress
from ._rate import RateLimiter as RateLimiter
from ._rate import RateLimiterStatistics as RateLimiterStatistics
from ._rate import SlidingWindowLimiter as SlidingWindowLimiter
from ._rate import SlidingWindowLimiterStatistics as SlidingWindowLimiterStatistics
from ._report import ReportAttempt as ReportAttempt
from ._report import ReportJob as ReportJob
from ._report import ReportSummary as ReportSummary
from ._report import ResourceSummary as ResourceSummary
from ._report import RunReport as RunReport
from ._report import run_report as run_report
from ._retry import Backoff as Backoff
from ._retry import Retry as Retry
from ._retry import RetryAttempt as RetryAttempt
from ._retry import RetryBudget as RetryBudget
from ._retry import RetryBudgetStatistics as RetryBudgetStatistics
from ._retry import RetryOn as RetryOn
from ._retry import RetryStatistics as RetryStatistics
from ._stats import LatencyHistogram as LatencyHistogram
from ._stats import LatencySummary as LatencySummary
from ._taskpool import TaskPool as TaskPool
from ._taskpool import TaskPoolStatistics as TaskPoolStatistics
from ._util import ExceptionFilter as ExceptionFilter
from ._values import ReadOnlyValue as ReadOnlyValue
from ._version import __version__ as __version__

__all__ = [
    "AdaptiveLimiter",
    "AdaptiveLimiterStatistics",
    "AdaptivePermit",
    "AsyncCache",
    "AsyncCacheStatistics",
    "AttemptTimedOut",
    "Backoff",
    "Balancer",
    "BalancerStatistics",
    "Batcher",
    "BatcherFull",
    "BatcherStatistics",
    "Bulkhead",
    "BulkheadFull",
    "BulkheadStatistics",
    "CallRejected",
    "Chaos",
    "ChaosStatistics",
    "CircuitBreaker",
    "CircuitBreakerStatistics",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStateChanged",
    "Command",
    "CommandAttempt",
    "CommandResult",
    "CommandStatus",
    "CycleError",
    "DeadlineExceeded",
    "EndpointStatistics",
    "ExceptionFilter",
    "FallbackUsed",
    "GraphResult",
    "GraphStatistics",
    "GuardEvent",
    "Hedge",
    "HedgeStatistics",
    "Hook",
    "InjectedFault",
    "KeyedLimiter",
    "KeyedLimiterStatistics",
    "LatencyHistogram",
    "LatencySummary",
    "Limiter",
    "LimiterLike",
    "LoadSample",
    "NoEndpointError",
    "Node",
    "NodeEvent",
    "NodeResult",
    "NodeStatus",
    "OutlierEjection",
    "Percentile",
    "Pipeline",
    "PipelineOutput",
    "PipelineStatistics",
    "Policy",
    "PriorityLimiter",
    "PriorityLimiterStatistics",
    "RateLimitExceeded",
    "RateLimiter",
    "RateLimiterStatistics",
    "ReadOnlyValue",
    "ReportAttempt",
    "ReportJob",
    "ReportSummary",
    "ResourcePool",
    "ResourcePoolStatistics",
    "ResourceSummary",
    "Retry",
    "RetryAttempt",
    "RetryBudget",
    "RetryBudgetStatistics",
    "RetryGaveUp",
    "RetryOn",
    "RetryScheduled",
    "RetryStatistics",
    "RunReport",
    "SingleFlight",
    "SingleFlightStatistics",
    "SlidingWindowLimiter",
    "SlidingWindowLimiterStatistics",
    "StageError",
    "StageStatistics",
    "SystemLoad",
    "SystemLoadStatistics",
    "TaskGraph",
    "TaskPool",
    "TaskPoolStatistics",
    "TrineError",
    "WeightedSemaphore",
    "WeightedSemaphoreStatistics",
    "acquire_all",
    "amap",
    "for_each",
    "gather",
    "hedge",
    "map_all",
    "map_settled",
    "merge",
    "progress",
    "race",
    "run_commands",
    "run_report",
    "settle",
    "to_process",
    "zip",
    "zip_latest",
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
