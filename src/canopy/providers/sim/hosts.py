"""The room of one sim cloud: its hosts' usage, first-fit placement and account quotas.

Each host keeps used_* counters, changed in the same transaction as every insert and
delete of a server (see state.py), so placement and quotas read one row per host.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from canopy.domain.errors import CapacityError, CloudQuotaError
from canopy.providers.sim.options import SimSettings


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


def usage(conn: sqlite3.Connection) -> Usage:
    """Size and use summed over all hosts (what capacity() and quotas read)."""
    values = conn.execute(
        "SELECT COUNT(*), TOTAL(vcpus), TOTAL(ram_mb), TOTAL(disk_gb), TOTAL(used_vcpus),"
        " TOTAL(used_ram_mb), TOTAL(used_disk_gb), TOTAL(used_instances) FROM hosts"
    ).fetchone()
    return Usage(*(int(v) for v in values))


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


def check_quota(conn: sqlite3.Connection, settings: SimSettings, cloud: str, vcpus: int) -> None:
    """CloudQuotaError if one more server of `vcpus` passes the account's quotas."""
    s = settings
    if s.quota_instances is None and s.quota_vcpus is None:
        return
    used = usage(conn)
    if s.quota_instances is not None and used.used_instances + 1 > s.quota_instances:
        raise CloudQuotaError(
            f"cloud {cloud!r}: quota exceeded for instances: requested 1, "
            f"{used.used_instances} of {s.quota_instances} in use",
            cloud=cloud,
        )
    if s.quota_vcpus is not None and used.used_vcpus + vcpus > s.quota_vcpus:
        raise CloudQuotaError(
            f"cloud {cloud!r}: quota exceeded for cores: requested {vcpus}, "
            f"{used.used_vcpus} of {s.quota_vcpus} in use",
            cloud=cloud,
        )


def place(
    conn: sqlite3.Connection,
    cloud: str,
    vcpus: int,
    ram_mb: int,
    disk_gb: int,
    zones: list[str] | None = None,
    exclude: tuple[str, ...] = (),
) -> tuple[str, str]:
    """First fit over hosts in order, within `zones` if given and off the hosts in
    `exclude` (those registered for reservation): (host, its zone).

    CapacityError, saying why, if none fits; it names the zone when one zone was asked for
    (a capacity error is per zone, as EC2's InsufficientInstanceCapacity is).
    """
    where = "vcpus - used_vcpus >= ? AND ram_mb - used_ram_mb >= ? AND disk_gb - used_disk_gb >= ?"
    args: list[object] = [vcpus, ram_mb, disk_gb]
    scope = ""
    if zones is not None:
        scope = f" AND zone IN ({', '.join('?' * len(zones))})"
    if exclude:
        scope += f" AND id NOT IN ({', '.join('?' * len(exclude))})"
    scoped = [*(zones or []), *exclude]
    found = conn.execute(
        f"SELECT id, zone FROM hosts WHERE {where}{scope} ORDER BY position LIMIT 1",
        [*args, *scoped],
    ).fetchone()
    if found is not None:
        return str(found[0]), str(found[1])
    want = f"{vcpus} vcpus, {ram_mb} MB RAM and {disk_gb} GB disk"
    zone = zones[0] if zones is not None and len(zones) == 1 else None
    where_ = f" in zone {zone!r}" if zone is not None else ""
    hosts, v, r, d = conn.execute(
        "SELECT COUNT(*), MAX(vcpus - used_vcpus), MAX(ram_mb - used_ram_mb),"
        f" MAX(disk_gb - used_disk_gb) FROM hosts WHERE 1 = 1{scope}",
        scoped,
    ).fetchone()
    if hosts == 0:
        held = f", or all are held for reservations ({len(exclude)})" if exclude else ""
        raise CapacityError(
            f"no valid host on cloud {cloud!r}{where_}: it has no hosts{held} (wanted {want})",
            cloud=cloud,
            zone=zone,
        )
    raise CapacityError(
        f"no valid host on cloud {cloud!r}{where_}: none of its {hosts} hosts has {want} "
        f"free (most free on any host: {v} vcpus, {r} MB RAM, {d} GB disk)",
        cloud=cloud,
        zone=zone,
    )


def place_on(
    conn: sqlite3.Connection, cloud: str, host: str, vcpus: int, ram_mb: int, disk_gb: int
) -> tuple[str, str]:
    """The pinned host `host` if the server fits there: (host, its zone); CapacityError
    saying what it has free if not, or that there is no such host."""
    row = conn.execute(
        "SELECT zone, vcpus - used_vcpus, ram_mb - used_ram_mb, disk_gb - used_disk_gb"
        " FROM hosts WHERE id = ?",
        (host,),
    ).fetchone()
    if row is None:
        raise CapacityError(f"no valid host on cloud {cloud!r}: no host {host[:80]!r}", cloud=cloud)
    zone, v, r, d = row
    if v < vcpus or r < ram_mb or d < disk_gb:
        raise CapacityError(
            f"no valid host on cloud {cloud!r}: host {host!r} has {v} vcpus, {r} MB RAM and "
            f"{d} GB disk free (wanted {vcpus}, {ram_mb} and {disk_gb})",
            cloud=cloud,
        )
    return host, str(zone)


def charge(
    conn: sqlite3.Connection, host: str, vcpus: int, ram_mb: int, disk_gb: int, n: int
) -> None:
    """Add `n` servers of this size to the host's usage (n = -1 takes one away)."""
    conn.execute(
        "UPDATE hosts SET used_vcpus = used_vcpus + ?, used_ram_mb = used_ram_mb + ?,"
        " used_disk_gb = used_disk_gb + ?, used_instances = used_instances + ?"
        " WHERE id = ?",
        (vcpus * n, ram_mb * n, disk_gb * n, n, host),
    )


def listing(conn: sqlite3.Connection) -> list[tuple[str, int, int, int, str]]:
    """Every host in order: (id, vcpus, ram_mb, disk_gb, zone)."""
    rows = conn.execute(
        "SELECT id, vcpus, ram_mb, disk_gb, zone FROM hosts ORDER BY position"
    ).fetchall()
    return [(str(r[0]), int(r[1]), int(r[2]), int(r[3]), str(r[4])) for r in rows]
