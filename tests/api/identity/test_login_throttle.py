"""Password guessing is throttled per (user, source address), per source address and, when
configured, per user: 429 with Retry-After in Keystone's fault format, the lockout doubling
with each further failure, a success clearing the user's counts; the same limit for the old
password of a password change. Nobody can lock a user out of logins from elsewhere unless
`user_failure_attempts` is set."""

from __future__ import annotations

from pathlib import Path

import httpx

from .conftest import ADMIN_PASSWORD, V3, Keystone, assert_keystone_fault, keystone

LIMITS = {
    "lockout_failure_attempts": 3,
    "address_failure_attempts": 6,
    "lockout_seconds": 30,
    "lockout_max_seconds": 100,
    "lockout_window_seconds": 600,
}


def assert_throttled(r: httpx.Response) -> int:
    """Keystone's 429, and the seconds it says to wait."""
    message = assert_keystone_fault(r, 429)
    assert r.json()["error"]["title"] == "Too Many Requests"
    assert "try again in" in message
    return int(r.headers["Retry-After"])


async def test_a_user_is_locked_after_failures_and_the_lockout_doubles(
    db_url: str, tmp_path: Path
) -> None:
    one_user = {**LIMITS, "address_failure_attempts": 100}  # the address is not the point
    async with keystone(db_url, tmp_path, one_user) as ks:
        await ks.user("bob", "right", project="p1")
        for _ in range(3):
            assert_keystone_fault(await ks.login("bob", "wrong", project="p1"), 401)
        # Locked: even the right password is refused, before it is checked.
        assert assert_throttled(await ks.login("bob", "right", project="p1")) == 30
        ks.clock.advance(10)
        assert assert_throttled(await ks.login("bob", "wrong", project="p1")) == 20
        ks.clock.advance(21)
        # The lock is over, the count is not: one more failure locks for twice as long.
        assert_keystone_fault(await ks.login("bob", "wrong", project="p1"), 401)
        assert assert_throttled(await ks.login("bob", "right", project="p1")) == 60
        ks.clock.advance(61)
        assert_keystone_fault(await ks.login("bob", "wrong", project="p1"), 401)
        assert assert_throttled(await ks.login("bob", "right", project="p1")) == 100  # the cap
        ks.clock.advance(101)
        # A success forgives the user: three more failures are needed for the next lock.
        assert (await ks.login("bob", "right", project="p1")).status_code == 201
        for _ in range(2):
            assert_keystone_fault(await ks.login("bob", "wrong", project="p1"), 401)
        assert (await ks.login("bob", "right", project="p1")).status_code == 201


async def test_an_unknown_user_is_throttled_the_same_way(db_url: str, tmp_path: Path) -> None:
    async with keystone(db_url, tmp_path, LIMITS) as ks:
        for _ in range(3):
            assert_keystone_fault(await ks.login("nobody", "guess", project="p1"), 401)
        r = await ks.login("nobody", "guess", project="p1")
        assert assert_throttled(r) == 30  # no way to tell that the user does not exist


async def test_a_user_named_by_id_or_by_name_is_one_user(db_url: str, tmp_path: Path) -> None:
    async with keystone(db_url, tmp_path, LIMITS) as ks:
        bob = await ks.user("bob", "right", project="p1")
        by_id = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": bob.user_id, "password": "wrong"}},
                }
            }
        }
        for _ in range(2):
            assert_keystone_fault(await ks.anon.post(f"{V3}/auth/tokens", json=by_id), 401)
        assert_keystone_fault(await ks.login("bob", "wrong", project="p1"), 401)
        assert_throttled(await ks.login("bob", "right", project="p1"))


async def test_a_guessing_address_is_locked_for_every_user(db_url: str, tmp_path: Path) -> None:
    async with keystone(db_url, tmp_path, LIMITS) as ks:
        await ks.user("carol", "right", project="p1")
        async with ks.from_address("192.0.2.7") as bad, ks.from_address("192.0.2.8") as good:
            # Two guesses at each of three users: no user reaches its limit, the address does.
            for name in ("u1", "u2", "u3"):
                for _ in range(2):
                    assert_keystone_fault(await ks.login(name, "x", project="p1", via=bad), 401)
            assert_throttled(await ks.login("carol", "right", project="p1", via=bad))
            # The same user from another address is not locked out by it.
            assert (await ks.login("carol", "right", project="p1", via=good)).status_code == 201
            # A success from the guessing address does not clear the address's count.
            ks.clock.advance(31)
            assert (await ks.login("carol", "right", project="p1", via=bad)).status_code == 201
            assert_keystone_fault(await ks.login("u4", "x", project="p1", via=bad), 401)
            assert_throttled(await ks.login("carol", "right", project="p1", via=bad))


