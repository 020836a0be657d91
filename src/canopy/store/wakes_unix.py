"""SQLite wakes: a datagram to each worker's Unix socket, beside the database file.

Every worker process binds a datagram socket in `<database file>-wake/` (mode 0700, so only
the user who owns the database reaches it); an API process, after a commit that made work,
sends the loop names to each socket there. A send never blocks (a full buffer means a wake
is already pending); a socket nobody is bound to any more (a worker killed with SIGKILL)
refuses the send and is removed. The worker reads its socket from the event loop
(`add_reader`), and checks every CHECK_SECONDS that its socket file is still there (a data
directory cleaned under it): if not, it binds a new one.

The directory is trusted only if it is a real directory (not a symlink) owned by this
process's user with no group or other permissions: `mkdir(exist_ok=True)` keeps whatever
is there, and a database beside a shared directory (/tmp) would let another local user make
`<db>-wake` first and then replace the workers' sockets, plant `*.sock` symlinks the API
sends to, or flood the workers. A worker refuses any other directory (it says so once and
keeps polling; nothing fails), an API process sends nothing into one, and even in a trusted
directory it sends only to sockets owned by its user (`lstat`: a symlink is never followed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.wake import Wake
from canopy.store.wakes import decode, encode

log = logging.getLogger("canopy.wakes")
SUFFIX = ".sock"
CHECK_SECONDS = 30.0
RETRY_SECONDS = 30.0


class UntrustedDirectory(OSError):
    """The wake directory is not this user's own, private, real directory."""


def check_directory(directory: Path) -> None:
    """Raise `UntrustedDirectory` unless `directory` is a real directory (not a symlink)
    owned by this process's user, with no group or other permissions (OSError if absent)."""
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedDirectory(f"{directory} is not a directory (a symlink?)")
    if st.st_uid != os.geteuid():
        raise UntrustedDirectory(f"{directory} is owned by uid {st.st_uid}, not {os.geteuid()}")
    if st.st_mode & 0o077:
        raise UntrustedDirectory(
            f"{directory} has mode {stat.S_IMODE(st.st_mode):o}: others may use it (needs 700)"
        )


def own_socket(entry: os.DirEntry[str]) -> bool:
    """Whether `entry` is a socket (not a symlink to one) owned by this process's user."""
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISSOCK(st.st_mode) and st.st_uid == os.geteuid()


class UnixWakes:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sender: socket.socket | None = None
        self.path: str | None = None  # this worker's socket, while it listens
        self.listening = asyncio.Event()
        self._said: str | None = None  # the last problem logged (each is said once)

    def _say(self, problem: str, level: int) -> None:
        if problem != self._said:
            self._said = problem
            log.log(level, "%s", problem)

    async def before_commit(self, s: AsyncSession, loops: Sequence[str]) -> None:
        return None  # nothing to send until the rows are committed

    def after_commit(self, loops: Sequence[str]) -> None:
        """Send the loop names to every worker's socket; never blocks, never raises."""
        payload = encode(loops).encode()
        try:
            check_directory(self.directory)
            entries = [e for e in os.scandir(self.directory) if e.name.endswith(SUFFIX)]
        except UntrustedDirectory as e:  # someone else's: send nothing there
            self._say(f"wakes not sent: {e}", logging.WARNING)
            return
        except OSError:
            return  # no worker has listened here yet
        if not entries:
            return
        if self._sender is None:
            try:
                sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sender.setblocking(False)
            except OSError as e:  # no descriptor left: the workers find the work at their polls
                log.debug("wake not sent: %s", e)
                return
            self._sender = sender
        for entry in entries:
            if entry.path == self.path or not own_socket(entry):
                continue  # this worker's own; a file, a symlink, another user's socket
            path = entry.path
            try:
                self._sender.sendto(payload, path)
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):  # nobody bound: a worker that died
                    os.unlink(path)
            except BlockingIOError:
                continue  # its buffer is full of wakes it has not read: it is woken already
            except OSError as e:
                log.debug("wake to %s not sent: %s", path, e)

    def send(self, loops: Sequence[str]) -> None:
        """A worker's wake to the others: the same datagrams, never to its own socket."""
        self.after_commit(loops)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    async def listen(self, wake: Wake, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sock, path = self._bind()
            except OSError as e:
                self._say(
                    f"wake socket in {self.directory}: {e}; this worker finds new work at "
                    "its polls",
                    logging.WARNING,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_SECONDS)
                continue
            if self._said is not None:
                self._say(f"wake socket bound in {self.directory}", logging.INFO)
            try:
                await self._serve(sock, path, wake, stop)
            finally:
                sock.close()
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def _bind(self) -> tuple[socket.socket, str]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_directory(self.directory)  # made by us now, or found: whose, and how open?
        path = str(self.directory / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(path)
        except OSError:
            sock.close()
            raise
        return sock, path

    async def _serve(self, sock: socket.socket, path: str, wake: Wake, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        bound = os.stat(path).st_ino

        def readable() -> None:
            while True:
                try:
                    data = sock.recv(4096)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                wake.ask(*decode(data.decode(errors="replace")))

        loop.add_reader(sock.fileno(), readable)
        self.path = path
        self.listening.set()
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), CHECK_SECONDS)
                try:
                    if os.stat(path).st_ino == bound:
                        continue
                except OSError:
                    pass
                log.warning("wake socket %s was removed; binding a new one", path)
                wake.ask()  # wakes sent while it was missing
                return
        finally:
            self.listening.clear()
            self.path = None
            loop.remove_reader(sock.fileno())
