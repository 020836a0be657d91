"""A trigram index of server names on SQLite: `?name=web` read from an index.

`openstack server show NAME` sends `?name=NAME`, a regular expression searched anywhere
in the name: no B-tree answers "contains", and reading the project's rows in page order
to test each one costs 50-77 ms at 100,000 servers. PostgreSQL answers it from pg_trgm
(migration 0013); SQLite's FTS5 has a `trigram` tokenizer that does the same: a phrase
query `"web0-42"` finds the names containing that text from the index.

Two tables, both SQLite-only and outside the models (migrate.UNMODELLED_TABLES):

- `server_name_keys` (key INTEGER PRIMARY KEY, server_id UNIQUE): a stable integer per
  server. An FTS5 table is keyed by an integer rowid; `servers` has a text primary key,
  so its own rowid is implicit and VACUUM may renumber it, which would leave an index
  keyed on it pointing at other servers. A key of an INTEGER PRIMARY KEY never moves.
- `server_name_trigrams`: FTS5, contentless (the names are not stored twice), rowid = the
  key, case-sensitive trigrams.

Triggers on `servers` keep both exact on every write path (the ORM, Core bulk inserts,
raw SQL): an insert adds a key and the name's trigrams, a rename deletes the old name's
trigrams and adds the new one's, a delete removes both. A contentless FTS5 table deletes
by being given the text it indexed, which the trigger has (`old.name`).

What the index answers is a candidate set only: the page statement still tests the
pattern itself on every candidate, so the answer is the pattern's, as before.

A migration that rebuilds `servers` (Alembic's batch mode on SQLite copies the table and
drops the old one, and its triggers with it) must call `install` again afterwards; a
migration test checks that the index matches the table at head.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Integer, String, column, table, text
from sqlalchemy.engine import Connection

log = logging.getLogger("canopy.migrate")

KEYS = "server_name_keys"
TRIGRAMS = "server_name_trigrams"
TRIGGERS = (
    "servers_name_insert",
    "servers_name_rename",
    "servers_name_reid",
    "servers_name_delete",
)
# Shortest text the index answers: a trigram index knows nothing of one or two characters.
MIN_LITERAL = 3

keys = table(KEYS, column("key", Integer), column("server_id", String))
trigrams = table(TRIGRAMS, column("rowid", Integer), column(TRIGRAMS, String))

_DDL = (
    f"CREATE TABLE {KEYS} (key INTEGER PRIMARY KEY, server_id VARCHAR(64) NOT NULL UNIQUE)",
    f"CREATE VIRTUAL TABLE {TRIGRAMS} USING fts5("
    "name, content='', columnsize=0, tokenize='trigram case_sensitive 1')",
    f"""CREATE TRIGGER servers_name_insert AFTER INSERT ON servers BEGIN
        INSERT INTO {KEYS} (server_id) VALUES (new.id);
        INSERT INTO {TRIGRAMS} (rowid, name) VALUES (last_insert_rowid(), new.name);
    END""",
    f"""CREATE TRIGGER servers_name_rename AFTER UPDATE OF name ON servers
    WHEN old.name IS NOT new.name BEGIN
        INSERT INTO {TRIGRAMS} ({TRIGRAMS}, rowid, name)
            SELECT 'delete', key, old.name FROM {KEYS} WHERE server_id = old.id;
        INSERT INTO {TRIGRAMS} (rowid, name)
            SELECT key, new.name FROM {KEYS} WHERE server_id = new.id;
    END""",
    f"""CREATE TRIGGER servers_name_reid AFTER UPDATE OF id ON servers
    WHEN old.id IS NOT new.id BEGIN
        UPDATE {KEYS} SET server_id = new.id WHERE server_id = old.id;
    END""",
    f"""CREATE TRIGGER servers_name_delete AFTER DELETE ON servers BEGIN
        INSERT INTO {TRIGRAMS} ({TRIGRAMS}, rowid, name)
            SELECT 'delete', key, old.name FROM {KEYS} WHERE server_id = old.id;
        DELETE FROM {KEYS} WHERE server_id = old.id;
    END""",
)


def supported(conn: Connection) -> bool:
    """Whether this SQLite has FTS5 with the trigram tokenizer (3.34 and later)."""
    try:
        conn.execute(
            text("CREATE VIRTUAL TABLE temp._canopy_probe USING fts5(x, tokenize=trigram)")
        )
    except Exception:  # OperationalError: no fts5, or no trigram tokenizer
        return False
    conn.execute(text("DROP TABLE temp._canopy_probe"))
    return True


def installed(conn: Connection) -> bool:
    """Whether the index is in this database (a SQLite migrated where FTS5 was there)."""
    row = conn.execute(
        text("SELECT count(*) FROM sqlite_master WHERE name = :t AND type = 'table'"),
        {"t": TRIGRAMS},
    ).scalar_one()
    return bool(row)


def install(conn: Connection) -> bool:
    """Create the index, its triggers, and fill it from the servers there are (replacing
    an index already there). False, logged, where this SQLite cannot hold it: then
    `?name=` patterns read the project's rows as before."""
    if not supported(conn):
        log.warning(
            "this SQLite has no FTS5 trigram tokenizer (SQLite 3.34 or later): ?name= "
            "patterns are answered without a name index"
        )
        return False
    uninstall(conn)
    for ddl in _DDL:
        conn.execute(text(ddl))
    conn.execute(text(f"INSERT INTO {KEYS} (server_id) SELECT id FROM servers ORDER BY rowid"))
    conn.execute(
        text(
            f"INSERT INTO {TRIGRAMS} (rowid, name) SELECT k.key, s.name FROM {KEYS} AS k "
            "JOIN servers AS s ON s.id = k.server_id"
        )
    )
    return True


def uninstall(conn: Connection) -> None:
    for trigger in TRIGGERS:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
    conn.execute(text(f"DROP TABLE IF EXISTS {TRIGRAMS}"))
    conn.execute(text(f"DROP TABLE IF EXISTS {KEYS}"))


def phrase_query(literals: Sequence[str]) -> str | None:
    """The FTS5 query finding names that contain every one of `literals` (those of at
    least MIN_LITERAL characters), or None if none is that long."""
    usable = [t for t in literals if len(t) >= MIN_LITERAL]
    if not usable:
        return None
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in usable)
