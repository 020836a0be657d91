"""The orchestration types are names a subscription may filter on: Heat's stack types, and
canopy's own per-resource ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.notifications import events
from canopy.notifications.subscriptions import matches

from .helpers import notify_plane, subscribe


def test_heats_stack_types_and_canopys_resource_types_are_known() -> None:
    assert events.stack_type("CREATE", "IN_PROGRESS") == "orchestration.stack.create.start"
    assert events.stack_type("ROLLBACK", "COMPLETE") == "orchestration.stack.rollback.end"
    assert events.resource_type("DELETE", "FAILED") == "orchestration.resource.delete.error"
    for action in ("create", "update", "delete", "suspend", "resume", "check", "rollback"):
        for phase in ("start", "end", "error"):
            assert f"orchestration.stack.{action}.{phase}" in events.TYPES
            assert f"orchestration.resource.{action}.{phase}" in events.TYPES
    assert "orchestration.stack.adopt.end" in events.TYPES
    assert "orchestration.resource.signal.end" in events.TYPES
    assert len(set(events.TYPES)) == len(events.TYPES)


async def test_a_subscription_may_filter_on_stack_events(db_url: str, tmp_path: Path) -> None:
    p = await notify_plane(db_url, tmp_path)
    try:
        for pattern in ("orchestration.stack.*", "orchestration.*", "*.error"):
            await subscribe(p, "http://127.0.0.1:9/hook", event_types=(pattern,))
        with pytest.raises(InvalidRequest, match="matches no event") as refused:
            await subscribe(p, "http://127.0.0.1:9/hook", event_types=("orchestration.stak.*",))
        # The refusal lists the orchestration types by their shape, not all of them.
        assert "orchestration.stack.<action>.<start|end|error>" in str(refused.value)
        assert "orchestration.stack.create.start" not in str(refused.value)
    finally:
        await p.close()
    wanted = ["orchestration.stack.*"]
    assert matches(wanted, "orchestration.stack.create.end")
    assert matches(wanted, "orchestration.stack.delete.error")
    assert not matches(wanted, "orchestration.resource.create.end")
    assert matches(["orchestration.resource.*.error"], "orchestration.resource.update.error")
