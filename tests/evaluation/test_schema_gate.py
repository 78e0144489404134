"""Schema compatibility: breaking and compatible changes, each listed."""

from __future__ import annotations

from shipyard.dataset import ColumnSchema, Schema
from shipyard.evaluation._schema_gate import schema_changes, schema_gate


def _schema(*columns: tuple[str, str, bool]) -> Schema:
    return Schema(columns=[ColumnSchema(name=n, dtype=t, nullable=z) for n, t, z in columns])  # type: ignore[arg-type]


CHAMPION = _schema(("age", "integer", False), ("plan", "string", False), ("x", "float", True))


def test_the_same_schema_passes() -> None:
    gate = schema_gate(CHAMPION, CHAMPION)
    assert gate.passed and gate.data["changes"] == []


def test_changes_are_classified() -> None:
    cases = {
        "removed": (_schema(("age", "integer", False), ("plan", "string", False)), True),
        "type change": (
            _schema(("age", "integer", False), ("plan", "float", False), ("x", "float", True)),
            True,
        ),
        "new required column": (
            _schema(
                *[(c.name, c.dtype, c.nullable) for c in CHAMPION.columns], ("z", "float", False)
            ),
            True,
        ),
        "new optional column": (
            _schema(
                *[(c.name, c.dtype, c.nullable) for c in CHAMPION.columns], ("z", "float", True)
            ),
            False,
        ),
        "integer widened to float": (
            _schema(("age", "float", False), ("plan", "string", False), ("x", "float", True)),
            False,
        ),
        "no longer nullable": (
            _schema(("age", "integer", False), ("plan", "string", False), ("x", "float", False)),
            True,
        ),
    }
    for what, (candidate, breaking) in cases.items():
        gate = schema_gate(candidate, CHAMPION)
        assert gate.passed is not breaking, what
        assert len(gate.data["changes"]) == 1, what
        assert gate.data["changes"][0]["breaking"] is breaking, what


def test_every_change_is_listed_and_the_detail_names_the_breaking_ones() -> None:
    candidate = _schema(("age", "float", False), ("z", "string", False))
    changes = schema_changes(CHAMPION, candidate)
    assert sorted((c["column"], c["change"]) for c in changes) == [
        ("age", "type"),
        ("plan", "removed"),
        ("x", "removed"),
        ("z", "added"),
    ]
    gate = schema_gate(candidate, CHAMPION)
    assert not gate.passed and gate.value == 3
    assert "'plan' was removed" in gate.detail and "new required column 'z'" in gate.detail


def test_without_a_champion_the_schema_gate_does_not_apply() -> None:
    gate = schema_gate(CHAMPION, None)
    assert not gate.applicable and gate.counts_as_passed and "No champion" in gate.detail
