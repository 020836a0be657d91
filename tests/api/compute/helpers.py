"""Helpers for the Nova front-door tests: tokens by role, microversion headers, and a way
to drive a server to a status by stepping the controllers on the fake clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.api.conftest import Api
from tests.api.tokens import caller

V21 = "/compute/v2.1"


@dataclass(frozen=True)
class Who:
    token: str
    project_id: str
    user_id: str

    def h(self, version: str | None = None) -> dict[str, str]:
        """Headers: the token, and a microversion in both of Nova's header forms."""
        out = {"X-Auth-Token": self.token}
        if version is not None:
            out["OpenStack-API-Version"] = f"compute {version}"
            out["X-OpenStack-Nova-API-Version"] = version
        return out


async def who(
    api: Api, *, role: str = "member", project: str = "demo", user: str | None = None
) -> Who:
    """A token for a user holding `role` on `project` (the plane's project by default)."""
    name = user or {"member": "alice", "reader": "rita", "admin": "root"}.get(role, role)
    c = await caller(api.plane.db, api.plane.clock, project=project, user=name, role=role)
    return Who(c.token, c.project_id, c.user_id)


def server_body(name: str = "vm", **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "imageRef": "cirros", "flavorRef": "1"}
    body.update(kw)
    return {"server": body}


async def create(api: Api, w: Who, name: str = "vm", *, version: str = "2.79", **kw: Any) -> str:
    """POST /servers (networks "none" from 2.37) and return the new server's id."""
    if "networks" not in kw and _at_least(version, 37):
        kw["networks"] = "none"
    r = await api.client.post(f"{V21}/servers", headers=w.h(version), json=server_body(name, **kw))
    assert r.status_code == 202, r.text
    sid: str = r.json()["server"]["id"]
    return sid


def _at_least(version: str, minor: int) -> bool:
    major, _, m = version.partition(".")
    return (int(major), int(m)) >= (2, minor)


async def show(api: Api, w: Who, sid: str, version: str = "2.79") -> dict[str, Any]:
    r = await api.client.get(f"{V21}/servers/{sid}", headers=w.h(version))
    assert r.status_code == 200, r.text
    server: dict[str, Any] = r.json()["server"]
    return server


async def until_status(
    api: Api, w: Who, sid: str, status: str, *, steps: int = 200
) -> dict[str, Any]:
    """Step the controllers until GET /servers/{id} shows `status`."""
    last: dict[str, Any] = {}
    for _ in range(steps):
        last = await show(api, w, sid)
        if last["status"] == status and last["OS-EXT-STS:task_state"] is None:
            return last
        await api.plane.step()
    raise AssertionError(f"server {sid} never reached {status}: {last.get('status')}")


async def until_gone(api: Api, w: Who, sid: str, *, steps: int = 200) -> None:
    for _ in range(steps):
        r = await api.client.get(f"{V21}/servers/{sid}", headers=w.h())
        if r.status_code == 404:
            return
        await api.plane.step()
    raise AssertionError(f"server {sid} was never deleted")


def fault(r: httpx.Response, code: int) -> str:
    """The response is a Nova fault of this code; its message."""
    names = {
        400: "badRequest",
        401: "unauthorized",
        403: "forbidden",
        404: "itemNotFound",
        405: "badMethod",
        406: "notAcceptable",
        409: "conflictingRequest",
    }
    assert r.status_code == code, r.text
    body = r.json()
    assert list(body) == [names[code]], body
    assert body[names[code]]["code"] == code
    message: str = body[names[code]]["message"]
    return message
