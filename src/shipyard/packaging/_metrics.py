"""Evaluation metrics recorded in a version's manifest."""

from __future__ import annotations

from typing import Any

import numpy as np

from shipyard.packaging._onnx import flat_predictions


def evaluate(model: Any, X: Any, y: Any, *, task: str) -> dict[str, float]:
    """Standard metrics of ``model`` on ``(X, y)``.

    Classification: accuracy, f1 (binary, or macro for multiclass), roc_auc, log_loss;
    regression: mae, rmse, r2.
    """
    from sklearn import metrics as skm  # here: importing packaging costs no scikit-learn

    y_true = np.asarray(y)
    if task == "regression":
        pred = np.asarray(flat_predictions(model.predict(X)), dtype=float)
        return {
            "mae": float(skm.mean_absolute_error(y_true, pred)),
            "rmse": float(np.sqrt(skm.mean_squared_error(y_true, pred))),
            "r2": float(skm.r2_score(y_true, pred)),
        }
    pred = flat_predictions(model.predict(X))
    classes = list(getattr(model, "classes_", np.unique(y_true)))
    binary = len(classes) == 2
    out = {
        "accuracy": float(skm.accuracy_score(y_true, pred)),
        "f1": float(
            skm.f1_score(
                y_true, pred, average="binary" if binary else "macro", pos_label=classes[-1]
            )
            if binary
            else skm.f1_score(y_true, pred, average="macro")
        ),
    }
    if hasattr(model, "predict_proba") and len(np.unique(y_true)) > 1:
        proba = np.asarray(model.predict_proba(X), dtype=float)
        # Boosters compute probabilities in float32: rows sum to 1 +- 1e-7, which log_loss
        # warns about; the ranking (roc_auc) is unchanged by the rescaling.
        sums = proba.sum(axis=1, keepdims=True)
        proba = np.divide(proba, sums, out=proba.copy(), where=sums > 0)
        if binary:
            out["roc_auc"] = float(skm.roc_auc_score(y_true == classes[-1], proba[:, 1]))
        elif set(np.unique(y_true)) <= set(classes):
            out["roc_auc"] = float(
                skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
            )
        out["log_loss"] = float(skm.log_loss(y_true, proba, labels=classes))
    return out
