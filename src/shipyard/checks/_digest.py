"""E-mailed digests: each subscriber gets one short HTML e-mail about a set of models.

Per model: the production version, the key metric against the acceptance criterion (the
``accept`` of ``[models.NAME]`` or of the model's row), drift and data quality in plain
words, the alerts raised since the last digest, a small plot (the accepted metric, else the
share of drifted features, over the last 30 days, with the line it must not cross) and a link
to the model's page. The plot is an inline PNG (``multipart/related``, ``cid:``), the HTML has
inline CSS only and no script, and a plain-text part comes first for clients without HTML.

The scheduler's job kind ``digest`` (``shipyard.scheduler``, keys checked by its
``DigestParams`` when the file is read) runs ``send_digest`` with a ``DigestRequest``:

.. code-block:: toml

    [channels.mail]
    type = "email"
    host = "smtp.example.com"
    from = "shipyard@example.com"
    to = ["ops@example.com"]      # the channel's own alert recipients (not the digest's)

    [[jobs]]
    name = "weekly-risk"
    kind = "digest"
    schedule = "0 8 * * 1"
    channel = "mail"              # SMTP settings: an email channel of [channels.*]
    to = ["owner@example.com"]    # and/or users = ["ann"] (their users.email)
    team = "risk"                 # or models = ["churn", "fraud"]
    link = "https://shipyard.example.com"   # default: UiSettings().base_url
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage, MIMEPart
from email.utils import formatdate, make_msgid
from typing import Any

from sqlalchemy import func, select

from shipyard.alerting import EmailChannel, channels_from_project
from shipyard.checks._digest_models import (
    ModelDigest,
    metric_words,
    model_digests,
    version_words,
)
from shipyard.checks._pages import render_page
from shipyard.config import ProjectConfig
from shipyard.errors import InvalidInput, NotFound
from shipyard.settings import UiSettings
from shipyard.store import Store
from shipyard.store.tables import (
    JobRun,
    Model,
    User,
)

#: Days of history each plot shows.


@dataclass(frozen=True)
class DigestRequest:
    """One digest to send: the ``job`` it is for (named in errors), the e-mail ``channel``
    whose SMTP server sends, the subscribers (``to`` addresses, ``users`` by their e-mail),
    the models (``models`` and every model of ``team``), ``link`` (the UI's base URL,
    default ``UiSettings().base_url``) and ``since`` (default: since the job's last
    successful run, else 24 hours)."""

    job: str
    channel: str
    to: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    team: str | None = None
    link: str | None = None
    since: timedelta | None = None


@dataclass
class Digest:
    """One digest: the models, the period it covers and where links point."""

    job: str
    since: datetime
    until: datetime
    models: list[ModelDigest]

    def text(self) -> str:
        """The plain-text part."""
        lines = [f"Shipyard digest, {self.since:%Y-%m-%d %H:%M} to {self.until:%Y-%m-%d %H:%M} UTC"]
        for m in self.models:
            lines += ["", f"{m.name}: {version_words(m.version)} - {m.status}"]
            if m.metric is not None:
                lines.append(f"  {metric_words(m)}")
            lines.append(f"  {m.drift}" + (f"; {m.quality}" if m.quality else ""))
            lines.append(f"  alerts since the last digest: {len(m.alerts)}")
            lines += [f"    {a.at:%Y-%m-%d %H:%M} {a.severity}: {a.message}" for a in m.alerts[:5]]
            lines.append(f"  {m.url}")
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        """The HTML part (inline CSS, images by ``cid:``)."""
        return render_page(
            "digest.html.j2",
            digest=self,
            version_words=version_words,
            metric_words=metric_words,
        )

    def message(self, *, sender: str, to: str, now: datetime) -> EmailMessage:
        """The e-mail to one subscriber: text, then HTML with its PNGs (multipart/related)."""
        message = EmailMessage()
        attention = sum(m.status == "attention" for m in self.models)
        message["Subject"] = f"Shipyard digest: {len(self.models)} model(s)" + (
            f", {attention} need attention" if attention else ", all healthy"
        )
        message["From"] = sender
        message["To"] = to
        message["Date"] = formatdate(now.timestamp(), localtime=False)
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
        message["X-Shipyard-Digest"] = self.job
        message.set_content(self.text())
        message.add_alternative(self.html(), subtype="html")
        html_part = message.get_payload()[1]  # type: ignore[index]
        assert isinstance(html_part, MIMEPart)  # add_alternative made it
        for m in self.models:
            if m.plot is not None:
                html_part.add_related(
                    m.plot,
                    maintype="image",
                    subtype="png",
                    cid=f"<{m.cid}>",
                    filename=f"{m.name}.png",
                )
        return message


def digest_models(store: Store, params: DigestRequest) -> list[str]:
    """The models a digest covers: ``models``, plus every model of ``team``."""
    job = params.job
    names = list(dict.fromkeys(params.models))
    with store.read() as session:
        known = set(session.scalars(select(Model.name).where(Model.name.in_(names))))
        unknown = [n for n in names if n not in known]
        if unknown:
            raise NotFound(f"digest job '{job}': 'models' names unknown model(s) {unknown}.")
        if params.team:
            team = session.scalars(
                select(Model.name).where(Model.team == params.team).order_by(Model.name)
            ).all()
            if not team and not names:
                raise InvalidInput(
                    f"digest job '{job}': 'team' is '{params.team}', and no model belongs to "
                    "that team: set the models' team (shipyard models set --team) or list "
                    "'models'."
                )
            names += [n for n in team if n not in names]
    return names


def digest_recipients(store: Store, params: DigestRequest) -> tuple[list[str], list[str]]:
    """(addresses, users without one): ``to`` plus the ``users.email`` of ``users``."""
    addresses = list(params.to)
    with store.read() as session:
        emails = dict(
            session.execute(select(User.name, User.email).where(User.name.in_(params.users))).all()
        )
    missing = [u for u in params.users if not emails.get(u)]
    addresses += [str(emails[u]) for u in params.users if emails.get(u)]
    return list(dict.fromkeys(addresses)), missing


def last_success(store: Store, job: str) -> datetime | None:
    """When the last successful run of ``job`` started (``None``: never)."""
    with store.read() as session:
        started: datetime | None = session.scalar(
            select(func.max(JobRun.started_at)).where(
                JobRun.job == job, JobRun.status == "succeeded"
            )
        )
    return started


@dataclass
class DigestOutcome:
    """What ``send_digest`` did: who got it, who did not (and why), which models."""

    models: list[str]
    since: datetime
    sent: list[str]
    failed: dict[str, str]
    users_without_email: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "since": self.since.isoformat(),
            "sent": self.sent,
            "failed": self.failed,
            "users_without_email": self.users_without_email,
        }


def send_digest(
    store: Store,
    project: ProjectConfig,
    params: DigestRequest,
    *,
    now: datetime,
) -> DigestOutcome:
    """Build the digest and e-mail it to every subscriber, one message each, through the SMTP
    server of ``params.channel``. Problems of the job's keys raise ``InvalidInput`` or
    ``NotFound`` naming the job and the key; failed deliveries are in the outcome."""
    job = params.job
    channels = {name: table for name, table in project.channels.items() if table.type == "email"}
    if params.channel not in channels:
        declared = ", ".join(sorted(channels)) or "none"
        raise InvalidInput(
            f"digest job '{job}': 'channel' is '{params.channel}', which is not an email "
            f"channel of [channels.*] (email channels: {declared})."
        )
    channel = channels_from_project(project)[params.channel]
    assert isinstance(channel, EmailChannel)  # the table's type says so
    names = digest_models(store, params)
    addresses, missing = digest_recipients(store, params)
    if not addresses:
        raise InvalidInput(
            f"digest job '{job}': no subscriber has an e-mail address (the 'users' {missing} "
            "have none in the users table): list addresses in 'to'."
        )
    if params.since is not None:
        since = now - params.since
    else:
        since = last_success(store, job) or now - timedelta(hours=24)
    link = params.link or UiSettings().base_url
    models = model_digests(store, project, names, job=job, since=since, now=now, link=link)
    digest = Digest(job=job, since=since, until=now, models=models)
    sent, failed = [], {}
    for address in addresses:
        delivery = channel.send_message(
            digest.message(sender=channel.sender, to=address, now=now), to=[address]
        )
        if delivery.ok:
            sent.append(address)
        else:
            failed[address] = delivery.error or "not delivered"
    return DigestOutcome(
        models=names, since=since, sent=sent, failed=failed, users_without_email=missing
    )
