"""Compaction of sealed WAL segments into Parquet, in a thread or in its own process.

A segment is sealed once its writer closed it (its ``flock`` is released): from then on any
process may claim it, turn it into Parquet parts and delete it (see ``_parquet`` for why
that is exactly-once). ``compact_segment`` is the one code path that does it; it runs

- in a ``predlog-compact`` thread of the writing process (``compactor="thread"``), or
- in a compactor process that a server starts, so that pyarrow's decoding and the Parquet
  writes never hold the server's GIL (``python -m shipyard.predlog._compactor ROOT PARENT_PID``
  runs one by hand).

``Compaction`` is the writing process's side: it takes the segments the writer (``_writer``)
closed and compacts them in its thread, or seals them and wakes the compactor process, and
falls back to the thread when that process cannot start or dies.

The compactor process:

- compacts every unlocked segment of ``ROOT/wal`` (sealed by a live writer, or left by a dead
  one), when the parent writes a byte to its stdin and every ``POLL_SECONDS`` anyway;
- is one per log folder: server workers each start one, and only the one holding
  ``wal/.compactor.lock`` works (the others wait and take over when its parent dies);
- exits when its parent is gone: EOF on stdin (the kernel closes the pipe even after
  ``kill -9``) or a parent pid that changed; a ``q`` on stdin asks for a last pass first;
- reaches the object store (when the log's Parquet is remote) with the storage options the
  server was given, passed in its environment (``OPTIONS_ENV``), not on its command line;
- runs only when the CPU has nothing else to do (Linux ``SCHED_IDLE``; elsewhere ``nice``),
  so that on a shared core requests go first. Under a load that keeps every core busy the
  WAL grows (the server's ``/metrics`` shows the lag) and compaction catches up once it eases;
  the records are durable in the WAL meanwhile, and queries read them there.

When the object store cannot be reached (down, refused keys), a pass stops at the first
segment it cannot write: the segment stays in the WAL, whole, and the next pass (retried
after ``RETRY_SECONDS``, doubling up to ``MAX_RETRY_SECONDS``) writes the same part names
again. Requests never wait for it: they only append to the WAL. A full disk (Parquet parts
are written beside the WAL) is the same: the segment stays, the pass is retried. Either way
``Retry`` tells it as one episode: a line when it starts (the store, or the folder and the
space left on its volume, and the backlog waiting in the WAL), a reminder at most every
``_episode.REPORT_SECONDS``, and a line when compaction resumes; not a traceback a second.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from shipyard.errors import StoreUnavailable
from shipyard.predlog._decode import decode_segment
from shipyard.predlog._episode import Episode
from shipyard.predlog._idindex import (
    merge_id_indexes,
    remove_stale_index_tmp,
    segment_index_rows,
    write_segment_index,
)
from shipyard.predlog._location import Location, open_location
from shipyard.predlog._parquet import PartWriter, Written, remove_stale_tmp
from shipyard.predlog._space import wal_space
from shipyard.predlog._wal import (
    PREDICTION,
    Segment,
    claim_orphan,
    list_segments,
    parse_segment_name,
    remove_stale_new,
)

if TYPE_CHECKING:  # not at run time: the compactor process has no use for the writer
    from shipyard.predlog._writer import WalWriter

log = logging.getLogger(__name__)

#: Seconds between two passes when no wake-up byte came (dead workers' segments, missed bytes).
POLL_SECONDS = 0.5
#: Priority of the compactor process relative to the server (0 = same) where SCHED_IDLE is
#: not available.
NICE = 10
LOCK_NAME = ".compactor.lock"
# Starts the process without shipyard.predlog's __init__ (its readers: DuckDB, pandas, which
# it does not need): a bare package object lets Python find this module's siblings.
_BOOT = (
    "import sys, types; pkg = types.ModuleType('shipyard.predlog'); "
    "pkg.__path__ = [sys.argv[1]]; sys.modules['shipyard.predlog'] = pkg; "
    "from shipyard.predlog._compactor import main; sys.exit(main(sys.argv[2:]))"
)
#: The compactor process's storage options (JSON), from the server's.
OPTIONS_ENV = "SHIPYARD_PREDLOG_STORAGE_OPTIONS"
#: First wait before retrying a pass the object store failed, doubled up to the maximum.
RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 5.0
WAKE = b"w"
DRAIN = b"q"
#: Folder of ``wal/`` keeping the lines of segments that could not be decoded.
DAMAGED_DIR = "damaged"


def compact_segment(writer: PartWriter, segment: Segment) -> None:
    """Segment -> Parquet parts -> their id index -> delete the segment (the caller holds
    its flock).

    Lines that cannot be read are kept in ``wal/damaged/`` (same file name), not lost, and
    not retried forever. The first segment of a day later than any this writer compacted
    before merges the id index of the days before today (``_idindex``).
    """
    bad: list[bytes] = []
    table = decode_segment(segment.key, segment.path.read_bytes(), bad)
    if table is not None:
        written = writer.write_segment(segment.segment_id, segment.key, table)
        if segment.key.kind == PREDICTION:
            # After the parts are on disk, before the segment goes: see _idindex.
            write_segment_index(writer.loc, segment.segment_id, _index_rows(segment, written))
            _merge_past_days(writer, written)
    if bad:
        kept = segment.path.parent / DAMAGED_DIR / segment.path.name
        kept.parent.mkdir(exist_ok=True)
        kept.write_bytes(b"\n".join(bad) + b"\n")  # rewritten whole on a replay: no duplicate
        log.error(
            "prediction log: %d damaged line(s) in %s could not be read; kept in %s",
            len(bad),
            segment.path.name,
            kept,
        )
    segment.path.unlink(missing_ok=True)  # last: a crash before it means a replay


def _index_rows(segment: Segment, written: list[Written]) -> list[pa.Table]:
    key = segment.key
    return [
        segment_index_rows(w.day, key.model, key.version, w.part, w.rows["prediction_id"])
        for w in written
    ]


def _merge_past_days(writer: PartWriter, written: list[Written]) -> None:
    """Merge the index of the days before today once per writer and new day (cheap: a
    listing of ``ids/`` when they are merged already). A failure is only logged: the
    segment is compacted, lookups read unmerged days too, and the next new day merges
    every day left. The object store going away meanwhile is one line, not a traceback."""
    newest = max((w.day for w in written), default="")
    if newest <= writer.newest_day:
        return
    writer.newest_day = newest
    try:
        merge_id_indexes(writer.loc, datetime.now(UTC).date())
    except StoreUnavailable as exc:
        log.warning(
            "prediction log: merging the id index of past days failed (%s); lookups read "
            "them unmerged, and the next day's first segment merges them.",
            exc,
        )
    except Exception:
        log.exception("prediction log: merging the id index of past days failed")


def compact_unlocked(writer: PartWriter, *, clean: bool = True) -> int:
    """Compact every segment no live process holds; returns how many were compacted.

    ``clean`` also deletes what crashed compactions and segment creations left (a walk of
    the whole Parquet tree on disk: at start-up, not on every pass).
    """
    loc = writer.loc
    assert loc.folder is not None  # a writer has its local folder
    done = 0
    live: set[str] = set()
    for path in list_segments(loc.folder / "wal"):
        segment = claim_orphan(path)
        if segment is None:
            live.add(parse_segment_name(path.name)[0])
            continue
        try:
            compact_segment(writer, segment)
        finally:
            os.close(segment.fd)
        done += 1
    if clean:
        remove_stale_tmp(loc, live)
        remove_stale_index_tmp(loc, live)
        remove_stale_new(loc.folder / "wal")
    return done


class Retry:
    """How a compaction loop waits after a failure, and what it says.

    A failure that lasts is one ``_episode.Episode``: a line when it starts, a reminder at
    most every ``REPORT_SECONDS`` with the backlog waiting in the WAL, and a line when
    compaction resumes; never a line per retry. The disk refusing a write (full, over quota,
    read-only: an ``OSError``) names the folder and the space left on its volume; the object
    store gone (``StoreUnavailable``) says which store; anything else (a bug) shows its
    traceback once, at the start.
    """

    def __init__(self, what: str, root: Path) -> None:
        self.what = what  # "prediction log: compaction", for the log lines
        self.root = root  # the log folder: its WAL backlog and its volume's free space
        self.delay = 0.0
        self._failing = Episode()

    def failed(self, exc: BaseException) -> float:
        """Log ``exc`` as its episode needs; returns the seconds to wait."""
        due = self._failing.failed()
        self.delay = min(MAX_RETRY_SECONDS, self.delay * 2 or RETRY_SECONDS)
        if due is None:
            return self.delay
        segments, size, _ = wal_space(self.root)
        waiting = f"{segments} segment(s), {size:,} bytes, wait in the WAL: nothing is lost"
        if due == "reminder":
            log.error(
                "%s still failing after %.0f s (%s); %s; retrying.",
                self.what,
                self._failing.elapsed(),
                _reason(exc, self.root),
                waiting,
            )
        elif isinstance(exc, StoreUnavailable):
            log.warning("%s failed (%s); %s; retrying.", self.what, exc, waiting)
        elif isinstance(exc, OSError):
            log.error(
                "%s failed: %s. %s; retrying at least every %.0f s: it resumes by itself once "
                "there is room.",
                self.what,
                _reason(exc, self.root),
                waiting,
                MAX_RETRY_SECONDS,
            )
        else:
            log.error("%s failed; %s; retrying.", self.what, waiting, exc_info=exc)
        return self.delay

    def succeeded(self) -> None:
        lasted = self._failing.ended()
        if lasted is not None:
            log.warning("%s resumed after %.0f s.", self.what, lasted)
        self.delay = 0.0


def _reason(exc: BaseException, root: Path) -> str:
    """What failed, in one line: for the disk, where and the space left on its volume."""
    if isinstance(exc, StoreUnavailable):
        return str(exc)
    if not isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}"
    where = exc.filename or root
    try:
        stat = os.statvfs(root)
        free = f"{stat.f_bavail * stat.f_frsize:,} bytes free on its volume"
    except OSError:
        free = "its volume's free space unknown"
    return f"cannot write {where}: {exc.strerror or exc} ({free})"


def compact_path(writer: PartWriter, path: Path) -> None:
    """Compact one sealed segment, waiting for another process that compacts it right now."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if path.exists():  # not compacted by the one we waited for
            key = parse_segment_name(path.name)[1]
            compact_segment(writer, Segment(path=path, fd=fd, key=key))
    finally:
        os.close(fd)


