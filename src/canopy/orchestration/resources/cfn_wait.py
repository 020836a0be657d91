"""AWS::CloudFormation::WaitConditionHandle and AWS::CloudFormation::WaitCondition.

As Heat's: the handle has no properties and its Ref is a pre-signed URL, which a server's
user data passes to `cfn-signal -e 0 -r "reason" 'URL'` (heat-cfntools), or PUTs to with curl,
a body of exactly `{"Status", "Reason", "UniqueId", "Data"}`, Status SUCCESS or FAILURE
(anything else: Heat's "Metadata format invalid", a 400 that writes nothing). A repeated
UniqueId replaces the earlier signal. Canopy's URL is the resource's own signal route with
its signal token in the query (`signal_tokens.presigned`): bound to that one handle, and
the only credential the PUT needs, as Heat's EC2-signed heat-api-cfn URL is.

The signals are kept on the handle as the native handle keeps them, so the wait condition
is the native one with Heat's CFN names: Handle, Timeout (an integer of seconds, 1..43200),
Count (updatable in place: the wait starts again), attribute Data. As in Heat, the CFN wait
condition takes only a CFN handle; OS::Heat::WaitCondition takes either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from canopy.domain.errors import InvalidRequest
from canopy.orchestration.resources.base import Progress, Prop, Step
from canopy.orchestration.resources.signalling import Handled
from canopy.orchestration.resources.wait import (
    CFN_HANDLE,
    WaitCondition,
    WaitConditionHandle,
    live_handle,
)
from canopy.orchestration.signal_tokens import arm, presigned
from canopy.store.models import StackResource

KEYS = frozenset({"Status", "Reason", "UniqueId", "Data"})
INVALID = "Metadata format invalid"


class CfnWaitConditionHandle(WaitConditionHandle):
    name = CFN_HANDLE
    description = (
        "A handle whose Ref is a pre-signed URL a server signals (cfn-signal, or curl -X PUT) "
        "to complete an AWS::CloudFormation::WaitCondition."
    )
    properties: Mapping[str, Prop] = {}
    attributes: Mapping[str, str] = {}

    def reference(self, res: StackResource) -> Any:
        return (res.data or {}).get("url") or None

    async def create(self, step: Step, res: StackResource) -> Progress:
        token = arm(res)
        url = presigned(step.servers.settings.public_url, step.stack, res.name, token)
        res.physical_resource_id = res.id
        # The URL holds the token: it is kept in `data` (never shown by the API), not in
        # the attributes, and handed out only as the Ref, which is where Heat hands it out.
        res.data = {**res.data, "signals": {}, "url": url}
        return Progress.complete()

    def check_signal(self, data: Any) -> dict[str, Any]:
        """Heat's check of a CFN signal, then the native handle's shape of it."""
        if data is None:
            return {}  # Heat's AWS handle ignores an empty signal
        if not isinstance(data, Mapping) or set(data) != KEYS:
            raise InvalidRequest(
                f"{INVALID}: a signal is a JSON object of exactly "
                "Status, Reason, UniqueId and Data."
            )
        status = data["Status"]
        if status not in ("SUCCESS", "FAILURE"):
            raise InvalidRequest(f"{INVALID}: Status must be SUCCESS or FAILURE.")
        unique = data["UniqueId"]
        if isinstance(unique, bool) or not isinstance(unique, str | int | float):
            raise InvalidRequest(f"{INVALID}: UniqueId must be a string or a number.")
        reason = data["Reason"]
        return {
            "status": status,
            "reason": reason if isinstance(reason, str) else json.dumps(reason),
            "data": data["Data"],
            "id": str(unique),
        }

    async def signal(self, step: Step, res: StackResource, data: dict[str, Any]) -> Handled:
        if not data:
            return Handled("ignored: an empty signal")
        return await super().signal(step, res, data)


class CfnWaitCondition(WaitCondition):
    name = "AWS::CloudFormation::WaitCondition"
    description = "Waits for Count SUCCESS signals on a WaitConditionHandle's URL, or fails."
    HANDLE, TIMEOUT, COUNT, DATA = "Handle", "Timeout", "Count", "Data"
    properties: Mapping[str, Prop] = {
        "Handle": Prop("string", "The WaitConditionHandle's Ref (its URL).", required=True),
        "Timeout": Prop(
            "integer",
            "Seconds to wait for the signals (1..43200); a change replaces the condition.",
            required=True,
        ),
        "Count": Prop(
            "integer",
            "How many SUCCESS signals to wait for; changed in place (the wait starts again).",
            default=1,
            update_allowed=True,
        ),
    }
    attributes: Mapping[str, str] = {
        "Data": "JSON: each signal's Data by its UniqueId.",
    }

    async def find_handle(self, step: Step, ref: Any) -> StackResource | None:
        return await live_handle(step, ref, native=False, cfn=True)

    def not_a_handle(self, ref: Any) -> str:
        # Heat's words; the handle by its name only: the URL holds its token.
        return f"WaitCondition invalid Handle {_resource_name(ref)}"


def _resource_name(url: Any) -> str:
    """The resource a signal URL names (`.../resources/{name}/signal`), else ''."""
    if not isinstance(url, str):
        return ""
    parts = urlsplit(url).path.rstrip("/").split("/")
    if len(parts) >= 3 and parts[-1] == "signal" and parts[-3] == "resources":
        return unquote(parts[-2])[:255]
    return ""
