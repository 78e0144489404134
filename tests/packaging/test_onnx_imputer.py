"""SimpleImputer in ONNX: exported in double precision, equal to scikit-learn on missing values,
and served over ONNX with the native runtime's answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from shipyard.packaging import (
    LoadedModel,
    OnnxExport,
    OnnxPredictor,
    export_onnx,
    open_archive,
    prepare_archive,
)
from shipyard.serving import ServedModel, rows_from_records
from shipyard.settings import ServeSettings
from shipyard.store import sha256


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin on a busy box (see test_onnx.py)."""
    with threadpool_limits(limits=1):
        yield


NUMERIC = ["income", "debt", "years", "score"]
STATES = [f"s{i:02d}" for i in range(50)]


def loan_frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Four numeric columns with ~5% NaN, a 50-level ``state`` and a ``plan`` with ~5% NaN."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({c: rng.normal(size=n) * 10 ** (i % 3) for i, c in enumerate(NUMERIC)})
    X = X.mask(rng.random(X.shape) < 0.05)
    X["state"] = rng.choice(STATES, n)
    X["plan"] = rng.choice(["basic", "plus", "pro"], n)
    X.loc[rng.random(n) < 0.05, "plan"] = np.nan
    logit = X.income.fillna(0) - X.debt.fillna(0) / 10 + (X.plan == "pro") + X.score.isna()
    return X, pd.Series((logit + rng.normal(size=n) > 0).astype(int), name="default")


@pytest.fixture(scope="module")
def loans() -> tuple[pd.DataFrame, pd.Series]:
    return loan_frame(1500)


@pytest.fixture(scope="module")
def nan_rows() -> pd.DataFrame:
    """Unseen rows, every one with a missing number and half with a missing plan."""
    X, _ = loan_frame(200, seed=1)
    for i, column in enumerate(NUMERIC):
        X.loc[X.index % len(NUMERIC) == i, column] = np.nan
    X.loc[::2, "plan"] = np.nan
    return X


def imputed_pipeline(numeric: SimpleImputer, model: Any, categorical: SimpleImputer) -> Pipeline:
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(numeric, StandardScaler()), NUMERIC),
            (
                "cat",
                make_pipeline(
                    categorical, OneHotEncoder(handle_unknown="ignore", sparse_output=False)
                ),
                ["state", "plan"],
            ),
        ]
    )
    return Pipeline([("prep", prep), ("model", model)])


def predictor(export: OnnxExport) -> OnnxPredictor:
    assert export.error is None, export.error
    assert export.model_bytes is not None
    return OnnxPredictor(export.model_bytes, export.inputs).load()


def proba(export: OnnxExport, X: pd.DataFrame) -> np.ndarray:
    result = predictor(export).predict_proba(X)
    assert result is not None
    return result


# --- numeric strategies, with and without the indicator ----------------------------------------


@pytest.mark.parametrize("add_indicator", [False, True], ids=["plain", "indicator"])
@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_numeric_strategies_convert_in_double_with_parity(
    strategy: str,
    add_indicator: bool,
    loans: tuple[pd.DataFrame, pd.Series],
    nan_rows: pd.DataFrame,
) -> None:
    X, y = loans
    numeric = SimpleImputer(strategy=strategy, fill_value=-3.5, add_indicator=add_indicator)
    categorical = SimpleImputer(strategy="most_frequent")
    model = imputed_pipeline(numeric, LogisticRegression(max_iter=1000), categorical).fit(X, y)

    export = export_onnx(model, X.head(50), pd.concat([X, nan_rows]), task="classification")

    assert export.error is None, export.error
    assert export.precision == "double"
    assert export.max_abs_diff is not None and export.max_abs_diff < 1e-12
    np.testing.assert_allclose(proba(export, nan_rows), model.predict_proba(nan_rows), atol=1e-12)


