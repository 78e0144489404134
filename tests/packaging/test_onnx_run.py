"""``SessionRunner``: onnxruntime's C++ session called directly, the public ``run`` otherwise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from shipyard.packaging._onnx import OnnxPredictor, export_onnx
from shipyard.packaging._onnx_run import SessionRunner


@pytest.fixture(scope="module")
def predictor() -> OnnxPredictor:
    """A two-input (number, text) classifier's ONNX export, loaded."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=200), "city": rng.choice(["a", "b", "c"], 200)})
    y = (X.x + (X.city == "a") > 0.5).astype(int)
    prep = ColumnTransformer(
        [("num", "passthrough", ["x"]), ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])]
    )
    model = Pipeline([("prep", prep), ("model", LogisticRegression())]).fit(X, y)
    export = export_onnx(model, X, task="classification")
    assert export.model_bytes is not None and export.error is None
    return OnnxPredictor(export.model_bytes, export.inputs).load()


@pytest.fixture(scope="module")
def feed(predictor: OnnxPredictor) -> dict[str, np.ndarray]:
    return predictor.feed_from_columns({"x": [0.3, -1.0, None], "city": ["a", "c", None]})


def outputs(session: ort.InferenceSession) -> list[str]:
    return [out.name for out in session.get_outputs()]


def same(left: list[Any], right: list[Any]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        np.testing.assert_array_equal(a, b)


class PublicOnly:
    """A session as another onnxruntime might have it: a public ``run``, no ``_sess``."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.calls = 0

    def run(self, output_names: Sequence[str], feed: Mapping[str, Any]) -> list[Any]:
        self.calls += 1
        result: list[Any] = self.session.run(output_names, feed)
        return result


class OtherBinding(PublicOnly):
    """A session whose C++ binding's ``run`` takes other arguments (no run_options)."""

    def __init__(self, session: ort.InferenceSession) -> None:
        super().__init__(session)
        inner = session._sess

        class Binding:
            def run(self, output_names: Sequence[str], feed: Mapping[str, Any]) -> list[Any]:
                result: list[Any] = inner.run(output_names, feed, None)
                return result

        self._sess = Binding()


def test_runs_the_cxx_session_directly_with_the_public_runs_answers(
    predictor: OnnxPredictor, feed: dict[str, np.ndarray]
) -> None:
    session = predictor._session
    runner = SessionRunner(session)

    answer = runner.run(outputs(session), feed)

    assert runner.direct
    same(answer, session.run(outputs(session), feed))
    labels, proba = predictor.predict_arrays(feed)  # the predictor runs through one too
    np.testing.assert_array_equal(labels, answer[0])
    np.testing.assert_array_equal(proba, answer[1])


@pytest.mark.parametrize(
    "wrap",
    [PublicOnly, OtherBinding],
    ids=["no-cxx-attribute", "binding-with-another-signature"],
)
def test_another_onnxruntime_falls_back_to_the_public_run_for_good(
    predictor: OnnxPredictor, feed: dict[str, np.ndarray], wrap: type[PublicOnly]
) -> None:
    session = predictor._session
    other = wrap(session)
    runner = SessionRunner(other)

    first = runner.run(outputs(session), feed)
    second = runner.run(outputs(session), feed)

    assert not runner.direct
    assert other.calls == 2  # both calls answered by the public run
    same(first, session.run(outputs(session), feed))
    same(second, first)


def test_the_cxx_session_still_refuses_a_feed_without_an_input(
    predictor: OnnxPredictor, feed: dict[str, np.ndarray]
) -> None:
    session = predictor._session
    runner = SessionRunner(session)
    partial = {k: v for k, v in feed.items() if k != "city"}

    with pytest.raises(Exception, match="city"):
        runner.run(outputs(session), partial)
    with pytest.raises(Exception, match="city"):
        session.run(outputs(session), partial)
