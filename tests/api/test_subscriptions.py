"""/canopy/v1/subscriptions: the secret once, a project's own only, bad targets refused."""

from __future__ import annotations

from canopy.notifications.outbox import emit
from tests.api.conftest import Api, assert_fault
from tests.api.tokens import caller

SUBS = "/canopy/v1/subscriptions"
HOOK = {"kind": "webhook", "url": "https://hooks.example.com/canopy"}


async def test_the_secret_is_shown_once_and_never_again(api: Api) -> None:
    r = await api.client.post(SUBS, json={**HOOK, "event_types": ["lease.*"]})
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["secret"]
    assert isinstance(secret, str) and len(secret) >= 32
    sid = created["id"]
    for url in (f"{SUBS}/{sid}", SUBS):
        r = await api.client.get(url)
        assert r.status_code == 200
        assert secret not in r.text and "secret" not in r.text
    assert created["event_types"] == ["lease.*"]
    assert created["project_id"] == api.admin.project_id


async def test_an_amqp_password_is_sealed_not_shown(api: Api) -> None:
    body = {"kind": "amqp", "url": "amqp://canopy:hunter2-long@broker.example.com:5672/"}
    r = await api.client.post(SUBS, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["secret"] is None
    assert r.json()["url"] == "amqp://canopy@broker.example.com:5672/"
    assert r.json()["exchange"] == "canopy"
    r = await api.client.get(SUBS)
    assert "hunter2" not in r.text


async def test_bad_targets_and_filters_are_refused_and_nothing_is_made(api: Api) -> None:
    for body, words in (
        ({**HOOK, "url": "file:///etc/passwd"}, "http"),
        ({**HOOK, "url": "gopher://hooks.example.com/"}, "http"),
        ({**HOOK, "url": "http://127.0.0.1:8774/canopy/v1"}, "allowed_webhook_hosts"),
        ({**HOOK, "url": "http://169.254.169.254/latest/meta-data"}, "link-local"),
        ({**HOOK, "url": "http://[::1]/x"}, "loopback"),
        ({**HOOK, "url": "https://user:pw@hooks.example.com/"}, "credentials"),
        ({**HOOK, "url": "https:///nohost"}, "host"),
        ({**HOOK, "event_types": ["lease.evnt.*"]}, "matches no event"),
        ({**HOOK, "event_types": ["Lease;drop"]}, "lower-case"),
        ({**HOOK, "exchange": "x"}, "amqp"),
        ({**HOOK, "secret": "short"}, "secret"),
        ({**HOOK, "kind": "smtp"}, "kind"),
        ({**HOOK, "surprise": 1}, "surprise"),
    ):
        r = await api.client.post(SUBS, json=body)
        message = assert_fault(r, 400, "badRequest")
        assert words in message, (body, message)
    r = await api.client.get(SUBS)
    assert r.json()["items"] == []


async def test_a_project_sees_its_own_subscriptions_and_only_an_admin_all_projects(
    api: Api,
) -> None:
    plane = api.plane
    alice = await caller(plane.db, plane.clock, project="demo", user="alice")
    olga = await caller(plane.db, plane.clock, project="other", user="olga")
    r = await api.client.post(SUBS, json=HOOK, headers=alice.headers)
    assert r.status_code == 201
    mine = r.json()["id"]
    r = await api.client.post(SUBS, json={**HOOK, "all_projects": True}, headers=alice.headers)
    assert_fault(r, 403, "forbidden")
    r = await api.client.post(SUBS, json={**HOOK, "all_projects": True})
    assert r.status_code == 201 and r.json()["project_id"] is None
    assert (await api.client.get(f"{SUBS}/{mine}", headers=olga.headers)).status_code == 404
    r = await api.client.delete(f"{SUBS}/{mine}", headers=olga.headers)
    assert r.status_code == 404
    r = await api.client.get(SUBS, headers=olga.headers)
    assert r.json()["items"] == []
    r = await api.client.get(SUBS)  # the cloud admin: every project's
    assert {s["id"] for s in r.json()["items"]} >= {mine}
    assert (await api.client.delete(f"{SUBS}/{mine}", headers=alice.headers)).status_code == 204
    assert (await api.client.get(f"{SUBS}/{mine}", headers=alice.headers)).status_code == 404


async def test_dead_deliveries_are_listed_and_replayed(api: Api) -> None:
    plane = api.plane
    r = await api.client.post(SUBS, json={**HOOK, "url": "https://hooks.invalid/x"})
    sid = r.json()["id"]
    async with plane.db.session() as s:
        emit(s, "lease.create", "lease/1", api.admin.project_id, {"n": 1}, at=plane.clock.now())
    notes = plane.worker.notifications
    conf = plane.settings.notifications
    for _ in range(conf.max_attempts):
        await notes.run_once()  # hooks.invalid never resolves: every attempt fails
        plane.clock.advance(conf.backoff_max_seconds)
    # A new token: the clock has moved on past the first one's life.
    admin = await caller(plane.db, plane.clock, project="admin", user="admin", role="admin")
    api.client.headers.update(admin.headers)
    r = await api.client.get(f"{SUBS}/{sid}/deliveries", params={"status": "dead"})
    assert r.status_code == 200
    [dead] = r.json()["items"]
    assert dead["attempts"] == conf.max_attempts and dead["subject"] == "lease/1"
    assert "hooks.invalid" in dead["last_error"]
    assert (await api.client.get(f"{SUBS}/{sid}")).json()["deliveries"] == {"dead": 1}
    r = await api.client.post(f"{SUBS}/{sid}/replay", json={})
    assert r.json() == {"count": 1}
    r = await api.client.get(f"{SUBS}/{sid}/deliveries", params={"status": "pending"})
    [again] = r.json()["items"]
    assert again["id"] == dead["id"] and again["attempts"] == 0
    r = await api.client.get(f"{SUBS}/{sid}/deliveries", params={"status": "bogus"})
    assert_fault(r, 400, "badRequest")
