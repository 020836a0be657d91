"""A resource's `deletion_policy` (CloudFormation's `DeletionPolicy`), as Heat applies it.

`Delete` (the default) deletes what the resource made. `Retain` keeps it: when the stack is
deleted, when an update removes the resource from the template or replaces it, and when a
failed create is rolled back, the row is forgotten and what it stands for is left to the
project, exactly as `stack abandon` leaves it. Canopy retains what lives outside the stack:
servers, key pairs and server groups. A resource that holds nothing outside its row (a
Value, a RandomString, a software config...) has nothing to keep, so Retain and Delete are
the same for it. The types whose delete undoes stack machinery (nested stacks, groups, wait
conditions and their handles, scaling policies) are refused with Retain at validation: a
retained nested stack or signal URL would outlive the stack that owns it.

`Snapshot` is refused for every type, with Heat's message for a type that has no snapshot:
canopy takes no server snapshots.

The policy of a row is kept in its data (`retain`), set from the template each time the
walk sees the resource, so a stack delete (which reads no template) and the clean-up of an
update (the removed resource's last definition) both know it.
"""

from __future__ import annotations

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import ResourceType
from canopy.store.models import StackResource

# What a Retain keeps outside the stack (the same things an external_id can name).
KEPT = ("OS::Nova::Server", "AWS::EC2::Instance", "OS::Nova::KeyPair", "OS::Nova::ServerGroup")
# The types that hold nothing outside their row: Retain and Delete are the same for them.
ROW_ONLY = frozenset(
    {
        "OS::Heat::Value",
        "OS::Heat::None",
        "OS::Heat::RandomString",
        "OS::Heat::TestResource",
        "OS::Heat::SoftwareConfig",
        "OS::Heat::CloudConfig",
        "OS::Heat::MultipartMime",
        "AWS::AutoScaling::LaunchConfiguration",
    }
)


def check(kind: ResourceType, rtype: str, policy: str, where: str) -> None:
    """Refuse a policy the type cannot honour (InvalidRequest naming the resource)."""
    at = f"{where}.deletion_policy"
    if policy == "Snapshot":
        raise InvalidRequest(
            f'{at}: "Snapshot" deletion policy not supported: canopy takes no snapshots '
            "(use Retain to keep the resource, or Delete)."
        )
    if policy == "Retain" and kind.name not in KEPT and kind.name not in ROW_ONLY:
        raise InvalidRequest(
            f"{at}: Retain is not supported for {rtype}: canopy retains "
            f"{', '.join(KEPT)} and resources that hold nothing outside the stack."
        )


def mark(row: StackResource, policy: str) -> None:
    """Record the template's policy on the row (written only when it changes)."""
    retain = policy == "Retain"
    if retained(row) == retain:
        return
    data = dict(row.data or {})
    if retain:
        data["retain"] = True
    else:
        data.pop("retain", None)
    row.data = data


def keep(row: StackResource) -> None:
    """Retain `row` whatever its template said (an adopt's rollback lets go of it)."""
    if not retained(row):
        row.data = {**(row.data or {}), "retain": True}


def retained(row: StackResource) -> bool:
    return bool((row.data or {}).get("retain"))
