"""``validate_version``: the rows it picks (a file, a DataFrame, labelled production traffic,
the eval rows) and says which, the one gate record bound to the digest and its audit events, a
schema change between versions, the HTML report, and bad input that stores nothing; on SQLite
and PostgreSQL."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from shipyard import Client, Settings
from shipyard.audit import list_events
from shipyard.checks import ValidationRequest, validate_version
from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput, NotFound
from shipyard.predlog import PredictionLog
from shipyard.registry import Gates, Registry
from shipyard.store import Store

pytestmark = pytest.mark.sqlite_only  # the database is incidental here (conftest)

#: The serving-cost gate times the real scoring path (about a second); the rest is what these
#: tests are about. It runs in the Client and CLI tests.
FAST = frozenset({"serving_cost"})
EVIL = "<script>alert(1)</script>"


def pipeline(columns: list[str], categorical: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in columns if c not in categorical]
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=500))])


@pytest.fixture(scope="module")
def regional(training_data: Any) -> tuple[pd.DataFrame, pd.Series]:
    """The 600 rows of ``training_data`` plus ``region`` (never missing: a new required
    column) and ``sex`` (a sensitive factor no model reads)."""
    X, y, Xe, ye = training_data
    X, y = pd.concat([X, Xe], ignore_index=True), pd.concat([y, ye], ignore_index=True)
    rng = np.random.default_rng(7)
    return X.assign(
        region=rng.choice(["north", "south"], len(X)), sex=rng.choice(["f", "m"], len(X))
    ), y


@pytest.fixture
def churn(
    store: Store,
    client_for: Callable[[str], Client],
    approver: Client,
    fitted_pipeline: Any,
    training_data: Any,
) -> Registry:
    """churn v1 and v2 (the same pipeline) by alice, approved by bob, v1 in production."""
    X, y, Xe, ye = training_data
    alice = client_for("alice")
    for version in (1, 2):
        alice.register(
            fitted_pipeline, name="churn", X_train=X, y_train=y, X_eval=Xe, y_eval=ye, onnx=False
        )
        approver.approve("churn", version, reason="ok")
    alice.promote("churn", 1)
    return alice.registry


def validate(store: Store, version: int, project: ProjectConfig | None = None, **kw: Any) -> Any:
    """``validate_version`` of churn ``version`` by alice, the serving cost left out."""
    kw.setdefault("skip", FAST)
    request = ValidationRequest(
        "churn", version, actor="alice", project=project or ProjectConfig(), **kw
    )
    return validate_version(store, request)


def stored(store: Store, name: str = "churn") -> tuple[list[Any], list[Any]]:
    """The model's gate records and its validation audit events, newest first."""
    with store.read() as session:
        events = [
            e
            for e in list_events(session, subject=f"model:{name}/")
            if e.action in ("version.validated", "schema.changed")
        ]
    return Gates(store).history(name), events


def frame_of(training_data: Any) -> pd.DataFrame:
    """The eval rows with their label as a column ``churned``."""
    _, _, Xe, ye = training_data
    return Xe.assign(churned=ye.to_numpy()).reset_index(drop=True)


# -- the rows ------------------------------------------------------------------------------------


def test_eval_rows_without_data_or_labels(store: Store, churn: Registry) -> None:
    result = validate(store, 2)
    assert result.data_source.startswith("the candidate's own eval rows (150 rows registered")
    assert "fewer than 200 labelled production predictions in the last 7d" in result.data_source
    assert result.rows == 150 and result.passed
    records, events = stored(store)
    assert [r.id for r in records] == [result.record.id]
    record = records[0]
    assert record.digest == churn.get_version("churn", 2).digest
    assert (record.version, record.champion, record.data_source) == (2, 1, result.data_source)
    assert [e.action for e in events] == ["version.validated"]
    assert events[0].details["record"] == record.id
    assert events[0].details["digest"] == record.digest and events[0].actor == "alice"
    document = result.to_json()
    assert document["passed"] is True and document["champion"] == 1
    assert document["data_source"] == result.data_source
    assert {g["name"] for g in document["gates"]} >= {"metric:roc_auc", "slices", "schema"}
    for gate in document["gates"]:
        assert {"name", "passed", "value", "limit", "detail"} <= set(gate)
    # The metric gate compared both models on the same rows: the same pipeline, no difference.
    metric = result.report.gate("metric:roc_auc")
    assert metric.data["champion"]["value"] == metric.data["candidate"]["value"]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_rows_from_a_file(
    store: Store, churn: Registry, training_data: Any, tmp_path: Path, suffix: str
) -> None:
    rows = frame_of(training_data)
    rows.loc[3, "churned"] = None  # an unlabelled row is left out
    path = tmp_path / f"fresh{suffix}"
    rows.to_parquet(path) if suffix == ".parquet" else rows.to_csv(path, index=False)
    result = validate(store, 2, data=path, target="churned")
    assert result.data_source == f"the file {path} (150 rows)"
    assert result.rows == 149
    assert stored(store)[0][0].data_source == result.data_source


