"""Template corpus, part three: the real templates OpenStack publishes on the package index.

Two wheels hold Heat templates written by Heat's team (downloaded at test time through
tests/pypi_wheels.py; nothing of them is in canopy's tree):

- openstack-heat: `heat/tests/templates/` (copies of heat-templates' cfn/F17
  WordPress_Single_Instance and a Neutron sample) and `etc/heat/templates/` (the template
  resources Heat's global environment maps AWS::CloudWatch::Alarm and AWS::RDS::DBInstance
  to);
- heat-tempest-plugin: `tests/scenario/templates/`, what OpenStack's CI creates against a
  real Heat.

EXPECTED says what each one does on canopy: runs whole (None), or is refused by
`POST /validate` with a message naming the type (or constraint) canopy lacks.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.pypi_wheels import extract, needed, read

from .corpus_load import discover

HEAT = ("openstack-heat", "27.0.1")
TEMPEST = ("heat-tempest-plugin", "3.0.0")
WHEELS = {HEAT[0]: HEAT, TEMPEST[0]: TEMPEST}

_H = "openstack-heat:heat/tests/templates/"
_E = "openstack-heat:openstack_heat-27.0.1.data/data/etc/heat/templates/"
_T = "heat-tempest-plugin:heat_tempest_plugin/tests/scenario/templates/"

# Each template file of the two wheels (as `WHEEL:PATH`): None when it runs whole, else
# what the refusal of `/validate` names.
EXPECTED: dict[str, str | None] = {
    f"{_H}Neutron.template": "OS::Neutron::Net",
    f"{_H}Neutron.yaml": "OS::Neutron::Net",
    f"{_H}WordPress_Single_Instance.template": None,
    f"{_H}WordPress_Single_Instance.yaml": None,
    # Heat's template for AWS::CloudWatch::Alarm (an OS::Aodh::Alarm): its first refusal
    # is the AWS query API's Fn::MemberListToMap, which canopy has no use for.
    f"{_E}AWS_CloudWatch_Alarm.yaml": "Fn::MemberListToMap",
    f"{_E}AWS_RDS_DBInstance.yaml": "AWS::EC2::SecurityGroup",
    # OS::Test::WebAppConfig is mapped by no test of the plugin (nor by canopy).
    f"{_T}app_server_neutron.yaml": "OS::Test::WebAppConfig",
    f"{_T}lb_member.yaml": "OS::Octavia::PoolMember",
    f"{_T}netcat-webapp.yaml": None,
    f"{_T}octavia_lbaas.yaml": "OS::Neutron::SecurityGroup",
    # Their OS::Neutron::Router is behind a parameter constrained to a Neutron network.
    f"{_T}remote_nested_base.yaml": "neutron.network",
    f"{_T}remote_nested_intermediate.yaml": "neutron.network",
    f"{_T}remote_nested_root.yaml": "neutron.network",
    f"{_T}test_aodh_alarm.yaml": "OS::Aodh::GnocchiAggregationByMetricsAlarm",
    f"{_T}test_base_resources.yaml": "OS::Neutron::Net",
    f"{_T}test_server_cfn_init.yaml": "AWS::IAM::User",
    f"{_T}test_server_signal.yaml": "OS::Neutron::SecurityGroup",
    f"{_T}test_server_software_config.yaml": "OS::Neutron::SecurityGroup",
    f"{_T}test_volumes_create_from_backup.yaml": "OS::Cinder::Volume",
    f"{_T}test_volumes_delete_snapshot.yaml": "OS::Cinder::Volume",
}

# Files a scenario test passes in code rather than beside the template: the `get_file`
# name -> (the test module in the wheel, the module constant holding the text).
GIVEN = {
    "/cfg1.sh": (
        "heat_tempest_plugin/tests/scenario/test_server_software_config.py",
        "CFG1_SH",
    ),
    "/cfg3.pp": (
        "heat_tempest_plugin/tests/scenario/test_server_software_config.py",
        "CFG3_PP",
    ),
}


def root(wheel: str) -> Path:
    """The directory the wheel's templates are extracted in (downloaded first; skips the
    test without an index, fails under CI=true)."""
    needed(WHEELS.values())
    return extract(*WHEELS[wheel])


def locate(name: str) -> tuple[Path, Path]:
    """The file named `WHEEL:PATH` and the root it is read under."""
    wheel, _, inside = name.partition(":")
    where = root(wheel)
    return where / inside, where


def found() -> set[str]:
    """Every template of the two wheels, as `WHEEL:PATH`."""
    out = set()
    for wheel in WHEELS:
        where = root(wheel)
        out |= {f"{wheel}:{p.relative_to(where)}" for p in discover(where)}
    return out


def given() -> dict[str, str]:
    """GIVEN's texts, read from the test modules' source (nothing of them is imported)."""
    out = {}
    for name, (module, constant) in GIVEN.items():
        [source] = read(*TEMPEST, module, (".py",)).values()
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == constant for t in node.targets
            ):
                out[name] = ast.literal_eval(node.value)
    assert set(out) == set(GIVEN), f"not found in the plugin: {set(GIVEN) - set(out)}"
    return out
