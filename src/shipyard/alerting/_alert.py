"""The alert a rule raises, and its renderings for people (text, HTML, e-mail subject)."""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from shipyard.config import Severity  # how urgent: channels show it in the subject and text


def _new_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC)


class Alert(BaseModel):
    """One alert raised by a rule on one model version, ready to be sent through channels.

    >>> alert = Alert(rule="churn-psi", severity="critical", model="churn", version=3,
    ...               metric="psi", feature="age", value=0.31, threshold=0.2,
    ...               message="PSI of age is above 0.2")
    >>> alert.summary
    '[Shipyard critical] churn v3: psi drift on age'
    >>> alert.key
    'churn/3/psi/age'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=_new_id)
    rule: str = Field(min_length=1)
    severity: Severity
    model: str = Field(min_length=1)
    version: int
    metric: str = Field(min_length=1)
    feature: str | None = None
    """The feature the metric is about, or ``None`` for a model-level metric (accuracy...)."""
    value: float
    threshold: float
    message: str = ""
    created_at: AwareDatetime = Field(default_factory=_now)
    link: str | None = None
    """Where to look next, e.g. the HTML drift report or the UI page of the version."""
    title: str | None = None
    """The headline of an alert that is not about a metric (a failed job, a registry event)."""
    facts: dict[str, str] = Field(default_factory=dict)
    """Extra ``name: value`` details (event, actor, error...), shown after the standard ones."""

    @model_serializer(mode="wrap")
    def _omit_unset_extras(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Metric alerts serialise exactly as before ``title`` and ``facts`` existed."""
        data: dict[str, Any] = handler(self)
        if data.get("title") is None:
            data.pop("title", None)
        if not data.get("facts"):
            data.pop("facts", None)
        return data

    @property
    def key(self) -> str:
        """What the alert is about, for cool-downs: ``model/version/metric/feature``."""
        return f"{self.model}/{self.version}/{self.metric}/{self.feature or '*'}"

    @property
    def headline(self) -> str:
        """``churn v3: psi drift on age`` (or ``churn v3: accuracy`` for a model metric)."""
        if self.title:
            return self.title
        what = f"{self.metric} drift on {self.feature}" if self.feature else self.metric
        return f"{self.model} v{self.version}: {what}"

    @property
    def summary(self) -> str:
        """The one-line summary, used as the e-mail subject."""
        return f"[Shipyard {self.severity}] {self.headline}"

    def _details(self) -> list[tuple[str, str]]:
        if self.title:  # not a metric: value and threshold mean nothing here
            return [
                ("Rule", self.rule),
                ("Severity", self.severity),
                *self.facts.items(),
                ("Raised at", self.created_at.isoformat(timespec="seconds")),
                ("Alert id", self.id),
                *([("Link", self.link)] if self.link else []),
            ]
        rows = [
            ("Rule", self.rule),
            ("Severity", self.severity),
            ("Model", f"{self.model} v{self.version}"),
            ("Metric", self.metric if not self.feature else f"{self.metric} on {self.feature}"),
            ("Value", f"{self.value:.4g}"),
            ("Threshold", f"{self.threshold:.4g}"),
            ("Raised at", self.created_at.isoformat(timespec="seconds")),
            ("Alert id", self.id),
        ]
        rows.extend(self.facts.items())
        if self.link:
            rows.append(("Link", self.link))
        return rows

    @property
    def text(self) -> str:
        """Plain text for people: the summary line, the message, then one detail per line."""
        lines = [self.summary]
        if self.message:
            lines.append(self.message)
        lines.append("")
        lines.extend(f"{name}: {value}" for name, value in self._details())
        return "\n".join(lines)

    @property
    def html(self) -> str:
        """The same content as ``text`` as a small HTML document, every value escaped."""
        rows = "".join(
            f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
            for name, value in self._details()
        )
        message = f"<p>{html.escape(self.message)}</p>" if self.message else ""
        return (
            f"<html><body><h2>{html.escape(self.summary)}</h2>{message}"
            f"<table>{rows}</table></body></html>"
        )