class CompactorProcess:
    """The server's handle on its compactor process (see the module docstring)."""

    def __init__(self, proc: subprocess.Popen[bytes], stdin: int) -> None:
        self._proc = proc
        self._lock = threading.Lock()
        self._stdin: int | None = stdin  # the write end of the child's stdin
        os.set_blocking(stdin, False)
        # A log dropped without close(): EOF makes the child exit, then reap it.
        self._finalizer = weakref.finalize(self, _end, proc, stdin)

    @classmethod
    def start(
        cls, root: Path, storage_options: dict[str, object] | None = None
    ) -> CompactorProcess | None:
        """Start the compactor of ``root``; None (and a warning) if it cannot start."""
        read_end, write_end = os.pipe()  # both close-on-exec; Popen dups read_end to 0
        env = dict(os.environ)
        if storage_options:
            env[OPTIONS_ENV] = json.dumps(storage_options)
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _BOOT,
                    str(Path(__file__).parent),
                    str(root),
                    str(os.getpid()),
                ],
                stdin=read_end,
                close_fds=True,
                env=env,
            )
        except OSError as exc:
            os.close(write_end)
            log.warning("prediction log: no compactor process (%s); compacting in a thread", exc)
            return None
        finally:
            os.close(read_end)
        return cls(proc, write_end)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def wake(self) -> bool:
        """Ask for a pass now; False if the process is gone."""
        with self._lock:
            if self._stdin is None:
                return False
            try:
                os.write(self._stdin, WAKE)
            except BlockingIOError:  # the pipe is full of wake-ups already
                pass
            except OSError:  # BrokenPipeError: it died
                return False
        return self.alive()

    def stop(self, timeout: float = 60.0) -> None:
        """A last pass, then exit; killed after ``timeout`` seconds (its work is crash-safe)."""
        with self._lock:
            stdin, self._stdin = self._stdin, None
        if stdin is None:
            return
        self._finalizer.detach()
        with contextlib.suppress(OSError):
            os.write(stdin, DRAIN)
        _end(self._proc, stdin, timeout)


