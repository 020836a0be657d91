"""CFN wait conditions over HTTP: the handle's Ref, read from the instance's user data, takes
`curl -X PUT -H 'Content-Type:' --data-binary '{"Status": ...}' URL` (what cfn-signal runs)
with no other credential; a JSON and a YAML template complete with their Data output; bad
bodies are Heat's 400 and write nothing; a token of another resource or stack signals
nothing; the types are listed with their schema."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest
import yaml

from canopy.store.models import ServerUserData
from tests.api.conftest import Api
from tests.orchestration.helpers import resources, settle, signals, stack
from tests.orchestration.test_cfn_wait import cfn

from .test_signals import path_of
from .test_stacks import assert_heat_fault

CURL = {"Content-Type": ""}  # curl -H 'Content-Type:' sends none
BODY = {
    "Status": "SUCCESS",
    "Reason": "Configuration Complete",
    "UniqueId": "ID1",
    "Data": "Application has completed configuration.",
}


# The YAML form of heat-templates' CFN files (cfn/F17/WordPress_Single_Instance_With_HA.yaml),
# parsed as the openstack client parses it before sending.
YAML = """
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  WaitHandle: {Type: 'AWS::CloudFormation::WaitConditionHandle'}
  Vm:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: cirros
      InstanceType: m1.small
      UserData:
        Fn::Base64:
          Fn::Join:
          - ''
          - - |
              #!/bin/sh
            - /opt/aws/bin/cfn-signal -e 0 -r "Setup complete" '
            - {Ref: WaitHandle}
            - |
              '
  Wait:
    Type: AWS::CloudFormation::WaitCondition
    DependsOn: Vm
    Properties:
      Handle: {Ref: WaitHandle}
      Timeout: '600'
Outputs:
  Data:
    Value:
      Fn::GetAtt: [Wait, Data]
"""


def put(body: Any) -> bytes:
    return json.dumps(body).encode()


async def _waiting(api: Api, name: str, template: Any) -> tuple[str, str]:
    """Create the stack, step it until the wait condition waits; its id and the URL the
    instance's user data holds (as the booted instance would find it)."""
    pid = api.admin.project_id
    r = await api.client.post(
        f"/orchestration/v1/{pid}/stacks", json={"stack_name": name, "template": template}
    )
    assert r.status_code == 201, r.text
    sid = r.json()["stack"]["id"]

    async def there() -> bool:
        rows = await resources(api.plane, sid)
        return "Wait" in rows and rows["Wait"].status == "IN_PROGRESS"

    await api.plane.run_until(there)
    rows = await resources(api.plane, sid)
    async with api.plane.db.read() as s:
        ud = await s.get(ServerUserData, rows["Vm"].server_id)
        assert ud is not None
    script = base64.b64decode(ud.data).decode()
    found = re.search(r"cfn-signal -e 0 -r \"[^\"]*\" '([^']+)'", script)
    assert found, "the handle's URL is not in the user data"
    return sid, found.group(1)


def _anonymous(api: Api) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://x")


async def _output(api: Api, name: str, sid: str) -> Any:
    pid = api.admin.project_id
    r = await api.client.get(f"/orchestration/v1/{pid}/stacks/{name}/{sid}/outputs/Data")
    assert r.status_code == 200, r.text
    return json.loads(r.json()["output"]["output_value"])


@pytest.mark.parametrize("form", ["json", "yaml"])
async def test_a_curl_put_to_the_ref_completes_the_stack(api: Api, form: str) -> None:
    template = cfn() if form == "json" else yaml.safe_load(YAML)
    sid, url = await _waiting(api, f"cfn-{form}", template)
    async with _anonymous(api) as curl:
        r = await curl.put(path_of(url), content=put(BODY), headers=CURL)
    assert r.status_code == 200, r.text
    done = await settle(api.plane, sid)
    assert (done.action, done.status) == ("CREATE", "COMPLETE"), done.status_reason
    assert await _output(api, f"cfn-{form}", sid) == {
        "ID1": "Application has completed configuration."
    }


async def test_failure_by_put_fails_the_stack_with_its_reason(api: Api) -> None:
    sid, url = await _waiting(api, "cfn-fails", cfn())
    async with _anonymous(api) as curl:
        body = {**BODY, "Status": "FAILURE", "Reason": "httpd did not start"}
        r = await curl.put(path_of(url), content=put(body), headers=CURL)
    assert r.status_code == 200, r.text
    done = await settle(api.plane, sid)
    assert done.status == "FAILED"
    assert "WaitConditionFailure: httpd did not start" in done.status_reason


