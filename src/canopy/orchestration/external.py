"""External resources: a template resource with `external_id` stands for something that
exists already (Heat's rule, HOT 2016-10-14 on).

Nothing is created for it: its row takes the existing resource's id, its attributes are
read from it, and a stack delete forgets it without touching it (Heat abandons it). Its
properties are not used and it depends on nothing. Canopy takes as external only what it
keeps itself and can show: a server of the stack's project (by id), a keypair of the
stack's user (by name) and a server group of the project (by id). Anything else, and
anything not found, is refused when the stack is validated; a resource of another
project is "not found", exactly as a missing one (its existence is not told), and so is a
server being deleted. As adopt (resources/adopt.py), a server some stack holds is refused:
one stack cannot take another's server and then suspend it, or lose it when the owner is
deleted. Only the stack's own tree may name it again, and only as an external resource of
the same id (an update, a retry after a failure, a replaced nested stack); a server a
resource of the same tree made is refused like any other held one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from canopy.domain.context import RequestContext
from canopy.domain.errors import InvalidRequest
from canopy.domain.states import DesiredState
from canopy.orchestration.resources.base import Progress, ResourceType, Step
from canopy.store.models import Keypair, Server, ServerGroup, Stack, StackResource

SERVER_TYPES = ("OS::Nova::Server", "AWS::EC2::Instance")
KEYPAIR = "OS::Nova::KeyPair"
SERVER_GROUP = "OS::Nova::ServerGroup"
TYPES = (*SERVER_TYPES, KEYPAIR, SERVER_GROUP)

Ref = tuple[str, str, str]  # (where, type, external id)


def external_id(row: StackResource) -> str | None:
    """The id a row stands for, if it is an external resource's row."""
    found = (row.data or {}).get("external_id")
    return found if isinstance(found, str) else None


def not_found(rtype: str, ident: str) -> str:
    return f"Invalid external resource: Resource {ident} ({rtype}) can not be found."


def held(ident: str) -> str:
    return f"Invalid external resource: Server {ident} already belongs to a stack."


def check_type(rtype: str, where: str) -> None:
    """Refuse external_id on a type canopy cannot take an existing resource of."""
    if rtype not in TYPES:
        raise InvalidRequest(
            f"{where}.external_id: external_id is not supported for {rtype}: canopy takes "
            f"existing resources of these types only: {', '.join(TYPES)}."
        )


async def _found(
    session: Any,
    project_id: str,
    user_id: str,
    rtype: str,
    ids: Iterable[str],
    *,
    lock: bool = False,
) -> set[str]:
    """Which of `ids` exist for the project (servers not being deleted, groups) or the
    user (keypairs). `lock` locks the servers found: two stacks taking one server at once
    take turns, and the second sees the first's row (`_held`)."""
    wanted = sorted(set(ids))
    if rtype in SERVER_TYPES:
        q: Any = select(Server.id).where(
            Server.id.in_(wanted),
            Server.project_id == project_id,
            Server.deleted.is_(False),
            Server.desired_state != DesiredState.DELETED,
        )
        if lock:
            q = q.with_for_update()
    elif rtype == KEYPAIR:
        q = select(Keypair.name).where(Keypair.name.in_(wanted), Keypair.user_id == user_id)
    else:
        q = select(ServerGroup.id).where(
            ServerGroup.id.in_(wanted), ServerGroup.project_id == project_id
        )
    return set((await session.execute(q)).scalars())


async def _tree(session: Any, stack_id: str) -> set[str]:
    """The ids of the stack tree `stack_id` is in: its root and every stack nested under
    it (just `stack_id` for a stack not yet written)."""
    root, seen = stack_id, {stack_id}
    while (owner := await session.scalar(select(Stack.owner_id).where(Stack.id == root))) and (
        owner not in seen
    ):
        root = owner
        seen.add(owner)
    ids, frontier = {root}, {root}
    while frontier:
        below = await session.scalars(select(Stack.id).where(Stack.owner_id.in_(frontier)))
        frontier = set(below) - ids
        ids |= frontier
    return ids


async def _held(session: Any, stack_id: str, ids: Iterable[str]) -> set[str]:
    """Which of the servers `ids` a stack holds, other than as an external resource of the
    same id in the tree of `stack_id` (the module's docstring)."""
    rows = (
        await session.execute(
            select(StackResource.stack_id, StackResource.server_id, StackResource.data).where(
                StackResource.server_id.in_(sorted(set(ids)))
            )
        )
    ).all()
    if not rows:
        return set()
    tree = await _tree(session, stack_id)
    return {
        server_id
        for holder, server_id, data in rows
        if holder not in tree or (data or {}).get("external_id") != server_id
    }


async def check_exist(
    session: Any, ctx: RequestContext, stack_id: str, refs: Iterable[Ref]
) -> None:
    """Every external resource a template names exists, and no stack but the tree of
    `stack_id` holds a server it names (InvalidRequest naming the first that fails); one
    query per type."""
    by_type: dict[str, list[Ref]] = defaultdict(list)
    for ref in refs:
        by_type[ref[1]].append(ref)
    for rtype, group in by_type.items():
        found = await _found(
            session, ctx.project_id, ctx.user_id, rtype, (ident for _, _, ident in group)
        )
        for where, _, ident in group:
            if ident not in found:
                raise InvalidRequest(f"{where}: {not_found(rtype, ident)}")
        if rtype in SERVER_TYPES:
            taken = await _held(session, stack_id, found)
            for where, _, ident in group:
                if ident in taken:
                    raise InvalidRequest(f"{where}: {held(ident)}")


async def adopt(step: Step, kind: ResourceType, row: StackResource, ident: str) -> Progress:
    """Take the existing resource `ident` as `row`: checked again (it may have gone since
    the stack was validated), then read like a resource the stack made."""
    rtype = row.type
    row.data = {**(row.data or {}), "external_id": ident}
    lock = rtype in SERVER_TYPES
    found = await _found(
        step.session, step.stack.project_id, step.ctx.user_id, rtype, [ident], lock=lock
    )
    if ident not in found:
        return Progress.failure(not_found(rtype, ident))
    if rtype in SERVER_TYPES and await _held(step.session, step.stack.id, [ident]):
        return Progress.failure(held(ident))
    row.physical_resource_id = ident
    if rtype in SERVER_TYPES:
        row.server_id = ident
        return await kind.check(step, row)  # ACTIVE or SHUTOFF: done, with its attributes
    if rtype == KEYPAIR:
        key = (
            await step.session.execute(
                select(Keypair).where(Keypair.name == ident, Keypair.user_id == step.ctx.user_id)
            )
        ).scalar_one()
        row.attributes = {"public_key": key.public_key, "private_key": ""}
    else:
        group = await step.session.get(ServerGroup, ident)
        assert group is not None
        row.attributes = {"name": group.name, "policy": group.policy}
    return Progress.complete()


def update_refused(name: str, rtype: str) -> str:
    """Heat's reason when an update changes a resource's external_id (or adds or removes
    it): the resource is neither re-taken nor replaced."""
    return f"Update to property external_id of {name} ({rtype}) is not supported"


def changes(rows: Iterable[StackResource], defs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, type) of each complete resource whose external_id the new definitions
    `defs` (name -> ResourceDefinition) change, the type staying the same."""
    out: list[tuple[str, str]] = []
    for row in rows:
        d = defs.get(row.name)
        if d is None or d.type != row.type or row.status != "COMPLETE":
            continue
        if external_id(row) != d.external_id:
            out.append((row.name, row.type))
    return out
