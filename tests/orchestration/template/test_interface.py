"""The surface heat-engine builds on: parse, bind, resources, outputs, resolve."""

from __future__ import annotations

import pytest

from canopy.orchestration.template import TemplateError, parse_template

from .helpers import IDENTITY, FakeResources

WEB = {
    "heat_template_version": "2018-08-31",
    "description": "a web server",
    "parameters": {
        "flavor": {"type": "string", "default": "m1.small"},
        "count": {"type": "number", "default": 2},
        "password": {"type": "string", "hidden": True, "default": "s3cret"},
    },
    "resources": {
        "port": {"type": "OS::Neutron::Port", "properties": {"network": "private"}},
        "server": {
            "type": "OS::Nova::Server",
            "depends_on": "volume",
            "properties": {
                "flavor": {"get_param": "flavor"},
                "networks": [{"port": {"get_resource": "port"}}],
                "name": {
                    "str_replace": {
                        "template": "web-$stack-$n",
                        "params": {"$stack": {"get_param": "OS::stack_name"}, "$n": 1},
                    }
                },
            },
        },
        "volume": {"type": "OS::Cinder::Volume", "deletion_policy": "Retain"},
    },
    "outputs": {
        "ip": {"value": {"get_attr": ["server", "networks", "private", 0]}},
        "names": {"value": {"list_join": [",", ["a", {"get_param": "flavor"}]]}},
    },
}


def test_parse_bind_and_resolve_a_web_server() -> None:
    template = parse_template(WEB)
    assert (template.kind, template.version, template.description) == (
        "hot",
        "2018-08-31",
        "a web server",
    )
    bound = template.bind({"flavor": "m1.large"}, IDENTITY)
    assert bound.parameters == {"flavor": "m1.large", "count": 2, "password": "s3cret"}
    resources = bound.resources()
    assert set(resources) == {"port", "server", "volume"}
    assert resources["server"].depends_on == {"port", "volume"}
    assert resources["port"].depends_on == frozenset()
    assert resources["volume"].deletion_policy == "Retain"
    assert resources["server"].deletion_policy == "Delete"
    ctx = FakeResources(
        ids={"port": "port-uuid"},
        attrs={"server": {"networks": {"private": ["10.0.0.5"]}}},
    )
    props = bound.resolve(resources["server"].properties, ctx)
    assert props == {
        "flavor": "m1.large",
        "networks": [{"port": "port-uuid"}],
        "name": "web-web-1",
    }
    outputs = bound.outputs()
    assert outputs["ip"].depends_on == {"server"}
    assert bound.resolve(outputs["ip"].value, ctx) == "10.0.0.5"
    assert bound.resolve(outputs["names"].value, ctx) == "a,m1.large"
    assert bound.shown_parameters() == {
        "flavor": "m1.large",
        "count": "2",
        "password": "******",
        "OS::stack_name": "web",
        "OS::stack_id": "5f1c0b9e-stack",
        "OS::project_id": "proj-1",
    }


def test_resolve_takes_raw_template_data_too() -> None:
    bound = parse_template(WEB).bind({}, IDENTITY)
    assert bound.resolve({"x": {"get_param": "count"}}, FakeResources()) == {"x": 2}


def test_a_reference_to_a_missing_resource_is_refused_with_its_path() -> None:
    raw = {**WEB, "outputs": {"o": {"value": {"get_resource": "nope"}}}}
    with pytest.raises(TemplateError) as e:
        parse_template(raw)
    assert e.value.path == "outputs.o.value.get_resource"
    assert str(e.value) == "outputs.o.value.get_resource: no resource named 'nope'"
