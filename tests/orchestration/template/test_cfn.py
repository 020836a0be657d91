"""CloudFormation templates as Heat reads them."""

from __future__ import annotations

from typing import Any

import pytest

from canopy.orchestration.template import StackIdentity, TemplateError, parse_template

from .helpers import FakeResources, refused

IDENTITY = StackIdentity(name="web", id="s-1", project_id="p-1", region="RegionTwo",
                         availability_zones=("az1", "az2"))  # fmt: skip


def cfn(**sections: Any) -> dict[str, Any]:
    return {"AWSTemplateFormatVersion": "2010-09-09", **sections}


TEMPLATE = cfn(
    Description="cfn web",
    Parameters={
        "InstanceType": {
            "Type": "String",
            "Default": "m1.small",
            "AllowedValues": ["m1.small", "m1.large"],
            "ConstraintDescription": "must be a known flavor",
        },
        "Env": {"Type": "String", "Default": "dev"},
        "Ports": {"Type": "List<Number>", "Default": "80,443"},
    },
    Mappings={"Images": {"RegionTwo": {"64": "fedora-64"}}},
    Conditions={
        "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
        "NotProd": {"Fn::Not": ["IsProd"]},
        "Both": {"Fn::And": ["NotProd", {"Fn::Or": [{"Condition": "IsProd"}, "NotProd"]}]},
    },
    Resources={
        "Server": {
            "Type": "AWS::EC2::Instance",
            "Properties": {
                "InstanceType": {"Ref": "InstanceType"},
                "ImageId": {"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "64"]},
                "UserData": {
                    "Fn::Base64": {
                        "Fn::Join": ["", ["#!/bin/sh\n", "echo ", {"Ref": "AWS::StackName"}]]
                    }
                },
                "AvailabilityZone": {"Fn::Select": ["1", {"Fn::GetAZs": ""}]},
                "SecurityGroups": [{"Ref": "Group"}],
                "Tags": {"Fn::If": ["IsProd", "prod", "dev"]},
                "Name": {"Fn::Replace": [{"%s": {"Ref": "AWS::StackId"}}, "stack-%s"]},
                "Split": {"Fn::Split": [",", "a,b"]},
            },
        },
        "Group": {"Type": "AWS::EC2::SecurityGroup", "DeletionPolicy": "Retain"},
        "ProdOnly": {"Type": "AWS::EC2::Volume", "Condition": "IsProd"},
    },
    Outputs={
        "PublicIp": {"Value": {"Fn::GetAtt": ["Server", "PublicIp"]}, "Description": "ip"},
        "Volume": {"Value": {"Ref": "ProdOnly"}, "Condition": "IsProd"},
    },
)


def test_a_cfn_template_binds_and_resolves() -> None:
    template = parse_template(TEMPLATE)
    assert (template.kind, template.version, template.description) == (
        "cfn",
        "2010-09-09",
        "cfn web",
    )
    bound = template.bind({}, IDENTITY)
    assert bound.parameters["Ports"] == ["80", "443"]
    assert bound.condition_values() == {"IsProd": False, "NotProd": True, "Both": True}
    resources = bound.resources()
    assert set(resources) == {"Server", "Group"}
    assert resources["Server"].depends_on == {"Group"}
    assert resources["Group"].deletion_policy == "Retain"
    ctx = FakeResources(ids={"Group": "sg-1"}, attrs={"Server": {"PublicIp": "1.2.3.4"}})
    props = bound.resolve(resources["Server"].properties, ctx)
    assert props == {
        "InstanceType": "m1.small",
        "ImageId": "fedora-64",
        "UserData": "#!/bin/sh\necho web",  # Fn::Base64 passes through unencoded
        "AvailabilityZone": "az2",
        "SecurityGroups": ["sg-1"],
        "Tags": "dev",
        "Name": "stack-arn:openstack:heat::p-1:stacks/web/s-1",
        "Split": ["a", "b"],
    }
    outputs = bound.outputs()
    assert bound.resolve(outputs["PublicIp"].value, ctx) == "1.2.3.4"
    assert outputs["Volume"].condition_true is False
    assert outputs["Volume"].value is None


def test_cfn_parameter_constraints_apply() -> None:
    template = parse_template(TEMPLATE)
    with pytest.raises(TemplateError) as e:
        template.bind({"InstanceType": "m1.huge"}, IDENTITY)
    assert (e.value.path, e.value.message) == (
        "parameters.InstanceType",
        "parameter 'InstanceType' is invalid: must be a known flavor",
    )
    with pytest.raises(TemplateError) as e:
        template.bind({"Ports": "80,http"}, IDENTITY)
    assert e.value.message == "parameter 'Ports' is invalid: 'http' is not a number"


def test_cfn_parameter_info_is_what_validate_shows() -> None:
    info = {p.name: p for p in parse_template(TEMPLATE).parameter_infos()}
    assert info["InstanceType"].type == "String"
    assert info["InstanceType"].constraints == [
        {
            "AllowedValues": ["m1.small", "m1.large"],
            "ConstraintDescription": "must be a known flavor",
        }
    ]
    assert info["Ports"].type == "CommaDelimitedList"


def test_cfn_pseudo_parameters() -> None:
    bound = parse_template(
        cfn(Resources={}, Outputs={"r": {"Value": {"Ref": "AWS::Region"}}})
    ).bind({}, IDENTITY)
    assert bound.resolve(bound.outputs()["r"].value, FakeResources()) == "RegionTwo"
    assert bound.shown_parameters() == {
        "AWS::StackName": "web",
        "AWS::StackId": "arn:openstack:heat::p-1:stacks/web/s-1",
        "AWS::Region": "RegionTwo",
    }


def test_cfn_select_out_of_range_is_empty() -> None:
    raw = cfn(Resources={}, Outputs={"o": {"Value": {"Fn::Select": [5, ["a"]]}}})
    bound = parse_template(raw).bind({}, IDENTITY)
    assert bound.resolve(bound.outputs()["o"].value, FakeResources()) == ""


def test_cfn_errors_name_their_path() -> None:
    e = refused(cfn(Resources={"A": {"Type": "T", "Properties": {"x": {"Ref": "Nope"}}}}))
    assert (e.path, e.message) == (
        "Resources.A.Properties.x.Ref",
        "no resource or parameter named 'Nope'",
    )
    e = refused(cfn(Resources={"A": {"Type": "T", "DependsOn": "B"}}))
    assert (e.path, e.message) == ("Resources.A.DependsOn", "no resource named 'B'")
    e = refused(cfn(Resources={"A": {"Type": "T", "Propertys": {}}}))
    assert e.path == "Resources.A"
    assert e.message.startswith("unknown key 'Propertys' (allowed: Type, Properties,")
    e = refused(cfn(Resources={}, Outputs={"o": {"Value": {"Fn::FindInMap": ["M", "a", "b"]}}}))
    assert e.message == "no mapping named 'M'"
    e = refused(cfn(Resources={}, Outputs={"o": {"Value": {"get_param": "x"}}}))
    assert e.message == (
        "get_param is not available in AWSTemplateFormatVersion 2010-09-09: "
        "it is a HOT function (this is a CloudFormation template)"
    )
    e = refused(cfn(Resources={}, Outputs={"o": {"Value": {"Fn::GetAtt": ["A"]}}}))
    assert e.message == "the argument must be [resource, attribute]"


def test_cfn_resources_alone_make_a_cfn_template() -> None:
    assert parse_template({"Resources": {}}).kind == "cfn"
