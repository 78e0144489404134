"""Rows to entities: the conversion at the store boundary (callers never hold a row)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

E = TypeVar("E")


def to_entity(cls: type[E], row: Any) -> E:
    """The frozen dataclass ``cls`` filled from ``row``'s attributes of the same names.

    JSON columns (dicts, lists) are copied, so an entity shares nothing with its row.

    >>> @dataclasses.dataclass(frozen=True)
    ... class Point:
    ...     x: int
    ...     tags: dict[str, str]
    >>> class Row:
    ...     x, y, tags = 1, 2, {"a": "b"}
    >>> to_entity(Point, Row())
    Point(x=1, tags={'a': 'b'})
    """
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = getattr(row, f.name)
        values[f.name] = value.copy() if isinstance(value, dict | list) else value
    return cls(**values)
