"""Reading user-supplied files (tables, pickled models) with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd


def read_table(path: Path) -> pd.DataFrame:
    """A whole Parquet or CSV file (``shipyard.dataset.read_table``, imported when used: the
    CLI loads this module at start-up)."""
    from shipyard.dataset import read_table as read

    return read(path)


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
