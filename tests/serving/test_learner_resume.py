"""A server's online learner survives a restart: the next server resumes it from the labels in
the prediction log, exactly as if it had never stopped (real ``shipyard serve`` processes,
stopped, killed and started again). A rollback stays a person's verdict across restarts."""

from __future__ import annotations

import copy
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from server_process import serve_process
from serving.fraud_stream import stream
from shipyard import Client
from shipyard.registry import Registry
from shipyard.store import Store

#: Each test starts servers again and again: the database is incidental here.
pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]

#: The servers' --snapshot-every.
EVERY = 300
#: The drifted stream the servers learn, and rows their snapshots are compared on.
X, Y = stream(900, drifted=True, seed=1)
X_NEW, _ = stream(200, drifted=True, seed=2)


@contextmanager
def _server(
    store: Store, tmp_path: Path
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes], Path]]:
    """A server of ``fraud`` that snapshots its learner every ``EVERY`` labels."""
    args = ["--models", "fraud", "--log-dir", str(tmp_path / "predlog"), "--no-auth"]
    args += ["--snapshot-every", str(EVERY)]
    with (
        serve_process(store, tmp_path / "home", *args, user="learner") as (url, process, err),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        yield client, process, err


def _stop(process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> None:
    process.send_signal(how)
    process.wait(60)


def _teach(client: httpx.Client, rows: slice) -> list[int]:
    """Predict ``X[rows]`` 100 rows a request and send their labels; the snapshots made."""
    snapshots = []
    for start in range(rows.start, rows.stop, 100):
        chunk = X.iloc[start : start + 100]
        answer = client.post("/models/fraud/predict", json={"records": chunk.to_dict("records")})
        assert answer.status_code == 200, answer.text
        labels = [
            {"prediction_id": pid, "label": label}
            for pid, label in zip(
                answer.json()["prediction_ids"], Y[start : start + 100], strict=True
            )
        ]
        # Sent newest first, learned oldest prediction first: the order a replay reads.
        fed = client.post("/models/fraud/feedback", json={"labels": labels[::-1]})
        assert fed.status_code == 200, fed.text
        assert fed.json()["learning"]["learned"] == 100
        if fed.json()["learning"]["snapshot"] is not None:
            snapshots.append(fed.json()["learning"]["snapshot"])
    return snapshots


def _served(client: httpx.Client, version: int) -> None:
    deadline = time.monotonic() + 10
    row = {"records": [{"a": 0.1, "b": 0.2}]}
    while client.post("/models/fraud/predict", json=row).headers["X-Shipyard-Version"] != str(
        version
    ):
        assert time.monotonic() < deadline, f"v{version} not served within 10 s"
        time.sleep(0.05)


def _promote(registry: Registry, approver: Client, client: httpx.Client, version: int) -> None:
    approver.approve("fraud", version, reason="learned the drift")
    registry.promote("fraud", version, actor="alice")
    _served(client, version)


def _learned(registry: Registry, rows: slice) -> Any:
    """``fraud`` v1 taught ``X[rows]`` in order, in one process that never stopped."""
    model = copy.deepcopy(registry.load("fraud", 1).model)
    for x, label in zip(X.iloc[rows].to_dict("records"), Y[rows], strict=True):
        model.learn_one(x, label)
    return model


def _assert_snapshot(registry: Registry, version: int, learned: int, same_as: Any) -> None:
    """``version`` is a snapshot of v1 that learned ``learned`` labels, profiled on every row
    it learned, and answers exactly as ``same_as`` does."""
    tags = registry.get_version("fraud", version).tags
    assert (tags["snapshot_of"], tags["labels_learned"]) == (1, learned), tags
    profile = registry.open_archive("fraud", version).reference_profile["inputs"]
    assert profile["n_rows"] == learned
    answers = registry.load("fraud", version).model.predict_proba(X_NEW)
    np.testing.assert_array_equal(answers, same_as.predict_proba(X_NEW))


def test_a_restarted_server_learns_on_as_if_it_had_never_stopped(
    store: Store, fraud: Registry, approver: Client, tmp_path: Path
) -> None:
    with _server(store, tmp_path) as (client, process, _):
        assert _teach(client, slice(0, 500)) == [2]  # 200 labels past v2 when it stops
        _stop(process)
    with _server(store, tmp_path) as (client, process, _):
        # v1 served: the learner resumes from its snapshot v2 and the 200 labels after it,
        # so 100 more make 300 since v2 (a server that forgot would be at 100).
        assert _teach(client, slice(500, 600)) == [3]
        _promote(fraud, approver, client, 3)  # its newest snapshot: the learner goes on
        assert _teach(client, slice(600, 700)) == []
        _stop(process, signal.SIGKILL)  # the labels are in the log once acknowledged
    with _server(store, tmp_path) as (client, process, err):
        assert _teach(client, slice(700, 900)) == [4]  # resumed from v3 and 100 labels
        # A rollback after a restart is still a person's verdict: the learner starts again
        # from v1, and 300 labels after it make its first snapshot.
        fraud.rollback("fraud", actor="alice", reason="v3 learned the wrong thing")
        _served(client, 1)
        assert _teach(client, slice(0, 400)) == [5]
        _stop(process)
    with _server(store, tmp_path) as (client, process, _):
        # v1 served since the rollback: the learner resumes from v5 and the 100 labels after
        # it, never from what the learner rolled back from learned.
        assert _teach(client, slice(400, 600)) == [6]
        _stop(process)
    assert "Traceback" not in err.read_text()
    for version, learned in ((2, 300), (3, 600), (4, 900)):
        _assert_snapshot(fraud, version, learned, _learned(fraud, slice(0, learned)))
    for version, learned in ((5, 300), (6, 600)):  # the stream again, after the rollback
        _assert_snapshot(fraud, version, learned, _learned(fraud, slice(0, learned)))
    since = [fraud.get_version("fraud", v).tags["learning_since"] for v in range(2, 7)]
    assert since[0] == since[1] == since[2] != since[3] == since[4]  # two learners


def test_a_learner_that_cannot_resume_says_so_once_and_starts_from_the_served_version(
    store: Store, fraud: Registry, approver: Client, tmp_path: Path
) -> None:
    with _server(store, tmp_path) as (client, process, _):
        assert _teach(client, slice(0, 400)) == [2]
        _stop(process)
    store.artifacts.put(fraud.get_version("fraud", 2).archive_key, b"not an archive")
    with _server(store, tmp_path) as (client, process, err):
        assert _teach(client, slice(400, 700)) == [3]  # from v1: 300 labels, not 100
        _stop(process)
    said = [line for line in err.read_text().splitlines() if "the learner starts from" in line]
    assert len(said) == 1, said
    assert "fraud: the learner starts from v1 without the labels it had learned" in said[0]
    assert "Traceback" not in err.read_text()
    _assert_snapshot(fraud, 3, 300, _learned(fraud, slice(400, 700)))
    assert "learning_since" not in fraud.get_version("fraud", 3).tags
