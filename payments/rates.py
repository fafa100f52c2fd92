"""Exchange rates with validity times; every conversion keeps the rate it used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update

from app.audit import record_audit
from app.database import db, utcnow
from app.errors import ValidationFailed
from app.money import EXPONENT, convert
from payments.errors import NoExchangeRate
from payments.models import ExchangeRate

HOME = "IQD"


@dataclass(frozen=True)
class Converted:
    amount: int
    currency: str
    rate: Decimal  # units of HOME per one unit of the foreign currency
    rate_id: int


def rate_at(base: str, quote: str = HOME, at: datetime | None = None) -> ExchangeRate:
    """The rate valid at `at` (now by default); raises NoExchangeRate."""
    at = at or utcnow()
    row = db.scalar(
        select(ExchangeRate)
        .where(ExchangeRate.base == base, ExchangeRate.quote == quote,
               ExchangeRate.valid_from <= at,
               or_(ExchangeRate.valid_to.is_(None), ExchangeRate.valid_to > at))
        .order_by(ExchangeRate.valid_from.desc())
        .limit(1)
    )
    if row is None:
        raise NoExchangeRate(_l("No exchange rate for %(base)s is set.", base=base))
    return row


def home_to_foreign(amount: int, foreign: str, at: datetime | None = None) -> Converted:
    """Convert an IQD amount to `foreign` at the stored rate (rounded half up)."""
    row = rate_at(foreign, HOME, at)
    per_unit = Decimal(1) / Decimal(row.rate)
    return Converted(convert(amount, HOME, foreign, per_unit), foreign, Decimal(row.rate), row.id)


def current_rates() -> list[ExchangeRate]:
    now = utcnow()
    return list(db.scalars(
        select(ExchangeRate)
        .where(ExchangeRate.valid_from <= now,
               or_(ExchangeRate.valid_to.is_(None), ExchangeRate.valid_to > now))
        .order_by(ExchangeRate.base)
    ))


def rate_history(limit: int = 100) -> list[ExchangeRate]:
    return list(db.scalars(select(ExchangeRate).order_by(ExchangeRate.valid_from.desc(),
                                                         ExchangeRate.id.desc()).limit(limit)))


def parse_rate(raw: str) -> Decimal:
    try:
        value = Decimal(str(raw).strip().replace(",", ""))
    except InvalidOperation:
        value = Decimal(0)
    if not value.is_finite() or value <= 0 or value > Decimal("100000000"):
        raise ValidationFailed(_l("The rate must be a number above zero."),
                               fields={"rate": _l("e.g. 1310.50")})
    return value.quantize(Decimal("0.00000001"))


def add_rate(base: str, rate: str | Decimal, *, valid_from: datetime | None = None,
             quote: str = HOME, actor_id: int | None = None) -> ExchangeRate:
    """Set a new rate from `valid_from` (now); the open rate before it ends there.

    Past payments keep the rate they stored; audited. Flushes. Raises ValidationFailed
    for an unknown currency or a rate that is not a positive number.
    """
    base = (base or "").upper()
    if base not in EXPONENT or base == quote:
        raise ValidationFailed(_l("Unknown currency."), fields={"base": _l("Unknown currency.")})
    value = parse_rate(str(rate))
    start = valid_from or utcnow()
    db.execute(
        update(ExchangeRate)
        .where(ExchangeRate.base == base, ExchangeRate.quote == quote,
               ExchangeRate.valid_from < start,
               or_(ExchangeRate.valid_to.is_(None), ExchangeRate.valid_to > start))
        .values(valid_to=start)
    )
    row = ExchangeRate(base=base, quote=quote, rate=value, valid_from=start,
                       created_by_id=actor_id)
    db.add(row)
    db.flush()
    record_audit("exchange_rate.set", object_type="exchange_rate", object_id=row.id,
                 actor_id=actor_id, details={"base": base, "quote": quote, "rate": str(value)})
    return row
