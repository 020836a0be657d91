"""Heat's resource signal: `POST .../stacks/{name}/{id}/resources/{resource}/signal`.

`PUT` on the same route is what a CFN wait condition handle's pre-signed URL takes, as
heat-api-cfn's `PUT /waitcondition/{arn}` does (cfn-signal sends `curl -X PUT`); the body is
checked by the resource's type either way (a CFN handle wants Heat's four CFN keys).

Who may signal: a caller with a Keystone token who may write in the path's project (Heat's
HEAT_SIGNAL), or anyone holding the resource's own signal token, sent as `X-Auth-Token`
(a wait condition handle's `curl_cli`, Heat's TOKEN_SIGNAL) or in the URL (a scaling
policy's pre-signed `alarm_url`, for a plain `curl -X POST`). A wrong signal token is 403.
A group's member is signalled by its row name (`<group>.<name>`) only when its type takes
signals as a member (a deployment group's deployments).

The route writes the signal as a row and answers 200 (empty), whatever the engine will make
of it (a repeated id, a cooldown: recorded and ignored). It calls no cloud and changes no
resource: the engine acts on the row. A malformed body is 400 and writes nothing, whatever
its Content-Type: the body is read as JSON, so it gets the same text checks as any JSON body
(valid UTF-8, no lone surrogate, no NUL: `valid_text.json_problem`). More than
`signals.MAX_PENDING` signals waiting for one resource is 429.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, or_, select

from canopy.api.auth import authenticate
from canopy.api.deps import ClockDep, SessionDep, wake_after_commit
from canopy.api.orchestration.common import project_scope, writer_scope
from canopy.api.valid_text import json_problem
from canopy.domain.errors import Forbidden, InvalidRequest, NotFound, Throttled
from canopy.orchestration.resources.registry import SIGNAL_BYTES, SIGNALLED, SIGNALLED_MEMBERS
from canopy.orchestration.signal_tokens import TOKEN_PARAM, matches
from canopy.orchestration.signals import MAX_PENDING
from canopy.orchestration.states import Desired
from canopy.store.models import Stack, StackResource, StackSignal

router = APIRouter()
MAX_SIGNAL_BYTES = 64 << 10


@router.put(
    "/stacks/{stack_name}/{stack_id}/resources/{resource_name}/signal",
    summary="Signal a resource by PUT (a CFN wait condition handle's URL, as cfn-signal)",
    status_code=200,
)
@router.post(
    "/stacks/{stack_name}/{stack_id}/resources/{resource_name}/signal",
    summary="Signal a resource (a wait condition handle, a scaling policy)",
    status_code=200,
)
async def signal_resource(
    request: Request,
    project_id: str,
    stack_name: str,
    stack_id: str,
    resource_name: str,
    s: SessionDep,
    clock: ClockDep,
) -> Response:
    in_url = request.query_params.get(TOKEN_PARAM)
    header = request.headers.get("x-auth-token")
    stack = (
        await s.execute(
            select(Stack).where(
                Stack.id == stack_id,
                Stack.project_id == project_id,
                Stack.name == stack_name,
                Stack.deleted.is_(False),
            )
        )
    ).scalar_one_or_none()
    row = None
    if stack is not None:
        row = (
            await s.execute(
                select(StackResource)
                .where(
                    StackResource.stack_id == stack.id,
                    StackResource.name == resource_name,
                    or_(
                        StackResource.group_id.is_(None),
                        StackResource.type.in_(SIGNALLED_MEMBERS),
                    ),
                    StackResource.desired == Desired.PRESENT,
                )
                # A template's resource before a member of the same name.
                .order_by(StackResource.group_id.is_not(None))
                .limit(1)
            )
        ).scalar_one_or_none()
    if in_url is not None:
        if row is None or not matches(row, in_url):
            raise Forbidden("The signal token is not valid for this resource.")
        via = "url"
    elif header and row is not None and matches(row, header):
        via = "url"
    else:
        writer_scope(project_scope(project_id, await authenticate(request)))
        via = "token"
    if stack is None:
        raise NotFound(f"The Stack ({stack_name[:255]}) could not be found.")
    if row is None:
        raise NotFound(f"The Resource ({resource_name[:255]}) could not be found.")
    taker = SIGNALLED.get(row.type)
    if taker is None:
        raise InvalidRequest(f"Resource {resource_name} ({row.type}) does not take signals.")
    data = taker.check_signal(await _body(request, SIGNAL_BYTES.get(row.type, MAX_SIGNAL_BYTES)))
    waiting = await s.scalar(
        select(func.count())
        .select_from(StackSignal)
        .where(
            StackSignal.stack_id == stack.id,
            StackSignal.resource_name == row.name,
            StackSignal.handled_at.is_(None),
        )
    )
    if (waiting or 0) >= MAX_PENDING:
        raise Throttled(
            f"{MAX_PENDING} signals to {resource_name} are waiting to be handled; try later.",
            retry_after=5,
        )
    s.add(
        StackSignal(
            id=str(uuid.uuid4()),
            stack_id=stack.id,
            resource_name=row.name,
            resource_id=row.id,  # this row's token or name was checked, no other's
            data=data,
            via=via,
            received_at=clock.now(),
            handled_at=None,
            outcome="",
        )
    )
    wake_after_commit(s, "orchestration")  # the stack loop alone; its step wakes the rest
    return Response(status_code=200)


async def _body(request: Request, limit: int) -> Any:
    raw = await request.body()
    if len(raw) > limit:
        raise InvalidRequest(f"A signal's body is at most {limit} bytes.")
    if not raw.strip():
        return None
    # The request guard checks only bodies declared JSON; a signal is parsed as JSON
    # whatever it is declared as (curl sends form or text types), so it is checked here.
    problem = json_problem(raw)
    if problem is not None:
        raise InvalidRequest(problem)
    try:
        return json.loads(raw, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise InvalidRequest("The signal's body is not JSON.") from None


def _not_json(name: str) -> Any:
    # Python's parser takes NaN and Infinity, which JSON has not: PostgreSQL refused them
    # at commit and SQLite stored null, so they are refused here, alike on both.
    raise ValueError(name)
