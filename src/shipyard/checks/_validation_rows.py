"""The rows a validation judges both models on, in the order ``validate_version`` tries them:
the rows given (a file or a DataFrame, labelled by their ``target`` column); the labelled
production traffic of the policy's window when at least ``min_labels`` labels arrived; else the
candidate's own eval rows. Each comes with a sentence saying which rows they are (recorded as
the gate record's ``data_source``), and every problem is one ``InvalidInput`` sentence.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import GateSettings, parse_window
from shipyard.dataset import read_table
from shipyard.errors import InvalidInput
from shipyard.packaging import EVAL_TARGET

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shipyard.checks._validate import ValidationRequest
    from shipyard.packaging import Archive


@dataclass(frozen=True)
class Rows:
    """The labelled rows both models are judged on, and which rows they are, in words."""

    frame: pd.DataFrame
    target: np.ndarray
    source: str


@dataclass(frozen=True)
class RowColumns:
    """The columns the rows must have (the candidate's inputs) and may have (the champion's
    inputs and the sensitive features, which the candidate need not read)."""

    required: list[str]
    optional: list[str]

    def keep(self, available: Any) -> list[str]:
        """The required columns, then the optional ones among ``available``."""
        present = set(available)
        extra = [c for c in self.optional if c in present and c not in self.required]
        return [*self.required, *dict.fromkeys(extra)]


def fresh_rows(
    request: ValidationRequest, gates: GateSettings, columns: RowColumns, archive: Archive
) -> Rows:
    """The rows both models are judged on (see the module docstring for the order)."""
    if request.data is not None:
        return _given_rows(request, columns, archive)
    if request.target is not None:
        raise InvalidInput("--target names a column of --data; pass --data FILE as well.")
    production = _production_rows(request, gates, columns, archive)
    if isinstance(production, Rows):
        return production
    eval_rows = archive.eval_rows()
    if eval_rows is None:
        raise InvalidInput(
            f"No rows to validate {request.name} v{request.version} on: {production} and no "
            "eval rows in its archive (registered without X_eval). Pass --data FILE "
            "--target COLUMN."
        )
    return _rows(
        eval_rows,
        EVAL_TARGET,
        columns,
        f"the candidate's own eval rows ({len(eval_rows):,} rows registered with "
        f"v{request.version}; {production})",
        archive,
    )


def _given_rows(request: ValidationRequest, columns: RowColumns, archive: Archive) -> Rows:
    """``--data`` (a file) or ``data`` (a DataFrame), labelled by its ``target`` column."""
    if not request.target:
        raise InvalidInput("--data needs --target: the column of the file holding the label.")
    if isinstance(request.data, Path):
        frame, what = read_table(request.data), f"the file {request.data}"
    else:
        assert request.data is not None
        frame, what = request.data, request.data_label or "the rows passed in"
    if request.target not in frame.columns:
        raise InvalidInput(
            f"There is no column '{request.target}' (the target) in {what}; its columns are: "
            f"{', '.join(map(str, frame.columns))}."
        )
    return _rows(frame, request.target, columns, f"{what} ({len(frame):,} rows)", archive)


def _production_rows(
    request: ValidationRequest, gates: GateSettings, columns: RowColumns, archive: Archive
) -> Rows | str:
    """The answered production requests of the window that have a label; or, when they
    cannot be used, why not (fewer than ``min_labels``, or logged without an input column)."""
    start = datetime.now(UTC) - parse_window(gates.window, option="window")
    too_few = (
        f"fewer than {gates.min_labels} labelled production predictions in the last {gates.window}"
    )
    if request.log_root is None or not request.log_root.exists():
        return too_few
    from shipyard.predlog import query

    # Each prediction once (a shadow's record shares the answered one's id), its latest label.
    sql = f"""
        SELECT p.*, f.label AS "{EVAL_TARGET}"
        FROM predictions p
        JOIN (SELECT prediction_id, arg_max(label, ts) AS label
              FROM feedback GROUP BY prediction_id) f USING (prediction_id)
        WHERE p.status = 'ok' AND coalesce(p.arm, '') <> 'shadow'
          AND epoch(p.ts) >= {start.timestamp()}
    """
    try:
        frame = query(request.log_root, sql, model=request.name)
    except InvalidInput:
        return too_few  # no feedback (or no prediction) recorded yet for this model
    if len(frame) < gates.min_labels:
        return too_few
    unlogged = [c for c in columns.required if f"in__{c}" not in frame.columns]
    if unlogged:  # logged under another schema: not comparable
        return (
            f"the {len(frame):,} labelled production predictions of the last {gates.window} "
            f"lack its input column(s) {', '.join(unlogged)}"
        )
    logged = {f"in__{c}": c for c in [*columns.required, *columns.optional]}
    frame = frame.rename(columns={k: v for k, v in logged.items() if k in frame.columns})
    return _rows(
        frame,
        EVAL_TARGET,
        columns,
        f"labelled production traffic ({len(frame):,} answered requests of {request.name} "
        f"logged since {start:%Y-%m-%d %H:%M} UTC with a label)",
        archive,
    )


def _rows(
    frame: pd.DataFrame, target: str, columns: RowColumns, source: str, archive: Archive
) -> Rows:
    """The labelled rows of ``frame``, cut to the columns the models and the gates read."""
    missing = [c for c in columns.required if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"The validation rows lack the model's column(s) {', '.join(missing)}; they need "
            f"every input column: {', '.join(columns.required)}."
        )
    labels = frame[target]
    keep = labels.notna().to_numpy()
    if not keep.all():
        frame, labels = frame[keep], labels[keep]
    if len(frame) == 0:
        raise InvalidInput(f"The validation rows ({source}) have no labelled row.")
    return Rows(
        frame=frame[columns.keep(frame.columns)].reset_index(drop=True),
        target=_labels(labels, archive),
        source=source,
    )


def _labels(values: pd.Series, archive: Archive) -> np.ndarray:
    """Labels in the model's own class values: a label read back from a file or the log may
    be text ("1") or a float (1.0, a CSV column with a gap) where the class is the integer 1."""
    import numpy as np

    classes = archive.manifest.classes
    if archive.manifest.task == "regression":
        try:
            return values.astype(float).to_numpy()
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"The labels are not numbers: {exc}.") from exc
    if not classes:
        return values.to_numpy()
    by_key = {_label_key(c): c for c in classes}
    keys = [_label_key(v) for v in values]
    unknown = sorted({str(v) for v, k in zip(values, keys, strict=True) if k not in by_key})
    if unknown:
        raise InvalidInput(
            f"The labels hold value(s) {unknown[:5]} the model does not know; its classes "
            f"are {classes}."
        )
    return np.asarray(
        [by_key[k] for k in keys],
        dtype=object if any(isinstance(c, str) for c in classes) else None,
    )


def _label_key(value: Any) -> str:
    """One spelling per label: 1, 1.0, "1" and numpy's 1 are the same label."""
    if isinstance(value, bool | str) or not isinstance(value, numbers.Real):
        return str(value)
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)
