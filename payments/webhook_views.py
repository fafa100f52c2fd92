"""`POST /payments/stripe/webhook`: the one door Stripe knocks on (CSRF-exempt, signed)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from app.database import unit_of_work
from payments import webhooks

bp = Blueprint("payments_webhooks", __name__)


@bp.post("/payments/stripe/webhook")
def stripe_webhook():
    """Verify the signature on the raw body and store the event; the work runs in a job."""
    try:
        with unit_of_work():
            fresh = webhooks.receive(request.get_data(cache=False),
                                     request.headers.get("Stripe-Signature"))
    except webhooks.WebhookRejected:
        return jsonify(error="invalid_signature"), 400
    return jsonify(received=True, duplicate=not fresh), 200