async def test_failures_spread_wider_than_the_window_never_lock(
    db_url: str, tmp_path: Path
) -> None:
    async with keystone(db_url, tmp_path, LIMITS) as ks:
        await ks.user("bob", "right", project="p1")
        for _ in range(5):
            assert_keystone_fault(await ks.login("bob", "wrong", project="p1"), 401)
            ks.clock.advance(601)
        assert (await ks.login("bob", "right", project="p1")).status_code == 201


async def test_the_old_password_of_a_password_change_is_throttled_too(
    db_url: str, tmp_path: Path
) -> None:
    async with keystone(db_url, tmp_path, LIMITS) as ks:
        bob = await ks.user("bob", "right", project="p1")
        url = f"{V3}/users/{bob.user_id}/password"
        wrong = {"user": {"original_password": "guess", "password": "new"}}
        for _ in range(3):
            r = await ks.anon.post(url, json=wrong, headers=bob.headers)
            assert "original password" in assert_keystone_fault(r, 401)
        right = {"user": {"original_password": "right", "password": "new"}}
        assert_throttled(await ks.anon.post(url, json=right, headers=bob.headers))
        ks.clock.advance(31)
        assert (await ks.anon.post(url, json=right, headers=bob.headers)).status_code == 204
        assert (await ks.login("bob", "new", project="p1")).status_code == 201


async def test_zero_attempts_turns_the_limit_off(db_url: str, tmp_path: Path) -> None:
    off = {
        **LIMITS,
        "lockout_failure_attempts": 0,
        "address_failure_attempts": 0,
        "user_failure_attempts": 0,
    }
    async with keystone(db_url, tmp_path, off) as ks:
        await ks.user("bob", "right", project="p1")
        for _ in range(8):
            assert_keystone_fault(await ks.login("bob", "wrong", project="p1"), 401)
        assert (await ks.login("bob", "right", project="p1")).status_code == 201


async def test_the_default_limits_hold_without_configuration(ks: Keystone) -> None:
    await ks.user("bob", "right", project="p1")
    for _ in range(5):
        assert_keystone_fault(await ks.login("bob", "wrong", project="p1"), 401)
    assert assert_throttled(await ks.login("bob", "right", project="p1")) == 30


async def test_a_flood_for_admin_from_one_address_does_not_lock_admin_out_elsewhere(
    ks: Keystone,
) -> None:
    """The defaults: admin always exists, so a per-user lock would let anyone lock it out."""
    async with ks.from_address("192.0.2.7") as bad, ks.from_address("192.0.2.8") as good:
        for _ in range(5):
            assert_keystone_fault(await ks.login("admin", "guess", project="admin", via=bad), 401)
        # The pair (admin, this address) is locked after 5, even for the right password ...
        r = await ks.login("admin", ADMIN_PASSWORD, project="admin", via=bad)
        assert assert_throttled(r) == 30
        for _ in range(40):  # ... and the flood goes on, refused before any password check
            assert_throttled(await ks.login("admin", "guess", project="admin", via=bad))
        # Admin still logs in from anywhere else.
        r = await ks.login("admin", ADMIN_PASSWORD, project="admin", via=good)
        assert r.status_code == 201, r.text
        # Admin's success there does not unlock the guessing address's pair.
        assert_throttled(await ks.login("admin", ADMIN_PASSWORD, project="admin", via=bad))


async def test_the_address_locks_after_its_default_50_failures(ks: Keystone) -> None:
    await ks.user("carol", "right", project="p1")
    async with ks.from_address("192.0.2.7") as bad, ks.from_address("192.0.2.8") as good:
        # 49 failures over 25 names (no pair reaches 5): the address is not locked yet.
        for n in range(49):
            assert_keystone_fault(await ks.login(f"u{n // 2}", "x", project="p1", via=bad), 401)
        assert (await ks.login("carol", "right", project="p1", via=bad)).status_code == 201
        # The 50th locks it, for every user, and carol's success did not clear it.
        assert_keystone_fault(await ks.login("u99", "x", project="p1", via=bad), 401)
        assert assert_throttled(await ks.login("carol", "right", project="p1", via=bad)) == 30
        assert (await ks.login("carol", "right", project="p1", via=good)).status_code == 201