def _end(proc: subprocess.Popen[bytes], stdin: int, timeout: float = 10.0) -> None:
    """Close the child's stdin (EOF) and wait for it; killed after ``timeout`` seconds."""
    with contextlib.suppress(OSError):
        os.close(stdin)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # its work is crash-safe: the next pass or start redoes it
        proc.wait()


class Compaction:
    """The writing process's side of compaction (see the module docstring).

    ``process``: seal closed segments for a compactor process instead of compacting them in
    the ``predlog-compact`` thread; the thread takes over if the process cannot start or dies.
    """

    def __init__(
        self,
        loc: Location,
        wal: WalWriter,
        *,
        process: bool,
        storage_options: dict[str, object] | None = None,
    ) -> None:
        assert loc.folder is not None  # a writer has its local folder
        self.loc = loc
        self.root = loc.folder
        self.wal = wal
        self.process = process
        self.storage_options = storage_options
        self._parts = PartWriter(loc)
        self._retry = Retry("prediction log: compaction", self.root)
        self._process: CompactorProcess | None = None
        self._lock = threading.Lock()  # one compaction at a time: thread, flush, replay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Create the folders, replay segments of dead processes, start the process and thread."""
        subs = ("wal",) if self.loc.remote else ("wal", "predictions", "feedback")
        for sub in subs:
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        try:
            self.replay()
        except (StoreUnavailable, OSError) as exc:  # store down, disk full: retried later
            log.warning(
                "prediction log: segments of dead processes wait in the WAL (%s)",
                _reason(exc, self.root),
            )
        if self.process:
            self._process = CompactorProcess.start(self.root, self.storage_options)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="predlog-compact", daemon=True)
        self._thread.start()

    def replay(self) -> int:
        """Compact every segment whose process died; returns how many were replayed."""
        with self._lock:
            return compact_unlocked(self._parts)

    def stop(self) -> None:
        """Stop the thread (the segments stay: ``close`` compacts them)."""
        self._stop.set()
        self.wal.wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Compact everything to Parquet now, then end the compactor process.

        When the object store cannot be reached or the disk is full, the segments stay in
        the WAL (released, so that the next start, or another process, replays them) and a
        warning says so."""
        try:
            self.flush()
        except (StoreUnavailable, OSError) as exc:
            left = self._release_closed()
            log.warning(
                "prediction log: %d segment(s) stay in the WAL, compacted at the next start (%s)",
                left,
                _reason(exc, self.root),
            )
        if self._process is not None:
            self._process.stop()
            self._process = None

    def flush(self) -> None:
        """Close the open segments and compact every closed one to Parquet now."""
        self.wal.rotate()
        self._compact_closed()
        self._compact_handed()

    @property
    def pid(self) -> int | None:
        """The pid of the compactor process (None when compaction runs in the thread)."""
        return None if self._process is None else self._process.pid

    def _release_closed(self) -> int:
        """Let go of the closed segments this process could not compact (their flocks)."""
        left = 0
        with self._lock:
            while (segment := self.wal.first_closed()) is not None:
                self.wal.release(segment, handed=False)
                left += 1
        return left

    def _loop(self) -> None:
        wake = self.wal.wake
        while not self._stop.is_set():
            wake.wait(1.0)
            wake.clear()
            try:
                process = self._process
                if process is not None and not process.alive():
                    self._fall_back_to_thread()
                self._compact_closed()
                self._retry.succeeded()
            except Exception as exc:  # retried; the segment stays until it works
                self._stop.wait(self._retry.failed(exc))
                wake.set()  # retry even when no new segment closes

    def _compact_closed(self) -> None:
        """Compact closed segments here, or seal them for the compactor process."""
        with self._lock:
            handed = False
            while (segment := self.wal.first_closed()) is not None:
                process = self._process
                if process is None:
                    compact_segment(self._parts, segment)
                else:
                    # Sealed: on disk before anyone else may take it (the power-loss window).
                    os.fdatasync(segment.fd)
                # Releases the flock: from here on the compactor process may claim it.
                self.wal.release(segment, handed=process is not None)
                handed = handed or process is not None
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
        handed = self.wal.take_handed()
        with self._lock:
            for segment in handed:
                compact_path(self._parts, segment.path)


# -- the compactor process ---------------------------------------------------------------------


class _Control:
    """What the parent said on stdin, and whether it is still there."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.wake = threading.Event()
        self.drain = threading.Event()
        self.gone = threading.Event()

    def read_stdin(self) -> None:
        while True:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if DRAIN in data:
                _share_cpu()  # the parent is waiting for the last pass: no longer idle-only
                self.drain.set()
            if not data:  # EOF: the parent closed the pipe, or died
                self.gone.set()
                self.wake.set()
                if not self.drain.is_set():
                    os._exit(0)  # killed parent: stop now, whatever is half-done is safe
                return
            self.wake.set()

    def parent_alive(self) -> bool:
        return not self.gone.is_set() and os.getppid() == self.parent

    def sleep(self, seconds: float) -> None:
        self.wake.wait(seconds)
        self.wake.clear()


