"""AWS::EC2::Instance: CloudFormation's server, a canopy server like OS::Nova::Server.

ImageId and InstanceType are canopy image and flavor names or ids; AvailabilityZone pins a
cloud; Tags become server metadata, and a change of them is made in place (Heat's
update_allowed), as OS::Nova::Server's metadata is. Canopy has no Neutron and no Cinder:
the network, security group and volume properties are accepted and recorded. UserData is
passed as it is (Heat wraps it in a cfn-tools MIME message; canopy does not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step
from canopy.orchestration.resources.server_common import ServerBase, encode, zone_of
from canopy.services.server_create import CreateServer
from canopy.store.models import StackResource

_RECORDED = "Accepted and recorded: canopy has no Neutron or Cinder."


class Ec2Instance(ServerBase):
    name = "AWS::EC2::Instance"
    description = "A CloudFormation instance: a canopy server placed by the scheduler."
    keys = {
        "flavor": "InstanceType",
        "image": "ImageId",
        "key_name": "KeyName",
        "zone": "AvailabilityZone",
        "user_data": "UserData",
        "metadata": "Tags",
    }
    properties: Mapping[str, Prop] = {
        "ImageId": Prop("string", "Image name or id.", required=True),
        "InstanceType": Prop("string", "Flavor name or id.", required=True),
        "KeyName": Prop("string", "Name of a keypair of the stack's user."),
        "AvailabilityZone": Prop("string", "A cloud's name: pins the instance there."),
        "UserData": Prop("string", "User data, passed as it is.", strict=True),
        "Tags": Prop(
            "list",
            "Tags ({Key, Value}), set as server metadata; changed in place, in canopy's "
            "record (the cloud's copy keeps the create-time metadata).",
            update_allowed=True,
        ),
        "NovaSchedulerHints": Prop("list", "Scheduler hints ({Key, Value}); group places."),
        "SecurityGroups": Prop("list", _RECORDED),
        "SecurityGroupIds": Prop("list", _RECORDED),
        "NetworkInterfaces": Prop("list", _RECORDED),
        "SubnetId": Prop("string", _RECORDED),
        "PrivateIpAddress": Prop("string", _RECORDED),
        "Volumes": Prop("list", _RECORDED),
        "BlockDeviceMappings": Prop("list", _RECORDED),
        "DisableApiTermination": Prop("string", "Accepted and ignored."),
        "KernelId": Prop("string", "Accepted and ignored."),
        "RamDiskId": Prop("string", "Accepted and ignored."),
        "Monitoring": Prop("boolean", "Accepted and ignored."),
        "PlacementGroupName": Prop("string", "Accepted and ignored."),
        "SourceDestCheck": Prop("boolean", "Accepted and ignored."),
        "Tenancy": Prop("string", "Accepted and ignored.", allowed=("dedicated", "default")),
    }
    attributes: Mapping[str, str] = {
        "AvailabilityZone": "The cloud the instance is on.",
        "PrivateDnsName": "Private DNS name of the instance (its first address).",
        "PublicDnsName": "Public DNS name of the instance (its first address).",
        "PrivateIp": "Private IP address of the instance.",
        "PublicIp": "Public IP address of the instance.",
    }

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        for key in ("Tags", "NovaSchedulerHints"):
            pairs(key, props.get(key))
        super().validate(props, known)

    async def request(self, step: Step, res: StackResource) -> CreateServer:
        p = res.properties
        hints = pairs("NovaSchedulerHints", p.get("NovaSchedulerHints"))
        group = hints.get("group")
        return CreateServer(
            name=self.new_name(step, res),
            flavor=p["InstanceType"],
            image=p["ImageId"],
            availability_zone=zone_of(p.get("AvailabilityZone")),
            key_name=p.get("KeyName"),
            metadata=self.server_metadata(p),
            hints=dict(hints),
            group_id=group or None,
            user_data=encode(p.get("UserData")),
        )

    def server_metadata(self, props: Mapping[str, Any]) -> dict[str, str]:
        return pairs("Tags", props.get("Tags"))

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        """Heat's in-place update: Tags replace the server's metadata (the other
        properties are not update_allowed: a change of them replaces the server)."""
        failed = await self.set_metadata(step, res, new)
        if failed is not None:
            return failed
        return await super().update(step, res, new)

    def shown(self, common: dict[str, Any]) -> dict[str, Any]:
        first = common.get("accessIPv4") or common.get("first_address") or ""
        return {
            "AvailabilityZone": common["canopy"]["cloud"],
            "PrivateDnsName": first,
            "PublicDnsName": first,
            "PrivateIp": first,
            "PublicIp": first,
            "canopy": common["canopy"],
        }


def pairs(key: str, raw: Any) -> dict[str, str]:
    """A CloudFormation list of {Key, Value} as a map (InvalidRequest if not that shape)."""
    out: dict[str, str] = {}
    for item in raw or []:
        if (
            not isinstance(item, Mapping)
            or set(item) != {"Key", "Value"}
            or not isinstance(item["Key"], str)
        ):
            raise InvalidRequest(f"{key}: each item is a map of Key and Value.")
        value = item["Value"]
        out[item["Key"]] = value if isinstance(value, str) else str(value)
    return out
