"""The platform every domain stands on. `create_app` builds the web application."""

from __future__ import annotations

import importlib
from typing import Any

from flask import Flask

from app import (
    api,
    auth_setup,
    backoffice,
    errors,
    i18n,
    jobs,
    logs,
    ops,
    security,
    web,
    webhooks,
)
from app.config import DOMAINS, INSTANCE_DIR, ROOT, load_app_settings
from app.database import db, init_engine
from app.extensions import csrf

__all__ = ["DOMAINS", "create_app"]


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app from the environment (plus `overrides`, used by tests).

    Raises app.config.ConfigError when the environment is unusable (for example
    BARID_ENV=production without SECRET_KEY).
    """
    app = Flask(
        "app",
        root_path=str(ROOT / "app"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "app" / "static"),
        instance_path=str(INSTANCE_DIR),
    )
    web.install_converters(app)
    load_app_settings(app, overrides)
    logs.configure_logging()
    init_engine(app.config["DATABASE_URL"])
    app.teardown_appcontext(lambda _exc: db.remove())

    csrf.init_app(app)
    i18n.init_app(app)
    ops.init_app(app)
    security.init_app(app)
    auth_setup.init_app(app)
    errors.init_app(app)
    web.init_app(app)
    backoffice.init_app(app)
    jobs.init_app(app)
    api.init_app(app)
    webhooks.init_app(app)
    # The domains stand on the platform and are named, not imported: app imports no
    # domain (importlib loads each by its name from app.config.DOMAINS).
    for name in DOMAINS:
        importlib.import_module(name).init_app(app)
    return app
