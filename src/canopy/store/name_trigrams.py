"""A trigram index of server names on SQLite: `?name=web` read from an index.

`openstack server show NAME` sends `?name=NAME`, a regular expression searched anywhere
in the name: no B-tree answers "contains", and reading the project's rows in page order
to test each one costs 50-77 ms at 100,000 servers. PostgreSQL answers it from pg_trgm
(migration 0013); SQLite's FTS5 has a `trigram` tokenizer that does the same: a phrase
query `"web0-42"` finds the names containing that text from the index.

Three tables, all SQLite-only and outside the models (migrate.UNMODELLED_TABLES):

- `server_name_projects` (number INTEGER PRIMARY KEY, project_id UNIQUE): a number per
  project that has (or had) servers, never reused or renumbered.
- `server_name_keys` (key INTEGER PRIMARY KEY, server_id UNIQUE): a stable integer per
  server. An FTS5 table is keyed by an integer rowid; `servers` has a text primary key,
  so its own rowid is implicit and VACUUM may renumber it, which would leave an index
  keyed on it pointing at other servers. A key of an INTEGER PRIMARY KEY never moves.
  A server's key is `(project number << 32) + n`, n counting up within the project: each
  project's servers are one range of keys (`project_range`).
- `server_name_trigrams`: FTS5, contentless (the names are not stored twice), rowid = the
  key, case-sensitive trigrams.

Because a project is a range of rowids, "the names of project P containing `web`" is one
FTS5 query, `MATCH '"web"' AND rowid >= lo AND rowid < hi`, which FTS5 answers by seeking
to `lo` in each trigram's list: its cost and its answer do not depend on how many names
other projects hold (migration 0034; before it, keys were global and a project's count
of candidates was read among every project's, a side channel: issue 9).

Triggers on `servers` keep them exact on every write path (the ORM, Core bulk inserts,
raw SQL): an insert adds the project's number if new, a key and the name's trigrams; a
change of name, id or project deletes the old trigrams and key and adds new ones; a
delete removes both. A contentless FTS5 table deletes by being given the text it
indexed, which the trigger has (`old.name`).

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

PROJECTS = "server_name_projects"
KEYS = "server_name_keys"
TRIGRAMS = "server_name_trigrams"
TRIGGERS = ("servers_name_insert", "servers_name_update", "servers_name_delete")
# Triggers of the layout before 0034 (a rename and a change of id had one each).
OLD_TRIGGERS = ("servers_name_rename", "servers_name_reid")
# Shortest text the index answers: a trigram index knows nothing of one or two characters.
MIN_LITERAL = 3
# A project's keys: (number << PROJECT_BITS) + 1 and up (4 billion creates per project).
PROJECT_BITS = 32

keys = table(KEYS, column("key", Integer), column("server_id", String))
trigrams = table(TRIGRAMS, column("rowid", Integer), column(TRIGRAMS, String))

# The project's number (added if new), then a key after the project's last one, then the
# name's trigrams under that key.
_ADD = f"""
        INSERT INTO {PROJECTS} (project_id) SELECT new.project_id
            WHERE NOT EXISTS (SELECT 1 FROM {PROJECTS} WHERE project_id = new.project_id);
        INSERT INTO {KEYS} (key, server_id)
            SELECT coalesce((SELECT max(k.key) FROM {KEYS} AS k
                    WHERE k.key > p.number << {PROJECT_BITS}
                    AND k.key < (p.number + 1) << {PROJECT_BITS}),
                p.number << {PROJECT_BITS}) + 1, new.id
            FROM {PROJECTS} AS p WHERE p.project_id = new.project_id;
        INSERT INTO {TRIGRAMS} (rowid, name) VALUES (last_insert_rowid(), new.name);"""
_REMOVE = f"""
        INSERT INTO {TRIGRAMS} ({TRIGRAMS}, rowid, name)
            SELECT 'delete', key, old.name FROM {KEYS} WHERE server_id = old.id;
        DELETE FROM {KEYS} WHERE server_id = old.id;"""

_DDL = (
    f"CREATE TABLE {PROJECTS} (number INTEGER PRIMARY KEY, project_id VARCHAR(64) NOT NULL UNIQUE)",
    f"CREATE TABLE {KEYS} (key INTEGER PRIMARY KEY, server_id VARCHAR(64) NOT NULL UNIQUE)",
    f"CREATE VIRTUAL TABLE {TRIGRAMS} USING fts5("
    "name, content='', columnsize=0, tokenize='trigram case_sensitive 1')",
    f"CREATE TRIGGER servers_name_insert AFTER INSERT ON servers BEGIN {_ADD}\n    END",
    # One trigger for the three columns (not one each): an UPDATE changing two of them
    # would run two triggers in an order SQLite does not promise, the second deleting
    # trigrams the first had already replaced.
    f"""CREATE TRIGGER servers_name_update AFTER UPDATE OF id, name, project_id ON servers
    WHEN old.id IS NOT new.id OR old.name IS NOT new.name
        OR old.project_id IS NOT new.project_id BEGIN {_REMOVE} {_ADD}
    END""",
    f"CREATE TRIGGER servers_name_delete AFTER DELETE ON servers BEGIN {_REMOVE}\n    END",
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
    conn.execute(
        text(
            f"INSERT INTO {PROJECTS} (project_id) SELECT project_id FROM servers "
            "GROUP BY project_id ORDER BY min(rowid)"
        )
    )
    conn.execute(
        text(
            f"INSERT INTO {KEYS} (key, server_id) SELECT (p.number << {PROJECT_BITS}) + "
            "row_number() OVER (PARTITION BY s.project_id ORDER BY s.rowid), s.id "
            f"FROM servers AS s JOIN {PROJECTS} AS p ON p.project_id = s.project_id"
        )
    )
    conn.execute(
        text(
            f"INSERT INTO {TRIGRAMS} (rowid, name) SELECT k.key, s.name FROM {KEYS} AS k "
            "JOIN servers AS s ON s.id = k.server_id"
        )
    )
    return True


def uninstall(conn: Connection) -> None:
    for trigger in (*TRIGGERS, *OLD_TRIGGERS):
        conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
    conn.execute(text(f"DROP TABLE IF EXISTS {TRIGRAMS}"))
    conn.execute(text(f"DROP TABLE IF EXISTS {KEYS}"))
    conn.execute(text(f"DROP TABLE IF EXISTS {PROJECTS}"))


def in_project(rowid: str, project: str) -> str:
    """SQL: `rowid` (a key) is one of the servers of the project bound as `:project`,
    a range FTS5 seeks to (none if the project has no number: it has no servers)."""
    number = f"(SELECT number FROM {PROJECTS} WHERE project_id = :{project})"
    return f"{rowid} >= {number} << {PROJECT_BITS} AND {rowid} < ({number} + 1) << {PROJECT_BITS}"


def phrase_query(literals: Sequence[str]) -> str | None:
    """The FTS5 query finding names that contain every one of `literals` (those of at
    least MIN_LITERAL characters), or None if none is that long."""
    usable = [t for t in literals if len(t) >= MIN_LITERAL]
    if not usable:
        return None
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in usable)
