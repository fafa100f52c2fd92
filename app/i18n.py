"""Arabic first, English beside it: locale choice, time zone, and number formatting.

Each package keeps its own catalog in `<package>/translations`; Flask-Babel merges
them. Source strings are English; the Arabic catalog is the default shown.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, request, session
from flask_babel import format_datetime, get_locale

from app.config import ROOT

BAGHDAD = ZoneInfo("Asia/Baghdad")
DOMAIN_PACKAGES = ("app", "payments", "tracking", "shop")


def translation_directories() -> str:
    """Every `translations` folder of the platform and the domains (one per package or
    sub-package, e.g. app/translations, app/auth/translations, payments/translations)."""
    found: list[str] = []
    for pkg in DOMAIN_PACKAGES:
        found += sorted(str(p) for p in (ROOT / pkg).glob("**/translations") if p.is_dir())
    return ";".join(found) or str(ROOT / "app" / "translations")


def select_locale() -> str:
    """The visitor's choice (kept in the session), else the account's, else Arabic."""
    chosen = session.get("lang")
    if chosen in current_app.config["LANGUAGES"]:
        return chosen
    from flask_login import current_user

    if getattr(current_user, "is_authenticated", False) and (
        current_user.locale in current_app.config["LANGUAGES"]
    ):
        return current_user.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def current_locale() -> str:
    return str(get_locale() or "ar")


def text_direction() -> str:
    return "rtl" if current_locale() == "ar" else "ltr"


def local_time(value: datetime | None, fmt: str = "medium") -> str:
    """A stored UTC time shown in Asia/Baghdad in the visitor's language."""
    if value is None:
        return ""
    return format_datetime(value, fmt)


def init_app(app: Flask) -> None:
    from app.extensions import babel
    from app.money import format_money

    app.config["BABEL_TRANSLATION_DIRECTORIES"] = translation_directories()
    babel.init_app(app, locale_selector=select_locale)

    @app.context_processor
    def _i18n_context() -> dict:
        return {
            "locale": current_locale(),
            "direction": text_direction(),
            "local_time": local_time,
            "money": lambda amount, currency: format_money(amount, currency, current_locale()),
            "request_path": request.full_path if request else "/",
        }
