"""Importing an optional library a test module needs: skip without it, except on CI."""

from __future__ import annotations

import importlib
import os
import types

import pytest


def require(module: str, *, extra: str) -> types.ModuleType:
    """Import *module*, or skip the calling test module saying how to install it.

    Under ``CI=true`` a missing library is an error instead: CI installs the
    ``test`` extra, which has every optional library, so a skip there would hide
    a broken install.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(
            f"{module} is not installed (pip install 'trine[{extra}]', or the test extra)",
            allow_module_level=True,
        )
