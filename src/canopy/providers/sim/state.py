"""The sim cloud's operations on its state: hosts, placement, quotas and servers.

Every operation that reads and then writes runs in one `BEGIN IMMEDIATE` transaction,
so "find by canopy id, else insert" cannot create a duplicate even when several
processes share the file (see db.py for the file itself).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from canopy.config import SimSettings
from canopy.domain.errors import (
    CapacityError,
    CloudError,
    CloudQuotaError,
    InvalidRequest,
    NotFound,
    TransientError,
)
from canopy.domain.states import PowerAction
from canopy.providers.sim.db import StateFile, immediate
from canopy.providers.sim.status import (
    NATIVE_TO_REMOTE,
    NativeStatus,
    ServerRow,
    native_status,
)

T = TypeVar("T")

_COLUMNS = (
    "seq, remote_id, canopy_id, name, host, flavor, vcpus, ram_mb, disk_gb, image, "
    "created_at, ready_at, failed, power, transition, transition_until, updated_at, "
    "deleted_at, client_token, key_name, user_data"
)

_VERB = {
    PowerAction.START: "start",
    PowerAction.STOP: "stop",
    PowerAction.REBOOT_SOFT: "reboot",
    PowerAction.REBOOT_HARD: "reboot",
}


@dataclass(frozen=True, slots=True)
class NewServer:
    """A server about to be inserted: everything decided before the transaction."""

    remote_id: str
    canopy_id: str | None
    name: str
    flavor: str | None
    vcpus: int
    ram_mb: int
    disk_gb: int
    image: str
    now_us: int
    ready_at_us: int
    failed: bool
    client_token: str | None
    key_name: str | None = None
    user_data: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Totals over all hosts."""

    hosts: int
    vcpus: int
    ram_mb: int
    disk_gb: int
    used_vcpus: int
    used_ram_mb: int
    used_disk_gb: int
    used_instances: int


def _row(values: tuple[Any, ...]) -> ServerRow:
    """A `servers` row, selected as _COLUMNS, as a ServerRow."""
    v = list(values)
    v[12] = bool(v[12])  # failed
    return ServerRow(*v)


