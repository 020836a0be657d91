"""Provisioning: create each placed server on its cloud, find-by-canopy-id first.

A capacity error releases the claim, blocklists that cloud for `blocklist_seconds` and sends
the server back to placement; after `max_attempts` it goes to ERROR with a fault that names
every attempt. A boot that ends in ERROR is cleaned up and rescheduled the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from canopy.controllers.fencing import Hold
from canopy.controllers.observe import apply_observation
from canopy.controllers.runtime import Runtime
from canopy.controllers.summary import attempts_text
from canopy.controllers.tasks import LeasedTaskController, locked_held
from canopy.domain.errors import (
    AlreadyExists,
    CapacityError,
    CloudError,
    CloudQuotaError,
    InvalidRequest,
    TransientError,
    Unsupported,
)
from canopy.domain.specs import RemoteServer, Resources, ServerSpec
from canopy.domain.states import Ability, Phase, ServerStatus, TaskState
from canopy.providers.base import Compute
from canopy.services.keypairs import remote_key_name
from canopy.store.claims import release_claim
from canopy.store.events import add_event, event_row, latest_action_ids
from canopy.store.leases import release_lease
from canopy.store.models import (
    Cloud,
    Flavor,
    FlavorMapping,
    ImageMapping,
    InstanceActionEvent,
    Keypair,
    KeypairPush,
    Server,
)
from canopy.store.server_extras import user_data_for
from canopy.telemetry import CONTROLLER_STEPS

log = logging.getLogger("canopy.controllers")


@runtime_checkable
class KeypairImporter(Protocol):
    """A driver with the KEYPAIRS ability: it can import a public key under a name."""

    async def import_keypair(self, name: str, public_key: str) -> None:
        """Import `public_key` as `name`; AlreadyExists if the cloud has that name."""
        ...


@dataclass(frozen=True, slots=True)
class _Push:
    """A keypair to import into the server's cloud before the server is created."""

    keypair_id: int
    remote_name: str
    public_key: str


@dataclass(frozen=True, slots=True)
class _Work:
    spec: ServerSpec | None  # None for a reschedule (boot failed)
    push: _Push | None = None


def _keypair_importer(driver: Compute) -> KeypairImporter | None:
    if driver.abilities.has(Ability.KEYPAIRS) and isinstance(driver, KeypairImporter):
        return driver
    return None


_Record = tuple[str, str, RemoteServer, "asyncio.Future[None]"]
_RECORD_WINDOW = 0.02  # seconds a finished create waits for others to share its transaction
# What recording a create reads and may change: `apply_observation`'s fields and the lease.
_RECORD_COLUMNS = (
    Server.id,
    Server.cloud,
    Server.remote_id,
    Server.remote_recorded_at,
    Server.phase,
    Server.attempts,
    Server.retries,
    Server.updated_at,
    Server.claimed_by,
    Server.claim_expires_at,
    Server.status,
    Server.task_state,
    Server.desired_state,
    Server.observed_state,
    Server.observed_at,
    Server.action_at,
    Server.reboot_requested,
    Server.reboot_done,
    Server.launched_at,
    Server.addresses,
    Server.fault_code,
    Server.fault_message,
    Server.fault_at,
)


