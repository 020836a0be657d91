"""A template bound to parameter values: its resources, outputs, and resolving values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from canopy.orchestration.template.conditions import ConditionSet
from canopy.orchestration.template.errors import TemplateError, join_path
from canopy.orchestration.template.functions_base import Evaluator, Function, dependencies_of
from canopy.orchestration.template.model import (
    ConstraintCheck,
    OutputDefinition,
    ResolveContext,
    ResourceDefinition,
    StackIdentity,
)
from canopy.orchestration.template.parameters import bind_parameters
from canopy.orchestration.template.parse import check_policy

if TYPE_CHECKING:
    from canopy.orchestration.template.template import Template

HIDDEN = "******"


def pseudo_parameters(kind: str, identity: StackIdentity) -> dict[str, str]:
    if kind == "hot":
        return {
            "OS::stack_name": identity.name,
            "OS::stack_id": identity.id,
            "OS::project_id": identity.project_id,
        }
    arn = f"arn:openstack:heat::{identity.project_id}:stacks/{identity.name}/{identity.id}"
    return {"AWS::StackName": identity.name, "AWS::StackId": arn, "AWS::Region": identity.region}


class BoundTemplate:
    """A template with its parameter values: which resources exist and what they need."""

    def __init__(
        self,
        template: Template,
        values: Mapping[str, Any],
        identity: StackIdentity,
        check: ConstraintCheck | None,
        *,
        strict: bool = True,
    ) -> None:
        self.template = template
        self.identity = identity
        parsed = template.parsed
        self.parameters: Mapping[str, Any] = bind_parameters(
            parsed.schemas, values, check, parsed.version.kind, strict=strict
        )
        # Parameters validated without a value (not `strict`): unknown, like references.
        self.unknown = frozenset(n for n, v in self.parameters.items() if v is None)
        self._all = {**self.parameters, **pseudo_parameters(parsed.version.kind, identity)}
        self._conditions = ConditionSet(parsed.conditions, parsed.keys.conditions)
        self._conditions.evaluator = self._evaluator(None)
        self._conditions.all()
        self._active = {
            name
            for name, r in parsed.resources.items()
            if self._truth(
                r.condition, join_path(join_path(parsed.keys.resources, name), "condition")
            )
        }
        self._resources = {
            name: self._definition(name) for name in parsed.resources if name in self._active
        }
        self._outputs = {name: self._output(name) for name in parsed.outputs}

    def _evaluator(self, ctx: ResolveContext | None) -> Evaluator:
        return Evaluator(
            parameters=self._all,
            identity=self.identity,
            conditions=self._conditions,
            files=self.template.files,
            mappings=self.template.parsed.mappings,
            ctx=ctx,
        )

    def _truth(self, cond: Any, path: str) -> bool:
        return self._evaluator(None).condition(cond, path)

    def condition_values(self) -> dict[str, bool]:
        """Every named condition's truth."""
        return self._conditions.all()

    def _deps(self, at: str, *trees: Any) -> frozenset[str]:
        deps: set[str] = set()
        for tree in trees:
            deps.update(dependencies_of(tree, self._conditions))
        missing = sorted(deps - self._active)
        if missing:
            raise TemplateError(
                f"refers to resource(s) {_names(missing)} whose condition is false",
                at,
            )
        return frozenset(deps)

    def _definition(self, name: str) -> ResourceDefinition:
        parsed = self.template.parsed
        r = parsed.resources[name]
        at = join_path(parsed.keys.resources, name)
        explicit = set(r.explicit_depends_on)
        off = sorted(explicit - self._active)
        if off:
            raise TemplateError(
                f"depends on resource(s) {_names(off)} whose condition is false",
                join_path(at, parsed.keys.depends_on),
            )
        policy = r.deletion_policy
        if isinstance(policy, Function) or not isinstance(policy, str):
            policy_at = join_path(at, parsed.keys.deletion_policy)
            policy = check_policy(self._evaluator(None).resolve(policy), parsed.version, policy_at)
        external: str | None = None
        if r.external_id is not None:
            external = self._evaluator(None).resolve(r.external_id)
            if not isinstance(external, str) or not external:
                raise TemplateError(
                    "must be the id of an existing resource (a string)",
                    join_path(at, "external_id"),
                )
        return ResourceDefinition(
            name=name,
            type=r.type,
            properties=r.properties,
            depends_on=(
                frozenset()
                if external is not None
                else frozenset(explicit) | self._deps(at, r.properties, r.metadata)
            ),
            deletion_policy=policy,
            metadata=r.metadata,
            update_policy=r.update_policy,
            external_id=external,
        )

    def _output(self, name: str) -> OutputDefinition:
        parsed = self.template.parsed
        o = parsed.outputs[name]
        at = join_path(parsed.keys.outputs, name)
        holds = self._truth(o.condition, join_path(at, "condition"))
        return OutputDefinition(
            name=name,
            value=o.value if holds else None,
            description=o.description,
            depends_on=self._deps(at, o.value) if holds else frozenset(),
            condition_true=holds,
        )

    def resources(self) -> dict[str, ResourceDefinition]:
        """The resources whose condition holds, each with what it depends on."""
        return dict(self._resources)

    def outputs(self) -> dict[str, OutputDefinition]:
        return dict(self._outputs)

    def resolve(self, value: Any, ctx: ResolveContext) -> Any:
        """`value` (a parsed tree, or raw template data) with every function evaluated."""
        tree = self.template.parsed.parser.data(value, "", 0)
        result = self._evaluator(ctx).resolve(tree)
        return None if result is Ellipsis else result

    def shown_parameters(self) -> dict[str, str]:
        """Parameter values as `stack show` lists them (hidden ones as ******)."""
        shown: dict[str, str] = {}
        for name, schema in self.template.parsed.schemas.items():
            shown[name] = HIDDEN if schema.hidden else _as_text(self.parameters[name])
        shown.update(pseudo_parameters(self.template.parsed.version.kind, self.identity))
        return shown


def _as_text(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)
