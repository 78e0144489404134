"""Two processes promoting at once never leave two production versions or a forked chain."""

from __future__ import annotations

import itertools
import multiprocessing as mp
from collections.abc import Callable
from pathlib import Path

from gates_off import NO_GATES
from shipyard import Client, Settings
from shipyard.audit import verify
from shipyard.store import Store


def _promote_loop(
    db_url: str, artifacts: str, user: str, version: int, rounds: int, barrier, errors
) -> None:  # type: ignore[no-untyped-def]
    store = Store(db_url, artifacts, creator="admin").open()
    client = Client(Settings(user=user), store=store, project=NO_GATES).open()
    barrier.wait()
    for _ in range(rounds):
        try:
            client.promote("churn", version)
        except Exception as exc:  # "already production" is expected when we win twice
            if "already production" not in str(exc):
                errors.put(f"{type(exc).__name__}: {exc}")
    store.close()


def test_concurrent_promotions(
    store: Store,
    client_for: Callable[[str], Client],
    approver: Client,
    fitted_pipeline,
    training_data,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    alice = client_for("alice")
    X, y, _, _ = training_data
    for _ in range(2):
        alice.register(fitted_pipeline, name="churn", X_train=X, y_train=y, onnx=False)
    approver.approve("churn", 1, reason="ok")
    approver.approve("churn", 2, reason="ok")
    ctx = mp.get_context("spawn")
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(
            target=_promote_loop,
            args=(store.db_url, store.artifacts_url, user, v, 15, barrier, errors),
        )
        for user, v in (("alice", 1), ("carol", 2))
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert problems == []
    history = alice.registry.alias_history("churn")
    assert len(history) >= 2
    # each move starts where the previous one ended: no lost update, no interleaving
    for before, after in itertools.pairwise(history):
        assert after.previous_version == before.version
    assert alice.registry.aliases("churn")["production"] == history[-1].version
    stages = [i.stage for i in alice.registry.versions("churn")]
    assert stages.count("production") == 1
    with store.read() as session:
        assert verify(session).ok
