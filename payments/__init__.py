"""Payments: the ledger, the post card, Stripe, refunds, reconciliation, exchange rates."""

from flask import Flask

# Modules that define tables (see app.models_registry).
MODEL_MODULES: tuple[str, ...] = ()


def init_app(app: Flask) -> None:
    """Register this domain's models, blueprints, subscribers and commands."""