def test_numeric_labels_read_back_as_floats(
    store: Store, client_for: Callable[[str], Client], training_data: Any, tmp_path: Path
) -> None:
    """A CSV whose 0/1 label column has a gap is read as 1.0/0.0: still the model's classes."""
    X, y, Xe, ye = training_data
    y01, ye01 = (y == "churn").astype(int), (ye == "churn").astype(int)
    model = pipeline(["age", "income", "tenure", "plan"], ["plan"]).fit(X, y01)
    client_for("alice").register(
        model, name="churn", X_train=X, y_train=y01, X_eval=Xe, y_eval=ye01, onnx=False
    )
    rows = Xe.assign(churned=ye01.to_numpy()).reset_index(drop=True)
    rows["churned"] = rows["churned"].astype(float)
    rows.loc[0, "churned"] = np.nan
    rows.to_csv(tmp_path / "fresh.csv", index=False)
    result = validate(store, 1, data=tmp_path / "fresh.csv", target="churned")
    assert result.rows == 149
    expected = roc_auc_score(ye01.iloc[1:], model.predict_proba(Xe.iloc[1:])[:, 1])
    assert result.report.gate("metric:roc_auc").value == pytest.approx(expected)


def test_rows_as_a_dataframe_through_the_client(
    store: Store, churn: Registry, training_data: Any, tmp_path: Path
) -> None:
    client = Client(
        Settings(user="alice", home=tmp_path / "home"), store=store, project=ProjectConfig()
    ).open()
    rows = frame_of(training_data)
    result = client.validate("churn", 2, data=rows, target="churned")
    assert result.data_source == "the rows passed in (150 rows)" and result.rows == 150
    assert result.report.gate("serving_cost").applicable  # timed against the champion
    records, events = stored(store)
    assert len(records) == 1 and records[0].data_source == result.data_source
    assert [e.action for e in events] == ["version.validated"]


def log_traffic(
    root: Path,
    rows: pd.DataFrame,
    labels: pd.Series,
    *,
    labelled: int,
    shadow: bool = True,
    ts: float | None = None,
) -> None:
    """Log every row as an answered churn v1 request (and, with ``shadow``, the shadow v2's
    record of the same request), then the labels of the first ``labelled`` of them; the first
    label arrives twice (corrected)."""
    ids = [f"p{i}" for i in range(len(rows))]
    records: list[dict[str, Any]] = []
    for pid, inputs in zip(ids, rows.to_dict(orient="records"), strict=True):
        for version, arm in ((1, "production"), (2, "shadow"))[: 2 if shadow else 1]:
            records.append(
                {
                    "prediction_id": pid,
                    "model": "churn",
                    "version": version,
                    "arm": arm,
                    "inputs": inputs,
                    "prediction": "stay",
                    "proba": {"churn": 0.3, "stay": 0.7},
                    "latency_ms": 1.0,
                    **({"ts": ts} if ts is not None else {}),
                }
            )
    with PredictionLog(root) as log:
        log.append(records)
        if labelled:
            wrong = "stay" if labels.iloc[0] == "churn" else "churn"
            log.record_feedback("churn", ids[0], wrong)
            log.record_feedback_frame(
                "churn",
                pd.DataFrame({"prediction_id": ids[:labelled], "label": labels[:labelled]}),
            )


