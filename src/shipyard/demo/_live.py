"""The served half of ``shipyard demo``: one real uvicorn with its prediction log, traffic
(valid, invalid, drifted), a live switch, ground-truth labels, a monitoring run (drift,
performance, its label-free estimate, service; the HTML report; the alert rules of the demo's
shipyard.toml, e-mailed through a local SMTP server, ``MailBox``), the retraining the alert
asks for, then an automatic rollout of the candidate, its verdict, and a rollback under load.

``LiveDemo`` is a context manager; each step method returns the line the demo prints. Every
step calls the pipeline its ``shipyard`` command runs (``monitor_window``,
``retrain_on_alerts``, ``Rollouts``, ``advance_rollouts``).
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
from shipyard.config import ProjectConfig
from shipyard.store import Store

#: How the demo's drifted traffic (which the retrained version then learns from) differs.
DRIFT = "mean_radius x1.3 and mean_texture +4"


def shift_like_drift(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` moved the way the demo's drifted traffic is (``DRIFT``)."""
    return frame.assign(
        mean_radius=frame["mean_radius"] * 1.3, mean_texture=frame["mean_texture"] + 4.0
    )


class MailBox:
    """A local SMTP server (aiosmtpd) on a free port of 127.0.0.1, keeping what it receives;
    the demo's ``[channels.owner]`` sends to it.

    >>> with MailBox() as box:  # doctest: +SKIP
    ...     box.port
    """

    def __enter__(self) -> Self:
        from aiosmtpd.controller import Controller

        from shipyard.serving import free_port

        self.messages: list[bytes] = []
        received = self.messages

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                received.append(envelope.content)
                return "250 OK"

        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def subjects(self) -> list[str]:
        """The subject of every message received so far."""
        return [str(message_from_bytes(m)["Subject"]) for m in self.messages]

    def last(self, header: str, count: int, timeout: float = 10.0) -> str:
        """Wait for the ``count``-th message; the line the demo prints about it."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        if len(self.messages) < count:
            return f"not delivered: {len(self.messages)} message(s) arrived, not {count}"
        message = message_from_bytes(self.messages[count - 1])
        return f"delivered to {message['To']}: '{message[header]}'"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [str(c) for c in frame.columns]
    return [dict(zip(columns, row, strict=True)) for row in frame.to_numpy(dtype=float).tolist()]


class LiveDemo:
    """``model`` served by a real uvicorn on a thread over ``store``, with the prediction log
    under ``home/predictions``; ``X``/``y`` are the rows the traffic is drawn from and their
    ground truth.

    >>> with LiveDemo(home, store, "diagnosis", X_test, y_test) as live:  # doctest: +SKIP
    ...     print(live.traffic())
    """

    def __init__(
        self,
        home: Path,
        store: Store,
        model: str,
        X: pd.DataFrame,
        y: pd.Series,
        *,
        project: ProjectConfig,
    ) -> None:
        self.home = home
        self.store = store
        self.model = model
        self.X = X
        self.y = y
        self.project = project

    # -- the server ----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        from shipyard.predlog import PredictionLog
        from shipyard.serving import create_app, serve_in_thread
        from shipyard.settings import ServeSettings

        self.log_root = self.home / "predictions"
        self.report_path = self.home / "drift-report.html"
        self.validation_report: Path | None = None
        self.retrained: dict[str, Any] | None = None
        self.decision = "wait"
        self.drill: dict[str, int] | None = None
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
    def monitor(self) -> str:
        """``shipyard monitor run diagnosis --window 1h``: drift, quality, performance against
        the labels, the label-free estimate and service, stored with the HTML report; the
        project's alert rules raise (and e-mail) what they find."""
        from shipyard.checks import MonitorRequest, monitor_window

        now = datetime.now(UTC)
        self.result = monitor_window(
            self.store,
            MonitorRequest(
                f"{self.model}@production",
                actor="scheduler",
                project=self.project,
                log_root=self.log_root,
                start=now - timedelta(hours=1),
                end=now + timedelta(minutes=1),
                report=self.report_path,
            ),
        )
        flagged = self.result.report.flagged()
        alerts = ", ".join(f"{a.rule} ({a.status})" for a in self.result.alerts) or "none"
        return (
            f"{self.result.report.n_rows} logged rows of v{self.result.version}, "
            f"{len(flagged)} feature(s) flagged: {', '.join(flagged[:6])}; alerts: {alerts}"
        )

    def performance(self) -> str:
        """The monitoring run's performance of production on its labelled predictions."""
        perf = self.result.performance
        if perf is None:
            return "no performance (no labels in the window)"
        parts = []
        for name, label in (("accuracy", "accuracy"), ("roc_auc", "ROC AUC")):
            m = perf.metric(name)
            if m.value is None:
                parts.append(f"{label} - ({m.reason})")
                continue
            facts = (
                [f"{100 * perf.confidence:g}% CI {m.ci_low:.3f}..{m.ci_high:.3f}"]
                if m.ci_low is not None and m.ci_high is not None
                else ["no interval"]
            )
            if m.baseline is not None:
                facts.append(f"archive {m.baseline:.3f}")
            parts.append(f"{label} {m.value:.3f} ({', '.join(facts)})")
        cov = perf.coverage
        share = "-" if cov.coverage is None else f"{100 * cov.coverage:.0f}%"
        return (
            f"v{self.result.version} on {perf.n_used} labels: {'; '.join(parts)}; label "
            f"coverage {share} ({cov.labelled_eligible} of {cov.eligible})"
        )

    def estimate(self) -> str:
        """The label-free estimate of the same window (every prediction, labelled or not)."""
        estimate = self.result.estimate
        if estimate is None:
            return f"no estimate: {self.result.estimate_note}"
        m = estimate.metric("accuracy")
        realised = self.result.performance.metric("accuracy") if self.result.performance else None
        beside = (
            f", realised {realised.value:.3f}"
            if realised is not None and realised.value is not None
            else ""
        )
        return (
            f"estimated accuracy {m.value:.3f} (95% CI {m.ci_low:.3f}..{m.ci_high:.3f}) on "
            f"{estimate.n} predictions{beside}"
        )

    def retrain(self) -> str:
        """What ``retrain_on_alerts`` does with the run's alerts: ``shipyard retrain`` from the
        feedback-joined log, the candidate validated against production, approvers told."""
        from shipyard.checks import retrain_on_alerts

        outcomes = retrain_on_alerts(
            self.store,
            self.result.alerts,
            actor="scheduler",
            project=self.project,
            log_root=self.log_root,
            report_dir=self.home,
        )
        if not outcomes:
            return "no alert asked for a retraining"
        outcome = outcomes[0]
        result = outcome.result
        if result is None:
            return f"{outcome.status}: {outcome.message}"
        self.retrained = {"version": result.version, "passed": result.passed}
        self.validation_report = result.report_path
        failed = [g["name"] for g in result.gates if g.get("applicable", True) and not g["passed"]]
        verdict = "every gate passed" if not failed else f"failed: {', '.join(failed)}"
        return (
            f"v{result.version} trained on {result.train_rows} labelled rows (run "
            f"{result.run_id[:8]}), validated against v{result.champion} on its "
            f"{result.eval_rows} held-out rows: {verdict}; waiting for approval"
        )

    # -- rollout -------------------------------------------------------------------------------
    def rollout(self, version: int) -> str:
        """``shipyard promote diagnosis 3 --canary 25 --auto --steps 25,100``, baked for a
        second here; waits until the server routes to the canary."""
        from shipyard.registry import Rollouts

        started = Rollouts(self.store, self.project).start(
            self.model,
            version,
            [25, 100],
            bake=timedelta(seconds=1),
            actor="alice",
            reason="demo: retrained version",
        )
        self._rollout = started
        picked_up = self._wait_for(version, arm="canary")
        return f"{started.describe()}; the server routed to the canary after {picked_up:.2f} s"

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

    def advance(self) -> str:
        """One pass of the rollouts' driver (what the scheduler runs every tick): the canary
        judged on the requests logged since it started; promoted, or rolled back."""
        from shipyard.checks import advance_rollouts

        bake_ended = self._rollout.next_at + timedelta(seconds=1)
        (outcome,) = advance_rollouts(
            self.store,
            now=max(datetime.now(UTC), bake_ended),
            project=self.project,
            actor="scheduler",
            log_root=self.log_root,
            model=self.model,
        )
        verdict = outcome.verdict
        self.decision = verdict.decision if verdict is not None else outcome.action
        lines = [f"decision: {self.decision}; {outcome.message}"]
        if verdict is not None:
            lines += [f"  {r}" for r in verdict.reasons]
        if outcome.action == "promoted":
            switched = self._wait_for(outcome.rollout.version)
            lines.append(
                f"  the server answered with v{outcome.rollout.version} on production after "
                f"{switched:.2f} s"
            )
        return "\n".join(lines)

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
