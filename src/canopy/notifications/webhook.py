"""Webhooks: a CloudEvents 1.0 structured-mode JSON body, signed with HMAC-SHA256.

The signature covers the timestamp and the exact body bytes:

    X-Canopy-Timestamp: <unix seconds>
    X-Canopy-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>." + body)>

A receiver recomputes it over the bytes it received, compares in constant time, and
refuses a timestamp too far from its own clock (a replayed request). `verify` is that
check, as docs/notifications.md shows a receiver doing it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from canopy import __version__
from canopy.notifications.events import iso
from canopy.store.models import OutboxEvent

SIGNATURE = "X-Canopy-Signature"
TIMESTAMP = "X-Canopy-Timestamp"
DELIVERY = "X-Canopy-Delivery"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
TOLERANCE_SECONDS = 300


class DeliveryFailed(Exception):
    """The receiver did not take the event (the message says why, for `last_error`)."""


def cloudevent(event: OutboxEvent) -> dict[str, Any]:
    """The event as a CloudEvents 1.0 structured-mode document."""
    return {
        "specversion": "1.0",
        "id": event.event_id,  # the same on every retry and replay: receivers dedupe by it
        "source": "canopy",
        "type": event.event_type,
        "subject": event.subject,
        "time": iso(event.created_at),
        "datacontenttype": "application/json",
        # Extensions: the outbox position (increases with each event of a subject) and
        # the project the event belongs to.
        "sequence": str(event.id),
        "projectid": event.project_id,
        "data": event.payload,
    }


def body(event: OutboxEvent) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(cloudevent(event), separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, content: bytes) -> str:
    """The X-Canopy-Signature value for `content` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + content, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    content: bytes,
    timestamp: str | None,
    signature: str | None,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """A receiver's check: the signature matches and the timestamp is recent."""
    if not timestamp or not signature:
        return False
    # ASCII digits only ('²' is a digit to str.isdigit), few enough to be a float.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 20:
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), content), signature)


def headers(secret: str, timestamp: int, content: bytes, delivery_id: int) -> dict[str, str]:
    return {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": f"canopy/{__version__}",
        TIMESTAMP: str(timestamp),
        SIGNATURE: sign(secret, timestamp, content),
        DELIVERY: str(delivery_id),
    }


async def post(client: httpx.AsyncClient, url: str, content: bytes, head: dict[str, str]) -> None:
    """POST one event; any answer but a 2xx is a failure (redirects are not followed)."""
    try:
        r = await client.post(url, content=content, headers=head, follow_redirects=False)
    except httpx.TimeoutException:
        raise DeliveryFailed("no answer in time") from None
    except httpx.HTTPError as e:
        raise DeliveryFailed(f"{type(e).__name__}: {e}"[:500]) from None
    if not 200 <= r.status_code < 300:
        text = r.text[:200].strip()
        if 300 <= r.status_code < 400:
            text = "redirects are not followed"
        raise DeliveryFailed(f"HTTP {r.status_code}: {text}" if text else f"HTTP {r.status_code}")
