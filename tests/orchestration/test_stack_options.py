"""What a stack's create asks beside its template: `timeout_mins` (the whole action fails
when it runs out, and rolls back when rollback is on), a server pinned to a cloud by
`availability_zone`, and the outputs listed with their values."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from canopy.api.orchestration.placement_view import placement_summary
from canopy.config_sections import OrchestrationSettings
from canopy.orchestration.outputs import bound_of, outputs
from canopy.store.models import Stack
from tests.controllers.harness import Plane, make_plane

from .helpers import CLOUDS, create, hot, live_servers, resources, server, settle, stack
from .test_wait import started

WAITS = hot(
    {
        "handle": {"type": "OS::Heat::WaitConditionHandle"},
        "vm": server(),
        "wait": {
            "type": "OS::Heat::WaitCondition",
            "depends_on": "vm",
            "properties": {"handle": {"get_resource": "handle"}, "timeout": 7200},
        },
        "after": {
            "type": "OS::Heat::Value",
            "depends_on": "wait",
            "properties": {"value": "never reached"},
        },
    }
)


async def _past_the_limit(p: Plane, sid: str, *, minutes: int) -> Stack:
    """Once the stack's server is up: a second before its action's limit of `minutes` it
    is still IN_PROGRESS; a second after, it settles (returned)."""
    await started(p, sid)
    begun = (await stack(p, sid)).action_started_at
    left = (begun + timedelta(minutes=minutes) - p.clock.now()).total_seconds()
    assert left > 1  # the server booted within the limit
    p.clock.advance(left - 1)
    await p.step(advance=0.0)
    assert (await stack(p, sid)).status == "IN_PROGRESS"
    p.clock.advance(2)
    return await settle(p, sid)


async def test_a_stack_that_outlives_its_timeout_fails_and_starts_nothing_more(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "slow", WAITS, timeout_mins=1)
        # (the wait condition's own timeout is 2 hours)
        done = await _past_the_limit(p, sid, minutes=1)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert done.status_reason == "Timed out after 1 minutes"
        rows = await resources(p, sid)
        assert "after" not in rows  # its dependency never completed: never started
        assert rows["wait"].status == "FAILED"
        assert rows["vm"].status == "COMPLETE"  # rollback is off: what was made stays
        assert len(await live_servers(p)) == 1
    finally:
        await p.close()


async def test_a_stack_without_timeout_mins_times_out_after_the_configured_limit(
    db_url: str, tmp_path: Path
) -> None:
    # Heat's stack_action_timeout: an action of a stack created without timeout_mins is
    # limited too (60 minutes unless [orchestration] says otherwise).
    toml = CLOUDS + "\n[orchestration]\nstack_action_timeout_minutes = 2\n"
    p = await make_plane(db_url, tmp_path, toml=toml)
    try:
        assert p.settings.orchestration.stack_action_timeout_minutes == 2
        sid = await create(p, "slow", WAITS)
        done = await _past_the_limit(p, sid, minutes=2)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert done.status_reason == "Timed out after 2 minutes"
        assert done.timeout_mins is None  # shown as asked: none
    finally:
        await p.close()


async def test_an_action_under_way_before_the_default_limit_is_still_timed_out(
    db_url: str, tmp_path: Path
) -> None:
    # A stack without timeout_mins whose action was under way before the default limit
    # existed was left with no next attempt while it waited on a server (nothing to time
    # out then). After the upgrade it is stepped again and held to the limit, not left
    # IN_PROGRESS until something else happens to wake it.
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "old", WAITS)
        await started(p, sid)
        async with p.db.session() as s:
            await s.execute(update(Stack).where(Stack.id == sid).values(next_attempt_at=None))
        p.clock.advance(61 * 60)
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "FAILED")
        assert done.status_reason == "Timed out after 60 minutes"
    finally:
        await p.close()


def test_the_default_action_limit_is_heats_hour() -> None:
    assert OrchestrationSettings().stack_action_timeout_minutes == 60


async def test_a_timed_out_create_rolls_back_when_rollback_is_on(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "slow", WAITS, timeout_mins=1, disable_rollback=False)
        await started(p, sid)
        p.clock.advance(61)
        done = await settle(p, sid, steps=300)
        assert (done.action, done.status) == ("ROLLBACK", "COMPLETE"), done.status_reason
        assert await live_servers(p) == []
    finally:
        await p.close()


async def test_a_server_pinned_to_a_cloud_goes_there_though_the_cheaper_one_has_room(
    db_url: str, tmp_path: Path
) -> None:
    template = hot(
        {"home": server(), "away": server(availability_zone="public")},
        outputs={
            "home_cloud": {"value": {"get_attr": ["home", "canopy", "cloud"]}},
            "away_cloud": {
                "description": "where the pinned one went",
                "value": {"get_attr": ["away", "canopy", "cloud"]},
            },
        },
    )
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "pinned", template)
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        rows = await resources(p, sid)
        clouds = {s.id: s.cloud for s in await live_servers(p)}
        assert clouds[rows["home"].server_id] == "private"  # type: ignore[index]
        assert clouds[rows["away"].server_id] == "public"  # type: ignore[index]
        assert rows["away"].attributes["canopy"]["reason"]
        listed = outputs(bound_of(done, "RegionOne"), list(rows.values()))
        assert [(o["output_key"], o["output_value"]) for o in listed] == [
            ("away_cloud", "public"),
            ("home_cloud", "private"),
        ]
        assert listed[0]["description"] == "where the pinned one went"
        async with p.db.read() as s:
            summary = await placement_summary(s, sid)
        assert summary["placement"] == [
            {"cloud": "private", "zone": "private", "tier": 0, "servers": 1},
            {"cloud": "public", "zone": "public", "tier": 1, "servers": 1},
        ]
    finally:
        await p.close()
