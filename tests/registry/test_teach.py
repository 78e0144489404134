"""``teach``: how a logged label teaches an online learner, the same for a server's learner, a
resumed one and the scheduler's snapshot job. A row that no longer fits the schema and a
label the model cannot take are skipped; the rest are learned in order."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from river import linear_model, preprocessing

from shipyard.dataset import ColumnSchema, Schema
from shipyard.packaging._river_models import RiverClassifier
from shipyard.registry import learnable_rows, teach

SCHEMA = Schema(
    columns=[
        ColumnSchema(name="a", dtype="float", nullable=False),
        ColumnSchema(name="b", dtype="float", nullable=False),
    ]
)


def test_rows_that_do_not_fit_are_found_and_the_others_coerced() -> None:
    rng = np.random.default_rng(0)
    inputs = pd.DataFrame({"a": rng.normal(size=9).astype(object), "b": rng.normal(size=9)})
    inputs.loc[[2, 7], "a"] = "not a number"  # logged before a schema change, say
    rows = learnable_rows(SCHEMA, inputs.assign(extra=1))
    assert [i for i, row in enumerate(rows) if row is None] == [2, 7]
    kept = [row for row in rows if row is not None]
    assert kept == pd.DataFrame(inputs.drop(index=[2, 7]), dtype=float).to_dict("records")
    assert learnable_rows(SCHEMA, inputs.iloc[:0]) == []


def test_teach_learns_what_it_can_in_order_and_says_what() -> None:
    model = RiverClassifier(
        preprocessing.StandardScaler() | linear_model.LogisticRegression(), [False, True]
    )
    inputs = pd.DataFrame({"a": [0.5, "x", -1.0, 2.0], "b": [1.0, 0.0, -2.0, 0.5]})
    labels: list[object] = [True, False, "maybe", False]
    expected = copy.deepcopy(model)
    for x, y in (({"a": 0.5, "b": 1.0}, True), ({"a": 2.0, "b": 0.5}, False)):
        expected.learn_one(x, y)

    rows, taught = teach(model, SCHEMA, inputs, labels)

    assert rows == [{"a": 0.5, "b": 1.0}, {"a": 2.0, "b": 0.5}] and taught == [True, False]
    probe = pd.DataFrame({"a": [0.1, -0.3], "b": [0.2, 0.9]})
    np.testing.assert_array_equal(model.predict_proba(probe), expected.predict_proba(probe))
