"""What EC2 says, in canopy's vocabulary: instance states, instances, and errors.

Errors are mapped by their EC2 code (the `Error.Code` of a botocore ClientError):

- no capacity in an AZ (InsufficientInstanceCapacity, ...) -> CapacityError for that zone;
- account limits (InstanceLimitExceeded, VcpuLimitExceeded, ...) -> CloudQuotaError;
- throttling and the service's own failures -> TransientError (the runtime backs off);
- refused credentials (AuthFailure, UnauthorizedOperation, an expired token, no
  credentials at all) -> CloudAuthError: the cloud is unhealthy, no attempt is charged;
- anything else (InvalidAMIID.*, an unknown instance type, a bad key) -> CloudError with
  EC2's message: a clear fault, and no retry on this cloud.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from canopy.domain.errors import (
    AlreadyExists,
    CapacityError,
    CloudAuthError,
    CloudError,
    CloudQuotaError,
    TransientError,
)
from canopy.domain.specs import RemoteServer
from canopy.domain.states import RemoteState
from canopy.providers.base import CANOPY_ID_TAG, INSTALLATION_TAG

STATES = {
    "pending": RemoteState.PENDING,
    "running": RemoteState.RUNNING,
    "stopping": RemoteState.PENDING,
    "stopped": RemoteState.STOPPED,
    "shutting-down": RemoteState.DELETED,
    "terminated": RemoteState.DELETED,
}

CAPACITY = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientCapacity",
    }
)
QUOTA = frozenset(
    {
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
        "MaxSpotInstanceCountExceeded",
        "InsufficientFreeAddressesInSubnet",
    }
)
TRANSIENT = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ServiceUnavailable",
        "Unavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
    }
)
AUTH = frozenset(
    {
        "AuthFailure",
        "UnauthorizedOperation",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "RequestExpired",
        "OptInRequired",
        "Blocked",
        "AccessDenied",
        "MissingAuthenticationToken",
    }
)
DUPLICATE = frozenset({"InvalidKeyPair.Duplicate"})


def error_code(err: BaseException) -> str | None:
    """The EC2 error code of a botocore ClientError (None for any other exception)."""
    response = getattr(err, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def translate(err: BaseException, *, cloud: str, zone: str | None = None) -> Exception:
    """The domain error for a boto3 / botocore exception raised by a call to `cloud`."""
    from botocore.exceptions import (
        BotoCoreError,
        ConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )

    if isinstance(err, NoCredentialsError | PartialCredentialsError | ProfileNotFound):
        return CloudAuthError(f"no usable AWS credentials: {err}", cloud=cloud)
    if isinstance(err, ConnectionError | ReadTimeoutError):
        return TransientError(f"EC2 unreachable: {err}", cloud=cloud)
    code = error_code(err)
    if code is None:
        if isinstance(err, BotoCoreError):
            return TransientError(f"{type(err).__name__}: {err}", cloud=cloud)
        return err if isinstance(err, Exception) else RuntimeError(str(err))
    message = str(getattr(err, "response", {}).get("Error", {}).get("Message") or code)
    text = f"{code}: {message}"
    if code in CAPACITY:
        return CapacityError(text, cloud=cloud, zone=zone)
    if code in QUOTA:
        return CloudQuotaError(text, cloud=cloud)
    if code in AUTH:
        return CloudAuthError(text, cloud=cloud)
    if code in DUPLICATE:
        return AlreadyExists(text, cloud=cloud)
    status = getattr(err, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in TRANSIENT or (isinstance(status, int) and status >= 500):
        return TransientError(text, cloud=cloud)
    return CloudError(text, cloud=cloud)


def parse_time(value: Any) -> datetime:
    """An EC2 timestamp (ISO 8601, `2026-11-29T12:00:00.000Z`) as an aware datetime; any
    other form is left to botocore's own parser."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    from botocore.utils import parse_timestamp

    parsed_by_botocore: datetime = parse_timestamp(value)
    return parsed_by_botocore


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in instance.get("Tags") or []}


def to_remote(instance: dict[str, Any]) -> RemoteServer:
    """One instance of a DescribeInstances / RunInstances answer."""
    tags = _tags(instance)
    state = str(instance.get("State", {}).get("Name", ""))
    addresses: dict[str, list[str]] = {}
    if instance.get("PrivateIpAddress"):
        addresses["private"] = [str(instance["PrivateIpAddress"])]
    if instance.get("PublicIpAddress"):
        addresses["public"] = [str(instance["PublicIpAddress"])]
    launched = instance.get("LaunchTime")
    reason = instance.get("StateReason", {}).get("Message")
    return RemoteServer(
        remote_id=str(instance["InstanceId"]),
        canopy_id=tags.get(CANOPY_ID_TAG),
        name=tags.get("Name", ""),
        state=STATES.get(state, RemoteState.UNKNOWN),
        addresses=addresses,
        flavor=instance.get("InstanceType"),
        created_at=launched if isinstance(launched, datetime) else None,
        fault=str(reason) if reason and state in ("terminated", "shutting-down") else None,
        zone=instance.get("Placement", {}).get("AvailabilityZone"),
        installation=tags.get(INSTALLATION_TAG),
    )
