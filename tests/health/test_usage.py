"""Usage per team: each logged prediction carries its caller, team, compute time and request
size; ``usage`` and ``/metrics`` count the same requests, rows and refusals."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from health.conftest import GOOD
from shipyard.errors import InvalidInput
from shipyard.predlog import PredictionLog, query, usage
from shipyard.serving import create_app, serve_in_thread
from shipyard.settings import ServeSettings
from shipyard.store import Store


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_usage_per_team_in_the_log_and_in_metrics(
    served_store: Store, team_tokens: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "predlog"
    log = PredictionLog(root).open()
    app = create_app(served_store, settings=ServeSettings(), prediction_log=log)
    sent = {"web": [1, 3, 2], "batch": [5], "lab": [1, 1]}  # rows per request, per token
    with serve_in_thread(app) as url:
        for name, sizes in sent.items():
            auth = {"Authorization": f"Bearer {team_tokens[name]}"}
            for n in sizes:
                r = httpx.post(
                    f"{url}/models/churn/predict", json={"records": [GOOD] * n}, headers=auth
                )
                assert r.status_code == 200, r.text
        refused = httpx.post(
            f"{url}/models/churn/predict",
            json={"records": [{"age": "x"}]},
            headers={"Authorization": f"Bearer {team_tokens['web']}"},
        )
        assert refused.status_code == 422
        # the disk figures are measured off the scrape's path: the first one may come without
        deadline = time.monotonic() + 10
        while ("shipyard_database_bytes", ()) not in (
            metrics := _samples(httpx.get(f"{url}/metrics").text)
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    log.close()

    rows = query(
        root,
        "SELECT caller, team, status, compute_ms, request_rows, latency_ms FROM predictions",
        model="churn",
    )
    ok = rows[rows["status"] == "ok"]
    assert sorted(ok["caller"].value_counts().items()) == [("batch", 5), ("lab", 2), ("web", 6)]
    assert set(ok.loc[ok["caller"] == "web", "team"]) == {"risk"}
    assert ok.loc[ok["caller"] == "lab", "team"].isna().all()
    assert (ok["compute_ms"] > 0).all() and (ok["compute_ms"] <= ok["latency_ms"]).all()
    assert sorted(ok.loc[ok["caller"] == "web", "request_rows"]) == [1, 2, 2, 3, 3, 3]
    rejected = rows[rows["status"] == "rejected"]
    assert rejected[["caller", "team"]].values.tolist() == [["web", "risk"]]

    by_team = usage(root, by="team").set_index("team")
    assert by_team.loc["risk", ["requests", "rows", "refused"]].tolist() == [3, 6, 1]
    assert by_team.loc["growth", ["requests", "rows", "refused"]].tolist() == [1, 5, 0]
    assert by_team.loc[None, ["requests", "rows"]].tolist() == [2, 2]
    assert (by_team["compute_seconds"] > 0).all()
    by_token = usage(root, by="token")
    assert dict(zip(by_token["token"], by_token["requests"], strict=True)) == {
        "web": 3,
        "batch": 1,
        "lab": 2,
    }
    by_model = usage(root, by="model")
    assert by_model[["model", "version", "requests", "rows"]].values.tolist() == [
        ["churn", 1, 6, 13]
    ]

    def usage_metric(name: str, team: str) -> float:
        return metrics[(name, (("model", "churn"), ("team", team), ("version", "1")))]

    for team, requests, n in (("risk", 3, 6), ("growth", 1, 5), ("", 2, 2)):
        assert usage_metric("shipyard_usage_requests_total", team) == requests
        assert usage_metric("shipyard_usage_rows_total", team) == n
        assert usage_metric("shipyard_usage_compute_seconds_total", team) > 0
    # the same compute time in both, to the log's millisecond rounding
    logged = by_team["compute_seconds"].sum()
    counted = sum(v for (k, _), v in metrics.items() if k == "shipyard_usage_compute_seconds_total")
    assert logged == pytest.approx(counted, rel=1e-6)
    # process and disk health on the app's own registry
    assert metrics[("process_resident_memory_bytes", ())] > 10_000_000
    assert metrics[("process_cpu_seconds_total", ())] > 0
    assert metrics[("shipyard_database_bytes", ())] > 0
    assert metrics[("shipyard_artifacts_files", ())] >= 1
    assert ("shipyard_prediction_log_wal_bytes", ()) in metrics


def test_usage_since_until_and_bad_arguments(
    served_store: Store, team_tokens: dict[str, str], tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    root = tmp_path / "predlog"
    with PredictionLog(root) as log:
        log.append(
            [
                {
                    "prediction_id": "a",
                    "ts": datetime(2026, 1, 1, tzinfo=UTC),
                    "model": "churn",
                    "version": 1,
                    "prediction": 1,
                    "caller": "web",
                    "team": "risk",
                    "compute_ms": 4.0,
                    "request_rows": 2,
                },
                {
                    "prediction_id": "b",
                    "ts": datetime(2026, 1, 1, tzinfo=UTC),
                    "model": "churn",
                    "version": 1,
                    "prediction": 1,
                    "caller": "web",
                    "team": "risk",
                    "compute_ms": 4.0,
                    "request_rows": 2,
                },
                {
                    "prediction_id": "c",
                    "ts": datetime(2026, 3, 1, tzinfo=UTC),
                    "model": "churn",
                    "version": 1,
                    "prediction": 0,
                    "caller": "web",
                    "team": "risk",
                    "compute_ms": 1.0,
                    "request_rows": 1,
                },
                # a shadow's answer is not a request anyone sent
                {
                    "prediction_id": "a",
                    "ts": datetime(2026, 1, 1, tzinfo=UTC),
                    "model": "churn",
                    "version": 2,
                    "arm": "shadow",
                    "prediction": 1,
                    "caller": "web",
                    "team": "risk",
                },
            ]
        )
    january = usage(
        root, since=datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 2, 1, tzinfo=UTC)
    )
    assert january[["team", "requests", "rows"]].values.tolist() == [["risk", 1, 2]]
    assert january["compute_seconds"].tolist() == [pytest.approx(0.004)]
    assert usage(root)[["requests", "rows"]].values.tolist() == [[2, 3]]
    assert usage(tmp_path / "empty").empty
    with pytest.raises(InvalidInput, match="grouped by one of: team, token, model"):
        usage(root, by="user")
    later = datetime(2026, 2, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="must be before"):
        usage(root, since=later, until=later - timedelta(days=1))
