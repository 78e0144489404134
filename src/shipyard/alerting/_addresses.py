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
- when each alert is sent (``PinnedBackend``): the host is resolved, every address it
  resolves to is checked, and the connection goes to the address that was checked, so a DNS
  answer that changes between the check and the connection (DNS rebinding) cannot redirect it.
  TLS still verifies the certificate against the host name.

>>> refusal(ipaddress.ip_address("169.254.169.254"), allow_link_local=False, allow_private=True)
'a link-local address (a cloud metadata service)'
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore

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


class PinnedBackend(httpcore.NetworkBackend):
    """httpcore's network backend that resolves, checks every address, then connects to a
    checked one (``httpcore.ConnectError`` with the reason otherwise)."""

    def __init__(self, *, allow_link_local: bool, allow_private: bool) -> None:
        self.allow_link_local = allow_link_local
        self.allow_private = allow_private
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        why = check_host(
            host, allow_link_local=self.allow_link_local, allow_private=self.allow_private
        )
        try:
            addresses = resolve(host, port) if why is None else []
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        for address in addresses:
            why = why or refusal(
                address, allow_link_local=self.allow_link_local, allow_private=self.allow_private
            )
        if why is not None or not addresses:
            raise httpcore.ConnectError(
                f"{host} is {why or 'not resolvable'}; webhooks may not post there"
            )
        return self._inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks post over TCP only")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def pinned_transport(*, allow_link_local: bool, allow_private: bool) -> Any:
    """An ``httpx.HTTPTransport`` whose connections go through ``PinnedBackend``."""
    import httpx

    transport = httpx.HTTPTransport()
    pool = transport._pool
    if not hasattr(pool, "_network_backend"):  # pragma: no cover - an httpcore we don't know
        raise RuntimeError("httpcore's ConnectionPool has no _network_backend to replace")
    pool._network_backend = PinnedBackend(
        allow_link_local=allow_link_local, allow_private=allow_private
    )
    return transport
