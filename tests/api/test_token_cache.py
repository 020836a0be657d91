"""The API's token cache: a token is validated once per TTL, revocation made in this
process takes effect at once, and one made elsewhere within TTL_SECONDS (the bound)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from canopy.api.token_cache import TTL_SECONDS, TokenCache, bump, generation
from canopy.domain.errors import Unauthorized
from canopy.services.identity import revoke_user_tokens
from canopy.services.tokens import TokenInfo
from tests.api.conftest import Api

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIST = "/compute/v2.1/servers"


def _info(expires: datetime = NOW + timedelta(hours=1)) -> TokenInfo:
    return TokenInfo(
        token_id="t", user_id="u", user_name="u", project_id="p", project_name="p",
        roles=("member",), methods=("password",), audit_id="a", audit_chain_id="a",
        issued_at=NOW, expires_at=expires,
    )  # fmt: skip


def test_an_entry_lives_for_the_ttl_only() -> None:
    cache = TokenCache(ttl_seconds=2.0)
    cache.put("tok", _info(), NOW, generation())
    assert cache.get("tok", NOW + timedelta(seconds=1.9)) is not None
    assert cache.get("tok", NOW + timedelta(seconds=2.0)) is None
    assert len(cache) == 0  # a stale entry is dropped
    assert cache.get("other", NOW) is None


def test_an_entry_never_outlives_its_token() -> None:
    cache = TokenCache(ttl_seconds=60.0)
    cache.put("tok", _info(expires=NOW + timedelta(seconds=1)), NOW, generation())
    assert cache.get("tok", NOW + timedelta(seconds=1)) is None


def test_an_identity_change_makes_every_entry_stale() -> None:
    cache = TokenCache()
    cache.put("tok", _info(), NOW, generation())
    bump()
    assert cache.get("tok", NOW) is None


def test_an_answer_read_across_a_change_is_not_kept() -> None:
    cache = TokenCache()
    before = generation()
    bump()  # a revocation committed while the token was being looked up
    cache.put("tok", _info(), NOW, before)
    assert len(cache) == 0


def test_a_full_cache_drops_its_oldest_entries() -> None:
    cache = TokenCache(max_entries=10)
    for i in range(25):
        cache.put(f"t{i}", _info(), NOW, generation())
    assert len(cache) <= 10
    assert cache.get("t24", NOW) is not None
    assert cache.get("t0", NOW) is None


async def test_a_revocation_in_this_process_is_honoured_at_once(api: Api) -> None:
    assert (await api.client.get(LIST)).status_code == 200
    assert len(api.app.state.token_cache) == 1
    async with api.plane.db.session() as s:
        await revoke_user_tokens(s, api.admin.user_id)
    r = await api.client.get(LIST)
    assert r.status_code == 401, r.text


async def test_a_revocation_elsewhere_is_honoured_within_the_bound(api: Api) -> None:
    assert (await api.client.get(LIST)).status_code == 200
    # Another process's revocation: nothing in this one sees it happen.
    async with api.plane.db.engine.begin() as conn:
        await conn.execute(text("UPDATE tokens SET revoked = true"))
    assert (await api.client.get(LIST)).status_code == 200  # cached, within the bound
    api.plane.clock.advance(TTL_SECONDS)
    assert (await api.client.get(LIST)).status_code == 401


async def test_a_bad_token_is_never_cached(api: Api) -> None:
    r = await api.client.get(LIST, headers={"X-Auth-Token": "not-a-token"})
    assert r.status_code == 401
    assert len(api.app.state.token_cache) == 0


async def test_concurrent_requests_share_one_look_up() -> None:
    cache = TokenCache()
    calls = 0
    gate = asyncio.Event()

    async def load() -> TokenInfo:
        nonlocal calls
        calls += 1
        await gate.wait()
        return _info()

    tasks = [asyncio.create_task(cache.fetch("tok", NOW, load)) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert all(r == _info() for r in results)
    assert len(cache) == 1


async def test_a_failed_look_up_is_each_waiter_s_own() -> None:
    cache = TokenCache()
    calls = 0
    gate = asyncio.Event()

    async def load() -> TokenInfo:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise Unauthorized("no")

    tasks = [asyncio.create_task(cache.fetch("tok", NOW, load)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, Unauthorized) for r in results)
    assert calls == 3  # the leader's failure, then each waiter's own look-up
    assert len(cache) == 0
