"""The prediction log: every prediction, refusal and ground-truth label, durable off the
request path, in write-ahead segments compacted to Hive-partitioned Parquet.

One writer per process, ``PredictionLog`` (the server appends to it through the
``PredictionSink`` interface, one ``Answers`` per request); many readers, in other processes
too, that need no open log: ``read_window`` (a model's Parquet parts plus its records still in
the WAL, each once; monitoring's DuckDB and Spark windows), ``query`` (SQL, the CLI's
``shipyard predictions query``), ``join_feedback`` (predictions with their labels),
``labelled_rows`` (labels with their predictions' inputs, in the order they were recorded:
what online learners replay), ``expired_partitions`` and ``delete_partition`` (the day
partitions retention deletes) and ``find_prediction`` (one prediction by its id, with its
labels, through the prediction-id index of its day).

The WAL is always a local folder; the Parquet is beside it or on an object store
(``PredictionLog(root, store_url="s3://bucket/predlog")``, reached through
``shipyard.store.open_filesystem``; ``shipyard serve --log-store URL``). Readers given the
folder read the store it names (``root/store.json``); given the URL, the Parquet alone.

The prediction-id index (``ids/date=D/``: id, model, version and part file, sorted by id) is
written by compaction with each segment's parts; ``merge_id_indexes`` (the compactor, for
days before today, and ``shipyard gc``) merges each past day into one file, and
``merge_id_index(root, day)`` also indexes a day written before the index existed. A tool
that writes part files itself (a bench seeder, an import) writes each day's index with
``write_id_index(root, day, table)`` (or calls ``merge_id_index`` once the day's parts are
written, which reads their ids back).

Every answered request's rows carry its usage (``caller``, the API token's name; ``team``;
``compute_ms``; ``request_rows``): ``usage(root, since=..., by="team"|"token"|"model")`` sums
requests, rows, compute seconds and refusals from the log, so usage is as durable as the
log. ``log_space(root)`` is the disk the log takes (WAL backlog and Parquet).

A layer below serving and monitoring: it imports only ``shipyard.errors``,
``shipyard.names`` and ``shipyard.store`` (never serving, monitoring or the registry).

>>> from shipyard.predlog import PredictionLog, query
>>> with PredictionLog(tmp / "predlog") as log:                    # doctest: +SKIP
...     log.append([{"prediction_id": "3b0...", "model": "churn", "version": 3,
...                  "inputs": {"age": 41}, "prediction": 1}])
>>> query(tmp / "predlog", "SELECT count(*) AS n FROM predictions", model="churn")  # doctest: +SKIP
"""

from shipyard.predlog._feedback import FeedbackResult, LabelledRows, join_feedback, labelled_rows
from shipyard.predlog._idindex import merge_id_index, merge_id_indexes, write_id_index
from shipyard.predlog._log import PredictionLog
from shipyard.predlog._lookup import check_prediction_id, find_prediction, id_day
from shipyard.predlog._parquet import (
    Partition,
    delete_partition,
    expired_partitions,
    partitions_before,
)
from shipyard.predlog._reader import LogWindow, query, read_window
from shipyard.predlog._sink import Answers, NullSink, PredictionSink
from shipyard.predlog._space import LogSpace, log_space
from shipyard.predlog._usage import USAGE_BY, USAGE_FIGURES, logged_models, usage
from shipyard.predlog._wal import INVALID_MODEL
from shipyard.predlog._writer import PredictionRecord

__all__ = [
    "INVALID_MODEL",
    "USAGE_BY",
    "USAGE_FIGURES",
    "Answers",
    "FeedbackResult",
    "LabelledRows",
    "LogSpace",
    "LogWindow",
    "NullSink",
    "Partition",
    "PredictionLog",
    "PredictionRecord",
    "PredictionSink",
    "check_prediction_id",
    "delete_partition",
    "expired_partitions",
    "find_prediction",
    "id_day",
    "join_feedback",
    "labelled_rows",
    "log_space",
    "logged_models",
    "merge_id_index",
    "merge_id_indexes",
    "partitions_before",
    "query",
    "read_window",
    "usage",
    "write_id_index",
]
