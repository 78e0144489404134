"""One monitoring window in detail (the drill-down from a breached point): every stored result
of its run, and up to ``SAMPLE_ROWS`` rows of the prediction log in that window.

>>> detail = window_detail(store, "churn", run_id, predlog=Path("predictions"))  # doctest: +SKIP
>>> [r.metric for r in detail.results if r.flagged], len(detail.sample.rows)  # doctest: +SKIP
(['drift', 'wasserstein'], 20)
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from shipyard.errors import NotFound, ShipyardError
from shipyard.store import Store
from shipyard.store.tables import Model, MonitoringResult

#: Log rows shown of a window.
SAMPLE_ROWS = 20
#: Characters kept of one sample cell.
CELL_CHARS = 200


class ResultRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    feature: str
    metric: str
    value: float | None
    threshold: float | None
    flagged: bool
    rows: int


class SampleRows(BaseModel):
    """Sample rows of the window's log, as text cells; ``note`` says why there are none."""

    model_config = ConfigDict(frozen=True)

    columns: list[str]
    rows: list[list[str]]
    note: str | None = None


class WindowDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    run_id: str
    version: int
    source: str
    window_start: datetime | None
    window_end: datetime
    created_at: datetime
    rows: int
    seconds: float
    flagged: list[str]
    """``feature: metric`` of every flagged result."""
    results: list[ResultRow]
    sample: SampleRows


def window_detail(
    store: Store, name: str, run_id: str, *, predlog: Path | None, sample: int = SAMPLE_ROWS
) -> WindowDetail:
    """Run ``run_id`` of model ``name``; ``NotFound`` when the model has no such run."""
    with store.read() as session:
        if session.get(Model, name) is None:
            raise NotFound(f"There is no model '{name}'.")
        results = session.scalars(
            select(MonitoringResult)
            .where(MonitoringResult.run_id == run_id, MonitoringResult.model_name == name)
            .order_by(MonitoringResult.feature, MonitoringResult.metric)
        ).all()
        if not results:
            raise NotFound(
                f"Model '{name}' has no monitoring run '{run_id[:64]}'; the monitoring page "
                "links the stored ones."
            )
        first = results[0]
        detail = {
            "version": first.version,
            "source": first.source,
            "window_start": first.window_start,
            "window_end": first.window_end,
            "created_at": first.created_at,
            "seconds": first.seconds,
        }
        rows = [ResultRow.model_validate(r, from_attributes=True) for r in results]
    n_rows = next((int(r.value or 0) for r in rows if r.metric == "rows" and r.feature == "*"), 0)
    return WindowDetail.model_validate(
        {
            "name": name,
            "run_id": run_id,
            "rows": n_rows or first.rows,
            "flagged": [f"{r.feature}: {r.metric}" for r in rows if r.flagged],
            "results": rows,
            "sample": _sample(predlog, name, detail, sample),
            **detail,
        }
    )


def _sample(predlog: Path | None, name: str, run: dict[str, Any], limit: int) -> SampleRows:
    if predlog is None:
        return SampleRows(columns=[], rows=[], note="No prediction log is configured.")
    start, end = run["window_start"], run["window_end"]
    if start is None:
        return SampleRows(
            columns=[],
            rows=[],
            note=f"This window was a file ({run['source']}), not the prediction log.",
        )
    from shipyard.predlog import read_window

    try:
        window = read_window(predlog, name, version=run["version"], start=start, end=end)
        window = dataclasses.replace(window, parts=window.day_parts())  # the window's days only
        con = window.connect()
        try:
            result = con.sql(f"SELECT * FROM predictions ORDER BY ts LIMIT {int(limit)}")
            columns = list(result.columns)
            values = result.fetchall()
        finally:
            con.close()
    except ShipyardError as exc:
        return SampleRows(columns=[], rows=[], note=f"The log could not be read: {exc.message}")
    if not values:
        return SampleRows(columns=[], rows=[], note="The log has no rows in this window any more.")
    return SampleRows(columns=columns, rows=[[_cell(v) for v in row] for row in values])


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, default=str)
    text = str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
