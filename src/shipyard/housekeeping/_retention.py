"""Retention settings: the ``[retention]`` table of ``shipyard.toml``.

.. code-block:: toml

    [retention]
    predictions = "90d"    # prediction-log partitions; "keep" keeps them forever
    monitoring = "365d"    # monitoring results
    job_runs = "180d"      # scheduler job runs

``shipyard gc`` uses these as defaults (its options override them), and so does a scheduled
``kind = "gc"`` job.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from shipyard.errors import InvalidInput
from shipyard.monitoring import parse_window

#: What ``shipyard gc`` keeps without a ``[retention]`` table.
DEFAULT_RETENTION = {"predictions": "90d", "monitoring": "365d", "job_runs": "365d"}
KEEP = "keep"


@dataclass(frozen=True)
class Retention:
    """How long each kind of record is kept; ``None`` keeps it forever."""

    predictions: timedelta | None
    monitoring: timedelta | None
    job_runs: timedelta | None

    @classmethod
    def parse(cls, values: Mapping[str, object], *, where: str = "[retention]") -> Retention:
        """Build from ``{"predictions": "90d", ...}``; missing kinds take the defaults."""
        unknown = sorted(set(values) - set(DEFAULT_RETENTION))
        if unknown:
            raise InvalidInput(
                f"Unknown key(s) {unknown} in {where}. Use: {', '.join(DEFAULT_RETENTION)}."
            )
        ages: dict[str, timedelta | None] = {}
        for kind, default in DEFAULT_RETENTION.items():
            ages[kind] = parse_age(values.get(kind, default), option=f"{kind} in {where}")
        return cls(**ages)


def parse_age(value: object, *, option: str) -> timedelta | None:
    """``"90d"`` → 90 days; ``"keep"`` → ``None`` (kept forever)."""
    if value == KEEP:
        return None
    if not isinstance(value, str):
        raise InvalidInput(
            f'Invalid {option}: {value!r}. Use a quoted age such as "90d" or "12w", or "keep".'
        )
    return parse_window(value, option=option)


def load_retention(path: Path) -> Retention:
    """The ``[retention]`` table of ``path`` (defaults when the file or the table is absent)."""
    if not path.is_file():
        return Retention.parse({})
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"'{path}' is not valid TOML: {exc}.") from exc
    table = data.get("retention", {})
    if not isinstance(table, Mapping):
        raise InvalidInput(f"'retention' in '{path}' must be a table: write [retention].")
    return Retention.parse(table, where=f"[retention] of '{path}'")
