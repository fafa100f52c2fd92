"""Outbound merchant webhooks, signed per Standard Webhooks, retried, logged, replayable.

See app.webhooks.models for the tables, .transport for the SSRF policy, .jobs for the
retry schedule, .services for what merchants and domains call.
"""

from __future__ import annotations

import os

from flask import Flask

MODEL_MODULES = ("app.webhooks.models",)


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def init_app(app: Flask) -> None:
    """Settings (each from the environment) and the webhook endpoints API."""
    from app.extensions import csrf
    from app.webhooks import api, jobs  # noqa: F401

    production = app.config.get("BARID_ENV") == "production"
    cfg = app.config
    cfg.setdefault("WEBHOOKS_ALLOW_LOOPBACK",
                   _bool(os.environ.get("WEBHOOKS_ALLOW_LOOPBACK"), not production))
    cfg.setdefault("WEBHOOK_TIMEOUT", float(os.environ.get("WEBHOOK_TIMEOUT", "10")))
    cfg.setdefault("WEBHOOK_DISABLE_AFTER",
                   int(os.environ.get("WEBHOOK_DISABLE_AFTER", str(5 * 86400))))
    cfg.setdefault("WEBHOOK_SECRET_OVERLAP", 86400)
    cfg.setdefault("WEBHOOK_JITTER", 0.1)
    if os.environ.get("WEBHOOK_RETRY_SCHEDULE"):
        cfg.setdefault("WEBHOOK_RETRY_SCHEDULE",
                       [float(s) for s in os.environ["WEBHOOK_RETRY_SCHEDULE"].split(",")])
    cfg.setdefault("WEBHOOK_RETRY_SCHEDULE", list(jobs.DEFAULT_SCHEDULE))
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)
