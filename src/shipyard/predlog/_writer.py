"""Writing the prediction log: records and answers into write-ahead segments, off the request path.

``append`` (records as dicts) and ``append_answers`` (a server's answered request) encode
with orjson and write with one ``os.write`` to an ``O_APPEND`` write-ahead segment (see
``_wal``; the line shapes are in ``_decode``). A background thread fsyncs the segments every
``fsync_interval`` seconds and closes them by age; ``append`` closes them by size. Closed
segments go to compaction (``_compactor.Compaction``), which turns them into Parquet.

Durability:

- process crash (``kill -9``, OOM kill, segfault): every record whose ``append`` returned is kept,
  exactly once. The bytes are in the kernel's page cache, which outlives the process.
- power loss or kernel crash: records older than ``fsync_interval`` are kept; with
  ``fsync_interval=0`` ``append`` returns only after ``fdatasync`` (every record kept, at
  the price of one disk flush per call, a few hundred microseconds to milliseconds).

A write the disk refuses (full: ``ENOSPC``, quota, read-only, I/O error) leaves nothing
behind: the segment is cut back to its size before the write (a short write on a full disk
would otherwise leave the first rows of a refused request, and a torn line for the next
append to glue onto). Then, as ``on_write_error`` says, ``append`` raises
``StoreUnavailable`` (the server refuses the request: nothing is acknowledged that is not
logged) or counts the records as ``dropped`` and returns (the server answers anyway). Either
way the trouble is never silent: ``WriteFailures`` logs the first failed write, a summary
every ``_episode.REPORT_SECONDS`` while writes fail, and the recovery; ``writable`` and
``dropped`` are the server's ``/metrics``. Nothing is sticky: the first write that succeeds
once space is back ends the episode.
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
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypedDict

import orjson

from shipyard.errors import InvalidInput, StoreUnavailable
from shipyard.names import check_name
from shipyard.predlog._episode import Episode
from shipyard.predlog._sink import Answers
from shipyard.predlog._wal import (
    INVALID_MODEL,
    PREDICTION,
    Layout,
    PartitionKey,
    Segment,
    fsync_dir,
    new_segment,
)

log = logging.getLogger(__name__)

_DUMPS = orjson.dumps
_OPTS = orjson.OPT_SERIALIZE_NUMPY
#: Layouts (column and class names) remembered before the memory is cleared.
_MAX_LAYOUTS = 1024


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
    caller: str | None  # the API token's name (usage)
    team: str | None  # the token's team (usage)
    compute_ms: float | None  # the model's compute time for the record's whole request
    request_rows: int  # the rows of the record's request (usage counts requests with it)


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
        out["ts"] = to_epoch(out["ts"])
    return out


def to_epoch(ts: Any) -> float:
    """A log timestamp (epoch seconds or a datetime, naive meaning UTC) as epoch seconds."""
    if isinstance(ts, datetime):
        # Naive datetimes are taken as UTC: the log is in UTC throughout.
        return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
    if isinstance(ts, int | float) and not isinstance(ts, bool) and math.isfinite(ts):
        return float(ts)
    raise InvalidInput(
        f"A log timestamp must be epoch seconds or a datetime. Got {type(ts).__name__} instead."
    )


class WriteFailures:
    """Writes the disk refused: counted, and told in the log without flooding it (one
    ``_episode.Episode`` from the first refused write to the next that works).

    The writer calls ``failed`` (under its lock) for each refused write and ``succeeded``
    after a write that worked; ``writable`` is False from the first failure until then.
    """

    def __init__(self, *, drop: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.drop = drop  # the policy, for the log lines
        self.dropped = 0  # records answered but not logged (drop only)
        self.refused = 0  # records whose write raised (raise only)
        self._failing = Episode(clock=clock)
        self._unreported = 0  # records failed since the last log line
        self._episode = 0  # records failed since writes started failing

    @property
    def writable(self) -> bool:
        return not self._failing.ongoing

    def failed(self, where: Path, exc: OSError, count: int, *, dropped: bool) -> None:
        """Count ``count`` records that ``dropped`` (else: refused) and log as needed."""
        if dropped:
            self.dropped += count
        else:
            self.refused += count
        self._unreported += count
        self._episode += count
        fate = "dropped (answered, not logged)" if dropped else "refused (not answered)"
        due = self._failing.failed()
        if due == "start":
            self._unreported = 0
            policy = (
                "answering without logging (on_log_full=answer); the records are counted "
                "in shipyard_prediction_log_dropped_total"
                if self.drop
                else "refusing the predictions it cannot log (on_log_full=refuse)"
            )
            log.error(
                "prediction log: cannot write %s: %s; %s. Free disk space on the log's "
                "volume: logging resumes by itself. %d record(s) %s.",
                where,
                exc.strerror or exc,
                policy,
                count,
                fate,
            )
        elif due == "reminder":
            log.error(
                "prediction log: still cannot write %s (%s) for %.0f s: %d more record(s) %s "
                "(%d dropped, %d refused since the server started).",
                where,
                exc.strerror or exc,
                self._failing.elapsed(),
                self._unreported,
                fate,
                self.dropped,
                self.refused,
            )
            self._unreported = 0

    def succeeded(self) -> None:
        lasted = self._failing.ended()
        if lasted is None:
            return
        log.warning(
            "prediction log: writing again after %.1f s; %d record(s) %s meanwhile.",
            lasted,
            self._episode,
            "dropped" if self.drop else "refused",
        )
        self._episode, self._unreported = 0, 0


class WalWriter:
    """The one writer of a log folder in this process: appends, fsyncs and closes segments.

    ``PredictionLog`` makes one when it opens and hands the request path its ``append`` and
    ``append_answers`` (see ``_log``); compaction takes the closed segments through
    ``first_closed``/``release`` and wakes on ``wake``. ``_lock`` guards the segment lists
    (and nothing else: an append holds it for one ``os.write``).
    """

    def __init__(
        self,
        root: Path,
        *,
        fsync_interval: float,
        rotate_bytes: int,
        rotate_seconds: float,
        on_write_error: Literal["raise", "drop"],
    ) -> None:
        self.root = root
        self.fsync_interval = fsync_interval
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.on_write_error = on_write_error
        self.wake = threading.Event()  # set when a segment is closed: compaction has work
        self._drop = on_write_error == "drop"
        self.failures = WriteFailures(drop=self._drop)
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, int | None], PartitionKey] = {}
        self._layouts: dict[tuple[tuple[str, ...], tuple[str, ...] | None], Layout] = {}
        self._layout_ids = itertools.count()
        self._is_open = False
        self._active: dict[PartitionKey, Segment] = {}  # created on a key's first append
        self._new_names = False  # a segment was created since the WAL folder's last fsync
        self._closed: list[Segment] = []  # closed, waiting for compaction
        self._handed: list[Segment] = []  # sealed and given to the compactor process
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Accept appends, and start the fsync thread."""
        (self.root / "wal").mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._is_open = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._sync_loop, name="predlog-sync", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the fsync thread; appends from now on raise (the segments stay for compaction)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            self._is_open = False

    @property
    def is_open(self) -> bool:
        return self._is_open

    # -- the request path ---------------------------------------------------------------------

    def append(self, records: Iterable[PredictionRecord | Mapping[str, Any]]) -> None:
        """``PredictionLog.append`` (see there)."""
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
        """``PredictionLog.append_answers`` (see there)."""
        if not answers.ids:
            return
        ident = (answers.model, answers.version)
        key = self._keys.get(ident) or self._key(ident, {})
        layout = self._layout(answers.columns, answers.classes)
        lid, ts, latency, arm = layout.id, answers.ts, answers.latency_ms, answers.arm
        # The request's usage, after the row's values (see ``_decode``).
        use = (answers.caller, answers.team, answers.compute_ms, len(answers.ids))
        rows = zip(answers.ids, answers.predictions, answers.rows, strict=True)
        if answers.proba is None:
            lines = [_encode([lid, pid, ts, latency, arm, y, row, *use]) for pid, y, row in rows]
        else:
            lines = [
                _encode([lid, pid, ts, latency, arm, y, row, p, *use])
                for (pid, y, row), p in zip(rows, answers.proba, strict=True)
            ]
        lines.append(b"")  # a final newline after the join
        self._write(key, b"\n".join(lines), len(lines) - 1, drop_on_error=self._drop, layout=layout)

    def append_lines(self, key: PartitionKey, data: bytes, count: int) -> None:
        """Write ``count`` ready-made lines (feedback) to ``key``'s segment; errors raise."""
        self._write(key, data, count)

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
                    segment = self._active[key] = new_segment(self.root / "wal", key)
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
                where = segment.path if segment else self.root / "wal"
                if segment is not None:
                    self._cut_back(segment)
                self.failures.failed(where, exc, count, dropped=drop_on_error)
                if drop_on_error:
                    return
                raise StoreUnavailable(
                    f"Cannot write the prediction log ({exc.strerror or exc}); nothing of this "
                    "request was logged, so it is refused (no answer is sent that is not "
                    "logged). Free disk space on the log's volume (the server's log names the "
                    "folder) and retry, or serve with --on-log-full answer."
                ) from exc
            if not self.failures.writable:
                self.failures.succeeded()
            if layout is not None:
                segment.layouts.add(layout.id)
            if segment.first_at is None:
                segment.first_at = time.time()
            segment.records += count
            segment.size += len(data)
            segment.dirty = True
            if segment.size >= self.rotate_bytes:
                self._closed.append(self._active.pop(key))
                self.wake.set()

    def _cut_back(self, segment: Segment) -> None:
        """Undo a failed write (the caller holds _lock): cut the segment back to the size it
        had before, so no row of a refused request stays, and no torn line is left for the
        next append to glue onto. If even that fails, close the segment: the torn tail is
        then its last line, which decoding drops."""
        try:
            os.ftruncate(segment.fd, segment.size)
        except OSError as exc:
            log.error("prediction log: cannot cut back %s (%s); closing it", segment.path, exc)
            if self._active.get(segment.key) is segment:
                self._closed.append(self._active.pop(segment.key))
                self.wake.set()

    # -- rotation and fsync -------------------------------------------------------------------

    def rotate(self) -> None:
        """Close every open segment; the next append to a key opens a new one."""
        with self._lock:
            self._rotate_locked()

    def _rotate_locked(self) -> None:
        if self._active:
            self._closed.extend(self._active.values())
            self._active.clear()
            self.wake.set()

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
                fsync_dir(self.root / "wal")  # new segment names survive power loss

    # -- hand-over to compaction --------------------------------------------------------------

    def first_closed(self) -> Segment | None:
        """The oldest closed segment (still open and locked by this process), if any."""
        with self._lock:
            return self._closed[0] if self._closed else None

    def release(self, segment: Segment, *, handed: bool) -> None:
        """Forget ``first_closed()``'s segment, compacted or (``handed``) sealed for the
        compactor process, and close it: that releases its flock."""
        with self._lock:
            # Closed under the lock: the sync thread dups descriptors under it.
            self._closed.pop(0)
            os.close(segment.fd)
            if handed:
                self._pending_handed().append(segment)

    def take_handed(self) -> list[Segment]:
        """The segments handed to the compactor process so far (forgotten here)."""
        with self._lock:
            handed, self._handed = self._handed, []
        return handed

    def _pending_handed(self) -> list[Segment]:
        """The handed segments the compactor has not deleted yet (the caller holds _lock)."""
        self._handed = [s for s in self._handed if s.path.exists()]
        return self._handed

    # -- metrics ------------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        with self._lock:
            pending = [*self._closed, *self._active.values(), *self._pending_handed()]
        return sum(s.records for s in pending)

    @property
    def lag_seconds(self) -> float:
        with self._lock:
            pending = [*self._closed, *self._active.values(), *self._pending_handed()]
            oldest = min((s.first_at for s in pending if s.first_at is not None), default=None)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    @property
    def backlog_bytes(self) -> int:
        """Bytes of WAL segments not yet in Parquet (what a full disk would have to hold)."""
        with self._lock:
            pending = [*self._closed, *self._active.values(), *self._pending_handed()]
        return sum(s.size for s in pending)

    @property
    def dropped(self) -> int:
        return self.failures.dropped

    @property
    def writable(self) -> bool:
        return self.failures.writable
