"""AWS::CloudFormation::WaitCondition and its handle in the engine: the Ref is a pre-signed
URL in the instance's user data, Count SUCCESS signals of distinct UniqueIds complete it, a
FAILURE fails it with its reason, Timeout fails it, Count changes in place, a worker that
dies while acting on a signal is taken over, and the Handle must be a CFN handle of the
stack. (Signals over HTTP, as cfn-signal sends them: tests/api/orchestration/.)"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.cfn_wait import CfnWaitCondition
from canopy.orchestration.resources.registry import SIGNALLED
from canopy.orchestration.service import StackService
from canopy.store.models import ServerUserData
from tests.controllers.harness import make_plane

from .helpers import CLOUDS, create, resources, send_signal, settle, stack
from .test_crash import _successor
from .test_wait import started


def cfn(count: int = 1, timeout: Any = "600", handle: Any = None) -> dict[str, Any]:
    """The heat-templates shape: an instance whose UserData runs cfn-signal with the
    handle's Ref, a wait condition on it, its Data as an output."""
    signal = '/opt/aws/bin/cfn-signal -e 0 -r "Setup complete" \''
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "WaitHandle": {"Type": "AWS::CloudFormation::WaitConditionHandle"},
            "Other": {"Type": "OS::Heat::WaitConditionHandle"},
            "Vm": {
                "Type": "AWS::EC2::Instance",
                "Properties": {
                    "ImageId": "cirros",
                    "InstanceType": "m1.small",
                    "UserData": {
                        "Fn::Base64": {
                            "Fn::Join": ["", ["#!/bin/sh\n", signal, {"Ref": "WaitHandle"}, "'\n"]]
                        }
                    },
                },
            },
            "Wait": {
                "Type": "AWS::CloudFormation::WaitCondition",
                "DependsOn": "Vm",
                "Properties": {
                    "Handle": handle or {"Ref": "WaitHandle"},
                    "Timeout": timeout,
                    "Count": count,
                },
            },
        },
        "Outputs": {"Data": {"Value": {"Fn::GetAtt": ["Wait", "Data"]}}},
    }


def sig(unique: str, status: str = "SUCCESS", reason: str = "ok", data: Any = "d") -> Any:
    """A CFN signal as the signal route writes it (checked by the handle's type)."""
    body = {"Status": status, "Reason": reason, "UniqueId": unique, "Data": data}
    return SIGNALLED["AWS::CloudFormation::WaitConditionHandle"].check_signal(body)


async def test_the_ref_is_a_presigned_url_in_the_user_data_and_count_needs_distinct_ids(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "cfn", cfn(count=2))
        await started(p, sid, "Wait")
        rows = await resources(p, sid)
        url = rows["WaitHandle"].data["url"]
        assert f"/stacks/cfn/{sid}/resources/WaitHandle/signal?signal_token=" in url
        token = url.split("signal_token=")[1]
        assert token not in json.dumps(rows["WaitHandle"].attributes)
        async with p.db.read() as s:
            ud = await s.get(ServerUserData, rows["Vm"].server_id)
            assert ud is not None
            assert (
                f"cfn-signal -e 0 -r \"Setup complete\" '{url}'"
                in base64.b64decode(ud.data).decode()
            )

        await send_signal(p, sid, "WaitHandle", sig("i-1", data="first"))
        await send_signal(p, sid, "WaitHandle", sig("i-1", data="replaced"))
        for _ in range(5):
            await p.step()
        assert (await stack(p, sid)).status == "IN_PROGRESS"  # one UniqueId so far
        await send_signal(p, sid, "WaitHandle", sig("i-2", data={"k": 1}))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        data = json.loads((await resources(p, sid))["Wait"].attributes["Data"])
        assert data == {"i-1": "replaced", "i-2": {"k": 1}}
    finally:
        await p.close()


async def test_a_failure_fails_it_with_the_reason_and_silence_times_it_out(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "fails", cfn(count=2))
        await started(p, sid, "Wait")
        await send_signal(p, sid, "WaitHandle", sig("i-1"))
        await send_signal(p, sid, "WaitHandle", sig("i-2", "FAILURE", "yum failed"))
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "resources.Wait: WaitConditionFailure: yum failed" in done.status_reason

        sid = await create(p, "silent", cfn(timeout=30))
        await started(p, sid, "Wait")
        assert (await resources(p, sid))["Wait"].wait_until is not None
        p.clock.advance(31)
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "WaitConditionTimeout: 0 of 1 received" in done.status_reason
    finally:
        await p.close()


