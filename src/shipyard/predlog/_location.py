"""Where a prediction log lives: its WAL on local disk, its Parquet on disk or an object store.

The write-ahead segments (``wal/``) always stay in the local log folder: appends must be a
local ``write`` (fast, and durable across a crash of the process). The Parquet trees
(``predictions/``, ``feedback/``, ``ids/``) go either beside them (the default) or to an
object store URL (``PredictionLog(root, store_url="s3://bucket/prefix")``), reached through
``shipyard.store.open_filesystem`` (fsspec; s3fs for ``s3://``).

A log folder whose Parquet is remote says so in ``<root>/store.json`` (the URL and the
storage options that are not secrets), written when the log opens: every reader given the
folder (``read_window``, ``query``, ``find_prediction``, ``shipyard gc``...) reads the same
place, with the secrets of its own environment (``AWS_ACCESS_KEY_ID``... or the
``[storage]`` options of its settings). A reader may also be given the URL itself: it then
reads the Parquet alone (no WAL: what the writers have not compacted yet is not seen).

Writes on an object store never rename: S3 has no atomic rename. A part is written with one
``PUT`` to its final name, which makes it visible whole or not at all, and ``confirm``
checks its size with a ``HEAD`` before compaction deletes the segment (see ``_parquet``).

>>> loc = Location.local("/var/lib/shipyard/predlog")
>>> loc.path("predictions", "model=churn")
'/var/lib/shipyard/predlog/predictions/model=churn'
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.errors import InvalidInput, StoreUnavailable
from shipyard.predlog._wal import fsync_dir

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

#: The file of a log folder that names its remote Parquet root.
STORE_FILE = "store.json"
#: Storage options never written to ``store.json`` (readers take them from their settings).
_SECRET_WORDS = ("secret", "token", "password", "key", "credential", "session")
_TMP_SUFFIX = ".tmp"


def is_url(root: str | Path) -> bool:
    """Whether ``root`` names an object store (``s3://...``) rather than a local folder."""
    text = str(root)
    return "://" in text and not text.startswith("file://")


def public_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` without the values that look like secrets (kept out of ``store.json``).

    >>> public_options({"key": "AK", "secret": "s", "endpoint_url": "http://h:8333",
    ...                 "client_kwargs": {"region_name": "eu", "aws_secret_access_key": "s"}})
    {'endpoint_url': 'http://h:8333', 'client_kwargs': {'region_name': 'eu'}}
    """
    out: dict[str, Any] = {}
    for name, value in (options or {}).items():
        if any(word in name.lower() for word in _SECRET_WORDS):
            continue
        out[name] = public_options(value) if isinstance(value, Mapping) else value
    return out


@dataclass(frozen=True)
class Location:
    """A log's local folder (which holds ``wal/``; None when the log is read from its URL
    alone) and where its Parquet is: ``base`` on local disk (``fs`` None) or on ``fs``."""

    folder: Path | None
    base: str
    fs: AbstractFileSystem | None = None
    url: str | None = None

    @classmethod
    def local(cls, root: str | Path) -> Location:
        folder = Path(root).expanduser().resolve()
        return cls(folder=folder, base=str(folder))

    @property
    def remote(self) -> bool:
        return self.fs is not None

    @property
    def where(self) -> str:
        """The Parquet root for messages: the URL or the folder."""
        return self.url or self.base

    def path(self, *parts: str) -> str:
        """A path under the Parquet root (``/``-joined, as every fsspec filesystem takes)."""
        return "/".join([self.base.rstrip("/"), *parts])

    def uri(self, path: str) -> str:
        """``path`` as a reader outside this object opens it (DuckDB, Spark): with its
        protocol on an object store, as is on disk."""
        if self.fs is None:
            return path
        return str(self.fs.unstrip_protocol(path))

    def relative(self, path: str) -> str:
        """``path`` (or its URI) relative to the Parquet root, with ``/``."""
        if self.fs is not None and "://" in path:
            path = str(self.fs._strip_protocol(path))
        return path[len(self.base.rstrip("/")) + 1 :]

    # -- listing ------------------------------------------------------------------------------

    def listdir(self, path: str) -> list[str]:
        """The names in a folder (files and sub-folders); empty when there is none."""
        if self.fs is None:
            try:
                return os.listdir(path)
            except (FileNotFoundError, NotADirectoryError):
                return []
        with self.errors("list"):
            self.fs.invalidate_cache(path)  # a cached listing would hide new parts
            try:
                entries = self.fs.ls(path, detail=False)
            except FileNotFoundError:
                return []
        return [str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries]

    def subdirs(self, path: str, prefix: str) -> list[str]:
        """Sub-folders of ``path`` whose names start with ``prefix`` (full paths)."""
        if self.fs is None:
            try:
                with os.scandir(path) as entries:
                    return [e.path for e in entries if e.name.startswith(prefix) and e.is_dir()]
            except (FileNotFoundError, NotADirectoryError):
                return []
        with self.errors("list"):
            self.fs.invalidate_cache(path)
            try:
                entries = self.fs.ls(path, detail=True)
            except FileNotFoundError:
                return []
        out = []
        for entry in entries:
            name = str(entry["name"]).rstrip("/")
            if entry["type"] == "directory" and name.rsplit("/", 1)[-1].startswith(prefix):
                out.append(name)
        return out

    def find(self, path: str) -> list[str]:
        """Every file under ``path`` (full paths, sorted); one listing on an object store."""
        if self.fs is None:
            found: list[str] = []
            for folder, _, names in os.walk(path):
                found.extend(os.path.join(folder, n) for n in names)
            return sorted(found)
        with self.errors("list"):
            self.fs.invalidate_cache(path)
            try:
                return sorted(str(p) for p in self.fs.find(path))
            except FileNotFoundError:
                return []

    def sizes(self, path: str) -> dict[str, int]:
        """The size of every file under ``path``."""
        if self.fs is None:
            return {p: os.path.getsize(p) for p in self.find(path)}
        with self.errors("list"):
            self.fs.invalidate_cache(path)
            found = self.fs.find(path, detail=True)
        return {str(name): int(info.get("size") or 0) for name, info in found.items()}

    def exists(self, path: str) -> bool:
        if self.fs is None:
            return os.path.exists(path)
        with self.errors("read"):
            return bool(self.fs.exists(path))

    # -- reading ------------------------------------------------------------------------------

    def parquet_file(self, path: str) -> pq.ParquetFile:
        """A Parquet file to read row groups from (``FileNotFoundError`` when it is gone)."""
        if self.fs is None:
            return pq.ParquetFile(path)
        with self.errors("read"):
            return pq.ParquetFile(self.fs.open(path, "rb"))

    def read_table(self, path: str, **kwargs: Any) -> pa.Table:
        """``pq.read_table`` of one file (``FileNotFoundError`` when it is gone)."""
        if self.fs is None:
            return pq.read_table(path, **kwargs)
        with self.errors("read"):
            data = self.fs.cat_file(path)
        return pq.read_table(pa.BufferReader(data), **kwargs)

    def read_schema(self, path: str) -> pa.Schema:
        return self.parquet_file(path).schema_arrow

    # -- writing ------------------------------------------------------------------------------

    def write_parquet(self, table: pa.Table, folder: str, name: str, **options: Any) -> str:
        """Write ``table`` to ``folder/name`` so that it appears whole or not at all, durably;
        returns its path.

        On disk: ``.<name>.tmp``, fsync, rename over ``name`` (the caller fsyncs the folder).
        On an object store: one ``PUT`` of the final name, then ``confirm``.
        """
        final = f"{folder}/{name}"
        if self.fs is None:
            os.makedirs(folder, exist_ok=True)
            tmp = f"{folder}/.{name.removesuffix('.parquet')}{_TMP_SUFFIX}"
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh, **options)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            return final
        buffer = io.BytesIO()
        pq.write_table(table, buffer, **options)
        data = buffer.getvalue()
        with self.errors("write to"):
            self.fs.pipe_file(final, data)
        self.confirm(final, len(data))
        return final

    def confirm(self, path: str, size: int) -> None:
        """Check that the object store holds ``path`` whole (its size, read back with a
        ``HEAD``); raises ``StoreUnavailable`` otherwise. Nothing to check on disk."""
        if self.fs is None:
            return
        with self.errors("write to"):
            self.fs.invalidate_cache(path)
            found = int(self.fs.info(path).get("size") or 0)
        if found != size:
            raise StoreUnavailable(
                f"The prediction log's object store holds {found} bytes of '{self.uri(path)}' "
                f"after a write of {size}: the write did not land; it is retried."
            )

    def sync_folders(self, folders: set[str]) -> None:
        """fsync folders whose names changed (on disk; an object store has none)."""
        if self.fs is None:
            for folder in folders:
                fsync_dir(Path(folder))

    def remove(self, path: str) -> None:
        """Delete one file (no error when it is gone already)."""
        if self.fs is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        with self.errors("delete from"), contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def remove_tree(self, path: str) -> None:
        """Delete a folder and everything under it."""
        if self.fs is None:
            import shutil

            shutil.rmtree(path)
            return
        with self.errors("delete from"):
            files = self.find(path)
            if files:
                self.fs.rm(files)
            self.fs.invalidate_cache(path)

    # -- errors -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn an object store's failure into ``StoreUnavailable`` naming the store, its
        endpoint and the fix (``shipyard.store.store_errors``); a missing file stays
        ``FileNotFoundError``: callers expect a part deleted meanwhile."""
        from shipyard.store import store_errors

        with store_errors(self.where, self.fs, action):
            yield


def store_file(folder: Path) -> Path:
    return folder / STORE_FILE


def write_store_file(folder: Path, url: str, options: Mapping[str, Any] | None) -> None:
    """Record in the log folder where its Parquet is (atomically; no secrets)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"url": url, "storage_options": public_options(options)}, indent=2)
    tmp = folder / f".{STORE_FILE}{_TMP_SUFFIX}"
    tmp.write_text(text + "\n")
    os.replace(tmp, store_file(folder))


def read_store_file(folder: Path) -> tuple[str, dict[str, Any]] | None:
    """(url, storage options) of a log folder whose Parquet is remote, else None."""
    try:
        data = json.loads(store_file(folder).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"The prediction log's '{store_file(folder)}' cannot be read ({exc}); write it "
            'again as {"url": "s3://bucket/prefix"} or restart the server with --log-store.'
        ) from None
    return str(data["url"]), dict(data.get("storage_options") or {})


def open_location(
    root: str | Path,
    store_url: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    *,
    check: bool = True,
) -> Location:
    """The location of a log: a local folder (its Parquet beside the WAL, or where its
    ``store.json`` or ``store_url`` says) or a URL (the Parquet alone).

    ``storage_options`` (fsspec's) are merged over those of ``store.json``. ``check``: make
    sure the bucket exists and takes the keys now (one request), else ``StoreUnavailable``
    says which and how to fix it.
    """
    if is_url(root):
        url: str | None = str(root)
        folder: Path | None = None
        options: dict[str, Any] = dict(storage_options or {})
    else:
        folder = Path(root).expanduser().resolve()
        url = store_url
        options = dict(storage_options or {})
        if url is None:
            found = read_store_file(folder)
            if found is not None:
                url, saved = found
                options = {**saved, **options}
    if url is None:
        assert folder is not None
        return Location(folder=folder, base=str(folder))
    from shipyard.store import open_filesystem

    fs, base = open_filesystem(url, options, check=check)
    return Location(folder=folder, base=base.rstrip("/"), fs=fs, url=url.rstrip("/"))


def as_location(
    root: str | Path | Location, storage_options: Mapping[str, Any] | None = None
) -> Location:
    """``root`` as a ``Location`` (itself when it is one already)."""
    if isinstance(root, Location):
        return root
    return open_location(root, storage_options=storage_options)
