"""The pandas engine: one process, streamed in chunks, memory bounded by the chunk."""

from __future__ import annotations

from pathlib import Path

from shipyard.batch import ScoreSummary, parquet_rows, score_file
from shipyard.dataset import Profile, Schema, file_chunks
from shipyard.engines._contract import LoggedWindow
from shipyard.engines._progress import display
from shipyard.monitoring import DriftAccumulator, Progress, chunk_rows, window_chunks
from shipyard.packaging import LoadedModel


class PandasEngine:
    """Streams the file or window through this process, ``chunk_rows`` rows at a time
    (scoring; counting sizes its chunks by the number of columns)."""

    name = "pandas"

    def __init__(self, *, chunk_rows: int = 50_000) -> None:
        self.chunk_rows = chunk_rows

    def score(
        self, loaded: LoadedModel, src: Path, dst: Path, *, progress: Progress | None = None
    ) -> ScoreSummary:
        with display(progress)(f"Scoring {src}", parquet_rows(src)) as advance:
            return score_file(loaded, src, dst, chunk_rows=self.chunk_rows, progress=advance)

    def count(
        self,
        reference: Profile,
        source: Path | LoggedWindow,
        *,
        schema: Schema | None = None,
        progress: Progress | None = None,
    ) -> DriftAccumulator:
        rows = chunk_rows(len(reference.columns))
        total: int | None
        if isinstance(source, LoggedWindow):
            root, model, version, start, end, outputs = source.as_tuple()
            total, chunks = window_chunks(
                root, model, version, start, end, outputs=outputs, rows=rows
            )
            description = f"Checking log:{start:%Y-%m-%dT%H:%M}..{end:%Y-%m-%dT%H:%M}"
        else:
            total, chunks = file_chunks(source, rows=rows)
            description = f"Checking {source}"
        accumulator = DriftAccumulator(reference, schema=schema)
        with display(progress)(description, total) as advance:
            for chunk in chunks:
                accumulator.update(chunk)
                advance(len(chunk))
        return accumulator

    def __repr__(self) -> str:
        return f"PandasEngine(chunk_rows={self.chunk_rows})"
