"""Payments: the ledger, the post card, Stripe, refunds, reconciliation, exchange rates."""

from __future__ import annotations

from urllib.parse import urlparse

from flask import Flask

from app.backoffice import register_search
from app.barcodes import register_barcode
from app.dashboard import register_figures as register_dashboard_figures
from app.extensions import csrf
from app.reports import register_figures as register_report_figures
from app.settings import load_settings

# Importing jobs and reconcile registers their periodic jobs, seed its seeder.
from payments import (  # noqa: F401
    backoffice,
    barcodes,
    cli,
    dashboard,
    jobs,
    reconcile,
    seed,
    settings,
    views,
    webhook_views,
)
from payments.receipts import CARD_BARCODE, RECEIPT_BARCODE
from payments.report_figures import ledger_figures

# Modules that define tables (see app.models_registry).
MODEL_MODULES: tuple[str, ...] = ("payments.models",)


def init_app(app: Flask) -> None:
    """Register this domain's models, blueprints, subscribers and commands."""
    load_settings(app, "payments", settings.SETTINGS)
    app.cli.add_command(cli.ledger_group)
    app.register_blueprint(webhook_views.bp)
    csrf.exempt(webhook_views.bp)
    views.register(app)
    backoffice.register(app)
    # Receipts and cards open at any counter; the search box finds payments and cards.
    register_barcode(RECEIPT_BARCODE, barcodes.open_receipt)
    register_barcode(CARD_BARCODE, barcodes.open_card)
    register_search(barcodes.find_payments)
    register_search(barcodes.find_cards)
    # Revenue, customs, card float and merchant payables in every report.
    register_report_figures(ledger_figures, order=20)
    # The supervisor's dashboard: payments by method, post-card money, drawers.
    register_dashboard_figures(dashboard.payment_figures)
    _widen_csp(app)
    hooks = app.extensions.setdefault("barid.run_hooks", [])
    if seed.start_localstripe_for_run not in hooks:
        hooks.append(seed.start_localstripe_for_run)


def _widen_csp(app: Flask) -> None:
    """Let pages load Stripe.js (or localstripe's copy) and talk to it."""
    base = app.config.get("STRIPE_API_BASE")
    origins = ["https://js.stripe.com", "https://api.stripe.com", "https://hooks.stripe.com"]
    if base:
        u = urlparse(base)
        origins.append(f"{u.scheme}://{u.netloc}")
    for key in ("CSP_SCRIPT_SRC", "CSP_FRAME_SRC", "CSP_CONNECT_SRC"):
        listed = app.config.setdefault(key, [])
        for origin in origins:
            if origin not in listed:
                listed.append(origin)
