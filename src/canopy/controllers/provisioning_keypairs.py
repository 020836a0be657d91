"""Provisioning's keypair pushes: a driver that imports keypairs gets the server's key
under its remote name before the server is created, once per keypair and cloud."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.controllers.fencing import Hold
from canopy.controllers.runtime import Runtime
from canopy.domain.errors import AlreadyExists
from canopy.domain.states import Ability, Phase
from canopy.providers.base import Compute
from canopy.services.keypairs import remote_key_name
from canopy.store.models import Keypair, KeypairPush, Server
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


def _keypair_importer(driver: Compute) -> KeypairImporter | None:
    if driver.abilities.has(Ability.KEYPAIRS) and isinstance(driver, KeypairImporter):
        return driver
    return None


class KeypairPushing:
    """The provisioning controller's keypair steps: which keys a batch boots with, what
    each server's spec gets, and the push itself."""

    rt: Runtime
    _push_locks: dict[tuple[int, str], asyncio.Lock]

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
