"""Template corpus, part two: one template's life through the real engine on sim clouds.

Validate, create, update the size where the template takes one, delete; then nothing may
be left: no live stack, server or keypair row, no server on any sim cloud. The sim does not
run user data, so the runner plays the booted servers' part for wait conditions: each
`wc_notify` line (the handle's `curl_cli` with `--data-binary '...'`) in a server's user
data is sent as the signal it would send, once the server is ACTIVE; user data that names a
handle's endpoint without such a line (a script that posts by other means) sends one
SUCCESS. A CFN handle's Ref (its pre-signed URL) in user data is signalled as each
`cfn-signal ... 'URL'` line (or `curl -X PUT --data-binary '{...}' URL`) would PUT it, the
UniqueId the server's id as cfn-signal's default is; a line with a literal non-zero exit
code is a script's error path and is not run (the sim's scripts succeed). It plays the
agent (os-collect-config and heat-config) for software deployments: each derived config
waiting for its outputs (CFN_SIGNAL) gets heat-config-notify's result, status code 0, once.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from canopy.orchestration.outputs import bound_of, outputs
from canopy.orchestration.resources.registry import SIGNALLED
from canopy.orchestration.resources.software_deployment import DEPLOYMENT_TYPES
from canopy.orchestration.service import StackService, parse_request
from canopy.orchestration.template.model import StackIdentity
from canopy.services import keypairs
from canopy.services.servers import CreateServer
from canopy.store.models import Keypair, Server, Stack, StackResource
from canopy.store.models.servers import ServerUserData
from tests.controllers.harness import Plane

from .corpus_load import (
    FLAVOR,
    IMAGE,
    KEY_NAME,
    Case,
    count_change,
    external_parameters,
    literal_count_change,
    parameters,
)
from .helpers import send_signal

CLOUDS = """
[scheduler]
burst_threshold = 0.8

[[clouds]]
name = "private"
tier = 0
[clouds.sim]
hosts = 4
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 1
api_latency_ms = 1

[[clouds]]
name = "public"
tier = 1
[clouds.sim]
hosts = 100
host_vcpus = 64
host_ram_mb = 262144
boot_seconds = 1
api_latency_ms = 1
price_per_vcpu_hour = 0.05
"""

HANDLE = "OS::Heat::WaitConditionHandle"
CFN_HANDLE = "AWS::CloudFormation::WaitConditionHandle"


@dataclass
class Outcome:
    """What one run did, for the report and the assertions."""

    created: bool = False
    updated: str = ""  # what the update changed ("" when the template takes no size)
    deleted: bool = False
    signals: int = 0
    notes: list[str] = field(default_factory=list)


async def add_keypair(p: Plane, owner: tuple[str, str] | None = None) -> None:
    """The keypair the parameter table names, the user's own (the plane's, else `owner`:
    project and user) as `openstack keypair create` would make it."""
    project_id, user_id = owner or (p.ctx.project_id, p.ctx.user_id)
    _, public = keypairs.generate_ssh()
    async with p.db.session() as s:
        await keypairs.create(
            s,
            p.settings,
            project_id=project_id,
            user_id=user_id,
            name=KEY_NAME,
            key_type="ssh",
            public_key=public,
            now=p.clock.now(),
        )


async def run(p: Plane, case: Case, name: str = "corpus") -> Outcome:
    """The whole life of `case` on plane `p`; an AssertionError says which step failed."""
    out = Outcome()
    svc = StackService(p.settings, p.clock)
    params = parameters(case.template)
    outside = await _externals(p, case, params)
    body = {
        "template": case.template,
        "files": case.files,
        "parameters": params,
        "environment": case.environment,
    }

    async with p.db.session() as s:  # POST /validate
        identity = StackIdentity("validate", "None", p.ctx.project_id)
        await svc.validate(s, p.ctx, parse_request(body, template_required=True), identity)

    async with p.db.session() as s:
        sid = (await svc.create(s, p.ctx, name, body)).id
    done = await _settle(p, sid, out)
    assert (done.action, done.status) == ("CREATE", "COMPLETE"), f"create: {done.status_reason}"
    out.created = True
    await _outputs_resolve(p, done)

    await _update(p, svc, case, sid, params, out)

    async with p.db.session() as s:
        await svc.delete(s, await svc.find(s, p.ctx.project_id, sid, lock=True))
    gone = await _settle(p, sid, out)
    assert (gone.action, gone.status) == ("DELETE", "COMPLETE"), f"delete: {gone.status_reason}"
    out.deleted = True
    await _forget_externals(p, outside)
    await assert_nothing_left(p)
    return out


async def _externals(p: Plane, case: Case, params: dict[str, Any]) -> list[str]:
    """The servers the template takes by external_id, made (ACTIVE) outside any stack;
    their ids become the parameters that name them."""
    made: list[str] = []
    for name, kind in external_parameters(case.template).items():
        assert kind in ("OS::Nova::Server", "AWS::EC2::Instance"), f"external {kind}"
        req = CreateServer(name=f"outside-{name}", flavor=FLAVOR, image=IMAGE)
        [server] = await p.service.create(p.ctx, req)
        made.append(server.id)
        params[name] = server.id
    for _ in range(100):
        async with p.db.read() as s:
            q = select(func.count()).where(Server.id.in_(made), Server.status != "ACTIVE")
            if not (await s.execute(q)).scalar_one():
                break
        await p.step()
    return made


async def _forget_externals(p: Plane, made: list[str]) -> None:
    """The stack's delete left the external servers: they are there, then deleted."""
    if not made:
        return
    async with p.db.read() as s:
        q = select(Server.id).where(Server.id.in_(made), Server.deleted.is_(False))
        kept = set((await s.execute(q)).scalars())
    assert kept == set(made), f"the stack's delete deleted external servers {set(made) - kept}"
    for server_id in made:
        await p.service.delete(p.ctx, server_id)
    for _ in range(100):
        async with p.db.read() as s:
            q = select(func.count()).where(Server.id.in_(made), Server.deleted.is_(False))
            if not (await s.execute(q)).scalar_one():
                return
        await p.step()


