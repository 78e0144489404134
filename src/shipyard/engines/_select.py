"""``engine_for``: an engine from its name, as ``--engine`` gives it."""

from __future__ import annotations

from shipyard.engines._contract import Engine
from shipyard.engines._dask import DaskEngine
from shipyard.engines._pandas import PandasEngine
from shipyard.engines._spark import SparkEngine
from shipyard.errors import InvalidInput

#: Every built-in engine by name, with its one-line description (``--engine``'s help).
ENGINES: dict[str, str] = {
    "pandas": "this process, streamed in chunks (bounded memory)",
    "spark": "the Spark session's cluster (spark-submit --master ...; local[*] by default)",
    "dask": "a Dask cluster: local worker processes, or --dask-scheduler ADDRESS",
}


def engine_for(name: str, *, dask_scheduler: str | None = None, chunk_rows: int = 50_000) -> Engine:
    """The engine called ``name`` (``pandas``, ``spark`` or ``dask``), configured.

    >>> engine_for("dask", dask_scheduler="tcp://10.0.0.5:8786")
    DaskEngine(scheduler='tcp://10.0.0.5:8786', n_workers=None)
    >>> engine_for("ray")
    Traceback (most recent call last):
    shipyard.errors.InvalidInput: Unknown engine 'ray': use pandas, spark or dask.
    """
    if name == "pandas":
        return PandasEngine(chunk_rows=chunk_rows)
    if name == "spark":
        return SparkEngine()
    if name == "dask":
        return DaskEngine(scheduler=dask_scheduler or None)
    raise InvalidInput(f"Unknown engine '{name}': use pandas, spark or dask.")
