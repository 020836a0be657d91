"""Credentials at rest: sealed with Fernet under a key from the environment or a private
key file in the data dir; never readable without that key, never shown."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from canopy.credentials import KEY_FILE, SecretKeyError, Vault, load_key, vault

CREDS = {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "s3cr3t-v@lue"}


def test_a_key_file_is_made_once_0600_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = load_key(None, data)
    path = data / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(None, data) == first
    token = vault(None, data).seal(CREDS)
    assert vault(None, data).open(token) == CREDS


def test_the_environment_key_wins_and_no_file_is_made(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    v = vault(key, tmp_path)
    assert not (tmp_path / KEY_FILE).exists()
    assert Vault(key.encode()).open(v.seal(CREDS)) == CREDS


def test_the_secret_is_not_in_the_token_nor_in_any_repr(tmp_path: Path) -> None:
    v = vault(None, tmp_path)
    token = v.seal(CREDS)
    assert b"s3cr3t" not in token and b"AKIA" not in token
    assert "key" in repr(v) and Fernet.generate_key().decode()[:8] not in repr(v)
    assert (tmp_path / KEY_FILE).read_bytes().strip().decode() not in repr(v)


def test_a_value_sealed_under_another_key_is_a_clear_error(tmp_path: Path) -> None:
    token = vault(None, tmp_path / "one").seal(CREDS)
    with pytest.raises(SecretKeyError, match="the key changed"):
        vault(None, tmp_path / "two").open(token)


def test_a_malformed_key_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError, match=r"Fernet\.generate_key"):
        vault("not-a-key", tmp_path)
