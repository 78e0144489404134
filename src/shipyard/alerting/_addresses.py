"""Where a webhook may post: never to the machine's cloud metadata service or another
link-local address unless its channel allows it, and to loopback or private addresses only
while its channel allows that (the default).

A webhook URL is configuration, but the server posting to it often runs with more network
reach than whoever edits ``shipyard.toml``: on a cloud VM, ``http://169.254.169.254/`` hands
out the machine's credentials, and a webhook's error text (the first 200 characters of the
answer) would carry them back. So the address is checked twice:

- when the configuration loads (``check_url``): a literal address in any spelling
  (``169.254.169.254``, ``2852039166``, ``0xa9fea9fe``, ``[::ffff:169.254.169.254]``) and the
  metadata services' host names, without asking DNS;
- when each alert is sent (``PinnedTransport``): the host is resolved, every address it
  resolves to is checked, and the connection goes to the address that was checked, so a DNS
  answer that changes between the check and the connection (DNS rebinding) cannot redirect it.
  The ``Host`` header and the TLS server name stay the host's, and TLS still verifies the
  certificate against the host name.

>>> refusal(ipaddress.ip_address("169.254.169.254"), allow_link_local=False, allow_private=True)
'a link-local address (a cloud metadata service)'
"""

from __future__ import annotations

import ipaddress
import socket

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata services outside 169.254.0.0/16: AWS's IPv6 one, Alibaba's, Oracle's.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
#: Host names of metadata services (GCP, Azure's internal, a bare "metadata" search name).
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})


def literal_address(host: str) -> Address | None:
    """``host`` as an IP address if it is one in any spelling the C resolver accepts
    (``2852039166``, ``0xa9.0xfe.0xa9.0xfe``, ``[::1]``), else ``None``."""
    text = host.strip("[]")
    try:
        return _unmapped(ipaddress.ip_address(text))
    except ValueError:
        pass
    try:  # inet_aton takes the legacy forms getaddrinfo would resolve without DNS
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def _unmapped(address: Address) -> Address:
    """An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def refusal(address: Address, *, allow_link_local: bool, allow_private: bool) -> str | None:
    """Why a webhook may not post to ``address`` (``None``: it may)."""
    address = _unmapped(address)
    if address in METADATA_ADDRESSES or address.is_link_local:
        return None if allow_link_local else "a link-local address (a cloud metadata service)"
    if address.is_unspecified or address.is_multicast:
        return "an unspecified, multicast or reserved address"
    if address.is_loopback or address.is_private:  # before is_reserved: ::1 is in ::/8
        return None if allow_private else "a loopback or private address"
    if address.is_reserved:
        return "an unspecified, multicast or reserved address"
    return None


def check_host(host: str, *, allow_link_local: bool, allow_private: bool) -> str | None:
    """Why a webhook may not post to ``host`` as written (no DNS asked)."""
    if host.lower().rstrip(".") in METADATA_HOSTS and not allow_link_local:
        return "a cloud metadata service"
    address = literal_address(host)
    if address is None:
        return None
    return refusal(address, allow_link_local=allow_link_local, allow_private=allow_private)


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (the system resolver), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[Address] = []
    for *_, sockaddr in infos:
        address = _unmapped(ipaddress.ip_address(sockaddr[0]))
        if address not in out:
            out.append(address)
    return out


class Refused(Exception):
    """A webhook's host is, or resolves to, an address it may not post to (or to none)."""


def checked_address(
    host: str, port: int, *, allow_link_local: bool, allow_private: bool
) -> Address:
    """Resolve ``host`` once, check every address it resolves to, and return the first;
    ``Refused`` says why when one of them (or the name itself) may not be posted to."""
    why = check_host(host, allow_link_local=allow_link_local, allow_private=allow_private)
    try:
        addresses = resolve(host, port) if why is None else []
    except OSError as exc:
        raise Refused(f"cannot resolve {host}: {exc}") from exc
    allowed = {"allow_link_local": allow_link_local, "allow_private": allow_private}
    for address in addresses:
        why = why or refusal(address, **allowed)
    if why is not None or not addresses:
        raise Refused(f"{host} is {why or 'not resolvable'}; webhooks may not post there")
    return addresses[0]


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport that resolves each request's host, checks every address
    (``checked_address``), and sends the request to the address it checked.

    Only public httpx API: the request goes to ``scheme://ADDRESS:port/...``, keeping the
    ``Host`` header the original URL gave it, and, through httpcore's ``sni_hostname``
    request extension, the TLS server name, so the certificate is still checked against
    the host name. Its own ``HTTPTransport`` reads no proxy from the environment (a proxy
    would resolve the name again). A refusal is an ``httpx.ConnectError`` naming the reason.
    """

    def __init__(self, *, allow_link_local: bool, allow_private: bool) -> None:
        self.allow_link_local = allow_link_local
        self.allow_private = allow_private
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.raw_host.decode("ascii")  # IDNA-encoded, as DNS and TLS want it
        port = url.port or _DEFAULT_PORTS.get(url.scheme, 0)
        try:
            address = checked_address(
                host,
                port,
                allow_link_local=self.allow_link_local,
                allow_private=self.allow_private,
            )
        except Refused as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=str(address)),
            headers=request.headers,  # holds Host: the name, not the address
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": host},
        )
        return self._inner.handle_request(pinned)

    def close(self) -> None:
        self._inner.close()


_DEFAULT_PORTS = {"http": 80, "https": 443}
