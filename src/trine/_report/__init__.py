"""Run reports: a run's timeline of attempts drawn as a self-contained HTML page.

- ``_model``: :class:`RunReport`, :class:`ReportJob`, :class:`ReportAttempt`
  and the numbers computed from them (:class:`ReportSummary`).
- ``_sources``: :func:`run_report`, from a :class:`~trine.GraphResult` or
  :func:`~trine.run_commands` results.
- ``_html``: the page (inline SVG and CSS, no script).
"""

from __future__ import annotations

from ._model import ReportAttempt as ReportAttempt
from ._model import ReportJob as ReportJob
from ._model import ReportSummary as ReportSummary
from ._model import ResourceSummary as ResourceSummary
from ._model import RunReport as RunReport
from ._sources import run_report as run_report

__all__ = [
    "ReportAttempt",
    "ReportJob",
    "ReportSummary",
    "ResourceSummary",
    "RunReport",
    "run_report",
]
