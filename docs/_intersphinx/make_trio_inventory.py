"""Write ``trio.inv``, the intersphinx inventory of Trio's documentation, offline.

The docs build links every Trio name (``trio.CapacityLimiter``, ``trio.testing.MockClock``)
to Trio's documentation through intersphinx, from the inventory file beside this script,
so that ``sphinx-build -W`` needs no network. With network, the real inventory is the
better source and replaces the file as is::

    curl -o docs/_intersphinx/trio.inv https://trio.readthedocs.io/en/stable/objects.inv

Without it, this script builds the same kind of file from a checkout of Trio's
repository: it reads the ``reference-*.rst`` pages for the objects each documents
(``.. autofunction::``, ``.. autoclass::`` and their members, ...), and the installed
``trio`` package for the members of classes documented with a bare ``:members:``::

    python docs/_intersphinx/make_trio_inventory.py path/to/trio/docs/source
"""

from __future__ import annotations

import importlib
import pathlib
import re
import sys
import warnings
import zlib

import trio

BASE = "https://trio.readthedocs.io/en/stable/"
TOP = re.compile(
    r"^\.\. (auto)?(function|class|exception|data|attribute|decorator|module|currentmodule)"
    r":: (\S+?)(\(.*)?$"
)
MEMBER = re.compile(r"^   \.\. (auto)?(method|attribute|property|function):: (\S+?)(\(.*)?$")
MEMBERS = re.compile(r"^   :members:(.*)$")
ROLES = {
    "function": "function",
    "decorator": "function",
    "class": "class",
    "exception": "exception",
    "data": "data",
    "attribute": "data",
}


def _resolve(dotted: str) -> object:
    module_name, _, rest = dotted.partition(".")
    obj: object = importlib.import_module(module_name)
    for part in rest.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(f"{obj.__name__}.{part}")
    return obj


def _member_role(cls_name: str, name: str) -> str:
    try:
        member = vars(_resolve(cls_name)).get(name)
    except (AttributeError, ImportError):
        return "attribute"
    return "method" if callable(member) else "attribute"


def _public_members(cls_name: str) -> list[str]:
    try:
        cls = _resolve(cls_name)
    except (AttributeError, ImportError):
        return []
    return sorted(name for name in vars(cls) if not name.startswith("_"))  # as :members: shows


def entries(page: pathlib.Path) -> list[tuple[str, str]]:
    """(full name, role) of every object *page* documents."""
    found: list[tuple[str, str]] = []
    module = "trio"
    current_class: str | None = None
    for line in page.read_text().splitlines():
        top = TOP.match(line)
        if top:
            kind, name = top.group(2), top.group(3)
            current_class = None
            if kind in ("module", "currentmodule"):
                module = name
                if kind == "module":
                    found.append((name, "module"))
                continue
            full = name if name.startswith("trio") else f"{module}.{name}"
            found.append((full, ROLES[kind]))
            if kind in ("class", "exception"):
                current_class = full
            continue
        if current_class is None:
            continue
        member = MEMBER.match(line)
        if member:
            kind = member.group(2)
            role = "method" if kind in ("method", "function") else "attribute"
            found.append((f"{current_class}.{member.group(3)}", role))
            continue
        members = MEMBERS.match(line)
        if members:
            listed = [m.strip() for m in members.group(1).split(",") if m.strip()]
            for name in listed or _public_members(current_class):
                found.append((f"{current_class}.{name}", _member_role(current_class, name)))
    return found


def main(source: pathlib.Path, output: pathlib.Path) -> None:
    lines = []
    seen = set()
    for page in sorted(source.glob("reference-*.rst")):
        uri = page.stem + ".html"
        for name, role in entries(page):
            if name in seen:
                continue
            seen.add(name)
            anchor = f"module-{name}" if role == "module" else "$"
            lines.append(f"{name} py:{role} 1 {uri}#{anchor} -")
    header = (
        "# Sphinx inventory version 2\n"
        "# Project: Trio\n"
        f"# Version: {trio.__version__}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = zlib.compress(("\n".join(sorted(lines)) + "\n").encode())
    output.write_bytes(header.encode() + body)
    print(f"wrote {len(lines)} entries to {output}")


if __name__ == "__main__":
    warnings.simplefilter("ignore", DeprecationWarning)  # deprecated names are still documented
    main(pathlib.Path(sys.argv[1]), pathlib.Path(__file__).with_name("trio.inv"))
