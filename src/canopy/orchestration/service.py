"""Stacks as the API asks for them: create, update, delete, in the request's transaction.

Each write validates everything it can first (the template, the parameters, every
resource's type and the properties known now), so bad input changes nothing; then it
writes the stack's intent and the stack-level event, and sets the stack due now. The
orchestration controller does the rest.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.config import Settings
from canopy.domain.clock import Clock
from canopy.domain.context import RequestContext
from canopy.domain.errors import Conflict, InvalidRequest, NotFound
from canopy.domain.text import check_text
from canopy.orchestration import external
from canopy.orchestration.adopting import AdoptData, check_adoptable, read_adopt_data
from canopy.orchestration.binding import bind_stack
from canopy.orchestration.events import stack_event
from canopy.orchestration.lookups import constraint_check, read_lookups
from canopy.orchestration.nesting import all_absent
from canopy.orchestration.nesting_checks import Tree
from canopy.orchestration.rollback import snapshot
from canopy.orchestration.states import Action, Desired, Status
from canopy.orchestration.template import BoundTemplate, StackIdentity
from canopy.orchestration.tree_limit import update_start
from canopy.orchestration.validation import check_resources
from canopy.store.models import Stack, StackResource

NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_.-]{0,254}")
MAX_TIMEOUT_MINS = 60 * 24 * 7


@dataclass(frozen=True)
class StackRequest:
    """What a create, update or preview body asks for, checked for shape."""

    template: dict[str, Any] | None
    files: dict[str, Any]
    environment: dict[str, Any]
    parameters: dict[str, Any]
    disable_rollback: bool | None
    timeout_mins: int | None
    tags: list[str] | None
    clear_parameters: tuple[str, ...] = ()
    adopt: AdoptData | None = None  # a create that adopts (adopting.py)


def _map(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"{key} must be a map, not {type(value).__name__}.")
    return dict(value)


def parse_request(body: Any, *, template_required: bool, adopt: bool = False) -> StackRequest:
    """The body's parts, checked for shape; `adopt`: a create, which may adopt."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("The request body must be a JSON object.")
    adopted = None
    if body.get("adopt_stack_data") is not None:
        if not adopt:
            raise InvalidRequest("adopt_stack_data is read only by a stack create.")
        adopted = read_adopt_data(body["adopt_stack_data"])
    elif body.get("template_url"):
        raise InvalidRequest(
            "template_url is not supported: canopy fetches nothing; send the template itself."
        )
    template = body.get("template") if adopted is None else adopted.template
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except RecursionError:
            raise InvalidRequest("The template is nested too deep.") from None
        except ValueError:
            raise InvalidRequest(
                "The template is a string that is not JSON: send it parsed (as the "
                "openstack client does)."
            ) from None
        check_text(template, "template")  # decoded past the edge's text checks
    if template is None and template_required:
        raise InvalidRequest("Need more arguments: a template is required.")
    if template is not None and not isinstance(template, Mapping):
        raise InvalidRequest("The template must be a map.")
    timeout = body.get("timeout_mins")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | str):
            raise InvalidRequest("timeout_mins must be a whole number of minutes.")
        try:
            timeout = int(timeout)
        except ValueError:
            raise InvalidRequest("timeout_mins must be a whole number of minutes.") from None
        if not 1 <= timeout <= MAX_TIMEOUT_MINS:
            raise InvalidRequest(f"timeout_mins must be between 1 and {MAX_TIMEOUT_MINS}.")
    rollback = body.get("disable_rollback")
    if isinstance(rollback, str):
        rollback = rollback.lower() in ("true", "1", "yes", "on")
    if rollback is not None and not isinstance(rollback, bool):
        raise InvalidRequest("disable_rollback must be a boolean.")
    clear = body.get("clear_parameters") or []
    if not isinstance(clear, list) or not all(isinstance(c, str) for c in clear):
        raise InvalidRequest("clear_parameters must be a list of names.")
    files, parameters = _map(body, "files"), _map(body, "parameters")
    if adopted is not None:
        # The data's files and parameters, under what the request gives (as in Heat).
        files = {**adopted.files, **files}
        parameters = {**adopted.parameters, **parameters}
    return StackRequest(
        template=dict(template) if template is not None else None,
        files=files,
        environment=_map(body, "environment"),
        parameters=parameters,
        disable_rollback=rollback,
        timeout_mins=timeout,
        tags=_tags(body.get("tags")),
        clear_parameters=tuple(clear),
        adopt=adopted,
    )


def _tags(raw: Any) -> list[str] | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = [t for t in raw.split(",") if t]
    if not isinstance(raw, list) or not all(isinstance(t, str) and len(t) <= 80 for t in raw):
        raise InvalidRequest("tags must be a comma-separated string or a list of strings.")
    return list(raw)


