"""Sphinx configuration for trine's documentation."""

from __future__ import annotations

import importlib.metadata

project = "trine"
author = "The trine developers"
copyright = "2026, The trine developers"
release = importlib.metadata.version("trine")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

default_role = "py:obj"
html_theme = "alabaster"
html_static_path = ["_static"]
exclude_patterns = ["_build"]
