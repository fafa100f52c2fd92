"""Payments and refunds: the functions other domains call, and the payment state machine.

A payment is money received for an opaque reference (`reference_kind`, `reference_id`)
and for a `purpose` (postage, customs_duty, card_topup, ...). Its result is announced
as `payment.succeeded` / `payment.failed` / `refund.succeeded` events; nothing here
knows what an order or a parcel is.

The cross-domain functions (receive_cash, pay_with_post_card, authorize_post_card,
capture_payment, void_payment, start_card_payment, refund) flush; the caller commits.
Every one is idempotent on its `idempotency_key`: the same key returns the first result
and moves money once. On any DomainError the caller must roll back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import stripe
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.audit import record_audit
from app.database import db, utcnow
from app.errors import NotFound, ValidationFailed
from app.events import publish
from app.money import format_money
from payments import cards, gateway, ledger
from payments.errors import (
    CardPaymentsUnavailable,
    IdempotencyConflict,
    PaymentStateError,
    RefundTooLarge,
    TopUpLimitExceeded,
)
from payments.ledger import credit, debit, positive_amount
from payments.models import (
    Account,
    Hold,
    HoldStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PaymentTransition,
    PostCard,
    Refund,
)
from payments.rates import home_to_foreign

S = PaymentStatus
TOPUP = "card_topup"
CHARGE_CURRENCY = "USD"  # Stripe does not list IQD

# The payment state machine: the only moves apply_transition allows.
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    S.CREATED: frozenset({S.PENDING, S.SUCCEEDED, S.FAILED, S.CANCELLED}),
    S.PENDING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED}),
    # A declined bank card may be tried again, and Stripe's own record wins over ours.
    S.FAILED: frozenset({S.PENDING, S.SUCCEEDED, S.CANCELLED}),
    S.SUCCEEDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED}),
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED}),
    S.DISPUTED: frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.REFUNDED: frozenset({S.DISPUTED}),
    S.CANCELLED: frozenset(),
}
EVENTS = {
    S.SUCCEEDED: "payment.succeeded",
    S.FAILED: "payment.failed",
    S.CANCELLED: "payment.cancelled",
    S.DISPUTED: "payment.disputed",
}
REFUNDABLE = frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED})


def payment_payload(p: Payment) -> dict[str, Any]:
    return {"payment_id": p.id, "reference_kind": p.reference_kind,
            "reference_id": p.reference_id, "purpose": p.purpose, "amount": p.amount,
            "currency": p.currency, "method": p.method, "status": p.status,
            "refunded_amount": p.refunded_amount}


def apply_transition(payment: Payment, to: PaymentStatus, *, actor_id: int | None = None,
                     reason: str = "") -> None:
    """Move `payment` to `to`, record who and why, publish the matching event.

    Raises PaymentStateError for a move the table does not allow. Flushes.
    """
    frm = PaymentStatus(payment.status)
    if to not in TRANSITIONS[frm]:
        raise PaymentStateError(
            _l("This payment cannot go from %(a)s to %(b)s.", a=str(frm), b=str(to)))
    payment.status = to
    payment.updated_at = utcnow()
    db.add(PaymentTransition(payment_id=payment.id, from_status=frm, to_status=to,
                             actor_id=actor_id, reason=reason[:300]))
    db.flush()
    if to in EVENTS:
        publish(EVENTS[to], payment_payload(payment))


# --- shared helpers --------------------------------------------------------------


_PURPOSE_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def _check_purpose(purpose: str) -> str:
    if not _PURPOSE_RE.match(purpose or ""):
        raise ValidationFailed(_l("Unknown payment purpose."))
    return purpose


def _check_currency(currency: str) -> str:
    from app.money import EXPONENT

    if currency not in EXPONENT:
        raise ValidationFailed(_l("Unknown currency."))
    return currency


def _existing(idempotency_key: str, **expected: Any) -> Payment | None:
    """The payment made before with this key, if its values match; else IdempotencyConflict."""
    p = db.scalar(select(Payment).where(Payment.idempotency_key == idempotency_key))
    if p is None:
        return None
    for field, value in expected.items():
        if value is not None and getattr(p, field) != value:
            raise IdempotencyConflict()
    return p


def _insert_payment(p: Payment) -> Payment:
    """Insert `p`; when a concurrent request with the same key won, return its payment."""
    try:
        with db.begin_nested():
            db.add(p)
            db.flush()
    except IntegrityError:
        other = db.scalar(select(Payment).where(Payment.idempotency_key == p.idempotency_key))
        if other is None:
            raise
        return other
    return p


def _topup_card(reference_kind: str, reference_id: str) -> PostCard:
    if reference_kind != "post_card":
        raise ValidationFailed(_l("A top-up is for a post card."))
    try:
        card = cards.get_card(int(reference_id))
    except ValueError as exc:
        raise NotFound() from exc
    cards.check_usable(card, for_spending=False)
    return card


def check_topup(card: PostCard, amount: int) -> None:
    """Raises TopUpLimitExceeded for a top-up above the limit or a balance above the cap."""
    cfg = current_app.config
    limit = cfg["PAYMENTS_TOPUP_MAX"]
    if amount > limit:
        raise TopUpLimitExceeded(_l("A top-up can be at most %(max)s.",
                                    max=format_money(limit, card.currency)))
    acc = db.get(Account, card.account_id)
    if acc.balance + amount > cfg["PAYMENTS_CARD_MAX_BALANCE"]:
        raise TopUpLimitExceeded(_l("A card can hold at most %(max)s.",
                                    max=format_money(cfg["PAYMENTS_CARD_MAX_BALANCE"],
                                                     card.currency)))


def _destination(payment: Payment) -> Account:
    """The account credited when `payment` succeeds."""
    if payment.purpose == TOPUP:
        card = db.get(PostCard, int(payment.reference_id))
        return db.get(Account, card.account_id)
    return ledger.purpose_account(payment.purpose, payment.currency)


def _after_topup_check(payment: Payment) -> None:
    if payment.purpose == TOPUP:
        card = db.get(PostCard, int(payment.reference_id))
        acc = db.get(Account, card.account_id)
        if acc.balance > current_app.config["PAYMENTS_CARD_MAX_BALANCE"]:
            raise TopUpLimitExceeded(_l("A card can hold at most %(max)s.", max=format_money(
                current_app.config["PAYMENTS_CARD_MAX_BALANCE"], card.currency)))


# --- cash at the counter ---------------------------------------------------------


def receive_cash(*, office_id: int, clerk_id: int, amount: int, currency: str,
                 reference_kind: str, reference_id: str, purpose: str,
                 idempotency_key: str) -> Payment:
    """Cash handed to a clerk: debit the office's drawer, credit the purpose's account.

    purpose="card_topup" with reference ("post_card", card id) tops up that card. The
    payment is succeeded at once and `payment.succeeded` is published. Flushes; the
    caller commits. Raises InvalidAmount, ValidationFailed, TopUpLimitExceeded,
    CardFrozen/CardExpired (top-ups), IdempotencyConflict.
    """
    positive_amount(amount)
    _check_purpose(purpose)
    _check_currency(currency)
    reference_id = str(reference_id)
    found = _existing(idempotency_key, method=PaymentMethod.CASH, amount=amount,
                      currency=currency, reference_kind=reference_kind,
                      reference_id=reference_id, purpose=purpose)
    if found:
        return found
    if purpose == TOPUP:
        card = _topup_card(reference_kind, reference_id)
        check_topup(card, amount)
    p = _insert_payment(Payment(
        idempotency_key=idempotency_key, method=PaymentMethod.CASH, amount=amount,
        currency=currency, purpose=purpose, reference_kind=reference_kind,
        reference_id=reference_id, office_id=office_id, clerk_id=clerk_id,
        card_id=int(reference_id) if purpose == TOPUP else None))
    if p.status != S.CREATED:
        return p
    entry, _ = ledger.post_entry(
        idempotency_key=f"payment:{p.id}:received", kind="cash_in",
        legs=[debit(ledger.drawer_account(office_id, currency), amount),
              credit(_destination(p), amount)],
        description=f"cash {purpose} {reference_kind}:{reference_id}",
        actor_id=clerk_id, office_id=office_id, payment_id=p.id)
    _after_topup_check(p)
    p.entry_id = entry.id
    apply_transition(p, S.SUCCEEDED, actor_id=clerk_id, reason="cash received")
    record_audit("payment.cash_received", object_type="payment", object_id=p.id,
                 actor_id=clerk_id, details={"amount": amount, "currency": currency,
                                             "purpose": purpose, "office_id": office_id})
    return p


# --- the post card ---------------------------------------------------------------


def _card_for_spending(card_number: str, pin: str, currency: str,
                       actor_id: int | None) -> PostCard:
    card = cards.find_card(card_number)
    cards.check_usable(card, for_spending=False)
    cards.verify_pin(card, pin, actor_id=actor_id)
    if currency != card.currency:
        raise ValidationFailed(_l("This card pays in %(c)s only.", c=card.currency))
    return card


def pay_with_post_card(*, card_number: str, pin: str, amount: int, currency: str,
                       reference_kind: str, reference_id: str, purpose: str,
                       idempotency_key: str, actor_id: int | None) -> Payment:
    """Pay at once from a post card after checking its PIN.

    Locks the card's account row, checks the balance, debits the card and credits the
    purpose's account; publishes payment.succeeded. Flushes; the caller commits. Raises
    InvalidCardNumber, CardNotFound, WrongPin, CardLocked, CardFrozen, CardExpired,
    InsufficientFunds, InvalidAmount, IdempotencyConflict. A wrong PIN is recorded even
    if the caller rolls back.
    """
    positive_amount(amount)
    _check_purpose(purpose)
    if purpose == TOPUP:
        raise ValidationFailed(_l("A post card cannot top itself up."))
    reference_id = str(reference_id)
    found = _existing(idempotency_key, method=PaymentMethod.POST_CARD, amount=amount,
                      currency=currency, reference_kind=reference_kind,
                      reference_id=reference_id, purpose=purpose)
    if found:
        if found.card is None or found.card.number != cards.normalise_number(card_number):
            raise IdempotencyConflict()
        return found
    card = _card_for_spending(card_number, pin, currency, actor_id)
    p = _insert_payment(Payment(
        idempotency_key=idempotency_key, method=PaymentMethod.POST_CARD, amount=amount,
        currency=currency, purpose=purpose, reference_kind=reference_kind,
        reference_id=reference_id, card_id=card.id, payer_user_id=actor_id))
    if p.status != S.CREATED:
        return p
    entry, _ = ledger.post_entry(
        idempotency_key=f"payment:{p.id}:card", kind="card_payment",
        legs=[debit(db.get(Account, card.account_id), amount), credit(_destination(p), amount)],
        description=f"post card {purpose} {reference_kind}:{reference_id}",
        actor_id=actor_id, payment_id=p.id)
    p.entry_id = entry.id
    apply_transition(p, S.SUCCEEDED, actor_id=actor_id, reason="paid with post card")
    record_audit("payment.post_card", object_type="payment", object_id=p.id, actor_id=actor_id,
                 details={"card_id": card.id, "amount": amount, "purpose": purpose})
    return p


def authorize_post_card(*, card_number: str, pin: str, amount: int, currency: str,
                        reference_kind: str, reference_id: str, purpose: str,
                        idempotency_key: str, actor_id: int | None,
                        hold_minutes: int | None = None) -> Payment:
    """Reserve `amount` on a post card for a checkout (the payment stays pending).

    Capture with capture_payment when the order is confirmed, void with void_payment on
    cancel; an unresolved hold is voided after `hold_minutes` by the expiry job.
    Flushes; the caller commits. Raises as pay_with_post_card.
    """
    positive_amount(amount)
    _check_purpose(purpose)
    reference_id = str(reference_id)
    found = _existing(idempotency_key, method=PaymentMethod.POST_CARD, amount=amount,
                      currency=currency, reference_kind=reference_kind,
                      reference_id=reference_id, purpose=purpose)
    if found:
        return found
    card = _card_for_spending(card_number, pin, currency, actor_id)
    return hold_on_card(card, amount=amount, reference_kind=reference_kind,
                        reference_id=reference_id, purpose=purpose,
                        idempotency_key=idempotency_key, actor_id=actor_id,
                        hold_minutes=hold_minutes)


def hold_on_card(card: PostCard, *, amount: int, reference_kind: str, reference_id: str,
                 purpose: str, idempotency_key: str, actor_id: int | None,
                 hold_minutes: int | None = None) -> Payment:
    """The hold itself, once the card and PIN were checked. Flushes."""
    minutes = hold_minutes or current_app.config["PAYMENTS_HOLD_MINUTES"]
    p = _insert_payment(Payment(
        idempotency_key=idempotency_key, method=PaymentMethod.POST_CARD, amount=amount,
        currency=card.currency, purpose=purpose, reference_kind=reference_kind,
        reference_id=str(reference_id), card_id=card.id, payer_user_id=actor_id))
    if p.status != S.CREATED:
        return p
    ledger.authorize(card, amount, idempotency_key=f"payment:{p.id}:hold",
                     expires_at=utcnow() + timedelta(minutes=minutes), payment_id=p.id,
                     actor_id=actor_id)
    apply_transition(p, S.PENDING, actor_id=actor_id, reason="held on post card")
    return p


def _hold_of(payment: Payment) -> Hold:
    hold = db.scalar(select(Hold).where(Hold.payment_id == payment.id))
    if hold is None:
        raise PaymentStateError(_l("This payment has no hold."))
    return hold


def _lock_payment(payment_id: int) -> Payment:
    p = db.scalar(select(Payment).where(Payment.id == payment_id).with_for_update()
                  .execution_options(populate_existing=True))
    if p is None:
        raise NotFound()
    return p


def capture_payment(payment_id: int, *, amount: int | None = None,
                    actor_id: int | None = None) -> Payment:
    """Capture a held post-card payment (all of it, or less: the rest goes back).

    Capturing twice is a no-op. Flushes; the caller commits. Raises PaymentStateError,
    HoldResolved (already voided), InvalidAmount.
    """
    p = _lock_payment(payment_id)
    hold = _hold_of(p)
    take = hold.amount if amount is None else amount
    if p.status in (S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED) and \
            hold.status == HoldStatus.CAPTURED:
        return p
    if p.status != S.PENDING:
        raise PaymentStateError(_l("This payment is not waiting for capture."))
    hold = ledger.capture(hold.id, take, _destination(p), actor_id=actor_id)
    p.amount = take
    p.entry_id = hold.resolve_entry_id
    apply_transition(p, S.SUCCEEDED, actor_id=actor_id, reason="hold captured")
    return p


def void_payment(payment_id: int, *, actor_id: int | None = None,
                 reason: str = "cancelled") -> Payment:
    """Release a held post-card payment back to the card; voiding twice is a no-op.

    Flushes; the caller commits. Raises PaymentStateError for a captured payment.
    """
    p = _lock_payment(payment_id)
    if p.status == S.CANCELLED:
        return p
    if p.status != S.PENDING:
        raise PaymentStateError(_l("Only a payment waiting for capture can be released."))
    ledger.void(_hold_of(p).id, actor_id=actor_id)
    apply_transition(p, S.CANCELLED, actor_id=actor_id, reason=reason)
    return p


def expire_holds(now=None) -> list[int]:
    """Void every hold past its expiry; returns the payment ids released. Flushes."""
    now = now or utcnow()
    ids = list(db.scalars(select(Hold.payment_id).where(
        Hold.status == HoldStatus.AUTHORIZED, Hold.expires_at < now).order_by(Hold.id)))
    done = []
    for pid in ids:
        if pid is not None:
            void_payment(pid, reason="hold expired")
            done.append(pid)
    return done


# --- bank cards through Stripe ---------------------------------------------------


@dataclass(frozen=True)
class CardPaymentStart:
    """What a page needs to show Stripe Elements for one payment."""

    payment: Payment
    client_secret: str
    publishable_key: str
    charged_amount: int
    charged_currency: str
    rate: Decimal
    js_url: str
    test_mode: bool


def _start_info(p: Payment) -> CardPaymentStart:
    return CardPaymentStart(
        payment=p, client_secret=p.stripe_client_secret or "",
        publishable_key=current_app.config.get("STRIPE_PUBLISHABLE_KEY") or "",
        charged_amount=p.charged_amount or 0, charged_currency=p.charged_currency or "",
        rate=Decimal(p.exchange_rate or 0), js_url=gateway.js_url(),
        test_mode=gateway.test_mode())


def start_card_payment(*, amount: int, currency: str, reference_kind: str, reference_id: str,
                       purpose: str, idempotency_key: str,
                       payer_user_id: int | None = None) -> CardPaymentStart:
    """Create a Payment and its Stripe PaymentIntent, charged in USD at the stored rate.

    The amount is the server's own (IQD); the rate and both amounts are saved on the
    payment. Success is booked only from the verified webhook (see payments.webhooks).
    Flushes; the caller commits. Raises CardPaymentsUnavailable (no key or Stripe
    unreachable), NoExchangeRate, InvalidAmount, TopUpLimitExceeded, IdempotencyConflict.
    """
    if not gateway.card_payments_enabled():
        raise CardPaymentsUnavailable()
    positive_amount(amount)
    _check_purpose(purpose)
    reference_id = str(reference_id)
    found = _existing(idempotency_key, method=PaymentMethod.STRIPE, amount=amount,
                      currency=currency, reference_kind=reference_kind,
                      reference_id=reference_id, purpose=purpose)
    if found and found.stripe_payment_intent:
        return _start_info(found)
    if purpose == TOPUP:
        check_topup(_topup_card(reference_kind, reference_id), amount)
    if currency == CHARGE_CURRENCY:
        charged, rate, rate_id = amount, Decimal(1), None
    else:
        conv = home_to_foreign(amount, CHARGE_CURRENCY)
        charged, rate, rate_id = conv.amount, conv.rate, conv.rate_id
    positive_amount(charged)
    p = found or _insert_payment(Payment(
        idempotency_key=idempotency_key, method=PaymentMethod.STRIPE, amount=amount,
        currency=currency, purpose=purpose, reference_kind=reference_kind,
        reference_id=reference_id, payer_user_id=payer_user_id,
        card_id=int(reference_id) if purpose == TOPUP else None,
        charged_amount=charged, charged_currency=CHARGE_CURRENCY, exchange_rate=rate,
        exchange_rate_id=rate_id))
    if p.stripe_payment_intent:
        return _start_info(p)
    _create_intent(p, gateway.client())
    apply_transition(p, S.PENDING, actor_id=payer_user_id, reason="payment intent created")
    return _start_info(p)


def _create_intent(p: Payment, c: stripe.StripeClient) -> None:
    """One PaymentIntent per attempt; the key makes a retried call return the same one."""
    try:
        pi = c.v1.payment_intents.create(
            params={"amount": p.charged_amount, "currency": p.charged_currency.lower(),
                    "payment_method_types": ["card"],
                    "metadata": {"barid_payment_id": str(p.id),
                                 "reference_kind": p.reference_kind,
                                 "reference_id": p.reference_id}},
            options={"idempotency_key": gateway.idempotency_key("pi", p.id, p.attempt, "create")},
        )
    except stripe.StripeError as exc:
        current_app.logger.warning("stripe create failed for payment %s: %s", p.id, exc)
        raise CardPaymentsUnavailable() from exc
    p.stripe_payment_intent = pi.id
    p.stripe_client_secret = pi.client_secret
    db.flush()


def _new_attempt(p: Payment, c: stripe.StripeClient, actor_id: int | None) -> None:
    """After a decline, try again on a fresh PaymentIntent (the old one is cancelled)."""
    old = p.stripe_payment_intent
    p.attempt += 1
    p.failure_message = None
    _create_intent(p, c)
    try:
        c.v1.payment_intents.cancel(old, options={
            "idempotency_key": gateway.idempotency_key("pi", p.id, p.attempt - 1, "cancel")})
    except stripe.StripeError:
        current_app.logger.info("could not cancel declined intent %s", old)
    apply_transition(p, S.PENDING, actor_id=actor_id, reason="new attempt")


def confirm_card_payment(payment_id: int, *, payment_method: str,
                         payer_user_id: int | None) -> dict[str, Any]:
    """Attach the card the browser tokenised and confirm the PaymentIntent. Commits.

    Returns {"status": "succeeded"|"processing"|"requires_action"|"failed",
    "client_secret", "message"}. A decline marks the payment failed (payment.failed);
    a later try with another card starts a new attempt. Success itself is booked from
    the webhook. Raises NotFound for someone else's payment, PaymentStateError,
    CardPaymentsUnavailable.
    """
    try:
        result = _confirm(payment_id, payment_method, payer_user_id)
        db.commit()
        return result
    except Exception:
        db.rollback()
        raise


def _confirm(payment_id: int, payment_method: str, payer_user_id: int | None) -> dict[str, Any]:
    p = _lock_payment(payment_id)
    if p.method != PaymentMethod.STRIPE or (p.payer_user_id and p.payer_user_id != payer_user_id):
        raise NotFound()
    if not re.match(r"^(pm|card|tok)_\w+$", payment_method or ""):
        raise ValidationFailed(_l("The card could not be read. Please try again."))
    c = gateway.client()
    if p.status == S.FAILED:
        _new_attempt(p, c, payer_user_id)
    if p.status != S.PENDING:
        raise PaymentStateError(_l("This payment is already %(s)s.", s=p.status))
    opts = {"idempotency_key": gateway.idempotency_key("pi", p.id, p.attempt, "attach")}
    try:
        c.v1.payment_intents.update(p.stripe_payment_intent,
                                    params={"payment_method": payment_method}, options=opts)
        pi = c.v1.payment_intents.confirm(
            p.stripe_payment_intent,
            options={"idempotency_key": gateway.idempotency_key("pi", p.id, p.attempt,
                                                                "confirm")})
    except stripe.CardError as exc:
        message = exc.user_message or str(_l("The card was declined."))
        p.failure_message = message[:300]
        apply_transition(p, S.FAILED, actor_id=payer_user_id, reason="card declined")
        return {"status": "failed", "client_secret": p.stripe_client_secret,
                "message": message}
    except stripe.StripeError as exc:
        raise CardPaymentsUnavailable() from exc
    if pi.status == "requires_action":
        return {"status": "requires_action", "client_secret": p.stripe_client_secret,
                "message": ""}
    return {"status": "succeeded" if pi.status == "succeeded" else "processing",
            "client_secret": p.stripe_client_secret, "message": ""}


def book_card_success(p: Payment, pi: Any) -> bool:
    """Book a succeeded PaymentIntent once: clearing (USD) to the purpose (IQD) via FX.

    Returns whether anything changed. Flushes. An amount that differs from the one we
    asked for is refused (ValueError) and left for reconciliation.
    """
    if p.status not in (S.CREATED, S.PENDING, S.FAILED):
        return False
    if int(pi.amount) != p.charged_amount or str(pi.currency).upper() != p.charged_currency:
        raise ValueError(f"payment {p.id}: Stripe charged {pi.amount} {pi.currency}, "
                         f"expected {p.charged_amount} {p.charged_currency}")
    clearing = ledger.stripe_clearing_account(p.charged_currency)
    dest = _destination(p)
    if p.charged_currency == p.currency:
        legs = [debit(clearing, p.amount), credit(dest, p.amount)]
    else:
        legs = [debit(clearing, p.charged_amount),
                credit(ledger.fx_account(p.charged_currency), p.charged_amount),
                debit(ledger.fx_account(p.currency), p.amount), credit(dest, p.amount)]
    entry, _ = ledger.post_entry(idempotency_key=f"stripe:{pi.id}:succeeded",
                                 kind="bank_topup" if p.purpose == TOPUP else "bank_card",
                                 legs=legs,
                                 description=f"stripe {p.purpose} {p.reference_kind}:"
                                             f"{p.reference_id}", payment_id=p.id)
    p.entry_id = entry.id
    apply_transition(p, S.SUCCEEDED, reason="stripe payment_intent succeeded")
    return True


def apply_payment_intent(p: Payment, pi: Any) -> bool:
    """Bring `p` in line with the PaymentIntent Stripe holds now. Flushes."""
    status = pi.status
    if status == "succeeded":
        return book_card_success(p, pi)
    if status == "canceled" and p.status in (S.CREATED, S.PENDING, S.FAILED):
        apply_transition(p, S.CANCELLED, reason="stripe payment_intent canceled")
        return True
    if status == "requires_payment_method" and p.status == S.PENDING and \
            getattr(pi, "last_payment_error", None):
        err = pi.last_payment_error
        p.failure_message = (err.get("message") if hasattr(err, "get") else str(err))[:300]
        apply_transition(p, S.FAILED, reason="stripe payment failed")
        return True
    return False


# --- refunds ---------------------------------------------------------------------


def _share(total: int, part: int, whole: int) -> int:
    """`total * part / whole`, rounded half up, in integers."""
    return int((Decimal(total) * part / whole).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _refund_legs(p: Payment, amount: int, charged: int | None,
                 office_id: int | None) -> list[ledger.Leg]:
    dest = _destination(p)
    if p.method == PaymentMethod.POST_CARD:
        return [debit(dest, amount), credit(db.get(Account, p.card.account_id), amount)]
    if p.method == PaymentMethod.CASH:
        return [debit(dest, amount),
                credit(ledger.drawer_account(office_id or p.office_id, p.currency), amount)]
    clearing = ledger.stripe_clearing_account(p.charged_currency)
    if p.charged_currency == p.currency:
        return [debit(dest, amount), credit(clearing, amount)]
    return [debit(dest, amount), credit(ledger.fx_account(p.currency), amount),
            debit(ledger.fx_account(p.charged_currency), charged),
            credit(clearing, charged)]


def _charged_share(p: Payment, amount: int) -> int | None:
    if p.method != PaymentMethod.STRIPE:
        return None
    refunded_charged = sum(r.charged_amount or 0 for r in p.refunds)
    if amount == p.refundable:  # the last refund takes what is left, so totals match
        return p.charged_amount - refunded_charged
    return max(1, _share(p.charged_amount, amount, p.amount))


def refund(payment_id: int, amount: int, reason: str, actor_id: int | None,
           idempotency_key: str, *, office_id: int | None = None) -> Refund:
    """Give back `amount` of a payment to its original method.

    Post card: back onto the card. Cash: out of the drawer of `office_id` (default the
    office that took it). Stripe: a Stripe refund (idempotency key from ours) in the
    charged currency, in proportion. Publishes refund.succeeded and moves the payment
    to partially_refunded / refunded. Flushes; the caller commits. Raises InvalidAmount,
    RefundTooLarge, PaymentStateError, CardPaymentsUnavailable, InsufficientFunds (a
    card top-up already spent).
    """
    positive_amount(amount)
    prior = db.scalar(select(Refund).where(Refund.idempotency_key == idempotency_key))
    if prior is not None:
        if prior.payment_id != payment_id or prior.amount != amount:
            raise IdempotencyConflict()
        return prior
    p = _lock_payment(payment_id)
    if p.status not in REFUNDABLE:
        raise PaymentStateError(_l("Only a succeeded payment can be refunded."))
    if amount > p.refundable:
        raise RefundTooLarge(_l("At most %(max)s can still be refunded.",
                                max=format_money(p.refundable, p.currency)))
    charged = _charged_share(p, amount)
    r = Refund(idempotency_key=idempotency_key, payment_id=p.id, amount=amount,
               currency=p.currency, reason=(reason or "")[:300], actor_id=actor_id,
               office_id=office_id or p.office_id, charged_amount=charged)
    db.add(r)
    db.flush()
    entry, _ = ledger.post_entry(idempotency_key=f"refund:{r.id}", kind="refund",
                                 legs=_refund_legs(p, amount, charged, office_id),
                                 description=f"refund of payment {p.id}", actor_id=actor_id,
                                 office_id=r.office_id if p.method == PaymentMethod.CASH else None,
                                 payment_id=p.id)
    r.entry_id = entry.id
    if p.method == PaymentMethod.STRIPE:
        try:
            sr = gateway.client().v1.refunds.create(
                params={"payment_intent": p.stripe_payment_intent, "amount": charged,
                        "metadata": {"barid_refund_id": str(r.id)}},
                options={"idempotency_key": gateway.idempotency_key("refund", p.id,
                                                                    idempotency_key)})
        except stripe.StripeError as exc:
            raise CardPaymentsUnavailable() from exc
        r.stripe_refund_id = sr.id
    _record_refund(p, r, actor_id)
    return r


def _record_refund(p: Payment, r: Refund, actor_id: int | None) -> None:
    p.refunded_amount += r.amount
    if p.status != S.DISPUTED:
        apply_transition(p, S.REFUNDED if p.refundable == 0 else S.PARTIALLY_REFUNDED,
                         actor_id=actor_id, reason=r.reason)
    db.flush()
    publish("refund.succeeded", {**payment_payload(p), "refund_id": r.id,
                                 "refund_amount": r.amount, "origin": r.origin})
    record_audit("payment.refunded", object_type="payment", object_id=p.id, actor_id=actor_id,
                 details={"refund_id": r.id, "amount": r.amount, "origin": r.origin})


def record_stripe_refund(p: Payment, stripe_refund_id: str, charged: int) -> Refund | None:
    """Book a refund made outside Barid (the Stripe dashboard) once. Flushes.

    The IQD amount is the charged share converted at the payment's own rate, capped at
    what can still be refunded.
    """
    if db.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_refund_id)):
        return None
    p = _lock_payment(p.id)
    if p.status not in REFUNDABLE and p.status != S.DISPUTED:
        return None
    already = sum(r.charged_amount or 0 for r in p.refunds)
    charged = min(charged, p.charged_amount - already)
    if charged <= 0:
        return None
    amount = p.refundable if already + charged >= p.charged_amount else \
        min(p.refundable, _share(p.amount, charged, p.charged_amount))
    if amount <= 0:
        return None
    r = Refund(idempotency_key=f"stripe:{stripe_refund_id}", payment_id=p.id, amount=amount,
               currency=p.currency, reason="refunded in Stripe", origin="stripe",
               stripe_refund_id=stripe_refund_id, charged_amount=charged)
    db.add(r)
    db.flush()
    entry, _ = ledger.post_entry(idempotency_key=f"refund:{r.id}", kind="refund",
                                 legs=_refund_legs(p, amount, charged, None),
                                 description=f"stripe refund {stripe_refund_id}", payment_id=p.id)
    r.entry_id = entry.id
    _record_refund(p, r, None)
    return r


# --- reading ---------------------------------------------------------------------


def get_payment(payment_id: int) -> Payment:
    p = db.get(Payment, payment_id)
    if p is None:
        raise NotFound()
    return p


def payments_for(reference_kind: str, reference_id: str) -> list[Payment]:
    """Every payment made for one reference, oldest first."""
    return list(db.scalars(select(Payment).where(
        Payment.reference_kind == reference_kind, Payment.reference_id == str(reference_id)
    ).order_by(Payment.id)))

