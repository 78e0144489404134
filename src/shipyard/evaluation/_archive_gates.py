"""Gates read from the candidate's archive: the training-data checks kept at registration
(``data_checks.json``) and the ONNX export's parity with the native model on the fresh rows."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from shipyard.config import GateSettings
from shipyard.evaluation._gate import Gate
from shipyard.evaluation._scored import Outputs
from shipyard.packaging import Archive, OnnxInput, OnnxPredictor

#: ONNX parity is checked on at most this many of the rows (a seeded sample beyond).
ONNX_ROWS = 20_000


def data_checks_gate(archive: Archive, settings: GateSettings) -> Gate:
    """Duplicates above ``max_duplicate_share`` and a feature that alone predicts the target
    (``leakage_auc``) fail; constant columns are a warning."""
    checks = archive.data_checks()
    if checks is None:
        return Gate(
            "data_checks",
            True,
            None,
            None,
            "Not applicable: the candidate was registered without y_train, or before "
            "data checks existed, so its archive holds no data_checks.json.",
            "data",
            {},
            applicable=False,
        )
    share = float(checks["duplicate_share"])
    leaked = {f: s for f, s in checks["leakage"].items() if s >= settings.leakage_auc}
    constant = list(checks["constant_columns"])
    metric = "AUC" if checks["leakage_metric"] == "auc" else "|Spearman|"
    problems = []
    if share > settings.max_duplicate_share:
        problems.append(
            f"{share:.1%} of training rows are duplicates "
            f"(allowed {settings.max_duplicate_share:.0%})"
        )
    if leaked:
        listed = ", ".join(
            f"{f} ({metric} {s:.3f})" for f, s in sorted(leaked.items(), key=lambda x: -x[1])
        )
        problems.append(
            f"label leakage: {listed} alone predict(s) the target "
            f"({metric} >= {settings.leakage_auc:g})"
        )
    notes = [f"constant column(s) {constant} (a warning)"] if constant else []
    top = max(checks["leakage"].items(), key=lambda x: x[1], default=None)
    if problems:
        detail = "Training data: " + "; ".join(problems + notes) + "."
    else:
        strongest = (
            f"; the strongest single feature is {top[0]} ({metric} {top[1]:.3f})" if top else ""
        )
        detail = (
            f"Training data: {share:.1%} duplicate rows, no leakage{strongest}"
            + (f"; {notes[0]}" if notes else "")
            + "."
        )
    data: dict[str, Any] = {
        **checks,
        "leaked": leaked,
        "warnings": notes,
        "leakage_auc": settings.leakage_auc,
        "max_duplicate_share": settings.max_duplicate_share,
    }
    return Gate(
        "data_checks",
        not problems,
        None if top is None else top[1],
        settings.leakage_auc,
        detail,
        "data",
        data,
    )


def onnx_gate(
    archive: Archive, frame: pd.DataFrame, native: Outputs, settings: GateSettings
) -> Gate:
    """max |ONNX - native| on the rows (probabilities, else predictions) within tolerance;
    at most ``ONNX_ROWS`` rows (a seeded sample)."""
    summary = archive.manifest.onnx or {}
    if "model.onnx" not in archive.members:
        why = f" ({summary['error']})" if summary.get("error") else ""
        return Gate(
            "onnx_parity",
            True,
            None,
            settings.onnx_tolerance,
            f"Not applicable: the candidate's archive has no ONNX export{why}.",
            "onnx",
            {"registered": summary},
            applicable=False,
        )
    inputs = [OnnxInput(**item) for item in summary.get("inputs", [])]
    if len(frame) > ONNX_ROWS:
        keep = np.sort(np.random.default_rng(0).choice(len(frame), ONNX_ROWS, replace=False))
        frame = frame.iloc[keep]
        native = Outputs(
            native.labels[keep], None if native.proba is None else native.proba[keep], 0.0
        )
    try:
        predictor = OnnxPredictor(archive.members["model.onnx"], inputs).load()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels, proba = predictor.predict_arrays(predictor.make_feed(frame))
    except Exception as exc:  # the export not running is the finding
        return Gate(
            "onnx_parity",
            False,
            None,
            settings.onnx_tolerance,
            f"The ONNX export failed to run on these rows ({type(exc).__name__}).",
            "onnx",
            {"registered": summary},
        )
    if native.proba is not None and proba is not None:
        diff = np.abs(np.asarray(proba, dtype=float) - native.proba)
        on = "probabilities"
        per_row = diff.max(axis=1)
    else:
        on = "predictions"
        try:
            per_row = np.abs(np.asarray(labels, dtype=float).ravel() - native.labels.astype(float))
        except (TypeError, ValueError):  # class labels: compare them
            per_row = (np.asarray(labels).ravel().astype(str) != native.labels.astype(str)).astype(
                float
            )
    per_row = np.where(np.isnan(per_row), np.inf, per_row)
    worst = float(per_row.max()) if len(per_row) else 0.0
    over = float((per_row > settings.onnx_tolerance).mean()) if len(per_row) else 0.0
    passed = worst <= settings.onnx_tolerance
    detail = (
        f"ONNX vs native {on} on {len(per_row)} rows: max |difference| {worst:.3g} "
        f"{'within' if passed else 'beyond'} the tolerance {settings.onnx_tolerance:g}"
        + ("" if passed else f" ({over:.2%} of rows beyond it)")
        + "."
    )
    return Gate(
        "onnx_parity",
        passed,
        worst,
        settings.onnx_tolerance,
        detail,
        "onnx",
        {
            "compared": on,
            "rows": len(per_row),
            "share_beyond": over,
            "precision": summary.get("precision"),
            "registered": summary,
        },
    )
