"""Small types that command signatures use, and the parsing of option values several commands
share: Typer reads the annotations of every command at start-up, so they live here, away from
the heavy libraries the commands import when run."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

from shipyard.errors import InvalidInput


class Engine(StrEnum):
    """The engine of ``shipyard score`` and ``shipyard monitor run``."""

    pandas = "pandas"
    spark = "spark"
    dask = "dask"


def parse_time(text: str | None, option: str) -> datetime | None:
    """A UTC time (``2026-12-01``, ``2026-12-01T15:00``) or a span ago (``30m``, ``7d``)."""
    if text is None:
        return None
    if re.fullmatch(r"\s*\d+[mhdw]\s*", text):
        from shipyard.config import parse_window

        return datetime.now(UTC) - parse_window(text.strip(), option=option)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"Invalid {option} '{text[:40]}': give a UTC time (2026-12-01 or "
            "2026-12-01T15:00) or a span ago (30m, 2h, 7d, 4w)."
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
