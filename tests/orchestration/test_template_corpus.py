"""Templates with the shapes real Heat templates have, each through its whole life on sim
clouds: validated, created, resized where it takes a size, deleted, nothing left behind.

Three corpora run through the same runner (tests/orchestration/corpus_run.py):

- tests/orchestration/corpus/: canopy's own templates, each following the pattern of one
  openstack/heat-templates file (named in its first comment). Always run.
- an openstack/heat-templates checkout named by CANOPY_HEAT_TEMPLATES: every template
  there whose resource types canopy supports (nested templates included) runs whole; one
  naming a type or custom constraint canopy lacks is refused by `POST /validate` with a
  400 naming it. Without the variable these tests skip with one line; nothing of that
  repository is in canopy's tree.
- every template of the openstack-heat and heat-tempest-plugin wheels, downloaded from the
  package index at test time (tests/orchestration/corpus_packaged.py): each runs whole, or
  `POST /validate` refuses it with a 400 naming the type canopy lacks. Always run (without
  an index they skip with one line; under CI=true they fail instead).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from canopy.api.app import create_app
from canopy.config_sections import IdentitySettings
from canopy.domain.errors import InvalidRequest
from canopy.domain.wake import Wake
from canopy.orchestration.resources.software_deployment import SUPPORTED
from canopy.orchestration.template.constraints import CUSTOM_CONSTRAINTS
from tests.api.orchestration.test_stacks import assert_heat_fault
from tests.api.tokens import caller
from tests.controllers.harness import make_plane

from . import corpus_packaged as packaged
from .corpus_load import (
    FLAVOR,
    GROUPS,
    IMAGE,
    IMAGES_TOML,
    KEY_NAME,
    Case,
    Unrunnable,
    discover,
    load,
    parameters,
)
from .corpus_run import CLOUDS, Outcome, add_keypair, run

OWN = Path(__file__).parent / "corpus"
CHECKOUT = os.environ.get("CANOPY_HEAT_TEMPLATES", "")

SERVED_REGION = IdentitySettings().region

# Files of the own corpus that are parts of another template (nested, get_file), not runs.
PARTS = {"parts"}


def _own() -> list[Path]:
    return [p for p in discover(OWN) if not PARTS & set(p.relative_to(OWN).parts)]


def _checkout() -> list[Path]:
    return discover(Path(CHECKOUT)) if CHECKOUT and Path(CHECKOUT).is_dir() else []


async def _life(db_url: str, tmp_path: Path, case: Case) -> Outcome:
    p = await make_plane(db_url, tmp_path, toml=CLOUDS + IMAGES_TOML)
    try:
        await add_keypair(p)
        return await run(p, case)
    finally:
        await p.close()


@pytest.mark.parametrize("path", _own(), ids=lambda p: str(p.relative_to(OWN)))
async def test_own_corpus_template_lives_and_leaves_nothing(
    path: Path, db_url: str, tmp_path: Path
) -> None:
    case = load(path, OWN)
    assert not case.unsupported, f"the corpus names unsupported types {case.unsupported}"
    out = await _life(db_url, tmp_path, case)
    # Every group of the corpus is resized, and every wait condition is signalled.
    if set(GROUPS) & case.types:
        assert out.updated, "a template with a group was not resized"
    if {"OS::Heat::WaitCondition", "AWS::CloudFormation::WaitCondition"} & case.types:
        assert out.signals > 0
    if "OS::Heat::SoftwareDeployment" in case.types:
        assert out.signals > 0  # the runner played the agent


def test_own_corpus_covers_the_shapes_it_promises() -> None:
    """Each template names the heat-templates file it follows, and the corpus holds the
    types it is meant to exercise."""
    types: set[str] = set()
    pattern = "Pattern of openstack/heat-templates "
    for path in _own():
        case = load(path, OWN)
        first = path.read_text().splitlines()[0]
        # JSON has no comments: a JSON template says it in its Description.
        said = first if path.suffix == ".yaml" else str(case.template.get("Description"))
        assert said.lstrip("# ").startswith(pattern), path.name
        types |= case.types
    wanted = {
        "OS::Nova::Server",
        "AWS::EC2::Instance",
        "OS::Heat::ResourceGroup",
        "OS::Heat::AutoScalingGroup",
        "OS::Heat::ScalingPolicy",
        "OS::Heat::SoftwareConfig",
        "OS::Heat::CloudConfig",
        "OS::Heat::MultipartMime",
        "OS::Heat::WaitCondition",
        "OS::Heat::WaitConditionHandle",
        "AWS::CloudFormation::WaitCondition",
        "AWS::CloudFormation::WaitConditionHandle",
        "OS::Heat::RandomString",
        "OS::Heat::SoftwareDeployment",
        "OS::Heat::StructuredConfig",
        "OS::Heat::StructuredDeployment",
    }
    assert wanted <= types, sorted(wanted - types)
    assert any(t.startswith("file://") for t in types), "no template resource through files"


# Functions canopy refuses that templates it could not run anyway use (a refusal may name
# one before the type it lacks).
LACKED_FUNCTIONS = ["Fn::MemberListToMap"]


# Checkout templates wrong on their own, and what canopy's refusal says (as Heat's would).
BROKEN = {
    # Its output reads `Ref: IPAddress`, which it does not define.
    "cfn/F17/WordPress_Single_Instance_With_Neutron.template": "no resource or parameter "
    "named 'IPAddress'",
}


def _unsupported_constraints(case: Case) -> list[str]:
    """The custom constraints of the template's parameters canopy does not check (it
    refuses them: neutron.network and the like, with no Neutron)."""
    found: set[str] = set()
    params = case.template.get("parameters") or {}
    for spec in params.values() if isinstance(params, dict) else []:
        for c in (spec or {}).get("constraints") or [] if isinstance(spec, dict) else []:
            name = c.get("custom_constraint") if isinstance(c, dict) else None
            if isinstance(name, str) and name not in CUSTOM_CONSTRAINTS:
                found.add(name)
    return sorted(found)


def _refused_transports(case: Case) -> list[str]:
    """The signal transports the template's own deployments name that canopy refuses."""
    found = []
    for d in (case.template.get("resources") or {}).values():
        props = (d or {}).get("properties") if isinstance(d, dict) else None
        if str((d or {}).get("type", "")).endswith(("Deployment", "DeploymentGroup")):
            transport = (props or {}).get("signal_transport")
            if isinstance(transport, str) and transport not in SUPPORTED:
                found.append(transport)
    return found


