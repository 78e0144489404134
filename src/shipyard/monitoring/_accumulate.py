"""Stream the current window, chunk by chunk, into one bounded state per reference column.

>>> import pandas as pd
>>> from shipyard.dataset import profile_frame
>>> reference = profile_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}))
>>> acc = DriftAccumulator(reference)
>>> acc.update(pd.DataFrame({"x": [2.0, None]})).update(pd.DataFrame({"x": [9.0], "c": ["z"]}))
DriftAccumulator(columns=2, rows=3)
>>> acc.states["c"].missing, acc.states["c"].absent, acc.states["x"].above
(2, 2, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Self, TypeAlias

import pandas as pd
import pyarrow as pa

from shipyard.dataset import CategoricalProfile, ColumnType, Profile, Schema, check_frame
from shipyard.errors import InvalidInput
from shipyard.monitoring._state import CategoricalState, ColumnState, NumericState

Chunk: TypeAlias = pd.DataFrame | pa.RecordBatch | pa.Table

#: ``progress(description, total)``: a context whose value advances a progress display by n
#: (rows, or Spark jobs); ``total`` is None when unknown. The CLI draws a bar with it.
Progress: TypeAlias = Callable[[str, int | None], AbstractContextManager[Callable[[int], None]]]

#: Cells (rows x columns) per chunk that ``chunk_rows`` aims at: about 40 MB as float64.
CHUNK_CELLS = 5_000_000


def chunk_rows(n_columns: int, *, most: int = 50_000, least: int = 1_000) -> int:
    """Rows per chunk so a chunk of ``n_columns`` columns stays near ``CHUNK_CELLS`` cells:
    memory stays bounded however wide the data is. (Per-chunk work is a few numpy calls per
    column, so chunks of 50k rows cost no more time than larger ones.)

    >>> chunk_rows(20), chunk_rows(1000), chunk_rows(100_000)
    (50000, 5000, 1000)
    """
    return max(least, min(most, CHUNK_CELLS // max(n_columns, 1)))


class DriftAccumulator:
    """Counts the current window for every column of ``reference``; memory does not grow
    with rows. ``schema`` (the model's input schema) says which values are type violations;
    without it, numeric columns count values that are not numbers.

    A column missing from a chunk counts as missing values (and ``absent``); columns not in
    the reference are listed in ``unexpected_columns`` and otherwise ignored.
    """

    def __init__(self, reference: Profile, *, schema: Schema | None = None) -> None:
        self.reference = reference
        self.schema = schema
        self.n_rows = 0
        self.unexpected_columns: list[str] = []
        self._states: dict[str, ColumnState] | None = None

    @property
    def states(self) -> dict[str, ColumnState]:
        """The state of each reference column, in the reference's order."""
        if self._states is None:
            self._states = {
                name: CategoricalState.empty(column)
                if isinstance(column, CategoricalProfile)
                else NumericState.empty(column)
                for name, column in self.reference.columns.items()
            }
        return self._states

    def update(self, chunk: Chunk) -> Self:
        """Count one chunk (a pandas DataFrame or a pyarrow RecordBatch or Table)."""
        if isinstance(chunk, pa.RecordBatch | pa.Table):
            chunk = chunk.to_pandas()
        frame = check_frame(chunk, "DriftAccumulator.update")
        dtypes = self._dtypes()
        present = set(frame.columns)
        for name, state in self.states.items():
            if name in present:
                state.update(frame[name], dtypes.get(name))
            else:
                state.add_absent(len(frame))
        for name in frame.columns:
            if name not in self.reference.columns and name not in self.unexpected_columns:
                self.unexpected_columns.append(name)
        self.n_rows += len(frame)
        return self

    def merge(self, other: DriftAccumulator) -> Self:
        """Add the counts of ``other``, an accumulator of the same reference (e.g. another
        partition of the window); the result does not depend on how rows were split."""
        if other.reference is not self.reference and other.reference != self.reference:
            raise InvalidInput("Cannot merge accumulators of different reference profiles.")
        for name, state in self.states.items():
            state.merge(other.states[name])  # type: ignore[arg-type]
        for name in other.unexpected_columns:
            if name not in self.unexpected_columns:
                self.unexpected_columns.append(name)
        self.n_rows += other.n_rows
        return self

    def _dtypes(self) -> dict[str, ColumnType]:
        if self.schema is None:
            return {}
        return {column.name: column.dtype for column in self.schema.columns}

    def __repr__(self) -> str:
        return f"DriftAccumulator(columns={len(self.reference.columns)}, rows={self.n_rows})"
