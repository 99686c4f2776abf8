"""The docs' own promises: the asyncio page's trine examples run, and every Trio name the
docs mention links to Trio's documentation through the inventory in the repository."""

from __future__ import annotations

import pathlib
import re
import textwrap
from typing import Any

import pytest
from sphinx.util.inventory import InventoryFile

ROOT = pathlib.Path(__file__).resolve().parent.parent
ASYNCIO_GUIDE = ROOT / "docs" / "guide" / "asyncio.rst"


def _examples(page: pathlib.Path) -> list[str]:
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", page.read_text(), re.M)
    return [textwrap.dedent(block) for block in blocks]


def test_the_asyncio_page_has_its_five_examples() -> None:
    """One trine example per hand-rolled pattern (so the test below runs all five)."""
    assert len(_examples(ASYNCIO_GUIDE)) == 5


@pytest.mark.parametrize("source", _examples(ASYNCIO_GUIDE))
def test_the_asyncio_page_examples_run(source: str) -> None:
    """Each ``code-block:: python`` runs as written, on the fake clock, and its asserts hold."""
    assert "trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))" in source
    namespace: dict[str, Any] = {}
    exec(compile(source, str(ASYNCIO_GUIDE), "exec"), namespace)


def _trio_names_in_docs() -> set[str]:
    role = re.compile(r":(?:func|class|exc|meth|attr|data|obj|mod):`~?(trio(?:\.\w+)+)`")
    texts = [path.read_text() for path in (ROOT / "docs").rglob("*.rst")]
    texts += [path.read_text() for path in (ROOT / "src" / "trine").rglob("*.py")]
    return {name for text in texts for name in role.findall(text)}


def test_every_trio_name_the_docs_link_is_in_the_inventory() -> None:
    """docs/_intersphinx/trio.inv resolves every :role:`trio.X` in the docs and docstrings."""
    with open(ROOT / "docs" / "_intersphinx" / "trio.inv", "rb") as stream:
        inventory = InventoryFile.load(stream, "https://trio.readthedocs.io/en/stable/", "/".join)
    known = {name for entries in inventory.values() for name in entries}
    names = _trio_names_in_docs()
    assert len(names) > 15
    assert sorted(names - known) == []
