"""Checking a password: throttled, in the password pool, never inside a transaction.

A login reads (the user, the throttle) in one short read transaction, checks the password
with no transaction open, then writes only when there is something to write: a failure to
count, a user's failures to forgive, or a hash made with old Argon2 parameters to replace.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from canopy.domain.clock import Clock
from canopy.domain.errors import Unauthorized
from canopy.services import throttle
from canopy.services.identity import AUTH_FAILED
from canopy.services.passwords import UNUSABLE, PasswordPool, needs_rehash
from canopy.services.throttle import LoginKeys, ThrottlePolicy
from canopy.store.db import Database
from canopy.store.models import User


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """What checking a password needs: the database, the pool, the throttle and a clock."""

    db: Database
    pool: PasswordPool
    policy: ThrottlePolicy
    clock: Clock

    async def user(
        self,
        password: str,
        *,
        user_id: str | None = None,
        name: str | None = None,
        address: str | None = None,
    ) -> User:
        """The enabled user whose password this is, or Unauthorized (never which part
        failed); Throttled while any of its throttle keys (this user from this address,
        this address, this user if configured) is locked out."""
        now = self.clock.now()
        async with self.db.read() as s:
            user: User | None = None
            if user_id:
                user = await s.get(User, user_id)
            elif name:
                user = (await s.execute(select(User).where(User.name == name))).scalar_one_or_none()
            ref = user.id if user else f"id:{user_id}" if user_id else f"name:{name}"
            keys = LoginKeys.of(ref, address)
            await throttle.check(s, self.policy, keys, now)
            had_failures = user is not None and await throttle.has_failures(s, keys)
        ok = await self.pool.verify(user.password_hash if user else UNUSABLE, password)
        if user is None or not ok or not user.enabled:
            async with self.db.session() as s:
                await throttle.record_failure(s, self.policy, keys, now)
            raise Unauthorized(AUTH_FAILED)
        old = user.password_hash
        new = await self.pool.hash(password) if needs_rehash(old) else None
        if had_failures or new is not None:
            async with self.db.session() as s:
                if had_failures:
                    await throttle.forget_user(s, keys)
                if new is not None:
                    # Only if nobody changed the password meanwhile.
                    await s.execute(
                        update(User)
                        .where(User.id == user.id, User.password_hash == old)
                        .values(password_hash=new)
                    )
            if new is not None:
                user.password_hash = new
        return user
