"""The durable prediction log: every prediction and rejection, off the request path.

``append`` (records as dicts) and ``append_answers`` (a server's answered request) encode
with orjson and write with one ``os.write`` to an ``O_APPEND`` write-ahead segment (see
``_predlog_wal``; the line shapes are in ``_predlog_decode``). Background threads fsync the
segment every ``fsync_interval`` seconds, rotate it by size or age, and compact closed
segments into Hive-partitioned Parquet (see ``_predlog_store``), or, with
``compactor="process"`` (what ``shipyard serve`` uses), seal them for a compactor process
(see ``_compactor``) so that the Parquet work never holds the server's GIL; ``open`` replays
segments left by a dead process. ``query`` runs DuckDB over the Parquet parts plus the
records still in the WAL.

Durability:

- process crash (``kill -9``, OOM kill, segfault): every record whose ``append`` returned is kept,
  exactly once. The bytes are in the kernel's page cache, which outlives the process.
- power loss or kernel crash: records older than ``fsync_interval`` are kept; with
  ``fsync_interval=0`` ``append`` returns only after ``fdatasync`` (every record kept, at
  the price of one disk flush per call, a few hundred microseconds to milliseconds).

>>> log = PredictionLog(tmp / "predlog").open()                     # doctest: +SKIP
>>> log.append([{"prediction_id": "3b0...", "model": "churn", "version": 3,
...              "arm": "production", "inputs": {"age": 41}, "prediction": 1,
...              "proba": {"0": 0.2, "1": 0.8}, "latency_ms": 0.4}])  # doctest: +SKIP
1
>>> log.query("SELECT count(*) AS n FROM predictions", model="churn")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypedDict

import duckdb
import orjson
import pandas as pd
import pyarrow as pa

from shipyard.errors import InvalidInput, StoreUnavailable
from shipyard.registry import check_name
from shipyard.serving._compactor import (
    CompactorProcess,
    compact_path,
    compact_segment,
    compact_unlocked,
)
from shipyard.serving._predlog_decode import add_partition_columns, concat, decode_segment
from shipyard.serving._predlog_feedback import check_feedback_frame, feedback_lines
from shipyard.serving._predlog_store import PartWriter, connect, list_parts
from shipyard.serving._predlog_wal import (
    FEEDBACK,
    PREDICTION,
    Layout,
    PartitionKey,
    Segment,
    list_segments,
    new_segment,
    parse_segment_name,
)
from shipyard.serving._sink import Answers

log = logging.getLogger(__name__)

_DUMPS = orjson.dumps
_OPTS = orjson.OPT_SERIALIZE_NUMPY
#: Model partition of rejected requests whose model name is not a valid name at all.
INVALID_MODEL = "_invalid"
#: Layouts (column and class names) remembered before the memory is cleared.
_MAX_LAYOUTS = 1024
#: Where compaction runs when the constructor does not say: "thread" or "process"
#: (``shipyard serve`` sets "process" for its workers).
COMPACTOR_ENV = "SHIPYARD_PREDLOG_COMPACTOR"


class PredictionRecord(TypedDict, total=False):
    """One row of the log, as given to :meth:`PredictionLog.append` (a plain dict at runtime).

    ``prediction_id`` and ``model`` are required for predictions; rejections get a fresh id
    when they have none. ``ts`` is epoch seconds or an aware datetime (default: now, UTC).
    """

    prediction_id: str
    ts: float | datetime
    model: str
    version: int | None
    arm: str
    inputs: Mapping[str, Any]
    prediction: Any
    proba: Mapping[str, float]
    latency_ms: float
    status: Literal["ok", "rejected"]
    reason: str


@dataclass(frozen=True)
class FeedbackResult:
    """What happened to a batch of labels: stored for ``matched`` ids, refused for unknown ones.

    ``unknown_ids`` lists up to 100 of the unknown ids, to show the user.
    """

    matched: int
    unknown: int
    unknown_ids: list[str] = field(default_factory=list)


def _jsonable(value: Any) -> Any:
    """Slow path for what orjson refuses: non-string keys (class labels 0/1), odd scalars."""
    if isinstance(value, Mapping):
        return {str(_jsonable(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars that orjson does not know
        return value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _encode(value: Any) -> bytes:
    """A record (dict) or an answer line (list) as JSON; the slow path for what orjson
    refuses."""
    try:
        return _DUMPS(value, option=_OPTS)
    except TypeError:
        return _DUMPS(_jsonable(value), option=_OPTS)


def _normalized(record: Mapping[str, Any]) -> dict[str, Any]:
    """The slow path of append: check the status, give rejections an id, make ts a float."""
    out = dict(record)
    status = out.get("status", "ok")
    if status == "rejected":
        out.setdefault("prediction_id", str(uuid.uuid4()))
    elif status != "ok":
        raise InvalidInput(f"A log record's status must be 'ok' or 'rejected'. Got {status!r}.")
    elif not isinstance(out.get("prediction_id"), str):
        raise KeyError("prediction_id")
    if "ts" in out:
        out["ts"] = _epoch(out["ts"])
    return out


def _epoch(ts: Any) -> float:
    if isinstance(ts, datetime):
        # Naive datetimes are taken as UTC: the log is in UTC throughout.
        return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
        return float(ts)
    raise InvalidInput(
        f"A log timestamp must be epoch seconds or a datetime. Got {type(ts).__name__} instead."
    )


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
        ``"raise"`` (``StoreUnavailable`` from ``append`` when the disk refuses a write) or
        ``"drop"`` (count the records in ``dropped`` and keep serving).
    compactor
        ``"thread"``: compact in a background thread of this process. ``"process"``: hand
        sealed segments to a compactor process (see ``_compactor``), so that the Parquet
        conversion never holds this process's GIL; falls back to the thread if the process
        cannot start or dies. Default: ``$SHIPYARD_PREDLOG_COMPACTOR``, else ``"thread"``.

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
        compactor: Literal["thread", "process"] | None = None,
    ) -> None:
        mode = compactor or os.environ.get(COMPACTOR_ENV) or "thread"
        if mode not in ("thread", "process"):
            raise InvalidInput(
                f"The prediction log's compactor must be 'thread' or 'process'. Got {mode!r} "
                f"(from the argument or ${COMPACTOR_ENV})."
            )
        self.root = root
        self.fsync_interval = fsync_interval
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.on_write_error = on_write_error
        self.compactor = mode
        self._process: CompactorProcess | None = None
        self._handed: list[Segment] = []  # sealed and given to the compactor process
        self._dropped = 0
        self._lock = threading.Lock()
        self._compact_lock = threading.Lock()
        self._keys: dict[tuple[str, int | None], PartitionKey] = {}
        self._layouts: dict[tuple[tuple[str, ...], tuple[str, ...] | None], Layout] = {}
        self._layout_ids = itertools.count()
        self._is_open = False
        self._active: dict[PartitionKey, Segment] = {}  # created on a key's first append
        self._new_names = False  # a segment was created since the WAL folder's last fsync
        self._closed: list[Segment] = []
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------------------------

    @property
    def _drop(self) -> bool:
        return self.on_write_error == "drop"

    @property
    def _root(self) -> Path:
        return Path(self.root).expanduser().resolve()

    def open(self) -> Self:
        """Create the folders, replay segments of dead processes, and start the threads."""
        if self._is_open:
            return self
        root = self._root
        for sub in ("wal", "predictions", "feedback"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._writer = PartWriter(root)
        self.replay()
        if self.compactor == "process":
            self._process = CompactorProcess.start(root)
        self._is_open = True
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._sync_loop, name="predlog-sync", daemon=True),
            threading.Thread(target=self._compact_loop, name="predlog-compact", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def replay(self) -> int:
        """Compact every segment whose process died; returns how many were replayed."""
        with self._compact_lock:
            return compact_unlocked(self._root, self._writer)

    def close(self) -> None:
        """Stop the threads and compact everything to Parquet (idempotent)."""
        if not self._is_open:
            return
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join()
        with self._lock:
            self._is_open = False  # appends from now on raise
        self.flush()
        if self._process is not None:
            self._process.stop()
            self._process = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the request path ---------------------------------------------------------------------

    def append(self, records: Iterable[PredictionRecord | Mapping[str, Any]]) -> None:
        """Log records durably against a process crash, before the response is sent.

        Costs a few microseconds per record (one orjson encode each, one write per call).
        Raises ``InvalidInput`` for a record without model or prediction id. When the disk
        refuses the write (full, read-only) it raises ``StoreUnavailable`` so the caller fails
        the request (a prediction it cannot log is one it cannot account for); with
        ``on_write_error="drop"`` it counts the records in ``dropped`` and returns instead.
        """
        # The line is the caller's record as orjson writes it (no copy: the fast path costs
        # one encode), with the append time spliced in front when the record has no "ts".
        stamp = b'{"ts":' + _DUMPS(time.time()) + b","
        keys = self._keys
        groups: dict[PartitionKey, list[bytes]] = {}
        for r in records:
            try:
                ident = (r["model"], r.get("version"))
                key = keys.get(ident) or self._key(ident, r)
                status = r.get("status")
                if (
                    (status is not None and status != "ok")
                    or "prediction_id" not in r
                    or ("ts" in r and r["ts"].__class__ is not float)
                ):
                    r = _normalized(r)
            except KeyError as exc:
                raise InvalidInput(
                    f"A log record needs {exc.args[0]!r}. Got the keys {sorted(r)} instead."
                ) from None
            encoded = _encode(r)
            if "ts" not in r:
                encoded = stamp + encoded[1:]
            lines = groups.get(key)
            if lines is None:
                lines = groups[key] = []
            lines.append(encoded)
        for key, lines in groups.items():
            lines.append(b"")  # a final newline after the join
            self._write(key, b"\n".join(lines), len(lines) - 1, drop_on_error=self._drop)

    def append_answers(self, answers: Answers) -> None:
        """Log one answered request; the same durability and errors as ``append``.

        Cheaper than ``append`` on the request path: each row is one orjson encode of a list
        (no record dicts), and the column and class names are written once per segment, in a
        layout line (see ``_predlog_decode``).
        """
        if not answers.ids:
            return
        ident = (answers.model, answers.version)
        key = self._keys.get(ident) or self._key(ident, {})
        layout = self._layout(answers.columns, answers.classes)
        lid, ts, latency, arm = layout.id, answers.ts, answers.latency_ms, answers.arm
        rows = zip(answers.ids, answers.predictions, answers.rows, strict=True)
        if answers.proba is None:
            lines = [_encode([lid, pid, ts, latency, arm, y, row]) for pid, y, row in rows]
        else:
            lines = [
                _encode([lid, pid, ts, latency, arm, y, row, p])
                for (pid, y, row), p in zip(rows, answers.proba, strict=True)
            ]
        lines.append(b"")  # a final newline after the join
        self._write(key, b"\n".join(lines), len(lines) - 1, drop_on_error=self._drop, layout=layout)

    def _layout(self, columns: list[str], classes: list[str] | None) -> Layout:
        """The layout of these names (one per distinct columns and classes, in order)."""
        names = (tuple(columns), None if classes is None else tuple(classes))
        layout = self._layouts.get(names)
        if layout is None:
            with self._lock:
                if len(self._layouts) >= _MAX_LAYOUTS:  # clients sending every column order
                    self._layouts.clear()  # ids go on growing: no two layouts share one
                layout = self._layouts.setdefault(
                    names, Layout.of(next(self._layout_ids), columns, classes)
                )
        return layout

    def _key(self, ident: tuple[str, int | None], record: Mapping[str, Any]) -> PartitionKey:
        model, version = ident
        try:
            check_name(model)
        except InvalidInput:
            if record.get("status") != "rejected":
                raise
            # A request for a nonsense model is still logged, under one reserved name.
            return PartitionKey(PREDICTION, INVALID_MODEL, None)
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise InvalidInput(f"A log record's version must be an int. Got {version!r}.")
        key = self._keys[ident] = PartitionKey(PREDICTION, model, version)
        return key

    def _write(
        self,
        key: PartitionKey,
        data: bytes,
        count: int,
        *,
        drop_on_error: bool = False,
        layout: Layout | None = None,
    ) -> None:
        with self._lock:
            if not self._is_open:
                raise InvalidInput("The prediction log is not open: call open() first.")
            segment = self._active.get(key)
            try:
                if segment is None:
                    segment = self._active[key] = new_segment(self._root / "wal", key)
                    self._new_names = True
                if layout is not None and layout.id not in segment.layouts:
                    data = layout.line + data  # one write: the names land with their rows
                written = os.write(segment.fd, data)
                if written != len(data):  # a short write only happens when the disk is full
                    view = memoryview(data)[written:]
                    while view:
                        view = view[os.write(segment.fd, view) :]
                if self.fsync_interval <= 0:
                    os.fdatasync(segment.fd)
            except OSError as exc:
                if drop_on_error:
                    self._dropped += count
                    log.error("prediction log: %d records dropped: %s", count, exc)
                    return
                where = segment.path if segment else self._root / "wal"
                raise StoreUnavailable(
                    f"Cannot write the prediction log at {where}: {exc.strerror}. "
                    "Free disk space or fix the folder's permissions."
                ) from exc
            if layout is not None:
                segment.layouts.add(layout.id)
            if segment.first_at is None:
                segment.first_at = time.time()
            segment.records += count
            segment.size += len(data)
            segment.dirty = True
            if segment.size >= self.rotate_bytes:
                self._closed.append(self._active.pop(key))
                self._wake.set()

    # -- background work ----------------------------------------------------------------------

    def _rotate_locked(self) -> None:
        """Close every open segment; the next append to a key opens a new one."""
        if self._active:
            self._closed.extend(self._active.values())
            self._active.clear()
            self._wake.set()

    def _sync_loop(self) -> None:
        interval = self.fsync_interval if self.fsync_interval > 0 else 0.05
        while not self._stop.wait(interval):
            try:
                self._sync_once()
            except Exception:  # keep syncing; the error is logged, the records are in the WAL
                log.exception("prediction log: fsync failed")

    def _sync_once(self) -> None:
        with self._lock:
            segments = [*self._active.values(), *self._closed]
            oldest = min((s.first_at for s in self._active.values() if s.first_at), default=None)
            if oldest is not None and time.time() - oldest >= self.rotate_seconds:
                self._rotate_locked()
            fds = [os.dup(s.fd) for s in segments if s.dirty]
            for s in segments:
                s.dirty = False
            new_names, self._new_names = self._new_names, False
        # fsync a duplicate outside the lock: appends go on, and compaction may close the
        # original descriptor meanwhile.
        for fd in fds:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if new_names:  # the folder only when a segment was created: a journal commit each
            with contextlib.suppress(OSError):
                _fsync_path(self._root / "wal")  # new segment names survive power loss

    def _compact_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                process = self._process
                if process is not None and not process.alive():
                    self._fall_back_to_thread()
                self._compact_closed()
            except Exception:  # retried on the next wake-up; the segment stays until it works
                log.exception("prediction log: compaction failed")
                self._stop.wait(1.0)

    def _compact_closed(self) -> None:
        """Compact closed segments here, or seal them for the compactor process."""
        with self._compact_lock:
            handed = False
            while True:
                with self._lock:
                    if not self._closed:
                        break
                    segment = self._closed[0]
                process = self._process
                if process is None:
                    compact_segment(self._writer, segment)
                else:
                    # Sealed: on disk before anyone else may take it (the power-loss window).
                    os.fdatasync(segment.fd)
                with self._lock:
                    # Closed under the lock: the sync thread dups descriptors under it.
                    self._closed.pop(0)
                    os.close(segment.fd)  # releases the flock: the compactor may claim it
                    if process is not None:
                        self._pending_handed().append(segment)
                        handed = True
        if handed and self._process is not None and not self._process.wake():
            self._fall_back_to_thread()

    def _fall_back_to_thread(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        log.error(
            "prediction log: the compactor process (pid %d) is gone; compacting in a thread",
            process.pid,
        )
        self._compact_handed()

    def _compact_handed(self) -> None:
        """Compact the segments given to the compactor that are still there, here and now."""
        with self._lock:
            handed, self._handed = self._handed, []
        with self._compact_lock:
            for segment in handed:
                compact_path(self._writer, segment.path)

    def flush(self) -> None:
        """Close the open segment and compact every closed one to Parquet now."""
        with self._lock:
            self._rotate_locked()
        self._compact_closed()
        self._compact_handed()

    @property
    def compactor_pid(self) -> int | None:
        """The pid of the compactor process (None when compaction runs in a thread)."""
        return None if self._process is None else self._process.pid

    # -- metrics ------------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        """Records appended by this process and not yet in Parquet (a Prometheus gauge)."""
        with self._lock:
            pending = [*self._closed, *self._active.values(), *self._pending_handed()]
        return sum(s.records for s in pending)

    def _pending_handed(self) -> list[Segment]:
        """The handed segments the compactor has not deleted yet (the caller holds _lock)."""
        self._handed = [s for s in self._handed if s.path.exists()]
        return self._handed

    @property
    def lag_seconds(self) -> float:
        """Age of the oldest record of this process not yet in Parquet (0 when none)."""
        with self._lock:
            pending = [*self._closed, *self._active.values(), *self._pending_handed()]
            oldest = min((s.first_at for s in pending if s.first_at is not None), default=None)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    @property
    def dropped(self) -> int:
        """Records lost because the disk refused them (only with ``on_write_error="drop"``)."""
        return self._dropped

    # -- feedback -----------------------------------------------------------------------------

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
            frame["ts"] = [_epoch(ts)]
        return self.record_feedback_frame(model, frame)

    def record_feedback_frame(self, model: str, frame: pd.DataFrame) -> FeedbackResult:
        """Record labels from a frame with ``prediction_id``, ``label`` and optional ``ts``.

        Labels of unknown prediction ids are not stored; the result counts and lists them.

        >>> log.record_feedback_frame("churn", pd.read_parquet("labels.parquet"))  # doctest: +SKIP
        FeedbackResult(matched=980, unknown=20, unknown_ids=[...])
        """
        check_name(model)
        ids, labels, stamps = check_feedback_frame(frame)
        known = self._known_ids(model, ids)
        keep = [i for i, pid in enumerate(ids) if pid in known]
        unknown = [pid for pid in ids if pid not in known]
        if keep:
            data = feedback_lines(ids, labels, stamps, keep, time.time())
            self._write(PartitionKey(FEEDBACK, model, None), data, len(keep))
        return FeedbackResult(matched=len(keep), unknown=len(unknown), unknown_ids=unknown[:100])

    def _known_ids(self, model: str, ids: list[str]) -> set[str]:
        con = self._connect(model, feedback=False)
        try:
            con.register("_ids", pa.table({"prediction_id": pa.array(ids, pa.string())}))
            rows = con.execute(
                "SELECT DISTINCT prediction_id FROM _ids SEMI JOIN "
                "(SELECT prediction_id FROM predictions WHERE status = 'ok') USING (prediction_id)"
            ).fetchall()
        finally:
            con.close()
        return {row[0] for row in rows}

    # -- queries ------------------------------------------------------------------------------

    def query(self, sql: str, *, model: str) -> pd.DataFrame:
        """Run DuckDB SQL over ``model``'s views ``predictions`` and ``feedback``.

        Sees every record appended so far: Parquet parts plus records still in the WAL.
        Works without ``open()`` too (e.g. from the CLI while a server writes the log).

        >>> log.query("SELECT p.prediction, f.label FROM predictions p "
        ...           "JOIN feedback f USING (prediction_id)", model="churn")  # doctest: +SKIP
        """
        if model != INVALID_MODEL:  # the reserved partition of nonsense model names
            check_name(model)
        con = self._connect(model, feedback=True)
        try:
            relation = con.sql(sql)
            if relation is None:  # a statement without a result (SET, CREATE VIEW ...)
                return pd.DataFrame()
            # Through Arrow: DuckDB's own .df() trips a pandas 3 deprecation warning.
            return relation.to_arrow_table().to_pandas()
        except duckdb.Error as exc:
            raise InvalidInput(f"The SQL query failed: {exc}") from exc
        finally:
            con.close()

    def _connect(self, model: str, *, feedback: bool) -> duckdb.DuckDBPyConnection:
        root = self._root
        kinds = [PREDICTION, FEEDBACK] if feedback else [PREDICTION]
        wal_tables: dict[str, list[pa.Table]] = {kind: [] for kind in kinds}
        read_segments: set[str] = set()
        # WAL first, then parts: a segment deleted in between has all its parts renamed
        # already, and the parts of a segment we did read are skipped (no double counting).
        for path in list_segments(root / "wal"):
            segment_id, key = parse_segment_name(path.name)
            if key.model != model or key.kind not in wal_tables:
                continue
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            read_segments.add(segment_id)
            table = decode_segment(key, data)
            if table is not None:
                wal_tables[key.kind].append(add_partition_columns(table, key))
        views = {
            ("predictions" if kind == PREDICTION else "feedback"): (
                kind,
                list_parts(root, kind, model, read_segments),
                concat(wal_tables[kind]),
            )
            for kind in kinds
        }
        return connect(root, views)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["INVALID_MODEL", "FeedbackResult", "PredictionLog", "PredictionRecord"]
