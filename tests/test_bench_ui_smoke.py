"""bench/ui.py's seed at a tiny size: the store it builds is one Shipyard reads as its own
(schema from the migrations, counts, a verifying audit chain, the monitoring names the product
writes, health agreeing with the series) and its Parquet log is what ``read_window`` reads."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import func, select

from shipyard.audit import verify
from shipyard.predlog import read_window
from shipyard.store import Store
from shipyard.store.tables import ModelHealth, ModelVersion, MonitoringResult

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))

import ui_registry
from ui_registry import SeedConfig, log_counts
from ui_seed import seed
from ui_series import add_drift_verdicts


def test_tiny_seed_is_a_readable_store(tmp_path: Path) -> None:
    config = SeedConfig(
        db="sqlite", out=tmp_path / "seeded", models=6, versions=4, days=3, predictions=3000
    )
    summary = seed(config)

    windows = 3 * 24
    assert summary["counts"]["models"] == 6
    per_model = windows * (1 + 3 + 3 + 1) + windows // 4 * 2  # share, psi, drift, auc; interval
    assert summary["counts"]["monitoring_results"] == 6 * per_model
    store = Store(summary["db_url"], summary["artifacts"], creator="admin").open()
    try:
        with store.read() as session:
            assert session.scalar(select(func.count()).select_from(ModelVersion)) == 24
            n_results = session.scalar(select(func.count()).select_from(MonitoringResult))
            assert n_results == summary["counts"]["monitoring_results"]
            metrics = set(session.scalars(select(MonitoringResult.metric).distinct()))
            assert metrics == {
                "drift_share",
                "psi",
                "drift",
                "roc_auc",
                "roc_auc.ci_low",
                "roc_auc.ci_high",
            }
            verdicts = session.execute(
                select(MonitoringResult.value, MonitoringResult.flagged).where(
                    MonitoringResult.metric == "drift"
                )
            ).all()
            assert {(v, f) for v, f in verdicts} <= {(1.0, True), (0.0, False)}
            assert set(session.scalars(select(MonitoringResult.feature).distinct())) >= {"*"}
            chain = verify(session)
            assert chain.ok, chain.problem
            assert chain.checked > summary["counts"]["audit_events"]  # users' events too
            for health in session.scalars(select(ModelHealth)):
                newest = session.scalars(
                    select(MonitoringResult.run_id)
                    .where(MonitoringResult.model_name == health.model_name)
                    .order_by(MonitoringResult.window_end.desc())
                    .limit(1)
                ).one()
                assert health.run_id == newest
                assert set(health.performance) == {"roc_auc"}
    finally:
        store.close()
    assert add_drift_verdicts(summary["db_url"], str(config.out / "shipyard.db")) == 0

    busiest = summary["models"][0]
    expected = log_counts(config)[0]
    window = read_window(summary["predlog"], busiest, feedback=True)
    con = window.connect()
    [(n, first_id, first_ts)] = con.sql(
        "SELECT count(*), min(prediction_id), min(epoch_ms(ts)) FROM predictions"
    ).fetchall()
    assert n == expected == summary["log"]["predictions"] - sum(log_counts(config)[1:])
    assert int(first_id[:11], 16) == first_ts  # ids start with their ms clock, like the server's
    [(labelled,)] = con.sql(
        "SELECT count(*) FROM feedback JOIN predictions USING (prediction_id)"
    ).fetchall()
    assert 0 < labelled < n
    sample = summary["sample_prediction_ids"][0]
    owners = [
        m
        for m in summary["models"][:: ui_registry.SERVE_EVERY]
        if read_window(summary["predlog"], m)
        .connect()
        .execute("SELECT count(*) FROM predictions WHERE prediction_id = ?", [sample])
        .fetchone()[0]
    ]
    assert len(owners) == 1
