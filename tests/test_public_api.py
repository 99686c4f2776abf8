"""The public namespace: what ``trine`` exports and how it presents it."""

from __future__ import annotations

import inspect
import types

import trine
import trine.testing


def _public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations"}
    }


def test_all_lists_exactly_the_public_names() -> None:
    """``trine.__all__`` is sorted and equals every public name in the namespace."""
    assert trine.__all__ == sorted(trine.__all__)
    assert set(trine.__all__) == _public_names(trine)


def test_testing_all_lists_exactly_the_public_names() -> None:
    """``trine.testing.__all__`` is sorted and complete too."""
    assert trine.testing.__all__ == sorted(trine.testing.__all__)
    assert set(trine.testing.__all__) == _public_names(trine.testing)


def test_public_names_report_trine_as_their_module() -> None:
    """Reprs and tracebacks say ``trine.X``, not the private module."""
    for name in trine.__all__:
        obj = getattr(trine, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "trine", name


def test_version_is_a_string() -> None:
    """``trine.__version__`` is served for users and bug reports."""
    assert isinstance(trine.__version__, str)
    assert trine.__version__