async def test_count_changes_in_place_and_waits_again(db_url: str, tmp_path: Path) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "grows", cfn(count=1))
        await started(p, sid, "Wait")
        await send_signal(p, sid, "WaitHandle", sig("i-1"))
        assert (await settle(p, sid)).status == "COMPLETE"
        before = (await resources(p, sid))["Wait"].id
        p.clock.advance(700)  # past the create's Timeout: the update's wait counts from now
        svc = StackService(p.settings, p.clock)
        async with p.db.session() as s:
            found = await svc.find(s, p.ctx.project_id, sid, lock=True)
            await svc.update(s, p.ctx, found, {"template": cfn(count=2)}, patch=True)
        for _ in range(5):
            await p.step()
        assert (await stack(p, sid)).status == "IN_PROGRESS"  # waits for the second
        await send_signal(p, sid, "WaitHandle", sig("i-2"))
        done = await settle(p, sid)
        assert (done.action, done.status) == ("UPDATE", "COMPLETE"), done.status_reason
        assert (await resources(p, sid))["Wait"].id == before  # not replaced
    finally:
        await p.close()


async def test_a_worker_that_dies_acting_on_the_signal_is_taken_over(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "crashy", cfn(count=1))
        await started(p, sid, "Wait")
        await send_signal(p, sid, "WaitHandle", sig("i-1", data="kept"))
        real = CfnWaitCondition.check
        died: list[bool] = []

        async def dies_once(self: CfnWaitCondition, step: Any, res: Any) -> Any:
            out = await real(self, step, res)
            if out.done and not died:
                died.append(True)
                raise RuntimeError("kill -9")  # the worker dies as the wait completes
            return out

        monkeypatch.setattr(CfnWaitCondition, "check", dies_once)
        for _ in range(20):
            if died:
                break
            await p.worker.orchestration.run_once()  # the worker survives its step's crash
        assert died
        assert (await stack(p, sid)).status == "IN_PROGRESS"  # nothing of that step kept
        nxt = _successor(p)
        p.clock.advance(p.settings.controllers.lease_seconds + 1)
        done = await settle(nxt, sid)
        assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
        data = json.loads((await resources(p, sid))["Wait"].attributes["Data"])
        assert data == {"i-1": "kept"}
    finally:
        await p.close()


async def test_the_handle_must_be_a_cfn_handle_and_timeout_is_bounded(
    db_url: str, tmp_path: Path
) -> None:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        # A native handle's Ref is not a CFN handle (Heat's _validate_handle_url).
        sid = await create(p, "native", cfn(handle={"Ref": "Other"}))
        done = await settle(p, sid)
        assert done.status == "FAILED"
        assert "WaitCondition invalid Handle" in done.status_reason
        for bad in (0, 43201, "soon"):
            with pytest.raises(InvalidRequest, match="Timeout"):
                await create(p, f"t{bad}", cfn(timeout=bad))
    finally:
        await p.close()


async def test_the_native_wait_condition_takes_a_cfn_handle(db_url: str, tmp_path: Path) -> None:
    """As Heat's OS::Heat::WaitCondition (resource_by_refid: any wait condition handle)."""
    template = cfn()
    template["Resources"]["Wait"] = {
        "Type": "OS::Heat::WaitCondition",
        "DependsOn": "Vm",
        "Properties": {"handle": {"Ref": "WaitHandle"}, "timeout": 600},
    }
    template["Outputs"] = {"Data": {"Value": {"Fn::GetAtt": ["Wait", "data"]}}}
    p = await make_plane(db_url, tmp_path, toml=CLOUDS)
    try:
        sid = await create(p, "mixed", template)
        await started(p, sid, "Wait")
        await send_signal(p, sid, "WaitHandle", sig("i-1", data="cfn"))
        done = await settle(p, sid)
        assert done.status == "COMPLETE", done.status_reason
        assert json.loads((await resources(p, sid))["Wait"].attributes["data"]) == {"i-1": "cfn"}
    finally:
        await p.close()
