"""The platform's own settings, declared once, with safe development defaults.

Each domain declares its settings the same way (see app.settings) and loads them from
its `init_app`; `barid config show` lists them all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from app.redisconn import sentinel_url
from app.settings import (
    ConfigError,
    Setting,
    declared,
    load_settings,
    parse_bool,
    parse_optional,
)

__all__ = ["INSTANCE_DIR", "MIGRATIONS_DIR", "ROOT", "SETTINGS", "TEMPLATES_DIR",
           "ConfigError", "ProductionRefused", "load_app_settings", "production_problems"]

APP_DIR = Path(__file__).resolve().parent
ROOT = APP_DIR.parent
# A source checkout keeps templates/ and migrations/ beside the packages; the wheel
# carries them inside the app package (setup.py copies them in when it builds), because
# an installed package has no folder beside it to call its own.
SOURCE_CHECKOUT = (ROOT / "pyproject.toml").is_file()


def _shipped(name: str) -> Path:
    return ROOT / name if SOURCE_CHECKOUT else APP_DIR / name


TEMPLATES_DIR = _shipped("templates")
MIGRATIONS_DIR = _shipped("migrations")
# The embedded SQLite file and the mail folder: inside the checkout, or for an installed
# Barid in the directory it is started from (never inside site-packages).
INSTANCE_DIR = (ROOT if SOURCE_CHECKOUT else Path.cwd()) / "instance"
# Domains plug in through their package's `init_app(app)`, lowest layer first.
DOMAINS = ("payments", "tracking", "shop")


def _production(cfg: dict[str, Any]) -> bool:
    return cfg.get("BARID_ENV") == "production"


def _sms_backend(cfg: dict[str, Any]) -> str:
    mail = cfg.get("MAIL_BACKEND")
    return mail if mail in ("memory", "folder") else "log"


def _redis_url(cfg: dict[str, Any]) -> str | None:
    sentinels = cfg.get("REDIS_SENTINELS")
    return sentinel_url(sentinels, cfg["REDIS_SENTINEL_MASTER"]) if sentinels else None


SETTINGS: tuple[Setting, ...] = (
    Setting("BARID_ENV", default="development",
            doc="production, or development (the embedded default)"),
    Setting("SECRET_KEY", default="dev-only-not-secret", secret=True,
            doc="signs sessions and signed references; required in production"),
    # A secret (it may hold a password) whose default is checked on its own below.
    Setting("DATABASE_URL", default=f"sqlite:///{INSTANCE_DIR / 'barid.sqlite3'}",
            secret=True, development_default=False,
            doc="SQLAlchemy URL; PostgreSQL in production (libpq's several hosts allowed)"),
    Setting("BARID_ALLOW_SQLITE", parse=parse_bool, default=False,
            doc="let production run on SQLite (a one-host trial; never with many processes)"),
    Setting("REDIS_SENTINELS", parse=parse_optional, default=None,
            doc="host:port,host:port,... of the Redis Sentinels (the two sites); "
                "REDIS_URL is then built from them"),
    Setting("REDIS_SENTINEL_MASTER", default="barid",
            doc="the name the Sentinels know the Redis primary by"),
    # No Redis configured means jobs run on the inline executor inside the web process.
    Setting("REDIS_URL", parse=parse_optional, secret=True, computed=_redis_url,
            doc="redis://host:port/db; unset (and no Sentinels) runs jobs inline"),
    Setting("TRUSTED_PROXY_HOPS", parse=int, default=0,
            doc="reverse proxies in front of Barid whose X-Forwarded-For and "
                "X-Forwarded-Proto are believed (1 behind the shipped nginx); 0 trusts "
                "none, so a client cannot choose the address it is counted by"),
    Setting("PUBLIC_BASE_URL", default="http://127.0.0.1:5000"),
    Setting("MAIL_BACKEND", computed=lambda c: "smtp" if _production(c) else "folder",
            doc="smtp, folder or memory"),
    Setting("MAIL_SERVER", default="localhost"),
    Setting("MAIL_PORT", parse=int, default=25),
    Setting("MAIL_USERNAME", default=None),
    Setting("MAIL_PASSWORD", default=None, secret=True),
    Setting("MAIL_FROM", default="Barid <no-reply@barid.iq>"),
    Setting("MAIL_FOLDER", default=str(INSTANCE_DIR / "mail")),
    Setting("SMS_BACKEND", computed=_sms_backend,
            doc="http (the SMS gateway), log, folder (beside the e-mail) or memory; "
                "by default the same as MAIL_BACKEND in development and tests, log with smtp"),
    Setting("SMS_HTTP_URL", parse=parse_optional, default=None,
            doc="the SMS gateway's URL; it is sent a JSON POST {to, text, sender}"),
    Setting("SMS_HTTP_TOKEN", parse=parse_optional, default=None, secret=True,
            doc="bearer token for the SMS gateway"),
    Setting("SMS_SENDER_ID", default="IraqiPost",
            doc="the sender name the SMS gateway shows"),
    Setting("SMS_HTTP_TIMEOUT", parse=float, default=10.0,
            doc="seconds to wait for the SMS gateway before the message is retried"),
    Setting("MAX_CONTENT_LENGTH", parse=int, default=2 * 1024 * 1024,
            doc="largest request body in bytes"),
    Setting("SESSION_COOKIE_SECURE", parse=parse_bool, computed=_production),
    Setting("REMEMBER_COOKIE_SECURE", parse=parse_bool, computed=_production,
            env="SESSION_COOKIE_SECURE"),
    Setting("LOGIN_RATE_LIMIT", parse=int, default=10,
            doc="failed logins allowed per identifier and address in the window"),
    Setting("LOGIN_RATE_WINDOW", parse=int, default=300, doc="seconds"),
    Setting("REGISTER_RATE_LIMIT", parse=int, default=5,
            doc="sign-ups allowed per client address, and per e-mail or mobile, in the window"),
    Setting("REGISTER_RATE_WINDOW", parse=int, default=3600, doc="seconds"),
    Setting("REGISTER_CODE_TTL", parse=int, default=900,
            doc="seconds a sign-up's confirmation code stays valid"),
    Setting("REGISTER_CODE_TRIES", parse=int, default=5,
            doc="wrong confirmation codes allowed per sign-up"),
    Setting("PASSWORD_RESET_RATE_LIMIT", parse=int, default=5,
            doc="password-reset requests allowed per client address, and per e-mail or "
                "mobile, in the window"),
    Setting("PASSWORD_RESET_RATE_WINDOW", parse=int, default=3600, doc="seconds"),
    Setting("PASSWORD_RESET_TTL", parse=int, default=900,
            doc="seconds a password-reset code stays valid"),
    Setting("PASSWORD_RESET_TRIES", parse=int, default=5,
            doc="codes that may be tried per password reset"),
    # Seconds after which a pending outbox job that no executor finished is looked up in
    # rq, and sent again if rq has lost it.
    Setting("OUTBOX_STALE_AFTER", parse=int, default=60),
    Setting("REPORTS_MAX_DAYS", parse=int, default=366,
            doc="the longest range of days one report may cover; a longer one is refused"),
    Setting("REPORTS_PERIODS_PER_STEP", parse=int, default=31,
            doc="days or months a report job computes before it records its progress"),
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


class ProductionRefused(ConfigError):
    """BARID_ENV=production with settings unfit for it; `problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            "refusing to start with BARID_ENV=production until these are fixed:\n"
            + "\n".join(f"  - {problem}" for problem in self.problems)
            + "\n(a secret of Barid's own, such as SECRET_KEY or PIN_PEPPER, can be made "
            "with: python -c 'import secrets; print(secrets.token_hex(32))')")


def production_problems(app: Flask) -> list[str]:
    """Every reason `app`'s settings are unfit for production (empty when fit), read
    from the settings every package declared: a secret missing or left at its
    development value, SQLite (unless BARID_ALLOW_SQLITE), no Redis."""
    cfg = app.config
    problems = []
    for name, item in sorted(declared(app).items()):
        if not item.setting.refused_in_production:
            continue
        value = cfg.get(name)
        if value in (None, "") or (item.source == "default"):
            problems.append(f"{name} is not set (the development value would be used).")
        elif value == item.setting.default:
            problems.append(f"{name} is the development value; set a secret of its own.")
    if str(cfg.get("DATABASE_URL", "")).startswith("sqlite") and not cfg.get(
            "BARID_ALLOW_SQLITE"):
        problems.append("DATABASE_URL is SQLite; production runs on PostgreSQL "
                        "(BARID_ALLOW_SQLITE=1 allows SQLite on one host).")
    if cfg.get("SMS_BACKEND") == "http" and not cfg.get("SMS_HTTP_URL"):
        problems.append("SMS_BACKEND is http but SMS_HTTP_URL is not set.")
    if not cfg.get("REDIS_URL"):
        problems.append("REDIS_URL is not set: without Redis no job runs under gunicorn "
                        "and each process counts its own rate limits.")
    return problems


def refuse_unfit_production(app: Flask) -> None:
    """Raise ProductionRefused when BARID_ENV=production and `production_problems`
    finds anything, so a production process never signs sessions with a development
    key, hashes PINs with the development pepper or runs on the embedded parts."""
    if _production(app.config):
        problems = production_problems(app)
        if problems:
            raise ProductionRefused(problems)


def load_app_settings(app: Flask, overrides: dict[str, Any] | None = None) -> None:
    """Load the platform's settings into `app.config`, then the fixed values and the
    overrides given to `create_app`. Raises ConfigError for a value not of its type.
    (Whether they are fit for production is checked once every package has loaded its
    own: `refuse_unfit_production`.)"""
    overrides = dict(overrides or {})
    app.extensions["barid.overrides"] = overrides
    app.config.update(FIXED)
    load_settings(app, "app", SETTINGS, overrides)
    app.config.update(overrides)


def database_url() -> str:
    """The database URL from the environment alone (for Alembic run outside the app)."""
    [setting] = [s for s in SETTINGS if s.name == "DATABASE_URL"]
    return os.environ.get(setting.env_name, setting.default)
