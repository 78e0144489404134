"""Reading a monitoring window from the prediction log."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from shipyard.errors import InvalidInput, NotFound


def parse_window(text: str, *, option: str = "--window") -> timedelta:
    """``30m``, ``12h``, ``1d``, ``2w`` as a timedelta."""
    match = re.fullmatch(r"(\d+)([mhdw])", text.strip())
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(f"Invalid {option} '{text}': use a number and m, h, d or w, e.g. 1d.")
    unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def logged_window(
    root: Path, model: str, version: int, start: datetime, end: datetime, *, outputs: bool
) -> pd.DataFrame:
    """The logged, accepted predictions of one version in ``[start, end)``, as the model's
    inputs (``in__age`` → ``age``) or outputs (``prediction``, ``proba_<class>``)."""
    from shipyard.serving import PredictionLog

    frame = PredictionLog(root).query(
        f"SELECT * FROM predictions WHERE version = {int(version)} AND status = 'ok' "
        f"AND epoch(ts) >= {start.timestamp()} AND epoch(ts) < {end.timestamp()}",
        model=model,
    )
    if frame.empty:
        raise NotFound(
            f"No logged predictions of {model} v{version} between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M} UTC: nothing to monitor. Widen --window or check --log-dir."
        )
    if outputs:
        out = frame[["prediction"]].astype(str)
        for col in frame.columns:
            if col.startswith("proba__"):
                out["proba_" + col.removeprefix("proba__")] = frame[col]
        return out
    inputs = [c for c in frame.columns if c.startswith("in__")]
    return frame[inputs].rename(columns=lambda c: c.removeprefix("in__"))
