"""Nova's statuses and server bodies in canopy's vocabulary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from canopy.domain.states import RemoteState
from canopy.providers.openstack.states import (
    is_no_valid_host,
    remote_state,
    server_name,
    to_remote,
)

CID = "0f0e0d0c-0b0a-4908-8706-050403020100"


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("BUILD", RemoteState.PENDING),
        ("ACTIVE", RemoteState.RUNNING),
        ("SHUTOFF", RemoteState.STOPPED),
        ("REBOOT", RemoteState.REBOOTING),
        ("HARD_REBOOT", RemoteState.REBOOTING),
        ("ERROR", RemoteState.ERROR),
        ("DELETED", RemoteState.DELETED),
        ("SOFT_DELETED", RemoteState.DELETED),
        ("PAUSED", RemoteState.STOPPED),
        ("MIGRATING", RemoteState.RUNNING),
        ("UNKNOWN", RemoteState.UNKNOWN),
        ("SOMETHING_NEW", RemoteState.UNKNOWN),
        (None, RemoteState.UNKNOWN),
    ],
)
def test_every_status_has_one_state(status: str | None, state: RemoteState) -> None:
    assert remote_state(status) == state


def test_a_server_body_becomes_a_remote_server() -> None:
    r = to_remote(
        {
            "id": "r1",
            "name": server_name("web", CID),
            "status": "ERROR",
            "metadata": {"canopy_id": CID, "role": "web"},
            "addresses": {"net": [{"addr": "10.0.0.5", "version": 4}, {"addr": "fe80::1"}]},
            "flavor": {"original_name": "m1.small", "vcpus": 1},
            "created": "2026-11-28T20:05:32Z",
            "updated": "2026-11-28T20:05:40+00:00",
            "fault": {"code": 500, "message": "No valid host was found. ", "created": "x"},
            "OS-EXT-AZ:availability_zone": "nova",
        }
    )
    assert r.canopy_id == CID and r.state == RemoteState.ERROR and r.zone == "nova"
    assert r.addresses == {"net": ["10.0.0.5", "fe80::1"]} and r.flavor == "m1.small"
    assert r.created_at == datetime(2026, 11, 28, 20, 5, 32, tzinfo=UTC)
    assert is_no_valid_host(r.fault)


def test_a_deleted_server_is_known_by_its_name() -> None:
    deleted = {"id": "r1", "name": server_name("web", CID), "status": "DELETED", "metadata": {}}
    assert to_remote(deleted).canopy_id == CID
    # Only a deleted one: a live server is canopy's only if its metadata says so.
    assert to_remote({**deleted, "status": "ACTIVE"}).canopy_id is None
    assert to_remote({**deleted, "name": "web-canopy-0f0e0d0c"}).canopy_id is None


def test_a_long_name_keeps_the_whole_id() -> None:
    name = server_name("x" * 300, CID)
    assert len(name) == 255 and name.endswith(f"-canopy-{CID}")