class ProvisioningController(LeasedTaskController[Server]):
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
        out: dict[Hashable, Any] = {}
        for server in rows:
            if server.phase == Phase.RESCHEDULE:
                out[server.id] = _Work(spec=None)
                continue
            assert server.cloud is not None
            f = flavors[server.flavor_id]
            remote_image = imap.get((server.cloud, server.image_id or ""), server.image_id or "")
            key_name, public_key, push = self._key_for(server, keys, pushed)
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
                ),
                push=push,
            )
            # From here on a remote server may exist: deletes and sync must look for it.
            if server.create_requested_at is None:
                server.create_requested_at = now
            server.action_at = now
        return out

    async def _keypairs(
        self, s: AsyncSession, rows: list[Server]
    ) -> tuple[dict[tuple[str, str], Keypair], dict[tuple[int, str], str]]:
        """The keypairs the batch boots with, by (user, name), and where each is pushed:
        (keypair id, cloud) -> the remote name it was pushed under."""
        wanted = {(r.user_id, r.key_name) for r in rows if r.key_name and r.phase == Phase.CREATE}
        if not wanted:
            return {}, {}
        found = await s.execute(
            select(Keypair).where(
                or_(*(and_(Keypair.user_id == u, Keypair.name == n) for u, n in wanted))
            )
        )
        keys = {(k.user_id, k.name): k for k in found.scalars()}
        pushes = await s.execute(
            select(KeypairPush.keypair_id, KeypairPush.cloud, KeypairPush.remote_name).where(
                KeypairPush.keypair_id.in_([k.id for k in keys.values()])
            )
        )
        return keys, {(int(k), str(c)): str(n) for k, c, n in pushes}

    def _key_for(
        self,
        server: Server,
        keys: dict[tuple[str, str], Keypair],
        pushed: dict[tuple[int, str], str],
    ) -> tuple[str | None, str | None, _Push | None]:
        """(remote key name, public key, push needed) for the spec of `server`.

        A cloud whose driver imports keypairs gets the keypair under its remote name,
        pushed on first use; any other cloud gets the public key itself in the spec. A
        push recorded under another name (from before names carried the fingerprint) is
        made again under the current one.
        """
        if not server.key_name:
            return None, None, None
        assert server.cloud is not None
        kp = keys.get((server.user_id, server.key_name))
        if kp is None:
            # Deleted after the server was requested (the servers API checks it exists):
            # canopy reads keys at boot, so the server boots without one. Nova would have
            # copied the key into the instance at request time.
            log.warning(
                "server %s: keypair %r of user %s no longer exists; booting without a key",
                server.id,
                server.key_name,
                server.user_id,
            )
            return None, None, None
        if _keypair_importer(self.rt.driver(server.cloud)) is None:
            return None, kp.public_key, None
        remote = remote_key_name(kp.user_id, kp.name, kp.fingerprint)
        if pushed.get((kp.id, server.cloud)) == remote:
            return remote, None, None
        return remote, None, _Push(kp.id, remote, kp.public_key)

    async def _push(self, cloud: str, driver: Compute, push: _Push, hold: Hold) -> None:
        """Import the keypair into `cloud` once, and record that it is there.

        A cloud that already has the remote name has this very key (the name carries its
        fingerprint): imported by a worker that died before recording it, or by another
        worker meanwhile. That counts as pushed.
        """
        importer = _keypair_importer(driver)
        assert importer is not None
        key = (push.keypair_id, cloud)
        lock = self._push_locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                async with self.rt.db.read() as s:
                    done = await s.get(KeypairPush, key)
                    if done is not None and done.remote_name == push.remote_name:
                        return  # pushed meanwhile (by this worker or another)
                with contextlib.suppress(AlreadyExists):  # this very key: see above
                    await self.rt.call(
                        cloud,
                        "import_keypair",
                        lambda: importer.import_keypair(push.remote_name, push.public_key),
                        hold=hold,
                    )
                try:
                    async with self.rt.db.session() as s:
                        row = await s.get(KeypairPush, key)
                        if row is None:
                            s.add(
                                KeypairPush(
                                    keypair_id=push.keypair_id,
                                    cloud=cloud,
                                    remote_name=push.remote_name,
                                    pushed_at=self.rt.clock.now(),
                                )
                            )
                        elif row.remote_name != push.remote_name:
                            row.remote_name = push.remote_name
                            row.pushed_at = self.rt.clock.now()
                except IntegrityError:
                    # Another worker recorded it first, or the keypair was deleted since:
                    # either way the key is on the cloud and the server can boot.
                    pass
                CONTROLLER_STEPS.labels(controller="provisioning", outcome="keypair_pushed").inc()
        finally:
            if not lock.locked():
                self._push_locks.pop(key, None)

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
        except (CapacityError, CloudQuotaError) as e:
            kind = "capacity" if isinstance(e, CapacityError) else "cloud quota"
            await self._attempt_failed(server.id, cloud, f"{kind} error: {e}", blocklist=True)
        except TransientError as e:
            await self._transient(server.id, cloud, e)
        except (InvalidRequest, Unsupported, CloudError) as e:
            await self._attempt_failed(server.id, cloud, f"rejected: {e}", blocklist=False)
        else:
            await self._created(server.id, cloud, remote)

    async def _created(self, sid: str, cloud: str, remote: RemoteServer) -> None:
        """Record a create; creates finishing together share one transaction.

        Until it is recorded, a created server exists only in the cloud (tagged with its
        canopy id) and as `create_requested_at` in its row: if this worker dies now, the
        lease expires and the retried create, or sync's adoption, finds it by that id.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._records.append((sid, cloud, remote, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_all())
        await done

    async def _record_all(self) -> None:
        while self._records:
            # Group commit: creates finish about together, so a moment's wait lets one
            # transaction record many of them instead of one or two.
            await asyncio.sleep(_RECORD_WINDOW)
            batch, self._records = self._records, []
            try:
                await self._record(batch)
            except BaseException as e:
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                if isinstance(e, asyncio.CancelledError):
                    raise
            else:
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_result(None)

    async def _record(self, batch: list[_Record]) -> None:
        """Record finished creates: Core statements on the columns involved, no ORM rows."""
        rt = self.rt
        now = rt.clock.now()
        ids = [sid for sid, *_ in batch]
        async with rt.db.session() as s:
            found = await s.execute(
                select(*_RECORD_COLUMNS)
                .where(Server.id.in_(ids))
                .order_by(Server.id)
                .with_for_update()
            )
            rows = {row.id: row for row in found}
            actions = await latest_action_ids(s, ids, "create")
            events: list[dict[str, Any]] = []
            changes: list[dict[str, Any]] = []
            for sid, cloud, remote, _ in batch:
                row = rows.get(sid)
                if row is None:
                    continue
                new = SimpleNamespace(**row._asdict())
                if row.cloud == cloud and row.remote_id is None:
                    new.remote_id = remote.remote_id
                    new.remote_recorded_at = now
                if row.phase == Phase.CREATE and row.cloud == cloud:
                    new.phase = Phase.CONVERGE
                    new.retries = 0
                    new.updated_at = now
                    if sid in actions:
                        events.append(
                            event_row(
                                actions[sid],
                                event=f"spawn (attempt {row.attempts})",
                                result="Success",
                                details=f"created {remote.remote_id} on {cloud}",
                                host=cloud,
                                now=now,
                            )
                        )
                    apply_observation(
                        new, remote.state, now, fault=remote.fault, addresses=remote.addresses
                    )
                if row.claimed_by == rt.worker_id:
                    new.claimed_by = None
                    new.claim_expires_at = None
                values = {k: v for k, v in vars(new).items() if k != "id" and v != getattr(row, k)}
                if values:
                    changes.append({"id": sid, **values})
            if changes:  # ORM bulk UPDATE by primary key: one executemany per set of columns
                await s.execute(update(Server), changes)
            if events:
                await s.execute(insert(InstanceActionEvent), events)
        CONTROLLER_STEPS.labels(controller="provisioning", outcome="created").inc(len(batch))

    async def _transient(self, sid: str, cloud: str, err: CloudError) -> None:
        rt = self.rt
        now = rt.clock.now()
        async with rt.db.session() as s:
            server = await locked_held(s, sid, rt.worker_id)
            if server is None:
                return
            server.retries += 1
            if server.retries > rt.settings.controllers.max_transient_retries and (
                server.phase == Phase.CREATE
            ):
                await release_lease(s, Server, sid, rt.worker_id)
                await self._fail_attempt(
                    s, server, cloud, f"kept failing ({server.retries} tries): {err}", False
                )
                gave_up = True
            else:
                server.next_attempt_at = now + timedelta(seconds=rt.backoff(server.retries))
                await release_lease(s, Server, sid, rt.worker_id)
                gave_up = False
        if gave_up:
            self.rt.notify("placement")
            return
        CONTROLLER_STEPS.labels(controller="provisioning", outcome="transient").inc()

    async def _attempt_failed(self, sid: str, cloud: str, error: str, *, blocklist: bool) -> None:
        async with self.rt.db.session() as s:
            server = await locked_held(s, sid, self.rt.worker_id)
            if server is None:
                return
            await release_lease(s, Server, sid, self.rt.worker_id)
            if server.phase not in (Phase.CREATE, Phase.RESCHEDULE) or server.cloud != cloud:
                return  # deleted meanwhile: the delete path releases the claim
            await self._fail_attempt(s, server, cloud, error, blocklist)
        self.rt.notify("placement")  # committed: back in phase schedule (or failed)

    async def _fail_attempt(
        self, s: AsyncSession, server: Server, cloud: str, error: str, blocklist: bool
    ) -> None:
        rt = self.rt
        now = rt.clock.now()
        sched = rt.settings.scheduler
        await release_claim(s, server.id)
        if blocklist and sched.blocklist_seconds > 0:
            row = await s.get(Cloud, cloud)
            if row is not None:
                row.blocklisted_until = now + timedelta(seconds=sched.blocklist_seconds)
                row.blocklist_reason = error
        server.attempt_log = [*server.attempt_log, {"cloud": cloud, "error": error}]
        server.cloud = None
        server.remote_id = None
        server.remote_recorded_at = None
        server.create_requested_at = None
        server.observed_state = None
        server.retries = 0
        server.next_attempt_at = None
        server.updated_at = now
        await add_event(
            s,
            server_id=server.id,
            action="create",
            event=f"spawn (attempt {server.attempts})",
            result="Error",
            details=f"{cloud}: {error}",
            host=cloud,
            now=now,
        )
        if server.attempts >= sched.max_attempts:
            server.phase = Phase.FAILED
            server.status = ServerStatus.ERROR
            server.task_state = None
            server.fault_code = 500
            server.fault_message = (
                "Exceeded maximum number of retries. Exhausted all hosts available for "
                f"retrying build failures for instance {server.id}. Attempts: "
                f"{attempts_text(server.attempt_log)}"
            )
            server.fault_at = now
            outcome = "error"
        else:
            server.phase = Phase.SCHEDULE
            server.task_state = TaskState.SCHEDULING
            server.fault_message = None
            outcome = "rescheduled"
        CONTROLLER_STEPS.labels(controller="provisioning", outcome=outcome).inc()

    async def _reschedule(self, server: Server, hold: Hold) -> None:
        """A boot ended in ERROR: delete what the cloud has, then try elsewhere."""
        cloud = server.cloud
        assert cloud is not None
        driver = self.rt.driver(cloud)
        rid = server.remote_id
        try:
            if rid is None:
                found = await self.rt.call(cloud, "find", lambda: driver.find(server.id), hold=hold)
                rid = found.remote_id if found else None
            if rid is not None:
                target = rid
                await self.rt.call(cloud, "delete", lambda: driver.delete(target), hold=hold)
        except TransientError as e:
            await self._transient(server.id, cloud, e)
            return
        fault = server.fault_message or "boot failed"
        await self._attempt_failed(server.id, cloud, f"boot failed: {fault}", blocklist=False)
