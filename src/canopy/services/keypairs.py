"""Nova keypairs: per-user public keys, imported or generated, fingerprinted as Nova does.

A keypair lives only in canopy's database until a server uses it on a cloud; the
provisioning controller then pushes it there, under a name that carries the key's
fingerprint (see `remote_key_name`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.errors import Conflict, InvalidRequest, NotFound, QuotaError
from canopy.services import quotas
from canopy.store.models import Keypair

TYPES = ("ssh", "x509")
MAX_NAME = 255
# Nova's name rules: letters, digits, '_', '-' and space; 2.92 also allows '@' and '.'.
_NAME = re.compile(r"^[_\- a-zA-Z0-9]+$")
_NAME_V292 = re.compile(r"^[_\-@. a-zA-Z0-9]+$")
_KEY_BITS = 2048  # RSA, as Nova generates: every cloud (and Windows images) accepts it
_COMMENT = "Generated-by-Canopy"


@dataclass(frozen=True, slots=True)
class NewKeypair:
    keypair: Keypair
    private_key: str | None  # only when canopy generated the key; shown once


def check_name(name: str, *, relaxed: bool = False) -> str:
    """The name if Nova would accept it (2.92 rules when `relaxed`), else InvalidRequest."""
    pattern = _NAME_V292 if relaxed else _NAME
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidRequest(
            f"Invalid input for field/attribute name. Value: {name[:80]}. "
            f"The name must be 1 to {MAX_NAME} characters long."
        )
    if name != name.strip():
        raise InvalidRequest(
            f"Invalid input for field/attribute name. Value: {name}. An invalid 'name' value "
            "was provided. The name must be: printable characters with no leading or "
            "trailing whitespace."
        )
    if not pattern.match(name):
        raise InvalidRequest(
            f"Invalid input for field/attribute name. Value: {name[:80]}. "
            f"'{name[:80]}' does not match '{pattern.pattern}'"
        )
    return name


def _colons(hexdigest: str) -> str:
    return ":".join(hexdigest[i : i + 2] for i in range(0, len(hexdigest), 2))


def ssh_fingerprint(public_key: str) -> str:
    """Nova's fingerprint of an OpenSSH public key: MD5 of the key blob, colon-separated."""
    try:
        serialization.load_ssh_public_key(public_key.strip().encode("utf-8"))
        blob = base64.b64decode(public_key.strip().split()[1], validate=True)
    except (
        ValueError,
        IndexError,
        TypeError,
        binascii.Error,
        UnicodeError,
        UnsupportedAlgorithm,
    ) as e:
        raise InvalidRequest("Keypair data is invalid: failed to generate fingerprint") from e
    return _colons(hashlib.md5(blob, usedforsecurity=False).hexdigest())


