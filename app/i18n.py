"""Arabic first, English beside it: locale choice, time zone, and number formatting.

Each package keeps its own catalog in `<package>/translations`; Flask-Babel merges
them. Source strings are English; the Arabic catalog is the default shown. Times are
stored in UTC and shown in Asia/Baghdad; numbers keep Latin digits in both languages,
as Iraqi prices and receipts commonly do (app.money does the same for amounts).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_decimal
from flask import Flask, current_app, has_request_context, request, session
from flask_babel import get_locale
from flask_babel.speaklater import LazyString
from flask_login import current_user
from markupsafe import escape

from app.auth.models import User
from app.config import ROOT
from app.database import db
from app.errors import ValidationFailed
from app.extensions import babel
from app.money import format_money

BAGHDAD = ZoneInfo("Asia/Baghdad")
DOMAIN_PACKAGES = ("app", "payments", "tracking", "shop")
# Babel locale used to format dates and numbers for each language: Iraqi Arabic month
# names (كانون الثاني, آذار ...) rather than the Egyptian ones (يناير, مارس ...).
FORMAT_LOCALE = {"ar": "ar_IQ", "en": "en_GB"}


def translation_directories() -> str:
    """Every `translations` folder of the platform and the domains (one per package or
    sub-package, e.g. app/translations, app/auth/translations, payments/translations)."""
    found: list[str] = []
    for pkg in DOMAIN_PACKAGES:
        found += sorted(str(p) for p in (ROOT / pkg).glob("**/translations") if p.is_dir())
    return ";".join(found) or str(ROOT / "app" / "translations")


def _user_locale() -> str | None:
    # The login manager is wired by app.auth_setup; before it (or outside a request)
    # there is no user to ask.
    if not hasattr(current_app, "login_manager"):
        return None
    if getattr(current_user, "is_authenticated", False):
        return getattr(current_user, "locale", None)
    return None


def select_locale() -> str:
    """The visitor's choice (kept in the session), else the account's, else Arabic.

    The merchant API has no session: it follows Accept-Language, else Arabic.
    """
    languages = current_app.config["LANGUAGES"]
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    if not has_request_context():
        return default
    if request.path.startswith("/api/"):
        return str(request.accept_languages.best_match(languages) or default)
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    account = _user_locale()
    if account in languages:
        return str(account)
    return str(default)


def current_locale() -> str:
    return str(get_locale() or "ar")


def text_direction() -> str:
    return "rtl" if current_locale() == "ar" else "ltr"


def _format_locale() -> str:
    return FORMAT_LOCALE.get(current_locale(), current_locale())


def baghdad_today(now: datetime | None = None) -> date:
    """The date in Baghdad at `now` (the current time by default): the post's business
    day for drawers, card expiry and reports."""
    return (now or datetime.now(UTC)).astimezone(BAGHDAD).date()


def local_time(value: datetime | None, fmt: str = "medium") -> str:
    """A stored UTC time shown in Asia/Baghdad in the visitor's language.

    `fmt` is "short", "medium", "long" or a Babel pattern ("d MMMM y, HH:mm").
    """
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError("naive datetime: stored times are UTC and timezone-aware")
    return babel_format_datetime(value, fmt, tzinfo=BAGHDAD, locale=_format_locale())


def local_date(value: datetime | date | None, fmt: str = "long") -> str:
    """The calendar day in Baghdad of a UTC time (or a plain date), e.g. "5 آذار 2026"."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: stored times are UTC and timezone-aware")
        value = value.astimezone(BAGHDAD).date()
    return babel_format_date(value, fmt, locale=_format_locale())


def format_number(value: int | Decimal | float | None, digits: int | None = None) -> str:
    """A count or measure with grouping, Latin digits in both languages (1,250)."""
    if value is None:
        return ""
    if digits is None:
        return format_decimal(value, locale=_format_locale())
    pattern = "#,##0." + "0" * digits if digits > 0 else "#,##0"
    return format_decimal(Decimal(str(value)), format=pattern, locale=_format_locale())


def set_user_locale(user_id: int, locale: str) -> None:
    """Remember `locale` as the language of account `user_id` (flushed).

    Raises app.errors.ValidationFailed for a language the platform does not offer.
    """
    if locale not in current_app.config["LANGUAGES"]:
        raise ValidationFailed(fields={"locale": "unknown language"})
    user = db.get(User, user_id)
    if user is not None and user.locale != locale:
        user.locale = locale
        db.flush()


def _escaped_html(self: LazyString) -> str:
    return escape(str(self))


# Flask-Babel's lazy strings declare themselves safe HTML (`__html__` returns the text as
# it is), so Jinja would print `_l("No parcel %(n)s", n=what_was_typed)` unescaped: a
# message that carries what someone typed would carry their markup too. Barid's messages
# hold no markup of their own, so a lazy string is escaped like any other text.
LazyString.__html__ = _escaped_html  # type: ignore[method-assign]


def init_app(app: Flask) -> None:
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = translation_directories()
    babel.init_app(app, locale_selector=select_locale)
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(local_date, "local_date")
    app.add_template_filter(format_number, "number")

    @app.context_processor
    def _i18n_context() -> dict:
        return {
            "locale": current_locale(),
            "direction": text_direction(),
            "local_time": local_time,
            "local_date": local_date,
            "money": lambda amount, currency: format_money(amount, currency, current_locale()),
            "request_path": request.full_path.rstrip("?") if has_request_context() else "/",
        }
