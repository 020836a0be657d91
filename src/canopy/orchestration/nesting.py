"""Nested stacks: the templates they come from and the child stack rows.

A nested stack (OS::Heat::Stack, or a template resource: a resource whose type is a file of
the stack's `files`, directly or through the environment's `resource_registry`) is a row
of `stacks` like any other, with `owner_id` naming its parent and `owner_resource` the
parent's resource. The same engine walks it; the parent's resource waits on it the way a
server resource waits on a server row: `child_answered` makes the parent due as soon as a
child it waits on has finished its action, read from the rows themselves.

Templates in `files` are text (YAML or JSON, as heatclient sends them): they are read with
YAML's safe loader, dates left as strings (Heat's rule, so `heat_template_version:
2018-08-31` stays a string), aliases refused (an alias can make a small text a huge
tree) and tags for types JSON does not have (`!!timestamp`, `!!binary`, `!!set`, ...)
refused. Nesting is at most `MAX_DEPTH` deep (Heat's max_nested_stack_depth).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from canopy.domain.errors import InvalidRequest
from canopy.domain.text import check_text
from canopy.orchestration.events import stack_event
from canopy.orchestration.states import Action, Desired, Status
from canopy.store.models import Stack, StackResource

MAX_DEPTH = 5
STACK_TYPE = "OS::Heat::Stack"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc]
    """YAML's safe loader without timestamps (dates stay strings)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in rules if tag != _TIMESTAMP]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# Tags the safe loader would build a non-JSON value for (a datetime, bytes, a set, pairs):
# refused, so what is loaded is JSON's types only and every column can store it.
NOT_JSON_TAGS = ("timestamp", "binary", "set", "omap", "pairs")


def _not_json(loader: Any, node: Any) -> Any:
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"the tag {node.tag} is not allowed: only JSON's types (maps, lists, strings, "
        "numbers, booleans and null)",
        node.start_mark,
    )


for _tag in NOT_JSON_TAGS:
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _not_json)


def load_yaml(raw: str, where: str, what: str = "the template") -> Any:
    """YAML (or JSON) text loaded safely: no aliases, no timestamps; InvalidRequest if not."""
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(raw, Loader=_Loader)):
            raise InvalidRequest(f"{where}: YAML aliases are not allowed in {what}.")
        return yaml.load(raw, Loader=_Loader)  # a safe loader (no timestamps)
    except yaml.YAMLError as e:
        raise InvalidRequest(f"{where}: {what} is not valid YAML: {e}") from None
    except RecursionError:
        raise InvalidRequest(f"{where}: {what} is nested too deep.") from None


def load_template(raw: Any, where: str) -> dict[str, Any]:
    """A nested template from a map, or from YAML/JSON text; InvalidRequest if not one."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str):
        raise InvalidRequest(f"{where}: a template must be a map or YAML text.")
    loaded = load_yaml(raw, where)
    check_text(loaded, where)  # decoded past the edge's text checks
    if not isinstance(loaded, Mapping):
        raise InvalidRequest(f"{where}: the template must be a map.")
    return dict(loaded)


def registry_of(environment: Mapping[str, Any] | None) -> dict[str, str]:
    """The environment's resource_registry as type -> type or file (refusing what canopy
    does not do: per-resource mappings, hooks, anything but a name)."""
    if environment is None:
        return {}
    if not isinstance(environment, Mapping):
        raise InvalidRequest("environment must be a map.")
    raw = environment.get("resource_registry") or {}
    if not isinstance(raw, Mapping):
        raise InvalidRequest("environment.resource_registry must be a map.")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if key == "resources":
            if value:
                raise InvalidRequest(
                    "environment.resource_registry.resources (per-resource mappings and "
                    "hooks) is not supported by canopy."
                )
            continue
        if not isinstance(key, str) or not isinstance(value, str) or not value:
            raise InvalidRequest(
                f"environment.resource_registry.{key}: must map a type name to a type or a "
                "template file."
            )
        if "*" in key:
            raise InvalidRequest(
                f"environment.resource_registry.{key}: wildcard mappings are not supported."
            )
        out[key] = value
    return out


def resolve_type(registry: Mapping[str, str], name: str) -> str:
    """What the registry maps the type `name` to, followed through aliases (`My::A:
    My::B`, `My::B: b.yaml` -> b.yaml), as Heat resolves them; a loop is refused."""
    seen = [name]
    while name in registry:
        name = registry[name]
        if name in seen:
            raise InvalidRequest(
                "environment.resource_registry: the types map to each other in a loop: "
                + " -> ".join([*seen[seen.index(name) :], name])
                + "."
            )
        seen.append(name)
    return name


def mapped_types(template: Mapping[str, Any], registry: Mapping[str, str]) -> dict[str, Any]:
    """The template with each resource's type replaced as the registry maps it (a copy)."""
    if not registry:
        return dict(template)
    out = dict(template)
    for section, key in (("resources", "type"), ("Resources", "Type")):
        resources = template.get(section)
        if not isinstance(resources, Mapping):
            continue
        mapped: dict[str, Any] = {}
        for name, body in resources.items():
            kind = body.get(key) if isinstance(body, Mapping) else None
            if isinstance(kind, str) and kind in registry:
                body = {**body, key: resolve_type(registry, kind)}
            mapped[name] = body
        out[section] = mapped
    return out


