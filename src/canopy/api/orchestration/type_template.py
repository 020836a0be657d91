"""`GET /resource_types/{type}/template`: a template that mirrors a resource type.

As Heat's `resource_to_template` (`openstack orchestration resource type show
--template-type hot TYPE`): each property becomes a parameter of the matching type
(with its description, default and allowed values) passed to one resource of the type,
and each attribute an output. The resource is named by the last part of the type's name
(Heat names it after its class, the same for most types).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from canopy.api.orchestration.common import ScopeDep
from canopy.api.orchestration.info import known_type
from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Prop

router = APIRouter()

_HOT = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "map": "json",
    "list": "comma_delimited_list",
    "any": "json",  # a value of any type (OS::Heat::Value's): Heat has no mapping for it
}
_CFN = {
    "string": "String",
    "integer": "Number",
    "number": "Number",
    "boolean": "Boolean",
    "map": "Json",
    "list": "CommaDelimitedList",
    "any": "Json",
}
_BOOLEANS = ["True", "true", "False", "false"]


def _hot_parameter(p: Prop) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _HOT[p.type], "description": p.description}
    if p.default is not None:
        out["default"] = p.default
    if p.allowed:
        out["constraints"] = [{"allowed_values": list(p.allowed)}]
    return out


def _cfn_parameter(p: Prop) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": _CFN[p.type], "Description": p.description}
    if p.default is not None:
        out["Default"] = p.default
    if p.allowed:
        out["AllowedValues"] = list(p.allowed)
    if p.type == "boolean":
        out["AllowedValues"] = _BOOLEANS
    return out


@router.get(
    "/resource_types/{type_name}/template",
    summary="A template mirroring a resource type: properties as parameters, attributes as outputs",
)
async def resource_type_template(
    type_name: str, ctx: ScopeDep, template_type: str = "cfn"
) -> dict[str, Any]:
    kind = known_type(type_name)
    if template_type not in ("cfn", "hot"):
        raise InvalidRequest(
            f'Template type is not supported: Invalid template type "{template_type[:32]}", '
            "valid types are: cfn, hot."
        )
    res = type_name.rsplit("::", 1)[-1]
    description = f"Initial template of {res}"
    if template_type == "hot":
        return {
            "heat_template_version": "2016-10-14",
            "description": description,
            "parameters": {n: _hot_parameter(p) for n, p in kind.properties.items()},
            "resources": {
                res: {
                    "type": type_name,
                    "properties": {n: {"get_param": n} for n in kind.properties},
                }
            },
            "outputs": {
                n: {"description": d, "value": {"get_attr": [res, n]}}
                for n, d in kind.attributes.items()
            },
        }
    return {
        "HeatTemplateFormatVersion": "2012-12-12",
        "Description": description,
        "Parameters": {n: _cfn_parameter(p) for n, p in kind.properties.items()},
        "Resources": {
            res: {
                "Type": type_name,
                "Properties": {
                    n: {"Fn::Split": [",", {"Ref": n}]} if p.type == "list" else {"Ref": n}
                    for n, p in kind.properties.items()
                },
            }
        },
        "Outputs": {
            n: {"Description": d, "Value": {"Fn::GetAtt": [res, n]}}
            for n, d in kind.attributes.items()
        },
    }
