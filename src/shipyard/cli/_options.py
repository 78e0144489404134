"""Small types that command signatures use, and the parsing of option values several commands
share: Typer reads the annotations of every command at start-up, so they live here, away from
the heavy libraries the commands import when run."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import typer

from shipyard.errors import InvalidInput
from shipyard.settings import ServeSettings


class Engine(StrEnum):
    """The engine of ``shipyard score`` and ``shipyard monitor run``."""

    pandas = "pandas"
    spark = "spark"
    dask = "dask"


class Installer(StrEnum):
    """What ``shipyard env create`` installs with (``shipyard.deploy.INSTALLERS``)."""

    auto = "auto"
    pip = "pip"
    uv = "uv"


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


def serve_option(field: str, *flags: str, default: Any = None, **kw: Any) -> Any:
    """The option setting ``ServeSettings.<field>``: its default and help are the field's
    (``shipyard serve``'s options, and those ``shipyard ui`` shares with it)."""
    info = ServeSettings.model_fields[field]
    value = info.default if default is None else default
    return typer.Option(value, *flags, help=info.description, **kw)


def listed(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated option as a tuple (``None``: not given).

    >>> listed("a.example.com, b.example.com")
    ('a.example.com', 'b.example.com')
    """
    parts = tuple(part.strip() for part in (text or "").split(",") if part.strip())
    return parts or None
