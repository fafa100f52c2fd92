"""The delivery job: one attempt of one (message, endpoint), run on the "webhooks" queue.

Each attempt is its own outbox job, so the retry schedule lives in the database
(`run_after`) and both executors keep it, and a slow endpoint only ever occupies the one
job trying it: other endpoints' attempts run beside it on other workers.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from app.api.owners import owner_contact
from app.audit import record_audit
from app.database import db, utcnow
from app.events import enqueue_after_commit
from app.notify import notify
from app.webhooks import signing, transport
from app.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.webhooks.services import ATTEMPT_DELIVERY, signing_secrets
from app.webhooks.settings import DEFAULT_SCHEDULE

log = logging.getLogger("barid.webhooks")

RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 86400


def schedule() -> list[float]:
    return [float(s) for s in current_app.config.get("WEBHOOK_RETRY_SCHEDULE",
                                                     DEFAULT_SCHEDULE)]


def next_delay(attempt: int, status: int | None, retry_after: int | None) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when the schedule is done.

    Jitter of WEBHOOK_JITTER (±10 % by default) spreads the retries of many messages
    that failed together; a 429/502/503/504 with Retry-After waits at least that long.
    """
    plan = schedule()
    if attempt >= len(plan):
        return None
    delay = plan[attempt]
    jitter = float(current_app.config.get("WEBHOOK_JITTER", 0.1))
    if delay and jitter:
        delay *= 1 + random.uniform(-jitter, jitter)
    if status in RETRY_AFTER_STATUSES and retry_after is not None:
        delay = max(delay, float(min(retry_after, MAX_RETRY_AFTER)))
    return delay


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _tell_owner(endpoint: WebhookEndpoint, why: str) -> None:
    email, phone = owner_contact(endpoint.owner_id)
    texts = {}
    for lang in ("ar", "en"):
        with force_locale(lang):
            if why == "gone":
                reason = _("it answered 410 Gone")
            else:
                reason = _("every delivery to it failed for several days")
            texts[lang] = (
                _("Barid: webhook endpoint disabled"),
                _("We stopped sending events to %(url)s because %(reason)s. Fix it and "
                  "enable it again in the merchant portal; you can then replay the "
                  "messages it missed.", url=endpoint.url, reason=reason),
            )
    notify(email=email, phone=phone, subject=f"{texts['ar'][0]} / {texts['en'][0]}",
           body=f"{texts['ar'][1]}\n\n{texts['en'][1]}")


def _disable(endpoint: WebhookEndpoint, why: str) -> None:
    endpoint.enabled = False
    endpoint.disabled_reason = why
    record_audit("webhook_endpoint.disabled", object_type="webhook_endpoint",
                 object_id=endpoint.id, details={"owner_id": endpoint.owner_id, "why": why})
    _tell_owner(endpoint, why)
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, why)


def attempt_delivery(delivery_id: int, round: int, attempt: int) -> None:
    """Job: try delivery `delivery_id` once (attempt `attempt` of round `round`).

    Signs and POSTs the message, records a WebhookAttempt, and then: 2xx marks the
    delivery succeeded; 410 disables the endpoint (and tells the owner); any other
    failure stages the next attempt after the schedule's delay (at least Retry-After on
    429/502/503/504), or marks the delivery failed when the schedule is done. An
    endpoint failing for WEBHOOK_DISABLE_AFTER (5 days) is disabled. A job of an
    earlier round, or one already done, changes nothing. Raises nothing for network
    trouble; the job's transaction is committed by the runner.
    """
    delivery = db.get(WebhookDelivery, delivery_id)
    if (delivery is None or delivery.state != DeliveryState.PENDING
            or delivery.round != round or delivery.attempts != attempt - 1):
        return
    endpoint = db.get(WebhookEndpoint, delivery.endpoint_id)
    now = utcnow()
    if endpoint is None or not endpoint.enabled or endpoint.deleted_at is not None:
        delivery.state = DeliveryState.FAILED
        delivery.next_attempt_at = None
        return
    message = delivery.message
    body = body_of(message.payload)
    # No row lock during the network call (a replay would wait behind a slow endpoint);
    # the outbox claim already makes this job run once, and the round is checked again
    # under the lock afterwards.
    url = endpoint.url
    secrets_ = signing_secrets(endpoint)
    timeout = float(current_app.config.get("WEBHOOK_TIMEOUT", 10))
    headers = signing.headers(secrets_, message.id, int(time.time()), body)
    try:
        outcome = transport.post(url, body, headers, timeout)
    except transport.UnsafeURL as exc:
        outcome = transport.Outcome(None, 0, "", f"refused: {exc.code}")
    now = utcnow()
    ok = outcome.status is not None and 200 <= outcome.status < 300
    db.refresh(delivery, with_for_update=True)
    current = delivery.round == round and delivery.state == DeliveryState.PENDING
    record = WebhookAttempt(
        delivery_id=delivery.id, endpoint_id=endpoint.id, message_id=message.id,
        attempt_number=attempt, round=round, attempted_at=now, succeeded=ok,
        status_code=outcome.status, latency_ms=outcome.latency_ms,
        response_excerpt=outcome.excerpt[:transport.EXCERPT_BYTES], error=outcome.error,
        url=url,
    )
    db.add(record)
    if not current:
        return  # replayed meanwhile: the new round decides what happens next
    delivery.attempts = attempt
    delivery.last_status_code = outcome.status
    if ok:
        delivery.state = DeliveryState.SUCCEEDED
        delivery.next_attempt_at = None
        if endpoint.failing_since is not None:
            endpoint.failing_since = None
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    disable_after = timedelta(seconds=float(
        current_app.config.get("WEBHOOK_DISABLE_AFTER", 5 * 86400)))
    if outcome.status == 410:
        _fail(delivery)
        _disable(endpoint, "gone")
        return
    if now - endpoint.failing_since >= disable_after:
        _fail(delivery)
        _disable(endpoint, "failing")
        return
    delay = next_delay(attempt, outcome.status, outcome.retry_after)
    if delay is None:
        _fail(delivery)
        return
    when = now + timedelta(seconds=delay)
    delivery.next_attempt_at = when
    record.next_attempt_at = when
    enqueue_after_commit(ATTEMPT_DELIVERY, queue="webhooks", run_after=when,
                         delivery_id=delivery.id, round=round, attempt=attempt + 1)


def _fail(delivery: WebhookDelivery) -> None:
    delivery.state = DeliveryState.FAILED
    delivery.next_attempt_at = None
