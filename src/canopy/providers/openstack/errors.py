"""A child OpenStack's errors in canopy's domain errors.

- 401, or Keystone refusing the credentials: CloudAuthError (the cloud is unhealthy);
- 403 "Quota exceeded ..." (Nova's over quota): CloudQuotaError (try elsewhere);
- 403 otherwise (a policy refusal): CloudAuthError;
- 501 (an API the child does not implement): Unsupported, never retried;
- 409 (a task in progress, a state conflict), 413 / 429 (rate limits), 5xx, a refused
  or reset connection, a timeout: TransientError (retried with backoff);
- "No valid host was found" (a server's fault, not an HTTP error): CapacityError, so
  failover moves on (see driver.py);
- 400 "marker [<id>] not found" for the marker a listing asked with: MarkerNotFound (the
  server it names left Nova's database between two pages; paging.py pages on without it);
- any other 4xx (an unknown flavor or image ...): CloudError (the attempt fails).

A 404 is not an error here: the driver asks for it where it means "gone".
"""

from __future__ import annotations

import json
from typing import Any

from canopy.domain.errors import (
    AlreadyExists,
    CloudAuthError,
    CloudError,
    CloudQuotaError,
    TransientError,
    Unsupported,
)


class MarkerNotFound(CloudError):
    """Nova's 400 "marker [<id>] not found": the server a page was asked to follow is no
    longer in Nova's database (see paging.py)."""


def fault_of(body: str) -> str:
    """The message of a Nova or Keystone fault body ({"badRequest": {"message": ..}},
    {"error": {"message": ..}}), else the body's start."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body.strip()[:300]
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
    return body.strip()[:300]


def from_status(
    status: int,
    message: str,
    *,
    cloud: str,
    operation: str,
    zone: str | None = None,
    duplicate: bool = False,
    marker: str | None = None,
) -> CloudError:
    """The domain error for an HTTP error answer of the child's API. With `duplicate`,
    a 409 means the name is taken (a keypair import): AlreadyExists. With `marker` (a
    listing's), a 400 saying that marker is not found (Nova's servers, flavors, keypairs:
    "marker [<id>] not found") is MarkerNotFound; any other 400 stays a CloudError."""
    what = f"cloud {cloud!r}: {operation} failed: {status} {message}".rstrip()
    lowered = message.lower()
    if (
        status == 400
        and marker is not None
        and lowered.strip() == f"marker [{marker.lower()}] not found"
    ):
        return MarkerNotFound(what, cloud=cloud, zone=zone)
    if status == 409 and duplicate:
        return AlreadyExists(what, cloud=cloud, zone=zone)
    if status == 401:
        return CloudAuthError(what, cloud=cloud, zone=zone)
    if status == 403:
        if "quota" in lowered:
            return CloudQuotaError(what, cloud=cloud, zone=zone)
        return CloudAuthError(what, cloud=cloud, zone=zone)
    if status in (413, 429):
        if "quota" in lowered:
            return CloudQuotaError(what, cloud=cloud, zone=zone)
        return TransientError(what, cloud=cloud, zone=zone)
    if status == 501:
        # Not Implemented is an answer, not an outage: retrying cannot change it (a child
        # canopy answers 501 to the hypervisor views, for one).
        return Unsupported(what, cloud=cloud, zone=zone)
    if status == 409 or status >= 500:
        return TransientError(what, cloud=cloud, zone=zone)
    return CloudError(what, cloud=cloud, zone=zone)


def from_exception(e: Exception, *, cloud: str, operation: str) -> CloudError:
    """The domain error for an exception keystoneauth or openstacksdk raised before (or
    instead of) an HTTP answer: refused credentials, no endpoint, a connection failure."""
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk

    if isinstance(e, CloudError):
        return e
    what = f"cloud {cloud!r}: {operation} failed: {type(e).__name__}: {e}"
    if isinstance(e, ks.http.HttpError):
        return from_status(
            int(e.http_status or 500), str(e.message or e), cloud=cloud, operation=operation
        )
    if isinstance(e, sdk.HttpException) and e.status_code is not None:
        return from_status(
            int(e.status_code), str(e.details or e), cloud=cloud, operation=operation
        )
    if isinstance(e, ks.AuthorizationFailure | ks.MissingAuthPlugin | ks.NoMatchingPlugin):
        return CloudAuthError(what, cloud=cloud)
    if isinstance(e, ks.EndpointNotFound | ks.CatalogException | sdk.ConfigException):
        # The credentials work but the catalog has no compute endpoint for this region, or
        # the clouds.yaml entry is unusable: nothing a retry fixes, the cloud is unusable.
        return CloudAuthError(what, cloud=cloud)
    if isinstance(e, ks.ConnectionError | ks.RetriableConnectionFailure | OSError | TimeoutError):
        return TransientError(what, cloud=cloud)
    if isinstance(e, sdk.SDKException):
        return CloudError(what, cloud=cloud)
    return TransientError(what, cloud=cloud)
