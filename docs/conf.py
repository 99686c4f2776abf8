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
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

# Every Trio name links to Trio's docs. The inventory is a file in the repository
# (docs/_intersphinx/make_trio_inventory.py says how it is made and refreshed), so the
# build reads no network: `sphinx-build -W` passes offline, in CI as on a laptop.
intersphinx_mapping = {
    "trio": ("https://trio.readthedocs.io/en/stable/", "_intersphinx/trio.inv"),
}

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

default_role = "py:obj"
# furo: a wide content column, so code blocks fit; light and dark modes.
html_theme = "furo"
html_title = f"trine {release}"
html_static_path = ["_static"]
exclude_patterns = ["_build", "_intersphinx"]
