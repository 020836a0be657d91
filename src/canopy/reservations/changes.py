"""The `reservations` of a lease update (`lease set --reservation id=<rid>,amount=N`),
validated into plain changes.

python-blazarclient sends `{"reservations": [{"id": "<rid>", "amount": 3}]}` (whole
numbers as JSON numbers, anything else as a string). Each entry names one reservation of
the lease by `id` and the fields it changes: for an instance reservation `amount` (any
type), `vcpus`, `memory_mb`, `disk_gb` (virtual:instance only), with `resource_type`,
`affinity` and `resource_properties` accepted when they repeat what the reservation has;
for a physical:host reservation `min`, `max`, `hypervisor_properties` and
`resource_properties` (Blazar's host update). Any other key (a floating-IP reservation's)
is a 400 naming it. Whether a change is allowed in the lease's state, and whether it fits,
is `resize`'s business (instances) or `host_update`'s (hosts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.reservations import host_query
from canopy.reservations.requests import AMOUNT_MAX, HOSTS_MAX, _affinity, _int, _properties
from canopy.reservations.states import PHYSICAL_HOST
from canopy.store.models import Reservation

MAX_CHANGES = 100
SIZE_FIELDS = ("vcpus", "memory_mb", "disk_gb")
HOST_FIELDS = ("min", "max", "hypervisor_properties")
KNOWN = frozenset(
    {"id", "amount", *SIZE_FIELDS, *HOST_FIELDS, "resource_type", "affinity", "resource_properties"}
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
    # physical:host: the new bounds and queries (None: unchanged); the queries as sent
    # until `match` has checked them (then their text).
    min_hosts: int | None = None
    max_hosts: int | None = None
    hypervisor_properties: Any = None
    resource_properties: Any = None

    @property
    def resizes(self) -> bool:
        return any(getattr(self, k) is not None for k in SIZE_FIELDS)

    @property
    def names_hosts(self) -> bool:
        """Whether it names a host reservation's field (min, max or a query)."""
        return any(
            v is not None
            for v in (
                self.min_hosts,
                self.max_hosts,
                self.hypervisor_properties,
                self.resource_properties,
            )
        )


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
                f"Reservation field {unknown[0]!r:.40} cannot be updated; updatable: amount, "
                f"{', '.join(SIZE_FIELDS)} (instance reservations); min, max, "
                "hypervisor_properties, resource_properties (physical:host reservations)."
            )
        queries = {k: r[k] for k in ("hypervisor_properties", "resource_properties") if k in r}
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
                min_hosts=_int(r, "min", low=1, high=HOSTS_MAX) if "min" in r else None,
                max_hosts=_int(r, "max", low=1, high=HOSTS_MAX) if "max" in r else None,
                **queries,
                **sizes,
            )
        )
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise InvalidRequest("Each reservation may be named once in an update.")
    return tuple(out)


def _host_change(r: Reservation, c: Change) -> Change:
    """`c` with its queries checked (400 naming the field) and kept as text, and its
    bounds checked against each other (Blazar's InvalidRange)."""
    texts: dict[str, str | None] = {}
    terms = 0
    for field in ("hypervisor_properties", "resource_properties"):
        raw = getattr(c, field)
        current = getattr(r, field) or ""
        terms += len(host_query.parse(current if raw is None else raw, field))
        texts[field] = None if raw is None else host_query.text(raw)
    if terms > host_query.MAX_TERMS:
        raise InvalidRequest(
            f"A host reservation's queries hold at most {host_query.MAX_TERMS} terms."
        )
    low = r.min_hosts if c.min_hosts is None else c.min_hosts
    high = r.max_hosts if c.max_hosts is None else c.max_hosts
    if low is not None and high is not None and high < low:
        raise InvalidRequest(
            "Invalid values for min/max of hosts. Max must be equal to or larger than min."
        )
    return replace(
        c,
        hypervisor_properties=texts["hypervisor_properties"],
        resource_properties=texts["resource_properties"],
    )


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
        if r.resource_type == PHYSICAL_HOST:
            if c.amount is not None or c.resizes:
                raise InvalidRequest(
                    f"Reservation {r.id} is a physical:host reservation: it holds hosts, not "
                    "an amount of servers; update its min, max, hypervisor_properties or "
                    "resource_properties instead."
                )
            if c.has_affinity and c.affinity is not None:
                raise InvalidRequest(
                    f"Reservation {r.id} is a physical:host reservation: it has no affinity."
                )
            if c.names_hosts:
                out.append(_host_change(r, c))  # Blazar reallocates whenever these are sent
            continue
        named = [
            k
            for k, v in zip(
                HOST_FIELDS, (c.min_hosts, c.max_hosts, c.hypervisor_properties), strict=True
            )
            if v is not None
        ]
        if named:
            key = named[0]
            raise InvalidRequest(
                f"Reservation {r.id} is an instance reservation: it has no {key} "
                "(a physical:host reservation's field); update its amount instead."
            )
        if c.resource_properties is not None:
            _properties(c.resource_properties)  # an instance reservation has none
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
