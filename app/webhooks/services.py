"""Webhook endpoints, messages and replays: what merchants (and domains) ask for.

Domains hand events to `stage_message` inside their own transaction (from an event
subscriber); each enabled endpoint of the owner that wants the type gets a delivery,
whose first attempt is staged as a job on the "webhooks" queue (app.webhooks.jobs).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from marshmallow import Schema
from sqlalchemy import Select, select

from app.api.platform import API_VERSION, document_webhook
from app.audit import record_audit
from app.database import db, utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.events import enqueue_after_commit
from app.webhooks import transport
from app.webhooks.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from app.webhooks.schemas import TestEventData
from app.webhooks.signing import generate_secret

ENDPOINT_NOT_FOUND = _l("There is no such webhook endpoint.")
MESSAGE_NOT_FOUND = _l("There is no such webhook message.")
TEST_EVENT = "webhook.test"
MAX_ENDPOINTS_PER_OWNER = 20
# The delivery job, by dotted path: app.webhooks.jobs imports this module, not the
# other way round.
ATTEMPT_DELIVERY = "app.webhooks.jobs:attempt_delivery"

# Every event type a merchant may subscribe to (domains add theirs with
# `register_event_types`), with a sentence for the portal and the docs.
EVENT_TYPES: dict[str, Any] = {}


def register_event_types(types: dict[str, Any],
                         data: Mapping[str, Schema | type[Schema]] | None = None) -> None:
    """Make event types known (name -> lazy-translated description), and document each
    in the OpenAPI document's webhooks with the schema of its `data` (by type)."""
    EVENT_TYPES.update(types)
    for name, description in types.items():
        document_webhook(name, description, (data or {}).get(name))


register_event_types({TEST_EVENT: _l("A test message you sent from the portal.")},
                     {TEST_EVENT: TestEventData})


def _check_url(url: str) -> str:
    url = (url or "").strip()
    if len(url) > 2000:
        raise ValidationFailed(_l("The address is too long."), fields={"url": ["too_long"]})
    try:
        transport.resolve(url)
    except transport.UnsafeURL as exc:
        raise ValidationFailed(exc.message, fields={"url": [exc.code]},
                               code="invalid_webhook_url") from exc
    return url


