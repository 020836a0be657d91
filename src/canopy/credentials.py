"""Cloud credentials at rest: sealed with Fernet, opened only by the worker that calls.

The key is `CANOPY_SECRET_KEY` (`Settings.secret_key`, a urlsafe base64 Fernet key) when
set, else `{data_dir}/secret.key`, created 0600 with a new key on first use (O_EXCL, so
processes starting together agree on one key). Every process of one installation must
see the same key: with PostgreSQL and several machines, set `CANOPY_SECRET_KEY` (or copy
the file). A sealed value opens only with its key; a token sealed under another key is an
error that says so, never garbage. Credentials are never returned by an API, printed or
logged: `Sealed`'s repr hides them, and nothing here logs a value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from canopy.private_files import FILE_MODE

KEY_FILE = "secret.key"


class SecretKeyError(Exception):
    """The secret key is missing, malformed, or not the one a value was sealed with."""


class Vault:
    """Seals and opens credentials (a mapping of strings) with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as e:
            raise SecretKeyError(
                "the secret key is not a Fernet key (32 url-safe base64-encoded bytes): "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            ) from e

    def __repr__(self) -> str:
        return "Vault(<key hidden>)"

    def seal(self, credentials: Mapping[str, str]) -> bytes:
        """The encrypted token for `credentials` (what the `clouds.credentials` column holds)."""
        return self._fernet.encrypt(json.dumps(dict(credentials), sort_keys=True).encode())

    def open(self, token: bytes) -> dict[str, str]:
        """The credentials sealed in `token`; SecretKeyError if this key did not seal it."""
        try:
            data = json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            raise SecretKeyError(
                "stored credentials cannot be opened with this secret key: the key changed "
                "since they were stored (CANOPY_SECRET_KEY or secret.key in the data dir); "
                "restore the key or set the credentials again"
            ) from None
        if not isinstance(data, dict):
            raise SecretKeyError("stored credentials are not a mapping")
        return {str(k): str(v) for k, v in data.items()}


def load_key(secret_key: str | None, data_dir: Path) -> bytes:
    """The key: `secret_key` if given, else the data dir's key file, made on first use."""
    if secret_key:
        return secret_key.strip().encode()
    path = data_dir / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path.read_bytes().strip()  # another process made it first: use theirs
    try:
        os.write(fd, key + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, FILE_MODE)
    return key


def vault(secret_key: str | None, data_dir: Path) -> Vault:
    """The installation's vault (see the module's docstring for where the key comes from)."""
    return Vault(load_key(secret_key, data_dir))
