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
"""

from shipyard.dataset._files import file_chunks, open_parquet
from shipyard.dataset._fingerprint import Fingerprint, content_hash, fingerprint
from shipyard.dataset._profile import CategoricalProfile, NumericProfile, Profile, profile_frame
from shipyard.dataset._schema import (
    ColumnSchema,
    FieldError,
    Schema,
    infer_output_schema,
    infer_schema,
)

__all__ = [
    "CategoricalProfile",
    "ColumnSchema",
    "FieldError",
    "Fingerprint",
    "NumericProfile",
    "Profile",
    "Schema",
    "content_hash",
    "file_chunks",
    "fingerprint",
    "infer_output_schema",
    "infer_schema",
    "open_parquet",
    "profile_frame",
]
