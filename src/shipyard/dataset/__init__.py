"""Datasets: a model's input schema, a reference profile for drift, and a content fingerprint.

>>> import pandas as pd
>>> from shipyard.dataset import infer_schema, profile_frame, fingerprint
>>> train = pd.DataFrame({"age": [31, 45, 27], "plan": ["basic", "pro", "basic"]})
>>> infer_schema(train).names()
['age', 'plan']
>>> profile_frame(train).columns["plan"].frequencies
{'basic': 2, 'pro': 1}
>>> fingerprint(train, name="train").n_rows
3

Imports only ``shipyard.errors``; used by packaging, monitoring, serving, batch and tracking.
Besides the schema, profile and fingerprint, it exports the column types and the value
conversion rules (``parse_column``, ``MISSING``, ``BAD``, ``categorical``...) that monitoring
and serving share, and ``training_checks`` (duplicates, constant columns, label leakage),
which registration stores in the archive for the validation gates.
"""

from shipyard.dataset._checks import training_checks
from shipyard.dataset._convert import (
    BAD,
    MISSING,
    Categories,
    categorical,
    datetime_texts,
    parse_column,
    text_of,
)
from shipyard.dataset._dtypes import ColumnType, check_frame, string_dtype
from shipyard.dataset._files import file_chunks, open_parquet, read_table
from shipyard.dataset._fingerprint import Fingerprint, content_hash, fingerprint
from shipyard.dataset._profile import (
    OTHER,
    CategoricalProfile,
    NumericProfile,
    Profile,
    profile_frame,
)
from shipyard.dataset._schema import (
    ColumnSchema,
    FieldError,
    Schema,
    infer_output_schema,
    infer_schema,
)

__all__ = [
    "BAD",
    "MISSING",
    "OTHER",
    "CategoricalProfile",
    "Categories",
    "ColumnSchema",
    "ColumnType",
    "FieldError",
    "Fingerprint",
    "NumericProfile",
    "Profile",
    "Schema",
    "categorical",
    "check_frame",
    "content_hash",
    "datetime_texts",
    "file_chunks",
    "fingerprint",
    "infer_output_schema",
    "infer_schema",
    "open_parquet",
    "parse_column",
    "profile_frame",
    "read_table",
    "string_dtype",
    "text_of",
    "training_checks",
]