def _check_types(event_types: Iterable[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(event_types or []))
    unknown = [t for t in chosen if t not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(_l("Unknown event types: %(t)s.", t=", ".join(unknown)),
                               fields={"event_types": unknown})
    return chosen


def _live(owner_id: int) -> Select[Any]:
    return select(WebhookEndpoint).where(WebhookEndpoint.owner_id == owner_id,
                                         WebhookEndpoint.deleted_at.is_(None))


def get_endpoint(owner_id: int, endpoint_id: int) -> WebhookEndpoint:
    """One of the owner's endpoints; raises NotFound for anyone else's (or a deleted one)."""
    endpoint = db.scalar(_live(owner_id).where(WebhookEndpoint.id == endpoint_id))
    if endpoint is None:
        raise NotFound(ENDPOINT_NOT_FOUND)
    return endpoint


def list_endpoints(owner_id: int) -> list[WebhookEndpoint]:
    """The owner's endpoints, oldest first."""
    return list(db.scalars(_live(owner_id).order_by(WebhookEndpoint.id)))


def endpoints_query(owner_id: int) -> Select[Any]:
    return _live(owner_id)


def create_endpoint(owner_id: int, url: str, *, event_types: Iterable[str] | None = None,
                    description: str = "", actor_id: int | None = None) -> WebhookEndpoint:
    """Register `url` to receive the owner's events (`event_types`, or all when empty)
    with a new signing secret; audit it (flushed).

    Raises ValidationFailed for a URL the policy refuses (not http(s), http in
    production, private or loopback addresses) or unknown event types, and Conflict
    when the owner already has MAX_ENDPOINTS_PER_OWNER endpoints.
    """
    url = _check_url(url)
    types = _check_types(event_types)
    if len(list_endpoints(owner_id)) >= MAX_ENDPOINTS_PER_OWNER:
        raise Conflict(_l("You have the most endpoints allowed; delete one first."),
                       code="too_many_endpoints")
    endpoint = WebhookEndpoint(owner_id=owner_id, url=url, event_types=types,
                               description=(description or "")[:200],
                               secret=generate_secret(), enabled=True)
    db.add(endpoint)
    db.flush()
    record_audit("webhook_endpoint.created", object_type="webhook_endpoint",
                 object_id=endpoint.id, actor_id=actor_id,
                 details={"owner_id": owner_id, "url": url, "event_types": types})
    db.flush()
    return endpoint


def update_endpoint(owner_id: int, endpoint_id: int, changes: dict[str, Any], *,
                    actor_id: int | None = None) -> WebhookEndpoint:
    """Change an endpoint's url, event_types, description or enabled flag (flushed).

    Enabling it again clears its failure record. Raises NotFound and ValidationFailed
    as create_endpoint does.
    """
    endpoint = get_endpoint(owner_id, endpoint_id)
    if "url" in changes:
        endpoint.url = _check_url(changes["url"])
    if "event_types" in changes:
        endpoint.event_types = _check_types(changes["event_types"])
    if "description" in changes:
        endpoint.description = (changes["description"] or "")[:200]
    if "enabled" in changes and bool(changes["enabled"]) != endpoint.enabled:
        endpoint.enabled = bool(changes["enabled"])
        endpoint.disabled_reason = None if endpoint.enabled else "manual"
        endpoint.failing_since = None
    record_audit("webhook_endpoint.updated", object_type="webhook_endpoint",
                 object_id=endpoint.id, actor_id=actor_id,
                 details={"owner_id": owner_id, "fields": sorted(changes)})
    db.flush()
    return endpoint


def delete_endpoint(owner_id: int, endpoint_id: int, *, actor_id: int | None = None) -> None:
    """Stop sending to the endpoint for good (its log is kept); audit it (flushed).

    Raises NotFound.
    """
    endpoint = get_endpoint(owner_id, endpoint_id)
    endpoint.deleted_at = utcnow()
    endpoint.enabled = False
    endpoint.disabled_reason = "deleted"
    record_audit("webhook_endpoint.deleted", object_type="webhook_endpoint",
                 object_id=endpoint.id, actor_id=actor_id, details={"owner_id": owner_id})
    db.flush()


def rotate_secret(owner_id: int, endpoint_id: int, *, overlap_seconds: int | None = None,
                  actor_id: int | None = None) -> WebhookEndpoint:
    """Give the endpoint a new secret; the old one still signs (a second signature) for
    `overlap_seconds` (WEBHOOK_SECRET_OVERLAP, a day by default). Audits it (flushed).

    Raises NotFound.
    """
    endpoint = get_endpoint(owner_id, endpoint_id)
    if overlap_seconds is None:
        overlap_seconds = int(current_app.config.get("WEBHOOK_SECRET_OVERLAP", 86400))
    if overlap_seconds > 0:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = utcnow() + timedelta(seconds=overlap_seconds)
    else:
        endpoint.previous_secret = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret = generate_secret()
    record_audit("webhook_endpoint.secret_rotated", object_type="webhook_endpoint",
                 object_id=endpoint.id, actor_id=actor_id,
                 details={"owner_id": owner_id, "overlap_seconds": overlap_seconds})
    db.flush()
    return endpoint


def signing_secrets(endpoint: WebhookEndpoint, now: datetime | None = None) -> list[str]:
    """The secrets that sign now: the current one, and the previous during its overlap."""
    now = now or utcnow()
    out = [endpoint.secret]
    if (endpoint.previous_secret and endpoint.previous_secret_expires_at is not None
            and endpoint.previous_secret_expires_at > now):
        out.append(endpoint.previous_secret)
    return out


# -- messages -----------------------------------------------------------------------------

def _envelope(msg_id: str, event_type: str, data: dict[str, Any], at: datetime
              ) -> dict[str, Any]:
    return {"id": msg_id, "type": event_type, "api_version": API_VERSION,
            "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data}


def _deliver(message: WebhookMessage, endpoint: WebhookEndpoint) -> WebhookDelivery:
    now = utcnow()
    delivery = WebhookDelivery(message_id=message.id, endpoint_id=endpoint.id,
                               state=DeliveryState.PENDING, attempts=0, round=1,
                               next_attempt_at=now)
    db.add(delivery)
    db.flush()
    enqueue_after_commit(ATTEMPT_DELIVERY, queue="webhooks", run_after=now,
                         delivery_id=delivery.id, round=1, attempt=1)
    return delivery


def stage_message(owner_id: int, event_type: str, data: dict[str, Any], *,
                  source_event_id: str | None = None,
                  only_endpoint_id: int | None = None) -> WebhookMessage | None:
    """Record a message for the owner and stage a delivery to each enabled endpoint
    that wants `event_type` (or only to `only_endpoint_id`). Flushes; the caller
    commits, and the first attempts start after that commit.

    Returns None (and records nothing) when no endpoint would receive it, or when this
    domain event was already turned into a message for this owner.
    """
    endpoints = [e for e in list_endpoints(owner_id)
                 if e.enabled and (e.id == only_endpoint_id if only_endpoint_id is not None
                                   else e.wants(event_type))]
    if not endpoints:
        return None
    if source_event_id is not None and db.scalar(
            select(WebhookMessage.id).where(WebhookMessage.source_event_id == source_event_id,
                                            WebhookMessage.owner_id == owner_id)):
        return None
    msg_id = "msg_" + uuid.uuid4().hex
    now = utcnow()
    message = WebhookMessage(id=msg_id, owner_id=owner_id, event_type=event_type,
                             payload=_envelope(msg_id, event_type, data, now),
                             source_event_id=source_event_id, created_at=now)
    db.add(message)
    db.flush()
    for endpoint in endpoints:
        _deliver(message, endpoint)
    return message


def send_test_event(owner_id: int, endpoint_id: int, *, actor_id: int | None = None
                    ) -> WebhookMessage:
    """Send a `webhook.test` message to one endpoint (flushed; it goes out once the
    caller's unit of work commits).

    Raises NotFound, and Conflict when the endpoint is disabled.
    """
    endpoint = get_endpoint(owner_id, endpoint_id)
    if not endpoint.enabled:
        raise Conflict(_l("This endpoint is disabled. Enable it first."),
                       code="endpoint_disabled")
    message = stage_message(owner_id, TEST_EVENT,
                            {"endpoint_id": endpoint.id,
                             "note": "A test message sent from Barid."},
                            only_endpoint_id=endpoint.id)
    assert message is not None
    db.flush()
    return message


def get_message(owner_id: int, message_id: str) -> WebhookMessage:
    """One of the owner's messages; raises NotFound for anyone else's."""
    message = db.get(WebhookMessage, message_id)
    if message is None or message.owner_id != owner_id:
        raise NotFound(MESSAGE_NOT_FOUND)
    return message


def _restart(delivery: WebhookDelivery) -> None:
    now = utcnow()
    delivery.round += 1
    delivery.attempts = 0
    delivery.state = DeliveryState.PENDING
    delivery.next_attempt_at = now
    db.flush()
    enqueue_after_commit(ATTEMPT_DELIVERY, queue="webhooks", run_after=now,
                         delivery_id=delivery.id, round=delivery.round, attempt=1)


def replay_message(owner_id: int, message_id: str, *, endpoint_id: int | None = None,
                   actor_id: int | None = None) -> list[WebhookDelivery]:
    """Send a message again, with the same webhook-id and body, to one endpoint or to
    every enabled endpoint it went to; a new round of attempts begins once the caller
    commits. Flushes.

    Raises NotFound for another owner's message or endpoint and Conflict when the
    endpoint is disabled.
    """
    message = get_message(owner_id, message_id)
    if endpoint_id is not None:
        endpoint = get_endpoint(owner_id, endpoint_id)
        if not endpoint.enabled:
            raise Conflict(_l("This endpoint is disabled. Enable it first."),
                           code="endpoint_disabled")
        delivery = db.scalar(select(WebhookDelivery).where(
            WebhookDelivery.message_id == message.id,
            WebhookDelivery.endpoint_id == endpoint.id).with_for_update())
        if delivery is None:
            delivery = _deliver(message, endpoint)
        else:
            _restart(delivery)
        restarted = [delivery]
    else:
        restarted = []
        for delivery in db.scalars(select(WebhookDelivery).where(
                WebhookDelivery.message_id == message.id).with_for_update()):
            target = db.get(WebhookEndpoint, delivery.endpoint_id)
            if target is not None and target.enabled and target.deleted_at is None:
                _restart(delivery)
                restarted.append(delivery)
    record_audit("webhook_message.replayed", object_type="webhook_message",
                 object_id=message.id, actor_id=actor_id,
                 details={"owner_id": owner_id, "endpoint_id": endpoint_id,
                          "deliveries": [d.id for d in restarted]})
    db.flush()
    return restarted


def replay_failed_since(owner_id: int, endpoint_id: int, since: datetime, *,
                        actor_id: int | None = None) -> int:
    """Send again every message to the endpoint whose delivery failed, created at or
    after `since`. Flushes; returns how many were restarted.

    Raises NotFound, and Conflict when the endpoint is disabled.
    """
    endpoint = get_endpoint(owner_id, endpoint_id)
    if not endpoint.enabled:
        raise Conflict(_l("This endpoint is disabled. Enable it first."),
                       code="endpoint_disabled")
    failed = list(db.scalars(
        select(WebhookDelivery).join(WebhookMessage)
        .where(WebhookDelivery.endpoint_id == endpoint.id,
               WebhookDelivery.state == DeliveryState.FAILED,
               WebhookMessage.created_at >= since)
        .order_by(WebhookDelivery.id).with_for_update(of=WebhookDelivery)
    ).unique())
    for delivery in failed:
        _restart(delivery)
    record_audit("webhook_endpoint.replayed_failed", object_type="webhook_endpoint",
                 object_id=endpoint.id, actor_id=actor_id,
                 details={"owner_id": owner_id, "since": since.isoformat(),
                          "count": len(failed)})
    db.flush()
    return len(failed)


def attempts_query(owner_id: int, endpoint_id: int) -> Select[Any]:
    """The endpoint's attempts (for a paginated log); raises NotFound."""
    endpoint = get_endpoint(owner_id, endpoint_id)
    return select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint.id)


def recent_attempts(owner_id: int, endpoint_id: int, limit: int = 50) -> list[WebhookAttempt]:
    """The endpoint's latest attempts, newest first; raises NotFound."""
    stmt = attempts_query(owner_id, endpoint_id)
    return list(db.scalars(stmt.order_by(WebhookAttempt.id.desc()).limit(limit)))


def deliveries_of(owner_id: int, endpoint_id: int, limit: int = 50) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries (one per message), newest first."""
    endpoint = get_endpoint(owner_id, endpoint_id)
    return list(db.scalars(
        select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc()).limit(limit)).unique())


def messages_query(owner_id: int, event_type: str | None = None
                   ) -> Select[Any]:
    stmt = select(WebhookMessage).where(WebhookMessage.owner_id == owner_id)
    if event_type:
        stmt = stmt.where(WebhookMessage.event_type == event_type)
    return stmt