def test_tree_model_after_an_imputer_keeps_its_splits(
    loans: tuple[pd.DataFrame, pd.Series], nan_rows: pd.DataFrame
) -> None:
    # With float inputs the imputed median lands on the other side of a split: probabilities
    # moved by up to 0.47 and the parity check refused the export.
    X, y = loans
    model = imputed_pipeline(
        SimpleImputer(strategy="median"),
        HistGradientBoostingClassifier(max_iter=30, random_state=0),
        SimpleImputer(strategy="constant", fill_value="none"),
    ).fit(X, y)

    export = export_onnx(model, X.head(50), pd.concat([X, nan_rows]), task="classification")

    assert export.precision == "double"
    assert export.max_abs_diff is not None and export.max_abs_diff < 1e-6
    np.testing.assert_allclose(proba(export, nan_rows), model.predict_proba(nan_rows), atol=1e-6)


def test_the_graph_fills_with_where_not_the_float_only_imputer_op(
    loans: tuple[pd.DataFrame, pd.Series],
) -> None:
    """Fails if the custom converter is removed: skl2onnx's own emits ai.onnx.ml Imputer."""
    X, y = loans
    model = imputed_pipeline(
        SimpleImputer(), LogisticRegression(max_iter=1000), SimpleImputer(strategy="most_frequent")
    ).fit(X, y)

    export = export_onnx(model, X.head(50), X, task="classification")

    assert export.model_bytes is not None and export.precision == "double"
    ops = {node.op_type for node in onnx.load_from_string(export.model_bytes).graph.node}
    assert "Imputer" not in ops
    assert {"IsNaN", "Where", "Equal"} <= ops


def test_stock_skl2onnx_imputer_does_not_load_with_double_inputs(
    loans: tuple[pd.DataFrame, pd.Series],
) -> None:
    """Why the converter exists; skips once skl2onnx's own imputer runs in double."""
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType

    X, _ = loans
    imputer = SimpleImputer().fit(X[NUMERIC])
    graph = to_onnx(imputer, initial_types=[("X", DoubleTensorType([None, len(NUMERIC)]))])
    try:
        ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types
        assert "Imputer" in str(exc)
    else:
        pytest.skip("skl2onnx's SimpleImputer now loads with double inputs")


# --- shapes: matrix input, dropped columns, markers ---------------------------------------------


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
@pytest.mark.parametrize("keep_empty_features", [False, True], ids=["drop-empty", "keep-empty"])
def test_all_numeric_frame_with_an_empty_column(keep_empty_features: bool) -> None:
    X, _ = loan_frame(400)
    X = X[NUMERIC].assign(never=np.nan)
    y = X.income.fillna(0) * 2 + X.score.isna()
    imputer = SimpleImputer(add_indicator=True, keep_empty_features=keep_empty_features)
    model = make_pipeline(imputer, Ridge()).fit(X, y)

    export = export_onnx(model, X, task="regression")

    assert export.error is None and export.precision == "double"
    assert [inp.column for inp in export.inputs] == [None]  # one matrix input
    assert export.max_abs_diff is not None and export.max_abs_diff < 1e-9
    assert export.model_bytes is not None
    np.testing.assert_allclose(predictor(export).predict(X), model.predict(X), atol=1e-9)


def test_numeric_missing_marker() -> None:
    X, _ = loan_frame(400)
    X = X[NUMERIC].fillna(-1.0)
    y = X.income * 2 + (X.score == -1)
    model = make_pipeline(
        SimpleImputer(missing_values=-1.0, strategy="median", add_indicator=True), Ridge()
    ).fit(X, y)

    export = export_onnx(model, X, task="regression")

    assert export.error is None and export.precision == "double"
    assert export.max_abs_diff is not None and export.max_abs_diff < 1e-9


