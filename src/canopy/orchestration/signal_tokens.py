"""Signal tokens and URLs: what lets a server (or an alarm) signal one resource of one stack.

A resource that takes signals (a wait condition handle, a scaling policy) gets a random
token when it is created. Only its SHA-256 is kept for checking (`data["signal_sha256"]`);
the token itself is handed out through the resource's attributes (`token`, `curl_cli`,
`alarm_url`), which is how the template passes it to the server's user_data, as in Heat.
The token is bound to one resource row of one stack: it signals nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import quote

from canopy.store.models import Stack, StackResource

TOKEN_PARAM = "signal_token"  # the query parameter of a pre-signed URL
MAX_TOKEN = 128


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def matches(res: StackResource, token: str | None) -> bool:
    """Whether `token` is this resource's signal token (constant time)."""
    kept = (res.data or {}).get("signal_sha256")
    if not token or not isinstance(kept, str) or len(token) > MAX_TOKEN:
        return False
    return hmac.compare_digest(kept, digest(token))


def endpoint(public_url: str, stack: Stack, resource_name: str) -> str:
    """The resource's signal route (Heat's `.../resources/{name}/signal`)."""
    return (
        f"{public_url.rstrip('/')}/orchestration/v1/{stack.project_id}/stacks/"
        f"{quote(stack.name, safe='')}/{stack.id}/resources/{quote(resource_name, safe='')}/signal"
    )


def presigned(public_url: str, stack: Stack, resource_name: str, token: str) -> str:
    """A URL that signals the resource with a plain POST: the token is in it."""
    return f"{endpoint(public_url, stack, resource_name)}?{TOKEN_PARAM}={token}"


def curl_cli(url: str, token: str) -> str:
    """Heat's `curl_cli` prefix: append `--data-binary '{"status": "SUCCESS"}'`."""
    return (
        f"curl -i -X POST -H 'X-Auth-Token: {token}' -H 'Content-Type: application/json' "
        f"-H 'Accept: application/json' {url}"
    )


def arm(res: StackResource) -> str:
    """Give `res` a fresh token (its digest kept in `data`) and return the token."""
    token = new_token()
    data: dict[str, Any] = dict(res.data or {})
    data["signal_sha256"] = digest(token)
    res.data = data
    return token
