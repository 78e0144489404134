"""``PredictionLog``: the one object a process opens to write its prediction log.

It ties three parts together and does none of their work: the WAL writer (``_writer``:
appends, fsync, rotation), compaction (``_compactor.Compaction``: closed segments into
Parquet, in a thread or a compactor process) and the readers (``_reader``, ``_feedback``).

>>> log = PredictionLog(tmp / "predlog").open()                     # doctest: +SKIP
>>> log.append([{"prediction_id": "3b0...", "model": "churn", "version": 3,
...              "arm": "production", "inputs": {"age": 41}, "prediction": 1,
...              "proba": {"0": 0.2, "1": 0.8}, "latency_ms": 0.4}])  # doctest: +SKIP
>>> log.query("SELECT count(*) AS n FROM predictions", model="churn")  # doctest: +SKIP

The WAL stays in ``root`` on local disk; with ``store_url`` the Parquet goes to an object
store (``PredictionLog(root, store_url="s3://bucket/predlog")``, see ``_location``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.predlog._compactor import Compaction
from shipyard.predlog._feedback import FeedbackResult, record_feedback
from shipyard.predlog._location import (
    Location,
    open_location,
    read_store_file,
    write_store_file,
)
from shipyard.predlog._reader import query
from shipyard.predlog._sink import Answers
from shipyard.predlog._writer import PredictionRecord, WalWriter, to_epoch

#: Where compaction runs: in a thread of the writing process, or in a compactor process.
Compactor = Literal["thread", "process"]


class PredictionLog:
    """Durable, batched log of predictions, rejections and ground-truth labels.

    Parameters
    ----------
    root
        Folder of the log (``wal/``, ``predictions/``, ``feedback/`` are made inside).
    fsync_interval
        Seconds between background fsyncs of the open segment (the power-loss window);
        ``0`` syncs inside every ``append``.
    rotate_bytes, rotate_seconds
        A segment is closed and compacted to Parquet once it holds this many bytes, or once
        its first record is this old. Larger segments mean fewer, larger Parquet files.
    on_write_error
        When the disk refuses a write (full, read-only): ``"raise"`` (``StoreUnavailable``
        from ``append``: the server refuses the request, ``--on-log-full refuse``) or
        ``"drop"`` (count the records in ``dropped`` and keep serving, ``--on-log-full
        answer``). Either way nothing of the failed write stays in the WAL, the failure is
        logged (see ``_writer.WriteFailures``), and writing resumes once space is back.
    compactor
        ``"thread"``: compact in a background thread of this process. ``"process"``: hand
        sealed segments to a compactor process, so that the Parquet conversion never holds
        this process's GIL (what ``shipyard serve`` does, see ``ServeSettings.compactor``);
        falls back to the thread if the process cannot start or dies.
    store_url
        Where the Parquet (``predictions/``, ``feedback/``, ``ids/``) goes, e.g.
        ``"s3://bucket/predlog"``; the WAL stays in ``root``. ``None``: beside the WAL, or
        where ``root/store.json`` says (written when a log opens with a URL, so that
        readers given ``root`` find it). While the store is down the records wait in the
        WAL and compaction retries; requests are not held.
    storage_options
        fsspec options of the object store (endpoint, keys...); the keys are never written
        to ``store.json``: readers take them from their own settings or environment.

    Open it once per process (after forking workers), and close it on shutdown::

        with PredictionLog("/var/lib/shipyard/predlog") as log:   # open() ... close()
            log.append(records)
    """

    def __init__(
        self,
        root: str | Path,
        *,
        fsync_interval: float = 0.05,
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_seconds: float = 5.0,
        on_write_error: Literal["raise", "drop"] = "raise",
        compactor: Compactor = "thread",
        store_url: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.root = root
        self.fsync_interval = fsync_interval
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.on_write_error = on_write_error
        self.compactor = compactor
        self.store_url = store_url
        self.storage_options = storage_options
        self._location: Location | None = None
        self._wal: WalWriter | None = None
        self._compaction: Compaction | None = None

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> Self:
        """Create the folders, replay segments of dead processes, and start the threads."""
        if self._wal is not None and self._wal.is_open:
            return self
        if self.compactor not in ("thread", "process"):
            raise InvalidInput(
                "The prediction log's compactor must be 'thread' or 'process'. "
                f"Got {self.compactor!r} instead."
            )
        root = Path(self.root).expanduser().resolve()
        self._location = loc = self._open_location(root)
        if self._wal is None:  # kept across close() and open(): its counts and layouts
            self._wal = WalWriter(
                root,
                fsync_interval=self.fsync_interval,
                rotate_bytes=self.rotate_bytes,
                rotate_seconds=self.rotate_seconds,
                on_write_error=self.on_write_error,
            )
        wal = self._wal
        self._compaction = Compaction(
            loc, wal, process=self.compactor == "process", storage_options=self.storage_options
        )
        self._compaction.open()
        wal.open()
        # The request path calls the writer's own methods: a method here that called them
        # would add a Python call to every request the server logs (see bench/README.md).
        self.append = wal.append  # type: ignore[method-assign]
        self.append_answers = wal.append_answers  # type: ignore[method-assign]
        return self

    def close(self) -> None:
        """Stop the threads and compact everything to Parquet (idempotent)."""
        wal, compaction = self._wal, self._compaction
        if wal is None or compaction is None or not wal.is_open:
            return
        compaction.stop()
        wal.close()  # appends from now on raise
        compaction.close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def replay(self) -> int:
        """Compact every segment whose process died; returns how many were replayed."""
        return self._open_compaction().replay()

    def flush(self) -> None:
        """Close the open segments and compact every closed one to Parquet now."""
        self._open_compaction().flush()

    # -- the request path (the open writer's methods replace these two) ---------------------

    def append(self, records: Iterable[PredictionRecord | Mapping[str, Any]]) -> None:
        """Log records durably against a process crash, before the response is sent.

        Costs a few microseconds per record (one orjson encode each, one write per call).
        Raises ``InvalidInput`` for a record without model or prediction id. When the disk
        refuses the write (full, read-only) it raises ``StoreUnavailable`` so the caller fails
        the request (a prediction it cannot log is one it cannot account for); with
        ``on_write_error="drop"`` it counts the records in ``dropped`` and returns instead.
        """
        raise _not_open()

    def append_answers(self, answers: Answers) -> None:
        """Log one answered request; the same durability and errors as ``append``.

        Cheaper than ``append`` on the request path: each row is one orjson encode of a list
        (no record dicts), and the column and class names are written once per segment, in a
        layout line (see ``_decode``).
        """
        raise _not_open()

    # -- metrics ------------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Records appended by this process and not yet in Parquet (a Prometheus gauge)."""
        return 0 if self._wal is None else self._wal.queue_depth

    @property
    def lag_seconds(self) -> float:
        """Age of the oldest record of this process not yet in Parquet (0 when none)."""
        return 0.0 if self._wal is None else self._wal.lag_seconds

    @property
    def dropped(self) -> int:
        """Records lost because the disk refused them (only with ``on_write_error="drop"``)."""
        return 0 if self._wal is None else self._wal.dropped

    @property
    def writable(self) -> bool:
        """False from a write the disk refused until the next one that works."""
        return True if self._wal is None else self._wal.writable

    @property
    def backlog_bytes(self) -> int:
        """Bytes of this process's WAL segments not yet in Parquet."""
        return 0 if self._wal is None else self._wal.backlog_bytes

    @property
    def compactor_pid(self) -> int | None:
        """The pid of the compactor process (None when compaction runs in a thread)."""
        return None if self._compaction is None else self._compaction.pid

    # -- feedback and queries -----------------------------------------------------------------

    def record_feedback(
        self, model: str, prediction_id: str, label: Any, *, ts: float | datetime | None = None
    ) -> FeedbackResult:
        """Record the ground truth of one logged prediction of ``model``.

        >>> log.record_feedback("churn", "3b0...", 1)   # doctest: +SKIP
        FeedbackResult(matched=1, unknown=0, unknown_ids=[])
        """
        frame = pd.DataFrame(
            {"prediction_id": [prediction_id], "label": pd.Series([label], dtype=object)}
        )
        if ts is not None:
            frame["ts"] = [to_epoch(ts)]
        return self.record_feedback_frame(model, frame)

    def record_feedback_frame(self, model: str, frame: pd.DataFrame) -> FeedbackResult:
        """Record labels from a frame with ``prediction_id``, ``label`` and optional ``ts``.

        Labels of unknown prediction ids are not stored; the result counts and lists them.

        >>> log.record_feedback_frame("churn", pd.read_parquet("labels.parquet"))  # doctest: +SKIP
        FeedbackResult(matched=980, unknown=20, unknown_ids=[...])
        """
        if self._wal is None or not self._wal.is_open:
            raise _not_open()
        return record_feedback(self._wal, model, frame, self._location)

    def query(self, sql: str, *, model: str) -> pd.DataFrame:
        """Run DuckDB SQL over ``model``'s views ``predictions`` and ``feedback``.

        Sees every record appended so far: Parquet parts plus records still in the WAL.
        Works without ``open()`` too (e.g. from the CLI while a server writes the log).

        >>> log.query("SELECT p.prediction, f.label FROM predictions p "
        ...           "JOIN feedback f USING (prediction_id)", model="churn")  # doctest: +SKIP
        """
        loc = self._location or open_location(self.root, self.store_url, self.storage_options)
        return query(loc, sql, model=model)

    def _open_location(self, root: Path) -> Location:
        """Where the Parquet goes; with a URL, recorded in ``store.json`` for readers."""
        saved = read_store_file(root)
        url = self.store_url
        if url is not None:
            url = url.rstrip("/")
            if saved is not None and saved[0] != url:
                raise InvalidInput(
                    f"The prediction log '{root}' keeps its Parquet at '{saved[0]}' (its "
                    f"store.json), not at '{url}': give --log-store {saved[0]}, or a new "
                    "--log folder for the new store."
                )
            if saved is None and _has_local_parquet(root):
                raise InvalidInput(
                    f"The prediction log '{root}' has Parquet on local disk already: it would "
                    f"no longer be read once its Parquet goes to '{url}'. Give a new --log "
                    "folder, or copy predictions/, feedback/ and ids/ to the store first."
                )
        # A new store is checked now (a missing bucket, refused keys: the server does not
        # start); a known one is not, so that a server restarted while it is down still
        # answers, logging to the WAL until it is back.
        loc = open_location(root, url, self.storage_options, check=saved is None)
        if url is not None and saved is None:
            write_store_file(root, url, self.storage_options)
        return loc

    def _open_compaction(self) -> Compaction:
        if self._compaction is None:  # never opened
            raise _not_open()
        return self._compaction


def _has_local_parquet(root: Path) -> bool:
    for sub in ("predictions", "feedback", "ids"):
        try:
            with os.scandir(root / sub) as entries:
                if any(True for _ in entries):
                    return True
        except FileNotFoundError:
            continue
    return False


def _not_open() -> InvalidInput:
    return InvalidInput("The prediction log is not open: call open() first.")
