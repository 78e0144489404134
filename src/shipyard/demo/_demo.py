"""``shipyard demo``: the whole loop on scikit-learn's bundled breast-cancer data.

Everything happens in its own embedded store (a folder it owns, reset on every run), with
three people: an admin who creates the store, Alice (a data scientist) and Bob (an approver).
Train, register, approve, promote and roll back; then serve (``shipyard.demo._live``), log and
label the traffic, monitor drift and performance, alert, retrain, validate, approve, run a
canary, judge it, promote it and roll back under load.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shipyard.audit import verify
from shipyard.client import Client
from shipyard.demo._live import DRIFT, LiveDemo, shift_like_drift
from shipyard.errors import MissingDependency, ShipyardError
from shipyard.settings import Settings
from shipyard.store import Store

MARKER = ".shipyard-demo"


def _require_extra() -> None:
    """Refuse to start, in one line saying what to install, without the ``[demo]`` extra
    (aiosmtpd: the local SMTP server of the e-mail alert step)."""
    try:
        import aiosmtpd  # noqa: F401 - only whether it imports
    except ImportError as exc:
        raise MissingDependency(
            "The demo needs aiosmtpd (its local SMTP server), which is not installed: run "
            'pip install -e ".[demo]" in a clone of Shipyard (or pip install "shipyard[demo]").'
        ) from exc


def shipyard_command() -> str:
    """How a shell runs this installation's ``shipyard``: the bare name when the one on PATH
    is this one; else the script beside this interpreter (a venv not on PATH); else
    ``<python> -m shipyard``.

    >>> shipyard_command().endswith(("shipyard", "-m shipyard"))
    True
    """
    beside = shutil.which("shipyard", path=os.path.dirname(sys.executable))
    if beside is None:
        return f"{shlex.quote(sys.executable)} -m shipyard"
    on_path = shutil.which("shipyard")
    if on_path is not None and os.path.samefile(on_path, beside):
        return "shipyard"
    return shlex.quote(beside)


def explore_commands(home: Path) -> list[str]:
    """Shell commands that show the demo's store, each runnable as printed (the store's
    ``SHIPYARD_HOME`` set on each one).

    >>> explore_commands(Path("/tmp/my demo"))[0].startswith("SHIPYARD_HOME='/tmp/my demo' ")
    True
    """
    env = f"SHIPYARD_HOME={shlex.quote(str(home))}"
    command = shipyard_command()
    return [f"{env} {command} models diagnosis", f"{env} {command} audit log"]


def _reset(home: Path) -> None:
    if home.exists():
        if not (home / MARKER).exists():
            from shipyard.errors import InvalidInput

            raise InvalidInput(
                f"'{home}' exists and is not a Shipyard demo folder; pass --home with a new path."
            )
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("Created by 'shipyard demo'; deleted by the next demo run.\n")


def _refusal(action: Callable[[], object]) -> Callable[[], str]:
    """A demo step that must be refused: shows the refusal's message."""

    def step() -> str:
        try:
            action()
        except ShipyardError as exc:
            return f"refused: {exc.message}"
        return "unexpectedly allowed"

    return step