class SimStore:
    """The operations of one sim cloud on its state file; each runs in one transaction."""

    def __init__(self, path: Path, settings: SimSettings, cloud: str) -> None:
        self.settings = settings
        self.cloud = cloud
        self.file = StateFile(path, settings, cloud)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` with a connection of its own, in a worker thread."""
        return await self.file.call(fn)

    def close(self) -> None:
        """Close the file's idle connections (see StateFile.close)."""
        self.file.close()

    @staticmethod
    def find(conn: sqlite3.Connection, canopy_id: str) -> ServerRow | None:
        """The oldest live server tagged `canopy_id`."""
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM servers WHERE canopy_id = ? AND deleted_at IS NULL "
            "ORDER BY seq LIMIT 1",
            (canopy_id,),
        ).fetchone()
        return _row(row) if row else None

    @staticmethod
    def get(
        conn: sqlite3.Connection, remote_id: str, include_deleted: bool = False
    ) -> ServerRow | None:
        """One server by remote id; a deleted one only with `include_deleted`."""
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM servers WHERE remote_id = ?", (remote_id,)
        ).fetchone()
        if row is None:
            return None
        server = _row(row)
        if server.deleted_at is not None and not include_deleted:
            return None
        return server

    @staticmethod
    def servers(
        conn: sqlite3.Connection, *, tagged_only: bool, include_deleted: bool
    ) -> list[ServerRow]:
        """All servers, oldest first, narrowed to tagged and/or live ones."""
        where = []
        if tagged_only:
            where.append("canopy_id IS NOT NULL")
        if not include_deleted:
            where.append("deleted_at IS NULL")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = conn.execute(f"SELECT {_COLUMNS} FROM servers{clause} ORDER BY seq").fetchall()
        return [_row(r) for r in rows]

    @staticmethod
    def changed(conn: sqlite3.Connection, since_us: int, now_us: int) -> list[ServerRow]:
        """Tagged servers whose change time (status.changed_at) is at or after `since_us`."""
        # The same formula as status.changed_at, written as ORs so each arm can use its
        # index: max(a, b, c) >= x exactly when one of them is.
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM servers WHERE canopy_id IS NOT NULL AND ("
            " updated_at >= :since"
            " OR (deleted_at IS NULL AND ("
            "   (ready_at >= :since AND ready_at <= :now)"
            "   OR (transition_until >= :since AND transition_until <= :now))))"
            " ORDER BY seq",
            {"since": since_us, "now": now_us},
        ).fetchall()
        return [_row(r) for r in rows]

    @staticmethod
    def usage(conn: sqlite3.Connection) -> Usage:
        """Size and use summed over all hosts (what capacity() and quotas read)."""
        values = conn.execute(
            "SELECT COUNT(*), TOTAL(vcpus), TOTAL(ram_mb), TOTAL(disk_gb), TOTAL(used_vcpus),"
            " TOTAL(used_ram_mb), TOTAL(used_disk_gb), TOTAL(used_instances) FROM hosts"
        ).fetchone()
        return Usage(*(int(v) for v in values))

    @staticmethod
    def usage_drift(conn: sqlite3.Connection) -> list[str]:
        """Hosts whose kept usage differs from the sum over their live servers (want none)."""
        rows = conn.execute(
            "SELECT h.id FROM hosts h LEFT JOIN ("
            " SELECT host, SUM(vcpus) v, SUM(ram_mb) r, SUM(disk_gb) d, COUNT(*) n"
            " FROM servers WHERE deleted_at IS NULL GROUP BY host) s ON s.host = h.id"
            " WHERE h.used_vcpus != COALESCE(s.v, 0) OR h.used_ram_mb != COALESCE(s.r, 0)"
            " OR h.used_disk_gb != COALESCE(s.d, 0) OR h.used_instances != COALESCE(s.n, 0)"
        ).fetchall()
        return [r[0] for r in rows]

    # Writes -----------------------------------------------------------------------------

    def create(
        self,
        conn: sqlite3.Connection,
        new: NewServer,
        *,
        reuse_existing: bool,
        refuse: str | None = None,
    ) -> tuple[ServerRow, bool]:
        """Insert `new` on the first host that fits; (row, inserted).

        With `reuse_existing`, a live server already tagged `new.canopy_id` is returned
        instead. `refuse` is an injected capacity failure's message: raised after that
        lookup (a retry of a create that succeeded still finds its server) and before
        anything is written.
        """
        with immediate(conn):
            if reuse_existing and new.canopy_id is not None:
                existing = self.find(conn, new.canopy_id)
                if existing is not None:
                    return existing, False
            if refuse is not None:
                raise CapacityError(refuse, cloud=self.cloud)
            if new.key_name is not None and self.keypair(conn, new.key_name) is None:
                # As a real cloud answers: the key must have been imported first.
                raise CloudError(
                    f"cloud {self.cloud!r}: invalid key_name provided: no keypair {new.key_name!r}",
                    cloud=self.cloud,
                )
            self._check_quota(conn, new.vcpus)
            host = self._place(conn, new)
            conn.execute(
                "INSERT INTO servers (remote_id, canopy_id, name, host, flavor, vcpus, ram_mb,"
                " disk_gb, image, created_at, ready_at, failed, power, updated_at, client_token,"
                " key_name, user_data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'on', ?, ?, ?, ?)",
                (
                    new.remote_id, new.canopy_id, new.name, host, new.flavor, new.vcpus,
                    new.ram_mb, new.disk_gb, new.image, new.now_us, new.ready_at_us,
                    int(new.failed), new.now_us, new.client_token, new.key_name, new.user_data,
                ),
            )  # fmt: skip
            self._charge(conn, host, new.vcpus, new.ram_mb, new.disk_gb, 1)
            row = self.get(conn, new.remote_id)
            assert row is not None
            return row, True

    @staticmethod
    def keypair(conn: sqlite3.Connection, name: str) -> str | None:
        """The public key imported under `name`, if any."""
        row = conn.execute("SELECT public_key FROM keypairs WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def keypairs(conn: sqlite3.Connection) -> dict[str, str]:
        """Every imported key: name -> public key."""
        rows = conn.execute("SELECT name, public_key FROM keypairs ORDER BY name").fetchall()
        return {str(n): str(k) for n, k in rows}

    def import_keypair(
        self, conn: sqlite3.Connection, name: str, public_key: str, now_us: int
    ) -> bool:
        """Store `public_key` as `name`; True if that changed anything.

        Importing the same key again is a no-op, so a retried push is harmless; a different
        key under the same name replaces the old one (the name is canopy's, per user and key
        name, and a re-created keypair must win).
        """
        with immediate(conn):
            current = self.keypair(conn, name)
            if current == public_key:
                return False
            if current is None:
                conn.execute(
                    "INSERT INTO keypairs (name, public_key, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?)",
                    (name, public_key, now_us, now_us),
                )
            else:
                conn.execute(
                    "UPDATE keypairs SET public_key = ?, updated_at = ? WHERE name = ?",
                    (public_key, now_us, name),
                )
            return True

    def _check_quota(self, conn: sqlite3.Connection, vcpus: int) -> None:
        """CloudQuotaError if one more server of `vcpus` passes the account's quotas."""
        s = self.settings
        if s.quota_instances is None and s.quota_vcpus is None:
            return
        used = self.usage(conn)
        if s.quota_instances is not None and used.used_instances + 1 > s.quota_instances:
            raise CloudQuotaError(
                f"cloud {self.cloud!r}: quota exceeded for instances: requested 1, "
                f"{used.used_instances} of {s.quota_instances} in use",
                cloud=self.cloud,
            )
        if s.quota_vcpus is not None and used.used_vcpus + vcpus > s.quota_vcpus:
            raise CloudQuotaError(
                f"cloud {self.cloud!r}: quota exceeded for cores: requested {vcpus}, "
                f"{used.used_vcpus} of {s.quota_vcpus} in use",
                cloud=self.cloud,
            )

    def _place(self, conn: sqlite3.Connection, new: NewServer) -> str:
        """First fit over hosts in order; CapacityError, saying why, if none fits."""
        found = conn.execute(
            "SELECT id FROM hosts WHERE vcpus - used_vcpus >= ? AND ram_mb - used_ram_mb >= ?"
            " AND disk_gb - used_disk_gb >= ? ORDER BY position LIMIT 1",
            (new.vcpus, new.ram_mb, new.disk_gb),
        ).fetchone()
        if found is not None:
            return str(found[0])
        want = f"{new.vcpus} vcpus, {new.ram_mb} MB RAM and {new.disk_gb} GB disk"
        hosts, v, r, d = conn.execute(
            "SELECT COUNT(*), MAX(vcpus - used_vcpus), MAX(ram_mb - used_ram_mb),"
            " MAX(disk_gb - used_disk_gb) FROM hosts"
        ).fetchone()
        if hosts == 0:
            raise CapacityError(
                f"no valid host on cloud {self.cloud!r}: it has no hosts (wanted {want})",
                cloud=self.cloud,
            )
        raise CapacityError(
            f"no valid host on cloud {self.cloud!r}: none of its {hosts} hosts has {want} "
            f"free (most free on any host: {v} vcpus, {r} MB RAM, {d} GB disk)",
            cloud=self.cloud,
        )

    @staticmethod
    def _charge(
        conn: sqlite3.Connection, host: str, vcpus: int, ram_mb: int, disk_gb: int, n: int
    ) -> None:
        """Add `n` servers of this size to the host's usage (n = -1 takes one away)."""
        conn.execute(
            "UPDATE hosts SET used_vcpus = used_vcpus + ?, used_ram_mb = used_ram_mb + ?,"
            " used_disk_gb = used_disk_gb + ?, used_instances = used_instances + ?"
            " WHERE id = ?",
            (vcpus * n, ram_mb * n, disk_gb * n, n, host),
        )

    def delete(self, conn: sqlite3.Connection, remote_id: str, now_us: int) -> bool:
        """Soft-delete a live server and free its host's capacity; False if none."""
        with immediate(conn):
            row = self.get(conn, remote_id)
            if row is None:
                return False
            conn.execute(
                "UPDATE servers SET deleted_at = ?, updated_at = ? WHERE seq = ?",
                (now_us, now_us, row.seq),
            )
            self._charge(conn, row.host, row.vcpus, row.ram_mb, row.disk_gb, -1)
            return True

    def power(
        self,
        conn: sqlite3.Connection,
        remote_id: str,
        action: PowerAction,
        now_us: int,
        until_us: int,
    ) -> None:
        """Start, stop or reboot a server; the action completes at `until_us`.

        Repeating an action that is under way or already done is a no-op, so a
        level-triggered controller may retry freely. A different action while one is
        under way fails with TransientError: it will be accepted once the first ends.
        """
        verb = _VERB[action]
        with immediate(conn):
            row = self.get(conn, remote_id)
            if row is None:
                raise NotFound(f"server {remote_id} not found on cloud {self.cloud!r}")
            status = native_status(row, now_us)
            if status in (NativeStatus.BUILDING, NativeStatus.ERROR):
                raise InvalidRequest(f"cannot {verb} a server in state {NATIVE_TO_REMOTE[status]}")
            if status in (
                NativeStatus.POWERING_OFF,
                NativeStatus.POWERING_ON,
                NativeStatus.REBOOTING,
            ):
                if row.transition == verb:
                    return
                raise TransientError(
                    f"cannot {verb} server {remote_id} on cloud {self.cloud!r}: a "
                    f"{row.transition} is in progress; try again shortly",
                    cloud=self.cloud,
                )
            if status is NativeStatus.ACTIVE:
                if verb == "start":
                    return
                power = "off" if verb == "stop" else "on"
            else:  # SHUTOFF
                if verb == "stop":
                    return
                if verb == "reboot":
                    raise InvalidRequest("cannot reboot a server in state stopped")
                power = "on"
            conn.execute(
                "UPDATE servers SET power = ?, transition = ?, transition_until = ?,"
                " updated_at = ? WHERE seq = ?",
                (power, verb, until_us, now_us, row.seq),
            )
