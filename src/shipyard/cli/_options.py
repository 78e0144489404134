"""Small types that command signatures use: Typer reads the annotations of every command at
start-up, so they live here, away from the heavy libraries the commands import when run."""

from __future__ import annotations

from enum import StrEnum


class Engine(StrEnum):
    """The engine of ``shipyard score`` and ``shipyard monitor run``."""

    pandas = "pandas"
    spark = "spark"
    dask = "dask"
