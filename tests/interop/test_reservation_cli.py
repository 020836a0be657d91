"""Blazar through the real `openstack reservation ...` (python-blazarclient) against a real
`canopy up`: leases created, listed, shown, prolonged and deleted, and servers booted into
an instance reservation with `--flavor <reservation id>`, whose amount `lease set
--reservation id=<rid>,amount=N` raises and will not lower below the servers in it, and
which are deleted when the lease reaches its end."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from .conftest import CanopyServer


def _create(server: CanopyServer, *args: str) -> Any:
    """`openstack reservation lease create ARGS -f json`: the client prints a line
    ("Created a new lease:") before the JSON."""
    done = server.run_openstack("reservation", "lease", "create", *args, "-f", "json")
    assert done.returncode == 0, f"{done.stderr}\n{server.log()[-3000:]}"
    return json.loads(done.stdout[done.stdout.index("{") :])


def _wait_status(server: CanopyServer, lease: str, status: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    shown: Any = None
    while time.monotonic() < deadline:
        shown = server.openstack("reservation", "lease", "show", lease)
        if shown["status"] == status:
            return shown
        time.sleep(0.5)
    raise AssertionError(f"lease {lease} is {shown and shown['status']}, not {status}")


def test_lease_create_list_show_set_delete(canopy_server: CanopyServer) -> None:
    osc = canopy_server.openstack
    start = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d %H:%M")
    end = (datetime.now(UTC) + timedelta(days=2, hours=2)).strftime("%Y-%m-%d %H:%M")
    lease = _create(
        canopy_server,
        "--reservation",
        "resource_type=virtual:instance,vcpus=1,memory_mb=512,disk_gb=1,amount=3,affinity=False",
        "--start-date",
        start,
        "--end-date",
        end,
        "later",
    )
    assert lease["name"] == "later" and lease["status"] == "PENDING"
    listed = osc("reservation", "lease", "list")
    assert [x["name"] for x in listed] == ["later"]
    shown = osc("reservation", "lease", "show", "later")  # by name: list, then filter
    assert shown["id"] == lease["id"]
    before = datetime.strptime(shown["end_date"], "%Y-%m-%dT%H:%M:%S.%f")
    osc("reservation", "lease", "set", "--prolong-for", "1h", "later", json_output=False)
    after = osc("reservation", "lease", "show", lease["id"])["end_date"]
    assert datetime.strptime(after, "%Y-%m-%dT%H:%M:%S.%f") == before + timedelta(hours=1)
    # --reduce-by, --defer-by, --advance-by: the client reads the dates Canopy shows and
    # sends new ones in whole minutes.
    osc("reservation", "lease", "set", "--reduce-by", "30m", "later", json_output=False)
    osc("reservation", "lease", "set", "--defer-by", "1h", "later", json_output=False)
    osc("reservation", "lease", "set", "--advance-by", "30m", "later", json_output=False)
    moved = osc("reservation", "lease", "show", lease["id"])
    first = datetime.strptime(shown["start_date"], "%Y-%m-%dT%H:%M:%S.%f")
    assert datetime.strptime(moved["start_date"], "%Y-%m-%dT%H:%M:%S.%f") == first + timedelta(
        minutes=30
    )
    assert datetime.strptime(moved["end_date"], "%Y-%m-%dT%H:%M:%S.%f") == before + timedelta(
        minutes=30
    )
    osc("reservation", "lease", "set", "--name", "renamed", lease["id"], json_output=False)
    field = shown["reservations"]
    rid = (json.loads(field) if isinstance(field, str) else field)["id"]
    osc(
        "reservation",
        "lease",
        "set",
        "--reservation",
        f"id={rid},amount=5",
        "renamed",
        json_output=False,
    )
    field = osc("reservation", "lease", "show", lease["id"])["reservations"]
    assert (json.loads(field) if isinstance(field, str) else field)["amount"] == 5
    rc, err = canopy_server.openstack_fail(
        "reservation",
        "lease",
        "create",
        "--reservation",
        "resource_type=virtual:instance,vcpus=1,memory_mb=512,disk_gb=1,amount=10000,affinity=False",
        "--start-date",
        start,
        "--end-date",
        end,
        "too-big",
    )
    # Blazar's own error body (error_code, error_message, error_name): the client shows
    # error_message alone, not the body.
    assert rc == 1 and "ERROR: Not enough resources available" in err, err
    assert "error_code" not in err and "error_name" not in err, err
    osc("reservation", "lease", "delete", "renamed", json_output=False)
    assert osc("reservation", "lease", "list") == []


def test_boot_into_an_instance_reservation(canopy_server: CanopyServer) -> None:
    osc = canopy_server.openstack
    end = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M")
    lease = _create(
        canopy_server,
        "--reservation",
        "resource_type=virtual:instance,vcpus=1,memory_mb=512,disk_gb=1,amount=2,affinity=False",
        "--end-date",
        end,
        "now-lease",
    )
    shown = _wait_status(canopy_server, lease["id"], "ACTIVE")
    # The client shows the reservation as formatted JSON text.
    field = shown["reservations"]
    rid = (json.loads(field) if isinstance(field, str) else field)["id"]
    assert isinstance(rid, str) and rid
    servers = [
        osc("server", "create", "--image", "cirros", "--flavor", rid, "--wait", f"r{i}")
        for i in range(2)
    ]
    assert {s["status"] for s in servers} == {"ACTIVE"}
    rc, err = canopy_server.openstack_fail(
        "server", "create", "--image", "cirros", "--flavor", rid, "--wait", "r-past"
    )
    assert rc == 1 and "holds 2 servers and 2 in use: no room for 1 more" in err, err
    # `lease set --reservation id=<rid>,amount=N`: one more slot, then the third boots.
    osc(
        "reservation",
        "lease",
        "set",
        "--reservation",
        f"id={rid},amount=3",
        lease["id"],
        json_output=False,
    )
    osc("server", "create", "--image", "cirros", "--flavor", rid, "--wait", "r2")
    rc, err = canopy_server.openstack_fail(
        "reservation", "lease", "set", "--reservation", f"id={rid},amount=1", lease["id"]
    )
    assert rc == 1 and "has 3 servers in it: its amount cannot go below 3" in err, err
    # The end: `lease set --end-date` to the next whole minute at least 20 s away (the
    # client's dates are whole minutes); at that instant the lease ends and its servers
    # are deleted, the before-end event first.
    end_at = (datetime.now(UTC) + timedelta(seconds=80)).replace(second=0, microsecond=0)
    osc(
        "reservation",
        "lease",
        "set",
        "--end-date",
        end_at.strftime("%Y-%m-%d %H:%M"),
        lease["id"],
        json_output=False,
    )
    ended = _wait_status(canopy_server, lease["id"], "TERMINATED", timeout=150)
    events = {e["event_type"]: e for e in _objects(ended["events"])}
    assert {e["status"] for e in events.values()} == {"DONE"}, events
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = {s["Name"] for s in osc("server", "list")}
        if not names & {"r0", "r1", "r2"}:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"servers of the ended lease still listed: {names}")


def test_host_create_list_show_delete(canopy_server: CanopyServer) -> None:
    """`openstack reservation host ...` as the admin: register a host the sim cloud reported
    (with an extra capability), list, show it by name, refuse an unknown cloud, delete."""
    osc = canopy_server.openstack
    deadline = time.monotonic() + 30
    while True:  # the worker's first inventory records the clouds' hosts
        done = canopy_server.run_openstack(
            "reservation", "host", "create", "--extra", "gpu=True", "private:h2", "-f", "json"
        )
        if done.returncode == 0 or "has not reported its hosts yet" not in done.stderr:
            break
        assert time.monotonic() < deadline, done.stderr
        time.sleep(0.5)
    assert done.returncode == 0, f"{done.stderr}\n{canopy_server.log()[-3000:]}"
    host = json.loads(done.stdout[done.stdout.index("{") :])
    assert host["hypervisor_hostname"] == "private:h2" and host["gpu"] == "True"
    assert host["vcpus"] == 8 and host["id"].isdigit()
    listed = osc("reservation", "host", "list")
    assert [(h["id"], h["hypervisor_hostname"]) for h in listed] == [(host["id"], "private:h2")]
    shown = osc("reservation", "host", "show", "private:h2")  # by name: list, then filter
    assert shown["id"] == host["id"] and shown["gpu"] == "True"
    rc, err = canopy_server.openstack_fail("reservation", "host", "create", "nowhere:h1")
    assert rc == 1 and "there is no cloud 'nowhere'" in err and "error_code" not in err, err
    osc("reservation", "host", "delete", host["id"], json_output=False)
    assert osc("reservation", "host", "list") == []


def _objects(field: Any) -> list[Any]:
    """A list column of objects as the client prints it: a list, or the objects' JSON
    texts one after the other."""
    if not isinstance(field, str):
        return list(field) if isinstance(field, list) else [field]
    out: list[Any] = []
    decoder, at = json.JSONDecoder(), 0
    while field[at:].strip():
        at += len(field[at:]) - len(field[at:].lstrip())
        item, at = decoder.raw_decode(field, at)
        out.append(item)
    return out


def _items(field: Any) -> list[Any]:
    """A list column as the client prints it: a list, or JSON text (one item alone is
    printed as that item)."""
    if isinstance(field, str):
        field = json.loads(field) if field.strip() else []
    if isinstance(field, dict):
        return [field]
    return [json.loads(x) if isinstance(x, str) else x for x in field]


def _register(server: CanopyServer, *args: str) -> Any:
    """`openstack reservation host create ARGS`, once the worker's inventory has recorded
    the clouds' hosts and earlier tests' servers have gone from the host's cloud (and from
    the host itself: Blazar's HostHavingServers, or not yet known where they run)."""
    deadline = time.monotonic() + 30
    while True:
        done = server.run_openstack("reservation", "host", "create", *args, "-f", "json")
        waiting = (
            "has not reported its hosts yet",
            "cannot leave the ordinary pool",
            "found for host",
            "cannot be registered yet",
        )
        if done.returncode == 0 or not any(w in done.stderr for w in waiting):
            break
        assert time.monotonic() < deadline, done.stderr
        time.sleep(0.5)
    assert done.returncode == 0, f"{done.stderr}\n{server.log()[-3000:]}"
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_boot_into_a_host_reservation(canopy_server: CanopyServer) -> None:
    """A physical:host lease made by python-blazarclient, the host's allocation, servers
    booted with `--hint reservation=<id>` onto it, the refusal past its room, and the
    servers deleted with the lease."""
    osc = canopy_server.openstack
    host = _register(canopy_server, "--extra", "gpu=True", "private:h1")
    end = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M")
    rc, err = canopy_server.openstack_fail(
        "reservation",
        "lease",
        "create",
        "--reservation",
        "min=2,max=2,resource_type=physical:host,hypervisor_properties=,resource_properties=",
        "--end-date",
        end,
        "two-hosts",
    )
    assert rc == 1 and "Not enough hosts available" in err, err
    rc, err = canopy_server.openstack_fail(
        "reservation",
        "lease",
        "create",
        "--reservation",
        "min=1,max=1,resource_type=physical:host,hypervisor_properties=[>=,resource_properties=",
        "--end-date",
        end,
        "bad-query",
    )
    assert rc == 1 and "Malformed requirements in hypervisor_properties" in err, err
    lease = _create(
        canopy_server,
        "--reservation",
        'min=1,max=2,resource_type=physical:host,hypervisor_properties=[">=", "$vcpus", "2"],'
        'resource_properties=["=", "$gpu", "True"]',
        "--end-date",
        end,
        "host-lease",
    )
    shown = _wait_status(canopy_server, lease["id"], "ACTIVE")
    field = shown["reservations"]
    res = json.loads(field) if isinstance(field, str) else field
    assert res["resource_type"] == "physical:host" and (res["min"], res["max"]) == (1, 2)
    rid = res["id"]
    shown = osc("reservation", "allocation", "show", "host", host["id"])
    held = _items(shown["reservations"])
    assert [(r["id"], r["lease_id"]) for r in held] == [(rid, lease["id"])]
    listed = osc("reservation", "allocation", "list", "host", "--lease-id", lease["id"])
    assert [str(a["resource_id"]) for a in listed if _items(a["reservations"])] == [host["id"]]
    # m1.large is 4 vcpus: the 8-vcpu host holds two.
    servers = [
        osc(
            "server",
            "create",
            "--image",
            "cirros",
            "--flavor",
            "m1.large",
            "--hint",
            f"reservation={rid}",
            "--wait",
            f"h{i}",
        )
        for i in range(2)
    ]
    assert {s["status"] for s in servers} == {"ACTIVE"}
    assert {s["OS-EXT-AZ:availability_zone"] for s in servers} == {"private"}
    rc, err = canopy_server.openstack_fail(
        "server",
        "create",
        "--image",
        "cirros",
        "--flavor",
        "m1.large",
        "--hint",
        f"reservation={rid}",
        "h-past",
    )
    assert rc == 1 and "room for 0 more servers" in err, err
    osc("reservation", "lease", "delete", lease["id"], json_output=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        names = {s["Name"] for s in osc("server", "list")}
        if not names & {"h0", "h1"}:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"servers of the deleted host lease still listed: {names}")
    osc("reservation", "host", "delete", host["id"], json_output=False)


