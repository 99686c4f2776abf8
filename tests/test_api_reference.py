"""docs/api/: every public name of ``trine`` is documented on exactly one topic page."""

from __future__ import annotations

import collections
import pathlib
import re

import trine

API = pathlib.Path(__file__).resolve().parent.parent / "docs" / "api"
_ENTRY = re.compile(
    r"^\.\. (?:autoclass|autoexception|autofunction|data):: (?:trine\.)?(\w+)$", re.MULTILINE
)


def _documented() -> collections.Counter[str]:
    names: collections.Counter[str] = collections.Counter()
    for page in sorted(API.glob("*.rst")):
        names.update(_ENTRY.findall(page.read_text(encoding="utf-8")))
    return names


def test_every_public_name_has_one_entry() -> None:
    """A name added to trine.__all__ fails here until a topic page lists it, once."""
    documented = _documented()
    assert sorted(set(trine.__all__) - set(documented)) == []
    assert sorted(name for name, count in documented.items() if count > 1) == []


def test_every_entry_is_public() -> None:
    """A page does not document a name that trine no longer exports."""
    assert sorted(set(_documented()) - set(trine.__all__)) == []


def test_every_topic_page_is_in_the_index() -> None:
    """docs/api.rst's toctree lists every page of docs/api/."""
    index = (API.parent / "api.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^   api/(\w+)$", index, re.MULTILINE))
    assert listed == {page.stem for page in API.glob("*.rst")}
