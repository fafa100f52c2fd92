"""Outbound merchant webhooks, signed per Standard Webhooks, retried, logged, replayable.

See app.webhooks.models for the tables, .transport for the SSRF policy, .jobs for the
retry schedule, .services for what merchants and domains call, .settings for the
settings.
"""

from __future__ import annotations

from flask import Flask

from app.extensions import csrf
from app.settings import load_settings
from app.webhooks import api, jobs  # noqa: F401  (jobs: the delivery job lives there)
from app.webhooks.settings import SETTINGS

MODEL_MODULES = ("app.webhooks.models",)


def init_app(app: Flask) -> None:
    """Settings (each from the environment) and the webhook endpoints API."""
    load_settings(app, "webhooks", SETTINGS)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
