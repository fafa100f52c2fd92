"""Demo data for payments (exchange rates, a post card for the demo shopper) and the
`barid run` hook that starts localstripe for TEST MODE card payments."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any
from urllib.parse import urlparse

from flask import Flask, current_app
from sqlalchemy import select

from app.auth.models import PostOffice, User
from app.database import db, unit_of_work
from app.seed import seeder
from payments import cards, rates, services
from payments.localstripe_server import start as start_localstripe
from payments.models import ExchangeRate, PostCard

log = logging.getLogger("barid.payments")

# Dinars for one unit (demo values, set again by an admin on the rates page).
# Customs values declarations at these too, so each currency it once kept a rate of has one.
DEMO_RATES = {"USD": "1310", "EUR": "1420", "TRY": "38.5", "AED": "356.7", "CNY": "181.2",
              "GBP": "1660", "SAR": "349", "JOD": "1848", "KWD": "4260"}
DEMO_CARD_PIN = "7305"  # not a weak PIN: issue_card refuses those (payments.pins)


@seeder(100)
def seed_payments() -> None:
    """Exchange rates to IQD and a topped-up post card for shopper@barid.iq (idempotent).

    The rates and the demo card are two units of work: production keeps the rates.
    """
    with unit_of_work():
        for base, rate in DEMO_RATES.items():
            if db.scalar(select(ExchangeRate.id).where(ExchangeRate.base == base)) is None:
                rates.add_rate(base, Decimal(rate))
    if current_app.config.get("BARID_ENV") == "production":
        return
    with unit_of_work():
        _seed_demo_card()


def _seed_demo_card() -> None:
    shopper = db.scalar(select(User).where(User.email == "shopper@barid.iq"))
    if shopper is None or db.scalar(select(PostCard.id).where(PostCard.user_id == shopper.id)):
        return
    clerk = db.scalar(select(User).where(User.email == "clerk@barid.iq"))
    office = db.scalar(select(PostOffice).order_by(PostOffice.id))
    card = cards.issue_card(holder_name=shopper.full_name, national_id="199001234567",
                            mobile=shopper.phone or "+9647701234567", pin=DEMO_CARD_PIN,
                            user_id=shopper.id, clerk_id=clerk.id if clerk else None,
                            office_id=office.id if office else None)
    if office is not None and clerk is not None:
        services.receive_cash(office_id=office.id, clerk_id=clerk.id, amount=150_000,
                              currency="IQD", reference_kind="post_card",
                              reference_id=str(card.id), purpose=services.TOPUP,
                              idempotency_key=f"demo-topup-{card.id}")
    log.info("demo post card %s (PIN %s) for shopper@barid.iq", card.number, DEMO_CARD_PIN)


def start_localstripe_for_run(app: Flask) -> Any:
    """`barid run` hook: start localstripe on 127.0.0.1 when STRIPE_API_BASE points there.

    Registers this server's webhook with it; returns a function that stops it. Does
    nothing in production or when localstripe is not installed (card payments then say
    they are unavailable rather than fail).
    """
    base = app.config.get("STRIPE_API_BASE")
    if app.config.get("BARID_ENV") == "production" or not base or not \
            app.config.get("STRIPE_SECRET_KEY"):
        return None
    u = urlparse(base)
    if u.hostname not in ("127.0.0.1", "localhost"):
        return None
    try:
        # An optional test tool (GPL), absent in production: only asked whether it is there.
        import localstripe  # noqa: F401
    except ImportError:
        log.warning("localstripe is not installed: bank-card payments are unavailable")
        app.config["STRIPE_SECRET_KEY"] = None
        return None
    try:
        # Generous: it starts while `barid run` migrates and seeds on a loaded machine.
        ls = start_localstripe(u.port or 8420, timeout=45)
    except RuntimeError as exc:
        log.warning("%s: bank-card payments are unavailable", exc)
        app.config["STRIPE_SECRET_KEY"] = None
        return None
    hook = app.config["PUBLIC_BASE_URL"].rstrip("/") + "/payments/stripe/webhook"
    ls.register_webhook(hook, app.config["STRIPE_WEBHOOK_SECRET"])
    log.info("localstripe (TEST MODE) on %s, webhooks to %s", ls.url, hook)
    return ls.stop
