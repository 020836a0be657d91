"""The scheduler's inputs (snapshots, requests) and its output (a placement with reasons)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from canopy.domain.specs import Resources


@dataclass(slots=True)
class CloudSnapshot:
    """One cloud as the scheduler sees it at decision time.

    `*_capacity` are the totals canopy may fill (None = unbounded / unknown);
    `*_claimed` are canopy's claims against them: the most in use at any moment from now
    on (what is in use now, unless a claim starts later). `price_per_hour_micros` maps a
    canopy flavor name to what one server of that flavor costs per hour there, in
    micro-units (domain.money); a flavor absent from it is not offered by this cloud.
    `spend_per_hour_micros` is the summed price of the claims, likewise from now on.
    `images` are the canopy image ids mapped there (None = any). A cloud whose inventory
    was never read (`inventoried` false) is not placeable until it is.

    `zones` are the zones inside the cloud placement may choose between (empty: the cloud
    has none, or they are not known yet, and the driver chooses). `capacity_blocks` maps a
    flavor name to the zones blocklisted for it after a capacity error, each with its
    reason; the zone "" stands for every zone (an error that named none).
    """

    name: str
    tier: int
    enabled: bool = True
    removed: bool = False  # left the config: draining, never a target again
    healthy: bool = True
    blocklisted: bool = False
    vcpus_capacity: int | None = None
    ram_mb_capacity: int | None = None
    instances_capacity: int | None = None
    vcpus_claimed: int = 0
    ram_mb_claimed: int = 0
    instances_claimed: int = 0
    spend_per_hour_micros: int = 0
    price_per_hour_micros: dict[str, int] = field(default_factory=dict)
    images: frozenset[str] | None = None
    zones: tuple[str, ...] = ()
    capacity_blocks: dict[str, dict[str, str]] = field(default_factory=dict)
    # Whether the cloud's inventory (capacity, flavor mappings) has been read yet.
    inventoried: bool = True
    # When that inventory pass started (None: not known).
    inventoried_at: datetime | None = None

    def utilisation(self, extra: Resources | None = None) -> float:
        """The largest used fraction over vcpus, ram and instances (0 when unbounded)."""
        v = self.vcpus_claimed + (extra.vcpus if extra else 0)
        r = self.ram_mb_claimed + (extra.ram_mb if extra else 0)
        n = self.instances_claimed + (extra.instances if extra else 0)
        parts = [0.0]
        if self.vcpus_capacity:
            parts.append(v / self.vcpus_capacity)
        if self.ram_mb_capacity:
            parts.append(r / self.ram_mb_capacity)
        if self.instances_capacity:
            parts.append(n / self.instances_capacity)
        return max(parts)


@dataclass(frozen=True, slots=True)
class GroupState:
    """A server group's policy and the clouds its members already occupy."""

    policy: str  # affinity | anti-affinity | soft-affinity | soft-anti-affinity
    member_clouds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """What one server needs from the scheduler."""

    server_id: str
    flavor: str
    resources: Resources
    image_id: str | None = None
    availability_zone: str | None = None
    group: GroupState | None = None
    excluded: frozenset[str] = frozenset()  # clouds already tried for this server
    # (cloud, zone) pairs already tried for this server: the cloud's other zones are next.
    tried_zones: frozenset[tuple[str, str]] = frozenset()
    # When the flavor was made: a cloud inventoried before then has not mapped it yet.
    flavor_created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FilterStep:
    """How many clouds one filter removed, and which, with the reason for each."""

    name: str
    before: int
    removed: dict[str, str]


@dataclass(slots=True)
class Explanation:
    """Why the scheduler chose what it chose (stored with the placement)."""

    steps: list[FilterStep] = field(default_factory=list)
    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    policy: str = ""
    # The zone chosen inside the chosen cloud (None: the cloud has no zones to choose
    # between), and the chosen cloud's zones passed over, each with its reason.
    zone: str | None = None
    zones_skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self, *, weighed: Sequence[str] | None = None) -> dict[str, object]:
        """As stored and shown; with `weighed`, the weights of those clouds only, and how
        many others were weighed (`weights_left_out`)."""
        if weighed is None:
            weights = {k: dict(v) for k, v in self.weights.items()}
        else:
            weights = {k: dict(self.weights[k]) for k in weighed if k in self.weights}
        out: dict[str, object] = {
            "filters": [
                {"name": s.name, "before": s.before, "removed": dict(s.removed)} for s in self.steps
            ],
            "weights": weights,
            "policy": self.policy,
        }
        if len(weights) < len(self.weights):
            out["weights_left_out"] = len(self.weights) - len(weights)
        if self.zone is not None or self.zones_skipped:
            out["zone"] = self.zone
            out["zones_skipped"] = dict(self.zones_skipped)
        return out


# What a placement record keeps of a decision: the alternates that follow the choice, and
# the weights of the choice and of those alternates (the explanation counts the others it
# leaves out). With 500 clouds a whole decision is about 60 KB of JSON, and encoding and
# writing it cost more than taking the decision.
KEPT_ALTERNATES = 9


@dataclass(slots=True)
class Decision:
    """The scheduler's answer: a chosen cloud and ordered alternates, or none and why."""

    cloud: str | None
    alternates: list[str]
    explanation: Explanation
    # When no cloud is left: True if waiting may help (capacity, spend cap), False if not.
    retryable: bool = False

    def stored_explanation(self) -> dict[str, object]:
        """The explanation a placement record keeps: the weights of the choice and of the
        alternates it keeps (`KEPT_ALTERNATES`), not of every cloud weighed."""
        if self.cloud is None:
            return self.explanation.to_dict()
        return self.explanation.to_dict(weighed=[self.cloud, *self.alternates[:KEPT_ALTERNATES]])

    @property
    def zone(self) -> str | None:
        """The zone chosen inside `cloud`, if the cloud has zones to choose between."""
        return self.explanation.zone

    @property
    def reason(self) -> str:
        """One line for the user: why here, or which filter emptied the list."""
        if self.cloud is not None:
            if self.explanation.zone is None:
                return self.explanation.policy
            return f"{self.explanation.policy}; zone {self.explanation.zone}"
        for step in self.explanation.steps:
            if step.before and len(step.removed) == step.before:
                why = "; ".join(f"{c}: {r}" for c, r in sorted(step.removed.items()))
                return f"No valid host: filter {step.name} removed every cloud ({why})"
        return "No valid host: no cloud is configured"
