"""Tracking: parcels and S10 ids, labels, events, scanning, delivery, customs."""

from flask import Flask

# Modules that define tables (see app.models_registry).
MODEL_MODULES: tuple[str, ...] = ("tracking.s10", "tracking.models")


def init_app(app: Flask) -> None:
    """Register this domain's settings, blueprints, back-office navigation, the partner
    API, subscribers, periodic jobs, demo data and commands."""
    # Imported here, not at the top: importing the package for its MODEL_MODULES
    # (migrations, app.models_registry) must not load its views, PDFs and services.
    # These are this package's own modules, not a dodge around an import cycle.
    from payments.payables import register_payable
    from tracking import api, backoffice, cli, jobs, seed, settings, views  # noqa: F401
    from tracking.services.customs import DUTY_REFERENCE_KIND, duty_payable

    settings.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.api)
    backoffice.init_app(app)
    api.init_app(app)
    app.cli.add_command(cli.tracking_group)
    # The generic payments page then takes the duty by post card or bank card.
    register_payable(DUTY_REFERENCE_KIND, duty_payable)
