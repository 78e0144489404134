"""The second half of ``shipyard demo``: serve, send traffic, switch versions live, monitor
the logged traffic (part of it drifted), write the HTML report and e-mail an alert through a
local SMTP server the demo starts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from shipyard._client import Client
from shipyard.store import Store

Step = Callable[[str, Callable[[], str]], None]


@contextmanager
def _server(store: Store, log_root: Path) -> Iterator[tuple[str, Any]]:
    """A real uvicorn on a thread serving the demo store, with the prediction log on."""
    from shipyard.serving import PredictionLog, ServeSettings, create_app, serve_in_thread

    log = PredictionLog(log_root).open()
    app = create_app(
        store, settings=ServeSettings(auth=False, poll_interval_seconds=0.2), prediction_log=log
    )
    try:
        with serve_in_thread(app) as url:
            yield url, log
    finally:
        log.close()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): float(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def run_live(
    home: Path,
    store: Store,
    alice: Client,
    bob: Client,
    model: str,
    X_test: pd.DataFrame,
    step: Step,
) -> dict[str, Any]:
    """Serve ``model`` and walk through traffic, a live switch, monitoring and an alert."""
    from shipyard.alerting import Alert, EmailChannel
    from shipyard.monitoring import (
        DriftAccumulator,
        MonitoringResults,
        build_report,
        logged_window,
        render_html,
    )

    rng = np.random.default_rng(7)
    log_root = home / "predictions"
    outcome: dict[str, Any] = {}
    with _server(store, log_root) as (url, log), httpx.Client(base_url=url, timeout=30) as http:

        def traffic() -> str:
            versions: dict[str, int] = {}
            for _ in range(40):
                rows = X_test.sample(5, random_state=int(rng.integers(1 << 30)))
                r = http.post(f"/models/{model}/predict", json={"records": _records(rows)})
                r.raise_for_status()
                v = r.headers["x-shipyard-version"]
                versions[v] = versions.get(v, 0) + len(rows)
            return f"200 rows scored at {url}, by version {versions}"

        step("send 200 rows of traffic to the REST server", traffic)

        def invalid() -> str:
            good = _records(X_test.head(1))[0]
            bad_requests = [
                {"records": [{k: v for k, v in good.items() if k != "mean_radius"}]},
                {"records": [{**good, "mean_radius": "large"}]},
                {"records": [{**good, "surprise": 1.0}]},
            ]
            codes = []
            for body in bad_requests:
                r = http.post(f"/models/{model}/predict", json=body)
                fields = "; ".join(
                    f"{e['field']}: {e['reason']}" for e in r.json().get("errors", [])
                )
                codes.append(f"{r.status_code} ({fields})")
            return "refused with reasons: " + " | ".join(codes)

        step("send 3 invalid requests", invalid)

        def live_switch() -> str:
            alice.promote(model, 2, reason="demo: try v2 live")
            started = time.monotonic()
            while True:
                r = http.post(
                    f"/models/{model}/predict", json={"records": _records(X_test.head(1))}
                )
                if r.headers["x-shipyard-version"] == "2":
                    break
                time.sleep(0.05)
            switched = time.monotonic() - started
            bob.rollback(model, reason="demo: back to v1")
            while (
                http.post(
                    f"/models/{model}/predict", json={"records": _records(X_test.head(1))}
                ).headers["x-shipyard-version"]
                != "1"
            ):
                time.sleep(0.05)
            return (
                f"promoted v2: the server answered with v2 after {switched:.2f} s, no "
                "restart; rolled back to v1 the same way"
            )

        step("switch production to v2 and back while serving", live_switch)

        def drifted() -> str:
            rows = X_test.sample(300, replace=True, random_state=1).copy()
            rows["mean_radius"] *= 1.3
            rows["mean_texture"] += 4.0
            for start in range(0, len(rows), 50):
                http.post(
                    f"/models/{model}/predict",
                    json={"records": _records(rows.iloc[start : start + 50])},
                ).raise_for_status()
            return "300 rows with mean_radius x1.3 and mean_texture +4"

        step("send drifted traffic", drifted)

        def query() -> str:
            frame = log.query(
                "SELECT version, status, count(*) AS n FROM predictions GROUP BY ALL ORDER BY ALL",
                model=model,
            )
            return "; ".join(
                f"v{int(r.version) if pd.notna(r.version) else '-'} {r.status}: {r.n}"
                for r in frame.itertuples()
            )

        step("query the prediction log with DuckDB", query)

    loaded = alice.load(model, 1)
    now = datetime.now(UTC)
    frame = logged_window(
        log_root, model, 1, now - timedelta(hours=1), now + timedelta(minutes=1), outputs=False
    )
    from shipyard.dataset import Profile

    reference = Profile.model_validate(loaded.reference_profile["inputs"])
    accumulator = DriftAccumulator(reference, schema=loaded.schema)
    accumulator.update(frame)
    report = build_report(accumulator)
    report_path = home / "drift-report.html"

    def monitor() -> str:
        MonitoringResults(store).save(
            report, model=model, version=1, actor="scheduler", source="log:last hour"
        )
        report_path.write_text(
            render_html(
                report,
                reference,
                states=accumulator.states,
                title=f"{model} v1: logged traffic",
                window="last hour",
            ),
            encoding="utf-8",
        )
        flagged = report.flagged()
        return (
            f"{report.n_rows} logged rows, {len(flagged)} feature(s) flagged: "
            f"{', '.join(flagged[:6])}"
        )

    step("monitor the logged window against the training profile", monitor)

    def alert() -> str:
        from aiosmtpd.controller import Controller

        received: list[bytes] = []

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                received.append(envelope.content)
                return "250 OK"

        from shipyard.serving import free_port

        port = free_port()
        controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        controller.start()
        try:
            top = max(report.features, key=lambda f: f.drifted)
            psi = next((s.value for s in top.scores if s.name == "psi"), None)
            channel = EmailChannel(
                host="127.0.0.1",
                port=port,
                sender="shipyard@localhost",
                to=["owner@localhost"],
                timeout=5.0,
                attempts=1,
            )
            delivery = channel.send(
                Alert(
                    rule="input-drift",
                    severity="critical",
                    model=model,
                    version=1,
                    metric="psi",
                    feature=top.name,
                    value=float(psi or 0.0),
                    threshold=0.25,
                    message=f"{len(report.flagged())} feature(s) drifted in the last hour.",
                    link=str(report_path),
                )
            )
        finally:
            controller.stop()
        if not delivery.ok or not received:
            return f"not delivered: {delivery.error}"
        subject = message_from_bytes(received[0])["Subject"]
        return f"delivered to owner@localhost: '{subject}'"

    step("e-mail an alert through a local SMTP server", alert)
    outcome["report"] = str(report_path)
    outcome["flagged"] = report.flagged()
    return outcome
