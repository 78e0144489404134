"""The explain gate: which raw input features drive each model, within a time budget.

On the pipeline's RAW input columns, string categoricals included. TreeSHAP
(``shap.TreeExplainer``) when the final estimator is a tree model and the preprocessing maps
each transformed column back to one input column (a ``ColumnTransformer`` of one-hot encoders
and column-wise transformers): the SHAP values of an input's transformed columns are summed
(SHAP values add up), then the mean absolute value ranks the inputs. Otherwise scikit-learn's
``permutation_importance`` on the whole pipeline and the raw frame, on as many rows as the
budget allows. The ranking is evidence, not a block: a top-5 feature that moved more than
``max_rank_shift`` places against the champion is reported; the gate fails only when no
explanation could be computed.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.config import GateSettings
from shipyard.evaluation._gate import Gate
from shipyard.packaging import LoadedModel, flat_predictions

#: TreeSHAP explains at most this many rows: mean |SHAP| is stable long before.
SHAP_ROWS = 256
#: TreeSHAP first explains this many rows to time it, and gives up below MIN_SHAP_ROWS.
PROBE_ROWS = 16
MIN_SHAP_ROWS = 32
#: Permutation importance uses at most this many rows, and this many repeats.
PERMUTATION_ROWS = 5_000
REPEATS = 3
TOP = 5


@dataclass(frozen=True)
class Explanation:
    """Importances of the raw input features, largest first, and how they were computed."""

    method: str
    rows: int
    importances: list[tuple[str, float]]
    note: str = ""

    @property
    def ranking(self) -> list[str]:
        return [name for name, _ in self.importances]

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "rows": self.rows,
            "note": self.note,
            "top": [{"feature": f, "importance": v} for f, v in self.importances[:20]],
        }


def explain(
    model: LoadedModel, frame: pd.DataFrame, target: np.ndarray, seconds: float, *, seed: int = 0
) -> Explanation:
    """Importances of ``model``'s raw inputs on ``frame`` (coerced to its schema)."""
    rng = np.random.default_rng(seed)
    deadline = time.perf_counter() + seconds
    names = model.schema.names()
    why = ""
    try:
        shap_result = _tree_shap(model, frame, names, rng, deadline)
        if isinstance(shap_result, Explanation):
            return shap_result
        why = shap_result
    except Exception as exc:  # shap's own limits (e.g. categorical splits): fall back
        why = f"TreeSHAP failed ({type(exc).__name__})"
    return _permutation(model, frame, target, names, deadline, rng, why)