def test_labelled_production_traffic(
    store: Store, churn: Registry, training_data: Any, fitted_pipeline: Any, tmp_path: Path
) -> None:
    _, _, Xe, ye = training_data
    Xe, ye = Xe.reset_index(drop=True), ye.reset_index(drop=True)
    root = tmp_path / "home" / "predictions"
    log_traffic(root, Xe.iloc[:80], ye.iloc[:80], labelled=60)
    project = ProjectConfig.model_validate({"gates": {"min_labels": 50}})
    result = validate(store, 2, project, log_root=root)
    assert result.data_source.startswith(
        "labelled production traffic (60 answered requests of churn logged since "
    )
    # Each request once (its shadow record shares the id), with its latest label.
    assert result.rows == 60
    expected = roc_auc_score(
        ye.iloc[:60] == "churn", fitted_pipeline.predict_proba(Xe.iloc[:60])[:, 0]
    )
    assert result.report.gate("metric:roc_auc").value == pytest.approx(expected)
    assert stored(store)[0][0].data_source == result.data_source


def test_too_few_labels_fall_back_to_the_eval_rows(
    store: Store, churn: Registry, training_data: Any, tmp_path: Path
) -> None:
    _, _, Xe, ye = training_data
    root = tmp_path / "predictions"
    log_traffic(root, Xe.iloc[:80], ye.iloc[:80], labelled=40)
    project = ProjectConfig.model_validate({"gates": {"min_labels": 50}})
    result = validate(store, 2, project, log_root=root)
    assert result.data_source.startswith("the candidate's own eval rows (150 rows")
    assert "fewer than 50 labelled production predictions in the last 7d" in result.data_source
    assert result.rows == 150


def test_old_traffic_is_outside_the_window(
    store: Store, churn: Registry, training_data: Any, tmp_path: Path
) -> None:
    _, _, Xe, ye = training_data
    root = tmp_path / "predictions"
    two_hours_ago = time.time() - 7200
    log_traffic(root, Xe.iloc[:60], ye.iloc[:60], labelled=60, shadow=False, ts=two_hours_ago)
    project = ProjectConfig.model_validate({"gates": {"min_labels": 50, "window": "1h"}})
    result = validate(store, 2, project, log_root=root)
    assert result.data_source.startswith("the candidate's own eval rows")


# -- gates, records, schema changes --------------------------------------------------------------


def test_a_failed_gate_is_recorded_as_failed(store: Store, churn: Registry) -> None:
    project = ProjectConfig.model_validate(
        {"models": {"churn": {"gates": {"metrics": [{"metric": "roc_auc", "min": 0.99}]}}}}
    )
    result = validate(store, 2, project)
    assert not result.passed and result.record.failed == ["metric:roc_auc"]
    gate = result.to_json()["gates"][0]
    assert (gate["name"], gate["passed"], gate["limit"]) == ("metric:roc_auc", False, 0.99)
    assert "below the minimum 0.99" in gate["detail"]
    # A second run is a second record; the latest is the one promotion reads.
    again = validate(store, 2)
    assert again.passed and Gates(store).latest("churn", 2).id == again.record.id
    records, events = stored(store)
    assert [r.passed for r in records] == [True, False]
    assert [e.action for e in events] == ["version.validated", "version.validated"]


def test_validating_the_champion_itself_has_no_champion(store: Store, churn: Registry) -> None:
    result = validate(store, 1)
    assert result.record.champion is None
    assert not result.report.gate("schema").applicable


def test_a_removed_column_fails_the_schema_gate(
    store: Store,
    churn: Registry,
    client_for: Callable[[str], Client],
    training_data: Any,
    tmp_path: Path,
) -> None:
    """v3 is trained without ``tenure``: a breaking change for production's callers. Judged on
    rows that still have it, the champion is scored and compared."""
    X, y, _, _ = training_data
    columns = ["age", "income", "plan"]
    model = pipeline(columns, ["plan"]).fit(X[columns], y)
    client_for("alice").register(model, name="churn", X_train=X[columns], y_train=y, onnx=False)
    path = tmp_path / "fresh.parquet"
    frame_of(training_data).to_parquet(path)
    result = validate(store, 3, data=path, target="churned")
    schema = result.report.gate("schema")
    assert not schema.passed and "column 'tenure' was removed" in schema.detail
    assert "schema" in result.record.failed
    metric = result.report.gate("metric:roc_auc")
    assert "champion" in metric.data, metric.detail  # the champion read its own columns
    _, events = stored(store)
    assert [e.action for e in events] == ["schema.changed", "version.validated"]
    changed = events[0].details
    assert changed["against"] == 1
    assert [(c["column"], c["change"], c["breaking"]) for c in changed["changes"]] == [
        ("tenure", "removed", True)
    ]


