"""Configuration from environment variables, with safe development defaults."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = ROOT / "instance"


class ConfigError(RuntimeError):
    """The environment asks for something the platform cannot start with."""


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def load_config(overrides: dict | None = None) -> dict:
    """Read the platform's settings from the environment.

    Raises ConfigError when BARID_ENV=production and SECRET_KEY is missing, so a
    production process never starts signing sessions with a development key.
    """
    env = os.environ.get("BARID_ENV", "development")
    production = env == "production"
    secret = os.environ.get("SECRET_KEY")
    if production and not secret:
        raise ConfigError(
            "SECRET_KEY must be set when BARID_ENV=production "
            "(generate one with: python -c 'import secrets; print(secrets.token_hex(32))')."
        )
    INSTANCE_DIR.mkdir(exist_ok=True)
    cfg: dict = {
        "BARID_ENV": env,
        "SECRET_KEY": secret or "dev-only-not-secret",
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'barid.sqlite3'}"
        ),
        # No Redis configured means jobs run on the inline executor inside the web process.
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "RQ_QUEUES": ["default", "webhooks", "low"],
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000"),
        # Server-side pepper for post-card PINs; kept apart from SECRET_KEY so rotating
        # one does not invalidate the other.
        "PIN_PEPPER": os.environ.get("PIN_PEPPER", "dev-only-pepper"),
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY", "sk_test_barid_local"),
        "STRIPE_PUBLISHABLE_KEY": os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_barid_local"),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_barid_local"),
        # Unset in production (real Stripe); points at localstripe in development and tests.
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE")
        or (None if production else "http://127.0.0.1:8420"),
        "MAIL_BACKEND": os.environ.get("MAIL_BACKEND", "smtp" if production else "folder"),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": int(os.environ.get("MAIL_PORT", "25")),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD"),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "Barid <no-reply@barid.iq>"),
        "MAIL_FOLDER": os.environ.get("MAIL_FOLDER", str(INSTANCE_DIR / "mail")),
        "MAX_CONTENT_LENGTH": int(os.environ.get("MAX_CONTENT_LENGTH", str(2 * 1024 * 1024))),
        "SESSION_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", production),
        "REMEMBER_COOKIE_SECURE": _bool("SESSION_COOKIE_SECURE", production),
        "SESSION_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "ar",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Baghdad",
        "LANGUAGES": ["ar", "en"],
        "LOGIN_RATE_LIMIT": int(os.environ.get("LOGIN_RATE_LIMIT", "10")),
        "LOGIN_RATE_WINDOW": int(os.environ.get("LOGIN_RATE_WINDOW", "300")),
        # Seconds after which a pending outbox job that no executor finished is sent again.
        "OUTBOX_STALE_AFTER": int(os.environ.get("OUTBOX_STALE_AFTER", "300")),
        "TESTING": False,
    }
    if overrides:
        cfg.update(overrides)
    return cfg
