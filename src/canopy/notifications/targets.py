"""Where a subscription may send: URL rules at create, address rules at every send.

A webhook or broker URL is user input that makes a worker open a connection, so it is
checked like any server-side request forgery risk:

- at create, the scheme (http/https for webhooks, amqp/amqps for AMQP), a host, no
  credentials in a webhook URL, and no literal private address unless allowed;
- at every send, the host's addresses: each must be public (`is_global`), unless the host
  name or the address is in `[notifications] allowed_webhook_hosts`. Redirects are never
  followed (a redirect to an internal address would go around the check).

The name is resolved again by the HTTP client when it connects, so a name whose DNS
answer changes between the two (rebinding) can slip through: docs/notifications.md says
to put workers behind an egress proxy or firewall where that matters.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from canopy.domain.errors import InvalidRequest

SCHEMES = {"webhook": ("http", "https"), "amqp": ("amqp", "amqps")}
DEFAULT_PORTS = {"http": 80, "https": 443, "amqp": 5672, "amqps": 5671}
MAX_URL = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The target resolves to an address canopy may not send to."""


@dataclass(frozen=True)
class Target:
    """A checked URL: what is stored (no password) and the password, if any."""

    url: str
    host: str
    port: int
    password: str | None


def parse(kind: str, url: str, allowed: list[str]) -> Target:
    """Check a subscription's URL (InvalidRequest says what is wrong)."""
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidRequest(f"url must be at most {MAX_URL} characters, with no spaces.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidRequest(f"url is not a valid URL: {e}.") from None
    schemes = SCHEMES[kind]
    if parts.scheme not in schemes:
        raise InvalidRequest(f"A {kind} url must start with {' or '.join(schemes)}://.")
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidRequest("url must name a host.")
    password = parts.password
    if kind == "webhook" and (parts.username or password):
        raise InvalidRequest(
            "A webhook url must not carry credentials: requests are signed with the "
            "subscription's secret instead."
        )
    if parts.fragment:
        raise InvalidRequest("url must not have a #fragment.")
    address = _address(host)
    if address is not None and not permitted(host, address, allowed):
        raise InvalidRequest(
            f"url's host {host} is a private, loopback or link-local address; an operator "
            "may allow it in [notifications] allowed_webhook_hosts."
        )
    return Target(_without_password(parts), host, port or DEFAULT_PORTS[parts.scheme], password)


def with_password(url: str, password: str | None) -> str:
    """The stored URL with its password put back (for connecting only; never shown)."""
    if not password:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    netloc = f"{user}:{password}@{parts.netloc.rsplit('@', 1)[-1]}"
    return urlunsplit(parts._replace(netloc=netloc))


def _without_password(parts: SplitResult) -> str:
    if parts.password is None:
        return parts.geturl()
    netloc = f"{parts.username or ''}@{parts.netloc.rsplit('@', 1)[-1]}"
    return urlunsplit(parts._replace(netloc=netloc))


def _address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def permitted(host: str, address: IPAddress, allowed: list[str]) -> bool:
    """Whether `address` (of `host`) may be sent to: public, or allowed by the operator."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if host in allowed:
        return True
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # a host name
    return address.is_global


async def check(host: str, port: int, allowed: list[str]) -> None:
    """Resolve `host` and refuse it if any of its addresses may not be sent to."""
    if host in allowed:
        return
    literal = _address(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise Refused(f"cannot resolve {host}: {e}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for a in addresses:
        if not permitted(host, a, allowed):
            raise Refused(
                f"{host} resolves to {a}, a private, loopback or link-local address; "
                "allow it in [notifications] allowed_webhook_hosts if it is meant"
            )
