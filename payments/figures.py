"""Sums of payments, post-card money and drawers for the supervisor's dashboard, and the
payments list behind them.

Each figure is one aggregate query. A payment belongs to the office that took it
(`Payment.office_id`); payments made online belong to none, so only the whole post (an
admin) counts them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, false, func, or_, select

from app.dashboard import Scope, baghdad_day
from app.database import db
from app.i18n import BAGHDAD
from payments.models import TOPUP, Account, AccountKind, Payment, PaymentStatus

# Money that came in, even if some of it went back later (the refund is its own figure).
RECEIVED = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED,
            PaymentStatus.REFUNDED, PaymentStatus.DISPUTED)
TOPUPS, CARD_SPENDING = "topups", "spending"
MAX_LIST = 500


def by_method(scope: Scope) -> list[tuple[str, str, int, int]]:
    """(method, currency, count, amount) of payments received over the scope's days at
    the scope's offices, largest amount first."""
    rows = db.execute(
        select(Payment.method, Payment.currency, func.count(), func.sum(Payment.amount))
        .where(Payment.status.in_(RECEIVED), Payment.created_at >= scope.start,
               scope.covers(Payment.office_id))
        .group_by(Payment.method, Payment.currency))
    out = [(m, c, int(n), int(total or 0)) for m, c, n, total in rows]
    return sorted(out, key=lambda r: (-r[3], r[0], r[1]))


def card_money_per_day(scope: Scope, currency: str = "IQD") -> dict[str, dict[date, int]]:
    """Post-card top-ups and post-card spending per day in Baghdad (amounts in
    `currency`): {"topups": {day: amount}, "spending": {day: amount}}."""
    day = baghdad_day(Payment.created_at)
    kind = case((Payment.purpose == TOPUP, TOPUPS), else_=CARD_SPENDING)
    rows = db.execute(
        select(day, kind, func.sum(Payment.amount))
        .where(Payment.status.in_(RECEIVED), Payment.created_at >= scope.start,
               Payment.currency == currency, scope.covers(Payment.office_id),
               # A top-up names the card it fills, a card payment the card it empties.
               Payment.card_id.is_not(None))
        .group_by(day, kind))
    out: dict[str, dict[date, int]] = {TOPUPS: {}, CARD_SPENDING: {}}
    for text, k, total in rows:
        out[k][date.fromisoformat(text)] = int(total or 0)
    return out


def drawers(scope: Scope) -> list[tuple[int, str, int]]:
    """(office id, currency, cash the drawer should hold now) for each drawer of the
    scope's offices: its ledger balance (cash in less cash paid out, all time)."""
    query = select(Account.code, Account.currency, Account.balance).where(
        Account.kind == AccountKind.CASH_DRAWER)
    if scope.office_ids is not None:
        query = query.where(or_(false(), *[Account.code.like(f"drawer:{o}:%")
                                          for o in sorted(scope.office_ids)]))
    rows = db.execute(query)
    out: list[tuple[int, str, int]] = []
    for code, currency, balance in rows:
        # Drawer accounts are named "drawer:<office id>:<currency>" (payments.ledger).
        _, _, rest = code.partition(":")
        office_text = rest.partition(":")[0]
        if not office_text.isdigit():
            continue
        office = int(office_text)
        if scope.office_ids is None or office in scope.office_ids:
            out.append((office, currency, int(balance)))
    return sorted(out, key=lambda r: (-r[2], r[0]))


def list_payments(*, method: str | None = None, purpose: str | None = None,
                  day: date | None = None, office_id: int | None = None,
                  limit: int = MAX_LIST) -> list[Payment]:
    """Payments received (RECEIVED), newest first, narrowed by method, purpose, the day
    in Baghdad they were made and the office that took them. Reads only."""
    query = payments_query(method=method, purpose=purpose, day=day, office_id=office_id)
    return list(db.scalars(query.order_by(Payment.created_at.desc(), Payment.id.desc())
                           .limit(limit)))


def payments_query(*, method: str | None = None, purpose: str | None = None,
                   day: date | None = None, office_id: int | None = None) -> Any:
    """The query behind list_payments, unordered (for app.listing's pages). Reads only."""
    query = select(Payment).where(Payment.status.in_(RECEIVED))
    if method:
        query = query.where(Payment.method == method)
    if purpose:
        query = query.where(Payment.purpose == purpose)
    if day is not None:
        start = datetime.combine(day, time(), BAGHDAD)
        query = query.where(Payment.created_at >= start,
                            Payment.created_at < start + timedelta(days=1))
    if office_id is not None:
        query = query.where(Payment.office_id == office_id)
    return query
