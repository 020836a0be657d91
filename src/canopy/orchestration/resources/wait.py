"""OS::Heat::WaitConditionHandle and OS::Heat::WaitCondition.

The handle hands out a signal token and URL (`token`, `endpoint`, `curl_cli`, `signal`);
a server's user_data curls it (Heat's `wc_notify` pattern). Each signal is
`{"status": "SUCCESS"|"FAILURE", "reason", "data", "id"}` (missing fields defaulted as Heat
does: SUCCESS, "Signal N received", null, N); signals are kept on the handle keyed by id, so
a repeated id counts once. The wait condition completes when `count` SUCCESS signals have
arrived, fails at the first FAILURE (with its reason) or when `timeout` seconds pass; an
update in place (a new `count`) waits again, its timeout counted from the update, as in Heat.
As Heat's, the wait condition also takes a CFN handle (its Ref, the pre-signed URL):
cfn_wait.py's types are these two with Heat's CFN names and signal format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Lookups, Progress, Prop, Step, updatable
from canopy.orchestration.resources.signalling import Handled
from canopy.orchestration.signal_tokens import arm, curl_cli, endpoint
from canopy.orchestration.states import Desired
from canopy.store.models import StackResource

MAX_SIGNALS = 1000  # distinct ids kept per handle
MAX_TIMEOUT = 12 * 3600  # seconds (Heat: 43200)
TRANSPORTS = ("TOKEN_SIGNAL", "HEAT_SIGNAL")


class WaitConditionHandle:
    name = "OS::Heat::WaitConditionHandle"
    description = "A handle a server signals (with curl) to complete a wait condition."
    open_properties = False
    properties: Mapping[str, Prop] = {
        "signal_transport": Prop(
            "string",
            "TOKEN_SIGNAL (a token in X-Auth-Token) or HEAT_SIGNAL (the same route with "
            "a Keystone token); canopy has neither Swift, Zaqar nor the CFN API.",
            default="TOKEN_SIGNAL",
            allowed=TRANSPORTS,
        ),
    }
    attributes: Mapping[str, str] = {
        "token": "The token to send as X-Auth-Token to the endpoint.",
        "endpoint": "The URL to POST a signal to.",
        "curl_cli": 'A curl command prefix; add --data-binary \'{"status": "SUCCESS"}\'.',
        "signal": "JSON: the endpoint and token, as a map.",
    }

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        return None

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    async def create(self, step: Step, res: StackResource) -> Progress:
        token = arm(res)
        url = endpoint(step.servers.settings.public_url, step.stack, res.name)
        res.physical_resource_id = res.id
        res.data = {**res.data, "signals": {}}
        res.attributes = {
            "token": token,
            "endpoint": url,
            "curl_cli": curl_cli(url, token),
            "signal": json.dumps({"endpoint": url, "token": token}),
        }
        return Progress.complete()

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        res.properties = new
        return Progress.complete()

    async def delete(self, step: Step, res: StackResource) -> Progress:
        return Progress.complete()

    async def check(self, step: Step, res: StackResource) -> Progress:
        return Progress.complete()

    def check_signal(self, data: Any) -> dict[str, Any]:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise InvalidRequest("Metadata format invalid: a signal is a JSON object.")
        status = data.get("status", "SUCCESS")
        if status not in ("SUCCESS", "FAILURE"):
            raise InvalidRequest(
                f"Metadata format invalid: status must be SUCCESS or FAILURE, not {status!r}."
            )
        out = dict(data)
        out["status"] = status
        if out.get("reason") is not None and not isinstance(out["reason"], str):
            out["reason"] = json.dumps(out["reason"])
        if out.get("id") is not None and not isinstance(out["id"], str | int):
            raise InvalidRequest("Metadata format invalid: id must be a string or a number.")
        return out

    async def signal(self, step: Step, res: StackResource, data: dict[str, Any]) -> Handled:
        kept: dict[str, Any] = dict((res.data or {}).get("signals") or {})
        number = len(kept) + 1
        sid = str(data["id"]) if data.get("id") is not None else str(number)
        entry = {
            "status": data.get("status", "SUCCESS"),
            "reason": data.get("reason") or f"Signal {number} received",
            "data": data.get("data"),
            "id": sid,
        }
        if sid not in kept and len(kept) >= MAX_SIGNALS:
            return Handled(f"ignored: the handle keeps at most {MAX_SIGNALS} signals")
        repeated = sid in kept
        kept[sid] = entry
        res.data = {**res.data, "signals": kept}
        note = " (a repeated id: counted once)" if repeated else ""
        return Handled(f"status:{entry['status']} reason:{entry['reason']}{note}")


class WaitCondition:
    name = "OS::Heat::WaitCondition"
    description = "Waits for `count` SUCCESS signals on a handle, or fails."
    open_properties = False
    # The property and attribute names (AWS::CloudFormation::WaitCondition capitalises them).
    HANDLE, TIMEOUT, COUNT, DATA = "handle", "timeout", "count", "data"
    properties: Mapping[str, Prop] = {
        "handle": Prop("string", "A WaitConditionHandle (get_resource).", required=True),
        "timeout": Prop("number", "Seconds to wait before failing.", required=True),
        "count": Prop(
            "integer", "How many SUCCESS signals to wait for.", default=1, update_allowed=True
        ),
    }
    attributes: Mapping[str, str] = {
        "data": "JSON: each signal's data by its id.",
    }

    def reference(self, res: StackResource) -> Any:
        return res.physical_resource_id or None

    def validate(self, props: Mapping[str, Any], known: Lookups) -> None:
        timeout, count = props.get(self.TIMEOUT), props.get(self.COUNT)
        if timeout is not None and not 1 <= timeout <= MAX_TIMEOUT:
            raise InvalidRequest(f"{self.TIMEOUT} must be between 1 and {MAX_TIMEOUT} seconds.")
        if count is not None and count < 1:
            raise InvalidRequest(f"{self.COUNT} must be at least 1.")

    def in_place(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        return updatable(self.properties, old, new)

    async def create(self, step: Step, res: StackResource) -> Progress:
        try:
            self.validate(res.properties, Lookups())  # known only now if referred to
        except InvalidRequest as e:
            return Progress.failure(str(e))
        res.physical_resource_id = res.id
        return await self._wait(step, res)

    async def update(self, step: Step, res: StackResource, new: dict[str, Any]) -> Progress:
        # As Heat: an update (a new count) waits again, its timeout counted from now.
        res.properties = new
        return await self._wait(step, res)

    async def _wait(self, step: Step, res: StackResource) -> Progress:
        deadline = step.clock.now() + timedelta(seconds=float(res.properties[self.TIMEOUT]))
        res.data = {**res.data, "deadline": deadline.isoformat()}
        return await self.check(step, res)

    async def delete(self, step: Step, res: StackResource) -> Progress:
        return Progress.complete()

    async def find_handle(self, step: Step, ref: Any) -> StackResource | None:
        """The handle `ref` names in this stack: a native handle by its id, or (as Heat's
        resource_by_refid finds it) a CFN handle by its pre-signed URL."""
        return await live_handle(step, ref, cfn=True)

    def not_a_handle(self, ref: Any) -> str:
        return f"{ref} is not a valid wait condition handle."

    async def check(self, step: Step, res: StackResource) -> Progress:
        if res.action == "DELETE":
            return Progress.complete()
        ref = res.properties.get(self.HANDLE)
        handle = await self.find_handle(step, ref)
        if handle is None:
            return Progress.failure(self.not_a_handle(ref))
        signals = list(((handle.data or {}).get("signals") or {}).values())
        res.attributes = {
            self.DATA: json.dumps({s["id"]: s.get("data") for s in signals}),
        }
        failed = [s["reason"] for s in signals if s.get("status") == "FAILURE"]
        if failed:
            return Progress.failure("WaitConditionFailure: " + ";".join(failed))
        good = [s["reason"] for s in signals if s.get("status") == "SUCCESS"]
        count = int(res.properties.get(self.COUNT) or 1)
        if len(good) >= count:
            return Progress.complete()
        deadline = datetime.fromisoformat(res.data["deadline"])
        if step.clock.now() >= deadline:
            return Progress.failure(f"WaitConditionTimeout: {len(good)} of {count} received")
        return Progress(until=deadline)


CFN_HANDLE = "AWS::CloudFormation::WaitConditionHandle"


async def live_handle(
    step: Step, ref: Any, native: bool = True, cfn: bool = False
) -> StackResource | None:
    """The live handle of this stack that `ref` names: a native one by its physical id,
    a CFN one by its Ref (its pre-signed URL, kept in `data["url"]`)."""
    if not isinstance(ref, str) or not ref:
        return None
    kinds = [WaitConditionHandle.name] * native + [CFN_HANDLE] * cfn
    rows = (
        await step.session.execute(
            select(StackResource).where(
                StackResource.stack_id == step.stack.id,
                StackResource.type.in_(kinds),
                StackResource.desired == Desired.PRESENT,
            )
        )
    ).scalars()
    for row in rows:
        if row.type == WaitConditionHandle.name and row.physical_resource_id == ref:
            return row
        if row.type == CFN_HANDLE and (row.data or {}).get("url") == ref:
            return row
    return None
