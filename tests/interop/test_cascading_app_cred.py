"""Cascading with an application credential: the parent reaches its child canopy through a
clouds.yaml entry of `auth_type: v3applicationcredential`, made in the child by a member of
one of its projects (no password of the child's in the parent's files)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.interop.app_creds import app_cred_clouds_yaml, member_of
from tests.interop.conftest import CanopyServer, start_canopy
from tests.interop.test_cascading import parent_config, until_status


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

    made = parent.openstack(
        "server",
        "create",
        "--image",
        "cirros",
        "--flavor",
        "m1.tiny",
        "--nic",
        "none",
        "--wait",
        "web",
    )
    assert made["status"] == "ACTIVE", made
    # In the child, it is in the credential's project.
    project = child.openstack("project", "show", "from-parent")["id"]
    [listed] = child.openstack("server", "list", "--all-projects", "--name", made["id"], "--long")
    shown = child.openstack("server", "show", listed["ID"])
    assert shown["project_id"] == project
    parent.openstack("server", "stop", made["id"], json_output=False)
    until_status(parent, made["id"], "SHUTOFF")
    parent.openstack("server", "delete", "--wait", made["id"], json_output=False)
    assert child.openstack("server", "list", "--all-projects", "--name", made["id"]) == []
