"""ONNX export: conversion, parity with the native model, fallbacks and the fast predictor."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    AdaBoostClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from shipyard.errors import InvalidInput, SchemaViolation
from shipyard.packaging._onnx import OnnxExport, OnnxInput, OnnxPredictor, export_onnx


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin; on a busy CI box fits then take 50x longer."""
    with threadpool_limits(limits=1):
        yield


NUMERIC = [f"num_{i}" for i in range(14)]
CATEGORICAL = [f"cat_{i}" for i in range(6)]


def issue_frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """14 numeric columns on different scales, 6 string columns, a noisy binary target."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {c: rng.normal(size=n) * (i + 1) for i, c in enumerate(NUMERIC)}
    data.update({c: rng.choice(list("abcdefg")[: i + 2], n) for i, c in enumerate(CATEGORICAL)})
    X = pd.DataFrame(data)
    logit = X.num_0 + X.num_1 / 2 - X.num_2 / 3 + (X.cat_0 == "a") + rng.normal(size=n)
    return X, (logit > 0).astype(int)


def preprocess() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
        ]
    )


@pytest.fixture(scope="module")
def issue_data() -> tuple[pd.DataFrame, pd.Series]:
    return issue_frame(3000)


@pytest.fixture(scope="module")
def issue_pipeline(issue_data: tuple[pd.DataFrame, pd.Series]) -> Pipeline:
    """The pipeline of the issue: scaled numerics + one-hot categories -> HGB classifier."""
    X, y = issue_data
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0)
    return Pipeline([("prep", preprocess()), ("model", model)]).fit(X, y)


@pytest.fixture(scope="module")
def issue_export(
    issue_pipeline: Pipeline, issue_data: tuple[pd.DataFrame, pd.Series]
) -> OnnxExport:
    X, _ = issue_data
    return export_onnx(issue_pipeline, X.head(100), X, task="classification")


# --- the issue: HistGradientBoosting, bool attributes, precision --------------------------------


def test_issue_pipeline_converts_in_double_with_parity(issue_export: OnnxExport) -> None:
    assert issue_export.error is None
    assert issue_export.model_bytes is not None
    assert issue_export.precision == "double"
    assert issue_export.n_eval_rows == 3000
    # float32 inputs move these probabilities by up to 0.09 (training rows sit on split
    # thresholds); double is exact up to the float32 rounding of the tree ensemble's output.
    assert issue_export.max_abs_diff is not None and issue_export.max_abs_diff < 1e-6
    assert issue_export.share_over_1e3 == 0.0
    assert [inp.column for inp in issue_export.inputs] == NUMERIC + CATEGORICAL
    assert {inp.onnx_type for inp in issue_export.inputs[:14]} == {"double"}
    assert {inp.onnx_type for inp in issue_export.inputs[14:]} == {"string"}


def test_issue_pipeline_predictions_match_native(
    issue_export: OnnxExport, issue_pipeline: Pipeline
) -> None:
    assert issue_export.model_bytes is not None
    predictor = OnnxPredictor(issue_export.model_bytes, issue_export.inputs).load()
    X, _ = issue_frame(500, seed=1)  # rows the model has not seen

    labels = predictor.predict(X)
    proba = predictor.predict_proba(X)

    np.testing.assert_array_equal(labels, issue_pipeline.predict(X))
    assert proba is not None
    np.testing.assert_allclose(proba, issue_pipeline.predict_proba(X), atol=1e-6)


def test_stock_skl2onnx_still_fails_on_the_bool_attribute(issue_pipeline: Pipeline) -> None:
    """Reproduces the bug our ``_TreeContainer`` works around.

    When this skips, skl2onnx (or protobuf) fixed it: the int coercion can go.
    """
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    initial_types = [(c, FloatTensorType([None, 1])) for c in NUMERIC]
    initial_types += [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    try:
        to_onnx(issue_pipeline, initial_types=initial_types)
    except ValueError as exc:
        assert "Expected an int, got a boolean" in str(exc.__cause__)
    else:
        pytest.skip("skl2onnx converts HistGradientBoosting again; the bool fix is unneeded")


def test_nan_inputs_follow_the_learned_missing_branch() -> None:
    X, y = issue_frame(2000, seed=2)
    rng = np.random.default_rng(3)
    X_train = X.mask(rng.random(X.shape) < 0.1 * np.isin(X.columns, NUMERIC))
    model = Pipeline(
        [("prep", preprocess()), ("model", HistGradientBoostingClassifier(max_iter=50))]
    ).fit(X_train, y)
    X_eval = X.head(400).copy()
    X_eval.loc[::2, ["num_0", "num_1", "num_5"]] = np.nan  # NaN on the strongest features

    export = export_onnx(model, X_train.head(50), X_eval, task="classification")

    assert export.error is None and export.precision == "double"
    assert export.max_abs_diff is not None and export.max_abs_diff < 1e-6
    assert export.model_bytes is not None
    nan_rows = X_eval.iloc[::2]
    proba = OnnxPredictor(export.model_bytes, export.inputs).load().predict_proba(nan_rows)
    assert proba is not None
    np.testing.assert_allclose(proba, model.predict_proba(nan_rows), atol=1e-6)


def test_unseen_and_missing_categories_act_like_ignored_categories(
    issue_export: OnnxExport, issue_pipeline: Pipeline, issue_data: tuple[pd.DataFrame, pd.Series]
) -> None:
    assert issue_export.model_bytes is not None
    predictor = OnnxPredictor(issue_export.model_bytes, issue_export.inputs).load()
    X = issue_data[0].head(4).copy()
    X.loc[0, "cat_0"] = "never seen"
    X.loc[1, CATEGORICAL] = "zzz"
    X.loc[2, "cat_3"] = None  # sent as "" (unknown), as scikit-learn ignores an unseen NaN

    proba = predictor.predict_proba(X)

    assert proba is not None
    np.testing.assert_allclose(proba, issue_pipeline.predict_proba(X), atol=1e-6)


# --- other estimators ----------------------------------------------------------------------------


def mixed_frame(n: int) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """A float, a wide float, an integer code and a string column; class and value targets."""
    rng = np.random.default_rng(4)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n) * 100,
            "code": rng.integers(0, 5, n),
            "city": rng.choice(["oslo", "lima", "pune"], n),
        }
    )
    y_class = ((X.a + X.b / 100 + (X.city == "oslo") + rng.normal(size=n)) > 0).astype(int)
    y_value = 3 * X.a + X.b + X.code + rng.normal(size=n)
    return X, y_class, y_value


def mixed_pipeline(model: BaseEstimator) -> Pipeline:
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["a", "b"]),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["code", "city"]),
        ]
    )
    return Pipeline([("prep", prep), ("model", model)])


@pytest.mark.parametrize(
    ("model", "task"),
    [
        (LogisticRegression(max_iter=500), "classification"),
        (RandomForestClassifier(n_estimators=10, max_depth=8, random_state=0), "classification"),
        (GradientBoostingClassifier(n_estimators=20, random_state=0), "classification"),
        (HistGradientBoostingRegressor(max_iter=30), "regression"),
        (RandomForestRegressor(n_estimators=10, max_depth=8, random_state=0), "regression"),
        (DecisionTreeRegressor(max_depth=6, random_state=0), "regression"),
        (Ridge(), "regression"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseEstimator) else value,
)
def test_estimators_convert_in_double_with_parity(model: BaseEstimator, task: str) -> None:
    X, y_class, y_value = mixed_frame(600)
    pipeline = mixed_pipeline(model).fit(X, y_class if task == "classification" else y_value)

    export = export_onnx(pipeline, X.head(20), X, task=task)

    assert export.error is None, export.error
    assert export.precision == "double"
    assert export.max_abs_diff is not None
    # Regressors (|y| up to ~400) output float32 from tree ensembles: rtol 1e-5 applies.
    assert export.max_abs_diff < (1e-6 if task == "classification" else 5e-3)
    assert export.model_bytes is not None
    predictor = OnnxPredictor(export.model_bytes, export.inputs).load()
    expected = pipeline.predict(X.head(50))
    if task == "classification":
        np.testing.assert_array_equal(predictor.predict(X.head(50)), expected)
    else:
        np.testing.assert_allclose(predictor.predict(X.head(50)), expected, rtol=1e-5)
        assert predictor.predict_proba(X.head(50)) is None


def test_float_fallback_when_the_double_graph_is_invalid() -> None:
    # skl2onnx 1.20 builds AdaBoost's double graph with a float/double Where: it won't load.
    X, y, _ = mixed_frame(400)
    model = AdaBoostClassifier(n_estimators=10, random_state=0).fit(X[["a", "b"]], y)

    export = export_onnx(model, X[["a", "b"]], task="classification")

    assert export.error is None
    assert export.precision == "float"
    assert export.inputs == (OnnxInput("X", None, "float"),)
    assert export.max_abs_diff is not None and export.max_abs_diff < 1e-5


def test_classifier_without_probabilities_is_checked_on_labels() -> None:
    X, y, _ = mixed_frame(300)
    model = mixed_pipeline(RidgeClassifier()).fit(X, np.where(y == 1, "yes", "no"))

    export = export_onnx(model, X, task="classification")

    assert export.error is None
    assert export.max_abs_diff is None and export.share_over_1e3 is None
    assert export.model_bytes is not None
    predictor = OnnxPredictor(export.model_bytes, export.inputs).load()
    np.testing.assert_array_equal(predictor.predict(X), model.predict(X))
    # The graph's second output holds decision scores: not passed off as probabilities.
    assert predictor.predict_proba(X) is None
    assert predictor.predict_arrays(predictor.make_feed(X.head(2)))[1] is None


def test_parity_failure_keeps_the_model_and_says_why() -> None:
    X, _, y = mixed_frame(300)
    model = mixed_pipeline(HistGradientBoostingRegressor(max_iter=20)).fit(X, y)

    # No tolerance: the float32 output of the tree ensemble can never match exactly.
    export = export_onnx(model, X, task="regression", atol=0.0, rtol=0.0)

    assert export.model_bytes is not None
    assert export.precision == "double"  # the closest of the attempts
    assert export.error is not None
    assert export.error.startswith("parity check failed with double inputs: max |onnx - native|")
    assert export.max_abs_diff is not None and 0 < export.max_abs_diff < 5e-3


# --- failures are recorded, not raised ----------------------------------------------------------


class HandMadeClassifier(ClassifierMixin, BaseEstimator):
    """A custom estimator skl2onnx has no converter for."""

    def fit(self, X: pd.DataFrame, y: pd.Series) -> HandMadeClassifier:
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.full((len(X), 2), 0.5)


def test_unknown_estimator_is_an_error_not_an_exception() -> None:
    X, y, _ = mixed_frame(50)

    export = export_onnx(HandMadeClassifier().fit(X, y), X, task="classification")

    assert export.model_bytes is None
    assert export.inputs == ()
    assert export.max_abs_diff is None
    assert export.error is not None
    assert export.error.startswith("ONNX conversion failed: MissingShapeCalculator")
    assert "HandMadeClassifier" in export.error
    assert "\n" not in export.error


def test_unsupported_column_dtype_is_an_error() -> None:
    X, y, _ = mixed_frame(50)
    model = mixed_pipeline(LogisticRegression()).fit(X, y)

    export = export_onnx(model, X.assign(when=pd.Timestamp("2024-01-01")), task="classification")

    assert export.model_bytes is None
    assert export.error is not None
    assert export.error.startswith("Column 'when' has dtype datetime64")


def test_unknown_task_is_refused() -> None:
    X, y, _ = mixed_frame(50)
    with pytest.raises(InvalidInput, match="must be one of"):
        export_onnx(LogisticRegression().fit(X[["a"]], y), X[["a"]], task="ranking")


def test_manifest_is_json_without_the_bytes(issue_export: OnnxExport) -> None:
    manifest = json.loads(json.dumps(issue_export.to_manifest()))

    assert manifest["converted"] is True
    assert manifest["precision"] == "double"
    assert manifest["error"] is None
    assert manifest["n_eval_rows"] == 3000
    assert manifest["inputs"][0] == {"name": "num_0", "column": "num_0", "onnx_type": "double"}
    assert "model_bytes" not in manifest


# --- inputs and the predictor --------------------------------------------------------------------


def test_all_numeric_frame_is_one_matrix_input_read_by_name() -> None:
    X, _, y = mixed_frame(300)
    numeric = X[["a", "b", "code"]]
    model = HistGradientBoostingRegressor(max_iter=20).fit(numeric, y)

    export = export_onnx(model, numeric, task="regression")

    assert export.error is None
    assert export.inputs == (OnnxInput("X", None, "double"),)
    assert export.model_bytes is not None
    predictor = OnnxPredictor(export.model_bytes, export.inputs).load()
    shuffled = numeric.head(5)[["code", "a", "b"]].assign(extra=1.0)
    np.testing.assert_allclose(
        predictor.predict(shuffled), model.predict(numeric.head(5)), rtol=1e-5
    )


def test_input_names_are_sanitised_and_fed_from_their_columns() -> None:
    X, y, _ = mixed_frame(300)
    X = X.rename(columns={"a": "a b", "b": "b+1", "code": "3code", "city": "città"})
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), ["a b", "b+1"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["3code", "città"]),
        ]
    )
    model = Pipeline([("prep", prep), ("model", LogisticRegression())]).fit(X, y)

    export = export_onnx(model, X, task="classification")

    assert export.error is None
    assert [(inp.name, inp.column) for inp in export.inputs] == [
        ("a_b", "a b"),
        ("b_1", "b+1"),
        ("_3code", "3code"),
        ("citt_", "città"),
    ]
    assert export.max_abs_diff is not None and export.max_abs_diff < 1e-9


def test_feed_from_columns_matches_the_frame_feed(
    issue_export: OnnxExport, issue_data: tuple[pd.DataFrame, pd.Series]
) -> None:
    assert issue_export.model_bytes is not None
    predictor = OnnxPredictor(issue_export.model_bytes, issue_export.inputs).load()
    X = issue_data[0].head(3)
    columns = {c: X[c].tolist() for c in X.columns}
    columns["num_0"][1] = None  # JSON null
    frame = X.assign(num_0=[X.num_0.iloc[0], np.nan, X.num_0.iloc[2]])

    labels, proba = predictor.predict_arrays(predictor.feed_from_columns(columns))
    frame_labels, frame_proba = predictor.predict_arrays(predictor.make_feed(frame))

    np.testing.assert_array_equal(labels, frame_labels)
    assert proba is not None and frame_proba is not None
    np.testing.assert_array_equal(proba, frame_proba)


def test_single_rows_and_large_frames_are_fed_alike(
    issue_export: OnnxExport, issue_data: tuple[pd.DataFrame, pd.Series]
) -> None:
    assert issue_export.model_bytes is not None
    predictor = OnnxPredictor(issue_export.model_bytes, issue_export.inputs).load()
    X = issue_data[0]

    def proba(frame: pd.DataFrame) -> np.ndarray:
        result = predictor.predict_proba(frame)
        assert result is not None
        return result

    one_by_one = np.vstack([proba(X.iloc[[i]]) for i in range(5)])  # the single-row shortcut
    small = proba(X.head(5))  # one object array
    large = proba(X)  # column by column

    np.testing.assert_array_equal(one_by_one, small)
    np.testing.assert_array_equal(small, large[:5])


def test_missing_column_is_a_schema_violation(issue_export: OnnxExport) -> None:
    assert issue_export.model_bytes is not None
    predictor = OnnxPredictor(issue_export.model_bytes, issue_export.inputs).load()
    X, _ = issue_frame(2)

    with pytest.raises(SchemaViolation, match=r"lacks the model's columns \['cat_5'\]") as info:
        predictor.predict(X.drop(columns="cat_5"))

    assert info.value.details["errors"] == [{"field": "cat_5", "reason": "missing column"}]


def test_predictor_uses_one_intra_op_thread_unless_told(issue_export: OnnxExport) -> None:
    assert issue_export.model_bytes is not None
    default = OnnxPredictor(issue_export.model_bytes, issue_export.inputs)
    assert not hasattr(default, "_session")  # the constructor only stores its arguments

    default.load()
    tuned = OnnxPredictor(issue_export.model_bytes, issue_export.inputs, intra_op_num_threads=2)

    assert default._session.get_session_options().intra_op_num_threads == 1
    assert tuned.load()._session.get_session_options().intra_op_num_threads == 2
