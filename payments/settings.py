"""Payments' settings: the post card's limits and pepper, and Stripe's keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.settings import Setting


def _stripe_base(cfg: dict[str, Any]) -> str | None:
    # Unset in production (real Stripe); localstripe in development and tests.
    return None if cfg.get("BARID_ENV") == "production" else "http://127.0.0.1:8420"


SETTINGS: tuple[Setting, ...] = (
    # Server-side pepper for post-card PINs; kept apart from SECRET_KEY so rotating one
    # does not invalidate the other.
    Setting("PIN_PEPPER", default="dev-only-pepper", secret=True),
    # argon2id costs of post-card PIN hashes (tests lower them to run faster).
    Setting("PIN_ARGON2_TIME_COST", parse=int, default=3, doc="argon2id passes for PINs"),
    Setting("PIN_ARGON2_MEMORY_KIB", parse=int, default=65536,
            doc="argon2id memory for PINs, KiB"),
    Setting("PIN_ARGON2_PARALLELISM", parse=int, default=4,
            doc="argon2id lanes for PINs"),
    # A card's PIN attempts are counted before they are checked; when five are being
    # checked at once, a further one waits this long for them before it is refused.
    Setting("PIN_WAIT_SECONDS", parse=float, default=5.0,
            doc="seconds a PIN attempt waits while five others are checked"),
    # Post-card tries online (a PIN or a one-time code), across cards: per client
    # address and per signed-in account, so walking card numbers stops after a few.
    Setting("CARD_TRIES_PER_CLIENT", parse=int, default=10,
            doc="post-card tries online per client address per window (0: no limit)"),
    Setting("CARD_TRIES_PER_ACCOUNT", parse=int, default=10,
            doc="post-card tries online per account per window (0: no limit)"),
    Setting("CARD_TRIES_WINDOW", parse=int, default=900, doc="seconds"),
    # One-time codes sent by SMS when a card is used by someone other than its holder.
    Setting("CARD_CODES_PER_CARD", parse=int, default=3,
            doc="one-time codes sent per card per window"),
    Setting("CARD_CODES_PER_CLIENT", parse=int, default=5,
            doc="one-time codes sent per client address per window"),
    Setting("CARD_CODES_WINDOW", parse=int, default=900, doc="seconds"),
    Setting("STRIPE_SECRET_KEY", default="sk_test_barid_local", secret=True),
    Setting("STRIPE_PUBLISHABLE_KEY", default="pk_test_barid_local"),
    Setting("STRIPE_WEBHOOK_SECRET", default="whsec_barid_local", secret=True),
    Setting("STRIPE_API_BASE", parse=lambda raw: raw or None, computed=_stripe_base,
            doc="Stripe's API address; unset for real Stripe"),
    Setting("STRIPE_WEBHOOK_TOLERANCE", parse=int, default=300,
            doc="seconds a Stripe webhook signature stays valid"),
    Setting("PAYMENTS_TOPUP_MAX", parse=int, default=5_000_000, doc="IQD per top-up"),
    Setting("PAYMENTS_CARD_MAX_BALANCE", parse=int, default=10_000_000, doc="IQD"),
    Setting("PAYMENTS_HOLD_MINUTES", parse=int, default=30,
            doc="minutes a post-card hold lasts before it is released"),
    # A counter refund above this many dinars takes a supervisor's approval, even of the
    # clerk's own office's payment (another office's, or an online one, always does).
    Setting("PAYMENTS_REFUND_APPROVAL_ABOVE", parse=int, default=250_000,
            doc="IQD above which a counter refund needs a supervisor's approval"),
    # A new exchange rate further than this from the current one waits for a second
    # admin or supervisor: a slipped digit would otherwise price every payment.
    Setting("PAYMENTS_RATE_CONFIRM_PERCENT", parse=Decimal, default=Decimal("10"),
            doc="percent change of an exchange rate that needs a second person"),
)
