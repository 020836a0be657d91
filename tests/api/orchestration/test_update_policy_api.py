"""A hostile update policy over HTTP: numbers too large to convert (an integer of hundreds
of digits, a PauseTime of thousands) are refused with a 400 in Heat's fault format, never a
500, and nothing is created."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api
from tests.orchestration.helpers import hot, server
from tests.orchestration.test_aws_autoscaling import cfn, config
from tests.orchestration.test_aws_autoscaling import group as aws_group

from .test_stacks import assert_heat_fault

HUGE = 10**400  # math.isfinite() of it overflows


def _resource_group(policy: dict[str, Any]) -> dict[str, Any]:
    props = {"count": 2, "resource_def": server()}
    return hot({"grp": {"type": "OS::Heat::ResourceGroup", "properties": props, **policy}})


def _aws_group(pause: str) -> dict[str, Any]:
    policy = {"MaxBatchSize": "1", "MinInstancesInService": "0", "PauseTime": pause}
    return cfn(
        {
            "LaunchConfig": config(),
            "grp": {**aws_group(), "UpdatePolicy": {"AutoScalingRollingUpdate": policy}},
        }
    )


def _os_group(rolling: dict[str, Any]) -> dict[str, Any]:
    props = {"min_size": 1, "max_size": 3, "resource": server(), "rolling_updates": rolling}
    return hot({"grp": {"type": "OS::Heat::AutoScalingGroup", "properties": props}})


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            _resource_group({"update_policy": {"rolling_update": {"max_batch_size": HUGE}}}),
            "rolling_update.max_batch_size: a larger number is out of range (min: 1, max: ",
        ),
        (
            _resource_group({"update_policy": {"rolling_update": {"pause_time": HUGE}}}),
            "rolling_update.pause_time: a larger number is out of range (min: 0, max: ",
        ),
        (
            _resource_group({"update_policy": {"batch_create": {"pause_time": "nan"}}}),
            "batch_create.pause_time: nan is out of range",
        ),
        (_aws_group("PT" + "9" * 5000 + "S"), "PauseTime: Maximum PauseTime is 1 hour."),
        (_aws_group("PT99999H"), "PauseTime: Maximum PauseTime is 1 hour."),
        (
            _os_group({"min_in_service": HUGE}),
            "rolling_updates.min_in_service: a larger number is out of range (min: 0, max: ",
        ),
    ],
)
async def test_a_number_too_large_is_a_400_and_nothing_is_created(
    api: Api, template: dict[str, Any], message: str
) -> None:
    base = f"/orchestration/v1/{api.admin.project_id}"
    r = await api.client.post(base + "/stacks", json={"stack_name": "big", "template": template})
    said = assert_heat_fault(r, 400)
    assert message in said, said
    assert len(said) < 1000  # the value is not echoed
    r = await api.client.post(base + "/validate", json={"template": template})
    assert message in assert_heat_fault(r, 400)
    assert (await api.client.get(base + "/stacks")).json()["stacks"] == []
