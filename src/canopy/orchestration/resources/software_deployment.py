"""OS::Heat::SoftwareDeployment and StructuredDeployment: a config applied to a server by
the agent on it (os-collect-config and heat-config), which polls the server resource's
metadata and posts its result back.

As in Heat, each action in `actions` (CREATE and UPDATE by default) derives a config from
the source one: its inputs with this deployment's `input_values`, then Heat's `deploy_*`
inputs (the server, the action, the stack, the resource, the signal transport and, for
CFN_SIGNAL, `deploy_signal_id` and `deploy_signal_verb`). The derived config is kept on the
deployment's row (`data["sd"]`); the server's `deployments` metadata is read from those
rows (`server_deployments`), so nothing is written to the server's row and two stacks
deploying to one server never race. With CFN_SIGNAL, `deploy_signal_id` is a canopy
pre-signed URL of this resource's signal route: heat-config-notify POSTs the result to it
({deploy_stdout, deploy_stderr, deploy_status_code, and the config's outputs}); the
resource completes then, or fails on a non-zero status code or a set `error_output`, with
Heat's reasons. With NO_SIGNAL it completes at once. HEAT_SIGNAL, TEMP_URL_SIGNAL and
ZAQAR_SIGNAL need Keystone stack users, Swift or Zaqar, which canopy has not: refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step, updatable
from canopy.orchestration.resources.deployment_config import (
    deploys_for,
    derived_inputs,
    load_source,
    substitute,
)
from canopy.orchestration.resources.signalling import Handled
from canopy.orchestration.signal_tokens import arm, presigned
from canopy.orchestration.software_rows import server_configs
from canopy.store.models import Stack, StackResource

TRANSPORTS = ("CFN_SIGNAL", "TEMP_URL_SIGNAL", "HEAT_SIGNAL", "NO_SIGNAL", "ZAQAR_SIGNAL")
SUPPORTED = ("CFN_SIGNAL", "NO_SIGNAL")
ACTIONS = ("CREATE", "UPDATE", "DELETE", "SUSPEND", "RESUME")
OUTPUTS = ("deploy_stdout", "deploy_stderr", "deploy_status_code")
MAX_SIGNAL_BYTES = 1 << 20  # heat-config-notify trims its result to 950000 bytes


def _isotime(step: Step) -> str:
    return step.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


class SoftwareDeployment:
    name = "OS::Heat::SoftwareDeployment"
    description = "Applies a software config to a server, through the agent on it."
    open_properties = False
    properties: Mapping[str, Prop] = {
        "config": Prop("string", "The id of the software config to apply.", update_allowed=True),
        "server": Prop("string", "The id of the server to apply it to.", required=True),
        "input_values": Prop("map", "Values of the config's inputs.", update_allowed=True),
        "actions": Prop(
            "list",
            "The actions of this resource that deploy the config: CREATE, UPDATE, DELETE, "
            "SUSPEND, RESUME.",
            default=["CREATE", "UPDATE"],
            update_allowed=True,
        ),
        "name": Prop(
            "string",
            "The derived config's name (orders the server's deployments).",
            update_allowed=True,
        ),
        "signal_transport": Prop(
            "string",
            "CFN_SIGNAL: the agent POSTs its result to a pre-signed URL; NO_SIGNAL: complete "
            "without waiting. Canopy has no Keystone stack users, Swift or Zaqar for "
            "HEAT_SIGNAL, TEMP_URL_SIGNAL or ZAQAR_SIGNAL.",
            default="CFN_SIGNAL",
            allowed=TRANSPORTS,
        ),
    }
    attributes: Mapping[str, str] = {
        "deploy_stdout": "Captured stdout from the configuration execution.",
        "deploy_stderr": "Captured stderr from the configuration execution.",
        "deploy_status_code": "Returned status code from the configuration execution.",
    }

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        transport = props.get("signal_transport")
        if transport is not None and transport not in SUPPORTED:
            raise InvalidRequest(
                f"signal_transport {transport} is not supported by canopy (it has no Keystone "
                "stack users, Swift or Zaqar): use CFN_SIGNAL (the agent POSTs its result to "
                "a pre-signed URL) or NO_SIGNAL."
            )
        actions = props.get("actions")
        if actions is not None:
            for action in actions:
                if action not in ACTIONS:
                    raise InvalidRequest(
                        f"actions: {action!r} is not one of the allowed values: "
                        + ", ".join(ACTIONS)
                        + "."
                    )
            if "DELETE" in actions and transport != "NO_SIGNAL":
                raise InvalidRequest(
                    "actions: DELETE with signal_transport CFN_SIGNAL is not supported by "
                    "canopy yet (a stack being deleted takes no signals): leave DELETE out "
                    "or use NO_SIGNAL."
                )

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    def derived_config(
        self, props: Mapping[str, Any], source: Mapping[str, Any], inputs: list[dict[str, Any]]
    ) -> Any:
        """The derived config's `config` (a structured deployment substitutes inputs)."""
        return source.get("config") or ""

    async def create(self, step: Step, res: StackResource) -> Progress:
        try:
            self.validate(res.properties, Lookups())  # known only now if referred to
        except InvalidRequest as e:
            return Progress.failure(str(e))
        res.physical_resource_id = res.id
        if res.properties.get("signal_transport") == "CFN_SIGNAL":
            token = arm(res)
            url = presigned(step.servers.settings.public_url, step.stack, res.name, token)
            res.data = {**res.data, "signal_url": url}
        return await self._deploy(step, res, "CREATE")

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        res.properties = new
        return await self._deploy(step, res, "UPDATE")

    async def delete(self, step: Step, res: StackResource) -> Progress:
        # DELETE is in `actions` only with NO_SIGNAL (validate): Heat then puts the DELETE
        # config on the server and removes the deployment at once; the row goes with it.
        return Progress.complete()

    async def check(self, step: Step, res: StackResource) -> Progress:
        if res.action == "DELETE":
            return Progress.complete()
        sd = (res.data or {}).get("sd")
        if not isinstance(sd, Mapping) or sd.get("status") == "COMPLETE":
            return Progress.complete()
        if sd.get("status") == "FAILED":
            return Progress.failure(f"Error: Deployment to server failed: {sd.get('reason')}")
        return Progress()  # the agent's signal wakes the stack

    async def _deploy(self, step: Step, res: StackResource, action: str) -> Progress:
        props = res.properties
        try:
            source = await load_source(step, props.get("config"))
            if not deploys_for(props, source, action):
                self._set_attributes(res)
                return Progress.complete()
            inputs = derived_inputs(step, res, source, action)
            config = self.derived_config(props, source, inputs)
        except InvalidRequest as e:
            return Progress.failure(str(e))
        name = props.get("name") or source.get("name") or _physical_name(step.stack, res)
        waits = props.get("signal_transport") != "NO_SIGNAL"
        old = (res.data or {}).get("sd") or {}
        res.data = {
            **res.data,
            "sd": {
                "server_id": props.get("server"),
                "action": action,
                "status": "IN_PROGRESS" if waits else "COMPLETE",
                "reason": "Deploy data available" if waits else "Not waiting for outputs signal",
                "output_values": dict(old.get("output_values") or {}),
                "config": {
                    "id": str(uuid.uuid4()),
                    "name": name,
                    "group": source.get("group") or "Heat::Ungrouped",
                    "creation_time": _isotime(step),
                    "config": config,
                    "inputs": inputs,
                    "outputs": list(source.get("outputs") or []),
                    "options": source.get("options"),
                },
            },
        }
        self._set_attributes(res)
        return await self.check(step, res)

    def _set_attributes(self, res: StackResource) -> None:
        sd = (res.data or {}).get("sd") or {}
        values = dict(sd.get("output_values") or {})
        res.attributes = {**{k: None for k in OUTPUTS}, **values}

    # Signals ----------------------------------------------------------------------------

    def check_signal(self, data: Any) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise InvalidRequest(
                "A deployment's signal is a JSON object: {deploy_stdout, deploy_stderr, "
                "deploy_status_code, and the config's outputs}."
            )
        return dict(data)

    async def signal(self, step: Step, res: StackResource, data: dict[str, Any]) -> Handled:
        """Heat's `signal_software_deployment`: output values only while IN_PROGRESS."""
        sd = dict((res.data or {}).get("sd") or {})
        if sd.get("status") != "IN_PROGRESS":
            return Handled("ignored: the deployment is not waiting for outputs")
        values = dict(sd.get("output_values") or {})
        reasons: dict[str, str] = {}
        failed = False
        code = data.get("deploy_status_code")
        if code and str(code) != "0":
            failed = True
            reasons["deploy_status_code"] = f"Deployment exited with non-zero status code: {code}"
            outcome = f"deployment {res.physical_resource_id} failed ({code})"
        else:
            outcome = f"deployment {res.physical_resource_id} succeeded"
        for output in (sd.get("config") or {}).get("outputs") or []:
            key = output.get("name") if isinstance(output, Mapping) else None
            if isinstance(key, str) and key in data:
                values[key] = data[key]
                if output.get("error_output", False):
                    failed = True
                    reasons[key] = str(data[key])
                    outcome = f"deployment {res.physical_resource_id} failed"
        for key in OUTPUTS:
            values[key] = data.get(key)
        sd["output_values"] = values
        if failed:
            sd["status"] = "FAILED"
            sd["reason"] = ", ".join(f"{k} : {v}" for k, v in reasons.items())
        else:
            sd["status"] = "COMPLETE"
            sd["reason"] = "Outputs received"
        res.data = {**res.data, "sd": sd}
        self._set_attributes(res)
        return Handled(outcome)


