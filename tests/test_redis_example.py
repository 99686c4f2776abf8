"""examples/redis_fleet.py, the Redis guide's worked example, runs and prints what it says."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
from typing import Any

import pytest

pytest.importorskip("coredis")

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "redis_fleet.py"


def test_three_processes_drain_one_stream_within_one_quota(redis_server: Any) -> None:
    """Every order gets one receipt, from three workers, and no second holds more than the quota."""
    command = [sys.executable, str(EXAMPLE), "--port", str(redis_server.port), "--orders", "60"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert re.search(r"^60 receipts, 0 orders dead-lettered, in [\d.]+ s$", out, re.M), out
    assert len(re.findall(r'^\{"worker": "worker-\d", "receipts": \d+\}$', out, re.M)) == 3
    busiest = int(re.search(r"busiest second of receipts: (\d+)", out)[1])  # type: ignore[index]
    assert busiest <= 50 + 1 + 3  # burst + rate, and the calls' own jitter before the write
