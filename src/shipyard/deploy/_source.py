"""Where the running Shipyard came from, so an environment or an image gets the same one."""

from __future__ import annotations

import importlib.metadata as md
import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ShipyardSource:
    """The running Shipyard: a source checkout (``checkout`` is its root, with the
    ``pyproject.toml``) or an installed release (``checkout`` is ``None``)."""

    version: str
    checkout: Path | None

    @property
    def requirement(self) -> str:
        """What pip installs: the checkout's folder, or ``shipyard==<version>``."""
        return str(self.checkout) if self.checkout is not None else f"shipyard=={self.version}"

    def describe(self) -> str:
        if self.checkout is not None:
            return f"the source checkout {self.checkout}"
        return f"shipyard {self.version} from the package index"


def shipyard_source() -> ShipyardSource:
    """The source of the imported ``shipyard`` package: the checkout holding its ``src/``
    folder when there is one (an editable install or ``PYTHONPATH``), else the release."""
    package = Path(__file__).resolve().parents[1]  # .../shipyard (deploy's parent)
    root = package.parent.parent  # <root>/src/shipyard
    pyproject = root / "pyproject.toml"
    if package.parent.name == "src" and pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text())["project"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            project = {}
        if project.get("name") == "shipyard":
            return ShipyardSource(version=str(project.get("version", "0")), checkout=root)
    try:
        version = md.version("shipyard")
    except md.PackageNotFoundError:
        version = "0"
    return ShipyardSource(version=version, checkout=None)
