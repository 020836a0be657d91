"""REVIEW (failing on purpose until fixed): defects found in the cross-process wakes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from canopy.store import wakes_unix
from canopy.store.wakes_unix import UnixWakes


def test_review_after_commit_never_raises_when_no_socket_can_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """after_commit runs after the write committed (api/deps.py write_session): if it
    raises, the client gets a 500 for a write that happened and may repeat it. Its doc
    says it never raises, but `socket.socket()` (EMFILE, ENFILE, ENOBUFS) is outside the
    try."""
    directory = tmp_path / "db-wake"
    directory.mkdir(mode=0o700)
    (directory / "123-abc.sock").touch()  # some worker's socket (any entry is enough)

    def no_more_files(*_a: object, **_k: object) -> socket.socket:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(wakes_unix.socket, "socket", no_more_files)
    UnixWakes(directory).after_commit(["placement"])  # must not raise


def test_review_a_wake_directory_made_by_someone_else_is_not_trusted(tmp_path: Path) -> None:
    """`mkdir(mode=0o700, exist_ok=True)` keeps a directory that already exists with any
    mode (and owner): a database beside a shared directory (/tmp) lets another local user
    make `<db>-wake` first, world-writable, and then remove or replace every worker's
    socket, plant `*.sock` symlinks the API sends to, or flood the workers. The worker
    should refuse (or fix) a directory that is not its own with mode 0700."""
    directory = tmp_path / "db-wake"
    directory.mkdir()
    os.chmod(directory, 0o777)
    wakes = UnixWakes(directory)
    try:
        sock, path = wakes._bind()
    except OSError:
        return  # refused: fine
    try:
        assert (os.stat(directory).st_mode & 0o077) == 0, "bound in a directory others can write"
    finally:
        sock.close()
        os.unlink(path)