def load_data() -> tuple[Any, Any, Any, Any]:
    """Breast-cancer data (ships with scikit-learn), split 75/25 with a fixed seed."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer(as_frame=True)
    X = data.data.rename(columns=lambda c: c.replace(" ", "_"))
    y = data.target.map({0: "malignant", 1: "benign"})
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def run_demo(home: Path, console: Console | None = None) -> dict[str, Any]:
    """Run the loop; returns a summary (also printed).

    Refuses to start (``MissingDependency``) without the ``[demo]`` extra.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _require_extra()
    console = console or Console()
    home = home.expanduser().absolute()
    _reset(home)
    store = Store.from_settings(Settings(home=home, user="admin")).open()
    admin, alice, bob = (
        Client(Settings(home=home, user=u), store=store).open() for u in ("admin", "alice", "bob")
    )
    steps: list[tuple[str, str]] = []

    def step(title: str, action: Callable[[], str]) -> None:
        with console.status(title):
            outcome = action()
        steps.append((title, outcome))
        console.print(f"[green]✓[/] {escape(title)}: {escape(outcome)}")

    console.rule("[bold]Shipyard demo")
    console.print(f"Store: {home} (SQLite + local artifacts)\n")
    step(
        "admin makes bob an approver",
        lambda: (admin.users.set_role("bob", "approver", actor="admin"), "bob is approver")[1],
    )
    X_train, X_test, y_train, y_test = load_data()

    def train(
        model: Any, params: dict[str, Any], X: pd.DataFrame | None = None, y: Any = None
    ) -> str:
        X, y = (X_train, y_train) if X is None else (X, y)
        with alice.start_run(model="diagnosis", params=params) as run:
            run.log_dataset("train", X.assign(target=y), target="target")
            run.log_dataset("eval", X_test.assign(target=y_test), target="target")
            model.fit(X, y)
            mv = run.register(model, X_train=X, y_train=y, X_eval=X_test, y_eval=y_test)
            for key, value in mv.metrics.items():
                run.log_metric(key, value)
        onnx = alice.load("diagnosis", mv.version).manifest.onnx or {}
        parity = (
            f", ONNX max |diff| {onnx['max_abs_diff']:.1e}"
            if onnx.get("max_abs_diff") is not None
            else ""
        )
        return (
            f"v{mv.version} registered (accuracy {mv.metrics['accuracy']:.3f}, "
            f"AUC {mv.metrics['roc_auc']:.3f}{parity}), run {run.id[:8]}"
        )

    step(
        "alice trains a logistic regression",
        lambda: train(
            make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)),
            {"model": "logistic", "C": 0.5},
        ),
    )

    step(
        "alice tries to make herself an approver",
        _refusal(lambda: alice.users.set_role("alice", "approver", actor="alice")),
    )
    step(
        "bob approves v1",
        lambda: (bob.approve("diagnosis", 1, reason="AUC beats baseline"), "approved")[1],
    )
    step(
        "alice promotes v1 to production",
        lambda: (alice.promote("diagnosis", 1), "diagnosis@production → v1")[1],
    )
    step(
        "alice trains gradient boosting",
        lambda: train(
            HistGradientBoostingClassifier(max_iter=60, random_state=0),
            {"model": "hist_gradient_boosting", "max_iter": 60},
        ),
    )

    step(
        "alice tries to promote v2 before approval", _refusal(lambda: alice.promote("diagnosis", 2))
    )
    step(
        "bob approves v2",
        lambda: (bob.approve("diagnosis", 2, reason="better recall"), "approved")[1],
    )
    step(
        "alice promotes v2 to production",
        lambda: (alice.promote("diagnosis", 2), "diagnosis@production → v2")[1],
    )
    step(
        "bob rolls production back",
        lambda: (
            bob.rollback("diagnosis", reason="demo: v2 misbehaves"),
            "diagnosis@production → v1",
        )[1],
    )

    def predict() -> str:
        model = alice.load("diagnosis@production")
        pred = model.predict(X_test.head(5))
        return f"v{model.version} predicts {', '.join(map(str, pred))}"

    step("load production and predict 5 rows (archive verified first)", predict)

    def validate(version: int) -> str:
        """Accuracy of ``version`` and production on the eval rows, as they are and shifted."""
        new, production = alice.load("diagnosis", version), alice.load("diagnosis@production")
        parts = []
        for what, X in (
            ("eval rows", X_test),
            ("shifted like the drift", shift_like_drift(X_test)),
        ):
            scores = [float((m.predict(X) == y_test.to_numpy()).mean()) for m in (new, production)]
            parts.append(
                f"{what}: v{version} {scores[0]:.3f} vs v{production.version} {scores[1]:.3f}"
            )
        return "accuracy on " + "; ".join(parts)

    def audit() -> str:
        with store.read() as session:
            result = verify(session)
        return f"{result.checked} events, chain intact" if result.ok else result.problem

    with LiveDemo(home, store, "diagnosis", X_test, y_test) as live:
        step("send 200 rows of traffic to the REST server", live.traffic)
        step("send 3 invalid requests", live.invalid)
        step("switch production to v2 and back while serving", lambda: live.live_switch(alice, bob))
        step("send drifted traffic", live.drifted)
        step("post ground-truth labels for 80% of the predictions", live.feedback)
        step("query the prediction log with DuckDB", live.query)
        step("measure performance against the labels", lambda: live.performance(alice))
        step("monitor the logged window against the training profile", live.monitor)
        step("e-mail an alert through a local SMTP server", live.alert)
        step(
            f"alice retrains, adding training rows shifted like the drift ({DRIFT})",
            lambda: train(
                make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500)),
                {"model": "logistic", "C": 0.5, "data": "train + drift-shaped copy"},
                pd.concat([X_train, shift_like_drift(X_train)], ignore_index=True),
                pd.concat([y_train, y_train], ignore_index=True),
            ),
        )
        step("validate v3 against production on the eval rows", lambda: validate(3))
        step(
            "bob approves v3",
            lambda: (bob.approve("diagnosis", 3, reason="handles drift"), "approved")[1],
        )
        step("alice starts a 25% canary of v3", lambda: live.canary(alice, 3, 25))
        step("send traffic during the canary", live.canary_traffic)
        step("judge the canary (check_canary)", live.judge)
        if live.decision == "promote":
            step("alice promotes v3 (the canary's verdict)", lambda: live.conclude(alice, 3))
            title, why = "bob rolls v3 back under load (a drill, one call)", "demo: drill"
        else:  # "rollback", or "wait" (no verdict yet): the demo does not wait, it ends it
            title = f"bob ends the canary under load (verdict {live.decision}, one call)"
            why = f"canary verdict: {live.decision}"
        step(
            title,
            lambda: live.under_load(
                lambda: bob.traffic.rollback("diagnosis", actor="bob", reason=why), 1
            ),
        )
    step("verify the audit log", audit)

    versions = alice.registry.versions("diagnosis")
    t = Table(title="diagnosis versions", title_justify="left")
    for col in ("version", "stage", "aliases", "author", "approved by", "accuracy"):
        t.add_column(col)
    for info in versions:
        t.add_row(
            str(info.version.version),
            info.stage,
            ", ".join(info.aliases),
            info.version.author,
            ", ".join(info.approvals),
            f"{info.version.metrics.get('accuracy', float('nan')):.3f}",
        )
    console.print()
    console.print(t)
    console.print(f"\nMonitoring report (drift, performance, service): {live.report_path}")
    explore = explore_commands(home)
    console.print("Explore it:")
    for line in explore:  # not wrapped, not styled: each line runs as printed
        console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)
    store.close()
    return {
        "home": str(home),
        "steps": steps,
        "report": str(live.report_path),
        "flagged": live.report.flagged(),
        "performance": live.perf,
        "canary": {"answered": live.answered, "decision": live.decision},
        "drill": live.drill,
        "production": {i.version.version for i in versions if i.stage == "production"},
        "explore": explore,
    }
