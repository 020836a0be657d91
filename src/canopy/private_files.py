"""The data dir and the files in it are readable by their owner only.

`canopy.db` holds password hashes, `clouds.yaml` the admin's password, the sim state files
every server; all of them are created 0600 in a 0700 directory whatever the umask, and a
file or directory found with looser modes (made by an older canopy, a copy, an editor) is
tightened at start, with a warning naming it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger("canopy.files")

DIR_MODE = 0o700
FILE_MODE = 0o600
# Files SQLite writes beside a database; they take the database file's mode when created.
SQLITE_SIDECARS = ("-wal", "-shm", "-journal", ".lock")


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for another database or an in-memory one)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database
    if not name or name == ":memory:" or name.startswith("file::memory:"):
        return None
    return Path(name)


def with_sidecars(paths: Iterable[Path]) -> list[Path]:
    """Each SQLite file followed by its -wal, -shm, -journal and lock files."""
    out: list[Path] = []
    for p in paths:
        out.append(p)
        out.extend(p.with_name(p.name + suffix) for suffix in SQLITE_SIDECARS)
    return out


def make_private_dir(path: Path) -> list[str]:
    """Create `path` (and its parents) with the directory itself 0700; tighten it if it
    exists with group or other bits. Returns what was fixed."""
    if not path.exists():
        path.mkdir(parents=True, mode=DIR_MODE)
        os.chmod(path, DIR_MODE)  # mkdir's mode is masked by the umask; be exact
        return []
    return _tighten(path, DIR_MODE)


def create_private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists (whatever the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, FILE_MODE)


def make_private(files: Iterable[Path]) -> list[str]:
    """Tighten every existing file in `files` to 0600; returns what was fixed."""
    fixed: list[str] = []
    for f in files:
        fixed.extend(_tighten(f, FILE_MODE))
    return fixed


def data_dir_files(data_dir: Path) -> list[Path]:
    """The secret-bearing files canopy keeps in its data dir, whatever made them."""
    if not data_dir.is_dir():
        return []
    out: list[Path] = []
    for p in sorted(data_dir.iterdir()):
        if not p.is_file():
            continue
        if p.suffix in (".db", ".key", ".yaml", ".yml") or any(
            p.name.endswith(".db" + s) for s in SQLITE_SIDECARS
        ):
            out.append(p)
    return out


def _tighten(path: Path, mode: int) -> list[str]:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return []
    if stat.S_ISLNK(st.st_mode):
        return []  # a link's own mode means nothing; its target is checked if listed
    current = stat.S_IMODE(st.st_mode)
    if current & 0o077 == 0:
        return []
    wanted = current & mode
    try:
        os.chmod(path, wanted)
    except OSError as e:
        log.warning("%s is mode %04o and cannot be made private: %s", path, current, e.strerror)
        return []
    message = f"{path} was mode {current:04o}; made it {wanted:04o} (private to its owner)"
    log.warning("%s", message)
    return [message]
