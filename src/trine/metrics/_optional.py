"""Importing an exporter's optional library, with the install line when it is missing."""

from __future__ import annotations

import importlib
import types

__all__ = ["import_optional"]


def import_optional(module: str, *, needed_by: str, extra: str, package: str) -> types.ModuleType:
    """Import *module*, or raise an ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{needed_by} needs {package}: pip install 'trine[{extra}]'") from error
