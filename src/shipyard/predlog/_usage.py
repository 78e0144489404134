"""Usage per team, token and model, read from the prediction log (chargeback).

Every answered request a server logs carries who called and what it cost (see ``_decode``):
``caller`` (the API token's name), ``team`` (the token's team), ``compute_ms`` (the model's
compute time for the whole request) and ``request_rows`` (its row count), the same on each of
its rows. Usage is a query over those columns, so it is as durable as the log itself: a
server killed after answering loses no usage, because it acknowledged nothing it had not
logged (the WAL is replayed by the next process to open the log).

What is counted, per group:

- ``requests``: answered requests, ``sum(1 / request_rows)`` over their rows (a row without
  ``request_rows``, from a log written before usage was kept, counts as one request);
- ``rows``: rows answered;
- ``compute_seconds``: ``sum(compute_ms / request_rows) / 1000``;
- ``refused``: requests refused after the token was accepted (bad input, too large ...).

A shadow's answers (arm ``shadow``) and the members' answers inside a model group's request
(arm ``group:<name>``) are the platform's own work, not requests anyone sent: they are left
out; the group's request is counted under the group's name.

>>> usage(root, since=datetime(2026, 12, 1, tzinfo=UTC), by="team")  # doctest: +SKIP
   team  requests   rows  compute_seconds  refused
0  risk      1200   4800            0.912        3
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.predlog._location import as_location
from shipyard.predlog._parquet import PREDICTIONS_DIR
from shipyard.predlog._reader import frame_of, read_window
from shipyard.predlog._wal import PREDICTION, list_segments, parse_segment_name

UsageBy = Literal["team", "token", "model"]
USAGE_BY: tuple[str, ...] = ("team", "token", "model")
#: The figures of every usage row, after its key columns.
USAGE_FIGURES = ["requests", "rows", "compute_seconds", "refused"]
_KEYS: dict[str, list[str]] = {
    "team": ["team"],
    "token": ["token", "team"],
    "model": ["model", "version"],
}

_SQL = """
SELECT team, caller AS token, model, version,
  round(sum(CASE WHEN status = 'ok' THEN 1.0 / coalesce(request_rows, 1) END)) AS requests,
  count(*) FILTER (WHERE status = 'ok') AS rows,
  coalesce(sum(CASE WHEN status = 'ok' THEN coalesce(compute_ms, 0)
                    / coalesce(request_rows, 1) END), 0) / 1000 AS compute_seconds,
  count(*) FILTER (WHERE status = 'rejected') AS refused
FROM predictions
WHERE arm IS DISTINCT FROM 'shadow' AND coalesce(arm, '') NOT LIKE 'group:%'
GROUP BY ALL
"""


def logged_models(root: str | Path) -> list[str]:
    """The models with predictions in the log under ``root`` (Parquet, beside the WAL or on
    its object store, or WAL), sorted."""
    location = as_location(root)
    names = {
        sub.rstrip("/").rsplit("/", 1)[-1].removeprefix("model=")
        for sub in location.subdirs(location.path(PREDICTIONS_DIR), "model=")
    }
    if location.folder is not None:
        for path in list_segments(location.folder / "wal"):
            key = parse_segment_name(path.name)[1]
            if key.kind == PREDICTION:
                names.add(key.model)
    return sorted(names)


def usage(
    root: str | Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str = "team",
) -> pd.DataFrame:
    """Requests, rows, compute seconds and refusals in ``[since, until)``, grouped ``by``
    ``team``, ``token`` (with its team) or ``model`` (with its version); biggest compute
    first. Columns: the keys, then ``USAGE_FIGURES``; a missing team or token is ``None``.
    """
    if by not in _KEYS:
        raise InvalidInput(f"Usage is grouped by one of: {', '.join(USAGE_BY)}. Got {by!r}.")
    if since is not None and until is not None and since >= until:
        raise InvalidInput(
            f"--since ({since:%Y-%m-%dT%H:%M:%S}) must be before --until "
            f"({until:%Y-%m-%dT%H:%M:%S})."
        )
    frames = []
    for model in logged_models(root):
        con = read_window(root, model, start=since, end=until).connect()
        try:
            frames.append(frame_of(con, _SQL))
        finally:
            con.close()
    keys = _KEYS[by]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=[*keys, *USAGE_FIGURES])
    every = pd.concat(frames, ignore_index=True)
    grouped = every.groupby(keys, dropna=False, sort=False)[USAGE_FIGURES].sum().reset_index()
    grouped = grouped.sort_values(["compute_seconds", "requests"], ascending=False)
    for column in ("requests", "rows", "refused"):
        grouped[column] = grouped[column].astype("int64")
    if "version" in grouped:
        grouped["version"] = grouped["version"].astype("Int64")
    grouped = grouped.astype({k: object for k in keys if k != "version"})
    return grouped.where(grouped.notna(), None).reset_index(drop=True)
