"""Batch scoring: a registered model over a Parquet/CSV file (pandas) or a Spark DataFrame.

>>> from shipyard.batch import score_file
>>> score_file(client.load("churn@production"), Path("in.parquet"), Path("out.parquet"))
... # doctest: +SKIP
ScoreSummary(rows=1000000, chunks=20, seconds=9.1)
"""

from shipyard.batch._file import ScoreSummary, score_file
from shipyard.batch._predict import output_columns
from shipyard.batch._spark import score_spark

__all__ = ["ScoreSummary", "output_columns", "score_file", "score_spark"]
