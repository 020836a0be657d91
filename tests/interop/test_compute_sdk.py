"""The server life cycle, paging and errors through openstacksdk against a real `canopy up`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions

from .conftest import CanopyServer

WAIT = 60


@dataclass
class Team:
    """A project with a member, a reader, and someone from another project."""

    project_id: str
    member: Any
    reader: Any
    outsider: Any


def _user(admin: Any, canopy: CanopyServer, project: Any, name: str, role: str) -> Any:
    user = admin.identity.create_user(
        name=name, password=f"{name}-pw", domain_id="default", default_project_id=project.id
    )
    admin.identity.assign_project_role_to_user(project, user, admin.identity.find_role(role))
    return canopy.sdk(username=name, password=f"{name}-pw", project=project.name)


@pytest.fixture(scope="module")
def team(canopy_server: CanopyServer) -> Iterator[Team]:
    admin = canopy_server.sdk()
    project = admin.identity.create_project(name="sdk-team", domain_id="default")
    other = admin.identity.create_project(name="sdk-other", domain_id="default")
    yield Team(
        project_id=project.id,
        member=_user(admin, canopy_server, project, "sdk-member", "member"),
        reader=_user(admin, canopy_server, project, "sdk-reader", "reader"),
        outsider=_user(admin, canopy_server, other, "sdk-outsider", "member"),
    )


def _boot(conn: Any, name: str, **kw: Any) -> Any:
    image = conn.image.find_image("cirros", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    return conn.compute.create_server(
        name=name, image_id=image.id, flavor_id=flavor.id, networks="none", **kw
    )


def test_life_cycle(team: Team) -> None:
    conn = team.member
    assert {f.name for f in conn.compute.flavors()} >= {"m1.tiny", "m1.xlarge"}
    assert [z.name for z in conn.compute.availability_zones()] == ["private", "public"]

    a = conn.compute.wait_for_server(_boot(conn, "a"), status="ACTIVE", wait=WAIT)
    assert a.availability_zone == "private" and a.flavor.original_name == "m1.tiny"
    b = _boot(conn, "b", availability_zone="public")
    b = conn.compute.wait_for_server(b, status="ACTIVE", wait=WAIT)
    assert b.availability_zone == "public"
    assert {s.name for s in conn.compute.servers()} == {"a", "b"}
    assert conn.compute.find_server("a").id == a.id

    conn.compute.stop_server(a)
    conn.compute.wait_for_server(a, status="SHUTOFF", wait=WAIT)
    conn.compute.start_server(a)
    conn.compute.wait_for_server(a, status="ACTIVE", wait=WAIT)
    conn.compute.reboot_server(a, "HARD")
    conn.compute.wait_for_server(a, status="ACTIVE", wait=WAIT)

    actions = list(conn.compute.server_actions(a))
    assert [x.action for x in actions] == ["reboot", "start", "stop", "create"]
    create = conn.compute.get_server_action(actions[-1].request_id, a)
    assert "placed on private" in create.message
    assert {e.event for e in create.events} >= {"schedule (attempt 1)", "spawn (attempt 1)"}
    assert all(e.result == "Success" for e in create.events)

    for server in (a, b):
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=WAIT)
    with pytest.raises(exceptions.NotFoundException):
        conn.compute.get_server(a.id)


def test_paging_over_250_servers(canopy_server: CanopyServer) -> None:
    admin = canopy_server.sdk()
    project = admin.identity.create_project(name="pager", domain_id="default")
    admin.compute.update_quota_set(project.id, instances=-1, cores=-1, ram=-1)
    conn = _user(admin, canopy_server, project, "pager", "member")
    _boot(conn, "p", min_count=250, max_count=250)

    calls: list[str] = []
    get = conn.compute.get

    def counting_get(url: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(url)
        return get(url, *args, **kwargs)

    conn.compute.get = counting_get
    ids = [s.id for s in conn.compute.servers(limit=100)]
    assert len(ids) == len(set(ids)) == 250
    pages = [c for c in calls if "servers/detail" in c]
    assert len(pages) in (3, 4)  # 100 + 100 + 50 (a client may confirm the end)
    # The same answer from the API directly, newest first.
    token = canopy_server.token("pager", "pager-pw", "pager")
    r = httpx.get(
        f"{canopy_server.base_url}/compute/v2.1/servers?limit=1000",
        headers={"X-Auth-Token": token},
        timeout=30,
    )
    assert [s["id"] for s in r.json()["servers"]] == ids


def test_errors(canopy_server: CanopyServer, team: Team) -> None:
    conn = team.member
    image = conn.image.find_image("cirros", ignore_missing=False)
    with pytest.raises(exceptions.BadRequestException) as err:
        conn.compute.create_server(name="x", image_id=image.id, flavor_id="99", networks="none")
    assert err.value.status_code == 400 and "Flavor 99 could not be found" in str(err.value)
    with pytest.raises(exceptions.BadRequestException) as err:
        conn.compute.create_server(
            name="x", image_id="no-such-image", flavor_id="1", networks="none"
        )
    assert "Image no-such-image could not be found" in str(err.value)
    with pytest.raises(exceptions.ForbiddenException) as forbidden:
        _boot(conn, "many", min_count=11, max_count=11)  # the default quota is 10
    assert forbidden.value.status_code == 403 and "Quota exceeded" in str(forbidden.value)

    mine = _boot(conn, "mine")
    with pytest.raises(exceptions.NotFoundException):
        team.outsider.compute.get_server(mine.id)
    with pytest.raises(exceptions.NotFoundException):
        team.outsider.compute.delete_server(mine.id, ignore_missing=False)
    assert team.reader.compute.get_server(mine.id).name == "mine"
    with pytest.raises(exceptions.ForbiddenException):
        team.reader.compute.delete_server(mine.id, ignore_missing=False)
    assert conn.compute.get_server(mine.id).name == "mine"  # untouched
    with pytest.raises(exceptions.ForbiddenException):
        _boot(team.reader, "nope")

    r = httpx.get(
        f"{canopy_server.base_url}/compute/v2.1/servers",
        headers={"X-Auth-Token": "not-a-token"},
        timeout=30,
    )
    assert r.status_code == 401 and list(r.json()) == ["unauthorized"]
    with pytest.raises(ks_exceptions.Unauthorized) as bad_login:
        canopy_server.sdk(username="sdk-member", password="wrong", project="sdk-team").compute.get(
            "/servers"
        )
    assert bad_login.value.http_status == 401
    conn.compute.delete_server(mine)
    conn.compute.wait_for_delete(mine, wait=WAIT)
