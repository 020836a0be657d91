"""Nested stacks as resources: OS::Heat::Stack and template resources.

The resource's step writes a child stack row (`nesting.new_child`) and waits on it; the
engine walks the child like any stack, and the parent is due again as soon as the child
has finished (`nesting.child_answered`). The child's outputs become the resource's
attributes: `get_attr: [res, outputs]` (all of them) and `get_attr: [res, NAME]` (one).
An update changes the child in place (a new template or parameters: the child is updated);
a delete deletes the child, which deletes its own resources first.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration import nesting
from canopy.orchestration.events import stack_event
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step
from canopy.orchestration.states import Action, Desired, Status
from canopy.store.models import Stack, StackResource


class NestedBase(ABC):
    """The steps shared by OS::Heat::Stack and template resources."""

    name = ""
    description = ""
    open_properties = False
    properties: Mapping[str, Prop] = {}
    attributes: Mapping[str, str] = {
        "outputs": "The nested stack's outputs, by name.",
        "OS::stack_id": "The nested stack's id.",
    }

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        return None  # the nested template is checked by validation.check_nested

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return True  # Heat updates a nested stack in place

    @abstractmethod
    def spec(
        self, res: StackResource, props: Mapping[str, Any], files: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        """(template, parameters, source file) of the child for `props`."""

    def timeout(self, step: Step, props: Mapping[str, Any]) -> int | None:
        return step.stack.timeout_mins

    async def create(self, step: Step, res: StackResource) -> Progress:
        if res.physical_resource_id:
            return await self.check(step, res)
        return await self.start(step, res, None)

    async def start(
        self, step: Step, res: StackResource, adopting: Mapping[str, Any] | None
    ) -> Progress:
        """Write the child stack, due now: created, or (`adopting`: the adopt data's entries
        of the child's resources by name) adopted."""
        parent = step.stack
        if parent.nested_depth + 1 > nesting.MAX_DEPTH:
            return Progress.failure(
                f"Recursion depth exceeds {nesting.MAX_DEPTH} (max_nested_stack_depth)."
            )
        try:
            template, params, source = self.spec(res, res.properties, parent.files)
        except InvalidRequest as e:
            return Progress.failure(str(e))
        now = step.clock.now()
        child = nesting.new_child(
            parent, res, template, params, self.timeout(step, res.properties), now, source
        )
        if adopting is not None:
            child.action = Action.ADOPT
            child.status_reason = "Stack ADOPT started"
            child.adopt_data = dict(adopting)
        step.session.add(child)
        await step.session.flush()
        stack_event(step.session, child, child.action, child.status, child.status_reason, now)
        res.physical_resource_id = child.id
        return Progress()

    async def _child(self, step: Step, res: StackResource, *, lock: bool = False) -> Stack | None:
        if not res.physical_resource_id:
            return None
        q = select(Stack).where(Stack.id == res.physical_resource_id)
        if lock:
            q = q.with_for_update()
        return (await step.session.execute(q)).scalar_one_or_none()

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        child = await self._child(step, res, lock=True)
        if child is None or child.deleted:
            return Progress.failure("The nested stack is gone.")
        try:
            template, params, _ = self.spec(res, new, step.stack.files)
        except InvalidRequest as e:
            return Progress.failure(str(e))
        res.properties = new
        child.timeout_mins = self.timeout(step, new)
        child.files = dict(step.stack.files)
        nesting.begin_update(step.session, child, template, params, step.clock.now())
        return Progress()

    async def delete(self, step: Step, res: StackResource) -> Progress:
        child = await self._child(step, res, lock=True)
        if child is None or child.deleted:
            return Progress.complete()
        if child.action != "DELETE" or child.status != Status.IN_PROGRESS:
            await nesting.begin_delete(step.session, child, step.clock.now())
        return Progress()

    async def check(self, step: Step, res: StackResource) -> Progress:
        child = await self._child(step, res)
        if res.action == "DELETE":
            if child is None or child.deleted:
                return Progress.complete()
            if child.status == Status.FAILED:
                return Progress.failure(f"Nested stack DELETE failed: {child.status_reason}")
            return Progress()
        if child is None or child.deleted:
            return Progress.failure("The nested stack was deleted outside its parent.")
        if child.status == Status.IN_PROGRESS:
            return Progress()
        if child.status == Status.FAILED:
            return Progress.failure(f"Nested stack {child.action} failed: {child.status_reason}")
        res.attributes = await self._outputs(step, child)
        return Progress.complete()

    async def _outputs(self, step: Step, child: Stack) -> dict[str, Any]:
        # Here, not at the top: outputs -> resolving -> registry -> this module.
        from canopy.orchestration.outputs import bound_of, outputs

        rows = list(
            (
                await step.session.execute(
                    select(StackResource).where(
                        StackResource.stack_id == child.id,
                        StackResource.desired == Desired.PRESENT,
                    )
                )
            ).scalars()
        )
        bound = bound_of(child, step.servers.settings.identity.region)
        values = {o["output_key"]: o.get("output_value") for o in outputs(bound, rows)}
        return {"OS::stack_id": child.id, **values, "outputs": values}


class NestedStack(NestedBase):
    name = nesting.STACK_TYPE
    description = "A nested stack from a template (inline, or from files with get_file)."
    properties: Mapping[str, Prop] = {
        "template": Prop(
            "string", "The nested template (YAML or JSON).", required=True, update_allowed=True
        ),
        "parameters": Prop(
            "map", "The nested stack's parameters.", default={}, update_allowed=True
        ),
        "timeout": Prop("integer", "Minutes the nested stack may take.", update_allowed=True),
        "context": Prop(
            "map",
            "{region_name}: the region to create the stack in; canopy serves one region, "
            "so only its own is accepted (ca_cert and insecure are accepted and unused).",
            update_allowed=True,
        ),
    }

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        failure = region_refused(props.get("context"), known.region)
        if failure is not None:
            raise InvalidRequest(failure)
        timeout = props.get("timeout")
        if timeout is not None and timeout < 1:
            raise InvalidRequest("timeout must be at least one minute.")

    async def start(
        self, step: Step, res: StackResource, adopting: Mapping[str, Any] | None
    ) -> Progress:
        region = step.servers.settings.identity.region
        failure = region_refused(res.properties.get("context"), region)
        return Progress.failure(failure) if failure else await super().start(step, res, adopting)

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        failure = region_refused(new.get("context"), step.servers.settings.identity.region)
        return Progress.failure(failure) if failure else await super().update(step, res, new)

    def spec(
        self, res: StackResource, props: Mapping[str, Any], files: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        where = f"resources.{res.name}.properties.template"
        return (
            nesting.load_template(props["template"], where),
            dict(props["parameters"] or {}),
            None,
        )

    def timeout(self, step: Step, props: Mapping[str, Any]) -> int | None:
        given = props.get("timeout")
        return int(given) if given else step.stack.timeout_mins


CONTEXT_KEYS = ("region_name", "credential_secret_id", "ca_cert", "insecure")


def region_refused(context: Any, region: str) -> str | None:
    """Why OS::Heat::Stack's `context` cannot be honoured (None if it can): canopy serves
    one region, so a stack is made there or not at all; a remote cloud's credentials
    (credential_secret_id) are not taken. Unknown values (None) are checked later."""
    if not context:
        return None
    if not isinstance(context, Mapping):
        return "context: must be a map."
    extra = sorted(set(context) - set(CONTEXT_KEYS))
    if extra:
        return f"context: Unknown Property {extra[0]}"
    if context.get("credential_secret_id"):
        return "context.credential_secret_id: a stack in a remote cloud is not supported."
    wanted = context.get("region_name")
    if wanted is None or wanted == "" or not region or wanted == region:
        return None
    return (
        f"context.region_name: Cannot establish connection to Heat endpoint at region "
        f'"{wanted}": canopy serves one region, {region}.'
    )


class TemplateResource(NestedBase):
    """A resource whose type is a template file of the stack's `files`: its properties
    are the nested template's parameters. One instance serves every such type."""

    name = "<template file>"
    description = "A resource made from a template in the stack's files."
    open_properties = True

    def spec(
        self, res: StackResource, props: Mapping[str, Any], files: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        if res.type not in files:
            raise InvalidRequest(f"The template {res.type} is not in the stack's files.")
        template = nesting.load_template(files[res.type], f"files.{res.type}")
        return template, dict(props), res.type

    def reference(self, res: StackResource) -> Any:
        found = (res.attributes or {}).get("OS::stack_id")
        return found if isinstance(found, str) and found else res.physical_resource_id or None


TEMPLATE_RESOURCE = TemplateResource()
