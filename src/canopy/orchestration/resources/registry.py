"""The resource types canopy supports: an explicit table, name -> type (no look-ups by
reflection). A template naming any other type is refused with the list of these."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources import group_attrs, software_deployment_group
from canopy.orchestration.resources.autoscaling import AutoScalingGroup
from canopy.orchestration.resources.aws_autoscaling import (
    AwsAutoScalingGroup,
    LaunchConfiguration,
)
from canopy.orchestration.resources.aws_scaling import AwsScalingPolicy
from canopy.orchestration.resources.base import ResourceType
from canopy.orchestration.resources.cfn_wait import CfnWaitCondition, CfnWaitConditionHandle
from canopy.orchestration.resources.ec2_instance import Ec2Instance
from canopy.orchestration.resources.group import ResourceGroup
from canopy.orchestration.resources.nested import TEMPLATE_RESOURCE, NestedStack
from canopy.orchestration.resources.nova_extras import KeyPair, ServerGroup
from canopy.orchestration.resources.scaling import ScalingPolicy
from canopy.orchestration.resources.server import NovaServer
from canopy.orchestration.resources.signalling import TakesSignals
from canopy.orchestration.resources.simple import NoneResource, RandomString, TestResource, Value
from canopy.orchestration.resources.software_config import (
    CloudConfig,
    MultipartMime,
    SoftwareComponent,
    SoftwareConfig,
    StructuredConfig,
)
from canopy.orchestration.resources.software_deployment import (
    MAX_SIGNAL_BYTES,
    SoftwareDeployment,
    StructuredDeployment,
)
from canopy.orchestration.resources.software_deployment_group import (
    SoftwareDeploymentGroup,
    SoftwareDeployments,
    StructuredDeploymentGroup,
    StructuredDeployments,
)
from canopy.orchestration.resources.wait import WaitCondition, WaitConditionHandle
from canopy.store.models import StackResource

_HANDLE = WaitConditionHandle()
_CFN_HANDLE = CfnWaitConditionHandle()
_POLICY = ScalingPolicy()
_AWS_POLICY = AwsScalingPolicy()
_DEPLOYMENT = SoftwareDeployment()
_STRUCTURED_DEPLOYMENT = StructuredDeployment()
_DEPLOYMENT_GROUPS = (
    SoftwareDeploymentGroup(),
    SoftwareDeployments(),
    StructuredDeploymentGroup(),
    StructuredDeployments(),
)

TYPES: Mapping[str, ResourceType] = {
    t.name: t
    for t in (
        NovaServer(),
        RandomString(),
        Value(),
        NoneResource(),
        TestResource(),
        Ec2Instance(),
        KeyPair(),
        ServerGroup(),
        SoftwareConfig(),
        StructuredConfig(),
        SoftwareComponent(),
        CloudConfig(),
        MultipartMime(),
        NestedStack(),
        _HANDLE,
        WaitCondition(),
        _CFN_HANDLE,
        CfnWaitCondition(),
        ResourceGroup(),
        AutoScalingGroup(),
        _POLICY,
        LaunchConfiguration(),
        AwsAutoScalingGroup(),
        _AWS_POLICY,
        _DEPLOYMENT,
        _STRUCTURED_DEPLOYMENT,
        *_DEPLOYMENT_GROUPS,
    )
}

# The types that take signals (POST or PUT .../resources/{name}/signal).
SIGNALLED: Mapping[str, TakesSignals] = {
    t.name: t
    for t in (_HANDLE, _CFN_HANDLE, _POLICY, _AWS_POLICY, _DEPLOYMENT, _STRUCTURED_DEPLOYMENT)
}

# The types whose members (a group's rows) take signals themselves: a deployment group's
# deployments, each signalled by the agent on its server.
SIGNALLED_MEMBERS: frozenset[str] = frozenset({_DEPLOYMENT.name, _STRUCTURED_DEPLOYMENT.name})

# The types whose signal body may be longer than the API's default limit (a deployment's
# result carries the config's stdout and stderr).
SIGNAL_BYTES: Mapping[str, int] = {
    _DEPLOYMENT.name: MAX_SIGNAL_BYTES,
    _STRUCTURED_DEPLOYMENT.name: MAX_SIGNAL_BYTES,
}

# The types a stack update repairs in place when they failed (groups: only their failed
# members are replaced), instead of replacing them whole.
REPAIRED: frozenset[str] = frozenset(
    {ResourceGroup.name, AutoScalingGroup.name, AwsAutoScalingGroup.name}
    | {t.name for t in _DEPLOYMENT_GROUPS}
)

# The types whose get_attr is more than a look-up in the attributes they recorded.
AttributeReader = Callable[[StackResource, Sequence[Any]], Any]
READERS: Mapping[str, AttributeReader] = {
    ResourceGroup.name: group_attrs.read,
    AutoScalingGroup.name: group_attrs.read,
    **{t.name: software_deployment_group.read for t in _DEPLOYMENT_GROUPS},
}


def resource_type(name: str, where: str = "", files: Collection[str] | None = None) -> ResourceType:
    """The type called `name` (a template resource if `name` is one of the stack's
    `files`, a map or the names of them), or InvalidRequest naming every supported type."""
    found = TYPES.get(name)
    if found is None and files is not None and name in files:
        return TEMPLATE_RESOURCE
    if found is None:
        at = f"{where}: " if where else ""
        if name.endswith((".yaml", ".yml", ".template", ".json")) or "://" in name:
            raise InvalidRequest(
                f"{at}The template {name} is not in the stack's files: canopy fetches "
                "nothing, send it in files (the openstack client does)."
            )
        raise InvalidRequest(
            f"{at}The Resource Type ({name}) could not be found. Canopy supports: "
            + ", ".join(sorted(TYPES))
            + ", and templates in the stack's files."
        )
    return found


def row_type(name: str) -> ResourceType:
    """The type of a resource row: a row exists only once its type was accepted, so a
    name that is not a built-in type is a template resource's file."""
    return TYPES.get(name) or TEMPLATE_RESOURCE


def is_nested(kind: ResourceType) -> bool:
    return kind is TEMPLATE_RESOURCE or isinstance(kind, NestedStack)
