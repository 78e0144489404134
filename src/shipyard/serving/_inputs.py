"""Request bodies to DataFrames: plain JSON, MLflow's scoring formats and CSV.

Everything here runs on the request path, so it avoids pydantic and per-cell pandas work:
rows become one object array and ``Schema.coerce`` does the typing. Errors never quote the
submitted values (inputs can be personal data), only where and what kind of thing was wrong.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pandas as pd
from starlette.requests import Request

from shipyard.errors import InvalidInput, PayloadTooLarge, SchemaViolation, UnsupportedMediaType

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters (``""`` if none)."""
    raw = request.headers.get("content-type", "")
    return raw.split(";", 1)[0].strip().lower()


def require_json(request: Request) -> None:
    """Refuse (415) a body that says it is something other than JSON.

    A missing Content-Type is accepted: ``curl -d`` and many scripts omit it.
    """
    kind = media_type(request)
    if kind and kind not in JSON_TYPES and not kind.endswith("+json"):
        raise UnsupportedMediaType(
            f"This endpoint reads JSON; the request's Content-Type is '{kind[:100]}'. Send "
            "Content-Type: application/json."
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    if declared is not None:
        body = await request.body()
        if len(body) > limit:
            raise _too_large(limit)
        return body
    chunks, size = [], 0
    async for chunk in request.stream():  # chunked upload: count as it comes
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than this server's limit of {limit} bytes; send fewer "
        "rows per request (or raise --max-body-bytes)."
    )


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body`` (400 if it is not JSON; NaN and Infinity are not JSON)."""
    if not body:
        raise InvalidInput("The request body is empty; send a JSON object.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The request body is not valid JSON (line {exc.lineno}, column {exc.colno}); "
            "note that NaN and Infinity are not JSON: send null for a missing value."
        ) from None


def check_rows(n_rows: int, limit: int) -> None:
    """Refuse an empty batch (422) or one of more than ``limit`` rows (413)."""
    if n_rows == 0:
        raise SchemaViolation(
            "The request has no rows; send at least one.",
            errors=[{"field": "$", "reason": "no rows"}],
        )
    if n_rows > limit:
        raise PayloadTooLarge(
            f"The request has {n_rows} rows; this server accepts at most {limit} per request."
        )


# -- shapes --------------------------------------------------------------------------------


def frame_from_records(records: Any, *, where: str = "records") -> pd.DataFrame:
    """``[{"col": value, ...}, ...]`` as a frame; a key missing from a row becomes missing."""
    if not isinstance(records, list):
        raise InvalidInput(f"'{where}' must be a list of objects, one per row.")
    if not records:
        return pd.DataFrame()
    first = records[0]
    if not isinstance(first, dict):
        raise InvalidInput(f"'{where}' must be a list of objects; row 0 is not an object.")
    columns = list(first)
    same = True
    for i, row in enumerate(records):
        if not isinstance(row, dict):
            raise InvalidInput(f"'{where}' must be a list of objects; row {i} is not an object.")
        if same and row.keys() != first.keys():
            same = False
    if not same:
        columns = list(dict.fromkeys(key for row in records for key in row))
    cells = np.empty((len(records), len(columns)), dtype=object)
    if same:
        for i, row in enumerate(records):
            cells[i, :] = list(row.values()) if len(columns) else []
    else:
        for i, row in enumerate(records):
            cells[i, :] = [row.get(key) for key in columns]
    return _frame(cells, columns)


def frame_from_split(columns: Any, data: Any, *, where: str = "data") -> pd.DataFrame:
    """``{"columns": [...], "data": [[...], ...]}`` as a frame."""
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput("'columns' must be a list of column names (strings).")
    if len(set(columns)) != len(columns):
        raise InvalidInput("'columns' names a column more than once.")
    if not isinstance(data, list):
        raise InvalidInput(f"'{where}' must be a list of rows, each a list of values.")
    cells = np.empty((len(data), len(columns)), dtype=object)
    for i, row in enumerate(data):
        if not isinstance(row, list):
            raise InvalidInput(f"'{where}' must be a list of rows; row {i} is not a list.")
        if len(row) != len(columns):
            raise InvalidInput(
                f"Row {i} of '{where}' has {len(row)} values for {len(columns)} columns."
            )
        cells[i, :] = row
    return _frame(cells, columns)


def frame_from_columns(mapping: Any, *, where: str = "inputs") -> pd.DataFrame:
    """``{"col": [v1, v2, ...], ...}`` (MLflow's ``inputs`` in column form) as a frame."""
    if not isinstance(mapping, dict) or not mapping:
        raise InvalidInput(f"'{where}' must map column names to lists of values.")
    lengths = set()
    for name, values in mapping.items():
        if not isinstance(values, list):
            raise InvalidInput(f"'{where}' column '{_short(name)}' must be a list of values.")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise InvalidInput(f"The columns of '{where}' have different lengths.")
    n = lengths.pop()
    cells = np.empty((n, len(mapping)), dtype=object)
    for j, values in enumerate(mapping.values()):
        cells[:, j] = values
    return _frame(cells, list(mapping))


def frame_from_rows(rows: Any, schema_columns: list[str], *, where: str) -> pd.DataFrame:
    """A list of objects (records), or of lists in the schema's column order."""
    if isinstance(rows, list) and rows and isinstance(rows[0], list):
        return frame_from_split(schema_columns, rows, where=where)
    return frame_from_records(rows, where=where)


def frame_from_csv(body: bytes) -> pd.DataFrame:
    """A CSV body with a header row (pandas infers types; the schema then checks them)."""
    try:
        return pd.read_csv(io.BytesIO(body), dtype=object, keep_default_na=True)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"The CSV body cannot be read ({type(exc).__name__}); send a header row and one "
            "line per row."
        ) from None


def _frame(cells: np.ndarray, columns: list[Any]) -> pd.DataFrame:
    """A frame of ``cells`` (rows x columns of JSON values), numeric columns typed.

    Columns holding only numbers become float64/int64 arrays here, in one numpy call each:
    ``Schema.coerce`` then keeps them as they are instead of parsing every cell, which
    halves the cost of a one-row request. Anything else stays as objects for the schema
    to check and convert.
    """
    if len(set(map(str, columns))) != len(columns):
        # Keep duplicates visible to the schema check ("duplicate column").
        return pd.DataFrame(cells, columns=pd.Index(columns, dtype=object), copy=False)
    data: dict[Any, np.ndarray] = {}
    for j, name in enumerate(columns):
        column = cells[:, j]
        kinds = set(map(type, column))
        try:
            if kinds == {int}:
                data[name] = column.astype(np.int64)
            elif kinds == {float} or kinds == {float, int}:
                data[name] = column.astype(np.float64)
            else:
                data[name] = column
        except OverflowError:  # an integer beyond int64: let the schema say so
            data[name] = column
    return pd.DataFrame(data, copy=False)


def _short(name: object) -> str:
    text = str(name)
    return text if len(text) <= 64 else text[:61] + "..."
