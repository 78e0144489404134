"""Checks: the pipelines that run monitoring against the registry, the prediction log and the
alert rules, above the statistics of ``shipyard.monitoring``.

- ``monitor_window(store, MonitorRequest(...))`` is one monitoring run of one model version
  over one window (a file, or the log's ``[start, end)``): the archive's reference profile and
  schema (the model is not unpickled), drift and data quality, performance and service over a
  log window, the results stored, the HTML report written, the ``[[alerts]]`` rules' alerts
  raised. ``shipyard monitor run`` and the scheduler's ``monitor`` jobs both call it.
- ``validate_version(store, ValidationRequest(...))`` runs every validation gate
  (``shipyard.evaluation``) for a candidate against the champion on the same fresh rows and
  stores one gate record bound to the candidate's archive digest; ``shipyard validate`` and
  retraining call it, and promotions need its passing record.
- ``check_canary`` judges a canary (or split) candidate against production from the log,
  gate by gate (``CanaryRules``), into a ``CanaryVerdict``; ``shipyard traffic check`` acts on
  it.
- ``retrain(store, RetrainRequest(...))`` trains a candidate with ``[models.NAME.retrain]``'s
  entry point as a tracked run, registers it, validates it against production and notifies
  the approvers; ``retrain_on_alerts`` starts the retrainings a monitoring run's alerts ask
  for (``action = "retrain"``, ``on_drift``); ``RetrainRuns`` lists them.
- ``build_card(store, name, version, project=...)`` is a version's ``ModelCard`` (Mitchell et
  al.'s sections from the registry, the archive's lineage, the latest gate record, waivers,
  the risk register and the written sections); ``card_markdown`` and ``card_html`` render it.
- ``advance_rollouts`` judges each running rollout (``promote --canary N --auto``) whose bake
  ended and steps it, promotes it, or rolls it back with an alert (``RolloutStep`` per
  rollout); the scheduler runs it on every tick, ``shipyard traffic advance`` once.
- ``system_health(store, log_root=..., servers=[...])`` measures the database, the
  artifacts, the log's WAL backlog and Parquet, and each server's process (from its
  ``/metrics``) for ``shipyard status``; ``system_alerts`` judges them with the
  ``[[alerts]]`` rules, named as in ``/metrics``.
- ``send_digest(store, project, DigestRequest(...), now=...)`` e-mails each
  subscriber one short HTML digest of a set of models (metric against the acceptance
  criterion, drift and quality in words, alerts since the last digest, an inline PNG plot, a
  link to the model's page); the scheduler's ``digest`` jobs run it.

Layering: checks may import ``evaluation``, ``monitoring``, ``alerting``, ``registry``, the
prediction log, ``packaging``, ``dataset``, ``store``, ``errors`` and ``settings``. Nothing
imports checks except the scheduler, the CLI and the facade (and the demo).

>>> from pathlib import Path
>>> from shipyard.config import load_project
>>> request = MonitorRequest("churn:3", actor="cron", project=load_project(Path("shipyard.toml")),
...                          log_root=Path("predictions"), current=Path("batch.parquet"))
>>> result = monitor_window(store, request)  # doctest: +SKIP
>>> result.breached  # doctest: +SKIP
False
"""

from shipyard.checks._canary import (
    CanaryArm,
    CanaryGate,
    CanaryRules,
    CanaryVerdict,
    check_canary,
)
from shipyard.checks._card import build_card
from shipyard.checks._card_model import ModelCard
from shipyard.checks._card_render import card_html, card_markdown
from shipyard.checks._digest import (
    Digest,
    DigestOutcome,
    DigestRequest,
    ModelDigest,
    send_digest,
)
from shipyard.checks._monitor import MonitorRequest, MonitorResult, monitor_window
from shipyard.checks._retrain import (
    RetrainRequest,
    RetrainResult,
    load_entry,
    retrain,
    retrain_policy,
    split_rows,
)
from shipyard.checks._retrain_runs import RetrainRecord, RetrainRuns
from shipyard.checks._retrain_triggers import (
    AlertRetrain,
    alerts_asking_retrain,
    drift_metrics,
    retrain_on_alerts,
)
from shipyard.checks._rollout import MAX_WAITS, RolloutStep, advance_rollouts
from shipyard.checks._snapshot import SnapshotOutcome, snapshot_from_log
from shipyard.checks._sources import SourceRows, read_source
from shipyard.checks._system import (
    SYSTEM_MODEL,
    ServerHealth,
    SystemHealth,
    scrape_server,
    system_alerts,
    system_health,
)
from shipyard.checks._validate import ValidationRequest, ValidationResult, validate_version
from shipyard.checks._validation_html import render_validation

__all__ = [
    "MAX_WAITS",
    "SYSTEM_MODEL",
    "AlertRetrain",
    "CanaryArm",
    "CanaryGate",
    "CanaryRules",
    "CanaryVerdict",
    "Digest",
    "DigestOutcome",
    "DigestRequest",
    "ModelCard",
    "ModelDigest",
    "MonitorRequest",
    "MonitorResult",
    "RetrainRecord",
    "RetrainRequest",
    "RetrainResult",
    "RetrainRuns",
    "RolloutStep",
    "ServerHealth",
    "SnapshotOutcome",
    "SourceRows",
    "SystemHealth",
    "ValidationRequest",
    "ValidationResult",
    "advance_rollouts",
    "alerts_asking_retrain",
    "build_card",
    "card_html",
    "card_markdown",
    "check_canary",
    "drift_metrics",
    "load_entry",
    "monitor_window",
    "read_source",
    "render_validation",
    "retrain",
    "retrain_on_alerts",
    "retrain_policy",
    "scrape_server",
    "send_digest",
    "snapshot_from_log",
    "split_rows",
    "system_alerts",
    "system_health",
    "validate_version",
]
