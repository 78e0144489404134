"""The CLI tests' shared set-up: the environment of a fresh store, and one call of the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shipyard.cli import run_cli


def point_cli_at(
    monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path, *, toml: str | None
) -> Callable[[str], None]:
    """``SHIPYARD_*`` for a fresh store under ``tmp_path`` and its project file (written with
    ``toml`` unless ``None``); returns a switch of the acting user, who starts as ``admin``."""
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_DB_URL", db_url)
    monkeypatch.delenv("SHIPYARD_ARTIFACTS", raising=False)
    config = tmp_path / "shipyard.toml"
    if toml is not None:
        config.write_text(toml)
    monkeypatch.setenv("SHIPYARD_CONFIG", str(config))

    def as_user(user: str) -> None:
        monkeypatch.setenv("SHIPYARD_USER", user)

    as_user("admin")
    return as_user


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``shipyard *args``: its exit code, stdout and stderr (never a traceback)."""
    code = run_cli(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err
