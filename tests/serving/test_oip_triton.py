"""Triton's own HTTP client, in its default modes, against a real server.

``tritonclient.http`` sends inputs with the binary tensor data extension and asks for every
output in binary unless told otherwise; errors reach its user as the ``error`` field of the
body (``InferenceServerException``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from serving.oip_server import nullable_archive

#: Closed clients, kept until the process ends: tritonclient.http's ``__del__`` joins its
#: gevent pool again, which raises when the garbage collector happens to run in another
#: thread (a server's background thread), and pytest turns that into an error of whatever
#: test runs then.
_CLOSED: list[triton.InferenceServerClient] = []


@pytest.fixture
def client(oip_url: str) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(oip_url.removeprefix("http://"))
    yield client
    client.close()
    _CLOSED.append(client)


def _inputs(
    frame: pd.DataFrame, types: dict[str, str], *, binary: bool = True, flat: bool = False
) -> list[triton.InferInput]:
    inputs = []
    for column in frame.columns:
        values = frame[column].to_numpy()
        array = values.astype(object) if types[column] == "BYTES" else values
        shape = [len(frame)] if flat else [len(frame), 1]
        tensor = triton.InferInput(column, shape, types[column])
        tensor.set_data_from_numpy(array.reshape(shape), binary_data=binary)
        inputs.append(tensor)
    return inputs


def test_metadata_readiness_and_binary_infer_by_default(
    client: triton.InferenceServerClient,
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
    fitted_pipeline,  # type: ignore[no-untyped-def]
) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("churn")
    types = {i["name"]: i["datatype"] for i in meta["inputs"]}
    rows = training_data[2].head(7).reset_index(drop=True)
    result = client.infer("churn", _inputs(rows, types), request_id="req-7")
    response = result.get_response()
    assert response["id"] == "req-7" and response["model_version"] == "1"
    # Every output came back in binary (tritonclient asks for it when naming no outputs).
    assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
    labels = result.as_numpy("predict")
    assert [v.decode() for v in labels] == fitted_pipeline.predict(rows).tolist()
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (7, 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba, fitted_pipeline.predict_proba(rows), atol=1e-6)
    ids = result.as_numpy("prediction_id")
    assert len({v.decode() for v in ids}) == 7


def test_flat_shapes_json_inputs_and_requested_outputs(
    client: triton.InferenceServerClient,
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
    fitted_pipeline,  # type: ignore[no-untyped-def]
) -> None:
    rows = training_data[2].tail(4).reset_index(drop=True)
    types = {"age": "INT64", "income": "FP64", "tenure": "FP64", "plan": "BYTES"}
    expected = fitted_pipeline.predict(rows).tolist()
    # [N] where [N, 1] is declared, data as JSON, the label asked for in JSON.
    json_in = _inputs(rows, types, binary=False, flat=True)
    asked = [triton.InferRequestedOutput("predict", binary_data=False)]
    result = client.infer("churn", json_in, outputs=asked, parameters={"note": "x"})
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["predict"]
    assert response["outputs"][0]["data"] == expected
    assert response["parameters"] == {"note": "x"}  # request parameters passed through
    # Binary inputs, one output in binary and one in JSON.
    asked = [
        triton.InferRequestedOutput("predict_proba", binary_data=True),
        triton.InferRequestedOutput("predict", binary_data=False),
    ]
    result = client.infer("churn", _inputs(rows, types), outputs=asked)
    kinds = {o["name"]: "data" in o for o in result.get_response()["outputs"]}
    assert kinds == {"predict_proba": False, "predict": True}
    assert result.as_numpy("predict").tolist() == expected
    assert result.as_numpy("predict_proba").shape == (4, 2)


def test_compressed_requests(
    client: triton.InferenceServerClient,
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
    fitted_pipeline,  # type: ignore[no-untyped-def]
) -> None:
    rows = training_data[2].head(4).reset_index(drop=True)
    types = {"age": "INT64", "income": "FP64", "tenure": "FP64", "plan": "BYTES"}
    expected = fitted_pipeline.predict(rows).tolist()
    for algorithm in ("gzip", "deflate"):
        result = client.infer(
            "churn",
            _inputs(rows, types),
            request_compression_algorithm=algorithm,
            response_compression_algorithm=algorithm,
        )
        assert [v.decode() for v in result.as_numpy("predict")] == expected, algorithm


def test_fp32_inputs_and_a_bytes_matrix(
    client: triton.InferenceServerClient,
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
    fitted_pipeline,  # type: ignore[no-untyped-def]
) -> None:
    rows = training_data[2].head(3).reset_index(drop=True)
    types = {"age": "INT32", "income": "FP32", "tenure": "FP32", "plan": "BYTES"}
    frame = rows.astype({"age": np.int32, "income": np.float32, "tenure": np.float32})
    result = client.infer("churn", _inputs(frame, types))
    expected = fitted_pipeline.predict(frame.astype({"income": float, "tenure": float}))
    assert [v.decode() for v in result.as_numpy("predict")] == expected.tolist()
    matrix = triton.InferInput("X", [3, 4], "BYTES")
    matrix.set_data_from_numpy(rows.astype(str).to_numpy(dtype=object))
    result = client.infer("churn", [matrix])
    assert [v.decode() for v in result.as_numpy("predict")] == expected.tolist()


def test_nan_in_binary_fp64_is_a_missing_value(
    client: triton.InferenceServerClient,
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
) -> None:
    _, rows = nullable_archive(training_data)
    rows = rows.reset_index(drop=True)
    assert rows["income"].isna().any()
    types = {"age": "INT64", "income": "FP64", "tenure": "FP64", "plan": "BYTES"}
    result = client.infer("loans", _inputs(rows, types))
    assert len(result.as_numpy("predict")) == len(rows)
    # The same NaN for a model whose training had no missing income is refused, by name.
    with pytest.raises(InferenceServerException) as refused:
        client.infer("churn", _inputs(rows, types))
    assert "income" in refused.value.message()
    assert refused.value.status() == "422"


def test_errors_reach_the_user_as_sentences(
    client: triton.InferenceServerClient,
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
) -> None:
    rows = training_data[2].head(2).reset_index(drop=True)
    types = {"age": "INT64", "income": "FP64", "tenure": "FP64", "plan": "BYTES"}
    with pytest.raises(InferenceServerException) as missing:
        client.infer("nope", _inputs(rows, types))
    assert "nope" in missing.value.message() and missing.value.status() == "404"
    wide = triton.InferInput("age", [2, 3], "INT64")
    wide.set_data_from_numpy(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(InferenceServerException) as bad_shape:
        client.infer("churn", [wide])
    assert "matrix but the model has 4 columns" in bad_shape.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("churn", _inputs(rows, types), outputs=[triton.InferRequestedOutput("x")])
    assert unknown.value.message().startswith("Unknown output 'x'")
