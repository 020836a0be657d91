"""Argon2 runs off the event loop, outside transactions, in a bounded pool of its own: a
flood of bad logins is refused quickly (503 with Retry-After) beyond the pool, never starves
the default executor or other requests; a hash made with old parameters is replaced on a
successful login."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from canopy.services import passwords
from canopy.store.models import User

from .conftest import V3, Keystone, assert_keystone_fault, keystone

FLOOD = 200
THREADS = 2
QUEUE = 4
# Generous, for a loaded machine: the pool answers the flood in well under a second here,
# while Argon2 for all of it (~30 ms each on two cores) would take about 3 s.
SERVED_WITHIN = 2.0


async def test_a_flood_of_bad_logins_cannot_block_the_api(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    where: list[str] = []
    inside = 0
    peak = 0
    lock = threading.Lock()
    verify = passwords.verify_password

    def watched(password_hash: str, password: str) -> bool:
        nonlocal inside, peak
        with lock:
            where.append(threading.current_thread().name)
            inside += 1
            peak = max(peak, inside)
        try:
            return verify(password_hash, password)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(passwords, "verify_password", watched)
    entered = 0  # logins that have reached the password check
    pool_verify = passwords.PasswordPool.verify

    async def counted(self: passwords.PasswordPool, password_hash: str, password: str) -> bool:
        nonlocal entered
        entered += 1
        return await pool_verify(self, password_hash, password)

    monkeypatch.setattr(passwords.PasswordPool, "verify", counted)
    limits = {
        "password_threads": THREADS,
        "password_queue": QUEUE,
        "lockout_failure_attempts": 0,  # the pool is the point here, not the throttle
        "address_failure_attempts": 0,
    }
    async with keystone(db_url, tmp_path, limits) as ks:
        flood = [
            asyncio.create_task(ks.login(f"guess{i}", "wrong", project="admin"))
            for i in range(FLOOD)
        ]
        for _ in range(6000):  # up to 30 s on a loaded machine
            if entered == FLOOD:
                break
            await asyncio.sleep(0.005)
        assert entered == FLOOD  # every bad login is at its password check, or past it

        # Meanwhile: an authenticated request, and work for the default executor.
        started = time.monotonic()
        r = await ks.client.get(f"{V3}/auth/projects")
        await asyncio.to_thread(lambda: None)
        served = time.monotonic() - started
        answers = await asyncio.gather(*flood)

    assert r.status_code == 200
    assert served < SERVED_WITHIN, f"served in {served:.2f}s during the flood"
    codes = [a.status_code for a in answers]
    assert set(codes) <= {401, 503}
    busy = [a for a in answers if a.status_code == 503]
    assert len(busy) > FLOOD // 2, "the pool let most of the flood wait instead of refusing"
    for a in busy[:3]:
        assert "try again" in assert_keystone_fault(a, 503)
        assert a.headers["Retry-After"] == "1"
    # Never on the event loop, never in the default executor, never more than the bound.
    assert where and set(where) == {"canopy-argon2"}
    assert peak <= THREADS


async def test_login_never_checks_a_password_on_the_loop_or_in_a_write_transaction(
    ks: Keystone, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    seen: list[tuple[bool, bool]] = []
    verify = passwords.verify_password

    def watched(password_hash: str, password: str) -> bool:
        seen.append((threading.get_ident() == loop_thread, ks.db.writing > 0))
        return verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", watched)
    await ks.user("bob", "pw", project="p1")
    assert (await ks.login("bob", "pw", project="p1")).status_code == 201
    assert_keystone_fault(await ks.login("bob", "nope", project="p1"), 401)
    bob = await ks.user("bob", "pw", project="p1")
    url = f"{V3}/users/{bob.user_id}/password"
    body = {"user": {"original_password": "pw", "password": "new"}}
    assert (await ks.anon.post(url, json=body, headers=bob.headers)).status_code == 204
    assert seen == [(False, False)] * 3


async def test_an_old_hash_is_replaced_on_a_successful_login(ks: Keystone) -> None:
    bob = await ks.user("bob", "pw", project="p1")
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    async with ks.db.session() as s:
        user = await s.get(User, bob.user_id)
        assert user is not None
        user.password_hash = old
    assert_keystone_fault(await ks.login("bob", "wrong", project="p1"), 401)
    assert await _stored(ks, "bob") == old  # a failed login changes nothing
    assert (await ks.login("bob", "pw", project="p1")).status_code == 201
    new = await _stored(ks, "bob")
    assert new != old and not passwords.needs_rehash(new)
    assert passwords.verify_password(new, "pw")
    # The same password: the user's tokens stay valid, and it still logs in.
    assert (await ks.anon.get(f"{V3}/auth/projects", headers=bob.headers)).status_code == 200
    assert (await ks.login("bob", "pw", project="p1")).status_code == 201
    assert await _stored(ks, "bob") == new


async def _stored(ks: Keystone, name: str) -> str:
    async with ks.db.read() as s:
        return str((await s.execute(select(User.password_hash).where(User.name == name))).one()[0])