def _hold_folder_lock(root: Path, control: _Control) -> int | None:
    """Wait until this is the folder's one compactor; None when the parent left meanwhile."""
    fd = os.open(root / "wal" / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    while control.parent_alive() and not control.drain.is_set():
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            control.sleep(POLL_SECONDS)
    os.close(fd)
    return None


def _yield_cpu() -> None:
    """Run this process (threads started later inherit it) only on otherwise idle CPU."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux
        with contextlib.suppress(OSError):
            os.nice(NICE)


def _share_cpu() -> None:
    """Back to normal scheduling for the main thread (best effort: unprivileged processes
    may not be allowed to leave SCHED_IDLE)."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(os.getpid(), os.SCHED_OTHER, os.sched_param(0))


def run(root: Path, parent: int, storage_options: dict[str, object] | None = None) -> int:
    """The compactor process's loop (see the module docstring)."""
    # Ctrl-C and SIGTERM go to the whole process group; the parent decides when this ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _yield_cpu()
    control = _Control(parent)
    threading.Thread(target=control.read_stdin, name="parent-watch", daemon=True).start()
    (root / "wal").mkdir(parents=True, exist_ok=True)
    lock_fd = _hold_folder_lock(root, control)
    if lock_fd is None and not control.drain.is_set():
        return 0
    retry = Retry("prediction log compactor: compaction", root)
    writer: PartWriter | None = None
    clean = True
    while True:
        try:
            if writer is None:  # reads store.json, which the server wrote before starting us
                loc = open_location(root, storage_options=storage_options, check=False)
                writer = PartWriter(loc)
            compact_unlocked(writer, clean=clean)
            clean = False
            retry.succeeded()
        except Exception as exc:  # retried; the segment stays until it works
            control.sleep(retry.failed(exc))
        if control.drain.is_set() or not control.parent_alive():
            return 0
        control.sleep(POLL_SECONDS)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m shipyard.predlog._compactor LOG_ROOT PARENT_PID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = json.loads(os.environ.get(OPTIONS_ENV) or "{}")
    return run(Path(argv[0]), int(argv[1]), options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
