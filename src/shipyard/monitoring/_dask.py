"""``--engine dask``: the drift accumulator's counts, computed on Dask workers.

Each worker counts its partitions with the pandas engine's own code (``DriftAccumulator``);
only the accumulators (bounded counts, never rows) come back, and the driver merges them in
partition order. So every count, score and flag is the pandas engine's, and the names of
unseen categories are kept in the same first-seen order.

Parquet (a file, a folder of files, or a Dask DataFrame the caller built) is read by the
workers themselves, partition by partition. CSV and a logged window are read by the driver,
as the pandas engine reads them (pandas' type inference per chunk; DuckDB over the log's parts
and WAL), and each chunk is counted on a worker, a few at a time so memory stays bounded.

>>> from distributed import Client
>>> acc = dask_accumulate(reference, Path("current/"), client=Client())  # doctest: +SKIP
>>> build_report(acc).flagged()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.dataset import Profile, Schema, file_chunks
from shipyard.errors import InvalidInput
from shipyard.monitoring._accumulate import Chunk, DriftAccumulator, Progress, chunk_rows
from shipyard.monitoring._window import window_chunks

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

#: A logged window: (log root, model, version, start, end, outputs), as ``spark_accumulate``.
Window = tuple[Path, str, int, datetime, datetime, bool]

#: Chunks in flight per worker when the driver reads (CSV, a log window): bounds memory.
IN_FLIGHT_PER_WORKER = 2


def dask_accumulate(
    reference: Profile,
    current: dd.DataFrame | Path | None = None,
    *,
    client: Client,
    window: Window | None = None,
    schema: Schema | None = None,
    progress: Progress | None = None,
) -> DriftAccumulator:
    """Count the current window against ``reference`` on ``client``'s workers, as
    ``DriftAccumulator(reference, schema=schema).update(...)`` does on the same rows.

    ``current`` is a Dask DataFrame, or a Parquet file or folder, or a CSV file; ``window``
    instead is a logged window ``(log root, model, version, start, end, outputs)``.
    ``progress(description, rows)`` is entered around the counting and advanced by the rows
    of each partition or chunk counted.
    """
    if (current is None) == (window is None):
        raise InvalidInput("dask_accumulate counts either current or a logged window.")
    rows = chunk_rows(len(reference.columns))
    total: int | None = None
    if window is not None:
        root, model, version, start, end, outputs = window
        total, chunks = window_chunks(root, model, version, start, end, outputs=outputs, rows=rows)
        description = f"Counting log:{start:%Y-%m-%dT%H:%M}..{end:%Y-%m-%dT%H:%M} on Dask"
        return _count_streamed(client, reference, schema, chunks, description, total, progress)
    if isinstance(current, str | Path):
        path = Path(current)
        if not path.exists():
            raise InvalidInput(f"No such file: '{path}'.")
        if path.suffix.lower() == ".csv":
            total, chunks = file_chunks(path, rows=rows)
            description = f"Counting {path} on Dask"
            return _count_streamed(client, reference, schema, chunks, description, total, progress)
        total, current = _read_parquet(path)
    assert current is not None
    return _count_partitions(client, reference, schema, current, total, progress)


def _read_parquet(path: Path) -> tuple[int | None, dd.DataFrame]:
    import dask.dataframe as dd

    if not (path.is_dir() or path.suffix.lower() in (".parquet", ".pq")):
        raise InvalidInput(f"'{path}' is neither Parquet (.parquet) nor CSV (.csv).")
    try:
        import pyarrow.parquet as pq

        files = pq.ParquetDataset(path).files
        total = sum(pq.ParquetFile(file).metadata.num_rows for file in files)
        return total, dd.read_parquet(str(path))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"Dask cannot read '{path}': {_first_line(exc)}") from exc


def _count_partitions(
    client: Client,
    reference: Profile,
    schema: Schema | None,
    df: dd.DataFrame,
    total: int | None,
    progress: Progress | None,
) -> DriftAccumulator:
    """Each partition of ``df`` read and counted on a worker; merged in partition order."""
    from dask import delayed

    count = delayed(_count_chunk, pure=True)
    tasks = [count(part, reference, schema) for part in df.to_delayed()]
    with _display(progress)("Counting on Dask", total) as advance:
        try:
            futures = client.compute(tasks)
            results = _gather_in_order(futures, advance)
        except (OSError, ValueError) as exc:  # unreadable Parquet, raised on a worker
            raise InvalidInput(f"Dask could not read the data: {_first_line(exc)}") from exc
    return _merged(reference, schema, results)


def _count_streamed(
    client: Client,
    reference: Profile,
    schema: Schema | None,
    chunks: Iterable[Chunk],
    description: str,
    total: int | None,
    progress: Progress | None,
) -> DriftAccumulator:
    """Chunks read here, each counted on a worker, at most a few per worker in flight."""
    from distributed import as_completed

    limit = max(1, IN_FLIGHT_PER_WORKER * len(client.scheduler_info().get("workers", {})))
    [shipped_reference] = client.scatter([reference], broadcast=True, hash=False)
    index: dict[Any, int] = {}  # future key -> chunk number
    results: dict[int, DriftAccumulator] = {}

    def collect(done: Any) -> None:
        results[index.pop(done.key)] = part = done.result()
        advance(part.n_rows)

    with _display(progress)(description, total) as advance:
        pending = as_completed()
        for i, chunk in enumerate(chunks):
            future = client.submit(_count_chunk, chunk, shipped_reference, schema, pure=False)
            index[future.key] = i
            pending.add(future)
            if len(index) >= limit:
                collect(next(pending))
        for done in pending:
            collect(done)
    return _merged(reference, schema, [results[i] for i in sorted(results)])


def _gather_in_order(futures: list[Any], advance: Callable[[int], None]) -> list[Any]:
    from distributed import as_completed

    index = {future.key: i for i, future in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    for future in as_completed(futures):
        result = future.result()
        results[index[future.key]] = result
        advance(result.n_rows)
    return results


def _count_chunk(chunk: Chunk, reference: Profile, schema: Schema | None) -> DriftAccumulator:
    """Runs on a Dask worker: the pandas engine's counts of one partition or chunk."""
    return DriftAccumulator(reference, schema=schema).update(chunk)


def _merged(
    reference: Profile, schema: Schema | None, parts: list[DriftAccumulator]
) -> DriftAccumulator:
    accumulator = DriftAccumulator(reference, schema=schema)
    for part in parts:  # in order: unseen category names stay first-seen, as in pandas
        accumulator.merge(part)
    return accumulator


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _display(progress: Progress | None) -> Progress:
    return progress or _no_progress


@contextmanager
def _no_progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    yield lambda n: None