def child_answered() -> ColumnElement[bool]:
    """A stack has a resource waiting on a child stack that has finished its action."""
    child = aliased(Stack)
    return exists(
        select(child.id)
        .join(StackResource, StackResource.physical_resource_id == child.id)
        .where(
            child.owner_id == Stack.id,
            child.status != Status.IN_PROGRESS,
            StackResource.stack_id == Stack.id,
            StackResource.status == Status.IN_PROGRESS,
        )
    )


def child_name(parent: Stack, res: StackResource) -> str:
    """Heat's name for a nested stack: parent-resource-shortid (within 255 characters)."""
    return f"{parent.name[:180]}-{res.name[:60]}-{res.id.replace('-', '')[:12]}"


def child_registry(parent: Stack, source: str | None) -> dict[str, str]:
    """The parent's registry for a child, without the mappings to the child's own template
    file `source` (Heat's rule: inside server.yaml, OS::Nova::Server is the real one)."""
    return {k: v for k, v in registry_of(parent.environment).items() if v != source}


def new_child(
    parent: Stack,
    res: StackResource,
    template: dict[str, Any],
    parameters: dict[str, Any],
    timeout_mins: int | None,
    now: datetime,
    source: str | None = None,
) -> Stack:
    """A child stack row for `res`, due now (the engine creates it like any stack);
    `source` is the file a template resource's template came from."""
    return Stack(
        id=str(uuid.uuid4()),
        name=child_name(parent, res),
        project_id=parent.project_id,
        user_id=parent.user_id,
        template=template,
        files=dict(parent.files),
        environment={"resource_registry": child_registry(parent, source)},
        parameters=parameters,
        action=Action.CREATE,
        status=Status.IN_PROGRESS,
        status_reason="Stack CREATE started",
        disable_rollback=True,
        timeout_mins=timeout_mins,
        tags=[],
        generation=0,
        action_started_at=now,
        created_at=now,
        updated_at=None,
        deleted_at=None,
        deleted=False,
        next_attempt_at=now,
        retries=0,
        owner_id=parent.id,
        owner_resource=res.name,
        nested_depth=parent.nested_depth + 1,
    )


def begin_update(
    s: AsyncSession,
    child: Stack,
    template: dict[str, Any],
    parameters: dict[str, Any],
    now: datetime,
) -> None:
    """Start updating a child stack to a new template and parameters (due now)."""
    child.template = template
    child.parameters = parameters
    child.generation += 1
    child.action = Action.UPDATE
    child.status = Status.IN_PROGRESS
    child.status_reason = "Stack UPDATE started"
    child.action_started_at = now
    child.updated_at = now
    child.next_attempt_at = now
    child.retries = 0
    stack_event(s, child, Action.UPDATE, Status.IN_PROGRESS, child.status_reason, now)


def begin_action(s: AsyncSession, stack: Stack, action: Action, now: datetime) -> None:
    """Start suspend, resume or check on `stack` (locked by the caller), due now: what a
    stack's action request asks, and what its parent asks of a nested stack."""
    stack.action = action
    stack.status = Status.IN_PROGRESS
    stack.status_reason = f"Stack {action.value} started"
    stack.action_started_at = now
    stack.next_attempt_at = now
    stack.retries = 0
    stack_event(s, stack, action, Status.IN_PROGRESS, stack.status_reason, now)


async def all_absent(s: AsyncSession, stack_id: str) -> None:
    """Every resource of the stack is to go; a delete that failed before is tried again
    from the start. What a stack delete, nested or not, asks of its rows.

    A row still adopting lets go of its server first (resources/adopt.py `let_go`): the
    adopt has not made the server the stack's, so the delete must not delete it."""
    await s.execute(
        update(StackResource)
        .where(
            StackResource.stack_id == stack_id,
            StackResource.action == Action.ADOPT,
            StackResource.status == Status.IN_PROGRESS,
            StackResource.server_id.is_not(None),
        )
        .values(server_id=None, physical_resource_id="")
        .execution_options(synchronize_session=False)
    )
    await s.execute(
        update(StackResource)
        .where(StackResource.stack_id == stack_id)
        .values(desired=Desired.ABSENT)
        .execution_options(synchronize_session=False)
    )
    await s.execute(
        update(StackResource)
        .where(
            StackResource.stack_id == stack_id,
            StackResource.action == Action.DELETE,
            StackResource.status == Status.FAILED,
        )
        .values(action=Action.INIT)
        .execution_options(synchronize_session=False)
    )


async def begin_delete(s: AsyncSession, child: Stack, now: datetime) -> None:
    """Start deleting a child stack (locked by the caller): every resource goes."""
    await all_absent(s, child.id)
    child.generation += 1
    child.action = Action.DELETE
    child.status = Status.IN_PROGRESS
    child.status_reason = "Stack DELETE started"
    child.action_started_at = now
    child.next_attempt_at = now
    child.retries = 0
    stack_event(s, child, Action.DELETE, Status.IN_PROGRESS, child.status_reason, now)
