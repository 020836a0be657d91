"""Provisioning: create each placed server on its cloud, find-by-canopy-id first.

A capacity error releases the claim, blocks that zone (or the cloud) for that flavor for
`blocklist_seconds` and sends the server back to placement; after `max_attempts` clouds it
goes to ERROR with a fault that names every attempt. A boot that ends in ERROR is cleaned
up and rescheduled the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from canopy.controllers.attempts import sent_before
from canopy.controllers.fencing import Hold
from canopy.controllers.provisioning_failures import CreateFailures
from canopy.controllers.provisioning_keypairs import KeypairPushing, _Push
from canopy.controllers.provisioning_record import CreateRecording, _Record
from canopy.controllers.runtime import Runtime
from canopy.controllers.tasks import LeasedTaskController
from canopy.domain.errors import (
    CapacityError,
    CloudAuthError,
    CloudError,
    CloudQuotaError,
    InvalidRequest,
    TransientError,
    Unsupported,
)
from canopy.domain.specs import Resources, ServerSpec
from canopy.domain.states import Phase
from canopy.store.models import Flavor, FlavorMapping, ImageMapping, ReservableHost, Server
from canopy.store.server_extras import user_data_for


@dataclass(frozen=True, slots=True)
class _Work:
    spec: ServerSpec | None  # None for a reschedule (boot failed)
    push: _Push | None = None


class ProvisioningController(
    LeasedTaskController[Server], KeypairPushing, CreateRecording, CreateFailures
):
    """Creates placed servers; its keypair, recording and failure steps are its mixins."""

    name = "provisioning"
    model = Server
    order_by = (Server.created_at,)

    def cloud_column(self) -> QueryableAttribute[str | None]:
        return Server.cloud

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        # One import per keypair and cloud at a time in this worker: servers booting with
        # the same new key wait for the first push instead of repeating it.
        self._push_locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._records: list[_Record] = []
        self._recorder: asyncio.Task[None] | None = None

    def where(self) -> list[Any]:
        return [Server.phase.in_([Phase.CREATE, Phase.RESCHEDULE])]

    async def prepare(self, s: AsyncSession, rows: list[Server]) -> dict[Hashable, Any]:
        now = self.rt.clock.now()
        clouds_of = sorted({sv.cloud for sv in rows if sv.cloud is not None})
        flavors = {f.id: f for f in (await s.execute(select(Flavor))).scalars()}
        fmap = {
            (m.cloud, m.flavor_id): m.remote_flavor
            for m in (await s.execute(select(FlavorMapping))).scalars()
        }
        imap = {
            (m.cloud, m.image_id): m.remote_image
            for m in (await s.execute(select(ImageMapping))).scalars()
        }
        keys, pushed = await self._keypairs(s, rows)
        registered: dict[str, list[str]] = {}  # cloud -> its hosts out of the ordinary pool
        reserved: dict[int, str] = {}
        for h in (
            await s.execute(select(ReservableHost).where(ReservableHost.cloud.in_(clouds_of)))
        ).scalars():
            registered.setdefault(h.cloud, []).append(h.host)
            reserved[h.id] = h.host
        installation = await self.rt.installation_id()
        out: dict[Hashable, Any] = {}
        for server in rows:
            if server.phase == Phase.RESCHEDULE:
                out[server.id] = _Work(spec=None)
                continue
            assert server.cloud is not None
            f = flavors[server.flavor_id]
            remote_image = imap.get((server.cloud, server.image_id or ""), server.image_id or "")
            key_name, public_key, push = self._key_for(server, keys, pushed)
            pinned = (
                None if server.reserved_host_id is None else reserved.get(server.reserved_host_id)
            )
            if server.reserved_host_id is not None and pinned is None:
                # Its host was unregistered since: the driver refuses it (no such host)
                # rather than running it outside the reservation.
                pinned = f"unregistered-host-{server.reserved_host_id}"
            out[server.id] = _Work(
                spec=ServerSpec(
                    canopy_id=server.id,
                    name=server.name,
                    flavor_name=f.name,
                    resources=Resources(f.vcpus, f.ram_mb, f.disk_gb, 1),
                    remote_flavor=fmap.get((server.cloud, f.id)),
                    remote_image=remote_image,
                    key_name=key_name,
                    public_key=public_key,
                    metadata={str(k): str(v) for k, v in (server.metadata_ or {}).items()},
                    user_data=await user_data_for(s, server, rows),
                    zone=server.zone,
                    host=pinned,
                    exclude_hosts=() if pinned else tuple(registered.get(server.cloud, ())),
                    installation=installation,
                    first_attempt=(
                        server.create_requested_at is None and not sent_before(server.attempt_log)
                    ),
                    extra_specs={str(k): str(v) for k, v in (f.extra_specs or {}).items()},
                ),
                push=push,
            )
            # From here on a remote server may exist: deletes and sync must look for it.
            if server.create_requested_at is None:
                server.create_requested_at = now
            server.action_at = now
        return out

    async def handle(self, server: Server, hold: Hold, extra: Any) -> None:
        work: _Work = extra
        cloud = server.cloud
        assert cloud is not None
        driver = self.rt.driver(cloud)
        if work.spec is None:
            await self._reschedule(server, hold)
            return
        spec = work.spec
        try:
            if work.push is not None:
                await self._push(cloud, driver, work.push, hold)
            remote = await self.rt.call(cloud, "create", lambda: driver.create(spec), hold=hold)
        except CloudAuthError as e:
            await self._credentials_refused(server.id, cloud, e)
        except (CapacityError, CloudQuotaError) as e:
            kind = "capacity" if isinstance(e, CapacityError) else "cloud quota"
            await self._attempt_failed(
                server.id, cloud, f"{kind} error: {e}", blocklist=True, failure=e
            )
        except TransientError as e:
            await self._transient(server.id, cloud, e)
        except (InvalidRequest, Unsupported, CloudError) as e:
            await self._attempt_failed(server.id, cloud, f"rejected: {e}", blocklist=False)
        else:
            await self._created(server.id, cloud, remote)
