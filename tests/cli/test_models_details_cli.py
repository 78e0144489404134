"""``shipyard models create|set --team --owner`` (audited) and the team and owner in the
``shipyard models`` listing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from cli_support import cli, point_cli_at
from shipyard.store import Store
from shipyard.store.tables import AuditEvent


def test_team_and_owner_are_set_listed_and_audited(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    point_cli_at(monkeypatch, db_url, tmp_path, toml=None)
    code, out, _ = cli(
        capsys, "models", "create", "churn", "--team", "retention", "--owner", "olga"
    )
    assert code == 0 and "Team: retention" in out and "Owner: olga" in out
    code, out, _ = cli(capsys, "models", "set", "churn", "--team", "growth")
    assert code == 0 and "Team: growth" in out and "Owner: olga" in out
    code, out, _ = cli(capsys, "models", "set", "churn", "--owner", "")
    assert code == 0 and "Owner: (none)" in out
    code, out, _ = cli(capsys, "models", "--json")
    (listed,) = json.loads(out)
    assert (listed["name"], listed["team"], listed["owner"]) == ("churn", "growth", None)
    code, out, _ = cli(capsys, "models")
    assert "growth" in out and "team" in out
    code, _, err = cli(capsys, "models", "set", "churn")
    assert code != 0 and "--team" in err
    code, _, err = cli(capsys, "models", "set", "churn", "--team", "x" * 200)
    assert code != 0 and "at most 128" in err
    store = Store(db_url, str(tmp_path / "artifacts"), creator="admin").open()
    try:
        with store.read() as session:
            events = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "model.details_set")
            ).all()
            created = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "model.created")
            ).all()
        assert [e.details["after"] for e in events] == [
            {"owner": "olga", "team": "growth"},
            {"owner": None, "team": "growth"},
        ]
        assert created[-1].details["team"] == "retention" and created[-1].actor == "admin"
    finally:
        store.close()
