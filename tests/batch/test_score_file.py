"""``score_file``: chunked scoring equals one whole-frame predict; bad input leaves no file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard import Client
from shipyard.batch import ScoreSummary, output_columns, score_file
from shipyard.errors import InvalidInput, SchemaViolation
from shipyard.packaging import LoadedModel

TrainingData = tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]


@pytest.fixture
def loaded(
    client_for: Callable[[str], Client], fitted_pipeline: Any, training_data: TrainingData
) -> LoadedModel:
    X, y, _, _ = training_data
    alice = client_for("alice")
    alice.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    return alice.load("churn:1")


def _rows(training_data: TrainingData) -> pd.DataFrame:
    _, _, X_eval, _ = training_data
    frame = X_eval.reset_index(drop=True)
    return frame.assign(row_id=np.arange(len(frame)))  # an extra column passes through


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A folder of its own for the files (``tmp_path`` also holds the store)."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


@pytest.mark.parametrize("src_suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("dst_suffix", [".parquet", ".csv"])
def test_chunks_give_the_whole_frame_predictions(
    loaded: LoadedModel, training_data: TrainingData, data: Path, src_suffix: str, dst_suffix: str
) -> None:
    rows = _rows(training_data)
    src, dst = data / f"in{src_suffix}", data / f"out{dst_suffix}"
    if src_suffix == ".parquet":
        rows.to_parquet(src, index=False)
    else:
        rows.to_csv(src, index=False)
    seen: list[int] = []
    summary = score_file(loaded, src, dst, chunk_rows=40, progress=seen.append)

    assert isinstance(summary, ScoreSummary) and summary.seconds > 0
    assert summary.rows == len(rows) == sum(seen) and summary.chunks == 4 == len(seen)
    assert max(seen) <= 40  # bounded memory: no chunk is larger than asked
    out = _read(dst)
    whole = _read(src)
    assert out.columns.tolist() == [*rows.columns, *output_columns(loaded)]
    assert output_columns(loaded) == [
        "prediction_id",
        "prediction",
        "proba_churn",
        "proba_stay",
        "model",
        "version",
    ]
    assert out["row_id"].tolist() == rows["row_id"].tolist()
    assert out["prediction"].tolist() == loaded.predict(whole[loaded.schema.names()]).tolist()
    proba = loaded.predict_proba(whole[loaded.schema.names()])
    assert proba is not None
    # Parquet keeps doubles exactly; CSV rounds them to its shortest round-trip text.
    np.testing.assert_array_equal(out[["proba_churn", "proba_stay"]].to_numpy(), proba)
    ids = out["prediction_id"].astype(str)
    assert ids.str.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}").all() and ids.is_unique
    assert set(out["model"]) == {"churn"} and set(out["version"]) == {1}
    assert _listing(data) == sorted([src.name, dst.name])  # no temporary file left


def test_a_missing_column_is_named_before_anything_is_written(
    loaded: LoadedModel, training_data: TrainingData, data: Path
) -> None:
    src, dst = data / "in.parquet", data / "out.parquet"
    _rows(training_data).drop(columns=["plan"]).to_parquet(src)
    with pytest.raises(InvalidInput, match=r"lacks the column.*'plan'"):
        score_file(loaded, src, dst)
    assert _listing(data) == ["in.parquet"]


def test_a_bad_chunk_names_fields_and_rows_and_leaves_no_partial_output(
    loaded: LoadedModel, training_data: TrainingData, data: Path
) -> None:
    rows = _rows(training_data)
    rows["age"] = rows["age"].astype(object)
    rows.loc[130, "age"] = "old"  # in the fourth chunk of 40: rows 121-150
    src, dst = data / "in.csv", data / "out.parquet"
    rows.to_csv(src, index=False)
    with pytest.raises(SchemaViolation, match=r"Rows 121-150 of .*'age'") as info:
        score_file(loaded, src, dst, chunk_rows=40)
    assert info.value.details["rows"].startswith("Rows 121-150")
    assert _listing(data) == ["in.csv"]


@pytest.mark.parametrize(
    ("src_name", "dst_name", "message"),
    [
        ("absent.parquet", "out.parquet", "No such file"),
        ("in.json", "out.parquet", "neither Parquet"),
        ("in.parquet", "out.xlsx", "neither Parquet"),
        ("in.parquet", "missing/out.parquet", r"folder of .* does not exist"),
        ("in.parquet", "in.parquet", "is the input file"),
    ],
)
def test_bad_paths_are_refused_clearly(
    loaded: LoadedModel,
    training_data: TrainingData,
    data: Path,
    src_name: str,
    dst_name: str,
    message: str,
) -> None:
    _rows(training_data).to_parquet(data / "in.parquet")
    (data / "in.json").write_text("{}")
    before = _listing(data)
    with pytest.raises(InvalidInput, match=message):
        score_file(loaded, data / src_name, data / dst_name)
    assert _listing(data) == before


def test_an_empty_file_is_refused(
    loaded: LoadedModel, training_data: TrainingData, data: Path
) -> None:
    src, dst = data / "in.parquet", data / "out.csv"
    _rows(training_data).iloc[:0].to_parquet(src)
    with pytest.raises(InvalidInput, match="no rows"):
        score_file(loaded, src, dst)
    assert not dst.exists()
