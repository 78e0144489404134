"""The artifact store: immutable blobs (archives, run artifacts) behind any fsspec URL."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from fsspec.spec import AbstractFileSystem

from shipyard.errors import AlreadyExists, NotFound
from shipyard.store._fs import S3_PROTOCOLS, is_local, open_filesystem, protocol_of, store_errors

# Filesystems without an atomic create (memory://, and any other fsspec backend but the local
# disk and S3) serialise conditional writes inside this process: exact for memory://.
_CREATE_LOCK = threading.Lock()


class ArtifactStore:
    """Blobs addressed by a key such as ``models/churn/3-1a2b3c.zip``.

    ``url`` is a local folder or any fsspec URL (``s3://bucket/prefix``, ``memory://x``);
    ``storage_options`` are the filesystem's (s3fs: ``key``, ``secret``, ``endpoint_url``,
    ``default_block_size``...; see ``shipyard.store.open_filesystem``).

    Writes cannot half-happen: a local file is written under a temporary name and renamed; an
    S3 object appears whole when its PUT (or, above the block size, its multipart upload)
    completes, and a failed multipart upload is aborted.

    >>> store = ArtifactStore("memory://doc").open()
    >>> store.put("a/b.txt", b"hi")
    'sha256:8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4'
    >>> store.get("a/b.txt")
    b'hi'
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.storage_options = dict(storage_options or {})

    def open(self) -> ArtifactStore:
        fs, root = open_filesystem(self.url, self.storage_options)
        self._fs: AbstractFileSystem = fs
        self._root = root
        self._s3 = protocol_of(self.url) in S3_PROTOCOLS
        self._local = is_local(fs)
        return self

    def _path(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid artifact key {key!r}")
        return f"{self._root}/{key}"

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> str:
        """Write ``data`` under ``key`` and return its digest; nobody ever reads a partial blob.

        ``if_absent=True`` writes only if nothing is stored under ``key`` yet, atomically
        where two writers may race (S3 ``If-None-Match: *``, a hard link on the local disk):
        the loser gets ``AlreadyExists`` and the winner's blob is untouched.
        """
        path = self._path(key)
        with store_errors(self.url, self._fs, "write to"):
            if self._local:
                self._put_local(key, path, data, if_absent)
            elif self._s3:
                self._put_s3(key, path, data, if_absent)
            else:
                self._put_other(key, path, data, if_absent)
        return sha256(data)

    def _put_local(self, key: str, path: str, data: bytes, if_absent: bool) -> None:
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if if_absent:
                try:
                    os.link(tmp, path)  # fails if the name exists: the atomic create
                except FileExistsError as exc:
                    raise self._exists(key) from exc
            else:
                os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _put_s3(self, key: str, path: str, data: bytes, if_absent: bool) -> None:
        # "xb": s3fs sends If-None-Match: * on the PUT, or on CompleteMultipartUpload above
        # the block size; the server answers 412 when the key exists.
        fh = self._fs.open(path, "xb" if if_absent else "wb")
        try:
            # block by block: above the block size each block is one part of a multipart
            # upload (s3fs would otherwise send the whole buffer as a single part)
            view, step = memoryview(data), int(fh.blocksize)
            for start in range(0, len(data), step):
                fh.write(view[start : start + step])
            fh.close()
        except FileExistsError as exc:
            _discard_upload(fh)
            raise self._exists(key) from exc
        except BaseException as exc:
            _discard_upload(fh)
            if _precondition_failed(exc):
                raise self._exists(key) from exc
            raise

    def _put_other(self, key: str, path: str, data: bytes, if_absent: bool) -> None:
        self._fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        try:
            with self._fs.open(tmp, "wb") as fh:
                fh.write(data)
            with _CREATE_LOCK:
                if if_absent and self._fs.exists(path):
                    raise self._exists(key)
                self._fs.mv(tmp, path)
        finally:
            self._discard(tmp)

    def _exists(self, key: str) -> AlreadyExists:
        return AlreadyExists(
            f"The artifact '{key}' already exists in '{self.url}': another writer stored it "
            "first, and it was not overwritten. Write under a new key."
        )

    def get(self, key: str) -> bytes:
        try:
            with (
                store_errors(self.url, self._fs, "read from"),
                self._fs.open(self._path(key), "rb") as fh,
            ):
                data: bytes = fh.read()
                return data
        except FileNotFoundError as exc:
            raise self._missing(key) from exc

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        """``key`` as a seekable binary file, read on demand (for a zip's manifest alone: a
        remote store then fetches the few ranges the zip reader asks for, not the blob)."""
        try:
            with (
                store_errors(self.url, self._fs, "read from"),
                self._fs.open(self._path(key), "rb") as fh,
            ):
                yield fh
        except FileNotFoundError as exc:
            raise self._missing(key) from exc

    def _missing(self, key: str) -> NotFound:
        return NotFound(
            f"The artifact '{key}' is missing from '{self.url}'; it was deleted out of band."
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (all keys by default), sorted; temporary files of
        writes in progress on a local folder are included.

        >>> ArtifactStore("memory://doc-keys").open().keys()
        []
        """
        base = self._path(prefix).rstrip("/") if prefix else self._root
        with store_errors(self.url, self._fs, "list"):
            try:
                found = self._fs.find(base)
            except FileNotFoundError:
                return []
        start = len(self._root.rstrip("/")) + 1
        return sorted(str(path)[start:] for path in found)

    def exists(self, key: str) -> bool:
        with store_errors(self.url, self._fs, "read from"):
            return bool(self._fs.exists(self._path(key)))

    def delete(self, key: str) -> None:
        with store_errors(self.url, self._fs, "delete from"):
            self._discard(self._path(key))

    def size(self, key: str) -> int:
        try:
            with store_errors(self.url, self._fs, "read from"):
                return int(self._fs.size(self._path(key)))
        except FileNotFoundError as exc:
            raise self._missing(key) from exc

    def _discard(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(path)


def _discard_upload(fh: Any) -> None:
    """Abort what a failed S3 write started (a multipart upload), so no part lingers."""
    with contextlib.suppress(Exception):
        fh.discard()


def _precondition_failed(exc: BaseException) -> bool:
    current: BaseException | None = exc
    while current is not None:
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "412") or status == 412:
                return True
        current = current.__cause__ or current.__context__
    return False


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``: the digest format used everywhere in Shipyard."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
