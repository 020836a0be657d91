"""Cascading with an application credential: the parent reaches its child canopy through a
clouds.yaml entry of `auth_type: v3applicationcredential`, made in the child by a member of
one of its projects (no password of the child's in the parent's files)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.interop.app_creds import app_cred, app_cred_clouds_yaml, member_of, project_in_child
from tests.interop.conftest import CanopyServer, start_canopy
from tests.interop.test_cascading import CIRROS, boot_tiny, parent_config, until_status


@pytest.fixture(scope="module")
def parent(
    canopy_server: CanopyServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CanopyServer]:
    child = canopy_server
    member_of(child, "parent-svc", "svc-pw", "from-parent", "member")
    here = tmp_path_factory.mktemp("parent")
    yaml = app_cred_clouds_yaml(
        child,
        here / "child-clouds.yaml",
        user="parent-svc",
        password="svc-pw",
        project="from-parent",
        name="parent",
    )
    config = parent_config(child).replace(str(child.clouds_yaml), str(yaml))
    server = start_canopy(here, extra_toml=config)
    try:
        yield server
    finally:
        server.stop()


def test_the_parent_boots_into_the_child_with_an_application_credential(
    parent: CanopyServer, canopy_server: CanopyServer
) -> None:
    child = canopy_server
    yaml = parent.data_dir.parent / "child-clouds.yaml"
    assert str(yaml) in (parent.data_dir.parent / "canopy.toml").read_text()
    assert "v3applicationcredential" in yaml.read_text()
    assert "password" not in yaml.read_text()

    made = boot_tiny(parent, "--wait", "web")
    assert made["status"] == "ACTIVE", made
    # In the child, it is in the credential's project.
    project = child.openstack("project", "show", "from-parent")["id"]
    assert project_in_child(child, made["id"]) == project
    parent.openstack("server", "stop", made["id"], json_output=False)
    until_status(parent, made["id"], "SHUTOFF")
    parent.openstack("server", "delete", "--wait", made["id"], json_output=False)
    assert child.openstack("server", "list", "--all-projects", "--name", made["id"]) == []


def test_a_child_added_at_run_time_signs_in_with_its_stored_application_credential(
    canopy_server: CanopyServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No file names the child: the parent's admin adds it through /canopy/v1/clouds with
    an application credential (sealed in the parent's database), maps an image, and a
    server boots in the child; the credential is never answered."""
    child = canopy_server
    member_of(child, "runtime-svc", "rt-pw", "from-runtime", "member")
    made = app_cred(child, user="runtime-svc", password="rt-pw", project="from-runtime", name="rt")
    parent = start_canopy(tmp_path_factory.mktemp("runtime-parent"))
    try:
        admin = {"X-Auth-Token": parent.token()}
        body = {
            "name": "site-c",
            "driver": "openstack",
            "tier": 2,
            "options": {
                "region_name": child.region,
                "network": "none",
                "schedule_poll_seconds": 0.1,
            },
            "credentials": {
                "auth_type": "v3applicationcredential",
                "auth": {
                    "auth_url": child.auth_url,
                    "application_credential_id": made["id"],
                    "application_credential_secret": made["secret"],
                },
            },
        }
        r = httpx.post(f"{parent.base_url}/canopy/v1/clouds", json=body, headers=admin)
        assert r.status_code == 201, r.text
        assert made["secret"] not in r.text and r.json()["has_credentials"] is True
        r = httpx.put(
            f"{parent.base_url}/canopy/v1/images/{CIRROS}/map/site-c",
            json={"remote_image": CIRROS},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        shown = httpx.get(f"{parent.base_url}/canopy/v1/clouds/site-c", headers=admin)
        assert made["secret"] not in shown.text

        server = boot_tiny(parent, "--availability-zone", "site-c", "--wait", "runtime")
        assert server["status"] == "ACTIVE", server
        project = child.openstack("project", "show", "from-runtime")["id"]
        assert project_in_child(child, server["id"]) == project
        parent.openstack("server", "delete", "--wait", server["id"], json_output=False)
        assert child.openstack("server", "list", "--all-projects", "--name", server["id"]) == []
        assert made["secret"] not in parent.log()
    finally:
        parent.stop()
