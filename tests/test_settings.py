"""Every setting is documented, in the code and in the README: the ``SHIPYARD_*`` variables,
the server's settings and the ``shipyard serve`` options built from them, the web UI's
settings and the ``shipyard ui`` options built from them, and every key of
every table of shipyard.toml (the README's example file is a valid project file, too)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import BaseModel

from shipyard.alerting import CHANNELS, AlertConfig, notify_rules
from shipyard.cli import app
from shipyard.config import ProjectConfig, load_project
from shipyard.scheduler import JOB_KINDS, SchedulerConfig
from shipyard.settings import ServeSettings, Settings, UiSettings, documented_settings

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


# --- the server's settings and the serve options ------------------------------------------


def _options(name: str) -> dict[str, Any]:
    """``--option`` → its click parameter, for ``shipyard <name>``."""
    command = typer.main.get_command(app)
    sub = command.commands[name]  # type: ignore[attr-defined]
    return {opt: p for p in sub.params for opt in p.opts if opt.startswith("--")}


def _serve_options() -> dict[str, Any]:
    return _options("serve")


def test_serve_options_take_their_default_and_help_from_serve_settings() -> None:
    options = {p.help: p for p in _serve_options().values()}
    for name, field in ServeSettings.model_fields.items():
        assert field.description, f"Add a description= to the ServeSettings field {name}."
        option = options.get(field.description)
        if option is None:
            continue  # set by create_app(settings=...) only
        default = field.default
        if option.is_flag and option.name.startswith("no_"):  # --no-auth sets auth=False
            default = not default
        assert option.default == default, f"--{option.name}: default {option.default!r}"


def test_every_serve_option_and_setting_is_in_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    for option in _serve_options():
        if option != "--help":
            assert f"`{option}`" in readme, f"Add a row for `{option}` to the README's serve table."
    options = {p.help for p in _serve_options().values()}
    for name, field in ServeSettings.model_fields.items():
        if field.description not in options:
            assert f"`{name}`" in readme, f"Name the ServeSettings field `{name}` in the README."


# --- shipyard.toml --------------------------------------------------------------------------


def _example() -> str:
    """The README's example shipyard.toml."""
    readme = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", readme, flags=re.S)
    assert len(blocks) == 1, "The README should show one example shipyard.toml."
    return str(blocks[0])


def _tables(text: str) -> list[tuple[str, dict[str, str], str]]:
    """``(section, {"kind": ..., "type": ...}, text)`` for each table of the example."""
    out: list[tuple[str, dict[str, str], str]] = []
    for header, body in re.findall(
        r"^\[\[?([\w.<>-]+)\]\]?[^\n]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S
    ):
        tags = dict(re.findall(r'^(kind|type) = "(\w+)"', body, re.M))
        out.append((header.split(".")[0], tags, body))
    return out


def _documented(key: str, body: str) -> bool:
    """``key = ...`` (or ``key_env = ...``) set or mentioned in a comment of the table."""
    return re.search(rf"(?<![\w.]){re.escape(key)}(_env)?\s*=", body) is not None


def _keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _channel_keys(kind: str) -> list[str]:
    cls = CHANNELS[kind]
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    aliases = {v: k for k, v in cls.config_aliases.items()}
    return [aliases.get(n, n) for n in names]


def test_every_table_and_key_of_shipyard_toml_is_in_the_readme_example() -> None:
    tables = _tables(_example())
    sections = {section for section, _, _ in tables}
    assert sections == set(ProjectConfig.model_fields), "Show every table in the README example."
    missing: list[str] = []
    for section, field in ProjectConfig.model_fields.items():
        assert field.description, f"Add a description= to ProjectConfig.{section}."
        model: Any = field.annotation
        model = model.__args__[-1] if hasattr(model, "__args__") else model
        bodies = [(tags, body) for s, tags, body in tables if s == section]
        for key, info in model.model_fields.items():
            assert info.description, f"Add a description= to {model.__name__}.{key}."
            if not any(_documented(key, body) for _, body in bodies):
                missing.append(f"[{section}] {key}")
    for kind, job in JOB_KINDS.items():
        bodies = [body for s, tags, body in tables if s == "jobs" and tags.get("kind") == kind]
        assert bodies, f"Add a [[jobs]] example of kind {kind!r} to the README."
        missing += [
            f"[[jobs]] ({kind}) {k}" for k in _keys(job.params) if not _documented(k, bodies[0])
        ]
    for kind in CHANNELS:
        bodies = [body for s, tags, body in tables if s == "channels" and tags.get("type") == kind]
        assert bodies, f"Add a [channels.<name>] example of type {kind!r} to the README."
        missing += [
            f"[channels] ({kind}) {k}" for k in _channel_keys(kind) if not _documented(k, bodies[0])
        ]
    assert not missing, f"Document these keys in the README's example shipyard.toml: {missing}"


def test_the_readme_example_is_a_valid_project_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "secret")
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/x")
    project = load_project(tmp_path / "shipyard.toml", text=_example())
    assert len(AlertConfig.from_project(project).channels) == 2
    assert [r.name for r in notify_rules(project)] == ["deploys"]
    jobs = SchedulerConfig.from_project(project).jobs
    assert [(j.name, j.kind) for j in jobs] == [
        ("churn-drift", "monitor"),
        ("retention", "gc"),
        ("churn-weekly", "retrain"),
        ("risk-weekly", "digest"),
        ("fraud-learn", "snapshot"),
        ("canary-check", "command"),
        ("retrain-churn", "retrain"),  # schedule in [models.churn.retrain]
    ]


# --- the web UI's settings and the ui options ----------------------------------------------


@pytest.mark.parametrize("command", ["ui", "serve"])
def test_ui_options_take_their_default_and_help_from_ui_settings(command: str) -> None:
    options = {p.help: p for p in _options(command).values()}
    for name, field in UiSettings.model_fields.items():
        assert field.description, f"Add a description= to the UiSettings field {name}."
        option = options.get(field.description)
        if option is None:
            continue  # set by create_ui(settings=...) only
        assert option.default == field.default, f"--{option.name}: default {option.default!r}"
    assert options.get(UiSettings.model_fields["trusted_header"].description) is not None


def test_every_ui_option_and_setting_is_in_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    table = readme[readme.index("`shipyard ui` options") :]
    for option in _options("ui"):
        if option != "--help":
            assert f"`{option}`" in table, f"Add a row for `{option}` to the README's ui table."
    options = {p.help for p in _options("ui").values()}
    for name, field in UiSettings.model_fields.items():
        if field.description not in options:
            assert f"`{name}`" in readme, f"Name the UiSettings field `{name}` in the README."
