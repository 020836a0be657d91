"""The name a keypair gets on a cloud."""

from __future__ import annotations

from canopy.services.keypairs import MAX_NAME, generate_ssh, remote_key_name, ssh_fingerprint

FP = "9a:3c:0e:51:7b:22:c4:f0:18:6d:aa:01:e7:53:b9:4c"


def test_the_remote_name_names_the_user_the_key_and_its_fingerprint() -> None:
    assert remote_key_name("u1", "laptop", FP) == "canopy-u1-laptop-9a3c0e517b22c4f0"


def test_a_new_key_under_the_same_name_gets_a_new_remote_name() -> None:
    first = ssh_fingerprint(generate_ssh()[1])
    second = ssh_fingerprint(generate_ssh()[1])
    assert remote_key_name("u1", "k", first) != remote_key_name("u1", "k", second)
    assert remote_key_name("u1", "k", first) == remote_key_name("u1", "k", first)
    assert remote_key_name("u2", "k", first) != remote_key_name("u1", "k", first)


def test_a_long_name_is_hashed_and_keeps_the_fingerprint() -> None:
    long = "k" * MAX_NAME
    remote = remote_key_name("u1", long, FP)
    assert len(remote) <= MAX_NAME
    assert remote.startswith("canopy-u1-") and remote.endswith("-9a3c0e517b22c4f0")
    assert remote != remote_key_name("u1", long[:-1] + "j", FP)
    assert remote != remote_key_name("u1", long, FP.replace("9a", "9b"))
