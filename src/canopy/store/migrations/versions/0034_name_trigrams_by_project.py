"""SQLite's trigram index of names, keyed by project

Revision ID: 0034
Revises: 0033
Create Date: 2026-11-30 09:00:00.000000

0033's index keyed the names in creation order across every project, so "how many of
project P's names contain `web`" could only be read among every project's: the choice
between the index and the page order counted other projects' names (issue 9: a tenant
could learn from it whether others held many names containing some text), and a page read
from the index read them too. Now a server's key is its project's number << 32 plus a
count within the project, so a project's names are one range of the index's rowids,
which FTS5 seeks to (store/name_trigrams.py). `install` rebuilds the index in that layout
from the servers there are. PostgreSQL has nothing here (pg_trgm, 0013).

The downgrade puts back 0033's layout (its tables and triggers, frozen here).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

from canopy.store import name_trigrams

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = "server_name_keys"
TRIGRAMS = "server_name_trigrams"
_DDL_0033 = (
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


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and name_trigrams.installed(bind):
        name_trigrams.install(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite" or not name_trigrams.installed(bind):
        return
    name_trigrams.uninstall(bind)
    for ddl in _DDL_0033:
        bind.execute(text(ddl))
    bind.execute(text(f"INSERT INTO {KEYS} (server_id) SELECT id FROM servers ORDER BY rowid"))
    bind.execute(
        text(
            f"INSERT INTO {TRIGRAMS} (rowid, name) SELECT k.key, s.name FROM {KEYS} AS k "
            "JOIN servers AS s ON s.id = k.server_id"
        )
    )
