"""Application credentials through the real `openstack` CLI, and openstacksdk (keystoneauth's
`v3applicationcredential` plugin) logging in with one, against a real `canopy up`."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import CanopyServer

CAROL = ("--os-username", "carol", "--os-password", "pw", "--os-project-name", "apps")


@pytest.fixture(scope="module")
def carol(canopy_server: CanopyServer) -> CanopyServer:
    osc = canopy_server.openstack
    osc("project", "create", "apps")
    osc("user", "create", "carol", "--password", "pw", "--project", "apps")
    osc("role", "add", "--project", "apps", "--user", "carol", "member", json_output=False)
    osc("role", "add", "--project", "apps", "--user", "carol", "reader", json_output=False)
    return canopy_server


def _fields(shown: dict[str, Any]) -> dict[str, Any]:
    """A `-f json` show of OSC, keyed in lower case (OSC's SDK-based commands say "ID",
    "Name", "Secret"; older ones "id", "name", "secret")."""
    return {k.lower(): v for k, v in shown.items()}


def _app_cred_env(server: CanopyServer, **auth: str) -> dict[str, str]:
    """OS_* for the `v3applicationcredential` plugin (no user, password or project)."""
    env = server.env()
    for key in ("OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_PROJECT_DOMAIN_NAME"):
        env.pop(key)
    env["OS_AUTH_TYPE"] = "v3applicationcredential"
    env.update({f"OS_APPLICATION_CREDENTIAL_{k.upper()}": v for k, v in auth.items()})
    return env


def test_create_list_show_use_and_delete(carol: CanopyServer) -> None:
    osc = carol.openstack
    made = _fields(
        osc(*CAROL, "application", "credential", "create", "ci", "--description", "for CI")
    )
    assert made["name"] == "ci" and made["secret"] and made["description"] == "for CI"
    assert made["unrestricted"] is False
    assert "member" in str(made["roles"]) and "reader" in str(made["roles"])
    listed = osc(*CAROL, "application", "credential", "list")
    assert [(c["ID"], c["Name"]) for c in listed] == [(made["id"], "ci")]
    shown = _fields(osc(*CAROL, "application", "credential", "show", "ci"))
    assert shown["id"] == made["id"] and "secret" not in shown

    # The CLI logs in with it (by id), scoped to its project.
    env = _app_cred_env(carol, id=made["id"], secret=made["secret"])
    token = osc("token", "issue", env=env)
    project = osc("project", "show", "apps")
    assert token["project_id"] == project["id"]
    assert osc("server", "list", env=env) == []
    # A restricted credential may not make another one.
    _, err = carol.openstack_fail("application", "credential", "create", "more", env=env)
    assert "403" in err, err

    # A reader-only one, with a secret of one's own; logging in by name and user name.
    reader = _fields(
        osc(
            *CAROL,
            "application",
            "credential",
            "create",
            "ro",
            "--secret",
            "s3cret",
            "--role",
            "reader",
        )
    )
    assert "member" not in str(reader["roles"])
    env = _app_cred_env(carol, name="ro", secret="s3cret") | {
        "OS_USERNAME": "carol",
        "OS_USER_DOMAIN_NAME": "Default",
    }
    assert osc("server", "list", env=env) == []
    _, err = carol.openstack_fail("keypair", "create", "k", env=env)
    assert "403" in err, err

    osc(*CAROL, "application", "credential", "delete", "ci", json_output=False)
    env = _app_cred_env(carol, id=made["id"], secret=made["secret"])
    _, err = carol.openstack_fail("token", "issue", env=env)
    assert "401" in err, err
    assert [c["Name"] for c in osc(*CAROL, "application", "credential", "list")] == ["ro"]


def test_openstacksdk_authenticates_with_v3applicationcredential(carol: CanopyServer) -> None:
    import openstack

    made = _fields(carol.openstack(*CAROL, "application", "credential", "create", "sdk"))
    common: dict[str, Any] = {
        "auth_type": "v3applicationcredential",
        "region_name": carol.region,
        "interface": "public",
        "identity_api_version": "3",
    }
    by_id = openstack.connect(
        auth={
            "auth_url": carol.auth_url,
            "application_credential_id": made["id"],
            "application_credential_secret": made["secret"],
        },
        **common,
    )
    by_name = openstack.connect(
        auth={
            "auth_url": carol.auth_url,
            "application_credential_name": "sdk",
            "application_credential_secret": made["secret"],
            "username": "carol",
            "user_domain_name": "Default",
        },
        **common,
    )
    project = carol.openstack("project", "show", "apps")["id"]
    for conn in (by_id, by_name):
        try:
            assert conn.current_project_id == project
            assert list(conn.compute.servers()) == []
            assert {f.name for f in conn.compute.flavors()} >= {"m1.tiny"}
        finally:
            conn.close()
    wrong = openstack.connect(
        auth={
            "auth_url": carol.auth_url,
            "application_credential_id": made["id"],
            "application_credential_secret": "wrong",
        },
        **common,
    )
    from keystoneauth1.exceptions.http import Unauthorized

    with pytest.raises(Unauthorized) as caught:
        list(wrong.compute.servers())
    assert caught.value.http_status == 401
