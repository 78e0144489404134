"""Request bodies to rows: plain JSON, MLflow's scoring formats and CSV.

Everything here runs on the request path, so it avoids pydantic and per-cell pandas work: JSON
rows stay ``Rows`` (the values as parsed, row by row), which the server types straight into
numpy when they are plain (``_typed``) and turns into a DataFrame for ``Schema.coerce``
otherwise. CSV and MLflow's column form become DataFrames. Errors never quote the submitted
values (inputs can be personal data), only where and what kind of thing was wrong.
"""

from __future__ import annotations

import io
import json
import math
import zlib
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
    """The request body, refusing (413) more than ``limit`` bytes before reading them all.

    A body sent with ``Content-Encoding: gzip`` or ``deflate`` (tritonclient's
    ``request_compression_algorithm``) is decompressed, and ``limit`` holds for both sizes.
    """
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in _DECODERS:
        raise UnsupportedMediaType(
            f"This server reads bodies with Content-Encoding gzip, deflate or none, not "
            f"'{encoding[:40]}'."
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    if declared is not None:
        body = await request.body()
        if len(body) > limit:
            raise _too_large(limit)
    else:
        chunks, size = [], 0
        async for chunk in request.stream():  # chunked upload: count as it comes
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        body = b"".join(chunks)
    return body if encoding == "identity" else _decompress(body, encoding, limit)


#: zlib's wbits for each Content-Encoding it reads (gzip header; zlib stream, as HTTP means).
_DECODERS = {"identity": 0, "gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    decoder = zlib.decompressobj(_DECODERS[encoding])
    try:
        out = decoder.decompress(body, limit + 1)  # never more than the limit, however packed
    except zlib.error:
        raise InvalidInput(
            f"The body is not valid {encoding} data, as its Content-Encoding says."
        ) from None
    if len(out) > limit:
        raise _too_large(limit)
    if not decoder.eof:
        raise InvalidInput(f"The {encoding} body ends before its compressed data does.")
    return out


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than this server's limit of {limit} bytes; send fewer "
        "rows per request (or raise --max-body-bytes)."
    )


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body`` (400 if it is not JSON).

    ``NaN``, which Python's ``json`` and many clients write for a missing float, is read as
    ``null`` (a missing value); ``Infinity`` is refused.
    """
    if not body:
        raise InvalidInput("The request body is empty; send a JSON object.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        error = exc
    try:  # the slow way, only for bodies orjson refuses: NaN is not JSON but is common
        return json.loads(body, parse_constant=_nan_as_null, parse_float=_finite)
    except (ValueError, RecursionError):
        pass
    raise InvalidInput(
        f"The request body is not valid JSON (line {error.lineno}, column {error.colno}); "
        "send null for a missing value, and no Infinity."
    ) from None


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: not a number a client meant
        raise ValueError(text)
    return value


def _nan_as_null(constant: str) -> None:
    if constant != "NaN":
        raise ValueError(constant)
    return None


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


class Rows:
    """Request rows as the JSON values they arrived as: what the JSON decoders produce.

    A REST request carries one row or a few; building a DataFrame for them costs more than
    scoring them with onnxruntime. ``ServedModel.coerce`` checks and types ``Rows`` straight
    into numpy arrays when every value is of its column's plain JSON type (see ``_typed``),
    and reads ``frame()``, the DataFrame of the general schema check, otherwise.

    It reads like a small, read-only DataFrame where routing needs one: ``len(rows)``,
    ``rows.columns`` and ``rows[column]`` (a Series).

    >>> rows = rows_from_records([{"age": 41, "city": "Oslo"}])
    >>> len(rows), rows.columns, rows.rows
    (1, ['age', 'city'], [[41, 'Oslo']])
    """

    __slots__ = ("_frame", "columns", "rows")

    def __init__(self, columns: list[Any], rows: list[list[Any]]) -> None:
        self.columns = columns
        self.rows = rows  # row-major; each row holds one value per column
        self._frame: pd.DataFrame | None = None

    @classmethod
    def from_columns(cls, columns: list[Any], values: list[Any]) -> Rows:
        """Rows from one sequence per column (lists, or 1-D numpy arrays as binary and gRPC
        tensors decode to: float64 with NaN, int64, bool, object of ``str``/``None``).

        For the few rows of a request this is much cheaper than a DataFrame (which, on
        pandas 3, converts every text column to Arrow strings), and ``ServedModel.coerce``
        types it the same way; anything unusual gets ``frame()``, the frame of those values.

        >>> import numpy as np
        >>> Rows.from_columns(["x", "c"], [np.array([1.5, np.nan]), ["a", None]]).rows
        [[1.5, 'a'], [nan, None]]
        """
        lists = [v.tolist() if isinstance(v, np.ndarray) else list(v) for v in values]
        return cls(list(columns), [list(row) for row in zip(*lists, strict=True)])

    def __len__(self) -> int:
        # Rows without a single column are no rows, as for a DataFrame ({"records": [{}]}).
        return len(self.rows) if self.columns else 0

    def __getitem__(self, column: Any) -> pd.Series:
        """One column's values as received (``KeyError`` if there is no such column)."""
        if column not in self.columns:
            raise KeyError(column)
        j = self.columns.index(column)
        return pd.Series([row[j] for row in self.rows], dtype=object, name=column)

    def frame(self) -> pd.DataFrame:
        """The rows as a frame, numeric columns typed (built once)."""
        if self._frame is None:
            cells = np.empty((len(self.rows), len(self.columns)), dtype=object)
            if self.columns:
                for i, row in enumerate(self.rows):
                    cells[i, :] = row
            self._frame = _frame(cells, self.columns)
        return self._frame


def rows_from_records(records: Any, *, where: str = "records") -> Rows:
    """``[{"col": value, ...}, ...]`` as rows; a key missing from a row becomes missing."""
    if not isinstance(records, list):
        raise InvalidInput(f"'{where}' must be a list of objects, one per row.")
    if not records:
        return Rows([], [])
    first = records[0]
    if not isinstance(first, dict):
        raise InvalidInput(f"'{where}' must be a list of objects; row 0 is not an object.")
    columns = list(first)
    same = True
    for i, row in enumerate(records):
        if not isinstance(row, dict):
            raise InvalidInput(f"'{where}' must be a list of objects; row {i} is not an object.")
        if same and (row.keys() != first.keys() or list(row) != columns):
            same = False
    if same:
        return Rows(columns, [list(row.values()) for row in records])
    columns = list(dict.fromkeys(key for row in records for key in row))
    return Rows(columns, [[row.get(key) for key in columns] for row in records])


def rows_from_split(columns: Any, data: Any, *, where: str = "data") -> Rows:
    """``{"columns": [...], "data": [[...], ...]}`` as rows."""
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput("'columns' must be a list of column names (strings).")
    if len(set(columns)) != len(columns):
        raise InvalidInput("'columns' names a column more than once.")
    if not isinstance(data, list):
        raise InvalidInput(f"'{where}' must be a list of rows, each a list of values.")
    width = len(columns)
    for i, row in enumerate(data):
        if not isinstance(row, list):
            raise InvalidInput(f"'{where}' must be a list of rows; row {i} is not a list.")
        if len(row) != width:
            raise InvalidInput(f"Row {i} of '{where}' has {len(row)} values for {width} columns.")
    return Rows(columns, data)


def rows_from_rows(rows: Any, schema_columns: list[str], *, where: str) -> Rows:
    """A list of objects (records), or of lists in the schema's column order."""
    if isinstance(rows, list) and rows and isinstance(rows[0], list):
        return rows_from_split(schema_columns, rows, where=where)
    return rows_from_records(rows, where=where)


def frame_from_records(records: Any, *, where: str = "records") -> pd.DataFrame:
    """``[{"col": value, ...}, ...]`` as a frame; a key missing from a row becomes missing."""
    return rows_from_records(records, where=where).frame()


def frame_from_split(columns: Any, data: Any, *, where: str = "data") -> pd.DataFrame:
    """``{"columns": [...], "data": [[...], ...]}`` as a frame."""
    return rows_from_split(columns, data, where=where).frame()


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
    return rows_from_rows(rows, schema_columns, where=where).frame()


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
            elif kinds == {float} or (kinds == {float, int} and _exact_as_floats(column)):
                data[name] = column.astype(np.float64)
            else:
                data[name] = column
        except OverflowError:  # an integer beyond int64: let the schema say so
            data[name] = column
    return pd.DataFrame(data, copy=False)


def _exact_as_floats(column: np.ndarray) -> bool:
    """True if every integer among ``column``'s numbers is exact as a float64: an integer
    column sent as ``[9007199254740993, 3.0]`` must reach the schema as it was sent."""
    return all(-(2**53) <= v <= 2**53 for v in column if type(v) is int)


def _short(name: object) -> str:
    text = str(name)
    return text if len(text) <= 64 else text[:61] + "..."
