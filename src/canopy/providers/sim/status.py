"""How a sim server's status follows from its timestamps, and its translation for canopy.

The sim runs no background threads: a server's status is a pure function of its row and
the current time. `native_status` derives the sim's own (Nova-like) status, and
`NATIVE_TO_REMOTE` is the one table that translates it into the shared `RemoteState`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from canopy.domain.specs import RemoteServer
from canopy.domain.states import RemoteState

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """A datetime as integer microseconds since the epoch (exact, and comparable in SQL)."""
    if moment.tzinfo is None:
        # Naive datetimes are taken as UTC, as Nova does for changes-since.
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def from_us(us: int) -> datetime:
    """The inverse of `to_us`: an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


class NativeStatus(StrEnum):
    """The sim cloud's own server statuses, as a real cloud's API would report them."""

    BUILDING = "BUILDING"
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"
    POWERING_OFF = "POWERING_OFF"
    SHUTOFF = "SHUTOFF"
    POWERING_ON = "POWERING_ON"
    REBOOTING = "REBOOTING"
    DELETED = "DELETED"


# The one translation table. A server still powering off is reported running and one
# still powering on is reported stopped: the action has not taken effect yet, and a
# level-triggered controller that repeats the action gets a no-op (see state.power).
NATIVE_TO_REMOTE: dict[NativeStatus, RemoteState] = {
    NativeStatus.BUILDING: RemoteState.PENDING,
    NativeStatus.ACTIVE: RemoteState.RUNNING,
    NativeStatus.ERROR: RemoteState.ERROR,
    NativeStatus.POWERING_OFF: RemoteState.RUNNING,
    NativeStatus.SHUTOFF: RemoteState.STOPPED,
    NativeStatus.POWERING_ON: RemoteState.STOPPED,
    NativeStatus.REBOOTING: RemoteState.REBOOTING,
    NativeStatus.DELETED: RemoteState.DELETED,
}

_IN_TRANSITION = {
    "stop": NativeStatus.POWERING_OFF,
    "start": NativeStatus.POWERING_ON,
    "reboot": NativeStatus.REBOOTING,
}


class ServerRow(NamedTuple):
    """One row of the sim's `servers` table; times are microseconds since the epoch.

    A named tuple, made from the row's tuple (`state._row`): a full listing makes one per
    server, on the event loop. Made from a row with `timeit` on a slow 2-core machine:
    1.4 us, against 5.3 us as a frozen dataclass (about a third of a listed server's
    cost)."""

    seq: int
    remote_id: str
    canopy_id: str | None
    name: str
    host: str
    flavor: str | None
    vcpus: int
    ram_mb: int
    disk_gb: int
    image: str
    created_at: int
    ready_at: int
    failed: bool
    power: str  # 'on' | 'off': where the last power action leads
    transition: str | None  # 'start' | 'stop' | 'reboot': the last power action
    transition_until: int | None
    updated_at: int
    deleted_at: int | None
    client_token: str | None
    key_name: str | None = None  # the cloud keypair the server was booted with
    user_data: str | None = None  # base64, as the create call passed it
    zone: str | None = None  # the zone of its host (None on a cloud without zones)
    installation: str | None = None  # the installation tag it was created with


def native_status(row: ServerRow, now_us: int) -> NativeStatus:
    """The status a real cloud would report for this row at `now_us`."""
    if row.deleted_at is not None:
        return NativeStatus.DELETED
    if now_us < row.ready_at:
        return NativeStatus.BUILDING
    if row.failed:
        return NativeStatus.ERROR
    in_transition = row.transition_until is not None and now_us < row.transition_until
    if row.transition is not None and in_transition:
        return _IN_TRANSITION[row.transition]
    return NativeStatus.ACTIVE if row.power == "on" else NativeStatus.SHUTOFF


def remote_state(row: ServerRow, now_us: int) -> RemoteState:
    """The shared state of this row at `now_us`."""
    return NATIVE_TO_REMOTE[native_status(row, now_us)]


def changed_at(row: ServerRow, now_us: int) -> int:
    """When the row last changed as seen from outside, counting transitions that completed.

    A boot finishing or a reboot ending writes nothing to the row, yet a client polling
    with changes-since must see it; the SQL filter in state.py mirrors this formula.
    """
    if row.deleted_at is not None:
        # Deletion is the last change; a boot that would have ended later never happens.
        return row.updated_at
    moments = [row.updated_at]
    if row.ready_at <= now_us:
        moments.append(row.ready_at)
    if row.transition_until is not None and row.transition_until <= now_us:
        moments.append(row.transition_until)
    return max(moments)


def private_ip(seq: int) -> str:
    """A deterministic private IPv4 for the server with this per-cloud sequence number."""
    # Skip .0 to .4 of the first block: network, gateway and service addresses.
    n = (seq + 4) % (1 << 24)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


_ADDRESSED = {
    NativeStatus.ACTIVE,
    NativeStatus.POWERING_OFF,
    NativeStatus.SHUTOFF,
    NativeStatus.POWERING_ON,
    NativeStatus.REBOOTING,
}


def to_remote(row: ServerRow, now_us: int) -> RemoteServer:
    """The row as canopy sees it through the driver."""
    status = native_status(row, now_us)
    addresses = {"private": [private_ip(row.seq)]} if status in _ADDRESSED else {}
    fault = f"boot failed on host {row.host}" if status is NativeStatus.ERROR else None
    return RemoteServer(
        remote_id=row.remote_id,
        canopy_id=row.canopy_id,
        name=row.name,
        state=NATIVE_TO_REMOTE[status],
        addresses=addresses,
        flavor=row.flavor,
        created_at=from_us(row.created_at),
        updated_at=from_us(changed_at(row, now_us)),
        fault=fault,
        zone=row.zone or None,
        host=row.host or None,
        installation=row.installation,
    )