async def test_count_two_needs_two_unique_ids_by_put_or_post(api: Api) -> None:
    sid, url = await _waiting(api, "cfn-two", cfn(count=2))
    async with _anonymous(api) as curl:
        for unique in ("ID1", "ID1"):  # a repeated UniqueId replaces: still one
            body = {**BODY, "UniqueId": unique, "Data": "again"}
            assert (await curl.put(path_of(url), content=put(body), headers=CURL)).is_success
        for _ in range(5):
            await api.plane.step()
        assert (await stack(api.plane, sid)).status == "IN_PROGRESS"
        body = {**BODY, "UniqueId": "ID2", "Data": "two"}
        assert (await curl.post(path_of(url), content=put(body), headers=CURL)).is_success
    done = await settle(api.plane, sid)
    assert done.status == "COMPLETE", done.status_reason
    assert await _output(api, "cfn-two", sid) == {"ID1": "again", "ID2": "two"}


async def test_bad_bodies_and_other_tokens_are_refused_and_write_nothing(api: Api) -> None:
    sid, url = await _waiting(api, "cfn-bad", cfn())
    other_sid, other_url = await _waiting(api, "cfn-other", cfn())
    path = path_of(url)
    bad_bodies = [
        b"{not json",
        put({**BODY, "Status": "MAYBE"}),
        put({k: v for k, v in BODY.items() if k != "UniqueId"}),  # Heat wants all four
        put({**BODY, "Extra": 1}),
        put(["Status", "SUCCESS"]),
        put({**BODY, "UniqueId": {"a": 1}}),
        b'{"Status": "SUCCESS", "Reason": "\\ud800", "UniqueId": "1", "Data": ""}',
        put({**BODY, "Data": "x" * (70 << 10)}),  # past the signal size limit
    ]
    async with _anonymous(api) as curl:
        for raw in bad_bodies:
            assert_heat_fault(await curl.put(path, content=raw, headers=CURL), 400)
        # Another handle's token (this stack's path, the other's token; and the other way
        # round), a forged token, and no token at all.
        token = other_url.split("signal_token=")[1]
        swapped = path.split("signal_token=")[0] + f"signal_token={token}"
        assert_heat_fault(await curl.put(swapped, content=put(BODY), headers=CURL), 403)
        crossed = path.replace(sid, other_sid).replace("/cfn-bad/", "/cfn-other/")
        crossed = crossed.split("signal_token=")[0] + "signal_token=" + url.split("=")[-1]
        assert_heat_fault(await curl.put(crossed, content=put(BODY), headers=CURL), 403)
        forged = path.split("signal_token=")[0] + "signal_token=forged"
        assert_heat_fault(await curl.put(forged, content=put(BODY), headers=CURL), 403)
        bare = path.split("?")[0]
        assert_heat_fault(await curl.put(bare, content=put(BODY), headers=CURL), 401)
    assert await signals(api.plane, sid) == []
    assert await signals(api.plane, other_sid) == []
    for _ in range(5):
        await api.plane.step()
    assert (await stack(api.plane, sid)).status == "IN_PROGRESS"
    assert (await stack(api.plane, other_sid)).status == "IN_PROGRESS"


async def test_the_types_are_listed_with_their_schema_and_validate(api: Api) -> None:
    pid = api.admin.project_id
    r = await api.client.get(f"/orchestration/v1/{pid}/resource_types")
    listed = r.json()["resource_types"]
    assert "AWS::CloudFormation::WaitCondition" in listed
    assert "AWS::CloudFormation::WaitConditionHandle" in listed
    r = await api.client.get(
        f"/orchestration/v1/{pid}/resource_types/AWS::CloudFormation::WaitCondition"
    )
    assert r.status_code == 200, r.text
    shown = r.json()
    assert set(shown["properties"]) == {"Handle", "Timeout", "Count"}
    assert shown["properties"]["Count"]["update_allowed"] is True
    assert shown["properties"]["Timeout"]["update_allowed"] is False
    assert set(shown["attributes"]) >= {"Data"}
    r = await api.client.get(
        f"/orchestration/v1/{pid}/resource_types/AWS::CloudFormation::WaitConditionHandle"
    )
    assert r.status_code == 200 and r.json()["properties"] == {}
    r = await api.client.post(f"/orchestration/v1/{pid}/validate", json={"template": cfn()})
    assert r.status_code == 200, r.text
    r = await api.client.post(
        f"/orchestration/v1/{pid}/validate", json={"template": cfn(timeout=50000)}
    )
    assert_heat_fault(r, 400)
