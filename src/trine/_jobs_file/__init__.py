"""The jobs file of the ``trine`` command line: reading and validating it.

A jobs file is TOML::

    [run]
    limit = 4            # jobs running at once (default: the number of CPUs)
    timeout = 60         # seconds per attempt, for jobs without their own
    retries = 0          # extra attempts for a failed or timed-out job
    retry_delay = 0      # seconds before a retry ...
    retry_backoff = "constant"  # ... or "exponential" (doubling, up to retry_max_delay)
    halt = "soon,fail=3" # stop starting jobs after 3 failures ("now,...": stop running ones too)
    max_cpu_percent = 90 # hold new jobs back while the machine is busier
    min_free_memory = 1_000_000_000  # ... or has less free memory (bytes)

    [resources]
    db = 1               # name = capacity

    [jobs.fetch]
    cmd = ["python3", "fetch.py", "{day}"]
    matrix = { day = ["mon", "tue"] }   # one job per value: fetch.mon, fetch.tue

    [jobs.clean]
    cmd = "python3 clean.py | gzip > clean.gz"
    shell = true
    after = ["fetch"]    # every fetch job
    uses = {db = 1}      # or a list of names, each with weight 1
    inputs = ["*.csv"]   # skipped as up to date when every output is newer
    outputs = ["clean.gz"]

Everything is checked before anything runs, and every problem is reported in
one pass, each with the path of the offending value
(``jobs.clean.after: unknown job 'fetch_tx'``). This package knows nothing of
how the jobs are run. Its modules: ``_model`` (what a file says, validated),
``_checks`` (collecting problems), ``_parse`` (reading and checking the
tables), ``_matrix`` (expanding matrices, resolving dependencies, checking
paths) and ``_order`` (cycles, waves, selections).
"""

from __future__ import annotations

from ._matrix import matrix_id as matrix_id
from ._model import HaltPolicy as HaltPolicy
from ._model import Job as Job
from ._model import JobsFile as JobsFile
from ._model import JobsFileError as JobsFileError
from ._model import RetrySettings as RetrySettings
from ._model import RunSettings as RunSettings
from ._model import parse_halt as parse_halt
from ._order import select as select
from ._order import waves as waves
from ._parse import load_jobs_file as load_jobs_file
from ._parse import parse_jobs as parse_jobs

__all__ = [
    "HaltPolicy",
    "Job",
    "JobsFile",
    "JobsFileError",
    "RetrySettings",
    "RunSettings",
    "load_jobs_file",
    "matrix_id",
    "parse_halt",
    "parse_jobs",
    "select",
    "waves",
]
