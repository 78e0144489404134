"""Every setting is documented, in the code and in the README."""

from __future__ import annotations

from pathlib import Path

from shipyard.settings import Settings, documented_settings

README = Path(__file__).parents[1] / "README.md"


def test_every_setting_has_help_and_a_readme_row() -> None:
    readme = README.read_text(encoding="utf-8")
    for env, help_text in documented_settings().items():
        assert help_text, f"Give the setting {env} a description= in shipyard/settings.py."
        assert f"`{env}`" in readme, f"Add a row for `{env}` to the README's Configuration table."


def test_settings_read_the_environment(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    monkeypatch.setenv("SHIPYARD_USER", "carol")
    monkeypatch.delenv("SHIPYARD_DB_URL", raising=False)
    s = Settings()
    assert s.user == "carol"
    assert s.database_url == f"sqlite:///{tmp_path / 'shipyard.db'}"
    assert s.artifacts_url == str(tmp_path / "artifacts")
