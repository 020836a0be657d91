"""Listening sockets, bound before anything else happens at start.

A port that is already taken is then one clear line, before the database is opened,
migrated or reconciled, instead of a "running" banner, a bootstrap and a traceback from
inside the web server. The listening socket is handed to uvicorn, so nothing can take the
port in between.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from canopy.domain.errors import CanopyError


class ListenError(CanopyError):
    """A port canopy was told to listen on cannot be had; the message says what to do."""


@dataclass(frozen=True)
class Listener:
    """What a socket is for, and the settings that choose its address (for the message)."""

    what: str  # "the API", "the worker's /metrics"
    host: str
    port: int
    port_setting: str  # e.g. "[api] port (or CANOPY_API_PORT)"
    host_setting: str


def bind(listener: Listener) -> socket.socket:
    """A TCP socket bound to the listener's address and listening, or ListenError.

    It listens at once: with SO_REUSEADDR (set so a restart can rebind while old
    connections linger), Linux lets two sockets bind one port as long as neither listens,
    so a socket only bound would not keep a second process starting at the same moment
    off the port. Connections that arrive before the server runs wait in the backlog."""
    where = _address(listener.host, listener.port)
    try:
        infos = socket.getaddrinfo(
            listener.host or None,
            listener.port,
            type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )
    except socket.gaierror as e:
        raise ListenError(
            f"cannot listen on {where} for {listener.what}: unknown host ({e.strerror}); "
            f"set {listener.host_setting} to an address of this machine"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(socket.SOMAXCONN)
    except OSError as e:
        sock.close()
        raise ListenError(_explain(listener, where, e)) from None
    return sock


def _explain(listener: Listener, where: str, e: OSError) -> str:
    if e.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where} for {listener.what}: the address is already in use "
            f"(another canopy, or another program, listens there); stop it or set "
            f"{listener.port_setting} to a free port"
        )
    if e.errno == errno.EACCES:
        return (
            f"cannot listen on {where} for {listener.what}: permission denied (ports "
            f"below 1024 need privileges); set {listener.port_setting} to a port above 1023"
        )
    if e.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {where} for {listener.what}: no such address on this "
            f"machine; set {listener.host_setting} to one of its addresses"
        )
    return f"cannot listen on {where} for {listener.what}: {e.strerror}"


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bound_port(sock: socket.socket) -> int:
    """The port a socket is bound to (the one chosen for port 0)."""
    return int(sock.getsockname()[1])
