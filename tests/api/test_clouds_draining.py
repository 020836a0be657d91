"""GET /canopy/v1/clouds says which clouds are draining and how many servers they hold."""

from __future__ import annotations

from sqlalchemy import update

from canopy.reconcile import seed
from canopy.store.models import Server

from .conftest import Api


async def _states(api: Api) -> dict[str, tuple[str, int, bool]]:
    r = await api.client.get("/canopy/v1/clouds")
    assert r.status_code == 200, r.text
    return {c["name"]: (c["state"], c["server_count"], c["enabled"]) for c in r.json()["items"]}


async def test_a_cloud_removed_from_the_config_is_draining_then_removed(api: Api) -> None:
    assert await _states(api) == {
        "private": ("enabled", 0, True),
        "public": ("enabled", 0, True),
    }
    ids = await api.place(2, availability_zone="public")
    settings = api.plane.settings
    only_private = settings.model_copy(update={"clouds": settings.clouds[:1]})
    await seed(api.plane.db, only_private, api.plane.clock)
    assert await _states(api) == {
        "private": ("enabled", 0, True),
        "public": ("draining", 2, False),
    }
    r = await api.client.get("/canopy/v1/clouds/public")
    assert r.json()["state"] == "draining" and r.json()["server_count"] == 2

    async with api.plane.db.session() as s:
        await s.execute(update(Server).where(Server.id.in_(ids)).values(deleted=True))
    assert (await _states(api))["public"] == ("removed", 0, False)


async def test_a_disabled_cloud_is_disabled_not_draining(api: Api) -> None:
    settings = api.plane.settings
    off = settings.clouds[1].model_copy(update={"enabled": False})
    await seed(
        api.plane.db,
        settings.model_copy(update={"clouds": [settings.clouds[0], off]}),
        api.plane.clock,
    )
    assert (await _states(api))["public"] == ("disabled", 0, False)
