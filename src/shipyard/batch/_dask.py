"""``score_dask``: the same scoring as ``score_file``, on a Dask DataFrame (``map_partitions``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from shipyard.batch._predict import (
    ID_COLUMN,
    MODEL_COLUMN,
    PREDICTION_COLUMN,
    VERSION_COLUMN,
    check_columns,
    model_input,
    proba_columns,
    scored_columns,
)
from shipyard.batch._worker import worker_model
from shipyard.errors import MissingDependency
from shipyard.packaging import Archive, LoadedModel

if TYPE_CHECKING:
    import dask.dataframe as dd


def score_dask(loaded: LoadedModel, df: dd.DataFrame) -> dd.DataFrame:
    """``df`` with the columns ``score_file`` writes, computed by the Dask workers.

    The verified archive is one task of the graph, so each worker receives it once; each
    worker re-checks its members' checksums and loads the model once. The output's types are
    declared (``meta``), not inferred from a first partition: the input's, then
    ``prediction_id``, ``prediction``, ``proba_<class>``, ``model``, ``version``. Needs the
    ``dask`` extra (``pip install 'shipyard[dask]'``).

    >>> import dask.dataframe as dd
    >>> scored = score_dask(client.load("churn@production"), dd.read_parquet("in/"))
    ... # doctest: +SKIP
    """
    try:
        from dask import delayed
    except ImportError as exc:  # pragma: no cover - the tests install the extra
        raise MissingDependency(
            "The Dask engine needs dask: pip install 'shipyard[dask]'."
        ) from exc
    check_columns(loaded, list(df.columns), source="The Dask DataFrame")
    added = added_dtypes(loaded)
    meta = df._meta.assign(**{name: pd.Series(dtype=t) for name, t in added.items()})
    # One named task holds the archive: every partition depends on it, none embeds a copy.
    shipped = delayed(loaded.archive, name=f"shipyard-archive-{loaded.archive.digest}")
    return df.map_partitions(_score_partition, shipped, added, meta=meta)


def added_dtypes(loaded: LoadedModel) -> dict[str, Any]:
    """The pandas type of each column scoring adds, in ``output_columns`` order."""
    return {
        ID_COLUMN: "str",
        PREDICTION_COLUMN: _prediction_dtype(loaded),
        **dict.fromkeys(proba_columns(loaded), "float64"),
        MODEL_COLUMN: "str",
        VERSION_COLUMN: "int64",
    }


def _score_partition(frame: pd.DataFrame, archive: Archive, added: dict[str, Any]) -> pd.DataFrame:
    """Runs on a Dask worker: one partition and its scores, typed as declared."""
    if frame.empty:  # a model cannot predict zero rows; the partition keeps its columns
        return frame.assign(**{name: pd.Series(dtype=t) for name, t in added.items()})
    loaded = worker_model(archive)
    X = model_input(loaded, frame, rows="Rows of a Dask partition")
    scored = pd.DataFrame(scored_columns(loaded, X), index=frame.index).astype(added)
    return pd.concat([frame, scored], axis=1)


def arrow_schema(frame: pd.DataFrame) -> pa.Schema:
    """The Arrow schema every written part shares, from the scored frame's declared types.
    Without pandas metadata, like ``score_file``'s output: readers pick their own types for
    text rather than Dask's (``string[pyarrow]``)."""
    return pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata()


def _prediction_dtype(loaded: LoadedModel) -> Any:
    if loaded.manifest.task != "classification":
        return "float64"
    classes = loaded.classes or []
    if classes and all(isinstance(c, bool | np.bool_) for c in classes):
        return "bool"
    if classes and all(
        isinstance(c, int | np.integer) and not isinstance(c, bool) for c in classes
    ):
        return "int64"
    if classes and all(isinstance(c, float | np.floating) for c in classes):
        return "float64"
    return "str"
