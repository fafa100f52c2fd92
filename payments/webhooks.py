"""Stripe webhooks: verify on the raw body, store each event once, process in a job.

The request only verifies and stores; the job re-fetches what the event is about from
Stripe (the PaymentIntent, the charge or refund, the dispute) and brings Barid in line
with that, so an event that arrives twice, late or out of order changes the payment
once and never backwards, and a payload that says something Stripe does not (a forged
but validly signed one, a leaked signing secret) changes nothing beyond what Stripe
says. When Stripe cannot be asked, the job raises and is retried; nothing changes.
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
    charge.refunded, charge.refund.updated, refund.*: re-fetch the charge or refund
    named, then book every refund Stripe lists for its PaymentIntent not booked yet.
    charge.dispute.*: re-fetch the dispute; record it (amount, reason, status as Stripe
    says), mark the payment disputed and tell the supervisors, or bring a known one up
    to date. Only the object's id is read from the payload.
    Changes payments, the ledger and the stored event in one unit of work (it joins the
    job runner's when there is one). Raises stripe errors when Stripe cannot be
    reached or answers with an error other than "no such object" (nothing is kept;
    the runner retries).
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
        elif ev.type in REFUND_EVENTS:
            outcome = _sync_refunds_of(obj)
        elif ev.type.startswith("charge.dispute."):
            outcome = sync_dispute(obj.get("id"))
        else:
            outcome = "ignored"
        ev.processed_at = utcnow()
        ev.outcome = outcome
        db.flush()


REFUND_EVENTS = frozenset({"charge.refunded", "charge.refund.updated", "refund.created",
                           "refund.updated", "refund.failed"})
NOT_AT_STRIPE = "not found at Stripe"


def _fetch(retrieve: Any, object_id: Any) -> Any:
    """`retrieve(object_id)` from Stripe, or None when Stripe has no such object (a
    forged event: nothing to do, and nothing to retry). Any other failure is raised so
    the job is retried."""
    if not isinstance(object_id, str) or not object_id:
        return None
    try:
        return retrieve(object_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise


def _id_of(value: Any) -> str | None:
    """An id Stripe gives either as it is or as the expanded object."""
    value = getattr(value, "id", value)
    return value if isinstance(value, str) and value else None


def _sync_refunds_of(obj: dict[str, Any]) -> str:
    """The PaymentIntent of the charge or refund an event names, as Stripe says (not as
    the payload does), then its refunds booked. Flushes."""
    stripe_api = gateway.client().v1
    object_id = obj.get("id")
    if obj.get("object") == "refund" or str(object_id or "").startswith("re_"):
        found = _fetch(stripe_api.refunds.retrieve, object_id)
        if found is None:
            return NOT_AT_STRIPE
        pi_id = _id_of(found.payment_intent)
        if pi_id is None:
            charge = _fetch(stripe_api.charges.retrieve, _id_of(found.charge))
            pi_id = _id_of(charge.payment_intent) if charge is not None else None
    else:
        charge = _fetch(stripe_api.charges.retrieve, object_id)
        if charge is None:
            return NOT_AT_STRIPE
        pi_id = _id_of(charge.payment_intent)
    return sync_refunds(pi_id)


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


def sync_dispute(dispute_id: Any) -> str:
    """Re-fetch a dispute from Stripe and record it as Stripe has it. Flushes.

    A new one is stored (amount, currency, reason, status from Stripe), its payment
    becomes disputed, the supervisors are told, and it is audited; a known one takes
    Stripe's amount, reason and status (audited when they change). A dispute Stripe does
    not know, or on a payment Barid does not know, changes nothing.
    """
    stripe_api = gateway.client().v1
    found = _fetch(stripe_api.disputes.retrieve, dispute_id)
    if found is None:
        return NOT_AT_STRIPE
    pi_id = _id_of(getattr(found, "payment_intent", None))
    if pi_id is None:
        charge = _fetch(stripe_api.charges.retrieve, _id_of(found.charge))
        pi_id = _id_of(charge.payment_intent) if charge is not None else None
    p = services.payment_by_intent(pi_id)
    if p is None:
        return "unknown payment intent"
    stated = {"amount": int(found.amount or 0),
              "currency": str(found.currency or "usd").upper()[:3],
              "reason": str(found.reason or "")[:64],
              "status": str(found.status or "needs_response")[:32]}
    known = db.scalar(select(Dispute).where(Dispute.stripe_dispute_id == found.id))
    if known is not None:
        before = {k: getattr(known, k) for k in stated}
        if before == stated:
            return "dispute known"
        for k, v in stated.items():
            setattr(known, k, v)
        record_audit("payment.dispute_updated", object_type="payment", object_id=p.id,
                     details={"dispute": found.id, "before": before, "after": stated})
        return "dispute updated"
    db.add(Dispute(payment_id=p.id, stripe_dispute_id=str(found.id), **stated))
    if services.can_transition(p, PaymentStatus.DISPUTED):
        services.apply_transition(p, PaymentStatus.DISPUTED, reason="stripe dispute opened")
    record_audit("payment.disputed", object_type="payment", object_id=p.id,
                 details={"dispute": found.id, "reason": stated["reason"],
                          "amount": stated["amount"], "currency": stated["currency"]})
    _tell_supervisors(p, stated["reason"])
    return "disputed"


def _tell_supervisors(p: Payment, reason: str) -> None:
    supervisors = db.scalars(select(User).join(UserRole).where(
        UserRole.role == Role.SUPERVISOR, User.active.is_(True)))
    for user in supervisors:
        notify(email=user.email, subject=f"Barid: card payment {p.id} disputed",
               body=(f"A bank-card payment was disputed.\nPayment: {p.id}\n"
                     f"Reference: {p.reference_kind} {p.reference_id}\n"
                     f"Reason: {reason or '-'}\n"
                     "Open the disputes page in the back office to respond."))
