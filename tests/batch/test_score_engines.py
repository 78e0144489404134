"""Every engine follows one contract: ``score`` gives the pandas engine's predictions, row for
row, on a real Spark standalone cluster (two workers) and a real Dask cluster (two worker
processes); bad input is refused with one sentence and leaves no output behind."""

from __future__ import annotations

from pathlib import Path

import dask.config
import numpy as np
import pandas as pd
import pytest

from shipyard import Client
from shipyard.batch import output_columns, score_file
from shipyard.cli import run_cli
from shipyard.engines import ENGINES, DaskEngine, Engine, PandasEngine, SparkEngine, engine_for
from shipyard.errors import IntegrityError, InvalidInput, SchemaViolation

pytestmark = [
    pytest.mark.slow,
    # PySpark 4.x warns on every pandas conversion that it "does not yet fully support pandas
    # >= 3.0.0"; the equality tests tell whether the path works.
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

TrainingData = tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "spark":
        request.getfixturevalue("spark")  # the session on the standalone cluster is active
        return SparkEngine()
    if request.param == "dask":
        return DaskEngine(scheduler=request.getfixturevalue("dask_scheduler"))
    return PandasEngine(chunk_rows=50)


def _read_back(path: Path) -> pd.DataFrame:
    """A file, or a folder of part files (Spark's and Dask's output), as one table."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def test_every_engine_follows_the_contract(engine: Engine) -> None:
    assert isinstance(engine, Engine) and engine.name in ENGINES
    assert type(engine_for(engine.name)) is type(engine)
    with pytest.raises(InvalidInput, match="Unknown engine 'ray': use pandas, spark or dask"):
        engine_for("ray")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_every_engine_scores_like_pandas(
    engine: Engine, alice: Client, training_data: TrainingData, tmp_path: Path, fmt: str
) -> None:
    _, _, X_eval, _ = training_data
    loaded = alice.load("churn:1")
    rows = X_eval.reset_index(drop=True).assign(row_id=np.arange(len(X_eval)))
    src = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        # Three row groups, so the cluster engines see several partitions.
        rows.to_parquet(src, index=False, row_group_size=50)
    else:
        rows.to_csv(src, index=False)
    reference = tmp_path / f"reference.{fmt}"
    score_file(loaded, src, reference, chunk_rows=40)
    by_pandas = _read_back(reference).sort_values("row_id", ignore_index=True)

    dst = tmp_path / f"out.{fmt}"
    summary = engine.score(loaded, src, dst)
    scored = _read_back(dst).sort_values("row_id", ignore_index=True)

    assert summary.rows == len(rows) and summary.chunks >= 1
    if dst.is_dir():  # the cluster engines: one part file per part counted
        assert summary.chunks == len(list(dst.glob("part-*")))
    assert list(scored.columns) == [*rows.columns, *output_columns(loaded)]
    pd.testing.assert_frame_equal(
        scored.drop(columns="prediction_id"), by_pandas.drop(columns="prediction_id")
    )
    assert scored["prediction_id"].str.fullmatch("[0-9a-f]{32}").all()
    assert scored["prediction_id"].is_unique
    assert not set(scored["prediction_id"]) & set(by_pandas["prediction_id"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_every_engine_refuses_bad_input_without_output(
    engine: Engine, alice: Client, training_data: TrainingData, tmp_path: Path
) -> None:
    _, _, X_eval, _ = training_data
    loaded = alice.load("churn:1")
    src = tmp_path / "in.parquet"
    X_eval.drop(columns="plan").to_parquet(src)
    with pytest.raises(InvalidInput, match=r"lacks the column.*'plan'"):
        engine.score(loaded, src, tmp_path / "out.parquet")
    with pytest.raises(InvalidInput, match="No such file"):
        engine.score(loaded, tmp_path / "none.parquet", tmp_path / "out.parquet")
    # A value the schema refuses, in the last rows only: found on a worker, mid-job.
    bad = X_eval.reset_index(drop=True).astype({"age": str})
    bad.loc[len(bad) - 1, "age"] = "forty"
    bad.to_parquet(src, row_group_size=50)
    # Spark reports a worker's error as its own exception: the engine says it in a sentence.
    with pytest.raises(SchemaViolation if engine.name != "spark" else InvalidInput):
        engine.score(loaded, src, tmp_path / "out.parquet")
    assert {p.name for p in tmp_path.iterdir()} == {"in.parquet", "home"}


def test_a_dask_worker_refuses_an_archive_altered_on_the_way(alice: Client) -> None:
    from dataclasses import replace

    from shipyard.batch._worker import worker_model

    archive = alice.load("churn:1").archive
    member = next(iter(archive.members))
    altered = replace(archive, members={**archive.members, member: b"altered"})
    with pytest.raises(IntegrityError, match=f"'{member}' of churn v1 fails its checksum"):
        worker_model(altered)


def test_an_unreachable_dask_scheduler_is_one_sentence(
    alice: Client, training_data: TrainingData, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, X_eval, _ = training_data
    src = tmp_path / "in.parquet"
    X_eval.to_parquet(src)
    args = ["score", "churn:1", str(src), str(tmp_path / "out.parquet"), "--engine", "dask"]
    # Nothing listens on port 9: dask retries the refused connection until its connect
    # timeout (Shipyard's 10 s unless dask's own is configured, as here).
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        assert run_cli([*args, "--dask-scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "No Dask scheduler answers at 'tcp://127.0.0.1:9'" in err and "Traceback" not in err
    assert not (tmp_path / "out.parquet").exists()


def test_the_cli_scores_on_a_dask_scheduler_or_a_local_cluster(
    dask_scheduler: str,
    alice: Client,
    training_data: TrainingData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, X_eval, _ = training_data
    src = tmp_path / "in.parquet"
    X_eval.to_parquet(src)
    monkeypatch.setenv("SHIPYARD_DASK_SCHEDULER", dask_scheduler)
    args = ["score", "churn:1", str(src)]
    assert run_cli([*args, str(tmp_path / "a.parquet"), "--engine", "dask"]) == 0
    assert "Scored 150 rows in 1 part(s)" in capsys.readouterr().out
    assert len(pd.read_parquet(tmp_path / "a.parquet")) == len(X_eval)
    monkeypatch.delenv("SHIPYARD_DASK_SCHEDULER")  # a LocalCluster for this command
    assert run_cli([*args, str(tmp_path / "b.csv"), "--engine", "dask"]) == 0
    assert len(_read_back(tmp_path / "b.csv")) == len(X_eval)
