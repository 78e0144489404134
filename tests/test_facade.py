"""``import shipyard as sy``: the one-call functions end to end on a real SQLite store, over
one default client that ``sy.close()`` forgets."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from gates_off import GATES_OFF_TOML

TrainingData = tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``SHIPYARD_HOME`` in ``tmp_path``, a store whose admin made bob an approver; the
    default client is closed before and after."""
    sy.close()
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    for name in ("SHIPYARD_DB_URL", "SHIPYARD_ARTIFACTS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "shipyard.toml").write_text(GATES_OFF_TOML)
    monkeypatch.setenv("SHIPYARD_CONFIG", str(tmp_path / "shipyard.toml"))
    admin = sy.Client(sy.Settings(user="admin")).open()
    admin.users.set_role("bob", "approver", actor="admin")
    admin.close()
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    yield tmp_path / "home"
    sy.close()


def test_track_register_approve_promote_load_rollback(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    fitted_pipeline: Any,
    training_data: TrainingData,
) -> None:
    X, y, X_eval, y_eval = training_data
    with sy.start_run(model="churn", params={"C": 0.5}) as run:
        assert sy.active_run() is run
        run.log_metric("auc", 0.91)
        first = run.register(
            fitted_pipeline, X_train=X, y_train=y, X_eval=X_eval, y_eval=y_eval, onnx=False
        )
    assert sy.active_run() is None
    assert (first.model_name, first.version, first.author) == ("churn", 1, "alice")
    second = sy.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    assert second.version == 2

    loaded = sy.load("churn:1")
    assert isinstance(loaded, sy.LoadedModel) and loaded.version == 1
    np.testing.assert_array_equal(loaded.predict(X_eval), fitted_pipeline.predict(X_eval))
    assert sy.load("churn", 2).version == 2

    sy.close()  # the next call reads the environment again: now bob acts
    monkeypatch.setenv("SHIPYARD_USER", "bob")
    assert sy.approve("churn", 1, reason="AUC ok").approver == "bob"
    sy.approve("churn", 2, reason="AUC ok")
    sy.close()
    monkeypatch.setenv("SHIPYARD_USER", "alice")
    assert sy.promote("churn", 1).version == 1
    assert sy.promote("churn", 2, reason="better").previous_version == 1
    assert sy.load("churn@production").version == 2
    assert sy.rollback("churn", reason="v2 misbehaves").version == 1
    assert sy.load("churn@production").version == 1
    with pytest.raises(sy.ShipyardError, match="Did you mean 'churn'"):
        sy.load("chrun@production")


def test_one_default_client_built_once_and_not_re_read(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = sy._client()
    assert sy._client() is first and first.user == "alice"
    monkeypatch.setenv("SHIPYARD_USER", "bob")  # the environment is read once, at first use
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "elsewhere"))
    assert sy._client() is first
    sy.close()
    sy.close()  # closing twice (or with none open) does nothing
    again = sy._client()
    assert again is not first and again.user == "bob"
    assert again.settings.home == tmp_path / "elsewhere"


def test_concurrent_first_calls_build_one_client(home: Path) -> None:
    threads = 8
    barrier = threading.Barrier(threads)
    got: list[sy.Client] = []
    lock = threading.Lock()

    def first_call() -> None:
        barrier.wait()
        found = sy._client()
        with lock:
            got.append(found)

    workers = [threading.Thread(target=first_call) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert len(got) == threads
    assert len({id(c) for c in got}) == 1


def test_the_facade_signatures_are_explicit() -> None:
    import inspect

    for name in ("start_run", "register", "load", "approve", "promote", "validate", "rollback"):
        facade = inspect.signature(getattr(sy, name))
        method = inspect.signature(getattr(sy.Client, name))
        assert list(facade.parameters) == list(method.parameters)[1:], name  # minus self
        kinds = {p.kind for p in facade.parameters.values()}
        assert inspect.Parameter.VAR_KEYWORD not in kinds, name
        for fn in (getattr(sy, name), getattr(sy.Client, name)):
            assert fn.__doc__ and ">>> " in fn.__doc__, f"{fn.__qualname__}: add an example"
    assert ">>> " in (sy.close.__doc__ or "")
