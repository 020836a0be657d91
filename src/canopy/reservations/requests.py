"""The lease and reservation bodies python-blazarclient sends, validated into plain types.

The client sends numbers as JSON numbers (it converts whole numbers) and everything else as
strings: `affinity` arrives as "False". Any field of the wrong type or out of range is a
400 naming it; nothing is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.reservations import host_query
from canopy.reservations.dates import parse_date
from canopy.reservations.states import (
    FLAVOR_INSTANCE,
    PHYSICAL_HOST,
    RESOURCE_TYPES,
    VIRTUAL_INSTANCE,
)

NAME_MAX = 255
AMOUNT_MAX = 10_000
HOSTS_MAX = 1_000
BEFORE_END = ("", "default", "snapshot")
_DURATION = re.compile(r"^(\d{1,9})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """One reservation of a lease: `amount` servers of one size."""

    resource_type: str
    amount: int
    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0
    flavor: str | None = None  # flavor:instance: the flavor's id or name
    affinity: bool | None = None
    resource_properties: str = ""
    # physical:host: between min_hosts and max_hosts hosts matching both queries.
    min_hosts: int = 0
    max_hosts: int = 0
    hypervisor_properties: str = ""
    host_query: host_query.Query = ()
    before_end: str = "default"


@dataclass(frozen=True, slots=True)
class ServerRequest:
    """Servers a lease carries (Canopy's extension): booted into reservation number
    `reservation` (its index in `reservations`) so they are ACTIVE at the start."""

    name: str
    image: str
    count: int = 1
    reservation: int = 0
    key_name: str | None = None
    user_data: str | None = None


@dataclass(frozen=True, slots=True)
class LeaseRequest:
    name: str
    start: datetime
    end: datetime
    before_end: datetime | None
    reservations: tuple[ReservationRequest, ...]
    start_is_now: bool
    servers: tuple[ServerRequest, ...] = ()


@dataclass(frozen=True, slots=True)
class LeaseUpdate:
    name: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    before_end: datetime | None = None
    start_is_now: bool = False


def _object(body: Any, key: str | None) -> dict[str, Any]:
    if key is not None and isinstance(body, dict) and isinstance(body.get(key), dict):
        body = body[key]  # some callers wrap the lease: {"lease": {...}}
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def lease_object(body: Any) -> dict[str, Any]:
    """The lease body itself (unwrapped from `{"lease": {...}}`), or 400."""
    return _object(body, "lease")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("A lease needs a name (a non-empty string).")
    if len(value) > NAME_MAX:
        raise InvalidRequest(f"A lease name is at most {NAME_MAX} characters.")
    if any(ord(c) < 32 for c in value):
        raise InvalidRequest("A lease name must not contain control characters.")
    return value


def _int(
    r: dict[str, Any], key: str, *, low: int, high: int = 1_000_000_000, what: str = "Reservation"
) -> int:
    value = r.get(key)
    text = value.strip() if isinstance(value, str) else None
    # ASCII digits only ("²" and Arabic-Indic digits are digits to str.isdigit), and few
    # enough of them (int() refuses over 4,300): anything else is refused below.
    if text is not None and text.isascii() and text.isdigit() and len(text) <= 18:
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{what} field {key} must be a whole number, got {value!r:.40}.")
    if not low <= value <= high:
        raise InvalidRequest(f"{what} field {key} must be between {low} and {high}.")
    return value


def _affinity(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "none", "null"):
            return None
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
    raise InvalidRequest(f"Reservation field affinity must be True, False or None: {value!r:.40}.")


def _properties(value: Any) -> str:
    if value is None or value == "" or value == "[]":
        return ""
    if not isinstance(value, str):
        raise InvalidRequest("Reservation field resource_properties must be a string.")
    raise InvalidRequest(
        "resource_properties are not supported yet: a reservation is placed by capacity "
        "and the burst policy, on any cloud that offers the size."
    )


def host_reservation(r: dict[str, Any]) -> ReservationRequest:
    """A physical:host reservation: Blazar's min, max, both queries (keys required, empty
    allowed) and before_end."""
    for key in ("min", "max", "hypervisor_properties", "resource_properties"):
        if key not in r:
            raise InvalidRequest(f"Missing parameter {key} (a physical:host reservation needs it).")
    low = _int(r, "min", low=1, high=HOSTS_MAX)
    high = _int(r, "max", low=1, high=HOSTS_MAX)
    if high < low:
        raise InvalidRequest(
            "Invalid values for min/max of hosts. Max must be equal to or larger than min."
        )
    before_end = r.get("before_end", "default")
    if before_end is None:
        before_end = "default"
    if before_end not in BEFORE_END:
        raise InvalidRequest(
            f"Malformed parameter before_end: {before_end!r:.40} (one of '', 'default', "
            "'snapshot')."
        )
    if before_end == "snapshot":
        raise InvalidRequest(
            "before_end 'snapshot' is not supported: Canopy does not snapshot servers; "
            "use '' or 'default' (the servers are deleted at the end)."
        )
    hyper = r.get("hypervisor_properties")
    props = r.get("resource_properties")
    query = host_query.parse(hyper, "hypervisor_properties") + host_query.parse(
        props, "resource_properties"
    )
    if len(query) > host_query.MAX_TERMS:
        raise InvalidRequest(
            f"A host reservation's queries hold at most {host_query.MAX_TERMS} terms."
        )
    return ReservationRequest(
        resource_type=PHYSICAL_HOST,
        amount=low,
        min_hosts=low,
        max_hosts=high,
        hypervisor_properties=host_query.text(hyper),
        resource_properties=host_query.text(props),
        host_query=query,
        before_end=before_end,
    )


def reservation(r: Any) -> ReservationRequest:
    """One entry of `reservations`, validated."""
    if not isinstance(r, dict):
        raise InvalidRequest("Each reservation must be a JSON object.")
    kind = r.get("resource_type")
    if kind == PHYSICAL_HOST:
        return host_reservation(r)
    if kind not in RESOURCE_TYPES:
        raise InvalidRequest(
            f"Unknown resource_type {kind!r:.40}: expected one of "
            f"{', '.join((*RESOURCE_TYPES, PHYSICAL_HOST))}."
        )
    amount = _int(r, "amount", low=1, high=AMOUNT_MAX)
    affinity = _affinity(r.get("affinity"))
    props = _properties(r.get("resource_properties"))
    if kind == VIRTUAL_INSTANCE:
        return ReservationRequest(
            resource_type=kind,
            amount=amount,
            vcpus=_int(r, "vcpus", low=1, high=4096),
            memory_mb=_int(r, "memory_mb", low=1, high=64 * 1024 * 1024),
            disk_gb=_int(r, "disk_gb", low=0, high=1024 * 1024),
            affinity=affinity,
            resource_properties=props,
        )
    assert kind == FLAVOR_INSTANCE
    flavor = r.get("flavor_id")
    if not isinstance(flavor, str) or not flavor.strip() or len(flavor) > 255:
        raise InvalidRequest("A flavor:instance reservation needs a flavor_id.")
    return ReservationRequest(
        resource_type=kind,
        amount=amount,
        flavor=flavor,
        affinity=affinity,
        resource_properties=props,
    )


def lease_create(body: Any, now: datetime) -> LeaseRequest:
    """A create body (`POST /leases`), validated; dates in UTC."""
    b = _object(body, "lease")
    name = _name(b.get("name"))
    start = parse_date(b.get("start_date", "now"), "start_date", now)
    end = parse_date(b.get("end_date"), "end_date", now)
    before = b.get("before_end_date")
    before_end = None if before in (None, "") else parse_date(before, "before_end_date", now)
    raw = b.get("reservations")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("A lease needs a non-empty list of reservations.")
    if len(raw) > 100:
        raise InvalidRequest("A lease holds at most 100 reservations.")
    events = b.get("events", [])
    if events not in (None, []):
        raise InvalidRequest("Custom events are not supported: send an empty events list.")
    parsed = tuple(reservation(r) for r in raw)
    # A host reservation is used by booting with its hint: a lease carries no servers there.
    amounts = [0 if r.resource_type == PHYSICAL_HOST else r.amount for r in parsed]
    hosts = frozenset(i for i, r in enumerate(parsed) if r.resource_type == PHYSICAL_HOST)
    req = LeaseRequest(
        name=name,
        start=start,
        end=end,
        before_end=before_end,
        reservations=parsed,
        start_is_now=b.get("start_date", "now") == "now",
        servers=servers(b.get("servers"), amounts, hosts),
    )
    check_window(req.start, req.end, req.before_end, now, req.start_is_now)
    return req


SERVER_FIELDS = {"name", "image", "count", "reservation", "key_name", "user_data"}
USER_DATA_MAX = 65535  # Nova's limit on user_data (base64 text)
W = "Lease server"


def _text(s: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = s.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
        raise InvalidRequest(f"Lease server field {key} must be a non-empty string.")
    if any(ord(c) < 32 for c in value):
        raise InvalidRequest(f"Lease server field {key} must not contain control characters.")
    return value


def servers(
    raw: Any, amounts: list[int], hosts: frozenset[int] = frozenset()
) -> tuple[ServerRequest, ...]:
    """The `servers` a lease carries (absent for Blazar's clients), within the amounts."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 100:
        raise InvalidRequest("Lease field servers must be a list of at most 100 objects.")
    out: list[ServerRequest] = []
    used = [0] * len(amounts)
    for s in raw:
        if not isinstance(s, dict):
            raise InvalidRequest("Each entry of servers must be a JSON object.")
        unknown = sorted(set(s) - SERVER_FIELDS)
        if unknown:
            raise InvalidRequest(f"Unknown lease server field {unknown[0]!r:.40}.")
        index = _int(
            {"reservation": s.get("reservation", 0)}, "reservation", low=0, high=99, what=W
        )
        if index >= len(amounts):
            raise InvalidRequest(
                f"Lease server field reservation is {index}: the lease has "
                f"{len(amounts)} reservation{'s' if len(amounts) != 1 else ''} (numbered from 0)."
            )
        if index in hosts:
            raise InvalidRequest(
                f"Lease server field reservation is {index}, a physical:host reservation: "
                "a lease carries servers for instance reservations only; boot into a host "
                "reservation with --hint reservation=<id> once the lease is ACTIVE."
            )
        count = _int({"count": s.get("count", 1)}, "count", low=1, high=AMOUNT_MAX, what=W)
        used[index] += count
        if used[index] > amounts[index]:
            raise InvalidRequest(
                f"The lease's servers need {used[index]} of reservation {index}, "
                f"which holds {amounts[index]}."
            )
        user_data = s.get("user_data")
        if user_data is not None and (
            not isinstance(user_data, str) or len(user_data) > USER_DATA_MAX
        ):
            raise InvalidRequest(
                f"Lease server field user_data must be a string of at most {USER_DATA_MAX}."
            )
        name, image = _text(s, "name", required=True), _text(s, "image", required=True)
        assert name is not None and image is not None
        out.append(
            ServerRequest(
                name=name,
                image=image,
                count=count,
                reservation=index,
                key_name=_text(s, "key_name", required=False),
                user_data=user_data,
            )
        )
    return tuple(out)


def check_window(
    start: datetime, end: datetime, before_end: datetime | None, now: datetime, is_now: bool
) -> None:
    """Blazar's date rules: the start is not in the past, the end after the start."""
    if not is_now and start < now.replace(second=0, microsecond=0):
        raise InvalidRequest("Start date must be later than current date.")
    if end <= start:
        raise InvalidRequest("End date must be later than start date.")
    if before_end is not None and not start <= before_end <= end:
        raise InvalidRequest("before_end_date must be between the start and the end date.")


def _duration(value: Any, field: str) -> timedelta:
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None:
        raise InvalidRequest(f"{field} must be a duration like 30m, 4h or 2d.")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def lease_update(body: Any, now: datetime, start: datetime, end: datetime) -> LeaseUpdate:
    """An update body (`PUT /leases/{id}`) against the lease's current dates."""
    b = _object(body, "lease")  # its reservations are `changes.parse`'s
    known = {
        "name",
        "start_date",
        "end_date",
        "before_end_date",
        "reservations",
        "events",
        "prolong_for",
        "reduce_by",
        "defer_by",
        "advance_by",
    }
    unknown = sorted(set(b) - known)
    if unknown:
        raise InvalidRequest(f"Unknown lease field {unknown[0]!r:.40}.")
    name = _name(b["name"]) if "name" in b else None
    new_start = parse_date(b["start_date"], "start_date", now) if "start_date" in b else None
    new_end = parse_date(b["end_date"], "end_date", now) if "end_date" in b else None
    if "prolong_for" in b:
        new_end = (new_end or end) + _duration(b["prolong_for"], "prolong_for")
    if "reduce_by" in b:
        new_end = (new_end or end) - _duration(b["reduce_by"], "reduce_by")
    if "defer_by" in b:
        new_start = (new_start or start) + _duration(b["defer_by"], "defer_by")
    if "advance_by" in b:
        new_start = (new_start or start) - _duration(b["advance_by"], "advance_by")
    before = b.get("before_end_date")
    before_end = None if before in (None, "") else parse_date(before, "before_end_date", now)
    return LeaseUpdate(
        name=name,
        start=new_start,
        end=new_end,
        before_end=before_end,
        start_is_now=b.get("start_date") == "now",
    )
