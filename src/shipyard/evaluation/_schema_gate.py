"""The schema gate: is the candidate's input schema compatible with the champion's callers?

Breaking: a removed column, a changed type, a new column that may not be missing (callers do
not send it), a column that no longer accepts missing values. Not breaking: a new optional
column, an integer column now read as float, text typed as categorical or back (both arrive
as strings), changed categories or ranges. Every change is listed, breaking or not, so the
integrator can audit a schema change between versions.
"""

from __future__ import annotations

from typing import Any

from shipyard.dataset import ColumnSchema, Schema
from shipyard.evaluation._gate import Gate

#: Type changes a caller of the champion does not notice.
_COMPATIBLE = {("integer", "float"), ("string", "categorical"), ("categorical", "string")}


def schema_changes(old: Schema, new: Schema) -> list[dict[str, Any]]:
    """Every difference between two input schemas, each with ``breaking`` and a sentence.

    >>> from shipyard.dataset import ColumnSchema as C
    >>> old = Schema(columns=[C(name="age", dtype="integer", nullable=False)])
    >>> new = Schema(columns=[C(name="age", dtype="float", nullable=False),
    ...                       C(name="plan", dtype="string", nullable=True)])
    >>> [(c["change"], c["breaking"]) for c in schema_changes(old, new)]
    [('type', False), ('added', False)]
    """
    before = {c.name: c for c in old.columns}
    after = {c.name: c for c in new.columns}
    changes: list[dict[str, Any]] = []
    for name, column in before.items():
        if name not in after:
            changes.append(_change(name, "removed", True, f"column {name!r} was removed"))
            continue
        changes.extend(_column_changes(column, after[name]))
    for name, column in after.items():
        if name in before:
            continue
        required = not column.nullable
        sentence = (
            f"new required column {name!r} ({column.dtype}, may not be missing)"
            if required
            else f"new optional column {name!r} ({column.dtype})"
        )
        changes.append(_change(name, "added", required, sentence, dtype=column.dtype))
    return changes


def _column_changes(old: ColumnSchema, new: ColumnSchema) -> list[dict[str, Any]]:
    name = old.name
    out = []
    if old.dtype != new.dtype:
        breaking = (old.dtype, new.dtype) not in _COMPATIBLE
        out.append(
            _change(
                name,
                "type",
                breaking,
                f"{name!r} changed type from {old.dtype} to {new.dtype}",
                before=old.dtype,
                after=new.dtype,
            )
        )
    if old.nullable and not new.nullable:
        out.append(_change(name, "nullable", True, f"{name!r} no longer accepts missing values"))
    elif new.nullable and not old.nullable:
        out.append(_change(name, "nullable", False, f"{name!r} now accepts missing values"))
    if (
        old.categories != new.categories
        and old.categories is not None
        and new.categories is not None
    ):
        added = sorted(set(new.categories) - set(old.categories))
        removed = sorted(set(old.categories) - set(new.categories))
        if added or removed:
            out.append(
                _change(
                    name,
                    "categories",
                    False,
                    f"{name!r} categories changed (+{len(added)}, -{len(removed)})",
                    added=added[:20],
                    removed=removed[:20],
                )
            )
    return out


def _change(
    column: str, change: str, breaking: bool, sentence: str, **extra: Any
) -> dict[str, Any]:
    return {"column": column, "change": change, "breaking": breaking, "detail": sentence, **extra}


def schema_gate(candidate: Schema, champion: Schema | None) -> Gate:
    """Fails on any breaking change against the champion's schema."""
    if champion is None:
        return Gate(
            "schema",
            True,
            None,
            None,
            "No champion to compare the input schema with.",
            "schema",
            {"changes": []},
            applicable=False,
        )
    changes = schema_changes(champion, candidate)
    breaking = [c for c in changes if c["breaking"]]
    if not changes:
        detail = "The input schema is the champion's."
    elif breaking:
        detail = f"{len(breaking)} breaking change(s): " + "; ".join(c["detail"] for c in breaking)
        if len(changes) > len(breaking):
            detail += f" (and {len(changes) - len(breaking)} compatible)"
        detail += "."
    else:
        detail = "Compatible changes only: " + "; ".join(c["detail"] for c in changes) + "."
    return Gate(
        "schema",
        not breaking,
        float(len(breaking)),
        0.0,
        detail,
        "schema",
        {"changes": changes, "breaking": len(breaking)},
    )
