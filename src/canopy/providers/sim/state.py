"""The sim cloud's operations on its state: hosts, placement, quotas, servers, key pairs.

Every operation that reads and then writes runs in one `BEGIN IMMEDIATE` transaction,
even when several processes share the file (see db.py for the file itself). Whether
"find by canopy id, else insert" is one of them is the cloud's choice: atomic, as EC2
with a ClientToken, or a lookup and a separate insert, as Nova (see driver.create).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from canopy.domain.errors import (
    CapacityError,
    CloudError,
    InvalidRequest,
    NotFound,
    TransientError,
)
from canopy.domain.states import PowerAction
from canopy.providers.sim import creates, hosts, keypairs
from canopy.providers.sim.creates import Outcome
from canopy.providers.sim.db import StateFile, immediate
from canopy.providers.sim.options import SimSettings
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
    "deleted_at, client_token, key_name, user_data, zone, installation"
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
    zone: str | None = None  # the zone asked for; None lets the cloud choose
    installation: str | None = None  # the installation tag, beside the canopy id
    host: str | None = None  # the host asked for (pinned); None lets the cloud choose
    exclude_hosts: tuple[str, ...] = ()  # hosts an unpinned server must stay off


def _row(values: tuple[Any, ...]) -> ServerRow:
    """A `servers` row, selected as _COLUMNS, as a ServerRow."""
    return ServerRow._make((*values[:12], bool(values[12]), *values[13:]))  # failed: 0/1


class SimStore:
    """The operations of one sim cloud on its state file; each runs in one transaction."""

    def __init__(self, path: Path, settings: SimSettings, cloud: str) -> None:
        self.settings = settings
        self.cloud = cloud
        self.file = StateFile(path, settings, cloud)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` with a connection of its own, on the caller's thread (see StateFile.call)."""
        return await self.file.call(fn)

    def borrowed(self) -> AbstractContextManager[sqlite3.Connection]:
        """A connection held across awaits, for a read in chunks (see StateFile.borrowed)."""
        return self.file.borrowed()

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

    # Writes -----------------------------------------------------------------------------

    @staticmethod
    def existing(conn: sqlite3.Connection, new: NewServer) -> tuple[ServerRow | None, bool]:
        """The live server a create of `new` must answer with, and whether by client token.

        By client token first (EC2's ClientToken), then by canopy id (the driver's own
        lookup, which also finds a server created out of band under that id).
        """
        if new.client_token is not None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM servers WHERE client_token = ? AND deleted_at IS NULL"
                " ORDER BY seq LIMIT 1",
                (new.client_token,),
            ).fetchone()
            if row is not None:
                return _row(row), True
        if new.canopy_id is None:
            return None, False
        return SimStore.find(conn, new.canopy_id), False

    def returned(self, conn: sqlite3.Connection, canopy_id: str, now_us: int) -> ServerRow | None:
        """The live server already tagged `canopy_id`, logged as a create's answer.

        The first step of a create that is not atomic: a read, and a write only when a
        server is found, so nothing is held for the step that follows.
        """
        row = self.find(conn, canopy_id)
        if row is not None:
            with immediate(conn):
                creates.log(
                    conn,
                    at_us=now_us,
                    canopy_id=canopy_id,
                    outcome=Outcome.RETURNED,
                    remote_id=row.remote_id,
                )
        return row

    def create(
        self,
        conn: sqlite3.Connection,
        new: NewServer,
        *,
        atomic: bool,
        refuse: str | None = None,
        logged: bool = True,
    ) -> tuple[ServerRow, bool]:
        """Insert `new` on the first host that fits; (row, inserted).

        With `atomic`, a live server that `existing` finds is returned instead, in the same
        transaction as the insert. `refuse` is an injected capacity failure's message:
        raised after that lookup (a retry of a create that succeeded still finds its
        server) and before anything is written. With `logged` (a create through the API),
        the outcome goes to the create log, refusals included.
        """
        refused: CloudError | None = None
        with immediate(conn):
            if atomic:
                found, matched = self.existing(conn, new)
                if found is not None:
                    if logged:
                        creates.log(
                            conn,
                            at_us=new.now_us,
                            canopy_id=new.canopy_id,
                            outcome=Outcome.RETURNED,
                            remote_id=found.remote_id,
                            token_matched=matched,
                        )
                    return found, False
            try:
                host, zone = self._admit(conn, new, refuse)
            except CloudError as e:
                if not logged:
                    raise
                # Committed with the log row; raised once the transaction is over.
                creates.log(
                    conn,
                    at_us=new.now_us,
                    canopy_id=new.canopy_id,
                    outcome=Outcome.REFUSED,
                    refused=e,
                )
                refused = e
            else:
                return self._insert(conn, new, host, zone, logged), True
        assert refused is not None
        raise refused

    def _admit(
        self, conn: sqlite3.Connection, new: NewServer, refuse: str | None
    ) -> tuple[str, str]:
        """The host `new` goes to and its zone, or the error a real cloud would answer with."""
        zones = self._zones_for(new)
        if refuse is not None:
            raise CapacityError(refuse, cloud=self.cloud, zone=new.zone)
        if new.key_name is not None and keypairs.public_key(conn, new.key_name) is None:
            # As a real cloud answers: the key must have been imported first.
            raise CloudError(
                f"cloud {self.cloud!r}: invalid key_name provided: no keypair {new.key_name!r}",
                cloud=self.cloud,
            )
        hosts.check_quota(conn, self.settings, self.cloud, new.vcpus)
        if new.host is not None:
            return hosts.place_on(conn, self.cloud, new.host, new.vcpus, new.ram_mb, new.disk_gb)
        return hosts.place(
            conn, self.cloud, new.vcpus, new.ram_mb, new.disk_gb, zones, new.exclude_hosts
        )

    def _zones_for(self, new: NewServer) -> list[str] | None:
        """The zones `new` may go to (None: the cloud has none), or the error for a zone
        that does not exist or is full (`full_zones`, EC2's InsufficientInstanceCapacity
        for one AZ)."""
        s = self.settings
        if new.zone is not None:
            if new.zone not in s.zones:
                raise InvalidRequest(
                    f"cloud {self.cloud!r}: invalid availability zone {new.zone!r} "
                    f"(zones: {', '.join(s.zones) or 'none'})"
                )
            if new.zone in s.full_zones:
                raise CapacityError(
                    f"cloud {self.cloud!r}: insufficient capacity in zone {new.zone!r} "
                    "(injected fault)",
                    cloud=self.cloud,
                    zone=new.zone,
                )
            return [new.zone]
        if not s.zones:
            return None
        open_ = [z for z in s.zones if z not in s.full_zones]
        if not open_:
            raise CapacityError(
                f"cloud {self.cloud!r}: insufficient capacity in every zone (injected fault)",
                cloud=self.cloud,
            )
        return open_

    def _insert(
        self, conn: sqlite3.Connection, new: NewServer, host: str, zone: str, logged: bool
    ) -> ServerRow:
        conn.execute(
            "INSERT INTO servers (remote_id, canopy_id, name, host, flavor, vcpus, ram_mb,"
            " disk_gb, image, created_at, ready_at, failed, power, updated_at, client_token,"
            " key_name, user_data, zone, installation)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'on', ?, ?, ?, ?, ?, ?)",
            (
                new.remote_id, new.canopy_id, new.name, host, new.flavor, new.vcpus,
                new.ram_mb, new.disk_gb, new.image, new.now_us, new.ready_at_us,
                int(new.failed), new.now_us, new.client_token, new.key_name, new.user_data,
                zone or None, new.installation,
            ),
        )  # fmt: skip
        hosts.charge(conn, host, new.vcpus, new.ram_mb, new.disk_gb, 1)
        if logged:
            creates.log(
                conn,
                at_us=new.now_us,
                canopy_id=new.canopy_id,
                outcome=Outcome.CREATED,
                remote_id=new.remote_id,
            )
        row = self.get(conn, new.remote_id)
        assert row is not None
        return row

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
            hosts.charge(conn, row.host, row.vcpus, row.ram_mb, row.disk_gb, -1)
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
