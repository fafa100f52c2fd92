"""The platform every domain stands on. `create_app` builds the web application."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.config import INSTANCE_DIR, ROOT, load_app_settings
from app.database import db, init_engine

# Domains plug in through their package's `init_app(app)`, lowest layer first.
DOMAINS = ("payments", "tracking", "shop")


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app from the environment (plus `overrides`, used by tests).

    Raises app.config.ConfigError when the environment is unusable (for example
    BARID_ENV=production without SECRET_KEY).
    """
    import importlib

    from app import auth_setup, backoffice, errors, i18n, jobs, logs, ops, security, web
    from app.extensions import csrf

    app = Flask(
        "app",
        root_path=str(ROOT / "app"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "app" / "static"),
        instance_path=str(INSTANCE_DIR),
    )
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
    importlib.import_module("app.api").init_app(app)
    importlib.import_module("app.webhooks").init_app(app)
    for name in DOMAINS:
        importlib.import_module(name).init_app(app)
    return app
