"""A loopback TCP proxy to PostgreSQL that can drop the notifications (NOTIFY) it carries.

A worker process whose database URL points here LISTENs through it; while `dropping` is
set, the NotificationResponse messages the server sends it are taken out of the stream
(and kept in `dropped`), so that worker misses them as if they were lost, while its
queries go on untouched. The proxy runs its own event loop in a thread: the test's code
may block (a subprocess, a synchronous HTTP client) without stalling the worker's
database traffic.

Only the plain protocol can be read: a client's request for TLS or GSS encryption is
refused here ("N", as a server without them answers), and libpq clients and asyncpg then
go on in the clear, over loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
NOTIFICATION = ord("A")


class NotifyProxy:
    """Forwards 127.0.0.1:`port` to PostgreSQL at `host`:`upstream_port`."""

    def __init__(self, host: str, upstream_port: int) -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = 0
        self.dropping = False  # set by the test's thread, read by the proxy's
        self.passed: list[str] = []  # the payloads of the notifications let through
        self.dropped: list[str] = []  # ... and of those taken out
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> int:
        """Listen on a free loopback port; return it."""
        self._thread.start()
        listening = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        )
        self._server = listening.result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def close(self) -> None:
        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.close()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, server_w}
        try:
            await asyncio.gather(
                self._upstream(client_r, client_w, server_w),
                self._downstream(server_r, client_w),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (client_w, server_w):
                self._writers.discard(w)
                w.close()

    async def _upstream(
        self,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
        server_w: asyncio.StreamWriter,
    ) -> None:
        """The client's bytes to the server, once its start-up message is through; a
        request for encryption before it is refused here."""
        while True:
            head = await client_r.readexactly(8)
            length, code = struct.unpack("!ii", head)
            rest = await client_r.readexactly(length - 8)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                client_w.write(b"N")
                await client_w.drain()
                continue
            server_w.write(head + rest)
            break
        while data := await client_r.read(65536):
            server_w.write(data)
            await server_w.drain()
        with contextlib.suppress(OSError):
            server_w.write_eof()

    async def _downstream(
        self, server_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        """The server's messages to the client, but the notifications while dropping."""
        while True:
            try:
                head = await server_r.readexactly(5)
            except asyncio.IncompleteReadError:
                client_w.close()
                return
            kind, length = head[0], struct.unpack("!i", head[1:])[0]
            body = await server_r.readexactly(length - 4)
            if kind == NOTIFICATION:
                # Int32 pid, the channel's name and the payload, each ended by a NUL.
                payload = body[4:].split(b"\0")[1].decode(errors="replace")
                if self.dropping:
                    self.dropped.append(payload)
                    continue
                self.passed.append(payload)
            client_w.write(head + body)
            await client_w.drain()
