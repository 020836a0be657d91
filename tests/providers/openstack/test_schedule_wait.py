"""Creates waiting for the child's scheduler: one changes-since listing answers every
waiter, the interval doubling up to a second; at the deadline (or when a listing fails)
a waiter reads its server by id (a scripted client and a fake clock, no Nova)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime
from typing import Any

from canopy.domain.clock import FakeClock
from canopy.domain.errors import CapacityError
from canopy.domain.specs import Resources, ServerSpec
from canopy.domain.states import RemoteState
from canopy.providers.openstack.driver import OpenStackCompute
from canopy.providers.openstack.options import OpenStackOptions


def _server(rid: str, status: str, task: str | None = None, fault: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rid,
        "name": "vm",
        "status": status,
        "OS-EXT-STS:task_state": task,
        "metadata": {},
    }
    if fault:
        out["fault"] = {"message": fault}
    return out


class Scripted:
    """Creates r1, r2, ...; each server is scheduled (ACTIVE, or `outcome`) after
    `scheduling_listings` listings; records every call with the clock."""

    def __init__(self, clock: FakeClock, scheduling_listings: int, outcome: str = "ok") -> None:
        self.clock = clock
        self.left = scheduling_listings
        self.outcome = outcome
        self.made = 0
        self.calls: list[tuple[str, str, datetime]] = []
        self.fail_listing = False

    def _now(self, rid: str) -> dict[str, Any]:
        if self.left > 0:
            return _server(rid, "BUILD", "scheduling")
        if self.outcome == "no host":
            return _server(rid, "ERROR", None, "No valid host was found. ")
        return _server(rid, "ACTIVE")

    def request(self, method: str, path: str, operation: str, **kw: Any) -> Any:
        self.calls.append((method, path, self.clock.now()))
        if path == "/flavors/detail":
            return {"flavors": [{"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512}]}
        if method == "POST":
            self.made += 1
            return {"server": {"id": f"r{self.made}"}}
        if method == "DELETE":
            return None
        if path == "/servers/detail":
            assert "changes-since" in kw["params"]
            if self.fail_listing:
                from canopy.domain.errors import TransientError

                raise TransientError("listing failed")
            self.left -= 1
            return {"servers": [self._now(f"r{i}") for i in range(1, self.made + 1)]}
        rid = path.rsplit("/", 1)[1]
        return {"server": self._now(rid)}

    def servers(self, params: dict[str, Any], operation: str) -> list[dict[str, Any]]:
        return list(self.request("GET", "/servers/detail", operation, params=params)["servers"])

    def of(self, method: str, path: str) -> list[datetime]:
        return [at for m, p, at in self.calls if (m, p) == (method, path)]

    def close(self) -> None:
        pass


def _driver(clock: FakeClock, client: Scripted, **options: Any) -> OpenStackCompute:
    opts = OpenStackOptions(cloud="x", network="none", flavor_map={"m1.tiny": "1"}, **options)
    return OpenStackCompute("x", opts, clock, client=client)  # type: ignore[arg-type]


def _spec() -> ServerSpec:
    return ServerSpec(
        canopy_id=str(uuid.uuid4()),
        name="vm",
        flavor_name="m1.tiny",
        resources=Resources(1, 512, 1),
        remote_flavor="1",
        remote_image="img",
        first_attempt=True,
    )


def _gaps(at: list[datetime]) -> list[float]:
    return [round((b - a).total_seconds(), 3) for a, b in itertools.pairwise(at)]


async def test_one_listing_answers_every_waiting_create_at_a_doubling_interval() -> None:
    clock = FakeClock()
    client = Scripted(clock, scheduling_listings=6)
    driver = _driver(clock, client, schedule_poll_seconds=0.1, schedule_wait_seconds=10)
    made = await asyncio.gather(*(driver.create(_spec()) for _ in range(5)))
    assert [r.state for r in made] == [RemoteState.RUNNING] * 5
    listings = client.of("GET", "/servers/detail")
    assert len(listings) == 6  # for all five: not a read per server per interval
    assert _gaps([clock_start(client), *listings]) == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert not [c for c in client.calls if c[1].startswith("/servers/r")]
    await driver.close()


def clock_start(client: Scripted) -> datetime:
    return client.of("POST", "/servers")[0]


async def test_at_the_deadline_a_create_reads_its_server_and_returns_it_unscheduled() -> None:
    clock = FakeClock()
    client = Scripted(clock, scheduling_listings=100)
    driver = _driver(clock, client, schedule_poll_seconds=0.5, schedule_wait_seconds=2.2)
    remote = await driver.create(_spec())
    assert remote.state == RemoteState.PENDING
    assert _gaps([clock_start(client), *client.of("GET", "/servers/detail")]) == [0.5, 1.0, 0.7]
    assert len(client.of("GET", "/servers/r1")) == 1
    await driver.close()


async def test_no_valid_host_seen_in_the_listing_is_a_capacity_error_and_deleted() -> None:
    clock = FakeClock()
    client = Scripted(clock, scheduling_listings=1, outcome="no host")
    driver = _driver(clock, client, schedule_poll_seconds=0.5)
    try:
        await driver.create(_spec())
        raise AssertionError("no capacity error")
    except CapacityError:
        pass
    assert client.of("DELETE", "/servers/r1")
    await driver.close()


async def test_a_failed_listing_leaves_each_create_to_read_its_own_server() -> None:
    clock = FakeClock()
    client = Scripted(clock, scheduling_listings=0)
    client.fail_listing = True
    driver = _driver(clock, client, schedule_poll_seconds=0.5)
    remote = await driver.create(_spec())
    assert remote.state == RemoteState.RUNNING
    assert len(client.of("GET", "/servers/r1")) == 1
    await driver.close()


async def test_no_wait_reads_the_server_once() -> None:
    clock = FakeClock()
    client = Scripted(clock, scheduling_listings=5)
    driver = _driver(clock, client, schedule_wait_seconds=0)
    assert (await driver.create(_spec())).state == RemoteState.PENDING
    assert not client.of("GET", "/servers/detail") and len(client.of("GET", "/servers/r1")) == 1
    await driver.close()
