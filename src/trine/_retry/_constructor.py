"""A metaclass for the objects only trine builds."""

from __future__ import annotations

from abc import ABCMeta
from typing import NoReturn, TypeVar

__all__ = ["_NoPublicConstructor"]

_T = TypeVar("_T")


class _NoPublicConstructor(ABCMeta):
    """Metaclass refusing ``Class(...)``; the class's factories use ``_create``.

    As ``trio._util.NoPublicConstructor`` does, for objects only trine builds.
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"trine.{cls.__qualname__} has no public constructor")

    def _create(cls: type[_T], *args: object, **kwargs: object) -> _T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]
