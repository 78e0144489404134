"""Models of every built-in flavor, fitted and unfitted, for the flavor contract and the
end-to-end framework tests: one small, realistic data set (numeric and categorical columns)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd


def frame(n: int = 600, *, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Numeric features (one-decimal ages, incomes), the class label and a numeric target."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.normal(50, 15, n).round(1),
            "tenure": rng.exponential(4, n).round(1),
        }
    )
    score = 0.04 * (X["age"] - 45) + 0.05 * (X["income"] - 50) - 0.2 * X["tenure"]
    labels = np.where(score + rng.normal(0, 0.5, n) > 0, "churn", "stay")
    value = (2 * X["income"] + X["age"] - 3 * X["tenure"] + rng.normal(0, 2, n)).to_numpy()
    return X, labels, value


class RulesClassifier:
    """A plain Python classifier: a fixed rule set with probabilities."""

    classes_: ClassVar[list[str]] = ["churn", "stay"]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.classes_)[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        score = 0.04 * (X["age"] - 45) + 0.05 * (X["income"] - 50) - 0.2 * X["tenure"]
        churn = 1 / (1 + np.exp(-score.to_numpy(dtype=float)))
        return np.column_stack([churn, 1 - churn])


class MeanRegressor:
    """A plain Python regressor with a fit: the mean target per age band."""

    def fit(self, X: pd.DataFrame, y: Any) -> MeanRegressor:
        bands = (X["age"] // 10).to_numpy()
        target = np.asarray(y, dtype=float)
        self.means_ = {band: float(target[bands == band].mean()) for band in np.unique(bands)}
        self.default_ = float(target.mean())
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        bands = (X["age"] // 10).to_numpy()
        return np.array([self.means_.get(band, self.default_) for band in bands])


_NOTEBOOK_SOURCE = textwrap.dedent(
    """
    import numpy as np

    class NotebookModel:
        classes_: ClassVar[list[str]] = ["churn", "stay"]

        def predict(self, X):
            return np.where(X["tenure"] < 3, "churn", "stay")
    """
)


def notebook_model() -> Any:
    """An instance of a class defined in ``__main__``, as in a notebook or a script."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(_NOTEBOOK_SOURCE, namespace)
    return namespace["NotebookModel"]()


@dataclass
class Case:
    """One model of one flavor: how to fit it, and what Shipyard must say about it."""

    id: str
    flavor: str
    make: Callable[[], Any]
    task: str
    onnx: bool  # whether the export must exist and pass its parity check
    classes: list[Any] | None = None
    fit: bool = True
    categorical: bool = False
    multiclass: bool = False
    #: Whether an unfitted model is refused (a river learner answers from its first row on).
    needs_fit: bool = True
    notes: dict[str, Any] = field(default_factory=dict)

    def data(self, n: int = 600) -> tuple[pd.DataFrame, np.ndarray]:
        X, labels, value = frame(n)
        if self.categorical:
            plan = np.where(X["age"] > 50, "gold", "basic")
            # a category dtype, as LightGBM takes categorical columns natively
            X = X.assign(plan=pd.Categorical(plan) if self.flavor == "lightgbm" else plan)
        y = labels if self.task == "classification" else value
        if self.multiclass:
            y = np.select([value < 140, value < 170], ["low", "mid"], "high")
        if self.classes == [0, 1]:
            y = (labels == "churn").astype(int)
        return X, y

    def fitted(self) -> tuple[Any, pd.DataFrame, np.ndarray]:
        X, y = self.data()
        model = self.make()
        if self.fit:
            model.fit(X, y)
        return model, X, y


def _river_classifier() -> Any:
    from river import naive_bayes, preprocessing

    from shipyard.packaging import get_flavor

    learner = preprocessing.StandardScaler() | naive_bayes.GaussianNB()  # takes text labels
    return get_flavor("river").adapt(learner, CHURN)  # type: ignore[attr-defined]


def _river_regressor() -> Any:
    from river import linear_model, preprocessing

    from shipyard.packaging import get_flavor

    learner = preprocessing.StandardScaler() | linear_model.LinearRegression()
    return get_flavor("river").adapt(learner, None)  # type: ignore[attr-defined]


def _xgb_classifier() -> Any:
    import xgboost

    return xgboost.XGBClassifier(n_estimators=25, max_depth=3)


def _xgb_regressor() -> Any:
    import xgboost

    return xgboost.XGBRegressor(n_estimators=25, max_depth=3)


def _lgbm_classifier() -> Any:
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=25, verbose=-1)


def _lgbm_regressor() -> Any:
    import lightgbm

    return lightgbm.LGBMRegressor(n_estimators=25, verbose=-1)


def _catboost_classifier(**kwargs: Any) -> Callable[[], Any]:
    def make() -> Any:
        import catboost

        return catboost.CatBoostClassifier(
            iterations=25, depth=3, verbose=False, allow_writing_files=False, **kwargs
        )

    return make


def _catboost_regressor() -> Any:
    import catboost

    return catboost.CatBoostRegressor(
        iterations=25, depth=3, verbose=False, allow_writing_files=False
    )


def _sklearn_pipeline() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression())


def _sklearn_regressor() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(max_iter=20)


def _xgboost_pipeline() -> Any:
    import xgboost
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    prep = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["plan"]),
        remainder="passthrough",
    )
    return make_pipeline(prep, xgboost.XGBClassifier(n_estimators=25, max_depth=3))


CHURN = ["churn", "stay"]

#: At least one case per built-in flavor (the contract test checks that none is missing).
CASES = [
    Case("sklearn-pipeline", "sklearn", _sklearn_pipeline, "classification", True, CHURN),
    Case("sklearn-regressor", "sklearn", _sklearn_regressor, "regression", True),
    Case(
        "sklearn-xgboost-pipeline",
        "sklearn",
        _xgboost_pipeline,
        "classification",
        True,
        [0, 1],
        categorical=True,
    ),
    Case("xgboost-classifier", "xgboost", _xgb_classifier, "classification", True, [0, 1]),
    Case("xgboost-regressor", "xgboost", _xgb_regressor, "regression", True),
    Case("lightgbm-classifier", "lightgbm", _lgbm_classifier, "classification", True, CHURN),
    Case("lightgbm-regressor", "lightgbm", _lgbm_regressor, "regression", True),
    Case(
        "lightgbm-categorical",
        "lightgbm",
        _lgbm_classifier,
        "classification",
        False,
        CHURN,
        categorical=True,
    ),
    Case("catboost-classifier", "catboost", _catboost_classifier(), "classification", True, CHURN),
    Case("catboost-regressor", "catboost", _catboost_regressor, "regression", True),
    Case(
        "catboost-multiclass",
        "catboost",
        _catboost_classifier(),
        "classification",
        True,
        ["high", "low", "mid"],
        multiclass=True,
    ),
    Case(
        "catboost-categorical",
        "catboost",
        _catboost_classifier(cat_features=["plan"]),
        "classification",
        False,
        CHURN,
        categorical=True,
    ),
    Case(
        "river-classifier",
        "river",
        _river_classifier,
        "classification",
        False,
        CHURN,
        needs_fit=False,
    ),
    Case("river-regressor", "river", _river_regressor, "regression", False, needs_fit=False),
    Case("python-rules", "python", RulesClassifier, "classification", False, CHURN, fit=False),
    Case("python-regressor", "python", MeanRegressor, "regression", False),
    Case("python-notebook", "python", notebook_model, "classification", False, CHURN, fit=False),
]
