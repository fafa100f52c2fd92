"""Tracking: parcels and S10 ids, labels, events, scanning, delivery, customs."""

from flask import Flask

# Modules that define tables (see app.models_registry).
MODEL_MODULES: tuple[str, ...] = ("tracking.s10", "tracking.models")


def init_app(app: Flask) -> None:
    """Register this domain's settings, blueprints, back-office navigation, subscribers,
    periodic jobs and demo data."""
    from tracking import settings

    settings.init_app(app)
    from tracking import backoffice, views

    app.register_blueprint(views.bp)
    app.register_blueprint(views.api)
    backoffice.init_app(app)
    from payments.payables import register_payable
    from tracking.services.customs import DUTY_REFERENCE_KIND, duty_payable

    # The generic payments page then takes the duty by post card or bank card.
    register_payable(DUTY_REFERENCE_KIND, duty_payable)
    # Importing these registers their subscribers, periodic jobs and seeders.
    from tracking import jobs, seed  # noqa: F401
