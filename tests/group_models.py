"""Models for the model-group tests: ``churn`` (v1 production, v2), ``churn_tree`` (another
classifier of the same classes) and ``value`` (a regressor that reads ``churn``'s
probability, so it can follow ``churn`` in a chain), all approved and in production."""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from shipyard import Client
from shipyard.packaging import prepare_archive
from shipyard.registry import Registry


def register_group_models(
    registry: Registry, approver: Client, fitted_pipeline: object, training_data: tuple
) -> None:
    """``churn`` v1 (production) and v2 unless registered already, then the others."""
    X, y, _, _ = training_data
    if not registry.list_models():
        churn = prepare_archive(fitted_pipeline, X_train=X, y_train=y, onnx=False)
        for version in (1, 2):
            registry.register(churn, name="churn", actor="alice")
            approver.approve("churn", version, reason="ok")
        registry.promote("churn", 1, actor="alice")
    tree = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])],
                    remainder="passthrough",
                ),
            ),
            ("clf", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ]
    ).fit(X, y)
    registry.register(
        prepare_archive(tree, X_train=X, y_train=y, onnx=False), name="churn_tree", actor="alice"
    )
    proba = fitted_pipeline.predict_proba(X)[:, 0]  # type: ignore[attr-defined]
    Xv = pd.DataFrame({"income": X["income"], "churn_proba_churn": proba})
    yv = 0.1 * X["income"] * (1 - proba)
    value = LinearRegression().fit(Xv, yv)
    registry.register(
        prepare_archive(value, X_train=Xv, y_train=yv, onnx=False), name="value", actor="alice"
    )
    for name in ("churn_tree", "value"):
        approver.approve(name, 1, reason="ok")
        registry.promote(name, 1, actor="alice")
