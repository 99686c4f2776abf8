"""Shared by the example's job scripts: where they keep their files."""

import os
import pathlib
import tempfile


def work_dir() -> pathlib.Path:
    """The directory the jobs pass data through ($ETL_WORK_DIR, or <tmp>/trine-example)."""
    path = pathlib.Path(
        os.environ.get("ETL_WORK_DIR") or pathlib.Path(tempfile.gettempdir()) / "trine-example"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path