def import_shap() -> Any:
    """``shap``, imported without its import's warnings: matplotlib warns
    (PendingDeprecation) as shap loads, which is not the caller's concern and is an error
    where warnings are errors (``python -W error``, pytest's ``filterwarnings``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import shap

    return shap


def _tree_shap(
    model: LoadedModel,
    frame: pd.DataFrame,
    names: list[str],
    rng: np.random.Generator,
    deadline: float,
) -> Explanation | str:
    """TreeSHAP's explanation, or why there is none."""
    native = model.model
    steps = getattr(native, "steps", None)
    final = steps[-1][1] if steps else native
    if not _is_tree_model(final):
        return f"TreeSHAP does not apply to a {type(final).__name__}"
    shap = import_shap()  # here: a second or more to import, and only tree models need it

    sample = _sample(frame, SHAP_ROWS, rng)
    model_input = model.prepare(sample, validate=False)
    if steps and len(steps) > 1:
        from sklearn.pipeline import Pipeline

        prep = Pipeline(steps[:-1])
        transformed = prep.transform(model_input)
        mapping = _mapping(prep, names, transformed.shape[1])
    else:
        transformed, mapping = model_input, np.arange(len(names))
    if mapping is None:
        return "the preprocessing's output columns do not map back to input columns"
    if hasattr(transformed, "toarray"):
        transformed = transformed.toarray()
    transformed = np.asarray(transformed, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer = shap.TreeExplainer(final)
        # A probe on a few rows says how many rows fit the budget (deep forests are slow).
        started = time.perf_counter()
        parts = [_rows_first(explainer.shap_values(transformed[:PROBE_ROWS]), len(mapping))]
        per_row = (time.perf_counter() - started) / min(PROBE_ROWS, len(transformed))
        fits = int((deadline - time.perf_counter()) / max(per_row, 1e-9))
        if fits < len(transformed):
            if fits < MIN_SHAP_ROWS:
                return f"TreeSHAP would not fit the time budget ({per_row * 1000:.1f} ms a row)"
            transformed = transformed[:fits]
        if len(transformed) > PROBE_ROWS:
            rest = explainer.shap_values(transformed[PROBE_ROWS:])
            parts.append(_rows_first(rest, len(mapping)))
    values = np.concatenate(parts)
    # SHAP values add up: an input's value is the sum over its transformed columns, per class.
    owner = np.zeros((len(mapping), len(names)))
    owner[np.arange(len(mapping)), mapping] = 1.0
    per_input = np.einsum("rck,cp->rkp", values, owner)
    importance = np.abs(per_input).sum(axis=1).mean(axis=0)
    return Explanation("tree_shap", len(values), _ranked(names, importance))


def _rows_first(shap_values: Any, width: int) -> np.ndarray:
    """SHAP values as (rows, columns, classes), whichever layout shap returned."""
    values = np.asarray(shap_values)
    if values.ndim == 2:
        return values[:, :, None]
    if values.shape[1] != width:  # older shap: one (rows, columns) array per class
        return values.transpose(1, 2, 0)
    return values


def _is_tree_model(estimator: Any) -> bool:
    kind = type(estimator).__name__
    return any(
        word in kind for word in ("Tree", "Forest", "GradientBoosting", "XGB", "LGBM", "Booster")
    )


def _mapping(prep: Any, names: list[str], width: int) -> np.ndarray | None:
    """For each transformed column, the input column it comes from (None if unknown)."""
    from sklearn.compose import ColumnTransformer

    head, *tail = [step for _, step in prep.steps]
    if not all(_one_to_one(step) for step in tail):
        return None
    if not isinstance(head, ColumnTransformer):
        return np.arange(len(names)) if width == len(names) and _one_to_one(head) else None
    position = {name: i for i, name in enumerate(names)}
    seen = list(getattr(head, "feature_names_in_", names))
    out = np.full(width, -1)
    for label, transformer, _ in head.transformers_:
        where = head.output_indices_[label]
        n_out = where.stop - where.start
        if transformer == "drop" or n_out == 0:
            continue
        # The input columns of each transformer, resolved by scikit-learn at fit time.
        inputs = [seen[i] for i in head._transformer_to_input_indices[label]]
        if len(inputs) == 1:
            owners = [inputs[0]] * n_out
        elif n_out == len(inputs):
            owners = inputs
        else:
            found = _one_hot_owners(transformer, inputs, n_out)
            if found is None:
                return None
            owners = found
        out[where] = [position[str(o)] for o in owners]
    return out if (out >= 0).all() else None


def _one_hot_owners(transformer: Any, inputs: list[Any], n_out: int) -> list[Any] | None:
    encoder = transformer.steps[-1][1] if hasattr(transformer, "steps") else transformer
    categories = getattr(encoder, "categories_", None)
    if categories is None or len(categories) != len(inputs):
        return None
    drops = getattr(encoder, "drop_idx_", None)
    owners: list[Any] = []
    for i, (column, cats) in enumerate(zip(inputs, categories, strict=True)):
        dropped = 0 if drops is None or drops[i] is None else 1
        infrequent = getattr(encoder, "infrequent_categories_", None)
        merged = 0 if not infrequent or infrequent[i] is None else len(infrequent[i]) - 1
        owners += [column] * (len(cats) - dropped - merged)
    return owners if len(owners) == n_out else None


def _one_to_one(step: Any) -> bool:
    """A transformer that keeps one output column per input column."""
    name = type(step).__name__
    return name in {
        "StandardScaler",
        "MinMaxScaler",
        "RobustScaler",
        "MaxAbsScaler",
        "OrdinalEncoder",
        "TargetEncoder",
    }


def _permutation(
    model: LoadedModel,
    frame: pd.DataFrame,
    target: np.ndarray,
    names: list[str],
    deadline: float,
    rng: np.random.Generator,
    why: str,
) -> Explanation:
    from sklearn.inspection import permutation_importance

    native = model.model
    probe = _sample(frame, 500, rng)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        native.predict(model.prepare(probe, validate=False))
    per_row = max((time.perf_counter() - started) / len(probe), 1e-7)
    calls = 1 + len(names) * REPEATS
    budget = max(deadline - time.perf_counter(), 0.0)
    rows = int(min(PERMUTATION_ROWS, len(frame), budget / (calls * per_row)))
    if rows < 50:
        raise _Unexplained(f"{why}; permutation importance would not fit the time budget")
    keep = rng.choice(len(frame), rows, replace=False) if rows < len(frame) else np.arange(rows)
    X = model.prepare(frame.iloc[keep], validate=False)
    # scikit-learn's permutation_importance wants fit and score: a plain Python model (the
    # "python" flavor) has predict only, so it is scored through _Scored.
    scored = native if hasattr(native, "fit") and hasattr(native, "score") else None
    estimator = scored or _Scored(native, model.manifest.task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = permutation_importance(
            estimator, X, target[keep], n_repeats=REPEATS, random_state=0
        )
    return Explanation(
        "permutation", rows, _ranked(names, np.asarray(result.importances_mean)), note=why
    )


class _Scored:
    """A model with ``predict`` only, scored as scikit-learn scores its estimators: accuracy
    for a classifier, R2 for a regressor (``fit`` is never called)."""

    def __init__(self, model: Any, task: str) -> None:
        self.model = model
        self.task = task

    def fit(self, X: Any, y: Any) -> _Scored:
        return self

    def score(self, X: Any, y: Any) -> float:
        from sklearn.metrics import accuracy_score, r2_score

        predicted = flat_predictions(self.model.predict(X))
        if self.task == "classification":
            return float(accuracy_score(np.asarray(y).astype(str), predicted.astype(str)))
        return float(r2_score(y, predicted))


class _Unexplained(Exception):
    """No explanation fits: the message says why."""


def _sample(frame: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), rows, replace=False))]


