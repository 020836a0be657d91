"""A webhook receiver on 127.0.0.1 (a real HTTP server), and a plane that may call it."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canopy.credentials import vault
from canopy.domain.context import RequestContext
from canopy.notifications import subscriptions
from canopy.notifications.subscriptions import NewSubscription
from canopy.store.models import Delivery
from tests.controllers.harness import Plane, make_plane

NOTIFY = {
    "allowed_webhook_hosts": ["127.0.0.1"],
    "max_attempts": 5,
    "backoff_base_seconds": 1.0,
    "backoff_max_seconds": 8.0,
    "timeout_seconds": 5.0,
    # A pass waits for its sends (a loaded machine may take a while): the tests read the
    # outcome right after a pass. The slow-receiver test sets it short.
    "pass_wait_seconds": 30.0,
}


async def notify_plane(db_url: str, tmp_path: Path, toml: str = "", **conf: Any) -> Plane:
    return await make_plane(
        db_url, tmp_path, toml=toml, overrides={"notifications": {**NOTIFY, **conf}}
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.body)
        return doc


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server: records each POST, answers `status` (or 500 for the
    subjects in `failing`)."""

    port: int = field(default_factory=free_port)
    status: int = 200
    failing: set[str] = field(default_factory=set)
    got: list[Received] = field(default_factory=list)
    # While set and closed, each request is held before it is answered (a slow receiver).
    gate: asyncio.Event | None = None
    held: int = 0  # requests being held now
    most_held: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()  # the request line
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            content = await reader.readexactly(int(headers.get("content-length", "0")))
            got = Received(headers, content)
            if self.gate is not None:
                self.held += 1
                self.most_held = max(self.most_held, self.held)
                try:
                    await self.gate.wait()
                finally:
                    self.held -= 1
            status = self.status
            if got.event.get("subject") in self.failing:
                status = 500
            if status == 200:
                self.got.append(got)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".encode()
            )
            await writer.drain()
        finally:
            writer.close()

    def subjects(self) -> dict[str, list[int]]:
        """The outbox positions received, per subject, in arrival order."""
        out: dict[str, list[int]] = {}
        for r in self.got:
            out.setdefault(r.event["subject"], []).append(int(r.event["sequence"]))
        return out


async def subscribe(
    p: Plane, url: str, *, ctx: RequestContext | None = None, **kw: Any
) -> tuple[str, str | None]:
    """A subscription of the plane's project (or `ctx`'s): its id and secret."""
    v = vault(p.settings.secret_key, p.settings.data_path)
    async with p.db.session() as s:
        sub, secret = await subscriptions.create(
            s,
            v,
            p.settings.notifications,
            ctx or p.ctx,
            NewSubscription(kind=kw.pop("kind", "webhook"), url=url, **kw),
            p.clock.now(),
        )
        return sub.id, secret


async def deliveries(p: Plane, status: str | None = None) -> list[Delivery]:
    from sqlalchemy import select

    async with p.db.read() as s:
        q = select(Delivery).order_by(Delivery.id)
        if status is not None:
            q = q.where(Delivery.status == status)
        return list((await s.execute(q)).scalars())
