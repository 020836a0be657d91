"""Domain errors. Drivers translate their native errors into these."""

from __future__ import annotations


class CanopyError(Exception):
    """Base of every error canopy raises on purpose."""


class InvalidRequest(CanopyError):
    """The caller asked for something malformed or impossible; nothing was changed."""


class NotFound(CanopyError):
    """The named object does not exist (or is not visible to the caller)."""


class Unauthorized(CanopyError):
    """No valid credentials or token (401)."""


class Forbidden(CanopyError):
    """Authenticated, but the role does not allow this (403)."""


class Conflict(CanopyError):
    """The request conflicts with the object's current state."""


class QuotaError(CanopyError):
    """A project quota (canopy's or a cloud's) would be exceeded."""


class CloudError(CanopyError):
    """An error reported by a cloud. `cloud` names it for explanations; `zone`, when set,
    is the zone inside that cloud it concerns (a capacity error is per zone)."""

    def __init__(self, message: str, *, cloud: str | None = None, zone: str | None = None) -> None:
        super().__init__(message)
        self.cloud = cloud
        self.zone = zone


class CapacityError(CloudError):
    """The cloud has no capacity for this request right now (e.g. InsufficientInstanceCapacity)."""


class CloudQuotaError(CloudError):
    """The cloud account's own quota is exhausted; like capacity, try elsewhere."""


class AlreadyExists(CloudError, Conflict):
    """The cloud already holds an object under this name (Nova's 409 "Key pair 'x' already
    exists", EC2's InvalidKeyPair.Duplicate); nothing was changed."""


class CloudAuthError(CloudError):
    """The cloud refused canopy's credentials (401/403, AuthFailure, an expired key): the
    cloud is unhealthy until they work again; no server's attempt is charged for it."""


class TransientError(CloudError):
    """A temporary failure (throttling, 5xx, timeout); the same call may succeed later."""


class NoAnswer(TransientError):
    """The call was sent and no answer came in time: it may still take effect on the cloud
    (a real cloud carries on with a request whose client has gone)."""


class Unsupported(CloudError):
    """The driver lacks the ability asked for; the message says why."""


class RetryLater(CanopyError):
    """Refused for now; the same request may succeed after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class Throttled(RetryLater):
    """This caller (a user, an address) is sending too much: 429 with Retry-After."""


class Overloaded(RetryLater):
    """The service is too busy to take this request now: 503 with Retry-After."""