def test_a_new_required_column_fails_the_schema_gate(
    store: Store,
    churn: Registry,
    client_for: Callable[[str], Client],
    regional: Any,
    tmp_path: Path,
) -> None:
    X, y = regional
    columns = ["age", "income", "tenure", "plan", "region"]
    model = pipeline(columns, ["plan", "region"]).fit(X[columns][:450], y[:450])
    client_for("alice").register(
        model,
        name="churn",
        X_train=X[columns][:450],
        y_train=y[:450],
        X_eval=X[columns][450:],
        y_eval=y[450:],
        onnx=False,
    )
    result = validate(store, 3)  # its eval rows hold every column of both models
    schema = result.report.gate("schema")
    assert not schema.passed and "new required column 'region'" in schema.detail
    assert "champion" in result.report.gate("metric:roc_auc").data
    _, events = stored(store)
    assert events[0].action == "schema.changed"
    assert [c["column"] for c in events[0].details["changes"]] == ["region"]
    # Production's traffic, logged without region, cannot judge v3: the output says so.
    root = tmp_path / "predictions"
    log_traffic(root, X.iloc[450:510, :4], y.iloc[450:510], labelled=60)
    project = ProjectConfig.model_validate({"gates": {"min_labels": 50}})
    result = validate(store, 3, project, log_root=root)
    assert result.data_source == (
        "the candidate's own eval rows (150 rows registered with v3; the 60 labelled "
        "production predictions of the last 7d lack its input column(s) region)"
    )


def test_a_sensitive_feature_the_model_does_not_read(
    store: Store, churn: Registry, regional: Any, tmp_path: Path
) -> None:
    """Fairness by ``sex``, a column of the fresh rows that no model reads."""
    X, y = regional
    path = tmp_path / "fresh.parquet"
    X.iloc[450:].assign(churned=y.iloc[450:]).to_parquet(path)
    project = ProjectConfig.model_validate({"models": {"churn": {"sensitive": ["sex"]}}})
    result = validate(store, 2, project, data=path, target="churned")
    gate = result.report.gate("fairness:sex")
    assert gate.applicable and {g["group"] for g in gate.data["groups"]} == {"f", "m"}


# -- the HTML report ------------------------------------------------------------------------------


def test_the_report_is_self_contained_complete_and_escaped(
    store: Store, churn: Registry, training_data: Any, tmp_path: Path
) -> None:
    rows = frame_of(training_data)
    rows.loc[:59, "plan"] = EVIL  # a category value the slices table shows
    path = tmp_path / "fresh.parquet"
    rows.to_parquet(path)
    report = tmp_path / "v2.html"
    project = ProjectConfig.model_validate(
        {"models": {"churn": {"objective": "Keep <b>customers</b>", "sensitive": ["plan"]}}}
    )
    result = validate(store, 2, project, data=path, target="churned", report=report)
    assert result.report_path == report and result.record.report  # stored before written
    page = report.read_text(encoding="utf-8")
    assert "<script src=" not in page.lower() and "<link" not in page.lower()
    assert "@import" not in page
    from shipyard.monitoring import plotly_js

    rest = page.replace(plotly_js(), "")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", rest, re.IGNORECASE)
    assert "http://" not in rest and "https://" not in rest
    assert EVIL not in rest and "<b>customers</b>" not in rest
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rest
    assert "Keep &lt;b&gt;customers&lt;/b&gt;" in rest
    # Only the page's own scripts: plotly.js and one per figure (intervals, importances).
    assert rest.count("<script") == 1 + rest.count("Plotly.newPlot(") == 3
    from markupsafe import escape

    for gate in result.report.gates:
        assert f"<code>{gate.name}</code>" in rest
        assert str(escape(gate.detail)) in rest
    assert result.data_source in rest


