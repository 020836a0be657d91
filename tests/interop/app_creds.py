"""A clouds.yaml whose entry signs in with an application credential made in a child canopy."""

from __future__ import annotations

from pathlib import Path

from tests.interop.conftest import CanopyServer


def member_of(child: CanopyServer, user: str, password: str, project: str, role: str) -> None:
    """Create `project` and `user` in the child, with `role` on it."""
    child.openstack("project", "create", project)
    child.openstack("user", "create", user, "--password", password, "--project", project)
    child.openstack("role", "add", "--project", project, "--user", user, role, json_output=False)


def app_cred(
    child: CanopyServer, *, user: str, password: str, project: str, name: str
) -> dict[str, str]:
    """Have `user` create application credential `name` on `project` in the child (with the
    real CLI): its fields, lower-cased (`id`, `secret`, ...)."""
    as_user = ("--os-username", user, "--os-password", password, "--os-project-name", project)
    made = child.openstack(*as_user, "application", "credential", "create", name)
    return {k.lower(): v for k, v in made.items()}


def project_in_child(child: CanopyServer, server_id: str) -> str:
    """The project the child holds the parent's server `server_id` in."""
    [listed] = child.openstack("server", "list", "--all-projects", "--name", server_id)
    return str(child.openstack("server", "show", listed["ID"])["project_id"])


def app_cred_clouds_yaml(
    child: CanopyServer,
    path: Path,
    *,
    user: str,
    password: str,
    project: str,
    name: str,
    entry: str = "canopy",
) -> Path:
    """Have `user` create application credential `name` on `project` in the child (with
    the real CLI) and write a clouds.yaml at `path` whose `entry` uses it."""
    made = app_cred(child, user=user, password=password, project=project, name=name)
    path.write_text(
        "clouds:\n"
        f"  {entry}:\n"
        "    auth_type: v3applicationcredential\n"
        "    auth:\n"
        f'      auth_url: "{child.auth_url}"\n'
        f'      application_credential_id: "{made["id"]}"\n'
        f'      application_credential_secret: "{made["secret"]}"\n'
        f'    region_name: "{child.region}"\n'
        '    interface: "public"\n'
        "    identity_api_version: 3\n"
    )
    path.chmod(0o600)
    return path