# --- string columns -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "categorical",
    [
        SimpleImputer(strategy="most_frequent"),
        SimpleImputer(strategy="constant", fill_value="unknown"),
    ],
    ids=["most_frequent", "constant"],
)
def test_string_imputer_fills_missing_categories(
    categorical: SimpleImputer,
    loans: tuple[pd.DataFrame, pd.Series],
    nan_rows: pd.DataFrame,
) -> None:
    X, y = loans
    model = imputed_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000), categorical)
    model.fit(X, y)

    export = export_onnx(model, X.head(50), pd.concat([X, nan_rows]), task="classification")

    assert export.precision == "double"
    assert export.max_abs_diff is not None and export.max_abs_diff < 1e-12
    both_missing = nan_rows[nan_rows.plan.isna()]
    np.testing.assert_allclose(
        proba(export, both_missing), model.predict_proba(both_missing), atol=1e-12
    )


def test_string_missing_marker(loans: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = loans
    X = X.assign(plan=X.plan.fillna("?"))
    categorical = SimpleImputer(missing_values="?", strategy="most_frequent")
    model = imputed_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000), categorical)
    model.fit(X, y)

    export = export_onnx(model, X.head(50), X, task="classification")

    assert export.error is None and export.precision == "double"
    assert export.max_abs_diff is not None and export.max_abs_diff < 1e-12


# --- the archive and the server -----------------------------------------------------------------


def loaded(model: Pipeline, X: pd.DataFrame, y: pd.Series, rows: pd.DataFrame) -> LoadedModel:
    """The model as the registry would store and the server load it (no database)."""
    prepared = prepare_archive(model, X_train=X, y_train=y, X_eval=rows, y_eval=y.head(len(rows)))
    data = prepared.build(name="loans", version=1, author="alice", created_at=datetime.now(UTC))
    return LoadedModel(open_archive(data, expected_digest=sha256(data), label="loans v1"))


def test_served_over_onnx_equal_to_native_on_missing_values(
    loans: tuple[pd.DataFrame, pd.Series], nan_rows: pd.DataFrame
) -> None:
    X, y = loans
    model = imputed_pipeline(
        SimpleImputer(strategy="median", add_indicator=True),
        HistGradientBoostingClassifier(max_iter=30, random_state=0),
        SimpleImputer(strategy="most_frequent"),
    ).fit(X, y)
    version = loaded(model, X, y, nan_rows)
    onnx_summary = version.manifest.onnx
    assert onnx_summary is not None and onnx_summary["error"] is None
    assert onnx_summary["precision"] == "double"

    auto = ServedModel.build(version, ServeSettings())
    native = ServedModel.build(version, ServeSettings(runtime="native"))

    assert auto.runtime == "onnx", auto.runtime_reason
    # JSON records as a client sends them: NaN as null, a missing category as null.
    records = nan_rows.astype(object).where(nan_rows.notna(), None).to_dict("records")
    onnx_labels, onnx_proba = auto.score_now(auto.coerce(rows_from_records(records)))
    native_labels, native_proba = native.score_now(native.coerce(rows_from_records(records)))
    np.testing.assert_array_equal(onnx_labels, native_labels)
    assert onnx_proba is not None and native_proba is not None
    np.testing.assert_allclose(onnx_proba, native_proba, atol=1e-6)


def test_string_indicator_is_not_converted_and_the_manifest_says_why(
    loans: tuple[pd.DataFrame, pd.Series], nan_rows: pd.DataFrame
) -> None:
    X, y = loans
    model = imputed_pipeline(
        SimpleImputer(),
        LogisticRegression(max_iter=1000),
        SimpleImputer(strategy="most_frequent", add_indicator=True),
    ).fit(X, y)

    version = loaded(model, X, y, nan_rows)
    served = ServedModel.build(version, ServeSettings())

    summary = version.manifest.onnx
    assert summary is not None and summary["converted"] is False
    assert summary["error"] == (
        "ONNX conversion failed: NotImplementedError: SimpleImputer(add_indicator=True) on "
        "string columns has no ONNX converter (scikit-learn mixes True/False into the "
        "strings); impute them without it."
    )
    assert served.runtime == "native"
    assert "add_indicator=True" in served.runtime_reason
