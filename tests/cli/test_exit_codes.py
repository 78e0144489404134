"""One exit-code rule (``run_cli``'s docstring, README "Exit codes"): 0 ok; 1 a check found a
problem, a named thing is not found, a change is refused, or the store or installation failed;
2 the input is wrong whatever the store holds."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import shipyard.errors as errors
from shipyard import Client, Settings
from shipyard.cli import run_cli
from shipyard.cli._app import exit_code

#: Every error class and its exit code: a new class needs a row here (and a line in the rule).
CODES: dict[type[errors.ShipyardError], int] = {
    errors.ShipyardError: 1,
    errors.InvalidInput: 2,
    errors.SchemaViolation: 2,
    errors.PayloadTooLarge: 2,
    errors.UnsupportedMediaType: 2,
    errors.Unauthorized: 1,
    errors.PermissionDenied: 1,
    errors.ApprovalRequired: 1,
    errors.NotFound: 1,
    errors.AlreadyExists: 1,
    errors.InvalidTransition: 1,
    errors.IntegrityError: 1,
    errors.TooManyRequests: 1,
    errors.ModelUnavailable: 1,
    errors.SchemaOutOfDate: 1,
    errors.StoreUnavailable: 1,
    errors.MissingDependency: 1,
}


def _subclasses(cls: type[errors.ShipyardError]) -> set[type[errors.ShipyardError]]:
    return {cls}.union(*(_subclasses(sub) for sub in cls.__subclasses__()))


def test_every_error_class_has_its_exit_code() -> None:
    classes = {c for c in _subclasses(errors.ShipyardError) if c.__module__ == errors.__name__}
    assert classes == set(CODES), "give each class of shipyard.errors a row in CODES"
    for cls, code in CODES.items():
        assert exit_code(cls("x")) == code, cls.__name__


@pytest.fixture
def store_home(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fitted_pipeline: Any,
    training_data: tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series],
) -> Iterator[Path]:
    """A store with churn v1 (by alice, not approved) and bob the approver; acting: alice."""
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SHIPYARD_DB_URL", raising=False)
    monkeypatch.delenv("SHIPYARD_ARTIFACTS", raising=False)
    monkeypatch.setenv("SHIPYARD_USER", "admin")
    admin = Client(Settings()).open()
    admin.users.set_role("bob", "approver", actor="admin")
    X, y, X_eval, _ = training_data
    alice = Client(Settings(user="alice"), store=admin.store).open()
    alice.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    admin.close()
    X_eval.to_csv(tmp_path / "in.csv", index=False)
    X_eval.drop(columns="age").to_csv(tmp_path / "no-age.csv", index=False)
    X_eval.assign(age="old").to_csv(tmp_path / "bad-age.csv", index=False)
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    yield tmp_path


def _tamper_archive(home: Path) -> None:
    (archive,) = (p for p in (home / "home" / "artifacts").rglob("*") if p.is_file())
    archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")


# (what the case shows, arguments, expected code, expected text in the output, set-up)
Case = tuple[str, list[str], int, str, Callable[[Path, pytest.MonkeyPatch], object] | None]
CASES: list[Case] = [
    ("ok", ["models", "churn"], 0, "churn", None),
    ("a check found a problem", ["feedback", "churn", "{tmp}/labels.csv"], 1, "unknown", None),
    ("NotFound: model", ["promote", "chrun", "1"], 1, "Did you mean 'churn'?", None),
    ("NotFound: version", ["score", "churn:9", "{tmp}/in.csv", "{tmp}/o.csv"], 1, "1 to 1", None),
    ("ApprovalRequired", ["promote", "churn", "1"], 1, "needs an approval", None),
    ("PermissionDenied", ["tokens", "create", "--role", "scorer"], 1, "only admins", None),
    ("InvalidTransition", ["rollback", "churn"], 1, "no production version", None),
    (
        "AlreadyExists",
        ["approve", "churn", "1", "--reason", "ok"],
        1,
        "already approved",
        lambda _, mp: (
            mp.setenv("SHIPYARD_USER", "bob"),
            run_cli(["approve", "churn", "1", "--reason", "ok"]),
        ),
    ),
    (
        "IntegrityError",
        ["score", "churn:1", "{tmp}/in.csv", "{tmp}/o.csv"],
        1,
        "digest",
        lambda home, _: _tamper_archive(home),
    ),
    (
        "StoreUnavailable",
        ["models"],
        1,
        "Cannot use database URL",
        lambda _, mp: mp.setenv("SHIPYARD_DB_URL", "nosuchdb://x"),
    ),
    (
        "MissingDependency",
        ["demo", "--home", "{tmp}/demo"],
        1,
        'pip install -e ".[demo]"',
        lambda _, mp: mp.setitem(sys.modules, "aiosmtpd", None),
    ),
    ("usage: unknown command", ["frobnicate"], 2, "No such command", None),
    ("usage: malformed value", ["promote", "churn", "x"], 2, "Invalid value", None),
    ("InvalidInput: a value", ["users", "add", "carol", "--role", "king"], 2, "king", None),
    (
        "InvalidInput: no file",
        ["score", "churn:1", "{tmp}/none.csv", "{tmp}/o.csv"],
        2,
        "No such",
        None,
    ),
    (
        "InvalidInput: a CSV missing a column",
        ["score", "churn:1", "{tmp}/no-age.csv", "{tmp}/o.csv"],
        2,
        "lacks the column(s) 'age'",
        None,
    ),
    (
        "SchemaViolation: a CSV with a wrong type",
        ["score", "churn:1", "{tmp}/bad-age.csv", "{tmp}/o.csv"],
        2,
        "'age'",
        None,
    ),
    (
        "InvalidInput: an invalid shipyard.toml",
        ["alerts", "rules"],
        2,
        "not valid TOML",
        lambda home, mp: (
            (home / "bad.toml").write_text("= not toml"),
            mp.setenv("SHIPYARD_CONFIG", str(home / "bad.toml")),
        ),
    ),
]


@pytest.mark.parametrize(
    ("args", "code", "text", "setup"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_kind_of_outcome_has_its_exit_code(
    store_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    text: str,
    setup: Callable[[Path, pytest.MonkeyPatch], object] | None,
) -> None:
    pd.DataFrame({"prediction_id": ["nope"], "label": ["churn"]}).to_csv(
        store_home / "labels.csv", index=False
    )
    if setup is not None:
        setup(store_home, monkeypatch)
    capsys.readouterr()
    assert run_cli([a.replace("{tmp}", str(store_home)) for a in args]) == code
    out, err = capsys.readouterr()
    assert text in " ".join((out + err).split())
    assert "Traceback" not in out + err
    if err.startswith("Error: "):  # a Shipyard error: one line (Typer's usage errors: a box)
        assert len(err.strip().splitlines()) == 1, err
