"""EmailChannel against a real aiosmtpd server: the message, refusals, retries, AUTH, STARTTLS."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

from alerting_support import BACKOFF, TIMEOUT, Authenticator, SmtpServerFactory

from shipyard.alerting import Alert, EmailChannel


def channel(port: int, **options: object) -> EmailChannel:
    config: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "from": "shipyard@example.com",
        "to": ["ops@example.com", "ml@example.com"],
        "timeout": TIMEOUT,
        "backoff": BACKOFF,
        **options,
    }
    return EmailChannel.from_config(config)


def test_message_reaches_every_recipient_with_the_alert(
    smtp_server: SmtpServerFactory, alert: Alert
) -> None:
    port, handler = smtp_server()
    delivery = channel(port).send(alert)
    assert delivery.ok and delivery.attempts == 1
    [envelope] = handler.envelopes
    assert envelope.mail_from == "shipyard@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "ml@example.com"]
    assert isinstance(envelope.content, bytes)
    message = message_from_bytes(envelope.content, policy=default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "[Shipyard critical] churn v3: psi drift on age"
    assert message["To"] == "ops@example.com, ml@example.com"
    assert message["X-Shipyard-Alert-Id"] == "a1b2c3"
    text_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text_part is not None and html_part is not None
    text = text_part.get_content()
    for expected in (
        "churn v3",
        "psi on age",
        "Value: 0.3141",
        "Threshold: 0.2",
        "churn-psi",
        "PSI of age is above",
        "http://127.0.0.1:8000/models/churn/3/drift",
    ):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    html = html_part.get_content()
    assert "<td>0.3141</td>" in html and "<td>0.2</td>" in html and "churn v3" in html


def test_html_part_escapes_values(smtp_server: SmtpServerFactory, alert: Alert) -> None:
    port, handler = smtp_server()
    hostile = alert.model_copy(update={"feature": "<script>x</script>"})
    assert channel(port).send(hostile).ok
    content = handler.envelopes[0].content
    assert isinstance(content, bytes)
    message = message_from_bytes(content, policy=default)
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_permanent_refusal_550_is_not_retried(smtp_server: SmtpServerFactory, alert: Alert) -> None:
    port, handler = smtp_server(data_reply="550 5.7.1 Message rejected as spam")
    delivery = channel(port, attempts=3).send(alert)
    assert not delivery.ok and delivery.attempts == 1
    assert delivery.error and "550" in delivery.error and "rejected as spam" in delivery.error
    assert handler.data_calls == 1


def test_transient_refusal_451_is_retried_then_reported(
    smtp_server: SmtpServerFactory, alert: Alert
) -> None:
    port, handler = smtp_server(data_reply="451 4.3.0 Try again later")
    delivery = channel(port, attempts=3).send(alert)
    assert not delivery.ok and delivery.attempts == 3
    assert delivery.error and "451" in delivery.error and "gave up after 3" in delivery.error
    assert handler.data_calls == 3


def test_auth_is_used_when_credentials_are_set(
    smtp_server: SmtpServerFactory, alert: Alert
) -> None:
    authenticator = Authenticator(username="alerts", password="s3cret")
    port, handler = smtp_server(authenticator=authenticator)
    delivery = channel(port, username="alerts", password="s3cret").send(alert)
    assert delivery.ok, delivery.error
    assert [(login, pw) for _, login, pw in authenticator.attempts] == [("alerts", "s3cret")]
    assert len(handler.envelopes) == 1


def test_wrong_password_is_a_final_failure(smtp_server: SmtpServerFactory, alert: Alert) -> None:
    authenticator = Authenticator(username="alerts", password="s3cret")
    port, handler = smtp_server(authenticator=authenticator)
    delivery = channel(port, username="alerts", password="wrong", attempts=3).send(alert)
    assert not delivery.ok and delivery.attempts == 1
    assert delivery.error and "535" in delivery.error
    assert not handler.envelopes


def test_no_auth_without_credentials(smtp_server: SmtpServerFactory, alert: Alert) -> None:
    authenticator = Authenticator(username="alerts", password="s3cret")
    port, handler = smtp_server(authenticator=authenticator)
    assert channel(port).send(alert).ok
    assert authenticator.attempts == [] and len(handler.envelopes) == 1


def test_starttls_required_but_not_offered(smtp_server: SmtpServerFactory, alert: Alert) -> None:
    port, handler = smtp_server()
    delivery = channel(port, starttls=True, attempts=3).send(alert)
    assert not delivery.ok and delivery.attempts == 1
    assert delivery.error and "does not support STARTTLS" in delivery.error
    assert not handler.envelopes
