"""AMQP: events in the oslo.messaging notification envelope, on a topic exchange.

What OpenStack's consumers (Ceilometer, Searchlight, a service's own listeners) read:

    {"oslo.version": "2.0",
     "oslo.message": "<JSON of {message_id, publisher_id, event_type, priority,
                                payload, timestamp}>"}

published to a topic exchange (declared as oslo.messaging declares it: not durable, not
auto-deleted) with routing key `<topic>.<priority>` (`notifications.info`, or
`notifications.error` for errors) unless the subscription names its own. The broker
confirms each message (publisher confirms) before the delivery counts as done.
aio-pika is imported only when an AMQP subscription is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from canopy.notifications.webhook import DeliveryFailed
from canopy.store.models import OutboxEvent

if TYPE_CHECKING:
    from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

DEFAULT_EXCHANGE = "canopy"
DEFAULT_TOPIC = "notifications"
# oslo's timestamp: str(datetime.utcnow()), naive UTC.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def priority(event_type: str) -> str:
    """The oslo priority of an event: ERROR for failures, INFO otherwise."""
    return "ERROR" if event_type.endswith(".error") else "INFO"


def routing_key(event_type: str, configured: str | None) -> str:
    return configured or f"{DEFAULT_TOPIC}.{priority(event_type).lower()}"


def envelope(event: OutboxEvent) -> dict[str, Any]:
    """The oslo.messaging 2.0 envelope of an event."""
    message = {
        "message_id": event.event_id,
        "publisher_id": f"canopy.{event.event_type.split('.', 1)[0]}",
        "event_type": event.event_type,
        "priority": priority(event.event_type),
        "payload": event.payload,
        "timestamp": event.created_at.strftime(TIMESTAMP_FORMAT),
    }
    return {"oslo.version": "2.0", "oslo.message": json.dumps(message)}


class _Link:
    def __init__(self, connection: AbstractConnection, channel: AbstractChannel) -> None:
        self.connection = connection
        self.channel = channel
        self.exchanges: dict[str, AbstractExchange] = {}


class Publisher:
    """One connection per subscription, kept open between passes and reopened on error."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._links: dict[str, _Link] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def publish(
        self, key: str, url: str, exchange: str, route: str, event: OutboxEvent, secret: str
    ) -> None:
        """Publish `event` through the link `key` (a subscription) to `url`.

        `secret` (the URL's password) is scrubbed from any error message."""
        try:
            async with self._locks.setdefault(key, asyncio.Lock()):
                await asyncio.wait_for(
                    self._publish(key, url, exchange, route, event), self.timeout
                )
        except DeliveryFailed:
            raise
        except Exception as e:
            await self.drop(key)
            text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            if secret:
                text = text.replace(secret, "***")
            raise DeliveryFailed(text[:500]) from None

    async def _publish(
        self, key: str, url: str, exchange: str, route: str, event: OutboxEvent
    ) -> None:
        import aio_pika

        link = self._links.get(key)
        if link is None or link.connection.is_closed:
            connection = await aio_pika.connect(url, timeout=self.timeout)
            channel = await connection.channel(publisher_confirms=True)
            link = self._links[key] = _Link(connection, channel)
        ex = link.exchanges.get(exchange)
        if ex is None:
            ex = await link.channel.declare_exchange(
                exchange, aio_pika.ExchangeType.TOPIC, durable=False, auto_delete=False
            )
            link.exchanges[exchange] = ex
        message = aio_pika.Message(
            json.dumps(envelope(event)).encode(),
            content_type="application/json",
            content_encoding="utf-8",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.event_id,
        )
        # Not mandatory: like oslo, a message no queue is bound for is not an error.
        await ex.publish(message, route, mandatory=False, timeout=self.timeout)

    async def drop(self, key: str) -> None:
        link = self._links.pop(key, None)
        if link is not None:
            with contextlib.suppress(Exception):
                await link.connection.close()

    async def close(self) -> None:
        for key in list(self._links):
            await self.drop(key)
