"""Notifications: events written to an outbox in the transaction of the change they
announce, delivered by a controller to webhooks (CloudEvents, HMAC-signed) and to AMQP (the
oslo.messaging envelope), at least once, in order per subject. docs/notifications.md is the
user's guide; this package's modules are:

- `outbox`: `emit` and the one-line helpers the services and controllers call;
- `events`: the event types and their payloads;
- `subscriptions`: subscriptions and their deliveries (create, list, replay, ...);
- `targets`: which hosts a subscription may send to (the SSRF rules);
- `webhook`, `amqp`: the two ways out; `controller`: the delivery controller.
"""
