"""Keypairs, quotas, limits and server groups through the real `openstack` CLI."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from .conftest import CanopyServer


def _md5_fingerprint(public_key: str) -> str:
    raw = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(raw[i : i + 2] for i in range(0, len(raw), 2))


def test_keypairs(canopy_server: CanopyServer, tmp_path: Path) -> None:
    osc = canopy_server.openstack
    # Generated: OSC makes the key itself and imports its public half; --private-key
    # keeps the secret out of stdout so the output stays JSON.
    private_file = tmp_path / "k1.pem"
    k1 = osc("keypair", "create", "--private-key", str(private_file), "k1")
    assert k1["name"] == "k1" and k1["type"] == "ssh"
    assert "PRIVATE KEY" in private_file.read_text()

    key = ed25519.Ed25519PrivateKey.generate()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    pub_file = tmp_path / "k2.pub"
    pub_file.write_text(public + " me@laptop\n")
    k2 = osc("keypair", "create", "--public-key", str(pub_file), "k2")
    assert k2["fingerprint"] == _md5_fingerprint(public)

    listed = {k["Name"]: k for k in osc("keypair", "list")}
    assert set(listed) == {"k1", "k2"}
    assert listed["k2"]["Fingerprint"] == k2["fingerprint"]
    shown = osc("keypair", "show", "k2")
    assert shown["fingerprint"] == k2["fingerprint"] and shown["type"] == "ssh"
    assert osc("keypair", "show", "--public-key", "k2", json_output=False).strip() == (
        public + " me@laptop"
    )

    rc, err = canopy_server.openstack_fail("keypair", "create", "--public-key", str(pub_file), "k2")
    assert "409" in err or "already exists" in err

    osc("keypair", "delete", "k1", "k2", json_output=False)
    assert osc("keypair", "list") == []
    rc, err = canopy_server.openstack_fail("keypair", "show", "k1")
    assert rc == 1


def test_a_server_boots_with_the_keypair(canopy_server: CanopyServer, tmp_path: Path) -> None:
    osc = canopy_server.openstack
    osc("keypair", "create", "--private-key", str(tmp_path / "key.pem"), "bootkey")
    server = osc(
        "server",
        "create",
        "--image",
        "cirros",
        "--flavor",
        "m1.tiny",
        "--key-name",
        "bootkey",
        "--wait",
        "keyed",
    )
    try:
        assert server["status"] == "ACTIVE" and server["key_name"] == "bootkey"
    finally:
        osc("server", "delete", "--wait", server["id"], json_output=False)
        osc("keypair", "delete", "bootkey", json_output=False)


def test_quotas_and_limits(canopy_server: CanopyServer) -> None:
    osc = canopy_server.openstack
    own = {q["Resource"]: q["Limit"] for q in osc("quota", "show", "--compute")}
    assert own["instances"] == 10 and own["cores"] == 20 and own["ram"] == 51200
    assert own["key-pairs"] == 100 and own["server-groups"] == 10

    osc("project", "create", "quota-team")
    osc("quota", "set", "--instances", "5", "--cores", "7", "quota-team", json_output=False)
    theirs = {q["Resource"]: q["Limit"] for q in osc("quota", "show", "--compute", "quota-team")}
    assert theirs["instances"] == 5 and theirs["cores"] == 7
    usage = {q["Resource"]: q for q in osc("quota", "show", "--usage", "--compute", "quota-team")}
    assert usage["instances"]["In Use"] == 0 and usage["instances"]["Limit"] == 5
    defaults = {q["Resource"]: q["Limit"] for q in osc("quota", "show", "--default", "--compute")}
    assert defaults["instances"] == 10

    # GET /limits?reserved=False; the SDK names the fields after its own attributes.
    absolute = {row["Name"]: row["Value"] for row in osc("limits", "show", "--absolute")}
    expected = {
        "instances": 10,
        "total_cores": 20,
        "total_ram": 51200,
        "keypairs": 100,
        "server_groups": 10,
        "server_group_members": 10,
        "server_meta": 128,
    }
    assert {k: absolute[k] for k in expected} == expected
    for used in ("instances_used", "total_cores_used", "total_ram_used", "server_groups_used"):
        assert absolute[used] >= 0

    # A member of the project may read its quotas but not change them.
    osc("user", "create", "--password", "pw", "--project", "quota-team", "quinn")
    osc("role", "add", "--project", "quota-team", "--user", "quinn", "member", json_output=False)
    quinn = canopy_server.env(username="quinn", password="pw", project="quota-team")
    seen = {q["Resource"]: q["Limit"] for q in osc("quota", "show", "--compute", env=quinn)}
    assert seen["instances"] == 5
    _, err = canopy_server.openstack_fail(
        "quota", "set", "--instances", "50", "quota-team", env=quinn
    )
    assert "403" in err or "Policy" in err or "not authorized" in err.lower(), err


def test_server_groups_spread_over_clouds(canopy_server: CanopyServer) -> None:
    osc = canopy_server.openstack
    group = osc("server", "group", "create", "--policy", "anti-affinity", "g1")
    assert group["policy"] == "anti-affinity" and group["members"] == []
    servers = []
    try:
        for name in ("g1-a", "g1-b"):
            argv = ["--image", "cirros", "--flavor", "m1.tiny", "--wait", name]
            hint = ["--hint", f"group={group['id']}"]
            servers.append(osc("server", "create", *hint, *argv))
        zones = {s["OS-EXT-AZ:availability_zone"] for s in servers}
        assert zones == {"private", "public"}  # each cloud is a "host": one member each
        shown = osc("server", "group", "show", "g1")
        assert sorted(shown["members"]) == sorted(s["id"] for s in servers)
        assert [g["Name"] for g in osc("server", "group", "list")] == ["g1"]
    finally:
        for s in servers:
            osc("server", "delete", "--wait", s["id"], json_output=False)
    osc("server", "group", "delete", "g1", json_output=False)
    assert osc("server", "group", "list") == []
    rc, _ = canopy_server.openstack_fail("server", "group", "show", "g1")
    assert rc == 1
