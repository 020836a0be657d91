"""`[notifications]`: the heads-up before a lease starts, and how events are delivered."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator

_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-_")


class NotificationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # "lease.event.start_soon" this many seconds before a lease starts (0: never sent).
    lease_heads_up_seconds: float = Field(default=0.0, ge=0.0)
    # Webhook and AMQP hosts that may be private, loopback or link-local addresses: host
    # names (exact) and addresses or networks ("127.0.0.1", "10.0.0.0/8"). Any other
    # host must resolve only to public addresses (docs/notifications.md, "Where to").
    allowed_webhook_hosts: list[str] = Field(default_factory=list)
    # A delivery is dead after this many failed attempts (it can be replayed).
    max_attempts: int = Field(default=10, ge=1)
    # Between attempts: base * 2^(attempts-1), capped, times U(0.5, 1).
    backoff_base_seconds: float = Field(default=2.0, gt=0.0)
    backoff_max_seconds: float = Field(default=600.0, gt=0.0)
    timeout_seconds: float = Field(default=10.0, gt=0.0)  # per webhook POST / AMQP publish
    concurrency: int = Field(default=16, ge=1)  # sends in flight per worker
    # Sends in flight per subscription and worker: a slow receiver holds at most this
    # many of the `concurrency` slots, so the others' events keep going out.
    per_subscription: int = Field(default=4, ge=1)
    # How long a pass waits for its sends before it moves on (they finish in the
    # background, their rows held): a slow receiver never holds up the next pass.
    pass_wait_seconds: float = Field(default=0.5, ge=0.0)
    batch_size: int = Field(default=200, ge=1)  # events fanned out / deliveries per pass
    # Deliveries (delivered, skipped, dead, or pending but waiting: paused or held back),
    # and the events they were for, are kept this long (docs/notifications.md).
    retention_seconds: float = Field(default=7 * 86400.0, gt=0.0)

    @field_validator("allowed_webhook_hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        out = []
        for h in hosts:
            entry = h.strip().lower()
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not entry or not set(entry) <= _HOST_CHARS or len(entry) > 253:
                    raise ValueError(
                        f"{h!r} is neither a host name nor an address or network"
                    ) from None
            out.append(entry)
        return out
