"""``fraud``: a river model on a stream whose concept drifts, for the online-learning tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from river import linear_model, preprocessing

from gates_off import NO_GATES
from shipyard import Client
from shipyard.packaging import prepare_archive
from shipyard.registry import Registry
from shipyard.store import Store


def stream(n: int, *, drifted: bool, seed: int) -> tuple[pd.DataFrame, list[bool]]:
    """Two features; before the drift the label follows ``a``, after it ``b``."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = (X["b"] if drifted else X["a"]) > 0
    return X, [bool(v) for v in y]


def register_fraud(store: Store, approver: Client) -> Registry:
    """``fraud`` v1, production: a river logistic regression that learned the stream before
    the drift."""
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    X, y = stream(400, drifted=False, seed=0)
    for x, target in zip(X.to_dict("records"), y, strict=True):
        model.learn_one(x, target)
    registry = Registry(store, NO_GATES)
    registry.register(prepare_archive(model, X_train=X, y_train=y), name="fraud", actor="alice")
    approver.approve("fraud", 1, reason="ok")
    registry.promote("fraud", 1, actor="alice")
    return registry