def _checkout_ids(path: Path | None) -> str:
    return str(path.relative_to(Path(CHECKOUT))) if path is not None else "unset"


@pytest.mark.parametrize("path", _checkout() or [None], ids=_checkout_ids)
async def test_heat_templates_checkout_template_lives_and_leaves_nothing(
    path: Path | None, db_url: str, tmp_path: Path
) -> None:
    if path is None:
        pytest.skip("CANOPY_HEAT_TEMPLATES is not set: the heat-templates corpus is skipped")
    try:
        case = load(path, Path(CHECKOUT))
    except Unrunnable as e:
        pytest.skip(f"not runnable from the checkout: {e}")
    lacks = _lacks(case)
    if lacks:
        # Refused by `/validate` with a 400 naming what canopy lacks (a type, a custom
        # constraint, or a function only such templates use).
        [message] = (await _refusals(db_url, tmp_path, {"it": case})).values()
        rel = _checkout_ids(path)
        named = any(x in message for x in [*lacks, *LACKED_FUNCTIONS])
        if rel in BROKEN:
            # Broken on their own: refused for what is wrong with them.
            assert BROKEN[rel] in message, message
        elif "invalid" in path.parts:
            # Kept by the repository as invalid (a dependency cycle): refused for the
            # cycle, or first for a type canopy lacks.
            assert named or "depend on each other in a cycle" in message, message
        else:
            assert named, message
        return
    refused = _refused_transports(case)
    if refused:
        # Canopy has no Keystone stack users, Swift or Zaqar: such a deployment is refused
        # before anything is made, naming the transports it supports.
        with pytest.raises(InvalidRequest, match=f"signal_transport {refused[0]} is not supp"):
            await _life(db_url, tmp_path, case)
        return
    if case.regions - {SERVED_REGION}:
        # Canopy serves one region: a nested stack in another is refused before anything
        # is made, with Heat's words for a region it cannot reach.
        with pytest.raises(InvalidRequest, match="Cannot establish connection to Heat endpoint"):
            await _life(db_url, tmp_path, case)
        return
    await _life(db_url, tmp_path, case)


async def _refusals(db_url: str, tmp_path: Path, cases: dict[str, Case]) -> dict[str, str]:
    """What `POST /validate` answers each template with (one plane for them all): a 400 in
    Heat's fault format, never a 5xx; its message, by name."""
    p = await make_plane(db_url, tmp_path, toml=CLOUDS + IMAGES_TOML)
    try:
        app = create_app(settings=p.settings, db=p.db, clock=p.clock, wake=Wake())
        admin = await caller(p.db, p.clock, project="admin", user="admin", role="admin")
        await add_keypair(p, (admin.project_id, admin.user_id))
        url = f"/orchestration/v1/{admin.project_id}/validate"
        said = {}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://canopy.test"
        ) as c:
            for name, case in cases.items():
                # As `openstack orchestration template validate -t FILE` sends it, with
                # the keypair, image and flavor the store holds (`--parameter`); the other
                # parameters without values (the refusal is the template's, not a value's).
                names = (KEY_NAME, IMAGE, FLAVOR)
                given = {k: v for k, v in parameters(case.template).items() if v in names}
                body = {
                    "template": case.template,
                    "files": case.files,
                    "environment": case.environment,
                    "parameters": given,
                }
                r = await c.post(url, json=body, headers=admin.headers)
                said[name] = assert_heat_fault(r, 400)
        return said
    finally:
        await p.close()


def _lacks(case: Case) -> list[str]:
    """What the template names that canopy lacks: types, custom constraints."""
    return case.unsupported + _unsupported_constraints(case)


def _packaged(name: str) -> Case:
    path, root = packaged.locate(name)
    return load(path, root, given=packaged.given())


def test_the_wheels_hold_the_templates_named_here() -> None:
    """If a new version adds or drops a template, this names it (not a silent skip)."""
    assert packaged.found() == set(packaged.EXPECTED)


RUNS = [name for name, refused in packaged.EXPECTED.items() if refused is None]


@pytest.mark.parametrize("name", RUNS)
async def test_packaged_template_lives_and_leaves_nothing(
    name: str, db_url: str, tmp_path: Path
) -> None:
    case = _packaged(name)
    assert not _lacks(case)
    await _life(db_url, tmp_path, case)


async def test_packaged_templates_canopy_cannot_run_are_refused_naming_what_it_lacks(
    db_url: str, tmp_path: Path
) -> None:
    cases = {name: _packaged(name) for name in packaged.EXPECTED if name not in RUNS}
    # Each names something canopy lacks (else its refusal would be canopy's bug).
    assert [name for name, case in cases.items() if not _lacks(case)] == []
    said = await _refusals(db_url, tmp_path, cases)
    wrong = {n: m for n, m in said.items() if str(packaged.EXPECTED[n]) not in m}
    assert wrong == {}
