"""A lean HTTP/1.1 load client (asyncio streams, keep-alive) and a served canopy API in a
child process, for the read benchmarks.

The client parses as little as it can (status line, Content-Length, the body's last
next-link marker), so on a 2-core machine it takes as little CPU from the server as
possible; the same client measures the baseline route, so what it costs is in both.
"""

from __future__ import annotations

import asyncio
import http.client
import multiprocessing
import os
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess

_MARKER = re.compile(rb"marker=([0-9a-fA-F-]{8,64})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int, limit: float = 180.0) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not answer /healthz in time")


def stop(child: BaseProcess | None) -> None:
    if child is None or child.pid is None:
        return
    os.kill(child.pid, signal.SIGTERM)
    child.join(30)
    if child.is_alive():
        child.kill()
        child.join()


@contextmanager
def served(
    target: Callable[..., None], args: tuple[object, ...], port: int, settle: float = 0.0
) -> Iterator[BaseProcess]:
    """`target(*args)`, serving on `port`, in a spawned child process: yielded once its
    /healthz answers and `settle` seconds more have passed; stopped on the way out."""
    child = None
    try:
        child = multiprocessing.get_context("spawn").Process(target=target, args=args)
        child.start()
        wait_up(port)
        if settle:
            time.sleep(settle)
        yield child
    finally:
        stop(child)


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(q * len(ys)))] if ys else float("nan")


def next_marker(body: bytes) -> str | None:
    """The marker of a page's next link (the last one in the body), if it has one."""
    tail = body[-600:]
    if b"servers_links" not in tail:
        return None
    found = _MARKER.findall(tail)
    return found[-1].decode() if found else None


class Conn:
    """One keep-alive connection."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.extra}\r\n"
        self.writer.write(req.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length)
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Load:
    pages: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu: float = 0.0  # CPU seconds the server used meanwhile, when measured

    @property
    def rate(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """The server's CPU per answered page, in ms."""
        return self.server_cpu * 1000 / self.pages if self.pages else float("nan")


async def hammer(
    port: int,
    headers: dict[str, str],
    clients: int,
    seconds: float,
    first: str,
    follow: Callable[[bytes], str | None] | None,
) -> Load:
    """`clients` connections asking for `first` then (with `follow`) each next page, for
    `seconds`: pages answered, errors, latencies (ms)."""
    out = Load()
    end = time.perf_counter() + seconds

    async def client() -> None:
        conn = Conn(port, headers)
        path = first
        try:
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                status, body = await conn.get(path)
                out.latencies.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    out.errors += 1
                    path = first
                    continue
                out.pages += 1
                marker = follow(body) if follow else None
                path = f"{first}&marker={marker}" if marker else first
        finally:
            await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    out.seconds = time.perf_counter() - t0
    return out
