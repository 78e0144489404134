"""run_gates end to end on registered versions (SQLite and PostgreSQL): metric and change
thresholds, the first model, bad input, ONNX parity and serving cost."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from gate_inputs import inputs, labelled, pipeline, policy, register
from sklearn.linear_model import LinearRegression

from shipyard import Client
from shipyard.errors import InvalidInput
from shipyard.evaluation import GateReport, run_gates

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

NO_COST = frozenset({"serving_cost"})


def test_an_equal_candidate_passes_and_a_worse_one_fails(
    client_for: Callable[[str], Client],
) -> None:
    alice = client_for("alice")
    X, y = labelled(600, seed=1)
    Xf, yf = labelled(800, seed=2)
    good = pipeline().fit(X, y)
    worse = pipeline().fit(X, y.sample(frac=1, random_state=0).to_numpy())  # labels shuffled
    v1 = register(alice, good, X, y)
    v2 = register(alice, good, X, y)
    v3 = register(alice, worse, X, y)
    rule = policy(accept="roc_auc >= 0.6")
    seen: list[str] = []
    report = run_gates(
        inputs(alice, Xf, yf, candidate=v2, champion=v1, model_policy=rule),
        progress=seen.append,
        skip=NO_COST,
    )
    assert report.passed, report.failed
    names = [g.name for g in report.gates]
    assert names == seen == ["accept", "metric:roc_auc", "slices", "explain", "schema",
                             "data_checks", "onnx_parity"]  # fmt: skip
    gate = report.gate("metric:roc_auc")
    assert gate.data["difference"]["value"] == 0.0 and gate.data["difference"]["ci_low"] == 0.0
    assert report.gate("onnx_parity").applicable is False  # registered without ONNX
    assert report.metrics["difference"]["accuracy"]["value"] == 0.0
    assert set(report.seconds) >= {"predictions", "accept", "slices", "explain"}

    worse_report = run_gates(
        inputs(alice, Xf, yf, candidate=v3, champion=v1, model_policy=rule), skip=NO_COST
    )
    assert not worse_report.passed
    assert {"accept", "metric:roc_auc"} <= set(worse_report.failed)
    gate = worse_report.gate("metric:roc_auc")
    assert "beyond max_drop 0.01" in gate.detail
    assert gate.data["difference"]["ci_high"] < 0  # worse, with confidence
    as_json = worse_report.to_json()
    assert as_json["passed"] is False and as_json["gates"][1]["name"] == "metric:roc_auc"


def test_the_first_model_follows_the_policy_never_silently(
    client_for: Callable[[str], Client],
) -> None:
    alice = client_for("alice")
    X, y = labelled(400, seed=1)
    v1 = register(alice, pipeline().fit(X, y), X, y)
    Xf, yf = labelled(300, seed=2)
    passing = run_gates(inputs(alice, Xf, yf, candidate=v1), skip=NO_COST)
    gate = passing.gate("metric:roc_auc")
    assert gate.passed and not gate.applicable and passing.passed
    assert "there is no champion" in gate.detail and "first_model = 'pass'" in gate.detail
    blocking = policy(gates={"first_model": "block"})
    report = run_gates(inputs(alice, Xf, yf, candidate=v1, model_policy=blocking), skip=NO_COST)
    assert report.failed == ["metric:roc_auc"]
    assert "first_model = 'block'" in report.gate("metric:roc_auc").detail
    # a value threshold still applies without a champion
    floor = policy(gates={"metrics": [{"metric": "accuracy", "min": 0.99, "max_drop": 0.01}]})
    report = run_gates(inputs(alice, Xf, yf, candidate=v1, model_policy=floor), skip=NO_COST)
    assert (
        report.failed == ["metric:accuracy"]
        and "below the minimum 0.99" in report.gate("metric:accuracy").detail
    )


def test_bad_input_is_one_sentence_before_any_work(client_for: Callable[[str], Client]) -> None:
    alice = client_for("alice")
    X, y = labelled(300, seed=1)
    v1 = register(alice, pipeline().fit(X, y), X, y)
    sensitive = policy(sensitive=["sex"])
    with pytest.raises(InvalidInput, match=r"sensitive feature 'sex' .* they have \['age'"):
        run_gates(inputs(alice, X, y, candidate=v1, model_policy=sensitive))
    with pytest.raises(InvalidInput, match=r"lack the candidate's input column\(s\) \['plan'\]"):
        run_gates(inputs(alice, X.drop(columns="plan"), y, candidate=v1))
    with pytest.raises(InvalidInput, match="one label per row"):
        run_gates(inputs(alice, X, y[:10], candidate=v1), skip=NO_COST)
    # a metric that does not apply to the task: a regressor judged on ROC AUC
    Xr = X[["age", "income"]]
    target = Xr["income"] * 0.1 + Xr["age"]
    reg = alice.register(LinearRegression().fit(Xr, target), name="r", X_train=Xr, onnx=False)
    registry = alice.registry
    base = inputs(alice, Xr, target, candidate=v1)
    regressor = base.__class__(
        **{
            **base.__dict__,
            "candidate": registry.load("r", reg.version),
            "candidate_archive": registry.open_archive("r", reg.version),
        }
    )
    for rule, where in (
        (policy(gates={"metrics": [{"metric": "roc_auc", "min": 0.8}]}), "The metric gate"),
        (policy(accept="roc_auc >= 0.8"), "The acceptance criterion roc_auc >= 0.8"),
    ):
        bad = regressor.__class__(**{**regressor.__dict__, "policy": rule})
        with pytest.raises(InvalidInput, match=f"{where} names 'roc_auc', which does not apply"):
            run_gates(bad)
    fine = run_gates(regressor, skip=NO_COST)
    assert fine.gate("metric:rmse").value == pytest.approx(0.0, abs=1e-6)


def test_onnx_parity_passes_for_a_real_pipeline_and_serving_cost_is_measured(
    client_for: Callable[[str], Client],
) -> None:
    alice = client_for("alice")
    X, y = labelled(400, seed=1)
    model = pipeline().fit(X, y)
    v1 = register(alice, model, X, y, onnx=True)
    v2 = register(alice, model, X, y, onnx=True)
    Xf, yf = labelled(300, seed=2)
    report: GateReport = run_gates(inputs(alice, Xf, yf, candidate=v2, champion=v1))
    onnx = report.gate("onnx_parity")
    assert onnx.applicable and onnx.passed and onnx.value is not None and onnx.value < 1e-6
    assert "on 300 rows" in onnx.detail
    cost = report.gate("serving_cost")
    for side in ("candidate", "champion"):
        figures = cost.data[side]
        assert figures["runtime"] == "onnx" and figures["p99_ms"] >= figures["p50_ms"] > 0
        assert figures["rows_per_second"] > 0 and figures["memory_bytes"] > 0
    assert cost.data["candidate"]["archive_bytes"] > 0
    # Paired rounds, stopped at a majority: two when they agree, three when they split.
    ratio, floor = cost.data["max_p99_ratio"], cost.data["floor_ms"]
    candidate, champion = (cost.data[k]["p99_ms_rounds"] for k in ("candidate", "champion"))
    verdicts = [c <= ratio * h + floor for c, h in zip(candidate, champion, strict=True)]
    assert len(verdicts) == (2 if verdicts[0] == verdicts[1] else 3)
    assert cost.passed is (sum(verdicts) >= 2)
    assert "through the server's scoring path" in cost.detail
    assert np.isfinite(cost.value or np.nan)


def test_a_removed_column_breaks_the_schema_and_the_comparison_says_why(
    client_for: Callable[[str], Client],
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    alice = client_for("alice")
    X, y = labelled(400, seed=1)
    v1 = register(alice, pipeline().fit(X, y), X, y)
    narrow = X.drop(columns="income")
    prep = ColumnTransformer([("cat", OneHotEncoder(), ["plan"])], remainder="passthrough")
    model = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=500))])
    v2 = register(alice, model.fit(narrow, y), narrow, y)
    Xf, yf = labelled(300, seed=2)
    report = run_gates(
        inputs(alice, Xf.drop(columns="income"), yf, candidate=v2, champion=v1), skip=NO_COST
    )
    assert set(report.failed) == {"schema", "metric:roc_auc"}
    assert report.gate("schema").data["changes"][0]["change"] == "removed"
    assert (
        "the rows lack the champion's column(s) ['income']" in report.gate("metric:roc_auc").detail
    )
