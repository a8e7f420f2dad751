"""Outbound HTTP to URLs people configure (Invoke Webhook, approval NotificationWebhook).

A URL in a pipeline definition is written by an owner, not by the operator of the
server: left free, it reaches the server's own network (the review made Conveyor call its
own admin and read the answer back in a summary). Like GitLab's "local requests" rule:

1. only ``http``/``https``;
2. the host is resolved here, and every address it resolves to must be global: loopback,
   link-local, private, shared (CGNAT), multicast, reserved and unspecified addresses are
   refused, unless ``CONVEYOR_OUTBOUND_ALLOW`` (CIDRs or host names, comma-separated)
   allows them;
3. the connection goes to the address that was checked (the Host header and TLS name stay
   the URL's), so a name that resolves differently a moment later (DNS rebinding) cannot
   slip another address in;
4. redirects are never followed: a 3xx is the answer;
5. callers quote an answer's body only through ``excerpt`` (short, one line, printable).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

EXCERPT_CHARS = 200


class OutboundRefused(Exception):
    """The URL may not be requested; the message says why (for a summary or a log)."""


@dataclass
class Answer:
    status: int
    reason: str
    body: bytes
    headers: http.client.HTTPMessage


def _allow_list() -> tuple[list, set[str]]:
    networks, hosts = [], set()
    for item in getattr(settings, "CONVEYOR_OUTBOUND_ALLOW", []) or []:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            hosts.add(item.lower().rstrip("."))
    return networks, hosts


def address_refusal(address: str) -> str | None:
    """Why an address may not be reached (None: it may), before the allow list."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return f"{ip} is a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def resolve(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, address to connect to) for ``url``; ``OutboundRefused`` if not
    allowed. Pure but for the DNS lookup."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused(f'"{url}" is not an http(s) URL')
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise OutboundRefused(f'"{url}" names no host')
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused(f'"{url}" has an invalid port') from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundRefused(f"cannot resolve {host}: {exc}") from None
    networks, hosts = _allow_list()
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if host in hosts:
        return parts.scheme, host, port, addresses[0]
    # Every address must pass: a name that resolves to one public and one private
    # address would otherwise let the connection pick the private one.
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip in network for network in networks):
            continue
        why = address_refusal(address)
        if why:
            raise OutboundRefused(
                f"{host} resolves to {address}: {why}; requests to the server's own network "
                "are refused unless CONVEYOR_OUTBOUND_ALLOW allows them")
    return parts.scheme, host, port, addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the URL's host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float,
         max_bytes: int = 1 << 20) -> Answer:
    """POST ``body`` to ``url`` under rules 1-4 above; at most ``max_bytes`` of the answer.

    Raises ``OutboundRefused`` before connecting, ``TimeoutError``/``OSError`` as sockets do.
    """
    return request("POST", url, body=body, headers=headers, timeout=timeout,
                   max_bytes=max_bytes)


def request(method: str, url: str, *, body: bytes | None, headers: dict[str, str],
            timeout: float, max_bytes: int = 1 << 20) -> Answer:
    """Any method, under the same rules as ``post`` (notifications, commit statuses, rules)."""
    scheme, host, port, address = resolve(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = cls(host, port, address, timeout=timeout)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read(max_bytes)
        return Answer(response.status, response.reason, data, response.headers)
    finally:
        connection.close()


def excerpt(data: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line, printable excerpt of an answer's body, for a summary."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rstrip() + "…"
