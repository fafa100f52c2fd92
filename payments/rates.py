"""Exchange rates with validity times; every conversion keeps the rate it used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update

from app.audit import record_audit
from app.auth.models import Role, User
from app.database import db, utcnow
from app.errors import Forbidden, NotFound, ValidationFailed
from app.money import EXPONENT, convert
from app.numbers import ascii_digits
from payments.errors import AbsurdRate, AlreadyDecided, NoExchangeRate, SecondPersonRequired
from payments.models import ExchangeRate, RateProposal, RateProposalStatus

HOME = "IQD"
# Who sets rates and who confirms a large change (a different person of these roles).
RATE_STAFF = (Role.ADMIN, Role.SUPERVISOR)
# No real day's change moves a rate a hundredfold: that is a slipped decimal point.
ABSURD_FACTOR = 100
# A currency's first rate, with nothing to compare it to, is kept within what a unit
# of any currency can be worth in dinars (the dearest, KWD, is about 4,300).
FIRST_RATE_MIN = Decimal("0.0001")
FIRST_RATE_MAX = Decimal("1000000")


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
    """A rate typed by a person ("1,310.50", Arabic-Indic digits too) as a Decimal.

    Raises ValidationFailed for text that is not a number above zero."""
    try:
        value = Decimal(ascii_digits(str(raw)).replace(",", ""))
    except InvalidOperation:
        value = Decimal(0)
    if not value.is_finite() or value <= 0:
        raise ValidationFailed(_l("The rate must be a number above zero."),
                               fields={"rate": _l("The rate must be a number above zero.")})
    if value > FIRST_RATE_MAX:
        raise AbsurdRate(_l("No currency is worth that many dinars: check the rate."),
                         fields={"rate": _l("No currency is worth that many dinars: check "
                                            "the rate.")})
    value = value.quantize(Decimal("0.00000001"))
    if value <= 0:  # below the eight decimals the table keeps
        raise ValidationFailed(_l("The rate must be a number above zero."),
                               fields={"rate": _l("The rate must be a number above zero.")})
    return value


def current_rate(base: str, quote: str = HOME) -> ExchangeRate | None:
    """The rate of `base` in force now, or None when none is set."""
    try:
        return rate_at(base, quote)
    except NoExchangeRate:
        return None


def check_sane(value: Decimal, current: ExchangeRate | None) -> None:
    """Refuse (AbsurdRate) a rate no real change explains: more than ABSURD_FACTOR times,
    or less than 1/ABSURD_FACTOR of, the rate in force; for a currency's first rate,
    above FIRST_RATE_MAX or below FIRST_RATE_MIN dinars a unit."""
    if current is None:
        if not FIRST_RATE_MIN <= value <= FIRST_RATE_MAX:
            raise AbsurdRate(_l("No currency is worth that many dinars: check the rate."),
                             fields={"rate": _l("Between %(lo)s and %(hi)s dinars.",
                                                lo=str(FIRST_RATE_MIN),
                                                hi=f"{FIRST_RATE_MAX:,}")})
        return
    now = Decimal(current.rate)
    if value > now * ABSURD_FACTOR or value * ABSURD_FACTOR < now:
        msg = _l("This rate is more than %(n)s times away from the current one "
                 "(%(now)s): check the rate.", n=ABSURD_FACTOR, now=_shown(now))
        raise AbsurdRate(msg, fields={"rate": msg})


def change_percent(value: Decimal, current: ExchangeRate | None) -> Decimal:
    """How far `value` is from the rate in force, in percent of it (0 for a first rate)."""
    if current is None:
        return Decimal(0)
    now = Decimal(current.rate)
    return abs(value - now) * 100 / now


def confirm_percent() -> Decimal:
    """The change, in percent, above which a second person confirms a new rate."""
    return Decimal(str(current_app.config["PAYMENTS_RATE_CONFIRM_PERCENT"]))


def _shown(rate: Decimal) -> str:
    return f"{Decimal(rate).normalize():f}"


def _currency(base: str, quote: str) -> str:
    base = (base or "").upper()
    if base not in EXPONENT or base == quote:
        raise ValidationFailed(_l("Unknown currency."), fields={"base": _l("Unknown currency.")})
    return base


def add_rate(base: str, rate: str | Decimal, *, valid_from: datetime | None = None,
             quote: str = HOME, actor_id: int | None = None) -> ExchangeRate:
    """Set a new rate from `valid_from` (now); the open rate before it ends there.

    The rate is set whatever its change: the back office goes through propose_rate,
    which asks a second person for a large one. Past payments keep the rate they stored;
    audited. Flushes. Raises ValidationFailed for an unknown currency or a rate that is
    not a number above zero, AbsurdRate for one no real change explains (check_sane).
    """
    base = _currency(base, quote)
    value = parse_rate(str(rate))
    check_sane(value, current_rate(base, quote))
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


def _rate_staff(user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None or not user.is_active or not user.has_role(*RATE_STAFF):
        raise Forbidden(_l("You may not do this."))
    return user


def propose_rate(base: str, rate: str | Decimal, *, actor_id: int,
                 quote: str = HOME) -> ExchangeRate | RateProposal:
    """An administrator sets a new rate from the back office.

    A rate within PAYMENTS_RATE_CONFIRM_PERCENT of the current one (or a currency's
    first) takes effect now (add_rate); a larger change is kept as a pending proposal
    until another admin or supervisor confirms it (confirm_rate). Audited; flushes.
    Raises Forbidden (not an admin), ValidationFailed (unknown currency, not a number
    above zero), AbsurdRate.
    """
    _rate_staff(actor_id)
    base = _currency(base, quote)
    value = parse_rate(str(rate))
    current = current_rate(base, quote)
    check_sane(value, current)
    if current is None or change_percent(value, current) <= confirm_percent():
        return add_rate(base, value, quote=quote, actor_id=actor_id)
    proposal = RateProposal(base=base, quote=quote, rate=value, current_rate=current.rate,
                            proposed_by_id=actor_id)
    db.add(proposal)
    db.flush()
    record_audit("exchange_rate.proposed", object_type="rate_proposal", object_id=proposal.id,
                 actor_id=actor_id,
                 details={"base": base, "quote": quote, "rate": str(value),
                          "current_rate": str(current.rate),
                          "change_percent": str(change_percent(value, current)
                                                .quantize(Decimal("0.01")))})
    return proposal


def _decidable(proposal_id: int, actor_id: int) -> tuple[RateProposal, User]:
    actor = _rate_staff(actor_id)
    # Locked and re-read: two people confirming at once take turns, the second is told.
    proposal = db.scalar(select(RateProposal).where(RateProposal.id == proposal_id)
                         .with_for_update().execution_options(populate_existing=True))
    if proposal is None:
        raise NotFound()
    if proposal.status != RateProposalStatus.PENDING:
        raise AlreadyDecided(_l("This rate was already confirmed or declined."))
    if proposal.proposed_by_id == actor.id:
        raise SecondPersonRequired(_l("You proposed this rate yourself: another "
                                      "administrator or supervisor must confirm it."))
    return proposal, actor


def confirm_rate(proposal_id: int, *, actor_id: int) -> ExchangeRate:
    """A second admin or supervisor confirms a pending rate: it takes effect now
    (add_rate, so still refused when absurd against the rate in force by then).
    Audited with both people. Flushes. Raises Forbidden, NotFound, AlreadyDecided,
    SecondPersonRequired, AbsurdRate."""
    proposal, actor = _decidable(proposal_id, actor_id)
    row = add_rate(proposal.base, Decimal(proposal.rate), quote=proposal.quote,
                   actor_id=actor.id)
    proposal.status = RateProposalStatus.CONFIRMED
    proposal.decided_by_id = actor.id
    proposal.decided_at = utcnow()
    proposal.rate_id = row.id
    db.flush()
    record_audit("exchange_rate.confirmed", object_type="rate_proposal", object_id=proposal.id,
                 actor_id=actor.id,
                 details={"base": proposal.base, "rate": str(proposal.rate), "rate_id": row.id,
                          "proposed_by_id": proposal.proposed_by_id,
                          "confirmed_by_id": actor.id})
    return row


def decline_rate(proposal_id: int, *, actor_id: int) -> RateProposal:
    """A second admin or supervisor declines a pending rate; the current one stays.
    Audited. Flushes. Raises Forbidden, NotFound, AlreadyDecided, SecondPersonRequired."""
    proposal, actor = _decidable(proposal_id, actor_id)
    proposal.status = RateProposalStatus.DECLINED
    proposal.decided_by_id = actor.id
    proposal.decided_at = utcnow()
    db.flush()
    record_audit("exchange_rate.declined", object_type="rate_proposal", object_id=proposal.id,
                 actor_id=actor.id,
                 details={"base": proposal.base, "rate": str(proposal.rate),
                          "proposed_by_id": proposal.proposed_by_id})
    return proposal


def pending_proposals() -> list[RateProposal]:
    """Rates waiting for a second person, oldest first."""
    return list(db.scalars(select(RateProposal)
                           .where(RateProposal.status == RateProposalStatus.PENDING)
                           .order_by(RateProposal.id)))
