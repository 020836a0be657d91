"""Listing a region's canopy instances without describing every one of them every pass.

A DescribeInstances answer is heavy: every instance with its network interfaces, block
devices and tags. Sync lists a cloud every few seconds while servers converge, and most
instances have not changed since the last pass. So a pass is three lighter steps:

1. DescribeTags (resource type instance, keys `canopy:id` and the installation tag): which
   instances are canopy's, and their canopy ids, in one small answer per 1,000 tags;
2. DescribeInstanceStatus (all states, 100 ids a call): each one's state, nothing more;
3. DescribeInstances (an `instance-id` filter, 100 ids a call) only for the instances
   whose state differs from the last description this driver keeps, that it has never
   described, or whose description is older than `describe_refresh_seconds` (so a change
   that keeps the state, an address associated later, is seen within that time).

An instance whose tags no longer carry a canopy id is not listed (it is not canopy's), and
its description is forgotten. A status call that names an instance EC2 no longer knows
(InvalidInstanceID.*, e.g. terminated an hour ago while DescribeTags still lags) answers
with an error for the whole call: that call's instances are then described instead,
through the filter, which never fails on an unknown id.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from canopy.domain.specs import RemoteServer
from canopy.providers.base import CANOPY_ID_TAG, INSTALLATION_TAG
from canopy.providers.ec2.translate import error_code, to_remote

IDS_PER_CALL = 100  # DescribeInstanceStatus takes at most 100 explicit instance ids


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for k in range(0, len(ids), IDS_PER_CALL):
        yield list(ids[k : k + IDS_PER_CALL])


def tagged(c: Any, page: int) -> dict[str, dict[str, str]]:
    """Instance id -> its canopy tags (canopy id, installation), every page."""
    out: dict[str, dict[str, str]] = {}
    filters = [
        {"Name": "resource-type", "Values": ["instance"]},
        {"Name": "key", "Values": [CANOPY_ID_TAG, INSTALLATION_TAG]},
    ]
    paginate = c.get_paginator("describe_tags").paginate
    for p in paginate(Filters=filters, PaginationConfig={"PageSize": page}):
        for t in p.get("Tags", []):
            out.setdefault(str(t["ResourceId"]), {})[str(t["Key"])] = str(t.get("Value", ""))
    return {rid: tags for rid, tags in out.items() if tags.get(CANOPY_ID_TAG)}


def states(c: Any, ids: Sequence[str]) -> dict[str, str]:
    """Instance id -> state name, for the ids EC2 still knows (see the module docstring)."""
    out: dict[str, str] = {}
    for chunk in _chunks(ids):
        try:
            answer = c.describe_instance_status(InstanceIds=chunk, IncludeAllInstances=True)
        except Exception as e:
            if (error_code(e) or "").startswith("InvalidInstanceID"):
                continue  # described instead: the filter never fails on an unknown id
            raise
        for s in answer.get("InstanceStatuses", []):
            out[str(s["InstanceId"])] = str(s.get("InstanceState", {}).get("Name", ""))
    return out


def describe(c: Any, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The instances among `ids` that EC2 still lists, fully described."""
    out: list[dict[str, Any]] = []
    paginate = c.get_paginator("describe_instances").paginate
    for chunk in _chunks(ids):
        for p in paginate(Filters=[{"Name": "instance-id", "Values": chunk}]):
            for r in p.get("Reservations", []):
                out.extend(r.get("Instances", []))
    return out


@dataclass(frozen=True, slots=True)
class Known:
    """The last description of one instance: its state then, and when it was taken."""

    state: str
    remote: RemoteServer
    at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class Pass:
    """What one listing pass learned, in the pool thread; merged on the event loop."""

    tags: dict[str, dict[str, str]]
    states: dict[str, str]
    described: list[dict[str, Any]]
    at: float


def list_pass(c: Any, known: dict[str, Known], refresh: float, page: int) -> Pass:
    """The three steps of a pass (module docstring), against a snapshot of `known`."""
    tags = tagged(c, page)
    ids = sorted(tags)
    # Only the instances described before need a status: the others are described anyway.
    now_states = states(c, [rid for rid in ids if rid in known])
    now = time.monotonic()

    def stale(rid: str) -> bool:
        k = known.get(rid)
        if k is None:
            return True
        state = now_states.get(rid)
        if state is None:  # no status: described, unless it was terminated already
            return k.state != "terminated"
        return state != k.state or now - k.at >= refresh

    todo = [rid for rid in ids if stale(rid)]
    return Pass(tags, now_states, describe(c, todo) if todo else [], now)


class Descriptions:
    """The last description of each canopy instance of one region (one driver's)."""

    def __init__(self) -> None:
        self.known: dict[str, Known] = {}

    def merge(self, p: Pass) -> list[RemoteServer]:
        """Apply a pass; return every canopy instance it saw, as canopy sees them."""
        for inst in p.described:
            state = str(inst.get("State", {}).get("Name", ""))
            self.known[str(inst["InstanceId"])] = Known(state, to_remote(inst), p.at)
        out: list[RemoteServer] = []
        for rid in list(self.known):
            if rid not in p.tags:
                del self.known[rid]  # no longer canopy's (or no longer listed at all)
        for rid, tags in p.tags.items():
            k = self.known.get(rid)
            if k is None:
                continue  # EC2 no longer lists it
            if rid not in p.states and k.at < p.at:
                del self.known[rid]  # neither status nor description: gone
                continue
            remote = k.remote
            canopy_id, installation = tags.get(CANOPY_ID_TAG), tags.get(INSTALLATION_TAG)
            if remote.canopy_id != canopy_id or remote.installation != installation:
                remote = dataclasses.replace(remote, canopy_id=canopy_id, installation=installation)
                self.known[rid] = dataclasses.replace(k, remote=remote)
            out.append(remote)
        return out
