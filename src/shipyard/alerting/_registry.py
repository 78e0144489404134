"""The one place channels are registered, by the name used in ``shipyard.toml``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.alerting._channel import Channel
from shipyard.alerting._email import EmailChannel
from shipyard.alerting._webhook import WebhookChannel
from shipyard.config import ProjectConfig
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


def channels_from_project(project: ProjectConfig) -> dict[str, Channel]:
    """The ``[channels.<name>]`` tables of ``project`` as channels, each built and checked by
    its type; a bad one is refused naming its table."""
    channels: dict[str, Channel] = {}
    for name, table in project.channels.items():
        try:
            channels[name] = channel_from_config(table.type, table.options)
        except InvalidInput as exc:
            raise project.invalid(("channels", name), exc.message) from exc
    return channels
