"""POST, PATCH and DELETE /canopy/v1/clouds: clouds at run time, for cloud admins only.

Options are checked by the config's own models (a 400 naming the field path, nothing
written); credentials are write-only: sealed in the database and in no answer or log line.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select

from canopy.store.models import Cloud
from tests.api.tokens import caller

from .conftest import Api, assert_fault

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
OS_PASSWORD = "s3cr3t-openstack-password"
SIM = {"name": "extra", "driver": "sim", "tier": 2, "options": {"hosts": 2, "host_vcpus": 4}}


def ec2_body(**extra: Any) -> dict[str, Any]:
    return {
        "name": "aws-2",
        "driver": "ec2",
        "tier": 1,
        "options": {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:1"},
        "credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET},
        **extra,
    }


async def _row(api: Api, name: str) -> Cloud | None:
    async with api.plane.db.read() as s:
        return (await s.execute(select(Cloud).where(Cloud.name == name))).scalar_one_or_none()


async def test_an_admin_adds_a_cloud_and_a_worker_makes_it_placeable(api: Api) -> None:
    r = await api.client.post("/canopy/v1/clouds", json=SIM)
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["name"] == "extra" and view["source"] == "api" and view["state"] == "enabled"
    assert view["tier"] == 2 and view["has_credentials"] is False
    assert view["capacity_updated_at"] is None  # no worker has read it yet
    assert api.wake.is_set()  # the worker in this process looks at once

    await api.plane.step()
    r = await api.client.get("/canopy/v1/clouds/extra")
    assert r.json()["capacity"]["vcpus"] == 8 and r.json()["capacity_updated_at"] is not None
    [sid] = await api.place(1, availability_zone="extra")
    assert (await api.plane.service.get(api.plane.ctx, sid)).cloud == "extra"


@pytest.mark.parametrize("who", [("pat", "admin", "demo"), ("alice", "member", "demo")])
async def test_only_a_cloud_admin_may_change_clouds(api: Api, who: tuple[str, str, str]) -> None:
    user, role, project = who
    other = await caller(api.plane.db, api.plane.clock, project=project, user=user, role=role)
    h = other.headers
    assert_fault(await api.client.post("/canopy/v1/clouds", json=SIM, headers=h), 403, "forbidden")
    patch = await api.client.patch("/canopy/v1/clouds/private", json={"tier": 3}, headers=h)
    assert_fault(patch, 403, "forbidden")
    assert_fault(await api.client.delete("/canopy/v1/clouds/private", headers=h), 403, "forbidden")
    assert await _row(api, "extra") is None
    private = await _row(api, "private")
    assert private is not None and private.tier == 0 and private.removed_at is None


@pytest.mark.parametrize(
    ("options", "path"),
    [
        ({"region": "nowhere"}, "options.region"),
        ({}, "options.region"),
        ({"region": "us-east-1", "zones": ["not a zone"]}, "options.zones.0"),
        ({"region": "us-east-1", "bogus": 1}, "options.bogus"),
        ({"region": "us-east-1", "credentials": "AKIAIOSFODNN7EXAMPLE"}, "options.credentials"),
    ],
)
async def test_bad_options_are_a_400_naming_the_field(
    api: Api, options: dict[str, Any], path: str
) -> None:
    body = {"name": "aws-2", "driver": "ec2", "options": options}
    message = assert_fault(await api.client.post("/canopy/v1/clouds", json=body), 400, "badRequest")
    assert path in message
    assert await _row(api, "aws-2") is None  # nothing written


async def test_bad_top_level_fields_and_unknown_drivers_are_400s(api: Api) -> None:
    for body, path in (
        ({**SIM, "tier": -1}, "tier"),
        ({**SIM, "driver": "gce"}, "driver"),
        ({**SIM, "name": "no spaces"}, "name"),
        ({**SIM, "concurrency": 0}, "concurrency"),
    ):
        message = assert_fault(
            await api.client.post("/canopy/v1/clouds", json=body), 400, "badRequest"
        )
        assert path in message
    message = assert_fault(
        await api.client.post("/canopy/v1/clouds", json={**SIM, "credentials": {"a": "b"}}),
        400,
        "badRequest",
    )
    assert "sim driver takes none" in message


async def test_credentials_are_sealed_and_never_answered_nor_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = []
    r = await api.client.post("/canopy/v1/clouds", json=ec2_body())
    assert r.status_code == 201, r.text
    answers.append(r.text)
    assert r.json()["has_credentials"] is True
    for url in ("/canopy/v1/clouds", "/canopy/v1/clouds/aws-2"):
        answers.append((await api.client.get(url)).text)
    row = await _row(api, "aws-2")
    assert row is not None and row.credentials is not None
    assert SECRET.encode() not in row.credentials and KEY_ID.encode() not in row.credentials
    assert row.driver_settings is not None
    assert row.driver_settings["ec2"]["credentials"] == "stored"
    assert SECRET not in str(row.driver_settings)

    # Rejected credentials are not echoed either: neither a secret sent as a string, nor
    # one inside an object that fails validation.
    for bad in (
        {"credentials": SECRET},
        {"credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET, "x": SECRET}},
        {"credentials": {"access_key_id": SECRET, "secret_access_key": SECRET}},
        {"credentials": {"secret_access_key": SECRET}},
    ):
        r = await api.client.post("/canopy/v1/clouds", json=ec2_body(name="aws-3", **bad))
        assert_fault(r, 400, "badRequest")
        answers.append(r.text)
    r = await api.client.patch("/canopy/v1/clouds/aws-2", json={"credentials": SECRET})
    assert_fault(r, 400, "badRequest")
    answers.append(r.text)

    # Changed, and a worker builds a driver with them (it calls nothing yet).
    r = await api.client.patch(
        "/canopy/v1/clouds/aws-2",
        json={"credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET + "2"}},
    )
    assert r.status_code == 200, r.text
    answers.append(r.text)
    await api.plane.worker.fleet.refresh()
    assert "aws-2" in api.plane.rt.drivers

    for text in answers:
        assert SECRET not in text and KEY_ID not in text
    assert SECRET not in caplog.text and KEY_ID not in caplog.text
    assert "aws-2" in caplog.text  # the log did see the cloud, just not its secrets


async def test_openstack_credentials_are_checked_and_sealed(api: Api) -> None:
    body = {
        "name": "site-b",
        "driver": "openstack",
        "options": {"region_name": "RegionOne"},
        "credentials": {
            "auth_type": "password",
            "auth": {"auth_url": "http://127.0.0.1:1/identity", "username": "u"},
        },
    }
    message = assert_fault(await api.client.post("/canopy/v1/clouds", json=body), 400, "badRequest")
    assert "auth.password" in message
    body["credentials"]["auth"]["password"] = OS_PASSWORD  # type: ignore[index]
    r = await api.client.post("/canopy/v1/clouds", json=body)
    assert r.status_code == 201, r.text
    assert OS_PASSWORD not in r.text and r.json()["has_credentials"] is True
    row = await _row(api, "site-b")
    assert row is not None and row.credentials is not None
    assert OS_PASSWORD.encode() not in row.credentials
    # Dropped again: the source goes back to the clouds.yaml entry / environment.
    r = await api.client.patch("/canopy/v1/clouds/site-b", json={"credentials": None})
    assert r.status_code == 200 and r.json()["has_credentials"] is False
    row = await _row(api, "site-b")
    assert row is not None and row.credentials is None
    assert row.driver_settings is not None
    assert row.driver_settings["openstack"]["credentials"] == "env"


async def test_a_config_cloud_is_edited_in_the_file(api: Api) -> None:
    for r in (
        await api.client.patch("/canopy/v1/clouds/private", json={"enabled": False}),
        await api.client.delete("/canopy/v1/clouds/private"),
    ):
        assert "config file" in assert_fault(r, 409, "conflictingRequest")
    taken = await api.client.post("/canopy/v1/clouds", json={**SIM, "name": "private"})
    assert "config file" in assert_fault(taken, 409, "conflictingRequest")
    row = await _row(api, "private")
    assert row is not None and row.enabled and row.removed_at is None and row.source == "config"


async def test_disable_enable_change_and_remove(api: Api) -> None:
    assert (await api.client.post("/canopy/v1/clouds", json=SIM)).status_code == 201
    again = await api.client.post("/canopy/v1/clouds", json=SIM)
    assert_fault(again, 409, "conflictingRequest")
    r = await api.client.patch("/canopy/v1/clouds/extra", json={"enabled": False})
    assert r.status_code == 200 and r.json()["state"] == "disabled"
    r = await api.client.patch("/canopy/v1/clouds/extra", json={"enabled": True, "tier": 3})
    assert r.json()["state"] == "enabled" and r.json()["tier"] == 3
    before = await _row(api, "extra")
    assert before is not None
    r = await api.client.patch("/canopy/v1/clouds/extra", json={"options": {"hosts": 5}})
    assert r.status_code == 200
    after = await _row(api, "extra")
    assert after is not None and after.generation == before.generation + 1
    assert after.driver_settings is not None and after.driver_settings["sim"]["hosts"] == 5
    assert after.driver_settings["sim"]["host_vcpus"] == 4  # merged, not replaced
    bad = await api.client.patch("/canopy/v1/clouds/extra", json={"options": {"hosts": -1}})
    assert "options.hosts" in assert_fault(bad, 400, "badRequest")

    r = await api.client.delete("/canopy/v1/clouds/extra")
    assert r.status_code == 204
    r = await api.client.get("/canopy/v1/clouds/extra")
    assert r.json()["state"] == "removed" and not r.json()["enabled"]
    gone = await api.client.patch("/canopy/v1/clouds/extra", json={"tier": 1})
    assert_fault(gone, 409, "conflictingRequest")
    missing = await api.client.delete("/canopy/v1/clouds/nothing")
    assert_fault(missing, 404, "itemNotFound")
    # A removed cloud's name may be added again.
    assert (await api.client.post("/canopy/v1/clouds", json=SIM)).status_code == 201
