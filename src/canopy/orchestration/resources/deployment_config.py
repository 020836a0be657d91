"""What a software deployment derives from its config: Heat's shapes of inputs and outputs
(`software_config_io`), its `deploy_*` inputs, and a structured config's substitution.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Step
from canopy.orchestration.resources.software_config import (
    CONFIG_TYPES,
    UNGROUPED,
    SoftwareComponent,
    is_uuid,
)
from canopy.orchestration.software_rows import find_config
from canopy.store.models import Stack, StackResource

COMPONENT = "component"  # a SoftwareComponent's group (Heat's)
MAX_DEPTH = 64  # of a structured config's substitution


def input_io(item: Mapping[str, Any], **value: Any) -> dict[str, Any]:
    """Heat's `InputConfig(...).as_dict()`: set fields only, `type` String by default,
    `replace_on_change` only when true, and `value` when one is given."""
    out: dict[str, Any] = {"name": item["name"]}
    if item.get("description") is not None:
        out["description"] = item["description"]
    out["type"] = item.get("type") or "String"
    if item.get("default") is not None:
        out["default"] = item["default"]
    if item.get("replace_on_change"):
        out["replace_on_change"] = True
    out.update(value)
    return out


def output_io(item: Mapping[str, Any]) -> dict[str, Any]:
    """Heat's `OutputConfig(...).as_dict()` (`error_output` false by default)."""
    out: dict[str, Any] = {"name": item["name"]}
    if item.get("description") is not None:
        out["description"] = item["description"]
    out["type"] = item.get("type") or "String"
    out["error_output"] = bool(item.get("error_output", False))
    return out


async def load_source(step: Step, config_id: Any) -> dict[str, Any]:
    """The config a deployment names (Heat's `show_software_config`): a config resource of
    the project's stacks, or one made through the API; {} for none."""
    if not config_id:
        return {}
    ref = str(config_id).strip()
    found = await _stack_config(step.session, step.stack.project_id, ref)
    if found is not None:
        return found[1]
    made = await find_config(step.session, step.stack.project_id, ref)
    if made is not None:  # one made through the API (`openstack software config create`)
        keys = ("config", "inputs", "outputs", "options")
        return {"name": made.name, "group": made.group, **{k: made.body.get(k) for k in keys}}
    raise InvalidRequest(f"Software config {ref[:64]} could not be found.")


async def _stack_config(
    session: AsyncSession, project_id: str, ref: str
) -> tuple[StackResource, dict[str, Any]] | None:
    """A config resource of the project's stacks and what a deployment reads of it."""
    row = await session.get(StackResource, ref) if is_uuid(ref) else None
    owner = await session.get(Stack, row.stack_id) if row is not None else None
    if (
        row is None
        or owner is None
        or row.type not in CONFIG_TYPES
        or owner.project_id != project_id
        or "config" not in (row.attributes or {})
    ):
        return None
    props = row.properties or {}
    return row, {
        "name": f"{owner.name}-{row.name}-{row.id[:12]}",
        "group": COMPONENT
        if row.type == SoftwareComponent.name
        else props.get("group") or UNGROUPED,
        "config": row.attributes["config"],
        "inputs": list(props.get("inputs") or []),
        "outputs": [output_io(o) for o in props.get("outputs") or []],
        "options": props.get("options"),
    }


async def stack_config_view(
    session: AsyncSession, project_id: str, config_id: str
) -> dict[str, Any] | None:
    """Heat's `format_software_config` of a config resource of the project's stacks (what
    `openstack software config show` gives for its id); None for none."""
    found = await _stack_config(session, project_id, config_id.strip())
    if found is None:
        return None
    row, source = found
    return {
        "id": row.id,
        "name": source["name"],
        "group": source["group"],
        "creation_time": row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": source["config"],
        "inputs": [input_io(i) for i in source["inputs"]],
        "outputs": source["outputs"],
        "options": source["options"],
    }


_DESCRIBED = {
    "deploy_server_id": "ID of the server being deployed to",
    "deploy_action": "Name of the current action being deployed",
    "deploy_stack_id": "ID of the stack this deployment belongs to",
    "deploy_resource_name": "Name of this deployment resource in the stack",
    "deploy_signal_transport": "How the server should signal to heat with the deployment "
    "output values.",
    "deploy_signal_id": "ID of signal to use for signaling output values",
    "deploy_signal_verb": "HTTP verb to use for signaling output values",
}


def derived_inputs(
    step: Step, res: StackResource, source: Mapping[str, Any], action: str
) -> list[dict[str, Any]]:
    """Heat's `_build_derived_inputs`: the config's inputs with their values (else their
    defaults), the values no input declares, then the `deploy_*` inputs."""
    props = res.properties
    values = dict(props.get("input_values") or {})
    out: list[dict[str, Any]] = []
    for item in source.get("inputs") or []:
        out.append(input_io(item, value=values.pop(item["name"], item.get("default"))))
    for name, value in values.items():
        out.append(input_io({"name": name}, value=value))
    transport = props.get("signal_transport")
    derived: list[tuple[str, Any]] = [
        ("deploy_server_id", props.get("server")),
        ("deploy_action", action),
        ("deploy_stack_id", f"{step.stack.name}/{step.stack.id}"),
        ("deploy_resource_name", res.name),
        ("deploy_signal_transport", transport),
    ]
    if transport == "CFN_SIGNAL":
        derived.append(("deploy_signal_id", (res.data or {}).get("signal_url")))
        derived.append(("deploy_signal_verb", "POST"))
    for name, value in derived:
        out.append(input_io({"name": name, "description": _DESCRIBED[name]}, value=value))
    return out


def deploys_for(props: Mapping[str, Any], source: Mapping[str, Any], action: str) -> bool:
    """Whether `action` deploys: a component's configs name their actions (Heat's rule),
    otherwise the deployment's `actions` do."""
    if source.get("group") == COMPONENT:
        configs = (source.get("config") or {}).get("configs") or []
        return any(action in (c.get("actions") or []) for c in configs)
    return action in (props.get("actions") or [])


def substitute(snippet: Any, values: Mapping[str, Any], key: str, *, strict: bool) -> Any:
    """Heat's StructuredDeployment.parse: each one-key map `{key: name}` (name a string)
    becomes the input's value; with `strict`, a name with no input fails."""
    return _parse(snippet, values, key, strict, 0)


def _parse(snippet: Any, values: Mapping[str, Any], key: str, strict: bool, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"The structured config is nested deeper than {MAX_DEPTH}.")
    if isinstance(snippet, Mapping):
        if len(snippet) == 1:
            fn, arg = next(iter(snippet.items()))
            if fn == key and isinstance(arg, str):
                if strict and arg not in values:
                    raise InvalidRequest(f"The Parameter ({arg}) was not provided.")
                return values.get(arg)
        return {k: _parse(v, values, key, strict, depth + 1) for k, v in snippet.items()}
    if isinstance(snippet, list):
        return [_parse(v, values, key, strict, depth + 1) for v in snippet]
    return snippet
