"""The one place channels are registered, by the name used in ``shipyard.toml``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shipyard.alerting._channel import Channel
from shipyard.alerting._email import EmailChannel
from shipyard.alerting._webhook import WebhookChannel
from shipyard.errors import InvalidInput

CHANNELS: dict[str, type[Channel]] = {
    "email": EmailChannel,  # e-mail over SMTP, STARTTLS and AUTH optional
    "webhook": WebhookChannel,  # JSON POST with a Slack-compatible "text" field
}


def channel_from_config(kind: str, config: Mapping[str, Any]) -> Channel:
    """Build and validate the channel registered as ``kind`` from its configuration table.

    >>> channel_from_config("webhook", {"url": "http://127.0.0.1:9/hook"}).name
    'webhook'
    """
    try:
        cls = CHANNELS[kind]
    except KeyError:
        raise InvalidInput(
            f"Unknown channel type {kind!r}. Use one of: {', '.join(sorted(CHANNELS))}."
        ) from None
    return cls.from_config(config)


def check_channel_names(names: Iterable[str], channels: Mapping[str, object], where: str) -> None:
    """Raise ``InvalidInput`` naming ``where`` if a name is not a declared ``[channels.*]``.

    Shared by ``[[alerts]]``, ``[[notify]]`` and the scheduler's ``channels`` fields.

    >>> check_channel_names(["team"], {"oncall": object()}, "Alert rule 'psi'")
    Traceback (most recent call last):
    ...
    shipyard.errors.InvalidInput: Alert rule 'psi' names unknown channel(s) ['team']; ...
    """
    unknown = [name for name in names if name not in channels]
    if unknown:
        declared = ", ".join(sorted(channels)) or "none yet"
        raise InvalidInput(
            f"{where} names unknown channel(s) {unknown}; declare them as [channels.<name>] "
            f"tables (declared: {declared})."
        )
