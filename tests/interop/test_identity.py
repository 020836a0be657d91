"""Keystone through the real `openstack` CLI against a real `canopy up`."""

from __future__ import annotations

import os
import stat

import pytest

from .conftest import CanopyServer, _clean_environ

BOB = ("--os-username", "bob", "--os-password", "x", "--os-project-name", "p2")


def test_token_issue(canopy_server: CanopyServer) -> None:
    token = canopy_server.openstack("token", "issue")
    assert token["id"] and token["user_id"] and token["project_id"]
    assert token["expires"]


def test_admin_manages_projects_users_and_roles(canopy_server: CanopyServer) -> None:
    osc = canopy_server.openstack
    project = osc("project", "create", "p2", "--description", "the second")
    assert project["name"] == "p2" and project["domain_id"] == "default"
    names = {p["Name"] for p in osc("project", "list")}
    assert names == {"admin", "p2"}
    assert osc("project", "show", "p2")["description"] == "the second"

    user = osc("user", "create", "bob", "--password", "x", "--project", "p2", "--email", "b@x.io")
    assert user["name"] == "bob" and user["default_project_id"] == project["id"]
    assert {u["Name"] for u in osc("user", "list")} == {"admin", "bob"}

    roles = {r["Name"] for r in osc("role", "list")}
    assert roles == {"admin", "member", "reader"}
    osc("role", "add", "--project", "p2", "--user", "bob", "member", json_output=False)
    rows = osc("role", "assignment", "list", "--project", "p2", "--names")
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == [
        ("member", "bob@Default", "p2@Default")
    ]
    assert [u["Name"] for u in osc("user", "list", "--project", "p2")] == ["bob"]

    # bob, a member of p2, gets a token for p2 ...
    token = osc(*BOB, "token", "issue")
    assert token["project_id"] == project["id"] and token["user_id"] == user["id"]
    # ... sees his own project ...
    assert [p["Name"] for p in osc(*BOB, "project", "list")] == ["p2"]
    # ... and may not create one.
    rc, err = canopy_server.openstack_fail(*BOB, "project", "create", "nope")
    assert rc != 0
    assert "403" in err and "not authorized" in err, err

    osc("user", "set", "--email", "bob@example.com", "bob", json_output=False)
    assert osc("user", "show", "bob")["email"] == "bob@example.com"
    osc("role", "remove", "--project", "p2", "--user", "bob", "member", json_output=False)
    rc, err = canopy_server.openstack_fail(*BOB, "token", "issue")
    assert "401" in err, err
    osc("user", "delete", "bob", json_output=False)
    osc("project", "delete", "p2", json_output=False)
    assert {p["Name"] for p in osc("project", "list")} == {"admin"}


def test_the_clouds_yaml_written_by_canopy_up_works(canopy_server: CanopyServer) -> None:
    path = canopy_server.clouds_yaml
    assert path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    env = {**_clean_environ(), "OS_CLIENT_CONFIG_FILE": str(path), "OS_CLOUD": "canopy"}
    token = canopy_server.openstack("token", "issue", env=env)
    assert token["project_id"]
    catalog = canopy_server.openstack("catalog", "list", env=env)
    assert {c["Type"] for c in catalog} == {
        "identity",
        "compute",
        "image",
        "reservation",
        "orchestration",
    }


def test_a_wrong_password_fails_with_a_clear_401(canopy_server: CanopyServer) -> None:
    env = canopy_server.env(password="wrong")
    rc, err = canopy_server.openstack_fail("token", "issue", env=env)
    assert rc == 1
    assert "The request you have made requires authentication. (HTTP 401)" in err, err


# The SDK warns about its own future removals; not canopy's concern.
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_the_sdk_sees_the_same_identity(canopy_server: CanopyServer) -> None:
    conn = canopy_server.sdk()
    assert conn.identity.find_project("admin").name == "admin"
    assert {r.name for r in conn.identity.roles()} == {"admin", "member", "reader"}
    assert conn.current_project_id == conn.identity.find_project("admin").id
