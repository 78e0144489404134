"""The one contract every engine follows: score a file, count a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from shipyard.batch import ScoreSummary
from shipyard.dataset import Profile, Schema
from shipyard.monitoring import DriftAccumulator, Progress
from shipyard.packaging import LoadedModel


@dataclass(frozen=True)
class LoggedWindow:
    """The accepted predictions of one version in ``[start, end)`` (UTC) in the prediction
    log under ``root``: the model's inputs, or with ``outputs`` its outputs."""

    root: Path
    model: str
    version: int
    start: datetime
    end: datetime
    outputs: bool = False

    def as_tuple(self) -> tuple[Path, str, int, datetime, datetime, bool]:
        return (self.root, self.model, self.version, self.start, self.end, self.outputs)


@runtime_checkable
class Engine(Protocol):
    """Where ``shipyard score`` and ``shipyard monitor run`` do their work.

    Two methods, each with one result whatever the engine: ``score`` writes the input's
    columns plus ``prediction_id``, ``prediction``, ``proba_<class>``, ``model``, ``version``
    (the pandas engine one file, cluster engines a folder of part files: each is read back as
    one table); ``count`` returns the drift accumulator whose counts the pandas engine would
    compute on the same rows, so every drift score, flag and quality figure agrees.
    ``progress(description, total)`` is a context whose value is called with the rows (or
    cluster jobs) done; an engine raises ``InvalidInput`` for input it cannot read and
    ``MissingDependency`` when its library is not installed.

    >>> engine = engine_for("dask", dask_scheduler="tcp://10.0.0.5:8786")  # doctest: +SKIP
    >>> engine.score(client.load("churn@production"), Path("in.parquet"), Path("out.parquet"))
    ... # doctest: +SKIP
    ScoreSummary(rows=10000000, chunks=80, seconds=41.2)
    """

    name: str

    def score(
        self, loaded: LoadedModel, src: Path, dst: Path, *, progress: Progress | None = None
    ) -> ScoreSummary:
        """Score every row of ``src`` (Parquet or CSV) into ``dst`` (``.parquet``/``.csv``)."""
        ...

    def count(
        self,
        reference: Profile,
        source: Path | LoggedWindow,
        *,
        schema: Schema | None = None,
        progress: Progress | None = None,
    ) -> DriftAccumulator:
        """Count a file (``--current``) or a logged window against ``reference``."""
        ...
