"""Registering a host that runs servers is refused as Blazar refuses it (HostHavingServers:
409, "Servers [...] found for host H" in Blazar's manager-error body), nothing changed;
once they are gone the host registers."""

from __future__ import annotations

import ast

from sqlalchemy import func, select, update

from canopy.store.models import Claim, Job, ReservableHost, Server
from tests.api.conftest import Api
from tests.api.reservation.test_host_reservations import HOSTS, _all_active, api
from tests.api.reservation.test_leases import blazar_error

__all__ = ["api"]  # the fixture


async def _held(api: Api) -> tuple[int, int]:
    """Registered hosts, and the claims keeping hosts out of the ordinary pool."""
    async with api.plane.db.read() as s:
        hosts = await s.scalar(select(func.count()).select_from(ReservableHost))
        pool = await s.scalar(select(func.count()).where(Claim.reservation_id.like("host:%")))
        return int(hosts or 0), int(pool or 0)


async def _gone(api: Api, ids: list[str]) -> bool:
    return all(sv.deleted for sv in await api.plane.servers() if sv.id in ids)


async def test_a_host_with_servers_is_refused_until_they_are_gone(api: Api) -> None:
    # Two m1.small (1 vcpu each) on the private cloud: first fit puts both on h1.
    ids = await api.place(2, flavor="m1.small")
    await api.plane.run_until(lambda: _all_active(api, ids))
    sim = api.plane.sim("private")
    servers = sorted(
        (sv for sv in await api.plane.servers() if sv.id in ids),
        key=lambda sv: (sv.created_at, sv.id),
    )
    hosts = {await sim.host_of(sv.remote_id or "") for sv in servers}
    assert hosts == {"h1"}
    assert {sv.host for sv in servers} == {"h1"}  # what the cloud reported, recorded

    r = await api.client.post(HOSTS, json={"name": "private:h1", "gpu": "True"})
    assert r.status_code == 409, r.text
    body = r.json()
    # Blazar's manager-error body (render_error_message), error_name being the code again.
    assert set(body) == {"error_code", "error_message", "error_name"}, body
    assert body["error_code"] == 409 and body["error_name"] == 409
    message = body["error_message"]
    prefix, suffix = "Servers [", "] found for host private:h1"
    assert message.startswith(prefix) and message.endswith(suffix), message
    # Nova's hypervisor server entries, as Blazar formats them: a list of {name, uuid}.
    listed = ast.literal_eval(message[len(prefix) : -len(suffix)])
    assert listed == [{"name": sv.name, "uuid": sv.id} for sv in servers]
    assert await _held(api) == (0, 0)  # nothing changed

    # Another host of the same cloud, empty, registers; the bare name is repeated as given.
    r = await api.client.post(HOSTS, json={"name": "private:h2"})
    assert r.status_code == 201, r.text
    assert await _held(api) == (1, 1)

    # Still refused while one server remains; then both gone, h1 registers.
    for sid in ids:
        assert (await api.client.delete(f"/compute/v2.1/servers/{sid}")).status_code == 204
        if sid == ids[0]:
            await api.plane.run_until(lambda: _gone(api, [ids[0]]))
            r = await api.client.post(HOSTS, json={"name": "private:h1"})
            assert r.status_code == 409, r.text
            assert f"'uuid': '{ids[1]}'" in r.json()["error_message"]
            assert f"'uuid': '{ids[0]}'" not in r.json()["error_message"]
    await api.plane.run_until(lambda: _gone(api, ids))
    r = await api.client.post(HOSTS, json={"name": "private:h1", "gpu": "True"})
    assert r.status_code == 201, r.text
    assert r.json()["host"]["gpu"] == "True"
    assert await _held(api) == (2, 2)


async def test_a_server_still_being_created_on_the_cloud_holds_registration_back(
    api: Api,
) -> None:
    # Placed on the private cloud, not created yet (only placement has run): where it
    # lands is not known, so no host of that cloud registers until it is (a plain 409).
    [sid] = await api.plane.create(1, flavor="m1.small")
    await api.plane.worker.placement.run_once()
    [server] = [sv for sv in await api.plane.servers() if sv.id == sid]
    assert server.cloud == "private" and server.host is None and server.remote_id is None
    message = blazar_error(await api.client.post(HOSTS, json={"name": "private:h4"}), 409)
    assert sid in message and "try again" in message
    assert await _held(api) == (0, 0)
    # A host of another cloud is not held back by it.
    r = await api.client.post(HOSTS, json={"name": "public:h4"})
    assert r.status_code == 201, r.text
    await api.plane.run_until(lambda: _all_active(api, [sid]))
    # Now it is known to be on h1: h4 registers, h1 does not.
    r = await api.client.post(HOSTS, json={"name": "private:h4"})
    assert r.status_code == 201, r.text
    r = await api.client.post(HOSTS, json={"name": "private:h1"})
    assert r.status_code == 409 and r.json()["error_code"] == 409, r.text


async def test_a_server_whose_host_was_never_recorded_holds_registration_back(api: Api) -> None:
    # A server the cloud runs, from before servers.host existed (migration 0024 adds the
    # column empty; sync's next full pass fills it): it may be on any host of its cloud.
    [sid] = await api.place(1, flavor="m1.small")
    await api.plane.run_until(lambda: _all_active(api, [sid]))
    async with api.plane.db.session() as s:
        await s.execute(update(Server).where(Server.id == sid).values(host=None))
    for name in ("private:h1", "private:h2"):
        message = blazar_error(await api.client.post(HOSTS, json={"name": name}), 409)
        assert sid in message and "not known yet" in message and "try again" in message
    assert await _held(api) == (0, 0)
    r = await api.client.post(HOSTS, json={"name": "public:h1"})  # another cloud's host
    assert r.status_code == 201, r.text

    # A worker's first full pass (a new worker: no digest, no cursor) records the host.
    api.plane.worker.sync._digests.clear()
    async with api.plane.db.session() as s:
        await s.execute(update(Job).where(Job.name == "sync:private").values(cursor=None))
    await api.plane.worker.sync.sync_cloud("private", force=True)
    [server] = [sv for sv in await api.plane.servers() if sv.id == sid]
    assert server.host == "h1"
    message = blazar_error(await api.client.post(HOSTS, json={"name": "private:h1"}), 409)
    assert message.startswith("Servers [") and sid in message
    r = await api.client.post(HOSTS, json={"name": "private:h2"})
    assert r.status_code == 201, r.text