class StructuredDeployment(SoftwareDeployment):
    name = "OS::Heat::StructuredDeployment"
    description = "A deployment of a structured config, its get_input maps substituted."
    properties: Mapping[str, Prop] = {
        **SoftwareDeployment.properties,
        "input_key": Prop(
            "string", "The key of the maps substituted by input values.", default="get_input"
        ),
        "input_values_validate": Prop(
            "string",
            "STRICT: an input the config asks for without a value fails the deployment.",
            default="LAX",
            allowed=("LAX", "STRICT"),
        ),
    }

    def derived_config(
        self, props: Mapping[str, Any], source: Mapping[str, Any], inputs: list[dict[str, Any]]
    ) -> Any:
        values = {i["name"]: i.get("value") for i in inputs}
        return substitute(
            source.get("config") or {},
            values,
            str(props.get("input_key") or "get_input"),
            strict=props.get("input_values_validate") == "STRICT",
        )


def _physical_name(stack: Stack, res: StackResource) -> str:
    return f"{stack.name}-{res.name}-{res.id[:12]}"


DEPLOYMENT_TYPES = (SoftwareDeployment.name, StructuredDeployment.name)


def takes_deployments(res: StackResource) -> bool:
    """Whether `res` is a server whose metadata carries deployments (Heat: an
    OS::Nova::Server with user_data_format SOFTWARE_CONFIG)."""
    return (
        res.type == "OS::Nova::Server"
        and bool(res.physical_resource_id)
        and (res.properties or {}).get("user_data_format") == "SOFTWARE_CONFIG"
    )


