"""Clouds at run time: POST, PATCH and DELETE /canopy/v1/clouds (cloud admins only).

The API writes the `clouds` row and returns; the workers build, rebuild or drop the
cloud's driver from the table (controllers/fleet.py). Credentials are write-only: taken
as any JSON value so that a malformed one is refused here without being echoed, sealed
with the vault, and never in an answer (`has_credentials` says whether any are stored).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.api.admin.clouds import (
    CloudView,
    capacity_blocks,
    cloud_view,
    load_clouds,
    server_counts,
)
from canopy.api.admin.common import FAULTS, Strict, could_be_cloud
from canopy.api.deps import ClockDep, SessionDep, get_settings, wake_after_commit
from canopy.credentials import Vault, vault
from canopy.domain.clock import Clock
from canopy.domain.errors import InvalidRequest, NotFound
from canopy.services.clouds import CloudChanges, NewCloud, add_cloud, change_cloud, remove_cloud

router = APIRouter(tags=["clouds"], responses=FAULTS)

CloudName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")]
_CREDENTIALS = (
    "Write-only credentials for the driver, sealed at rest and never returned: ec2 "
    "`{access_key_id, secret_access_key, session_token?}`; openstack `{auth_type, auth: "
    "{auth_url, username, password, project_name, ...}}` (or an application credential). "
    'Giving them sets options.credentials to "stored".'
)


class CloudCreate(Strict):
    """A cloud to add. `options` is the driver's table, as `[clouds.<driver>]` in the file."""

    name: CloudName = Field(description="The cloud's name, also its availability zone.")
    driver: str = Field(description="sim, ec2 or openstack.")
    tier: int = Field(default=0, ge=0, le=1000)
    enabled: bool = True
    concurrency: int = Field(default=50, ge=1, le=10000)
    flavor_map: dict[str, str] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    credentials: Any = Field(default=None, description=_CREDENTIALS)


class CloudUpdate(Strict):
    """Changes to a cloud added at run time; a field left out stays as it is. `options`
    is merged key by key (null puts a key back to its default); `credentials: null` drops
    the stored credentials."""

    tier: int | None = Field(default=None, ge=0, le=1000)
    enabled: bool | None = None
    concurrency: int | None = Field(default=None, ge=1, le=10000)
    flavor_map: dict[str, str] | None = None
    options: dict[str, Any] | None = None
    credentials: Any = Field(default=None, description=_CREDENTIALS)


def get_vault(request: Request) -> Callable[[], Vault]:
    """The installation's vault, opened on first use (reads or makes the key file)."""

    def open_vault() -> Vault:
        found: Vault | None = getattr(request.app.state, "vault", None)
        if found is None:
            settings = get_settings(request)
            found = vault(settings.secret_key, settings.data_path)
            request.app.state.vault = found
        return found

    return open_vault


VaultDep = Annotated[Callable[[], Vault], Depends(get_vault)]


def _credentials(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        # Never echoed: it may be a secret sent the wrong way.
        raise InvalidRequest(
            "Invalid input for field/attribute credentials: an object is expected."
        )
    return value


async def _view(s: AsyncSession, name: str, clock: Clock) -> CloudView:
    rows = await load_clouds(s, name)
    if not rows:
        raise NotFound(f"Cloud {name} could not be found.")
    c, has = rows[0]
    counts = await server_counts(s, name)
    now = clock.now()
    blocks = await capacity_blocks(s, now, name)
    return cloud_view(c, has, counts.get(name, {}), now, blocks.get(name))


@router.post("/clouds", status_code=201, summary="Add a cloud at run time (no restart)")
async def create_cloud(
    body: CloudCreate, s: SessionDep, clock: ClockDep, open_vault: VaultDep
) -> CloudView:
    new = NewCloud(
        name=body.name,
        driver=body.driver,
        tier=body.tier,
        enabled=body.enabled,
        concurrency=body.concurrency,
        flavor_map=body.flavor_map,
        options=body.options,
        credentials=_credentials(body.credentials),
    )
    row = await add_cloud(s, new, open_vault, clock.now())
    wake_after_commit(s)
    return await _view(s, row.name, clock)


@router.patch("/clouds/{name}", summary="Change, disable or enable a cloud added at run time")
async def update_cloud(
    name: str, body: CloudUpdate, s: SessionDep, clock: ClockDep, open_vault: VaultDep
) -> CloudView:
    if not could_be_cloud(name):
        raise NotFound(f"Cloud {name} could not be found.")
    given = body.model_fields_set
    changes = CloudChanges(
        tier=body.tier,
        enabled=body.enabled,
        concurrency=body.concurrency,
        flavor_map=body.flavor_map,
        options=body.options,
        credentials=_credentials(body.credentials),
        clear_credentials="credentials" in given and body.credentials is None,
    )
    await change_cloud(s, name, changes, open_vault, clock.now())
    wake_after_commit(s)
    return await _view(s, name, clock)


@router.delete(
    "/clouds/{name}",
    status_code=204,
    summary="Remove a cloud added at run time: it drains, then it is removed",
)
async def delete_cloud(name: str, s: SessionDep, clock: ClockDep) -> Response:
    if not could_be_cloud(name):
        raise NotFound(f"Cloud {name} could not be found.")
    await remove_cloud(s, name, clock.now())
    wake_after_commit(s)
    return Response(status_code=204)