def test_a_stored_record_renders_again(store: Store, churn: Registry) -> None:
    """The page is built from the record: without intervals it has no plots, and a table whose
    rows differ in keys (a type change has before/after, a removed column has not) lines up."""
    from shipyard.checks._validation_html import render_validation

    result = validate(store, 2)
    policy = ProjectConfig().policy("churn")
    assert render_validation(result.record, policy).count("Plotly.newPlot(") == 2
    changes = [
        {"column": "tenure", "change": "removed", "breaking": True, "detail": "removed"},
        {"column": "age", "change": "type", "breaking": False, "detail": "wider",
         "before": "integer", "after": "float"},
    ]  # fmt: skip
    schema = {
        "name": "schema",
        "passed": False,
        "value": 1.0,
        "limit": 0.0,
        "detail": "1 breaking change(s): column 'tenure' was removed.",
        "kind": "schema",
        "data": {"changes": changes},
    }
    record = Gates(store).record(
        "churn",
        2,
        digest=result.record.digest,
        passed=False,
        failed=["schema"],
        champion=1,
        data_source="rows",
        report={"gates": [schema]},
        actor="alice",
    )
    page = render_validation(record, policy)
    assert "Plotly.newPlot(" not in page and "<script" not in page
    assert "column &#39;tenure&#39; was removed." in page
    table = page[page.index("<h3><code>schema</code></h3>") :]
    header = re.search(r"<tr>(.*?)</tr>", table, re.S)
    assert header is not None
    assert re.findall(r"<th>(.*?)</th>", header.group(1)) == [
        "column", "change", "breaking", "detail", "before", "after"
    ]  # fmt: skip
    rows = re.findall(r"<tr>(<td>.*?)</tr>", table, re.S)
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
    assert cells == [
        ["tenure", "removed", "True", "removed", "", ""],
        ["age", "type", "False", "wider", "integer", "float"],
    ]


# -- bad input: one sentence, nothing stored ------------------------------------------------------


def refused(store: Store, error: type[Exception], match: str, version: int = 2, **kw: Any) -> str:
    with pytest.raises(error, match=match) as info:
        validate(store, version, **kw)
    message = str(info.value)
    assert "\n" not in message and message.endswith((".", "?")), message
    assert stored(store) == ([], []), "nothing is stored"
    return message


def test_bad_input_stores_nothing(
    store: Store, churn: Registry, training_data: Any, tmp_path: Path
) -> None:
    rows = frame_of(training_data)
    files = {
        "fresh": rows,
        "no_tenure": rows.drop(columns="tenure"),
        "maybe": rows.assign(churned="maybe"),
        "unlabelled": rows.assign(churned=None),
    }
    for stem, frame in files.items():
        frame.to_parquet(tmp_path / f"{stem}.parquet")

    def given(stem: str, target: str = "churned") -> dict[str, Any]:
        return {"data": tmp_path / f"{stem}.parquet", "target": target}

    def policy(**model: Any) -> dict[str, Any]:
        return {"project": ProjectConfig.model_validate({"models": {"churn": model}})}

    rmse = {"metrics": [{"metric": "rmse", "max": 1.0}]}
    missing_folder = {"report": tmp_path / "missing" / "r.html"}
    cases: list[tuple[type[Exception], str, dict[str, Any]]] = [
        (InvalidInput, "No such file: '.*nope.parquet'", given("nope")),
        (InvalidInput, "--data needs --target", {"data": tmp_path / "fresh.parquet"}),
        (InvalidInput, "pass --data FILE as well", {"target": "churned"}),
        (InvalidInput, r"no column 'y' \(the target\) in the file .*fresh", given("fresh", "y")),
        (InvalidInput, "lack the model's column\\(s\\) tenure", given("no_tenure")),
        (InvalidInput, "'maybe'.*does not know; its classes", given("maybe")),
        (InvalidInput, "have no labelled row", given("unlabelled")),
        (InvalidInput, "no column 'y' .* in the rows passed in", {"data": rows, "target": "y"}),
        (InvalidInput, "sensitive feature 'sex' of churn", policy(sensitive=["sex"])),
        (InvalidInput, "rmse", policy(gates=rmse)),
        (InvalidInput, "folder '.*missing' does not exist", missing_folder),
        (InvalidInput, "is a folder", {"report": tmp_path}),
        (NotFound, "no version 9; its versions are 1 to 2", {"version": 9}),
        (NotFound, "no 'staging' version .*its aliases: production", {"against": "staging"}),
    ]  # fmt: skip
    for error, match, kw in cases:
        refused(store, error, match, **kw)
    assert not (tmp_path / "missing").exists()


def test_an_unknown_model_suggests_a_name(store: Store, churn: Registry) -> None:
    request = ValidationRequest("chrun", 1, actor="alice", project=ProjectConfig())
    with pytest.raises(NotFound, match="Did you mean 'churn'"):
        validate_version(store, request)
