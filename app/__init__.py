"""The platform every domain stands on. `create_app` builds the web application."""

from __future__ import annotations

import importlib
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app import (
    api,
    auth_setup,
    backoffice,
    barcodes,
    errors,
    i18n,
    jobs,
    logs,
    ops,
    security,
    web,
    webhooks,
)
from app.config import (
    APP_DIR,
    DOMAINS,
    INSTANCE_DIR,
    TEMPLATES_DIR,
    load_app_settings,
    refuse_unfit_production,
)
from app.database import db, init_engine
from app.extensions import csrf
from app.reports import views as reports_views

__all__ = ["DOMAINS", "build_app", "create_app", "behind_proxies"]


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app from the environment (plus `overrides`, used by tests) and
    create its database engine.

    Raises app.config.ConfigError when the environment is unusable: a value not of its
    type, or BARID_ENV=production with settings unfit for it (ProductionRefused lists
    every one); nothing has touched the database then.
    """
    app = build_app(overrides)
    refuse_unfit_production(app)
    url = app.config["DATABASE_URL"]
    if url.startswith(f"sqlite:///{INSTANCE_DIR}"):
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    init_engine(url)
    return app


def behind_proxies(wsgi_app: Any, hops: int) -> Any:
    """`wsgi_app` believing the last `hops` reverse proxies' X-Forwarded-For and
    X-Forwarded-Proto, so request.remote_addr is the client's address and the scheme
    the client used (rate limits, the audit log, external URLs). With 0 nothing is
    believed: a client sending X-Forwarded-For is counted by its own socket address."""
    if hops <= 0:
        return wsgi_app
    return ProxyFix(wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)


def build_app(overrides: dict[str, Any] | None = None) -> Flask:
    """The Flask app with every setting, blueprint and hook, but no database engine:
    nothing connects or starts (`barid check --deploy` reads its settings).

    Raises app.config.ConfigError for a setting that cannot be read as its type.
    """
    app = Flask(
        "app",
        root_path=str(APP_DIR),
        template_folder=str(TEMPLATES_DIR),
        static_folder=str(APP_DIR / "static"),
        instance_path=str(INSTANCE_DIR),
    )
    web.install_converters(app)
    load_app_settings(app, overrides)
    logs.configure_logging()
    app.teardown_appcontext(lambda _exc: db.remove())
    app.wsgi_app = behind_proxies(  # type: ignore[method-assign]
        app.wsgi_app, int(app.config["TRUSTED_PROXY_HOPS"]))

    csrf.init_app(app)
    i18n.init_app(app)
    ops.init_app(app)
    security.init_app(app)
    auth_setup.init_app(app)
    errors.init_app(app)
    web.init_app(app)
    barcodes.init_app(app)
    backoffice.init_app(app)
    jobs.init_app(app)
    api.init_app(app)
    webhooks.init_app(app)
    reports_views.init_app(app)
    # The domains stand on the platform and are named, not imported: app imports no
    # domain (importlib loads each by its name from app.config.DOMAINS).
    for name in DOMAINS:
        importlib.import_module(name).init_app(app)
    return app
