"""Reaching a storage URL: ``open_filesystem(url, storage_options) -> (fs, root)``, the one way
every package opens a folder or an object store, and ``store_errors``, the one translation of
an object store's refusals into ``StoreUnavailable`` sentences that name the bucket, the
endpoint and the fix.

The endpoint and keys come from ``storage_options`` (fsspec's, e.g. s3fs's ``key``, ``secret``,
``endpoint_url``, ``client_kwargs``) or, when those leave them out, from the variables and files
botocore reads itself (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``~/.aws/credentials``...).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator, Mapping
from typing import Any

import fsspec
from fsspec.spec import AbstractFileSystem

from shipyard.errors import InvalidInput, MissingDependency, StoreUnavailable

#: The fsspec protocols of S3 (s3fs registers both).
S3_PROTOCOLS = ("s3", "s3a")


def protocol_of(url: str) -> str:
    """``"s3"`` for ``s3://bucket/x``, ``"file"`` for a local path."""
    protocol, _ = fsspec.core.split_protocol(url)
    return protocol or "file"


def is_local(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` is the local disk (where ``os`` calls work on its paths)."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return "file" in protocols or "local" in protocols


def open_filesystem(
    url: str, storage_options: Mapping[str, Any] | None = None, *, check: bool = True
) -> tuple[AbstractFileSystem, str]:
    """The filesystem of ``url`` and the root path inside it (no trailing slash).

    ``check=True`` makes sure the root can be used now: a local folder is created; on S3 the
    bucket must exist and accept the keys (one LIST request), else ``StoreUnavailable`` says
    which and how to fix it. Buckets are never created here: that is the administrator's
    choice (region, retention, access policy).

    >>> fs, root = open_filesystem("memory://doc-fs")
    >>> root
    '/doc-fs'
    """
    options = dict(storage_options or {})
    protocol = protocol_of(url)
    if protocol in S3_PROTOCOLS:
        # Another process (a replica, a compactor) writes the same prefix: listings must not
        # be answered from this process's memory.
        options.setdefault("use_listings_cache", False)
        # A filesystem of its own: fsspec's instance cache keys on the options alone, so a
        # cached one would keep the AWS_* keys and endpoint read when it was first made.
        options.setdefault("skip_instance_cache", True)
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        extra = "s3" if protocol in S3_PROTOCOLS else protocol
        raise MissingDependency(
            f"The store '{url}' needs the '{protocol}' filesystem for fsspec ({exc}); install "
            f"it with: pip install 'shipyard[{extra}]'."
        ) from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"The storage options for '{url}' are not accepted ({exc}); check the keys of "
            "SHIPYARD_STORAGE_OPTIONS or [storage] options in shipyard.toml against the "
            f"'{protocol}' filesystem's documentation."
        ) from exc
    root = root.rstrip("/") or root
    if check:
        with store_errors(url, fs, "open"):
            if protocol in S3_PROTOCOLS:
                _probe_bucket(fs, root)
            else:
                fs.makedirs(root, exist_ok=True)
    return fs, root


def _probe_bucket(fs: AbstractFileSystem, root: str) -> None:
    """One LIST of at most one key under ``root``: a missing bucket, refused keys and an
    unreachable endpoint all answer here, before anything is written."""
    bucket, _, prefix = root.partition("/")
    fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=prefix, MaxKeys=1)


def endpoint_of(fs: AbstractFileSystem | None) -> str:
    """Where ``fs`` sends its requests: its endpoint URL, or AWS S3 itself."""
    if fs is None:
        return "the object store"
    options = getattr(fs, "client_kwargs", None) or {}
    endpoint = (
        getattr(fs, "endpoint_url", None)
        or options.get("endpoint_url")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    return str(endpoint) if endpoint else "AWS S3"


def _bucket(url: str) -> str:
    _, path = fsspec.core.split_protocol(url)
    return path.split("/", 1)[0]


def _code(exc: BaseException) -> str:
    """The S3 error code behind ``exc`` (s3fs keeps the botocore error as the cause)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        current = current.__cause__ or current.__context__
    return ""


def _connection_failed(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) is a refused, reset or timed-out connection."""
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        if isinstance(current, ConnectionError | TimeoutError) or name in (
            "EndpointConnectionError",
            "ConnectTimeoutError",
            "ReadTimeoutError",
            "ConnectionClosedError",
            "ClientConnectorError",
            "ServerDisconnectedError",
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def explain(url: str, fs: AbstractFileSystem | None, action: str, exc: BaseException) -> str:
    """One sentence: what ``action`` on ``url`` met, and how to fix it."""
    remote = protocol_of(url) in S3_PROTOCOLS
    code = _code(exc)
    if remote:
        bucket, endpoint = _bucket(url), endpoint_of(fs)
        if code == "NoSuchBucket":
            return (
                f"Cannot {action} the store '{url}': the bucket '{bucket}' does not exist at "
                f"{endpoint}. Create it (aws s3 mb s3://{bucket}) or point the URL at an "
                "existing bucket."
            )
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
            return (
                f"Cannot {action} the store '{url}': {endpoint} refused the keys ({code}). Set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or 'key' and 'secret' in "
                "SHIPYARD_STORAGE_OPTIONS / [storage] options) to keys it accepts."
            )
        if code in ("AccessDenied", "AllAccessDisabled", "AccountProblem") or isinstance(
            exc, PermissionError
        ):
            return (
                f"Cannot {action} the store '{url}': {endpoint} denied access to bucket "
                f"'{bucket}' ({code or exc}). Give these keys list, read, write and delete "
                "rights on it, or use keys that have them."
            )
        if _connection_failed(exc):
            return (
                f"Cannot {action} the store '{url}': {endpoint} cannot be reached "
                f"({type(exc).__name__}). Start it, or fix AWS_ENDPOINT_URL (or 'endpoint_url' "
                "in SHIPYARD_STORAGE_OPTIONS / [storage] options)."
            )
        return (
            f"Cannot {action} the store '{url}' at {endpoint}: {code or exc}. Check that the "
            "object store is up and the bucket and keys are right."
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"Cannot {action} the store '{url}': the disk is full. Free space and retry."
    return (
        f"Cannot {action} the store '{url}': {exc}. Make the folder writable or point the URL "
        "elsewhere."
    )


@contextlib.contextmanager
def store_errors(
    url: str, fs: AbstractFileSystem | None = None, action: str = "use"
) -> Iterator[None]:
    """Turn an object store's or a disk's failure inside the block into ``StoreUnavailable``
    (``FileNotFoundError`` of a key passes through: the caller knows what is missing).

    >>> with store_errors("s3://bucket/x", None, "write to"):  # doctest: +SKIP
    ...     fs.pipe_file("bucket/x/a", b"1")
    """
    try:
        yield
    except FileNotFoundError as exc:
        if _code(exc) == "NoSuchBucket":
            raise StoreUnavailable(explain(url, fs, action, exc)) from exc
        raise
    except StoreUnavailable:
        raise
    except Exception as exc:
        if _is_store_failure(exc):
            raise StoreUnavailable(explain(url, fs, action, exc)) from exc
        raise


def _is_store_failure(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("botocore", "aiobotocore", "aiohttp")) or _connection_failed(exc)
