"""Tracking: parcels and S10 ids, labels, events, scanning, delivery, customs."""

from flask import Flask

from app.backoffice import register_search
from app.barcodes import register_barcode
from app.dashboard import register_figures as register_dashboard_figures
from app.reports import register_figures as register_report_figures
from payments.payables import register_payable

# Importing jobs registers their subscribers and periodic jobs, seed its seeder.
from tracking import (  # noqa: F401
    api,
    backoffice,
    barcodes,
    cli,
    dashboard,
    jobs,
    seed,
    settings,
    views,
)
from tracking.labels import DUTY_BARCODE, PARCEL_BARCODE
from tracking.report_figures import parcel_figures
from tracking.services.customs import DUTY_REFERENCE_KIND, duty_payable

# Modules that define tables (see app.models_registry).
MODEL_MODULES: tuple[str, ...] = ("tracking.s10", "tracking.models")


def init_app(app: Flask) -> None:
    """Register this domain's settings, blueprints, back-office navigation, the partner
    API, subscribers, periodic jobs, demo data and commands."""
    settings.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.api)
    backoffice.init_app(app)
    api.init_app(app)
    app.cli.add_command(cli.tracking_group)
    # The generic payments page then takes the duty by post card or bank card.
    register_payable(DUTY_REFERENCE_KIND, duty_payable)
    # Its barcodes open their parcel at any counter; the search box finds S10 numbers.
    register_barcode(PARCEL_BARCODE, barcodes.open_parcel)
    register_barcode(DUTY_BARCODE, barcodes.open_duty_receipt)
    register_search(barcodes.find_parcels)
    # Parcels accepted, delivered and returned in every report.
    register_report_figures(parcel_figures, order=10)
    # The supervisor's dashboard: parcel flows, statuses, the customs backlog, delays.
    register_dashboard_figures(dashboard.parcel_figures)
