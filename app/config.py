"""The platform's own settings, declared once, with safe development defaults.

Each domain declares its settings the same way (see app.settings) and loads them from
its `init_app`; `barid config show` lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from app.settings import (
    ConfigError,
    Setting,
    declared,
    load_settings,
    parse_bool,
    parse_optional,
)

__all__ = ["INSTANCE_DIR", "ROOT", "SETTINGS", "ConfigError", "load_app_settings",
           "production_problems"]

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = ROOT / "instance"
# Domains plug in through their package's `init_app(app)`, lowest layer first.
DOMAINS = ("payments", "tracking", "shop")


def _production(cfg: dict[str, Any]) -> bool:
    return cfg.get("BARID_ENV") == "production"


SETTINGS: tuple[Setting, ...] = (
    Setting("BARID_ENV", default="development",
            doc="production, or development (the embedded default)"),
    Setting("SECRET_KEY", default="dev-only-not-secret", secret=True,
            doc="signs sessions and signed references; required in production"),
    Setting("DATABASE_URL", default=f"sqlite:///{INSTANCE_DIR / 'barid.sqlite3'}",
            secret=True, doc="SQLAlchemy URL; PostgreSQL in production"),
    # No Redis configured means jobs run on the inline executor inside the web process.
    Setting("REDIS_URL", parse=parse_optional, default=None, secret=True),
    Setting("PUBLIC_BASE_URL", default="http://127.0.0.1:5000"),
    Setting("MAIL_BACKEND", computed=lambda c: "smtp" if _production(c) else "folder",
            doc="smtp, folder or memory"),
    Setting("MAIL_SERVER", default="localhost"),
    Setting("MAIL_PORT", parse=int, default=25),
    Setting("MAIL_USERNAME", default=None),
    Setting("MAIL_PASSWORD", default=None, secret=True),
    Setting("MAIL_FROM", default="Barid <no-reply@barid.iq>"),
    Setting("MAIL_FOLDER", default=str(INSTANCE_DIR / "mail")),
    Setting("MAX_CONTENT_LENGTH", parse=int, default=2 * 1024 * 1024,
            doc="largest request body in bytes"),
    Setting("SESSION_COOKIE_SECURE", parse=parse_bool, computed=_production),
    Setting("REMEMBER_COOKIE_SECURE", parse=parse_bool, computed=_production,
            env="SESSION_COOKIE_SECURE"),
    Setting("LOGIN_RATE_LIMIT", parse=int, default=10,
            doc="failed logins allowed per identifier and address in the window"),
    Setting("LOGIN_RATE_WINDOW", parse=int, default=300, doc="seconds"),
    # Seconds after which a pending outbox job that no executor finished is looked up in
    # rq, and sent again if rq has lost it.
    Setting("OUTBOX_STALE_AFTER", parse=int, default=60),
)

# Fixed values that are not settings an operator changes.
FIXED: dict[str, Any] = {
    "RQ_QUEUES": ["default", "webhooks", "low"],
    "SESSION_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_ENABLED": True,
    "WTF_CSRF_TIME_LIMIT": None,
    "BABEL_DEFAULT_LOCALE": "ar",
    "BABEL_DEFAULT_TIMEZONE": "Asia/Baghdad",
    "LANGUAGES": ["ar", "en"],
    "TESTING": False,
}


def production_problems(app: Flask) -> list[str]:
    """What makes `app`'s settings unfit for BARID_ENV=production (empty when fit)."""
    problems = []
    if _production(app.config) and declared(app)["SECRET_KEY"].source == "default":
        problems.append(
            "SECRET_KEY must be set when BARID_ENV=production "
            "(generate one with: python -c 'import secrets; print(secrets.token_hex(32))')."
        )
    return problems


def load_app_settings(app: Flask, overrides: dict[str, Any] | None = None) -> None:
    """Load the platform's settings into `app.config`, then the fixed values and the
    overrides given to `create_app`.

    Raises ConfigError when BARID_ENV=production and SECRET_KEY is missing, so a
    production process never starts signing sessions with a development key.
    """
    overrides = dict(overrides or {})
    app.extensions["barid.overrides"] = overrides
    app.config.update(FIXED)
    load_settings(app, "app", SETTINGS, overrides)
    app.config.update(overrides)
    problems = production_problems(app)
    if problems:
        raise ConfigError(" ".join(problems))
    INSTANCE_DIR.mkdir(exist_ok=True)


def database_url() -> str:
    """The database URL from the environment alone (for Alembic run outside the app)."""
    [setting] = [s for s in SETTINGS if s.name == "DATABASE_URL"]
    return os.environ.get(setting.env_name, setting.default)
