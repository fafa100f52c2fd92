"""Tracking: parcels and S10 ids, labels, events, scanning, delivery, customs."""

from flask import Flask

# Modules that define tables (see app.models_registry).
MODEL_MODULES: tuple[str, ...] = ()


def init_app(app: Flask) -> None:
    """Register this domain's models, blueprints, subscribers and commands."""