async def _update(
    p: Plane, svc: StackService, case: Case, sid: str, params: dict[str, Any], out: Outcome
) -> None:
    """`stack update --existing` with a changed size parameter, else with the template's
    literal group sizes grown by one; the stack's resources must change with it."""
    changed = count_change(case.template, params)
    body: dict[str, Any]
    if changed:
        body = {"parameters": changed}
        out.updated = ", ".join(f"{k}={v}" for k, v in changed.items())
    else:
        grown = literal_count_change(case.template)
        if grown is None:
            return
        body = {"template": grown}
        out.updated = "group sizes changed by one"
    before = await _resource_rows(p)
    async with p.db.session() as s:
        stack = await svc.find(s, p.ctx.project_id, sid, lock=True)
        await svc.update(s, p.ctx, stack, body, patch=True)
    done = await _settle(p, sid, out)
    assert (done.action, done.status) == ("UPDATE", "COMPLETE"), f"update: {done.status_reason}"
    after = await _resource_rows(p)
    if changed and not _sizes_anything(case, changed):
        out.notes.append(f"{out.updated} sizes no group: resources {before} -> {after}")
        return
    assert after != before, f"update {out.updated}: still {after} resources"


def _sizes_anything(case: Case, changed: dict[str, int]) -> bool:
    """Whether a changed parameter reaches a group's size (else a count may size a
    wait condition or a nested template, and the rows need not change)."""
    text = json.dumps(case.template) + "".join(case.files.values())
    return any(
        re.search(r'"(count|desired_capacity|min_size|max_size)": \{"get_param": "' + k, text)
        for k in changed
    )


async def _resource_rows(p: Plane) -> int:
    async with p.db.read() as s:
        q = select(func.count()).select_from(StackResource).join(Stack)
        return int((await s.execute(q.where(Stack.deleted.is_(False)))).scalar_one())


async def _outputs_resolve(p: Plane, stack: Stack) -> None:
    async with p.db.read() as s:
        q = select(StackResource).where(StackResource.stack_id == stack.id)
        rows = list((await s.execute(q)).scalars())
    bound = bound_of(stack, p.settings.identity.region)
    assert bound is not None, "the stored template no longer binds"
    errors = {
        o["output_key"]: o["output_error"] for o in outputs(bound, rows) if "output_error" in o
    }
    assert not errors, f"outputs: {errors}"


async def _settle(p: Plane, sid: str, out: Outcome, steps: int = 400) -> Stack:
    played: set[str] = set()
    for _ in range(steps):
        async with p.db.read() as s:
            found = await s.get(Stack, sid)
            assert found is not None
        if found.status != "IN_PROGRESS":
            return found
        out.signals += await _play_servers(p, played)
        out.signals += await _play_agents(p, played)
        await p.step()
    raise AssertionError(f"{found.action} did not finish in {steps} steps: {found.status_reason}")


async def _play_servers(p: Plane, played: set[str]) -> int:
    """Send what each newly ACTIVE server's user data would send to a handle."""
    async with p.db.read() as s:
        q = (
            select(Server.id, ServerUserData.data)
            .join(ServerUserData, ServerUserData.server_id == Server.id)
            .where(Server.deleted.is_(False), Server.status == "ACTIVE")
        )
        booted = [(i, d) for i, d in (await s.execute(q)).all() if i not in played]
        q_handles = select(StackResource).where(StackResource.type.in_((HANDLE, CFN_HANDLE)))
        handles = list((await s.execute(q_handles)).scalars())
    sent = 0
    for server_id, data in booted:
        played.add(server_id)
        script = _decoded(data)
        for h in handles:
            if h.type == CFN_HANDLE:
                for body in _cfn_signals(script, (h.data or {}).get("url", ""), server_id):
                    checked = SIGNALLED[CFN_HANDLE].check_signal(body)
                    await send_signal(p, h.stack_id, h.name, checked)
                    sent += 1
                continue
            endpoint = (h.attributes or {}).get("endpoint")
            if not endpoint or endpoint not in script:
                continue
            for signal in _signals(script, (h.attributes or {}).get("curl_cli", "")):
                await send_signal(p, h.stack_id, h.name, signal)
                sent += 1
    return sent