class StackService:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock

    def identity(self, stack: Stack) -> StackIdentity:
        return StackIdentity(stack.name, stack.id, stack.project_id, self.settings.identity.region)

    async def validate(
        self,
        s: AsyncSession,
        ctx: RequestContext,
        req: StackRequest,
        identity: StackIdentity,
        tree: Tree | None = None,
        *,
        strict: bool = True,
    ) -> BoundTemplate:
        """Bind and check everything knowable now; raises TemplateError or InvalidRequest.
        Not `strict` (`/validate`): parameters without a value are unknown, not an error."""
        assert req.template is not None
        known = replace(await read_lookups(s, ctx), region=self.settings.identity.region)
        bound = bind_stack(
            req.template,
            req.files,
            req.environment,
            req.parameters,
            identity,
            constraint_check(known),
            strict=strict,
        )
        tree = tree or Tree()
        tree.environment = req.environment
        check_resources(bound, known, tree)
        await external.check_exist(s, ctx, identity.id, tree.externals)
        return bound

    async def find(
        self, s: AsyncSession, project_id: str, name_or_id: str, *, lock: bool = False
    ) -> Stack:
        """A live stack of the project by id or by name (NotFound otherwise)."""
        q = select(Stack).where(Stack.project_id == project_id, Stack.deleted.is_(False))
        by_id = q.where(Stack.id == name_or_id)
        by_name = q.where(Stack.name == name_or_id)
        if lock:
            by_id, by_name = by_id.with_for_update(), by_name.with_for_update()
        stack = (await s.execute(by_id)).scalar_one_or_none()
        if stack is None:
            stack = (await s.execute(by_name)).scalar_one_or_none()
        if stack is None:
            raise NotFound(f"The Stack ({name_or_id[:255]}) could not be found.")
        return stack

    async def create(self, s: AsyncSession, ctx: RequestContext, name: Any, body: Any) -> Stack:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise InvalidRequest(
                "Invalid stack name: it must start with a letter and contain only letters, "
                "digits, '_', '-' and '.', up to 255 characters."
            )
        req = parse_request(body, template_required=True, adopt=True)
        if req.adopt is not None and not self.settings.orchestration.enable_stack_adopt:
            raise InvalidRequest("Stack Adopt is not supported: it is disabled on this cloud.")
        taken = await s.scalar(
            select(Stack.id).where(
                Stack.project_id == ctx.project_id, Stack.name == name, Stack.deleted.is_(False)
            )
        )
        if taken is not None:
            raise Conflict(f"The Stack ({name}) already exists.")
        stack_id = str(uuid.uuid4())
        region = self.settings.identity.region
        bound = await self.validate(
            s, ctx, req, StackIdentity(name, stack_id, ctx.project_id, region)
        )
        action, adopt_data = Action.CREATE, None
        if req.adopt is not None:
            check_adoptable(bound, req.environment)
            action = Action.ADOPT
            found = req.adopt.resources
            adopt_data = {n: found[n] for n in bound.resources() if n in found}
        now = self.clock.now()
        assert req.template is not None
        stack = Stack(
            id=stack_id,
            name=name,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            template=req.template,
            files=req.files,
            environment=req.environment,
            parameters=req.parameters,
            action=action,
            status=Status.IN_PROGRESS,
            status_reason=f"Stack {action.value} started",
            disable_rollback=True if req.disable_rollback is None else req.disable_rollback,
            timeout_mins=req.timeout_mins,
            tags=req.tags or [],
            generation=0,
            action_started_at=now,
            created_at=now,
            updated_at=None,
            deleted_at=None,
            deleted=False,
            next_attempt_at=now,
            retries=0,
            adopt_data=adopt_data,
        )
        s.add(stack)
        await s.flush()
        stack_event(s, stack, action, Status.IN_PROGRESS, stack.status_reason, now)
        return stack

    async def update(
        self, s: AsyncSession, ctx: RequestContext, stack: Stack, body: Any, *, patch: bool
    ) -> Stack:
        """PUT replaces the template and parameters; PATCH (`--existing`) keeps what the
        body leaves out, a null template included."""
        req = parse_request(body, template_required=not patch)
        if stack.status == Status.IN_PROGRESS:
            raise Conflict(
                f"Updating a stack when it is ({stack.action}, {stack.status}) is not supported."
            )
        if stack.action == Action.DELETE:
            raise Conflict("Updating a stack that is being deleted is not supported.")
        template = req.template if req.template is not None else stack.template
        params = {**stack.parameters, **req.parameters} if patch else dict(req.parameters)
        for name in req.clear_parameters:
            params.pop(name, None)
        files = {**stack.files, **req.files} if patch else req.files
        env = {**stack.environment, **req.environment} if patch else req.environment
        merged = StackRequest(template, files, env, params, None, None, None)
        # Heat's max_resources_per_stack over the root's whole tree after the update.
        others, kept = await update_start(s, stack)
        tree = Tree(resources=others, kept=kept)
        bound = await self.validate(s, ctx, merged, self.identity(stack), tree)
        rows = await s.scalars(
            select(StackResource).where(
                StackResource.stack_id == stack.id,
                StackResource.group_id.is_(None),
                StackResource.desired == Desired.PRESENT,
            )
        )
        for name, rtype in external.changes(rows, bound.resources()):
            raise InvalidRequest(external.update_refused(name, rtype) + ".")
        now = self.clock.now()
        stack.previous = snapshot(stack)
        stack.template, stack.parameters, stack.files, stack.environment = (
            template,
            params,
            files,
            env,
        )
        if req.timeout_mins is not None:
            stack.timeout_mins = req.timeout_mins
        if req.disable_rollback is not None:
            stack.disable_rollback = req.disable_rollback
        if req.tags is not None:
            stack.tags = req.tags
        self._begin(s, stack, Action.UPDATE, now)
        return stack

    async def delete(self, s: AsyncSession, stack: Stack) -> None:
        if stack.action == Action.DELETE and stack.status == Status.IN_PROGRESS:
            return  # already being deleted
        now = self.clock.now()
        await all_absent(s, stack.id)
        self._begin(s, stack, Action.DELETE, now)

    def _begin(self, s: AsyncSession, stack: Stack, action: Action, now: Any) -> None:
        stack.generation += 1
        stack.action = action
        stack.status = Status.IN_PROGRESS
        stack.status_reason = f"Stack {action.value} started"
        stack.action_started_at = now
        if action is Action.UPDATE:
            stack.updated_at = now
        stack.next_attempt_at = now
        stack.retries = 0
        stack_event(s, stack, action, Status.IN_PROGRESS, stack.status_reason, now)
