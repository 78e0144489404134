"""E-mail over SMTP, with optional STARTTLS and AUTH, retries and a timeout."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import ClassVar

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


def looks_like_address(value: object) -> bool:
    """Whether ``value`` can be an e-mail address (``name@host``, no spaces or line breaks).

    >>> looks_like_address("ops@example.com"), looks_like_address("ops example.com")
    (True, False)
    """
    return isinstance(value, str) and "@" in value and not any(c in value for c in "\r\n ")


class EmailChannel(Channel):
    """Send alerts as plain-text + HTML e-mail through an SMTP server.

    SMTP replies 4xx (and timeouts, refused connections) are retried; 5xx replies are final,
    as SMTP defines them. ``timeout`` applies to each network operation of each attempt.

    >>> channel = EmailChannel(host="smtp.example.com", sender="shipyard@example.com",
    ...                        to=["ops@example.com"])
    >>> channel.validate()
    """

    name: ClassVar[str] = "email"
    config_aliases: ClassVar[dict[str, str]] = {"from": "sender"}

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        to: Sequence[str],
        port: int = 25,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.host = host
        self.sender = sender
        self.to = to
        self.port = port
        self.starttls = starttls
        self.username = username
        self.password = password
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff

    def validate(self) -> None:
        """Raise ``InvalidInput`` for a missing host, a bad port, address or credentials."""
        if not isinstance(self.host, str) or not self.host:
            raise InvalidInput(
                f"The 'host' parameter of the email channel must be a host name. "
                f"Got {self.host!r} instead."
            )
        port = self.port
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidInput(
                f"The 'port' parameter of the email channel must be an int in [1, 65535]. "
                f"Got {port!r} instead."
            )
        if not looks_like_address(self.sender):
            raise InvalidInput(
                f"The 'from' parameter of the email channel must be an e-mail address. "
                f"Got {self.sender!r} instead."
            )
        if isinstance(self.to, str) or not self.to or not all(map(looks_like_address, self.to)):
            raise InvalidInput(
                f"The 'to' parameter of the email channel must be a non-empty list of e-mail "
                f"addresses. Got {self.to!r} instead."
            )
        if not isinstance(self.starttls, bool):
            raise InvalidInput(
                f"The 'starttls' parameter of the email channel must be true or false. "
                f"Got {self.starttls!r} instead."
            )
        if (self.username is None) != (self.password is None):
            raise InvalidInput(
                "The email channel needs both 'username' and 'password' for AUTH, or neither. "
                "Set the missing one."
            )
        check_retry_params(
            "email", timeout=self.timeout, attempts=self.attempts, backoff=self.backoff
        )

    def message(self, alert: Alert) -> EmailMessage:
        """The e-mail ``send`` delivers: subject ``alert.summary``, text and HTML parts."""
        message = EmailMessage()
        message["Subject"] = alert.summary
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        message["Date"] = formatdate(alert.created_at.timestamp(), localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2])
        message["X-Shipyard-Alert-Id"] = alert.id
        message.set_content(alert.text)
        message.add_alternative(alert.html, subtype="html")
        return message

    def send(self, alert: Alert, *, deadline: float | None = None) -> Delivery:
        """Deliver ``alert`` to every recipient; never raises for a delivery failure."""
        return self.send_message(self.message(alert), to=self.to, deadline=deadline)

    def send_message(
        self, message: EmailMessage, *, to: Sequence[str], deadline: float | None = None
    ) -> Delivery:
        """Deliver a ready-made ``message`` (a digest, with its inline images) to ``to``
        through this channel's server, with its retries; never raises for a delivery failure.

        >>> channel.send_message(digest_message, to=["ann@example.com"])  # doctest: +SKIP
        Delivery(ok=True, attempts=1, error=None)
        """
        return deliver_with_retries(
            lambda: self._attempt(message, time_left(deadline, self.timeout), to),
            attempts=self.attempts,
            backoff=self.backoff,
            deadline=deadline,
        )

    def _attempt(self, message: EmailMessage, timeout: float, to: Sequence[str]) -> None:
        where = f"{self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username is not None and self.password is not None:
                    smtp.login(self.username, self.password)
                refused = smtp.send_message(message, self.sender, list(to))
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(
                f"SMTP server {where} does not support {_feature(exc)}: {exc}. "
                "Check the starttls/username settings of the email channel."
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            replies = {addr: (code, _decode(msg)) for addr, (code, msg) in exc.recipients.items()}
            text = "; ".join(f"{addr}: {code} {msg}" for addr, (code, msg) in replies.items())
            error = f"SMTP server {where} refused every recipient: {text}"
            if all(code >= 500 for code, _ in replies.values()):
                raise PermanentError(error) from exc
            raise RetryableError(error) from exc
        except smtplib.SMTPResponseException as exc:
            error = f"SMTP server {where} replied {exc.smtp_code} {_decode(exc.smtp_error)}"
            if exc.smtp_code >= 500:
                raise PermanentError(error) from exc
            raise RetryableError(error) from exc
        except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
            # smtplib reports a read timeout as "Connection unexpectedly closed: timed out".
            if not isinstance(exc, TimeoutError) and not isinstance(exc.__context__, TimeoutError):
                raise RetryableError(f"SMTP server {where} closed the connection: {exc}") from exc
            raise TimedOut(f"SMTP server {where} did not answer within {timeout:.3g} s") from exc
        except (OSError, smtplib.SMTPException) as exc:
            # Refused connections, resets, TLS failures, unexpected disconnects.
            raise RetryableError(f"could not talk to SMTP server {where}: {exc}") from exc
        if refused:
            # Some recipients got it: a retry would send duplicates to them.
            text = "; ".join(f"{a}: {c} {_decode(m)}" for a, (c, m) in refused.items())
            raise PermanentError(f"SMTP server {where} refused some recipients: {text}")


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _feature(exc: smtplib.SMTPNotSupportedError) -> str:
    text = str(exc).upper()
    return "STARTTLS" if "STARTTLS" in text else "AUTH" if "AUTH" in text else "an extension"
