"""``/invocations`` answers the payloads MLflow's own ``convert_input_example_to_serving_input``
(``mlflow.models``, MLflow 3.17) writes, NaN and None included, against a real server."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow_support import loan_frame, mlflow, quiet

from shipyard import Client, Settings
from shipyard.importing import import_mlflow
from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store


def _pipeline(X: pd.DataFrame, y: pd.Series) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    text = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="none"),
        OneHotEncoder(handle_unknown="ignore"),
    )
    columns = make_column_transformer(
        (SimpleImputer(), ["income", "debt", "years"]), (text, ["plan"])
    )
    return make_pipeline(columns, LogisticRegression(max_iter=500)).fit(X, y)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An MLflow model imported into Shipyard and served by a real uvicorn; the model."""
    tmp = tmp_path_factory.mktemp("invocations")
    X, y = loan_frame()
    X["plan"] = np.where(np.arange(len(X)) % 3 == 0, "basic", "pro").astype(object)
    X.loc[X.index % 7 == 1, "plan"] = None
    model = _pipeline(X, y)
    with quiet():
        mlflow.sklearn.save_model(
            model, str(tmp / "m"), input_example=X.head(30), serialization_format="cloudpickle"
        )
    store = Store(f"sqlite:///{tmp / 'sy.db'}", str(tmp / "art"), creator="alice").open()
    client = Client(Settings(user="alice"), store=store).open()
    import_mlflow(
        str(tmp / "m"), registry=client.registry, tracker=client.tracker, user="alice", name="loan"
    )
    client.registry.promote("loan", 1, actor="alice", to="staging")
    app = create_app(store, settings=ServeSettings(auth=False, alias="staging"))
    with serve_in_thread(app) as url:
        yield url, model, X
    client.close()


def _rows(X: pd.DataFrame) -> pd.DataFrame:
    rows = X.iloc[[0, 1, 2, 3, 8, 15]].copy()  # row 1 (and 8, 15) has no plan
    rows.iloc[0, rows.columns.get_loc("income")] = np.nan
    rows.iloc[2, rows.columns.get_loc("plan")] = None
    return rows


_JSON = {"content-type": "application/json"}


def _post(url: str, payload: str) -> list[Any]:
    response = httpx.post(
        f"{url}/invocations",
        content=payload,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    predictions: list[Any] = response.json()["predictions"]
    return predictions


def _serving_input(example: Any) -> str:
    from mlflow.models import convert_input_example_to_serving_input

    with quiet():
        payload = convert_input_example_to_serving_input(example)
    assert payload is not None
    return payload


def test_dataframe_split_with_nan_and_none(served: Any) -> None:
    url, model, X = served
    rows = _rows(X)
    payload = _serving_input(rows)
    assert "dataframe_split" in json.loads(payload) and "NaN" in payload  # as MLflow writes it
    assert _post(url, payload) == model.predict(rows).tolist()


def test_records(served: Any) -> None:
    url, model, X = served
    rows = _rows(X)
    payload = _serving_input(rows.to_dict(orient="records"))
    assert isinstance(json.loads(payload)["inputs"], list)
    assert _post(url, payload) == model.predict(rows).tolist()


def test_tensors_by_column_and_instances(served: Any) -> None:
    url, model, X = served
    rows = _rows(X)
    columns = {name: rows[name].to_numpy() for name in rows.columns}
    payload = _serving_input(columns)
    assert isinstance(json.loads(payload)["inputs"], dict)
    assert _post(url, payload) == model.predict(rows).tolist()
    # TF-serving's row form, which MLflow's scoring server reads as "instances" or "inputs"
    instances = json.dumps(
        {"instances": json.loads(_serving_input(rows.to_dict("records")))["inputs"]}
    )
    assert _post(url, instances.replace("NaN", "null")) == model.predict(rows).tolist()


def test_infinity_is_refused_and_broken_json_stays_broken(served: Any) -> None:
    url, _, X = served
    split = {"columns": list(X.columns), "data": [[1.0, 2.0, 3, "pro"]]}
    payload = json.dumps({"dataframe_split": split}).replace("1.0", "Infinity")
    response = httpx.post(f"{url}/invocations", content=payload, headers=_JSON, timeout=30)
    assert response.status_code == 400 and "no Infinity" in response.text
    response = httpx.post(f"{url}/invocations", content=b'{"inputs": [NaN', headers=_JSON)
    assert response.status_code == 400 and "not valid JSON" in response.text
