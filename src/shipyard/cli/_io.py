"""Reading user-supplied files (tables, pickled models) with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd


def read_table(path: Path) -> pd.DataFrame:
    """A Parquet or CSV file as a DataFrame."""
    import pandas as pd  # here: every CLI command imports this module at start-up

    if not path.is_file():
        raise InvalidInput(f"No such file: '{path}'.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"Cannot read '{path}' as {suffix[1:]}: {exc}") from exc
    raise InvalidInput(f"'{path}' is neither Parquet (.parquet) nor CSV (.csv).")


def read_model_file(path: Path) -> Any:
    """Unpickle the user's own model file (joblib or pickle)."""
    if not path.is_file():
        raise InvalidInput(f"No such file: '{path}'.")
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:  # joblib raises many types for a file that is not a pickle
        raise InvalidInput(
            f"Cannot load '{path}' as a joblib/pickle model file ({type(exc).__name__}). "
            "Save it with joblib.dump(model, path)."
        ) from exc
