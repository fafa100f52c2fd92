"""The delivery job: one attempt of one (message, endpoint), run on the "webhooks" queue.

Each attempt is its own outbox job, so the retry schedule lives in the database
(`run_after`), both executors keep it, and each attempt is claimed (its outbox row marked
done) in the same transaction that records it: an attempt is counted once, and one whose
work-horse died before the commit is simply run again.

Under rq a forked work-horse per attempt costs far more than the POST, so rq runs the
webhooks queue's jobs with `deliver_due` (app.jobs.register_queue_runner): one
work-horse drains the due attempts of its endpoint, oldest first, and those of other
endpoints beside it in a few threads, each attempt still its own claimed transaction.
One drainer per endpoint at a time (a PostgreSQL advisory lock) keeps an endpoint's
attempts in order; a drain stops at an endpoint's first failure, so a slow or broken
endpoint costs one timeout per drain and never holds the others' threads.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from flask import Flask, current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from app.api.owners import owner_contact
from app.audit import record_audit
from app.database import db, get_engine, utcnow
from app.events import JobState, OutboxJob, enqueue_after_commit
from app.jobs.context import job_context
from app.jobs.dispatch import register_queue_runner, rq_job_id
from app.jobs.runner import run_outbox_job
from app.notify import notify
from app.redisconn import get_redis
from app.webhooks import signing, transport
from app.webhooks.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
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
    # One round trip for the delivery, its endpoint and its message: under a drain the
    # database's round trips, not the POST, are most of an attempt's time.
    row = db.execute(
        select(WebhookDelivery, WebhookEndpoint, WebhookMessage)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .where(WebhookDelivery.id == delivery_id)).one_or_none()
    delivery, endpoint, message = row if row is not None else (None, None, None)
    if (delivery is None or message is None or delivery.state != DeliveryState.PENDING
            or delivery.round != round or delivery.attempts != attempt - 1):
        return
    now = utcnow()
    if endpoint is None or not endpoint.enabled or endpoint.deleted_at is not None:
        delivery.state = DeliveryState.FAILED
        delivery.next_attempt_at = None
        return
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
    _drain_state.failed = not ok
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


# -- draining: many attempts in one rq work-horse ------------------------------------------

# First key of the two-int advisory locks that make one drainer per endpoint.
DRAIN_LOCK_SPACE = 0x5748  # "WH"
QUEUE = "webhooks"
# What the last attempt_delivery of this thread did (a drain stops on a failure).
_drain_state = threading.local()


def _setting(name: str, default: float) -> float:
    return float(current_app.config.get(name, default))


def _due_jobs(limit: int, endpoint_id: int | None = None) -> dict[int, list[int]]:
    """Due pending attempt jobs, oldest first, grouped by endpoint (up to `limit`)."""
    rows = db.execute(
        select(OutboxJob.id, OutboxJob.args)
        .where(OutboxJob.queue == QUEUE, OutboxJob.state == JobState.PENDING,
               OutboxJob.task == ATTEMPT_DELIVERY, OutboxJob.run_after <= utcnow())
        .order_by(OutboxJob.id).limit(limit)
    ).all()
    delivery_ids = {int((args or {}).get("delivery_id", 0)) for _id, args in rows}
    endpoints: dict[int, int] = {
        delivery: endpoint for delivery, endpoint in db.execute(
            select(WebhookDelivery.id, WebhookDelivery.endpoint_id)
            .where(WebhookDelivery.id.in_(delivery_ids)))} if delivery_ids else {}
    out: dict[int, list[int]] = {}
    for job_id, args in rows:
        endpoint = endpoints.get(int((args or {}).get("delivery_id", 0)))
        if endpoint is not None and (endpoint_id is None or endpoint == endpoint_id):
            out.setdefault(endpoint, []).append(job_id)
    return out


def _forget_rq_copies(job_ids: list[int]) -> None:
    """Take the rq copies of outbox jobs a drain ran out of the queue, so no work-horse
    is forked just to find them done (a copy already taken by a worker finds that)."""
    url = current_app.config.get("REDIS_URL")
    if not url or not job_ids:
        return
    conn = get_redis(url)
    if conn is None:
        return
    queue = Queue(QUEUE, connection=conn)
    scheduled = ScheduledJobRegistry(queue=queue)
    try:
        with conn.pipeline() as pipe:
            for job_id in job_ids:
                rq_id = rq_job_id(job_id)
                pipe.lrem(queue.key, 0, rq_id)
                pipe.zrem(scheduled.key, rq_id)
                pipe.expire(f"rq:job:{rq_id}", 3600)
            pipe.execute()
    except Exception:  # harmless: each copy left behind is skipped when it runs
        log.warning("could not take %s ran webhook jobs out of rq", len(job_ids),
                    exc_info=True)


def _drain_endpoint(app: Flask, endpoint_id: int, deadline: float, *, wait: bool,
                    skip: int | None = None) -> int:
    """Run the endpoint's due attempts oldest first, each as its own outbox job, while
    this process is the endpoint's only drainer; returns how many ran.

    `wait`: wait for another drainer to finish (else leave the endpoint to it). Stops
    at the first attempt that fails or raises, or at `deadline`. Raises nothing.
    """
    ran = 0
    with app.app_context():
        try:
            # Autocommit: the advisory lock belongs to the connection's session, so it
            # holds across statements without leaving a transaction open meanwhile.
            with get_engine().connect().execution_options(
                    isolation_level="AUTOCOMMIT") as lock:
                postgres = lock.dialect.name == "postgresql"
                if postgres:
                    take = func.pg_advisory_lock if wait else func.pg_try_advisory_lock
                    got = lock.execute(select(take(DRAIN_LOCK_SPACE, endpoint_id))).scalar()
                    if not wait and not got:
                        return 0
                try:
                    with job_context():
                        due = _due_jobs(int(_setting("WEBHOOK_DRAIN_BATCH", 500)),
                                        endpoint_id).get(endpoint_id, [])
                    done: list[int] = []
                    for job_id in due:
                        if time.monotonic() > deadline:
                            break
                        _drain_state.failed = False
                        try:
                            claimed = run_outbox_job(job_id)
                        except Exception:
                            break  # recorded on the row by the runner; rq retries its copy
                        if job_id != skip:
                            done.append(job_id)
                        ran += claimed
                        if claimed and _drain_state.failed:
                            break  # the rest wait: one timeout per drain for a bad endpoint
                    _forget_rq_copies(done)
                finally:
                    if postgres:
                        lock.execute(select(func.pg_advisory_unlock(DRAIN_LOCK_SPACE,
                                                                    endpoint_id)))
        except Exception:
            log.exception("draining webhook endpoint %s stopped", endpoint_id)
    return ran


def deliver_due(job_id: int) -> bool:
    """rq's body for a "webhooks" outbox job: drain the due attempts of the job's
    endpoint (waiting for another drainer of it to finish) and, in up to
    WEBHOOK_DRAIN_THREADS threads beside it, those of other endpoints no one drains;
    then run the job itself if no drain did.

    Each attempt is claimed and recorded in its own transaction (run_outbox_job), so an
    interrupted drain leaves exactly the attempts it had not recorded, each with its rq
    copy. Returns what run_outbox_job returns for `job_id`, and raises what it raises.
    """
    with job_context():
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        due = _due_jobs(int(_setting("WEBHOOK_DRAIN_BATCH", 500)))
        args = db.scalar(select(OutboxJob.args).where(OutboxJob.id == job_id)) or {}
        delivery = db.get(WebhookDelivery, int(args.get("delivery_id", 0)))
        own = delivery.endpoint_id if delivery is not None else None
        threads = max(1, int(_setting("WEBHOOK_DRAIN_THREADS", 4)))
        deadline = time.monotonic() + _setting("WEBHOOK_DRAIN_SECONDS", 30)
    others = [e for e in due if e != own]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhooks") as pool:
        futures = []
        if own is not None:
            futures.append(pool.submit(_drain_endpoint, app, own, deadline, wait=True,
                                       skip=job_id))
        futures += [pool.submit(_drain_endpoint, app, e, deadline, wait=False)
                    for e in others]
        for future in futures:
            future.result()
    return run_outbox_job(job_id)


register_queue_runner(QUEUE, deliver_due)

