"""The gates' inputs and results: ``EvalInputs``, ``Gate`` (one line of the report) and
``GateReport``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import ModelPolicy
    from shipyard.packaging import Archive, LoadedModel
    from shipyard.settings import ServeSettings

#: Every gate's name (``metric:`` and ``fairness:`` gates carry a suffix), in report order.
GATE_NAMES = (
    "accept",
    "metric",
    "slices",
    "fairness",
    "explain",
    "serving_cost",
    "schema",
    "data_checks",
    "onnx_parity",
)


@dataclass(frozen=True)
class EvalInputs:
    """What the gates judge: fresh labelled rows, the candidate and (if any) the champion.

    ``rows`` holds the candidate's input columns and may hold more (a sensitive feature the
    model does not use); each model sees only its own schema's columns. ``target`` has one
    label per row. ``serving`` is the server's settings, for the runtime it would choose
    (default ``ServeSettings()``: ONNX when verified, native otherwise).

    >>> EvalInputs.__dataclass_fields__["champion"].type
    'LoadedModel | None'
    """

    rows: pd.DataFrame
    target: np.ndarray
    candidate: LoadedModel
    champion: LoadedModel | None
    policy: ModelPolicy
    candidate_archive: Archive
    champion_archive: Archive | None
    champion_size: int | None
    candidate_size: int
    serving: ServeSettings | None = None


@dataclass(frozen=True)
class Gate:
    """One gate's outcome: a line of the report.

    ``applicable=False`` records a gate that could not apply (no champion, no ONNX export);
    it counts as passed and says why in ``detail``. ``data`` holds the rest (intervals,
    per-slice and per-group tables, importances), JSON-ready.

    >>> gate = Gate("schema", True, None, None, "No change.", "schema", {"changes": []})
    >>> gate.to_json()["name"], gate.counts_as_passed
    ('schema', True)
    """

    name: str
    passed: bool
    value: float | None
    limit: float | None
    detail: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    applicable: bool = True

    @property
    def counts_as_passed(self) -> bool:
        """Passed, or not applicable."""
        return self.passed or not self.applicable

    def to_json(self) -> dict[str, Any]:
        """The gate as JSON-ready values (NaN and infinities as ``None``)."""
        return {
            "name": self.name,
            "passed": self.passed,
            "applicable": self.applicable,
            "value": json_safe(self.value),
            "limit": json_safe(self.limit),
            "detail": self.detail,
            "kind": self.kind,
            "data": json_safe(self.data),
        }


@dataclass(frozen=True)
class GateReport:
    """Every gate's outcome, and the seconds each took (``"predictions"``: the models' one
    pass over the rows). ``passed`` is true iff every applicable gate passed. ``metrics``:
    every applicable metric of both models and their difference, with intervals.

    >>> report = GateReport([Gate("schema", False, None, None, "x", "schema")], {})
    >>> report.passed, report.failed
    (False, ['schema'])
    """

    gates: list[Gate]
    seconds: dict[str, float]
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every applicable gate passed."""
        return all(gate.counts_as_passed for gate in self.gates)

    @property
    def failed(self) -> list[str]:
        """The names of the applicable gates that failed."""
        return [gate.name for gate in self.gates if not gate.counts_as_passed]

    def gate(self, name: str) -> Gate:
        """The gate called ``name`` (``KeyError`` if it was not run)."""
        for gate in self.gates:
            if gate.name == name:
                return gate
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """``passed``, ``failed``, ``gates`` (each ``Gate.to_json``), ``metrics`` and
        ``seconds``."""
        return {
            "passed": self.passed,
            "failed": self.failed,
            "gates": [gate.to_json() for gate in self.gates],
            "metrics": json_safe(self.metrics),
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as plain values, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
