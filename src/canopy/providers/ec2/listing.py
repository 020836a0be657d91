"""Listing a region's canopy instances without describing every one of them every pass.

A DescribeInstances answer is heavy: every instance with its network interfaces, block
devices and tags. Sync lists a cloud every few seconds while servers converge, and most
instances have not changed since the last pass. So a pass is three lighter steps:

1. DescribeTags (resource type instance, key `canopy:id`): which instances are canopy's,
   and their canopy ids, in one small answer per 1,000 tags: a page of the listing
   (`Compute.list_page`) is one page of these, and the next two steps for its instances;
2. DescribeInstanceStatus (all states, 100 ids a call): each one's state, nothing more;
3. DescribeInstances (an `instance-id` filter, 100 ids a call) only for the instances
   whose state differs from the last description this driver keeps, that it has never
   described, or whose description is older than `describe_refresh_seconds` (so a change
   that keeps the state, an address associated later, is seen within that time).

An instance whose tags no longer carry a canopy id is not listed (it is not canopy's), and
its description is forgotten after the listing's last page. Its installation is the tag in
its description (written with the instance, by RunInstances): a tag changed by hand later
shows when the instance is described again (a change of state, or the refresh time).

A status call that names an instance EC2 no longer knows (InvalidInstanceID.*, e.g.
terminated an hour ago while DescribeTags still lags) answers with an error for the whole
call: that call's instances are then described instead, through the filter, which never
fails on an unknown id.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from canopy.domain.specs import RemoteServer
from canopy.providers.base import CANOPY_ID_TAG
from canopy.providers.ec2.translate import error_code, to_remote

IDS_PER_CALL = 100  # DescribeInstanceStatus takes at most 100 explicit instance ids


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for k in range(0, len(ids), IDS_PER_CALL):
        yield list(ids[k : k + IDS_PER_CALL])


def tagged(c: Any, limit: int, token: str | None) -> tuple[dict[str, str], str | None]:
    """One page of DescribeTags: instance id -> canopy id, and the next page's token.

    Only the canopy id's key: an instance has one such tag, so no instance is split
    between two pages (its installation is read from its description)."""
    filters = [
        {"Name": "resource-type", "Values": ["instance"]},
        {"Name": "key", "Values": [CANOPY_ID_TAG]},
    ]
    args: dict[str, Any] = {"Filters": filters, "MaxResults": min(max(limit, 5), 1000)}
    if token:
        args["NextToken"] = token
    answer = c.describe_tags(**args)
    out = {str(t["ResourceId"]): str(t.get("Value", "")) for t in answer.get("Tags", [])}
    return {rid: cid for rid, cid in out.items() if cid}, answer.get("NextToken") or None


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

    tags: dict[str, str]  # instance id -> canopy id, this page's
    states: dict[str, str]
    described: list[dict[str, Any]]
    at: float
    first: bool  # the listing's first page
    next: str | None  # the next page's token; None after the last page


def list_pass(
    c: Any, known: dict[str, Known], refresh: float, limit: int, token: str | None
) -> Pass:
    """The three steps of a pass (module docstring), for one page of DescribeTags.

    `known` is the driver's, read here by key only (each lookup is atomic), while the
    event loop may merge another listing's page into it."""
    tags, after = tagged(c, limit, token)
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
    return Pass(tags, now_states, describe(c, todo) if todo else [], now, token is None, after)


class Descriptions:
    """The last description of each canopy instance of one region (one driver's)."""

    def __init__(self) -> None:
        self.known: dict[str, Known] = {}
        self.listed: set[str] = set()  # the ids the listing under way has shown so far

    def merge(self, p: Pass) -> list[RemoteServer]:
        """Apply one page of a listing; return every canopy instance it saw, as canopy
        sees them. After a listing's last page, the descriptions of instances it did not
        show (no longer canopy's, or no longer listed at all) are dropped."""
        for inst in p.described:
            state = str(inst.get("State", {}).get("Name", ""))
            self.known[str(inst["InstanceId"])] = Known(state, to_remote(inst), p.at)
        self.listed = set(p.tags) if p.first else self.listed | set(p.tags)
        if p.next is None:
            for rid in [rid for rid in self.known if rid not in self.listed]:
                del self.known[rid]
            self.listed = set()
        out: list[RemoteServer] = []
        for rid, canopy_id in p.tags.items():
            k = self.known.get(rid)
            if k is None:
                continue  # EC2 no longer lists it
            if rid not in p.states and k.at < p.at:
                del self.known[rid]  # neither status nor description: gone
                continue
            remote = k.remote
            if remote.canopy_id != canopy_id:
                remote = dataclasses.replace(remote, canopy_id=canopy_id)
                self.known[rid] = dataclasses.replace(k, remote=remote)
            out.append(remote)
        return out
