"""One typed settings module: every setting declared once, with its type, default and help.

Settings are read from ``SHIPYARD_*`` environment variables (and, for the CLI, from options) once,
at the edge (the CLI or an app factory), and passed down explicitly.

>>> Settings(home="/tmp/sy").database_url
'sqlite:////tmp/sy/shipyard.db'
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return os.environ.get("USER", "unknown")


class Settings(BaseSettings):
    """Where Shipyard keeps its data, and who is acting."""

    model_config = SettingsConfigDict(env_prefix="SHIPYARD_", extra="ignore")

    home: Path = Field(
        default=Path(".shipyard"),
        description="Folder for the embedded SQLite database and the default artifact store.",
    )
    db_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database, e.g. "
        "postgresql+psycopg://user@host/db. Default: SQLite file in the home folder.",
    )
    artifacts: str | None = Field(
        default=None,
        description="fsspec URL or path of the artifact store. Default: 'artifacts' in home.",
    )
    config: Path = Field(
        default=Path("shipyard.toml"),
        description="The project file holding alert rules and channels ([[alerts]], [channels.*]).",
    )
    user: str = Field(
        default_factory=_os_user,
        description="Who is acting: recorded on runs, versions, approvals and audit events. "
        "Default: the operating-system user.",
    )

    @property
    def database_url(self) -> str:
        """The metadata database URL, defaulting to ``sqlite:///<home>/shipyard.db``."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.home.expanduser().absolute() / 'shipyard.db'}"

    @property
    def artifacts_url(self) -> str:
        """The artifact store URL, defaulting to ``<home>/artifacts``."""
        if self.artifacts:
            return self.artifacts
        return str(self.home.expanduser().absolute() / "artifacts")


#: Environment variables and their help, for documentation and the settings test.
def documented_settings() -> dict[str, str]:
    """Map each environment variable to its help text."""
    out: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        env = f"SHIPYARD_{name.upper()}"
        out[env] = field.description or ""
    return out
