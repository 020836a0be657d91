"""Stacks in tests: a plane (sim clouds, fake clock), the stack service, and a loop."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from canopy.domain.context import RequestContext
from canopy.orchestration.service import StackService
from canopy.orchestration.states import Desired
from canopy.store.models import Server, Stack, StackEvent, StackResource, StackSignal
from tests.controllers.harness import Plane

CLOUDS = """
[scheduler]
burst_threshold = 0.8

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 1
host_vcpus = 8
host_ram_mb = 65536
boot_seconds = 2
api_latency_ms = 5

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 2
api_latency_ms = 5
price_per_vcpu_hour = 0.05
"""


def hot(resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    t: dict[str, Any] = {"heat_template_version": "2018-08-31", "resources": resources}
    if outputs:
        t["outputs"] = outputs
    return t


def server(**props: Any) -> dict[str, Any]:
    return {
        "type": "OS::Nova::Server",
        "properties": {"flavor": "m1.small", "image": "cirros", **props},
    }


async def create(
    p: Plane, name: str, template: dict[str, Any], ctx: RequestContext | None = None, **body: Any
) -> str:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        stack = await svc.create(s, ctx or p.ctx, name, {"template": template, **body})
        return stack.id


async def delete_stack(p: Plane, stack_id: str) -> None:
    async with p.db.session() as s:
        svc = StackService(p.settings, p.clock)
        await svc.delete(s, await svc.find(s, p.ctx.project_id, stack_id, lock=True))


async def stack(p: Plane, stack_id: str) -> Stack:
    async with p.db.read() as s:
        found = await s.get(Stack, stack_id)
        assert found is not None
        return found


async def resources(p: Plane, stack_id: str) -> dict[str, StackResource]:
    """The stack's rows by name; where an update replaced a resource, the live row (the
    replaced one stays, desired absent, until the update's clean-up), else the latest
    generation's."""
    async with p.db.read() as s:
        q = (
            select(StackResource)
            .where(StackResource.stack_id == stack_id)
            .order_by(
                StackResource.desired == Desired.PRESENT,
                StackResource.generation,
                StackResource.created_at,
            )
        )
        return {r.name: r for r in (await s.execute(q)).scalars()}


async def events(p: Plane, stack_id: str) -> list[StackEvent]:
    async with p.db.read() as s:
        q = select(StackEvent).where(StackEvent.stack_id == stack_id).order_by(StackEvent.seq)
        return list((await s.execute(q)).scalars())


async def live_servers(p: Plane) -> list[Server]:
    async with p.db.read() as s:
        return list((await s.execute(select(Server).where(Server.deleted.is_(False)))).scalars())


async def settle(p: Plane, stack_id: str, steps: int = 100) -> Stack:
    """Step the whole plane until the stack is no longer IN_PROGRESS."""

    async def done() -> bool:
        return (await stack(p, stack_id)).status != "IN_PROGRESS"

    await p.run_until(done, steps=steps)
    return await stack(p, stack_id)


async def send_signal(
    p: Plane, stack_id: str, resource: str, data: dict[str, Any] | None = None
) -> None:
    """What the signal route writes: a signal row for the engine to act on."""
    async with p.db.session() as s:
        s.add(
            StackSignal(
                id=str(uuid.uuid4()),
                stack_id=stack_id,
                resource_name=resource,
                data=data or {},
                via="token",
                received_at=p.clock.now(),
                handled_at=None,
                outcome="",
            )
        )


async def signals(p: Plane, stack_id: str) -> list[StackSignal]:
    async with p.db.read() as s:
        q = select(StackSignal).where(StackSignal.stack_id == stack_id).order_by(StackSignal.seq)
        return list((await s.execute(q)).scalars())
