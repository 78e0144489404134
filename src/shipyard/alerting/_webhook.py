"""JSON webhooks (Slack-compatible ``text`` plus the structured alert), with retries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from shipyard.alerting._addresses import PinnedTransport, check_host
from shipyard.alerting._alert import Alert
from shipyard.alerting._channel import (
    Channel,
    Delivery,
    PermanentError,
    RetryableError,
    TimedOut,
    check_retry_params,
    deliver_with_retries,
    time_left,
)
from shipyard.errors import InvalidInput

#: 429 is a 4xx but means "later", and Slack uses it for rate limits.
_RETRY_STATUS = frozenset({408, 429})


class WebhookChannel(Channel):
    """POST each alert as JSON: ``{"text": alert.text, "alert": {...}}``.

    Connection errors, timeouts, 5xx, 408 and 429 are retried; other 4xx are final.
    ``timeout`` applies to each attempt.

    The URL may not reach a link-local address (a cloud metadata service such as
    169.254.169.254) unless ``allow_link_local``, nor a loopback or private one when
    ``allow_private`` is false; checked when the channel is validated and again, after DNS,
    at each send (``_addresses``).

    >>> WebhookChannel(url="https://hooks.slack.com/services/T0/B0/x").validate()
    """

    name: ClassVar[str] = "webhook"

    def __init__(
        self,
        *,
        url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 1.0,
        allow_link_local: bool = False,
        allow_private: bool = True,
    ) -> None:
        self.url = url
        self.headers = headers
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.allow_link_local = allow_link_local
        self.allow_private = allow_private

    def validate(self) -> None:
        """Raise ``InvalidInput`` for a URL that is not http(s) or headers that are not text."""
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(
                "The 'url' parameter of the webhook channel must be an http:// or https:// "
                f"URL. Got {_shown(self.url)} instead."
            )
        for flag in ("allow_link_local", "allow_private"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInput(
                    f"The '{flag}' parameter of the webhook channel must be true or false."
                )
        why = check_host(
            parts.hostname, allow_link_local=self.allow_link_local, allow_private=self.allow_private
        )
        if why is not None:
            metadata = "link-local" in why or "metadata" in why
            fix = "allow_link_local = true" if metadata else "allow_private = true"
            raise InvalidInput(
                f"The webhook URL's host {parts.hostname!r} is {why}; webhooks may not post "
                f"there. Use another URL, or set {fix} on the channel if you mean it."
            )
        headers = self.headers or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise InvalidInput(
                "The 'headers' parameter of the webhook channel must map header names to "
                "strings (their values are not shown: they often hold a secret)."
            )
        check_retry_params(
            "webhook", timeout=self.timeout, attempts=self.attempts, backoff=self.backoff
        )

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The JSON body ``send`` posts."""
        return {"text": alert.text, "alert": alert.model_dump(mode="json")}

    def send(self, alert: Alert, *, deadline: float | None = None) -> Delivery:
        """POST ``alert``; never raises for a delivery failure."""
        payload = self.payload(alert)
        transport = PinnedTransport(
            allow_link_local=self.allow_link_local, allow_private=self.allow_private
        )
        with httpx.Client(
            timeout=self.timeout, headers=dict(self.headers or {}), transport=transport
        ) as client:
            return deliver_with_retries(
                lambda: self._attempt(client, payload, time_left(deadline, self.timeout)),
                attempts=self.attempts,
                backoff=self.backoff,
                deadline=deadline,
            )

    def _attempt(self, client: httpx.Client, payload: dict[str, Any], timeout: float) -> None:
        host = urlsplit(self.url).netloc  # not the full URL: Slack URLs embed a secret
        try:
            response = client.post(self.url, json=payload, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise TimedOut(f"webhook {host} did not answer within {timeout:.3g} s") from exc
        except httpx.TransportError as exc:
            raise RetryableError(f"could not reach webhook {host}: {exc}") from exc
        if response.is_success:
            return
        error = f"webhook {host} replied {response.status_code} {response.reason_phrase}"
        body = response.text.strip()[:200]
        if body:
            error += f": {body}"
        if response.status_code >= 500 or response.status_code in _RETRY_STATUS:
            raise RetryableError(error)
        raise PermanentError(error)


def _shown(url: object) -> str:
    """A URL for an error message without its path and query, which may hold a secret (Slack
    and Teams webhook URLs do)."""
    if not isinstance(url, str):
        return repr(url)[:60]
    parts = urlsplit(url)
    return repr(f"{parts.scheme}://{parts.netloc}/..." if parts.path.strip("/") else url[:80])
