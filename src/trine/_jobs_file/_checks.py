"""Collecting a jobs file's problems, each with the path of the value at fault."""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Mapping
from typing import Any

from .._util import describe as describe_int

__all__ = ["Checker", "describe"]


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a float",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def describe(value: object) -> str:
    if isinstance(value, dict | list):
        return _type_name(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{_type_name(value)} {value!r}"


class Checker:
    """Collects problems, each with the dotted path of the value at fault."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def unknown_keys(self, where: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                prefix = f"{where}: " if where else ""
                self.problems.append(f"{prefix}unknown key {key!r}{hint}")

    def table(self, where: str, value: object) -> Mapping[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(where, f"must be a table, got {describe(value)}")
            return None
        return value

    def integer(
        self, where: str, value: object, minimum: int, maximum: int = sys.maxsize
    ) -> int | None:
        """*value* if it is an integer in ``[minimum, maximum]``; the default *maximum*,
        :data:`sys.maxsize`, is what every count and capacity of the runner accepts."""
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"must be an integer, got {describe(value)}")
            return None
        if value < minimum:
            self.fail(where, f"must be >= {minimum}, got {value}")
            return None
        if value > maximum:
            self.fail(where, f"must be <= {maximum}, got {describe_int(value)}")
            return None
        return value

    def text(self, where: str, value: str) -> bool:
        """Whether *value* has no NUL byte (no program can be given one); else a problem."""
        if "\0" in value:
            self.fail(where, f"must not contain NUL bytes, got {value!r}")
            return False
        return True

    def seconds(self, where: str, value: object, *, zero: bool = False) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(where, f"must be a number of seconds, got {describe(value)}")
            return None
        if math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not zero):
            self.fail(where, f"must be {'>= 0' if zero else '> 0'} (and finite), got {value}")
            return None
        return float(value)

    def boolean(self, where: str, value: object) -> bool | None:
        if not isinstance(value, bool):
            self.fail(where, f"must be true or false, got {describe(value)}")
            return None
        return value

    def string(self, where: str, value: object) -> str | None:
        if not isinstance(value, str):
            self.fail(where, f"must be a string, got {describe(value)}")
            return None
        return value

    def strings(self, where: str, value: object, what: str) -> list[str] | None:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(where, f"must be an array of {what}, got {describe(value)}")
            return None
        return value