async def _play_agents(p: Plane, played: set[str]) -> int:
    """What heat-config-notify posts for each deployment waiting for its outputs: the
    config ran, said nothing and exited 0 (once per derived config)."""
    async with p.db.read() as s:
        q = select(StackResource).where(StackResource.type.in_(DEPLOYMENT_TYPES))
        rows = list((await s.execute(q)).scalars())
    sent = 0
    for row in rows:
        sd = (row.data or {}).get("sd") or {}
        config_id = (sd.get("config") or {}).get("id")
        if sd.get("status") != "IN_PROGRESS" or not config_id or config_id in played:
            continue
        played.add(config_id)
        result = {"deploy_stdout": "", "deploy_stderr": "", "deploy_status_code": 0}
        await send_signal(p, row.stack_id, row.name, result)
        sent += 1
    return sent


def _decoded(data: str) -> str:
    try:
        return base64.b64decode(data, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return data


def _signals(script: str, curl_cli: str) -> list[dict[str, Any]]:
    """The bodies `script` posts with `curl_cli`, commented lines left out (one SUCCESS if
    it posts by other means)."""
    found: list[dict[str, Any]] = []
    if curl_cli:
        pattern = re.escape(curl_cli) + r"\s+--data-binary\s+'([^']*)'"
        run = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
        for m in re.finditer(pattern, run):
            try:
                body = json.loads(m.group(1))
            except json.JSONDecodeError:
                body = None
            found.append(body if isinstance(body, dict) else {"status": "SUCCESS"})
    return found or [{"status": "SUCCESS"}]


def _cfn_signals(script: str, url: str, server_id: str) -> list[dict[str, Any]]:
    """The CFN bodies `script` PUTs to `url` (cfn-signal's defaults: heat-cfntools
    bin/cfn-signal); one SUCCESS if it names the URL but neither runs cfn-signal nor curl."""
    if not url or url not in script:
        return []
    found: list[dict[str, Any]] = []
    for line in script.splitlines():
        if url not in line or line.lstrip().startswith("#"):
            continue
        if "--data-binary" in line:
            m = re.search(r"--data-binary\s+'([^']*)'", line)
            try:
                body = json.loads(m.group(1)) if m else None
            except json.JSONDecodeError:
                body = None
            if isinstance(body, dict) and body.get("Status") == "SUCCESS":
                found.append(body)
            continue
        if "cfn-signal" not in line:
            continue
        try:
            words = shlex.split(line[line.index("cfn-signal") :])
        except ValueError:
            words = []
        opts = _cfn_options(words[1:])
        code = opts.get("-e") or opts.get("--exit-code") or ""
        if (code.isdigit() and code != "0") or (
            not code and opts.get("-s", opts.get("--success", "true")) != "true"
        ):
            continue  # an error path (`error_exit`): not run in the sim
        found.append(
            {
                "Status": "SUCCESS",
                "Reason": opts.get("-r", opts.get("--reason", "Configuration Complete")),
                "UniqueId": opts.get("-i", opts.get("--id", server_id)),
                "Data": opts.get(
                    "-d", opts.get("--data", "Application has completed configuration.")
                ),
            }
        )
    default = {"Status": "SUCCESS", "Reason": "", "UniqueId": server_id, "Data": ""}
    return found or [default]


def _cfn_options(words: list[str]) -> dict[str, str]:
    """cfn-signal's options that take a value, by the name used; flags (-k) skipped."""
    valued = {"-e", "--exit-code", "--exit", "-r", "--reason", "-d", "--data", "-i", "--id"}
    valued |= {"-s", "--success"}
    opts: dict[str, str] = {}
    it = iter(words)
    for word in it:
        if word in valued:
            opts[word] = next(it, "")
    if "--exit" in opts:
        opts.setdefault("-e", opts["--exit"])
    return opts


async def assert_nothing_left(p: Plane) -> None:
    """No live stack (nested included), server or stack-made keypair; no server on a cloud."""
    async with p.db.read() as s:
        stacks = (await s.execute(select(Stack.name).where(Stack.deleted.is_(False)))).all()
        servers = (await s.execute(select(Server.name).where(Server.deleted.is_(False)))).all()
        keys = (await s.execute(select(Keypair.name).where(Keypair.name != KEY_NAME))).all()
    assert not stacks, f"stacks left: {stacks}"
    assert not servers, f"servers left: {servers}"
    assert not keys, f"keypairs left: {keys}"
    for cloud in p.rt.drivers:
        live = await p.sim(cloud).all_servers()
        assert not live, f"servers left on {cloud}: {[r.name for r in live]}"
