"""Batch scoring: a registered model over a Parquet/CSV file (pandas), a Spark or a Dask
DataFrame.

>>> from shipyard.batch import score_file
>>> score_file(client.load("churn@production"), Path("in.parquet"), Path("out.parquet"))
... # doctest: +SKIP
ScoreSummary(rows=1000000, chunks=20, seconds=9.1)

Imports packaging, dataset and store. ``table_format`` and ``parquet_rows`` tell a file's
format and row count (``shipyard score`` uses them for its checks and progress bar).
"""

from shipyard.batch._dask import arrow_schema, score_dask
from shipyard.batch._file import ScoreSummary, parquet_rows, score_file, table_format
from shipyard.batch._predict import output_columns
from shipyard.batch._spark import score_spark

__all__ = [
    "ScoreSummary",
    "arrow_schema",
    "output_columns",
    "parquet_rows",
    "score_dask",
    "score_file",
    "score_spark",
    "table_format",
]
