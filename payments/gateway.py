"""The Stripe client, configured from STRIPE_* settings.

Without STRIPE_SECRET_KEY card payments are switched off and say so. With
STRIPE_API_BASE pointing at a local address (localstripe), pages say TEST MODE.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlparse

import stripe
from flask import current_app

from payments.errors import CardPaymentsUnavailable

_clients: dict[tuple[str, str | None], stripe.StripeClient] = {}


def card_payments_enabled() -> bool:
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


def api_base() -> str | None:
    return current_app.config.get("STRIPE_API_BASE") or None


def test_mode() -> bool:
    """True when the SDK talks to localstripe (or a test key is used)."""
    base = api_base()
    if base:
        host = urlparse(base).hostname or ""
        if host in {"127.0.0.1", "localhost", "::1"}:
            return True
    return str(current_app.config.get("STRIPE_SECRET_KEY") or "").startswith("sk_test_")


def js_url() -> str:
    """Where the browser loads Stripe.js: localstripe serves its own copy."""
    base = api_base()
    if base:
        return base.rstrip("/") + "/js.stripe.com/v3/"
    return "https://js.stripe.com/v3/"


def js_origin() -> str:
    u = urlparse(js_url())
    return f"{u.scheme}://{u.netloc}"


def client() -> stripe.StripeClient:
    """A StripeClient for the configured key and base; raises CardPaymentsUnavailable."""
    key = current_app.config.get("STRIPE_SECRET_KEY")
    if not key:
        raise CardPaymentsUnavailable()
    base = api_base()
    cache_key = (key, base)
    if cache_key not in _clients:
        kwargs: dict = {"max_network_retries": 2}
        if base:
            kwargs["base_addresses"] = {"api": base.rstrip("/")}
        _clients[cache_key] = stripe.StripeClient(key, **kwargs)
    return _clients[cache_key]


def idempotency_key(kind: str, *parts: object) -> str:
    """A stable key for one Stripe call, so a retried job never repeats its effect."""
    raw = ":".join(str(p) for p in parts)
    if len(raw) > 200:
        raw = hashlib.sha256(raw.encode()).hexdigest()
    return f"barid-{kind}-{raw}"
