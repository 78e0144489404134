"""The served half of ``shipyard demo``: one real uvicorn with its prediction log, traffic
(valid, invalid, drifted), a live switch, ground-truth labels, monitoring (drift, performance,
service) into the HTML report, an e-mail alert through a local SMTP server the demo starts,
then a canary of the retrained version, its verdict, and a rollback under load.

``LiveDemo`` is a context manager; each step method returns the line the demo prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
import pandas as pd

from shipyard.client import Client
from shipyard.store import Store

#: How the demo's drifted traffic (and the retrained version's extra training rows) differ.
DRIFT = "mean_radius x1.3 and mean_texture +4"


def shift_like_drift(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` moved the way the demo's drifted traffic is (``DRIFT``)."""
    return frame.assign(
        mean_radius=frame["mean_radius"] * 1.3, mean_texture=frame["mean_texture"] + 4.0
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): float(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


class LiveDemo:
    """``model`` served by a real uvicorn on a thread over ``store``, with the prediction log
    under ``home/predictions``; ``X``/``y`` are the rows the traffic is drawn from and their
    ground truth.

    >>> with LiveDemo(home, store, "diagnosis", X_test, y_test) as live:  # doctest: +SKIP
    ...     print(live.traffic())
    """

    def __init__(self, home: Path, store: Store, model: str, X: pd.DataFrame, y: pd.Series) -> None:
        self.home = home
        self.store = store
        self.model = model
        self.X = X
        self.y = y

    # -- the server ----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        from shipyard.predlog import PredictionLog
        from shipyard.serving import create_app, serve_in_thread
        from shipyard.settings import ServeSettings

        self.log_root = self.home / "predictions"
        self.report_path = self.home / "drift-report.html"
        self._rng = np.random.default_rng(7)
        self._truth: list[tuple[str, Any]] = []  # (prediction id, label) of v1's answers
        self._stack = ExitStack()
        try:
            self.log = PredictionLog(self.log_root).open()
            self._stack.callback(self.log.close)
            app = create_app(
                self.store,
                settings=ServeSettings(auth=False, poll_interval_seconds=0.2),
                prediction_log=self.log,
            )
            self.url = self._stack.enter_context(serve_in_thread(app))
            self.http = self._stack.enter_context(httpx.Client(base_url=self.url, timeout=30))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _predict(self, rows: pd.DataFrame, client: httpx.Client | None = None) -> httpx.Response:
        return (client or self.http).post(
            f"/models/{self.model}/predict", json={"records": _records(rows)}
        )

    def _sample(self, n: int) -> pd.DataFrame:
        return self.X.sample(n, random_state=int(self._rng.integers(1 << 30)))

    def _remember(
        self, response: httpx.Response, rows: pd.DataFrame, into: list[tuple[str, Any]]
    ) -> None:
        """Keep the (prediction id, ground truth) of answered rows for a feedback step."""
        ids = response.json()["prediction_ids"]
        into += zip(ids, self.y.loc[rows.index].tolist(), strict=True)

    def _post_labels(self, truth: list[tuple[str, Any]]) -> int:
        """Send the labels through ``POST /models/{name}/feedback``; returns how many matched
        a logged prediction."""
        labels = [{"prediction_id": pid, "label": label} for pid, label in truth]
        r = self.http.post(f"/models/{self.model}/feedback", json={"labels": labels})
        r.raise_for_status()
        return int(r.json()["matched"])

    def _wait_for(self, version: int, arm: str = "production", timeout: float = 10.0) -> float:
        """Seconds until the server answers with ``version`` on ``arm``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            r = self._predict(self.X.head(1))
            if r.headers["x-shipyard-version"] == str(version) and (
                r.headers["x-shipyard-arm"] == arm
            ):
                return time.monotonic() - started
            time.sleep(0.02)
        raise TimeoutError(f"The server did not answer with v{version} ({arm}) in {timeout} s.")

    # -- traffic -------------------------------------------------------------------------------
    def traffic(self) -> str:
        versions: dict[str, int] = {}
        for _ in range(40):
            rows = self._sample(5)
            r = self._predict(rows)
            r.raise_for_status()
            self._remember(r, rows, self._truth)
            v = r.headers["x-shipyard-version"]
            versions[v] = versions.get(v, 0) + len(rows)
        return f"200 rows scored at {self.url}, by version {versions}"

    def invalid(self) -> str:
        good = _records(self.X.head(1))[0]
        bad_requests = [
            {"records": [{k: v for k, v in good.items() if k != "mean_radius"}]},
            {"records": [{**good, "mean_radius": "large"}]},
            {"records": [{**good, "surprise": 1.0}]},
        ]
        codes = []
        for body in bad_requests:
            r = self.http.post(f"/models/{self.model}/predict", json=body)
            fields = "; ".join(f"{e['field']}: {e['reason']}" for e in r.json().get("errors", []))
            codes.append(f"{r.status_code} ({fields})")
        return "refused with reasons: " + " | ".join(codes)

    def live_switch(self, alice: Client, bob: Client) -> str:
        alice.promote(self.model, 2, reason="demo: try v2 live")
        switched = self._wait_for(2)
        bob.rollback(self.model, reason="demo: back to v1")
        self._wait_for(1)
        return (
            f"promoted v2: the server answered with v2 after {switched:.2f} s, no "
            "restart; rolled back to v1 the same way"
        )

    def drifted(self) -> str:
        rows = shift_like_drift(self.X.sample(300, replace=True, random_state=1))
        for start in range(0, len(rows), 50):
            chunk = rows.iloc[start : start + 50]
            r = self._predict(chunk)
            r.raise_for_status()
            self._remember(r, chunk, self._truth)
        return f"300 rows with {DRIFT}"

    def feedback(self, share: float = 0.8) -> str:
        """Post the ground truth of ``share`` of v1's answers through the feedback API."""
        n = round(share * len(self._truth))
        picked = self._rng.choice(len(self._truth), n, replace=False)
        matched = self._post_labels([self._truth[i] for i in picked])
        return (
            f"{matched} of {len(self._truth)} predictions labelled through "
            f"POST /models/{self.model}/feedback"
        )

    def query(self) -> str:
        frame = self.log.query(
            "SELECT version, status, count(*) AS n FROM predictions GROUP BY ALL ORDER BY ALL",
            model=self.model,
        )
        return "; ".join(
            f"v{'-' if pd.isna(r['version']) else int(r['version'])} {r['status']}: {r['n']}"
            for r in frame.to_dict(orient="records")
        )

    # -- monitoring ----------------------------------------------------------------------------
    def performance(self, client: Client, version: int = 1) -> str:
        """Performance of ``version`` on its labelled predictions of the last hour, as
        ``shipyard monitor run`` measures it; also the service metrics of the window."""
        from shipyard.monitoring import (
            compute_performance,
            compute_service,
            labelled_window,
            service_window,
        )

        self.loaded = client.load(self.model, version)
        now = datetime.now(UTC)
        self.window = (now - timedelta(hours=1), now + timedelta(minutes=1))
        predictions, labels = labelled_window(self.log_root, self.model, version, *self.window)
        self.perf = compute_performance(
            predictions,
            labels,
            task=self.loaded.manifest.task,
            classes=self.loaded.classes,
            baseline=self.loaded.manifest.metrics,
            now=now,
        )
        self.service = compute_service(service_window(self.log_root, self.model, *self.window))
        parts = []
        for name, label in (("accuracy", "accuracy"), ("roc_auc", "ROC AUC")):
            m = self.perf.metric(name)
            if m.value is None:
                parts.append(f"{label} - ({m.reason})")
                continue
            facts = (
                [f"{100 * self.perf.confidence:g}% CI {m.ci_low:.3f}..{m.ci_high:.3f}"]
                if m.ci_low is not None and m.ci_high is not None
                else ["no interval"]
            )
            if m.baseline is not None:
                facts.append(f"archive {m.baseline:.3f}")
            parts.append(f"{label} {m.value:.3f} ({', '.join(facts)})")
        cov = self.perf.coverage
        share = "-" if cov.coverage is None else f"{100 * cov.coverage:.0f}%"
        return (
            f"v{version} on {self.perf.n_used} labels: {'; '.join(parts)}; label coverage "
            f"{share} ({cov.labelled_eligible} of {cov.eligible})"
        )

    def monitor(self) -> str:
        """Drift of the window against the training profile; the results and the HTML report
        (drift, performance and service) are stored. Call ``performance`` first."""
        from shipyard.dataset import Profile
        from shipyard.monitoring import (
            DriftAccumulator,
            MonitoringResults,
            build_report,
            logged_window,
            performance_section,
            render_html,
        )

        version = self.loaded.version
        frame = logged_window(self.log_root, self.model, version, *self.window, outputs=False)
        reference = Profile.model_validate(self.loaded.reference_profile["inputs"])
        accumulator = DriftAccumulator(reference, schema=self.loaded.schema)
        accumulator.update(frame)
        self.report = build_report(accumulator)
        MonitoringResults(self.store).save(
            self.report,
            model=self.model,
            version=version,
            actor="scheduler",
            source="log:last hour",
            window_start=self.window[0],
            window_end=self.window[1],
            extra=[*self.perf.rows(), *self.service.rows(version)],
        )
        self.report_path.write_text(
            render_html(
                self.report,
                reference,
                states=accumulator.states,
                title=f"{self.model} v{version}: logged traffic",
                window="last hour",
                extra_sections=[performance_section(self.perf, self.service)],
            ),
            encoding="utf-8",
        )
        flagged = self.report.flagged()
        return (
            f"{self.report.n_rows} logged rows, {len(flagged)} feature(s) flagged: "
            f"{', '.join(flagged[:6])}"
        )

    def alert(self) -> str:
        from aiosmtpd.controller import Controller

        from shipyard.alerting import Alert, EmailChannel
        from shipyard.serving import free_port

        received: list[bytes] = []

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                received.append(envelope.content)
                return "250 OK"

        report = self.report
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
                    model=self.model,
                    version=self.loaded.version,
                    metric="psi",
                    feature=top.name,
                    value=float(psi or 0.0),
                    threshold=0.25,
                    message=f"{len(report.flagged())} feature(s) drifted in the last hour.",
                    link=str(self.report_path),
                )
            )
        finally:
            controller.stop()
        if not delivery.ok or not received:
            return f"not delivered: {delivery.error}"
        subject = message_from_bytes(received[0])["Subject"]
        return f"delivered to owner@localhost: '{subject}'"

    # -- canary --------------------------------------------------------------------------------
    def canary(self, client: Client, version: int, percent: float) -> str:
        """Start a ``percent`` % canary of ``version`` and wait until the server routes to it."""
        policy = client.traffic.canary(
            self.model, version, percent, actor=client.user, reason="demo: retrained version"
        )
        picked_up = self._wait_for(version, arm="canary")
        return f"{policy.describe()}; the server routed to it after {picked_up:.2f} s"

    def canary_traffic(self, per_arm: int = 100, limit: int = 2000) -> str:
        """Send requests until each arm answered ``per_arm`` (the canary check's minimum),
        counting who answered from the response headers; then post every answer's label."""
        answered: dict[tuple[str, str], int] = {}
        truth: list[tuple[str, Any]] = []
        sent = 0
        while sent < limit and (len(answered) < 2 or min(answered.values()) < per_arm):
            rows = self._sample(int(self._rng.integers(1, 6)))
            r = self._predict(rows)
            r.raise_for_status()
            self._remember(r, rows, truth)
            key = (r.headers["x-shipyard-version"], r.headers["x-shipyard-arm"])
            answered[key] = answered.get(key, 0) + 1
            sent += 1
        self.answered = answered
        counts = ", ".join(f"v{v} ({arm}) answered {n}" for (v, arm), n in sorted(answered.items()))
        matched = self._post_labels(truth)
        return f"{sent} requests: {counts}; labels of their {matched} predictions posted"

    def judge(self) -> str:
        """``check_canary`` over the canary's window of the log: requests, errors, latency
        and output drift of the canary arm against production."""
        from shipyard.checks import check_canary

        verdict = check_canary(self.store, self.model, self.log_root)
        self.decision = verdict.decision
        return f"decision: {verdict.decision}\n" + "\n".join(f"  {r}" for r in verdict.reasons)

    def conclude(self, client: Client, version: int) -> str:
        """Promote the canary and wait for the server to switch."""
        change = client.promote(self.model, version, reason="canary verdict: promote")
        switched = self._wait_for(version)
        return (
            f"{self.model}@production v{change.previous_version} → v{version}, the canary ended; "
            f"the server answered with v{version} on production after {switched:.2f} s"
        )

    def under_load(self, action: Callable[[], object], version: int, threads: int = 2) -> str:
        """Run ``action`` (one call) while ``threads`` clients send requests; count them, the
        failed ones, and the time until only ``version`` answers."""
        stop = threading.Event()
        results: list[tuple[float, int | None, str | None]] = []  # (time, status, version)
        lock = threading.Lock()
        rows = self.X.head(3)

        def send() -> None:
            with httpx.Client(base_url=self.url, timeout=10) as http:
                while not stop.is_set():
                    out: tuple[float, int | None, str | None]
                    try:
                        r = self._predict(rows, http)
                        out = (time.monotonic(), r.status_code, r.headers.get("x-shipyard-version"))
                    except httpx.HTTPError:
                        out = (time.monotonic(), None, None)
                    with lock:
                        results.append(out)

        def settled(since: float, n: int) -> bool:
            """The last ``n`` answers completed after ``since`` all came from ``version``."""
            with lock:
                last = [v for t, _, v in results if t > since][-n:]
            return len(last) == n and all(v == str(version) for v in last)

        workers = [threading.Thread(target=send, daemon=True) for _ in range(threads)]
        for worker in workers:
            worker.start()
        try:
            deadline = time.monotonic() + 10
            while len(results) < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
            started = time.monotonic()
            action()
            # 30 in a row: a 25% canary still routing would show within them (0.75^30 ~ 2e-4)
            while not settled(started, 30) and time.monotonic() < started + 10:
                time.sleep(0.01)
            time.sleep(0.2)  # keep sending a little after the switch
        finally:
            stop.set()
            for worker in workers:
                worker.join(10)
        others = [t for t, _, v in results if t > started and v != str(version)]
        switched = max(others, default=started) - started
        failed = sum(1 for _, status, _ in results if status != 200)
        self.drill = {"requests": len(results), "failed": failed}
        return (
            f"{len(results)} requests from {threads} clients around the call, {failed} failed; "
            f"only v{version} answered from {switched:.2f} s after the call"
        )
