"""Password guessing is throttled per (user, source address) pair and per source address.

Policy: a key that fails `attempts` logins without a gap of `window_seconds` between
failures is locked for `lockout_seconds`; every further failure while the count stands
doubles the lockout, up to `lockout_max_seconds`. While locked, a login is refused (429
with Retry-After) before its password is checked, whether or not the password is right.

The keys of a login attempt, each with its own limit (0 turns it off):
- the pair (user, source address), `lockout_failure_attempts` (5): one address guessing
  one user's password;
- the source address, `address_failure_attempts` (50): one address guessing many users;
- the user alone, from every address, `user_failure_attempts` (0, off by default, as in
  Keystone): it stops guesses spread over many addresses, at a price: anyone who knows a
  user name (`admin` always exists) can keep that user locked out without logging in.
So by default a flood of bad logins for a user locks out only the addresses it comes
from, never the user's own logins from elsewhere.

A successful login clears its user's pair key (and the user key); an address's count only
runs out, so one good account cannot be used to reset the count of a guessing address.

The state is in the database (`login_failures`), so the limit holds across every
`canopy api` process behind a load balancer and across restarts. Only failures write, and
a locked key is refused with a read, so a flood costs at most one small write per key and
check that the password pool admitted. Keys are digests: no user name or address is stored.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import IdentitySettings
from canopy.domain.errors import Throttled
from canopy.store.models import LoginFailure

log = logging.getLogger("canopy.identity")

THROTTLED = "Too many failed login attempts; try again in {seconds} seconds."


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    pair_attempts: int  # failures before a user is locked from one address (0: never)
    address_attempts: int  # failures before a source address is locked (0: never)
    user_attempts: int  # failures before a user is locked from every address (0: never)
    lockout_seconds: float
    lockout_max_seconds: float
    window_seconds: float

    @classmethod
    def from_settings(cls, identity: IdentitySettings) -> ThrottlePolicy:
        return cls(
            pair_attempts=identity.lockout_failure_attempts,
            address_attempts=identity.address_failure_attempts,
            user_attempts=identity.user_failure_attempts,
            lockout_seconds=identity.lockout_seconds,
            lockout_max_seconds=identity.lockout_max_seconds,
            window_seconds=identity.lockout_window_seconds,
        )

    def lockout(self, failures: int, attempts: int) -> float:
        """Seconds locked after `failures` failures of a key locked at `attempts`."""
        extra = min(failures - attempts, 32)
        return float(min(self.lockout_max_seconds, self.lockout_seconds * 2**extra))


@dataclass(frozen=True, slots=True)
class LoginKeys:
    """The throttle keys of one login attempt (digests), with the failures each tolerates."""

    pair: str  # this user from this address
    address: str | None  # this address, whoever it tries (None: the peer is unknown)
    user: str  # this user, from any address

    @classmethod
    def of(cls, user_ref: str, address: str | None) -> LoginKeys:
        """`user_ref`: the user's id if the user exists, else the name or id given.

        Without an address (a transport that tells none), the pair is the user's alone."""
        return cls(
            pair=_digest("user+address", user_ref, address or ""),
            address=_digest("address", address) if address else None,
            user=_digest("user", user_ref),
        )

    def with_limits(self, policy: ThrottlePolicy) -> list[tuple[str, int]]:
        keys = [(self.pair, policy.pair_attempts), (self.user, policy.user_attempts)]
        if self.address is not None:
            keys.append((self.address, policy.address_attempts))
        return [(k, n) for k, n in keys if n > 0]

    def kind(self, key: str) -> str:
        """What a key stands for, for the log (which never shows the name or address)."""
        if key == self.pair:
            return "a user from one source address"
        return "a user" if key == self.user else "a source address"

    @property
    def of_user(self) -> tuple[str, str]:
        """The keys a successful login clears: never the address's."""
        return (self.pair, self.user)


def _digest(kind: str, *parts: str) -> str:
    # Each part with its length first, so no two lists of parts share a digest.
    text = kind + "".join(f"\0{len(p)}:{p}" for p in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


async def check(s: AsyncSession, policy: ThrottlePolicy, keys: LoginKeys, now: datetime) -> None:
    """Throttled if any key of this login (pair, address, user) is locked now."""
    limited = [k for k, _ in keys.with_limits(policy)]
    if not limited:
        return
    rows = await s.execute(
        select(LoginFailure.locked_until).where(
            LoginFailure.key.in_(limited), LoginFailure.locked_until > now
        )
    )
    until = max((u for u in rows.scalars() if u is not None), default=None)
    if until is not None:
        seconds = max(1, math.ceil((until - now).total_seconds()))
        raise Throttled(THROTTLED.format(seconds=seconds), retry_after=seconds)


async def record_failure(
    s: AsyncSession, policy: ThrottlePolicy, keys: LoginKeys, now: datetime
) -> None:
    """Count a failed login against each of its keys; lock those past their limit."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    window = timedelta(seconds=policy.window_seconds)
    for key, attempts in keys.with_limits(policy):
        await s.execute(
            insert(LoginFailure)
            .values(key=key, failures=0, last_failure_at=now, locked_until=None)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = (
            await s.execute(
                select(LoginFailure)
                .where(LoginFailure.key == key)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        if now - row.last_failure_at > window:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= attempts:
            seconds = policy.lockout(row.failures, attempts)
            row.locked_until = now + timedelta(seconds=seconds)
            log.warning(
                "%d failed logins for %s (key %s…): locked for %.0f s",
                row.failures,
                keys.kind(key),
                key[:12],
                seconds,
            )


async def forget_user(s: AsyncSession, keys: LoginKeys) -> None:
    """A successful login: the user's failures are forgiven, from this address and overall
    (the address's are not)."""
    await s.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys.of_user)))


async def has_failures(s: AsyncSession, keys: LoginKeys) -> bool:
    """Whether the user has failures on record (so a success needs a write to clear them)."""
    row = await s.execute(select(LoginFailure.key).where(LoginFailure.key.in_(keys.of_user)))
    return row.first() is not None


async def purge(s: AsyncSession, policy: ThrottlePolicy, now: datetime, *, limit: int) -> int:
    """Delete up to `limit` rows that no longer lock anything and whose window has passed."""
    stale = now - timedelta(seconds=policy.window_seconds)
    ids = list(
        (
            await s.execute(
                select(LoginFailure.key)
                .where(
                    LoginFailure.last_failure_at < stale,
                    or_(LoginFailure.locked_until.is_(None), LoginFailure.locked_until <= now),
                )
                .limit(limit)
            )
        ).scalars()
    )
    if ids:
        await s.execute(
            delete(LoginFailure).where(and_(LoginFailure.key.in_(ids))),
            execution_options={"synchronize_session": False},
        )
    return len(ids)