def x509_fingerprint(pem: str) -> str:
    """Nova's fingerprint of an X.509 certificate: its SHA-1, colon-separated."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("utf-8"))
    except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm) as e:
        raise InvalidRequest(
            f"Keypair data is invalid: failed to generate X509 fingerprint. Error message: {e}"
        ) from e
    return _colons(cert.fingerprint(hashes.SHA1()).hex())  # Nova's format


def fingerprint(public_key: str, key_type: str) -> str:
    return x509_fingerprint(public_key) if key_type == "x509" else ssh_fingerprint(public_key)


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)


def generate_ssh() -> tuple[str, str]:
    """A new RSA keypair: (private key as PEM, OpenSSH public key)."""
    key = _new_rsa_key()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode('ascii')} {_COMMENT}"


def generate_x509(user_id: str, now: datetime) -> tuple[str, str]:
    """A WinRM client certificate, as Nova makes for x509 keypairs: (private key, cert)."""
    key = _new_rsa_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id or "canopy")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")
    return private, cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def remote_key_name(user_id: str, name: str, key_fingerprint: str) -> str:
    """The name a keypair gets on a cloud: recognisable, unique per canopy user and key.

    It ends with the first 16 hex digits of the key's fingerprint, so a key made again
    under the same name (the way to rotate a key: Nova keypairs are immutable) gets a new
    remote name. A cloud never overwrites a key pair name (Nova answers 409, EC2
    InvalidKeyPair.Duplicate), and the old name would keep booting servers with the old key.
    """
    digits = "".join(c for c in key_fingerprint.lower() if c in "0123456789abcdef")[:16]
    remote = f"canopy-{user_id}-{name}-{digits}"
    if len(remote) <= MAX_NAME:
        return remote
    return f"canopy-{user_id}-{hashlib.sha256(name.encode()).hexdigest()[:32]}-{digits}"


async def generate(key_type: str, user_id: str, now: datetime) -> tuple[str, str]:
    """A new keypair of `key_type`: (private key, public key or certificate).

    RSA key generation takes tens of milliseconds of CPU, so it runs in a thread, and the
    caller runs it before opening its write transaction (on SQLite, the write lock)."""
    if key_type == "x509":
        return await asyncio.to_thread(generate_x509, user_id, now)
    return await asyncio.to_thread(generate_ssh)


async def check_room(
    s: AsyncSession, settings: Settings, *, project_id: str, user_id: str, name: str
) -> None:
    """QuotaError or Conflict if the user could not add keypair `name` now (no locks: a
    read-only early answer, before any key is generated; `create` checks again)."""
    if not _storable(user_id):
        raise InvalidRequest(f"Invalid input for field/attribute user_id. Value: {user_id!r}.")
    limit = (await quotas.limits(s, settings, project_id))["key_pairs"]
    if limit >= 0 and await quotas.keypair_count(s, user_id) + 1 > limit:
        raise QuotaError("Quota exceeded, too many key pairs.")
    if await find(s, user_id, name) is not None:
        raise Conflict(f"Key pair '{name}' already exists.")


async def create(
    s: AsyncSession,
    settings: Settings,
    *,
    project_id: str,
    user_id: str,
    name: str,
    key_type: str,
    public_key: str,
    now: datetime,
    private_key: str | None = None,
) -> NewKeypair:
    """Record `public_key` (imported, or made by `generate` with `private_key`).

    Checks the quota (the limit of `project_id`, counted over the user's keypairs) and
    the name's uniqueness per user; the caller has validated the name.
    """
    if key_type not in TYPES:
        raise InvalidRequest(f"Invalid input for field/attribute type. Value: {key_type}.")
    if "\x00" in public_key:
        raise InvalidRequest("Keypair data is invalid: the public key holds a NUL character")
    if not _storable(user_id):
        raise InvalidRequest(f"Invalid input for field/attribute user_id. Value: {user_id!r}.")
    await quotas.lock_project(s, project_id)
    await check_room(s, settings, project_id=project_id, user_id=user_id, name=name)
    fp = fingerprint(public_key, key_type)
    kp = Keypair(
        user_id=user_id,
        project_id=project_id,
        name=name,
        type=key_type,
        public_key=public_key,
        fingerprint=fp,
        created_at=now,
    )
    s.add(kp)
    await s.flush()
    return NewKeypair(kp, private_key)


def _storable(*values: str) -> bool:
    """Whether the values fit the columns at all (PostgreSQL refuses NUL characters)."""
    return all("\x00" not in v and len(v) <= MAX_NAME for v in values)


async def find(s: AsyncSession, user_id: str, name: str) -> Keypair | None:
    if not _storable(user_id, name):
        return None
    q = select(Keypair).where(Keypair.user_id == user_id, Keypair.name == name)
    return (await s.execute(q)).scalar_one_or_none()


async def get(s: AsyncSession, user_id: str, name: str) -> Keypair:
    kp = await find(s, user_id, name)
    if kp is None:
        raise NotFound(f"Keypair {name} not found for user {user_id}")
    return kp


async def listing(
    s: AsyncSession, user_id: str, *, limit: int | None = None, marker: str | None = None
) -> Sequence[Keypair]:
    """The user's keypairs by name; `marker` is the last name of the previous page."""
    if not _storable(user_id):
        return []
    q = select(Keypair).where(Keypair.user_id == user_id).order_by(Keypair.name)
    if marker is not None:
        if await find(s, user_id, marker) is None:
            raise InvalidRequest(f"Marker {marker} could not be found.")
        q = q.where(Keypair.name > marker)
    if limit is not None:
        q = q.limit(limit)
    return list((await s.execute(q)).scalars())


async def delete(s: AsyncSession, user_id: str, name: str) -> None:
    """Forget the keypair; copies already pushed to clouds stay there (public keys only)."""
    await s.delete(await get(s, user_id, name))
    await s.flush()
