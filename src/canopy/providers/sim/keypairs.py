"""The sim's imported keypairs: a table of its state file, answered as Nova and EC2 do."""

from __future__ import annotations

import sqlite3

from canopy.domain.errors import AlreadyExists
from canopy.providers.sim.db import immediate


def public_key(conn: sqlite3.Connection, name: str) -> str | None:
    """The public key imported under `name`, if any."""
    row = conn.execute("SELECT public_key FROM keypairs WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def every(conn: sqlite3.Connection) -> dict[str, str]:
    """Every imported key: name -> public key."""
    rows = conn.execute("SELECT name, public_key FROM keypairs ORDER BY name").fetchall()
    return {str(n): str(k) for n, k in rows}


def import_key(conn: sqlite3.Connection, cloud: str, name: str, key: str, now_us: int) -> None:
    """Store `key` as `name`; AlreadyExists if the name is taken, by any key.

    As Nova (409 "Key pair 'x' already exists") and EC2 (InvalidKeyPair.Duplicate)
    answer: a name is never overwritten, and importing the same key again is refused
    too. Canopy puts the key's fingerprint in the name (services.keypairs), so for it
    a refusal means the key is already there.
    """
    with immediate(conn):
        if public_key(conn, name) is not None:
            raise AlreadyExists(f"cloud {cloud!r}: Key pair '{name}' already exists.", cloud=cloud)
        conn.execute(
            "INSERT INTO keypairs (name, public_key, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (name, key, now_us, now_us),
        )
