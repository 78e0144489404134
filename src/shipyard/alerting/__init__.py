"""Alerting: alerts and the channels that deliver them (e-mail over SMTP, JSON webhooks).

Every channel follows one contract (``Channel``): a keyword-only ``__init__`` that stores its
arguments, ``validate()`` / ``from_config()`` that raise ``InvalidInput``, and ``send(alert)``
that returns a ``Delivery`` instead of raising, so a failing server never crashes the
scheduler; ``send(alert, deadline=...)`` never runs past a ``time.monotonic()`` deadline.
Built-in channels are registered in ``CHANNELS``; ``should_send`` applies cool-downs.

The rules and channels come from the parsed project file (``shipyard.config``):
``AlertConfig.from_project(project)`` builds the ``[channels.*]`` and ``[[alerts]]``,
``notify_rules(project)`` the ``[[notify]]`` rules, ``attach_notifier(store, project)`` the
listener sending them. Layering: imports ``config``, ``store``, ``audit``, ``errors``.

>>> alert = Alert(rule="churn-psi", severity="critical", model="churn", version=3,
...               metric="psi", feature="age", value=0.31, threshold=0.2)
>>> channel = channel_from_config("webhook", {"url": "http://127.0.0.1:9/", "timeout": 0.5,
...                                           "attempts": 1})
>>> delivery = channel.send(alert)  # nothing listens on port 9
>>> delivery.ok, delivery.attempts
(False, 1)
"""

from shipyard.alerting._alert import Alert, Severity
from shipyard.alerting._channel import Channel, Delivery
from shipyard.alerting._cooldown import should_send
from shipyard.alerting._email import EmailChannel, looks_like_address
from shipyard.alerting._notify import (
    REGISTRY_EVENTS,
    Notifier,
    NotifyRule,
    attach_notifier,
    event_alert,
    notify_rules,
)
from shipyard.alerting._registry import CHANNELS, channel_from_config, channels_from_project
from shipyard.alerting._rules import AlertConfig, AlertRule, evaluate
from shipyard.alerting._store import Alerts
from shipyard.alerting._webhook import WebhookChannel

__all__ = [
    "CHANNELS",
    "REGISTRY_EVENTS",
    "Alert",
    "AlertConfig",
    "AlertRule",
    "Alerts",
    "Channel",
    "Delivery",
    "EmailChannel",
    "Notifier",
    "NotifyRule",
    "Severity",
    "WebhookChannel",
    "attach_notifier",
    "channel_from_config",
    "channels_from_project",
    "evaluate",
    "event_alert",
    "looks_like_address",
    "notify_rules",
    "should_send",
]