def test_change_a_host_reservation(canopy_server: CanopyServer) -> None:
    """`lease set --reservation id=<rid>,max=..,resource_properties=..` reallocates a host
    reservation before its start, keeping the hosts that still match; `host set --extra`
    on a capability a holding reservation names is refused with Blazar's message."""
    osc = canopy_server.openstack
    h1 = _register(canopy_server, "--extra", "gpu=True", "private:h1")
    h2 = _register(canopy_server, "--extra", "gpu=False", "private:h2")
    start = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d %H:%M")
    end = (datetime.now(UTC) + timedelta(days=3, hours=2)).strftime("%Y-%m-%d %H:%M")
    lease = _create(
        canopy_server,
        "--reservation",
        "min=1,max=1,resource_type=physical:host,hypervisor_properties=,resource_properties=",
        "--start-date",
        start,
        "--end-date",
        end,
        "hosts-later",
    )
    field = lease["reservations"]
    rid = (json.loads(field) if isinstance(field, str) else field)["id"]

    def held() -> list[str]:
        listed = osc("reservation", "allocation", "list", "host", "--reservation-id", rid)
        return sorted(str(a["resource_id"]) for a in listed if _items(a["reservations"]))

    assert held() == [h1["id"]]
    osc(
        "reservation",
        "lease",
        "set",
        "--reservation",
        f"id={rid},max=2",
        lease["id"],
        json_output=False,
    )
    assert held() == sorted([h1["id"], h2["id"]])
    shown = osc("reservation", "lease", "show", lease["id"])["reservations"]
    res = json.loads(shown) if isinstance(shown, str) else shown
    assert (res["min"], res["max"]) == (1, 2)
    osc(
        "reservation",
        "lease",
        "set",
        "--reservation",
        f'id={rid},max=1,resource_properties=["=", "$gpu", "False"]',
        lease["id"],
        json_output=False,
    )
    assert held() == [h2["id"]]
    rc, err = canopy_server.openstack_fail(
        "reservation", "lease", "set", "--reservation", f"id={rid},min=2,max=2", lease["id"]
    )
    assert rc == 1 and "Not enough hosts available" in err, err
    rc, err = canopy_server.openstack_fail(
        "reservation", "host", "set", "--extra", "gpu=True", h2["id"]
    )
    assert rc == 1 and "Can't add extracapabilities ['gpu']" in err, err
    assert osc("reservation", "host", "show", h2["id"])["gpu"] == "False"
    osc("reservation", "host", "set", "--extra", "gpu=False", h1["id"], json_output=False)
    osc("reservation", "lease", "delete", lease["id"], json_output=False)
    for h in (h1, h2):
        osc("reservation", "host", "delete", h["id"], json_output=False)
