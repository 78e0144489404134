"""``run_gates``: check the inputs, score both models once, run every gate in order."""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from typing import Any

from shipyard.config import MetricGate
from shipyard.errors import InvalidInput
from shipyard.evaluation._archive_gates import data_checks_gate, onnx_gate
from shipyard.evaluation._cost import serving_cost_gate
from shipyard.evaluation._explain import explain_gate
from shipyard.evaluation._fairness import fairness_gate
from shipyard.evaluation._gate import EvalInputs, Gate, GateReport
from shipyard.evaluation._metric_gates import accept_gate, default_gates, metric_gate
from shipyard.evaluation._metrics import (
    MetricTable,
    applicable,
    check_applies,
    metric_statistic,
    paired_metrics,
)
from shipyard.evaluation._schema_gate import schema_gate
from shipyard.evaluation._scored import Scored, score
from shipyard.evaluation._slices import slices_gate


def run_gates(
    inputs: EvalInputs,
    *,
    progress: Callable[[str], None] | None = None,
    skip: frozenset[str] = frozenset(),
) -> GateReport:
    """Run every gate of ``inputs.policy`` on the same rows for candidate and champion.

    Bad input (a sensitive feature or a candidate column missing from the rows, a metric that
    does not apply to the model, labels of the wrong length) raises ``InvalidInput`` before
    any work. ``progress(name)`` is called as each gate starts; ``skip`` leaves gates out by
    name (``"serving_cost"``) or family (``"fairness"`` skips every ``fairness:<feature>``).

    >>> report = run_gates(inputs, skip=frozenset({"serving_cost"}))  # doctest: +SKIP
    >>> report.passed, [g.name for g in report.gates]  # doctest: +SKIP
    (True, ['metric:roc_auc', 'slices', 'explain', 'schema', 'data_checks', 'onnx_parity'])
    """
    metric_gates = _check(inputs)
    policy = inputs.policy
    settings = policy.gates
    seconds: dict[str, float] = {}

    def skipped(name: str) -> bool:
        return name in skip or name.split(":", 1)[0] in skip

    if not skipped("explain"):
        # shap takes a second or more to import: do it while the models predict (their
        # C code releases the GIL), not after.
        threading.Thread(target=_import_quietly, args=("shap",), daemon=True).start()
    started = time.perf_counter()
    scored = score(inputs)
    seconds["predictions"] = time.perf_counter() - started
    if metric_gates is None:
        metric_gates = default_gates(scored.primary)

    table: MetricTable | None = None
    gates: list[Gate] = []

    def run(name: str, build: Callable[[], Gate]) -> None:
        if skipped(name):
            return
        if progress is not None:
            progress(name)
        began = time.perf_counter()
        gates.append(build())
        seconds[name] = time.perf_counter() - began

    def metrics() -> MetricTable:
        nonlocal table
        if table is None:
            table = _metric_table(scored, settings.confidence, settings.resamples)
        return table

    if policy.accept is not None:
        criterion = policy.accept
        run("accept", lambda: accept_gate(criterion, metrics()))
    for gate in metric_gates:
        run(
            f"metric:{gate.metric}",
            lambda gate=gate: metric_gate(  # type: ignore[misc]
                gate, metrics(), settings, champion_error=scored.champion_error
            ),
        )
    run("slices", lambda: slices_gate(scored, inputs.candidate.schema, settings))
    for feature in policy.sensitive:
        run(
            f"fairness:{feature}",
            lambda f=feature: fairness_gate(  # type: ignore[misc]
                f, inputs.rows.loc[:, f], scored, settings
            ),
        )
    run("explain", lambda: _explain(inputs, scored))
    run("serving_cost", lambda: serving_cost_gate(inputs, settings))
    run(
        "schema",
        lambda: schema_gate(
            inputs.candidate.schema,
            inputs.champion.schema if inputs.champion is not None else None,
        ),
    )
    run("data_checks", lambda: data_checks_gate(inputs.candidate_archive, settings))
    run(
        "onnx_parity",
        lambda: onnx_gate(inputs.candidate_archive, scored.frame, scored.candidate, settings),
    )
    summary: dict[str, Any] = table.to_json() if table is not None else {}
    return GateReport(gates, seconds, summary)


def _import_quietly(module: str) -> None:
    # No warnings.catch_warnings here: it swaps process-wide state, unsafe off the main thread.
    try:
        importlib.import_module(module)
    except Exception:  # a missing or broken shap: explain falls back and says why
        return


def _check(inputs: EvalInputs) -> list[MetricGate] | None:
    """Refuse bad input in one sentence, before any work; the policy's metric gates."""
    rows = inputs.rows
    have = [str(c) for c in rows.columns]
    missing = [c for c in inputs.candidate.schema.names() if c not in rows.columns]
    if missing:
        raise InvalidInput(
            f"The rows lack the candidate's input column(s) {missing}; they have {have}."
        )
    for feature in inputs.policy.sensitive:
        if feature not in rows.columns:
            raise InvalidInput(
                f"The sensitive feature {feature!r} of {inputs.policy.name} is not a column of "
                f"the rows; they have {have}."
            )
    if len(rows) == 0:
        raise InvalidInput("The rows are empty: the gates need labelled rows to judge.")
    manifest = inputs.candidate.manifest
    model = inputs.candidate.model
    has_proba = manifest.task == "regression" or hasattr(model, "predict_proba")
    gates = inputs.policy.gates.metrics
    for gate in gates or []:
        check_applies(gate.metric, manifest.task, has_proba, where="the metric gate")
    if inputs.policy.accept is not None:
        check_applies(
            inputs.policy.accept.metric,
            manifest.task,
            has_proba,
            where=f"the acceptance criterion {inputs.policy.accept}",
        )
    return gates


def _metric_table(scored: Scored, confidence: float, resamples: int) -> MetricTable:
    has_proba = scored.task == "regression" or scored.candidate.proba is not None
    names = applicable(scored.task, has_proba)
    cand = metric_statistic(
        names, scored.target, scored.candidate.labels, scored.candidate.proba, scored.classes
    )
    champ = (
        metric_statistic(
            names, scored.target, scored.champion.labels, scored.champion.proba, scored.classes
        )
        if scored.champion is not None
        else None
    )
    return paired_metrics(names, cand, champ, scored.n, confidence=confidence, resamples=resamples)


def _explain(inputs: EvalInputs, scored: Scored) -> Gate:
    champion = inputs.champion if scored.champion is not None else None
    return explain_gate(
        inputs.candidate,
        champion,
        scored.frame,
        scored.champion_frame,
        scored.target,
        inputs.policy.gates,
    )
