"""The keys of a ``digest`` job (``[[jobs]] kind = "digest"``), checked when the file is read.

>>> DigestParams(channel="mail", to=["ann@example.com"], team="risk").team
'risk'
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shipyard.alerting import looks_like_address
from shipyard.config import parse_window
from shipyard.errors import InvalidInput


class DigestParams(BaseModel):
    """``channel`` (an email channel of ``[channels.*]``: its SMTP server sends), subscribers
    (``to`` addresses and/or ``users``, by the e-mail of their user row), models (``models``
    and/or ``team``), ``link`` (the UI's base URL; default ``UiSettings().base_url``) and
    ``since`` (a window such as ``7d``; default: since the job's last successful run, else
    24 hours)."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1)
    to: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    team: str | None = None
    link: str | None = None
    since: str | None = None

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not looks_like_address(a)]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not an e-mail address: write addresses such as 'ann@example.com'."
            )
        return value

    @field_validator("since")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_window(value, option="since")
            except InvalidInput as exc:  # a ValueError lets pydantic name the job and key
                raise ValueError(exc.message) from None
        return value

    @model_validator(mode="after")
    def _needs_subscribers_and_models(self) -> DigestParams:
        if not self.to and not self.users:
            raise ValueError(
                "names no subscriber: set 'to' (e-mail addresses) or 'users' (user names "
                "with an e-mail address)."
            )
        if not self.models and not self.team:
            raise ValueError(
                "names no model: set 'models' (a list of model names) or 'team' (the team "
                "whose models it covers)."
            )
        return self
