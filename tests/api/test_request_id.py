"""Every response names its request (`x-openstack-request-id`), and instance actions record
the same id, so a client's log leads to the action and back."""

from __future__ import annotations

import re

from tests.api.compute.helpers import V21, server_body, who
from tests.api.conftest import Api

FORM = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
GIVEN = "req-0f0e0d0c-0b0a-4909-8807-060504030201"


async def test_every_service_names_the_request(api: Api) -> None:
    w = await who(api)
    seen = set()
    for path in ("/identity/v3", f"{V21}/flavors", "/image/v2/images", "/healthz", "/nope"):
        r = await api.client.get(path, headers=w.h())
        rid = r.headers["x-openstack-request-id"]
        assert FORM.match(rid), (path, rid)
        seen.add(rid)
    assert len(seen) == 5  # a new id per request
    r = await api.client.get(f"{V21}/flavors", headers=w.h())
    assert r.headers["x-compute-request-id"] == r.headers["x-openstack-request-id"]
    r = await api.client.get("/image/v2/images", headers=w.h())
    assert "x-compute-request-id" not in r.headers  # Nova's own header, on compute only


async def test_the_id_of_a_create_is_the_id_of_its_action(api: Api) -> None:
    w = await who(api)
    r = await api.client.post(
        f"{V21}/servers", headers=w.h("2.79"), json=server_body(networks="none")
    )
    assert r.status_code == 202
    rid = r.headers["x-openstack-request-id"]
    sid = r.json()["server"]["id"]
    r = await api.client.get(f"{V21}/servers/{sid}/os-instance-actions", headers=w.h("2.79"))
    [action] = r.json()["instanceActions"]
    assert action["action"] == "create" and action["request_id"] == rid


async def test_a_callers_id_is_kept_and_a_malformed_one_replaced(api: Api) -> None:
    w = await who(api)
    r = await api.client.get(
        f"{V21}/flavors", headers={**w.h(), "X-OpenStack-Request-ID": GIVEN.upper()}
    )
    assert r.headers["x-openstack-request-id"] == GIVEN
    for bad in ("req-nope", "0f0e0d0c-0b0a-4909-8807-060504030201", "req-" + "a" * 200, ""):
        r = await api.client.get(f"{V21}/flavors", headers={**w.h(), "X-OpenStack-Request-ID": bad})
        rid = r.headers["x-openstack-request-id"]
        assert rid != bad and FORM.match(rid)
    # Errors carry it too (a 401: the token is no good).
    r = await api.client.get(
        f"{V21}/servers", headers={"X-Auth-Token": "nope", "X-OpenStack-Request-ID": GIVEN}
    )
    assert r.status_code == 401 and r.headers["x-openstack-request-id"] == GIVEN