def _ranked(names: list[str], importance: np.ndarray) -> list[tuple[str, float]]:
    order = np.argsort(-importance, kind="stable")
    return [(names[i], float(importance[i])) for i in order]


def explain_gate(
    candidate: LoadedModel,
    champion: LoadedModel | None,
    frame: pd.DataFrame,
    champion_frame: pd.DataFrame | None,
    target: np.ndarray,
    settings: GateSettings,
) -> Gate:
    """Explain both models (half the budget each) and compare the rankings."""
    share = settings.explain_seconds / (2 if champion is not None else 1)
    try:
        cand = explain(candidate, frame, target, share)
    except Exception as exc:  # any failure is the gate's finding
        reason = str(exc) if isinstance(exc, _Unexplained) else f"{type(exc).__name__}: {exc}"
        return Gate(
            "explain",
            False,
            None,
            None,
            f"No explanation of the candidate could be computed: {reason}.",
            "explain",
            {},
        )
    data: dict[str, Any] = {"candidate": cand.to_json(), "max_rank_shift": settings.max_rank_shift}
    champ: Explanation | None = None
    champ_note = ""
    if champion is not None and champion_frame is not None:
        try:
            champ = explain(champion, champion_frame, target, share)
            data["champion"] = champ.to_json()
        except Exception as exc:  # reported, the candidate's explanation stands
            champ_note = f" The champion could not be explained ({type(exc).__name__})."
    top = cand.ranking[:TOP]
    shifts: list[dict[str, Any]] = []
    if champ is not None:
        theirs = {name: i for i, name in enumerate(champ.ranking)}
        for i, name in enumerate(top):
            before = theirs.get(name)
            shifts.append(
                {
                    "feature": name,
                    "rank": i + 1,
                    "champion_rank": None if before is None else before + 1,
                    "shift": None if before is None else abs(i - before),
                }
            )
    moved = [s for s in shifts if s["shift"] is None or s["shift"] > settings.max_rank_shift]
    data["rank_shifts"] = shifts
    data["moved"] = [s["feature"] for s in moved]
    largest = max((s["shift"] for s in shifts if s["shift"] is not None), default=None)
    listing = ", ".join(f"{n} ({v:.3g})" for n, v in cand.importances[:3])
    how = "TreeSHAP" if cand.method == "tree_shap" else "permutation importance"
    compare = ""
    if champ is not None:
        compare = (
            f" Against the champion, {len(moved)} top-{TOP} feature(s) moved more than "
            f"{settings.max_rank_shift} places ({', '.join(data['moved'])})"
            if moved
            else f" Against the champion, no top-{TOP} feature moved more than "
            f"{settings.max_rank_shift} places"
        ) + "; reported, not a block."
    detail = f"Top features by {how} on {cand.rows} rows: {listing}.{compare}{champ_note}"
    return Gate(
        "explain",
        True,
        None if largest is None else float(largest),
        float(settings.max_rank_shift),
        detail,
        "explain",
        data,
    )
