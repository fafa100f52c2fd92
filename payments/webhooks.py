"""Stripe webhooks: verify on the raw body, store each event once, process in a job.

The request only verifies and stores; the job re-fetches the PaymentIntent from Stripe
and brings the payment in line with it, so an event that arrives twice, late or out
of order changes the payment once and never backwards.
"""

from __future__ import annotations

from typing import Any

import stripe
from flask import current_app
from sqlalchemy import select

from app.audit import record_audit
from app.auth.models import Role, User, UserRole
from app.database import db, unit_of_work, utcnow
from app.events import enqueue_after_commit
from app.notify import notify
from payments import gateway, ledger, services
from payments.models import Dispute, Payment, PaymentStatus, StripeEvent


class WebhookRejected(Exception):
    """Bad or stale signature, or a body that is not a Stripe event."""


def receive(payload: bytes, signature: str | None) -> bool:
    """Verify and store one webhook delivery; returns False for an event already stored.

    Stores the event and stages its job (run once the caller's unit of work commits).
    Flushes. Raises WebhookRejected (nothing stored) for a missing, bad or stale
    signature (older than STRIPE_WEBHOOK_TOLERANCE seconds) or a malformed body.
    """
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret or not signature:
        raise WebhookRejected("missing signature or secret")
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, secret,
            tolerance=current_app.config["STRIPE_WEBHOOK_TOLERANCE"])
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise WebhookRejected(str(exc)) from exc
    body: dict[str, Any] = event.to_dict()
    if not isinstance(body.get("id"), str) or not isinstance(body.get("type"), str):
        raise WebhookRejected("not an event")
    ledger.insert_ignore(StripeEvent, {"id": body["id"], "type": body["type"],
                                 "created": int(body.get("created") or 0), "payload": body,
                                 "received_at": utcnow()})
    stored = db.scalar(select(StripeEvent).where(StripeEvent.id == body["id"]))
    fresh = stored is not None and stored.processed_at is None and not _queued(stored)
    if fresh:
        stored.outcome = "queued"
        enqueue_after_commit(process_stripe_event, event_id=body["id"])
    db.flush()
    return fresh


def _queued(ev: StripeEvent) -> bool:
    return ev.outcome is not None


def process_stripe_event(event_id: str) -> None:
    """Job: apply one stored Stripe event. Safe to run twice (does nothing the second time).

    payment_intent.*: re-fetch the PaymentIntent and apply its current state.
    charge.refunded: book every Stripe refund of the charge not booked yet.
    charge.dispute.created: mark the payment disputed and tell the supervisors.
    Changes payments, the ledger and the stored event in one unit of work (it joins the
    job runner's when there is one). Raises stripe errors when Stripe cannot be
    reached (nothing is kept; the runner retries).
    """
    with unit_of_work():
        # The event's row lock makes a second delivery of this job wait, then see it
        # processed; it locks no payment while Stripe is asked.
        ev = db.scalar(select(StripeEvent).where(StripeEvent.id == event_id)
                       .with_for_update())
        if ev is None or ev.processed_at is not None:
            return
        obj = (ev.payload.get("data") or {}).get("object") or {}
        if ev.type.startswith("payment_intent."):
            outcome = services.sync_payment_intent(obj.get("id"))
        elif ev.type in ("charge.refunded", "charge.refund.updated"):
            outcome = sync_refunds(obj.get("payment_intent"))
        elif ev.type == "charge.dispute.created":
            outcome = open_dispute(obj)
        else:
            outcome = "ignored"
        ev.processed_at = utcnow()
        ev.outcome = outcome
        db.flush()


def sync_refunds(pi_id: str | None) -> str:
    """Book refunds made in Stripe (the dashboard) that Barid did not make. Flushes.

    Stripe is asked before the payment's row is locked, so no lock waits on Stripe.
    """
    if not pi_id or db.scalar(select(Payment.id).where(
            Payment.stripe_payment_intent == pi_id)) is None:
        return "unknown payment intent"
    refunds = gateway.client().v1.refunds.list(params={"payment_intent": pi_id, "limit": 100})
    p = services.payment_by_intent(pi_id)
    if p is None:
        return "unknown payment intent"
    booked = 0
    for r in refunds.data:
        meta = r.metadata.to_dict() if r.metadata else {}
        if r.status != "succeeded" or meta.get("barid_refund_id"):
            continue
        if services.record_stripe_refund(p, r.id, int(r.amount)) is not None:
            booked += 1
    return f"{booked} refund(s) booked"


def open_dispute(obj: dict[str, Any]) -> str:
    """Record a dispute, mark its payment disputed and tell every supervisor. Flushes."""
    pi_id = obj.get("payment_intent")
    if not pi_id and obj.get("charge"):
        pi_id = gateway.client().v1.charges.retrieve(obj["charge"]).payment_intent
    p = services.payment_by_intent(pi_id)
    if p is None:
        return "unknown payment intent"
    if db.scalar(select(Dispute).where(Dispute.stripe_dispute_id == obj.get("id"))):
        return "dispute known"
    db.add(Dispute(payment_id=p.id, stripe_dispute_id=str(obj.get("id")),
                   amount=int(obj.get("amount") or 0),
                   currency=str(obj.get("currency") or "usd").upper(),
                   reason=str(obj.get("reason") or "")[:64],
                   status=str(obj.get("status") or "needs_response")[:32]))
    if services.can_transition(p, PaymentStatus.DISPUTED):
        services.apply_transition(p, PaymentStatus.DISPUTED, reason="stripe dispute opened")
    record_audit("payment.disputed", object_type="payment", object_id=p.id,
                 details={"dispute": obj.get("id"), "reason": obj.get("reason")})
    _tell_supervisors(p, obj)
    return "disputed"


def _tell_supervisors(p: Payment, obj: dict[str, Any]) -> None:
    supervisors = db.scalars(select(User).join(UserRole).where(
        UserRole.role == Role.SUPERVISOR, User.active.is_(True)))
    for user in supervisors:
        notify(email=user.email, subject=f"Barid: card payment {p.id} disputed",
               body=(f"A bank-card payment was disputed.\nPayment: {p.id}\n"
                     f"Reference: {p.reference_kind} {p.reference_id}\n"
                     f"Reason: {obj.get('reason') or '-'}\n"
                     "Open the disputes page in the back office to respond."))
