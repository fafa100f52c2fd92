"""Use cases behind the payments pages. Each public function commits once."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l

from app.database import db
from app.errors import Forbidden, NotFound
from app.i18n import BAGHDAD
from payments import cards, ledger, payables, services, webhooks
from payments.models import (
    Account,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PostCard,
    Refund,
)


def _committed(fn, *args, **kwargs):
    try:
        result = fn(*args, **kwargs)
        db.commit()
        return result
    except Exception:
        db.rollback()
        raise


def cash_top_up(card_id: int, *, amount: int, clerk_id: int, office_id: int,
                idempotency_key: str) -> Payment:
    """A clerk takes cash and tops up a post card. Commits.

    Raises InvalidAmount, TopUpLimitExceeded, CardFrozen, CardExpired, NotFound.
    """
    return _committed(services.receive_cash, office_id=office_id, clerk_id=clerk_id,
                      amount=amount, currency="IQD", reference_kind="post_card",
                      reference_id=str(card_id), purpose=services.TOPUP,
                      idempotency_key=f"counter-topup:{idempotency_key}")


def refund_payment(payment_id: int, *, amount: int, reason: str, actor_id: int,
                   office_id: int | None, idempotency_key: str) -> Refund:
    """Refund (part of) a payment to its original method. Commits.

    Raises RefundTooLarge, PaymentStateError, InvalidAmount, CardPaymentsUnavailable.
    """
    return _committed(services.refund, payment_id, amount, reason, actor_id,
                      f"counter-refund:{idempotency_key}", office_id=office_id)


def owned_card(card_id: int, user_id: int) -> PostCard:
    """The card if `user_id` holds it; NotFound otherwise (no hint that it exists)."""
    card = db.get(PostCard, card_id)
    if card is None or card.user_id != user_id:
        raise NotFound()
    return card


def owned_payment(payment_id: int, user_id: int) -> Payment:
    p = db.get(Payment, payment_id)
    if p is None:
        raise NotFound()
    if p.payer_user_id != user_id and not (p.card is not None and p.card.user_id == user_id):
        raise NotFound()
    return p


def start_online_top_up(card_id: int, *, user_id: int, amount: int,
                        idempotency_key: str) -> services.CardPaymentStart:
    """The holder tops up their own card with a bank card: start the Stripe payment.

    Commits. Raises NotFound (not their card), TopUpLimitExceeded, InvalidAmount,
    CardFrozen, CardExpired, CardPaymentsUnavailable, NoExchangeRate.
    """
    owned_card(card_id, user_id)
    return _committed(services.start_card_payment, amount=amount, currency="IQD",
                      reference_kind="post_card", reference_id=str(card_id),
                      purpose=services.TOPUP, payer_user_id=user_id,
                      idempotency_key=f"online-topup:{user_id}:{idempotency_key}")


def start_bill_card_payment(kind: str, reference_id: str, *, user: Any,
                            idempotency_key: str) -> services.CardPaymentStart:
    """Start paying a registered reference with a bank card. Commits."""
    due = payables.resolve(kind, reference_id, user)
    return _committed(services.start_card_payment, amount=due.amount, currency=due.currency,
                      reference_kind=kind, reference_id=reference_id, purpose=due.purpose,
                      payer_user_id=user.id,
                      idempotency_key=f"bill:{kind}:{reference_id}:card:{idempotency_key}")


def pay_bill_with_post_card(kind: str, reference_id: str, *, user: Any, card_number: str,
                            pin: str, idempotency_key: str) -> Payment:
    """Pay a registered reference with a post card and its PIN. Commits.

    Raises the post card's errors (wrong PIN, locked, frozen, not enough balance).
    """
    due = payables.resolve(kind, reference_id, user)
    return _committed(services.pay_with_post_card, card_number=card_number, pin=pin,
                      amount=due.amount, currency=due.currency, reference_kind=kind,
                      reference_id=reference_id, purpose=due.purpose, actor_id=user.id,
                      idempotency_key=f"bill:{kind}:{reference_id}:post:{idempotency_key}")


def refresh_card_payment(payment_id: int, *, user_id: int) -> Payment:
    """Ask Stripe for the payment's state now (a server-side re-fetch). Commits."""
    p = owned_payment(payment_id, user_id)
    if p.method == PaymentMethod.STRIPE and p.status == PaymentStatus.PENDING:
        _committed(webhooks.sync_payment_intent, p.stripe_payment_intent)
    return db.get(Payment, payment_id)


def card_statement(card: PostCard, *, days: int = 90):
    """(opening, lines) of the card's account over the last `days` days."""
    since = datetime.combine(date.today() - timedelta(days=days), time(), BAGHDAD)
    return ledger.statement_lines(card.account_id, since=since)


def require_staff_office(user: Any) -> int:
    if user.post_office_id is None:
        raise Forbidden(_l("Your account is not attached to a post office. Ask an "
                           "administrator."))
    return user.post_office_id


@dataclass
class DrawerReport:
    office_id: int
    day: date
    opening: int
    closing: int
    lines: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    by_clerk: dict[str, int] = field(default_factory=dict)

    @property
    def cash_in(self) -> int:
        return sum(v for v in self.totals.values() if v > 0)

    @property
    def cash_out(self) -> int:
        return -sum(v for v in self.totals.values() if v < 0)


def drawer_report(office_id: int, day: date, currency: str = "IQD") -> DrawerReport:
    """The office drawer's day (Baghdad time): opening, each movement, expected cash."""
    from app.auth.models import User

    start = datetime.combine(day, time(), BAGHDAD)
    end = start + timedelta(days=1)
    acc = ledger.drawer_account(office_id, currency)
    opening, lines = ledger.statement_lines(acc.id, since=start, until=end)
    report = DrawerReport(office_id=office_id, day=day, opening=opening,
                          closing=opening + sum(a for _, a, _ in lines))
    totals: dict[str, int] = defaultdict(int)
    clerks: dict[str, int] = defaultdict(int)
    for entry, amount, running in lines:
        payment = db.get(Payment, entry.payment_id) if entry.payment_id else None
        if entry.kind == "refund":
            kind = "refund"
        elif payment is not None and payment.purpose == services.TOPUP:
            kind = "topup"
        else:
            kind = payment.purpose if payment else entry.kind
        clerk = db.get(User, entry.actor_id) if entry.actor_id else None
        name = clerk.full_name if clerk else "-"
        totals[kind] += amount
        clerks[name] += amount
        report.lines.append({"entry": entry, "kind": kind, "amount": amount,
                             "running": running, "clerk": name, "payment": payment})
    report.totals = dict(totals)
    report.by_clerk = dict(clerks)
    db.commit()  # the drawer account may have been created on first look
    return report


def set_card_status(card_id: int, action: str, *, clerk_id: int) -> PostCard:
    """freeze | unfreeze | unlock a card (audited). Commits."""
    fn = {"freeze": cards.freeze_card, "unfreeze": cards.unfreeze_card,
          "unlock": cards.unlock_card}.get(action)
    if fn is None:
        raise NotFound()
    return fn(card_id, clerk_id=clerk_id)


def account_balance(account_id: int) -> int:
    return db.get(Account, account_id).balance