async def test_user_failure_attempts_locks_the_user_across_addresses(
    db_url: str, tmp_path: Path
) -> None:
    per_user = {**LIMITS, "user_failure_attempts": 3}
    async with keystone(db_url, tmp_path, per_user) as ks:
        await ks.user("bob", "right", project="p1")
        hosts = [f"192.0.2.{n}" for n in range(10, 16)]
        clients = [ks.from_address(h) for h in hosts]
        try:
            for c in clients[:3]:  # one guess from each of three addresses
                assert_keystone_fault(await ks.login("bob", "wrong", project="p1", via=c), 401)
            # Locked from a fourth address that never failed.
            r = await ks.login("bob", "right", project="p1", via=clients[3])
            assert assert_throttled(r) == 30
            # Another user from that address is not.
            await ks.user("dave", "right", project="p1")
            r = await ks.login("dave", "right", project="p1", via=clients[3])
            assert r.status_code == 201
            ks.clock.advance(31)
            # A success clears the user's count: two more failures do not lock it.
            r = await ks.login("bob", "right", project="p1", via=clients[4])
            assert r.status_code == 201
            for c in clients[:2]:
                assert_keystone_fault(await ks.login("bob", "wrong", project="p1", via=c), 401)
            r = await ks.login("bob", "right", project="p1", via=clients[5])
            assert r.status_code == 201
        finally:
            for c in clients:
                await c.aclose()


async def _app_cred(ks: Keystone, token: str, user_id: str) -> dict[str, str]:
    r = await ks.anon.post(
        f"{V3}/users/{user_id}/application_credentials",
        json={"application_credential": {"name": "ci"}},
        headers=ks.as_(token),
    )
    assert r.status_code == 201, r.text
    cred: dict[str, str] = r.json()["application_credential"]
    return cred


async def _secret_login(
    ks: Keystone, ref: dict[str, object], via: httpx.AsyncClient | None = None
) -> httpx.Response:
    ident = {"methods": ["application_credential"], "application_credential": ref}
    return await (via or ks.anon).post(f"{V3}/auth/tokens", json={"auth": {"identity": ident}})


async def test_application_credential_secrets_are_throttled_like_passwords(
    db_url: str, tmp_path: Path
) -> None:
    """The same limits, lockout, doubling and cap as a password; a credential named by id
    or by name and user is one key; a success forgives it."""
    one_key = {**LIMITS, "address_failure_attempts": 100}  # the address is not the point
    async with keystone(db_url, tmp_path, one_key) as ks:
        bob = await ks.user("bob", "pw", project="p1")
        cred = await _app_cred(ks, bob.token, bob.user_id)
        right = {"id": cred["id"], "secret": cred["secret"]}
        wrong = {"id": cred["id"], "secret": "guess"}
        by_name = {"name": "ci", "user": {"id": bob.user_id}, "secret": "guess"}
        for ref in (wrong, by_name, wrong):
            assert_keystone_fault(await _secret_login(ks, ref), 401)
        # Locked: even the right secret is refused, before it is checked.
        assert assert_throttled(await _secret_login(ks, right)) == 30
        # The credential is locked, not its user's password logins.
        assert (await ks.login("bob", "pw", project="p1")).status_code == 201
        ks.clock.advance(10)
        assert assert_throttled(await _secret_login(ks, wrong)) == 20
        ks.clock.advance(21)
        assert_keystone_fault(await _secret_login(ks, wrong), 401)
        assert assert_throttled(await _secret_login(ks, right)) == 60  # doubled
        ks.clock.advance(61)
        assert_keystone_fault(await _secret_login(ks, wrong), 401)
        assert assert_throttled(await _secret_login(ks, right)) == 100  # the cap
        ks.clock.advance(101)
        assert (await _secret_login(ks, right)).status_code == 201
        for _ in range(2):  # forgiven: two more failures do not lock
            assert_keystone_fault(await _secret_login(ks, wrong), 401)
        assert (await _secret_login(ks, right)).status_code == 201


async def test_secret_and_password_failures_count_toward_one_address(
    db_url: str, tmp_path: Path
) -> None:
    async with keystone(db_url, tmp_path, LIMITS) as ks:
        bob = await ks.user("bob", "pw", project="p1")
        await ks.user("carol", "right", project="p1")
        cred = await _app_cred(ks, bob.token, bob.user_id)
        wrong = {"id": cred["id"], "secret": "guess"}
        async with ks.from_address("192.0.2.7") as bad, ks.from_address("192.0.2.8") as good:
            # Six failures from one address, no key of a user or credential at its limit.
            for name in ("u1", "u2"):
                for _ in range(2):
                    assert_keystone_fault(await ks.login(name, "x", project="p1", via=bad), 401)
            for _ in range(2):
                assert_keystone_fault(await _secret_login(ks, wrong, via=bad), 401)
            right = {"id": cred["id"], "secret": cred["secret"]}
            assert_throttled(await _secret_login(ks, right, via=bad))
            assert_throttled(await ks.login("carol", "right", project="p1", via=bad))
            assert (await _secret_login(ks, right, via=good)).status_code == 201
