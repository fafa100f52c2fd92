"""Reconciliation: what Stripe holds against what the ledger booked."""

from __future__ import annotations

from typing import Any

import stripe
from flask import current_app
from sqlalchemy import select

from app.database import db, unit_of_work
from app.jobs import periodic
from payments import gateway
from payments.models import Payment, PaymentStatus, ReconciliationRun

BOOKED = {PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED,
          PaymentStatus.DISPUTED}


def compare(limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
    """(PaymentIntents checked, differences) for Stripe's `limit` most recent intents.

    Reads only, and locks nothing: Stripe is asked while no payment row is held.
    """
    c = gateway.client()
    intents = c.v1.payment_intents.list(params={"limit": limit}).data
    diffs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for pi in intents:
        meta = pi.metadata.to_dict() if pi.metadata else {}
        if "barid_payment_id" not in meta:
            continue
        seen.add(pi.id)
        p = db.scalar(select(Payment).where(Payment.stripe_payment_intent == pi.id))
        if p is None:
            # Superseded attempts are cancelled intents; anything else is a difference.
            if pi.status != "canceled":
                diffs.append({"intent": pi.id, "problem": "intent without a payment",
                              "stripe": pi.status})
            continue
        if pi.status == "succeeded" and p.status not in BOOKED:
            diffs.append({"intent": pi.id, "payment": p.id, "problem": "paid in Stripe only",
                          "stripe": pi.status, "barid": p.status})
        elif pi.status != "succeeded" and p.status in BOOKED:
            diffs.append({"intent": pi.id, "payment": p.id, "problem": "booked but not paid",
                          "stripe": pi.status, "barid": p.status})
        if pi.status == "succeeded" and int(pi.amount) != (p.charged_amount or 0):
            diffs.append({"intent": pi.id, "payment": p.id, "problem": "amount differs",
                          "stripe": int(pi.amount), "barid": p.charged_amount})
        if pi.status == "succeeded":
            refunds = c.v1.refunds.list(params={"payment_intent": pi.id, "limit": 100}).data
            in_stripe = sum(int(r.amount) for r in refunds if r.status == "succeeded")
            in_ledger = sum(r.charged_amount or 0 for r in p.refunds)
            if in_stripe != in_ledger:
                diffs.append({"intent": pi.id, "payment": p.id, "problem": "refunds differ",
                              "stripe": in_stripe, "barid": in_ledger})
    oldest = min((pi.created for pi in intents), default=None)
    if oldest is not None and len(intents) < limit:
        # Only bank-card payments have a PaymentIntent.
        for p in db.scalars(select(Payment).where(
                Payment.status.in_(BOOKED), Payment.stripe_payment_intent.is_not(None))):
            if p.stripe_payment_intent not in seen:
                diffs.append({"intent": p.stripe_payment_intent, "payment": p.id,
                              "problem": "booked payment unknown to Stripe"})
    return len(seen), diffs


def run_reconciliation() -> ReconciliationRun:
    """Compare Stripe with the ledger and store the differences found (a new
    ReconciliationRun; Stripe unreachable is stored as a difference). Flushes."""
    run = ReconciliationRun()
    try:
        run.checked, run.differences = compare()
    except stripe.StripeError as exc:
        run.differences = [{"problem": "Stripe unreachable", "error": str(exc)[:200]}]
    db.add(run)
    db.flush()
    if run.differences:
        current_app.logger.warning("stripe reconciliation: %d difference(s)",
                                   len(run.differences))
    return run


def recent_runs(limit: int = 20) -> list[ReconciliationRun]:
    """The latest reconciliation runs, newest first."""
    return list(db.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc())
                           .limit(limit)))


@periodic(every_seconds=3600, queue="low")
def reconcile_stripe() -> None:
    """Hourly: compare recent Stripe PaymentIntents and refunds with the ledger and keep
    every difference for the supervisors' reconciliation page, in one unit of work."""
    if gateway.card_payments_enabled():
        with unit_of_work():
            run_reconciliation()
