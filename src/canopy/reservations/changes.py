"""The `reservations` of a lease update (`lease set --reservation id=<rid>,amount=N`),
validated into plain changes.

python-blazarclient sends `{"reservations": [{"id": "<rid>", "amount": 3}]}` (whole
numbers as JSON numbers, anything else as a string). Each entry names one reservation of
the lease by `id` and the fields it changes: `amount` (any type), `vcpus`, `memory_mb`,
`disk_gb` (virtual:instance only). `resource_type`, `affinity` and `resource_properties`
are accepted when they repeat what the reservation has; any other key (a host or
floating-IP reservation's) is a 400 naming it. Whether a change is allowed in the lease's
state, and whether it fits, is `resize`'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.reservations.requests import AMOUNT_MAX, _affinity, _int, _properties
from canopy.reservations.states import PHYSICAL_HOST
from canopy.store.models import Reservation

MAX_CHANGES = 100
SIZE_FIELDS = ("vcpus", "memory_mb", "disk_gb")
KNOWN = frozenset(
    {"id", "amount", *SIZE_FIELDS, "resource_type", "affinity", "resource_properties"}
)
_BOUNDS = {"vcpus": (1, 4096), "memory_mb": (1, 64 * 1024 * 1024), "disk_gb": (0, 1024 * 1024)}


@dataclass(frozen=True, slots=True)
class Change:
    """What one entry asks of reservation `id` (None: unchanged)."""

    id: str
    amount: int | None = None
    vcpus: int | None = None
    memory_mb: int | None = None
    disk_gb: int | None = None
    affinity: Any = None  # the raw value, checked against the reservation's
    has_affinity: bool = False
    resource_type: Any = None

    @property
    def resizes(self) -> bool:
        return any(getattr(self, k) is not None for k in SIZE_FIELDS)


def parse(raw: Any) -> tuple[Change, ...]:
    """The update's `reservations` list (absent or empty: no change)."""
    if raw in (None, []):
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_CHANGES:
        raise InvalidRequest(
            f"Lease field reservations must be a list of at most {MAX_CHANGES} objects."
        )
    out: list[Change] = []
    for r in raw:
        if not isinstance(r, dict):
            raise InvalidRequest("Each reservation to update must be a JSON object.")
        rid = r.get("id")
        if rid is None:
            raise InvalidRequest("Missing parameter reservation ID")
        if not isinstance(rid, str) or not rid.strip() or len(rid) > 64:
            raise InvalidRequest(f"Reservation id must be a reservation's id, got {rid!r:.40}.")
        unknown = sorted(set(r) - KNOWN)
        if unknown:
            raise InvalidRequest(
                f"Reservation field {unknown[0]!r:.40} cannot be updated on an instance "
                f"reservation; updatable: amount, {', '.join(SIZE_FIELDS)}."
            )
        if "resource_properties" in r:
            _properties(r["resource_properties"])  # only "" (none) is accepted
        sizes = {
            k: _int(r, k, low=_BOUNDS[k][0], high=_BOUNDS[k][1]) for k in SIZE_FIELDS if k in r
        }
        out.append(
            Change(
                id=rid,
                amount=_int(r, "amount", low=1, high=AMOUNT_MAX) if "amount" in r else None,
                affinity=_affinity(r["affinity"]) if "affinity" in r else None,
                has_affinity="affinity" in r,
                resource_type=r.get("resource_type"),
                **sizes,
            )
        )
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise InvalidRequest("Each reservation may be named once in an update.")
    return tuple(out)


def match(changes: tuple[Change, ...], existing: list[Reservation]) -> list[Change]:
    """The changes that change something, each naming one of `existing` (Blazar's 400
    for ids that are not the lease's), checked against what cannot change."""
    by_id = {r.id: r for r in existing}
    invalid = [c.id for c in changes if c.id not in by_id]
    if invalid:
        raise InvalidRequest(
            "Please enter valid reservation IDs. Invalid reservation IDs are: "
            + ",".join(i[:64] for i in invalid)
        )
    out: list[Change] = []
    for c in changes:
        r = by_id[c.id]
        if c.resource_type is not None and c.resource_type != r.resource_type:
            raise InvalidRequest("resource_type cannot be updated")
        if r.resource_type == PHYSICAL_HOST and (c.amount is not None or c.resizes):
            raise InvalidRequest(
                f"Reservation {r.id} is a physical:host reservation: it holds hosts, not "
                "an amount of servers, and its hosts cannot be changed; create another lease."
            )
        if c.has_affinity and c.affinity != r.affinity:
            raise InvalidRequest(
                f"Reservation {r.id}'s affinity cannot be changed (it is {r.affinity}): "
                "create another lease."
            )
        if c.resizes and r.source_flavor_id is not None:
            raise InvalidRequest(
                f"Reservation {r.id} is a flavor:instance reservation: its size is its "
                "flavor's; only its amount can be updated."
            )
        size = (
            r.vcpus if c.vcpus is None else c.vcpus,
            r.memory_mb if c.memory_mb is None else c.memory_mb,
            r.disk_gb if c.disk_gb is None else c.disk_gb,
        )
        amount = r.amount if c.amount is None else c.amount
        if size != (r.vcpus, r.memory_mb, r.disk_gb) or amount != r.amount:
            out.append(c)
    return out
