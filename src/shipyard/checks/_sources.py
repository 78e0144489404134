"""The training rows of a retraining, from the data source of ``[models.NAME.retrain]``.

- ``data = "data/churn-*.parquet"``: Parquet or CSV files, a path or a glob, relative to the
  project file's folder; every file matched, in name order, concatenated.
- ``sql = "SELECT ..."`` with ``url = "postgresql+psycopg://..."``: a query run through
  SQLAlchemy (``pandas.read_sql``).
- ``source = "feedback"``: the prediction log's accepted inputs of the model (every version)
  over the last ``window``, joined with the labels that arrived for them (the newest label of
  each prediction); the label column is named ``target``.

Whatever the source, the rows must hold the ``target`` column and at least one labelled row;
else ``InvalidInput`` says so in one sentence.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from shipyard.config import RetrainTable, parse_window
from shipyard.dataset import read_table
from shipyard.errors import InvalidInput


@dataclass(frozen=True)
class SourceRows:
    """The rows read, and the source in words (``data:/abs/path/*.parquet (3 files)``)."""

    frame: pd.DataFrame
    description: str


def read_source(
    table: RetrainTable, *, name: str, folder: Path, log_root: Path, now: datetime
) -> SourceRows:
    """The labelled rows ``table`` declares for model ``name``; ``folder`` is the project
    file's folder (relative paths start there), ``log_root`` the prediction log.

    >>> from shipyard.config import RetrainTable
    >>> table = RetrainTable(entry="train:fit", target="churned", data="none/*.csv")
    >>> read_source(table, name="churn", folder=Path("/nowhere"), log_root=Path("log"),
    ...             now=datetime.now())
    Traceback (most recent call last):
    shipyard.errors.InvalidInput: The data source '/nowhere/none/*.csv' ... matches no file.
    """
    if table.data is not None:
        rows = _files(table.data, name=name, folder=folder)
    elif table.sql is not None:
        rows = _sql(table.sql, table.url or "", name=name)
    else:
        rows = _feedback(table, name=name, log_root=log_root, now=now)
    return _checked(rows, table.target, name=name)


def _files(pattern: str, *, name: str, folder: Path) -> SourceRows:
    path = Path(pattern).expanduser()
    full = path if path.is_absolute() else folder / path
    matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True))
    matches = [p for p in matches if p.is_file()]
    if not matches:
        raise InvalidInput(f"The data source '{full}' of [models.{name}.retrain] matches no file.")
    frames = [read_table(p) for p in matches]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return SourceRows(frame, f"data:{full} ({len(matches)} file{'s' * (len(matches) > 1)})")


def _sql(query: str, url: str, *, name: str) -> SourceRows:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except Exception as exc:  # a malformed URL, a missing driver
        raise InvalidInput(
            f"The url of [models.{name}.retrain] is not a usable SQLAlchemy URL: {_first_line(exc)}"
        ) from exc
    try:
        with engine.connect() as connection:
            frame = pd.read_sql(sa.text(query), connection)
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, pd.errors.DatabaseError) else exc
        raise InvalidInput(
            f"The SQL of [models.{name}.retrain] failed on {engine.url!r}: "
            f"{_first_line(cause or exc)}"
        ) from exc
    finally:
        engine.dispose()
    return SourceRows(frame, f"sql:{engine.url!r}")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _feedback(table: RetrainTable, *, name: str, log_root: Path, now: datetime) -> SourceRows:
    from shipyard.predlog import read_window

    start = now - parse_window(table.window, option=f"window of [models.{name}.retrain]")
    con = read_window(log_root, name, start=start, end=now, feedback=True).connect()
    try:
        columns = [d[0] for d in con.execute("SELECT * FROM predictions LIMIT 0").description]
        feedback = [d[0] for d in con.execute("SELECT * FROM feedback LIMIT 0").description]
        inputs = [c for c in columns if c.startswith("in__")]
        if not inputs or "label" not in feedback:
            frame = pd.DataFrame(columns=[*(c.removeprefix("in__") for c in inputs), table.target])
        else:
            select = ", ".join(f"p.{_quote(c)} AS {_quote(c.removeprefix('in__'))}" for c in inputs)
            frame = (
                con.sql(
                    f"SELECT {select}, f.label AS {_quote(table.target)} "
                    "FROM predictions p JOIN (SELECT prediction_id, arg_max(label, ts) AS label "
                    "FROM feedback GROUP BY prediction_id) f USING (prediction_id) "
                    "WHERE p.status = 'ok' ORDER BY p.ts"
                )
                .to_arrow_table()
                .to_pandas()
            )
    finally:
        con.close()
    return SourceRows(frame, f"feedback:{log_root} last {table.window}")


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _checked(rows: SourceRows, target: str, *, name: str) -> SourceRows:
    frame, where = rows.frame, rows.description
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12])) or "none"
        raise InvalidInput(
            f"The data source {where} of [models.{name}.retrain] has no target column "
            f"'{target}' (columns: {shown})."
        )
    labelled = frame[frame[target].notna()].reset_index(drop=True)
    if labelled.empty:
        raise InvalidInput(
            f"The data source {where} of [models.{name}.retrain] has no labelled rows: "
            "there is nothing to train on."
        )
    if len(labelled.columns) < 2:
        raise InvalidInput(
            f"The data source {where} of [models.{name}.retrain] has no column besides "
            f"the target '{target}'."
        )
    return SourceRows(labelled, where)
