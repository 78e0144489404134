"""Fairness, leakage, explanations and slices on registered versions, with and without an
injected effect (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from gate_inputs import inputs, labelled, pipeline, policy, register

from shipyard import Client
from shipyard.evaluation import run_gates

ONLY = frozenset({"serving_cost", "onnx_parity", "schema"})


def _with_sex(X: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return X.assign(sex=rng.choice(["f", "m"], len(X)))


def test_an_unfair_model_fails_fairness_and_a_fair_one_passes(
    client_for: Callable[[str], Client],
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    alice = client_for("alice")
    X, y = labelled(600, seed=1)
    X = _with_sex(X, 1)
    # Injected: in the training labels women churn far less, so the model learns sex.
    y_unfair = np.where(X["sex"] == "f", "stay", y)
    unfair = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["age", "income"]),
                        ("cat", OneHotEncoder(), ["plan", "sex"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(X, y_unfair)
    fair = pipeline().fit(X.drop(columns="sex"), y)  # sex is not an input at all
    v_unfair = register(alice, unfair, X, y_unfair)
    v_fair = register(alice, fair, X.drop(columns="sex"), y)
    Xf, yf = labelled(800, seed=2)
    Xf = _with_sex(Xf, 2)  # fresh rows: the label does not depend on sex
    rule = policy(sensitive=["sex"])
    bad = run_gates(inputs(alice, Xf, yf, candidate=v_unfair, model_policy=rule), skip=ONLY)
    gate = bad.gate("fairness:sex")
    assert not gate.passed and "fairness:sex" in bad.failed
    assert gate.value is not None and gate.value < 0.8 and "is below the floor 0.8" in gate.detail
    rates = {g["group"]: g["selection_rate"] for g in gate.data["groups"]}
    # the positive class is the second in scikit-learn's order, "stay": women all get it
    assert gate.data["positive"] == "stay" and rates["f"] > 0.95 > rates["m"]
    low, high = gate.data["parity_ratio_ci"]
    assert low <= gate.value <= high or high - low < 0.2
    # the sensitive column need not be a model input: here it is only in the rows
    good = run_gates(inputs(alice, Xf, yf, candidate=v_fair, model_policy=rule), skip=ONLY)
    gate = good.gate("fairness:sex")
    assert gate.passed and gate.value is not None and gate.value > 0.8, gate.detail
    assert gate.data["equalized_odds"] < 0.2


def test_a_leaked_column_is_caught_and_a_normal_one_is_not(
    client_for: Callable[[str], Client],
) -> None:
    alice = client_for("alice")
    X, y = labelled(500, seed=1)
    leaky = X.assign(outcome_code=np.where(y == "churn", "C", "S"))  # the label, as text
    leaky_model = pipeline().fit(leaky, y)
    v_leak = register(alice, leaky_model, leaky, y)
    v_ok = register(alice, pipeline().fit(X, y), X, y)
    Xf, yf = labelled(300, seed=2)
    report = run_gates(inputs(alice, Xf.assign(outcome_code="S"), yf, candidate=v_leak), skip=ONLY)
    gate = report.gate("data_checks")
    assert not gate.passed and "outcome_code" in gate.detail and "label leakage" in gate.detail
    assert list(gate.data["leaked"]) == ["outcome_code"]
    clean = run_gates(inputs(alice, Xf, yf, candidate=v_ok), skip=ONLY).gate("data_checks")
    assert clean.passed and clean.data["leaked"] == {}, clean.detail
    # a model registered without labels has no checks: recorded as not applicable
    v_bare = alice.register(pipeline().fit(X, y), name="m", X_train=X, onnx=False).version
    bare = run_gates(inputs(alice, Xf, yf, candidate=v_bare), skip=ONLY).gate("data_checks")
    assert not bare.applicable and "no data_checks.json" in bare.detail


def test_explanations_rank_the_informative_feature_first(
    client_for: Callable[[str], Client],
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    alice = client_for("alice")
    rng = np.random.default_rng(0)
    n = 800
    X = pd.DataFrame(
        {
            "city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], n),  # the only signal: a string
            "age": rng.normal(40, 10, n),
            "score": rng.normal(0, 1, n),
        }
    )
    y = np.where(X["city"].isin(["Oslo", "Pune"]) ^ (rng.random(n) < 0.1), "yes", "no")
    trees = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        (
                            "cat",
                            OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                            ["city"],
                        )
                    ],
                    remainder="passthrough",
                ),
            ),
            ("clf", HistGradientBoostingClassifier(max_iter=30, random_state=0)),
        ]
    ).fit(X, y)
    v_trees = register(alice, trees, X, y)
    report = run_gates(inputs(alice, X, y, candidate=v_trees), skip=ONLY)
    gate = report.gate("explain")
    assert gate.passed and gate.data["candidate"]["method"] == "tree_shap", gate.detail
    top = gate.data["candidate"]["top"]
    assert top[0]["feature"] == "city" and top[0]["importance"] > 3 * top[1]["importance"]
    assert {t["feature"] for t in top} == {"city", "age", "score"}  # raw inputs, not one-hots
    # no time at all: nothing fits, and the gate says so (the only way it fails)
    hurried = policy(gates={"explain_seconds": 1e-6})
    gate = run_gates(inputs(alice, X, y, candidate=v_trees, model_policy=hurried), skip=ONLY)
    gate = gate.gate("explain")
    assert not gate.passed and "No explanation of the candidate could be computed" in gate.detail
    assert "would not fit the time budget" in gate.detail
    # a linear model: permutation importance on the raw frame; age drives churn there
    Xc, yc = labelled(500, seed=1)
    v_lin = register(alice, pipeline().fit(Xc, yc), Xc, yc)
    v_lin2 = register(alice, pipeline().fit(Xc, yc), Xc, yc)
    report = run_gates(inputs(alice, Xc, yc, candidate=v_lin2, champion=v_lin), skip=ONLY)
    gate = report.gate("explain")
    assert gate.data["candidate"]["method"] == "permutation"
    assert gate.data["candidate"]["top"][0]["feature"] == "age"
    assert gate.data["moved"] == [] and "no top-5 feature moved" in gate.detail


def test_the_worst_slice_is_found_and_gated_only_when_asked(
    client_for: Callable[[str], Client],
) -> None:
    alice = client_for("alice")
    X, y = labelled(600, seed=1)
    v1 = register(alice, pipeline().fit(X, y), X, y)
    Xf, yf = labelled(900, seed=2)
    # Injected: on plan 'plus' the fresh labels are coin flips, so the model is blind there.
    rng = np.random.default_rng(5)
    yf = yf.where(Xf["plan"] != "plus", pd.Series(rng.choice(["churn", "stay"], len(yf))))
    report = run_gates(inputs(alice, Xf, yf, candidate=v1), skip=ONLY)
    gate = report.gate("slices")
    worst = gate.data["worst"]
    assert (worst["column"], worst["value"], worst["metric"]) == ("plan", "plus", "roc_auc")
    assert worst["rows"] == int((Xf["plan"] == "plus").sum())
    assert gate.passed and "reported, not a gate" in gate.detail
    strict = policy(gates={"max_slice_gap": 0.05})
    report = run_gates(inputs(alice, Xf, yf, candidate=v1, model_policy=strict), skip=ONLY)
    assert (
        report.failed == ["slices"] and "beyond max_slice_gap 0.05" in report.gate("slices").detail
    )