async def project_deployments(
    session: AsyncSession, project_id: str, server_id: str | None = None
) -> list[StackResource]:
    """The project's deployment rows that have deployed (to `server_id` if given). The
    server is matched by the database (a JSON path): every server's agent polls its
    metadata, and reading all the project's deployments for each poll was O(n²)."""
    q = (
        select(StackResource)
        .join(Stack, Stack.id == StackResource.stack_id)
        .where(
            Stack.project_id == project_id,
            Stack.deleted.is_(False),
            StackResource.type.in_(DEPLOYMENT_TYPES),
        )
        .order_by(StackResource.created_at, StackResource.id)
    )
    if server_id is not None:
        q = q.where(StackResource.data[("sd", "server_id")].as_string() == server_id)
    rows = (await session.execute(q)).scalars()
    found = []
    for row in rows:
        sd = (row.data or {}).get("sd")
        if not isinstance(sd, Mapping) or not sd.get("config"):
            continue
        if server_id is None or sd.get("server_id") == server_id:
            found.append(row)
    return found


async def server_deployments(session: AsyncSession, project_id: str, server_id: str) -> list[Any]:
    """The `deployments` of a server's metadata: the derived config of each of the
    project's deployments to it (its stacks' and those made through the API), ordered by
    config name (Heat's order)."""
    rows = await project_deployments(session, project_id, server_id)
    found = [row.data["sd"]["config"] for row in rows]
    found += await server_configs(session, project_id, server_id)  # the API's own
    return sorted(found, key=lambda c: str(c.get("name") or ""))


def deployment_view(row: StackResource) -> dict[str, Any]:
    """Heat's `format_software_deployment` of a deployment row."""
    sd = (row.data or {}).get("sd") or {}
    return {
        "id": row.physical_resource_id or row.id,
        "server_id": sd.get("server_id"),
        "input_values": (row.properties or {}).get("input_values"),
        "output_values": sd.get("output_values"),
        "action": sd.get("action"),
        "status": sd.get("status"),
        "status_reason": sd.get("reason"),
        "config_id": (sd.get("config") or {}).get("id"),
        "creation_time": row.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_time": row.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
