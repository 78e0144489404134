"""The Dask engine: a Dask cluster, local by default, any scheduler address otherwise."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.batch import ScoreSummary, arrow_schema, parquet_rows, score_dask, table_format
from shipyard.dataset import Profile, Schema
from shipyard.engines._contract import LoggedWindow
from shipyard.engines._progress import display
from shipyard.errors import InvalidInput, MissingDependency
from shipyard.monitoring import DriftAccumulator, Progress, dask_accumulate
from shipyard.packaging import LoadedModel

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd
    import pyarrow as pa
    from distributed import Client


#: How long ``--dask-scheduler`` waits for its scheduler to answer when dask's own
#: ``distributed.comm.timeouts.connect`` is left at dask's default (30 s: long to learn that
#: an address is wrong).
CONNECT_TIMEOUT = "10s"


def connect_timeout() -> str | float:
    """dask's ``distributed.comm.timeouts.connect`` when configured (a dask config file, the
    ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT`` variable, ``dask.config.set``) to anything
    but dask's default; ``CONNECT_TIMEOUT`` otherwise. Call it after importing
    ``distributed``, which adds that default.

    >>> import dask.config, distributed
    >>> connect_timeout()
    '10s'
    >>> with dask.config.set({"distributed.comm.timeouts.connect": "45s"}):
    ...     connect_timeout()
    '45s'
    """
    import dask.config

    key = "distributed.comm.timeouts.connect"
    configured: str | float = dask.config.get(key)
    default = dask.config.get(key, config=dask.config.merge(*dask.config.defaults))
    return CONNECT_TIMEOUT if configured == default else configured


class DaskEngine:
    """Runs on the Dask scheduler at ``scheduler`` (``tcp://host:8786``), or on a
    ``LocalCluster`` of ``n_workers`` single-threaded worker processes (default: one per CPU)
    started and stopped around each call. Workers must import the same Shipyard and model
    libraries, and read ``src`` and write ``dst`` at the same paths (a shared file system).
    Scoring writes a folder of part files (``part-00000.parquet``...); counting merges the
    pandas engine's counts of each partition."""

    name = "dask"

    def __init__(self, *, scheduler: str | None = None, n_workers: int | None = None) -> None:
        self.scheduler = scheduler
        self.n_workers = n_workers

    @contextlib.contextmanager
    def client(self) -> Iterator[Client]:
        """A client of ``scheduler``, or of a new local cluster (closed on exit)."""
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise MissingDependency(
                "--engine dask needs dask and distributed: pip install 'shipyard[dask]'."
            ) from exc
        if self.scheduler:
            try:
                client = Client(self.scheduler, timeout=connect_timeout())
            except (OSError, TimeoutError, ValueError) as exc:
                raise InvalidInput(
                    f"No Dask scheduler answers at '{self.scheduler}' ({exc}): start one "
                    "('dask scheduler') or fix --dask-scheduler / SHIPYARD_DASK_SCHEDULER."
                ) from exc
            with client:
                yield client
            return
        with (
            LocalCluster(
                n_workers=self.n_workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # any free port: never collide with 8787
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client

    def score(
        self, loaded: LoadedModel, src: Path, dst: Path, *, progress: Progress | None = None
    ) -> ScoreSummary:
        fmt, out_fmt = table_format(src), table_format(dst)
        if not src.exists():
            raise InvalidInput(f"No such file: '{src}'.")
        if dst.exists():
            raise InvalidInput(
                f"'{dst}' already exists: Dask writes a new folder; remove it first."
            )
        if not dst.parent.is_dir():
            raise InvalidInput(f"The folder of '{dst}' does not exist: create it first.")
        started = time.perf_counter()
        # Parts go to a hidden folder renamed at the end: a failure leaves no partial output.
        tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex[:12]}.tmp"
        tmp.mkdir()
        try:
            with self.client() as client:
                scored = score_dask(loaded, _read(src, fmt))
                rows, parts = _write_parts(client, scored, tmp, out_fmt, src, progress)
            if rows == 0:
                raise InvalidInput(f"'{src}' has no rows: there is nothing to score.")
            tmp.rename(dst)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return ScoreSummary(rows=rows, chunks=parts, seconds=time.perf_counter() - started)

    def count(
        self,
        reference: Profile,
        source: Path | LoggedWindow,
        *,
        schema: Schema | None = None,
        progress: Progress | None = None,
    ) -> DriftAccumulator:
        with self.client() as client:
            if isinstance(source, LoggedWindow):
                return dask_accumulate(
                    reference,
                    client=client,
                    window=source.as_tuple(),
                    schema=schema,
                    progress=progress,
                )
            return dask_accumulate(
                reference, source, client=client, schema=schema, progress=progress
            )

    def __repr__(self) -> str:
        return f"DaskEngine(scheduler={self.scheduler!r}, n_workers={self.n_workers!r})"


def _read(src: Path, fmt: str) -> dd.DataFrame:
    import dask.dataframe as dd

    try:
        if fmt == "parquet":
            return dd.read_parquet(str(src))
        return dd.read_csv(str(src), blocksize="64MB")
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Dask cannot read '{src}': {_first_line(exc)}") from exc


def _write_parts(
    client: Client,
    scored: dd.DataFrame,
    folder: Path,
    fmt: str,
    src: Path,
    progress: Progress | None,
) -> tuple[int, int]:
    """Each partition scored and written by a worker to ``part-<i>.<fmt>``: (rows, parts)."""
    from dask import delayed
    from distributed import as_completed

    schema = arrow_schema(scored._meta)
    write = delayed(_write_part, pure=False)
    tasks = [
        write(part, folder / f"part-{i:05d}.{fmt}", fmt, schema)
        for i, part in enumerate(scored.to_delayed())
    ]
    rows = 0
    with display(progress)(f"Scoring {src} on Dask", parquet_rows(src)) as advance:
        try:
            for future in as_completed(client.compute(tasks)):
                written = int(future.result())
                rows += written
                advance(written)
        except (OSError, ValueError) as exc:  # unreadable or mistyped input, on a worker
            raise InvalidInput(f"Dask could not score '{src}': {_first_line(exc)}") from exc
    return rows, len(tasks)


def _write_part(frame: pd.DataFrame, path: Path, fmt: str, schema: pa.Schema) -> int:
    """Runs on a Dask worker: one scored partition to one file, in the declared schema."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    table = table.replace_schema_metadata(None)
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path)
    return table.num_rows


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
