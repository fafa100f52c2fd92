"""Payments: the ledger, the post card, Stripe, refunds, reconciliation, exchange rates."""

from __future__ import annotations

import os

from flask import Flask

# Modules that define tables (see app.models_registry).
MODEL_MODULES: tuple[str, ...] = ("payments.models",)


def _int_env(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def init_app(app: Flask) -> None:
    """Register this domain's models, blueprints, subscribers and commands."""
    from payments import cli

    app.config.setdefault("PAYMENTS_TOPUP_MAX", _int_env("PAYMENTS_TOPUP_MAX", 5_000_000))
    app.config.setdefault("PAYMENTS_CARD_MAX_BALANCE",
                          _int_env("PAYMENTS_CARD_MAX_BALANCE", 10_000_000))
    app.config.setdefault("PAYMENTS_HOLD_MINUTES", _int_env("PAYMENTS_HOLD_MINUTES", 30))
    app.cli.add_command(cli.ledger_group)

    from app.extensions import csrf
    from payments import jobs, webhook_views  # noqa: F401 (jobs registers periodic tasks)

    app.register_blueprint(webhook_views.bp)
    csrf.exempt(webhook_views.bp)
