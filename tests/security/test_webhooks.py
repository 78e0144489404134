"""Webhooks never post to a cloud metadata service or another link-local address unless their
channel allows it, nor to loopback or private addresses when it says so: checked when the
configuration loads (every spelling of an address) and, after DNS, when an alert is sent,
with the connection pinned to the address checked (DNS rebinding)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shipyard.alerting import Alert, WebhookChannel, channels_from_project
from shipyard.config import load_project
from shipyard.errors import InvalidInput

METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.170.2/v2/credentials",  # ECS task credentials
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/",
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped IPv6
    "http://2852039166/",  # 169.254.169.254 as one number
    "http://0xa9fea9fe/",  # ... in hex
    "http://0251.0376.0251.0376/",  # ... in octal
    "http://169.254.43518/",  # ... the last two parts as one
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./computeMetadata/v1/",
    "http://100.100.100.200/latest/meta-data/",  # Alibaba Cloud
]


def _alert() -> Alert:
    return Alert(
        id="a1",
        rule="psi",
        severity="critical",
        model="churn",
        version=1,
        metric="psi",
        feature="age",
        value=0.3,
        threshold=0.2,
        message="PSI of age is above the critical threshold.",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        link=None,
    )


@pytest.fixture
def hook() -> Iterator[tuple[str, list[str]]]:
    """A real webhook receiver on 127.0.0.1: (its URL, the paths it was posted to)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/hook", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("url", METADATA_URLS)
def test_metadata_and_link_local_urls_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidInput, match="allow_link_local = true"):
        WebhookChannel(url=url).validate()
    WebhookChannel(url=url, allow_link_local=True).validate()


@pytest.mark.parametrize("url", ["http://0.0.0.0/", "http://[::]/", "http://224.0.0.1/"])
def test_unspecified_and_multicast_urls_are_always_refused(url: str) -> None:
    for allow in (False, True):
        with pytest.raises(InvalidInput, match="unspecified, multicast or reserved"):
            WebhookChannel(url=url, allow_link_local=allow).validate()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/", "http://[::1]/", "http://10.1.2.3/", "http://192.168.0.9/"]
)
def test_loopback_and_private_urls_are_refused_when_the_channel_says_so(url: str) -> None:
    WebhookChannel(url=url).validate()  # allowed by default: chat servers on the company network
    with pytest.raises(InvalidInput, match="allow_private = true"):
        WebhookChannel(url=url, allow_private=False).validate()


def test_the_project_file_is_refused_naming_the_channel(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.toml"
    path.write_text(
        '[channels.ops]\ntype = "webhook"\nurl = "http://169.254.169.254/latest/meta-data/"\n'
    )
    with pytest.raises(InvalidInput, match=r"\[channels\.ops\].*link-local"):
        channels_from_project(load_project(path))
    path.write_text(
        '[channels.ops]\ntype = "webhook"\nurl = "http://169.254.169.254/x"\n'
        "allow_link_local = true\n"
    )
    assert channels_from_project(load_project(path))["ops"].allow_link_local is True


def test_a_secret_url_path_is_not_quoted_in_errors() -> None:
    with pytest.raises(InvalidInput) as info:
        WebhookChannel(url="ftp://hooks.slack.com/services/T0/B0/s3cr3t").validate()
    assert "s3cr3t" not in info.value.message
    with pytest.raises(InvalidInput) as info:
        WebhookChannel(url="https://hooks.example.com/x", headers={"X-Key": 7}).validate()  # type: ignore[dict-item]
    assert "7" not in info.value.message.replace("webhook", "")


def test_a_name_resolving_to_a_refused_address_is_refused_at_send(
    hook: tuple[str, list[str]],
) -> None:
    """``localhost`` passes the configuration check (a name, no DNS asked) but resolves to
    loopback: with ``allow_private = false`` nothing is posted, and the reason is given."""
    url, seen = hook
    channel = WebhookChannel(url=url, allow_private=False, attempts=1, timeout=2)
    channel.validate()
    delivery = channel.send(_alert())
    assert not delivery.ok and "loopback or private" in (delivery.error or "")
    assert seen == []
    allowed = WebhookChannel(url=url, attempts=1, timeout=2).send(_alert())  # the default
    assert allowed.ok, allowed.error
    assert seen == ["/hook"]


def test_the_connection_goes_to_the_address_checked(
    hook: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers an allowed address to the check, and the metadata
    service to whoever asks next. The webhook asks once and connects to what it checked.

    DNS is the only stand-in here (the machine's resolver cannot be made to rebind)."""
    url, seen = hook
    real = socket.getaddrinfo
    answers: list[str] = []

    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        first = not answers
        answers.append(host)
        address = "127.0.0.1" if first else "169.254.169.254"
        return real(address, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    channel = WebhookChannel(url=url.replace("localhost", "rebind.example"), attempts=1, timeout=2)
    channel.validate()
    assert channel.send(_alert()).ok
    assert seen == ["/hook"] and len(answers) == 1

    answers.clear()
    answers.append("the first answer is gone: every lookup now says 169.254.169.254")
    delivery = channel.send(_alert())
    assert not delivery.ok and "link-local" in (delivery.error or "")
    assert seen == ["/hook"]


def _tls_files(folder: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for ``name`` only: (ca.pem, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def issue(
        subject: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey,
        issuer: str, *, ca: bool,
    ) -> x509.Certificate:  # fmt: skip
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            usage = x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            )  # fmt: skip
            builder = builder.add_extension(usage, critical=True)
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            ).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = issue("Shipyard test CA", ca_key, ca_key, "Shipyard test CA", ca=True)
    cert = issue(name, key, ca_key, "Shipyard test CA", ca=False)
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def test_an_https_webhook_keeps_its_host_name_for_tls_and_the_host_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection goes to the address checked, yet TLS asks for the host's certificate
    (SNI) and checks it against the host name, and the request names the host: a
    certificate issued for the name alone is accepted, so nothing fell back to the address.

    A real TLS server on 127.0.0.1 with a certificate for ``webhook.test`` only, whose CA
    the client trusts (``SSL_CERT_FILE``); DNS is the same stand-in as above."""
    name = "webhook.test"
    ca, cert, key = _tls_files(tmp_path, name)
    seen: list[tuple[str | None, str | None, str]] = []  # (SNI, Host, path)
    server_names: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            seen.append((server_names[-1], self.headers.get("host"), self.path))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, sni, _ctx: server_names.append(sni)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    real = socket.getaddrinfo
    asked: list[str] = []

    def resolver(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        return real("127.0.0.1", port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    try:
        channel = WebhookChannel(url=f"https://{name}:{port}/hook", attempts=1, timeout=5)
        channel.validate()
        delivery = channel.send(_alert())
        other = WebhookChannel(url=f"https://127.0.0.1:{port}/hook", attempts=1, timeout=5).send(
            _alert()
        )
    finally:
        server.shutdown()
        server.server_close()
    assert delivery.ok, delivery.error
    assert seen[0] == (name, f"{name}:{port}", "/hook")
    assert asked == [name]  # resolved once, by the check; the connection used its answer
    # The same server by its address: the certificate does not name it, so TLS refuses.
    assert not other.ok and "certificate" in (other.error or "").lower()
    assert len(seen) == 1
