"""Payments and refunds: the functions other domains call, the payment state machine,
and the use cases behind the payments pages.

A payment is money received for an opaque reference (`reference_kind`, `reference_id`)
and for a `purpose` (postage, customs_duty, card_topup, ...). Its result is announced
as `payment.succeeded` / `payment.failed` / `refund.succeeded` events; nothing here
knows what an order or a parcel is. What differs between the post card, Stripe and
cash is asked of the payment's provider (payments.providers).

Every function here adds and flushes; none commits. Whatever starts the use case (a
view, an API handler, the job runner, a CLI command) opens `app.database.unit_of_work()`
around the call, and a DomainError raised inside rolls the whole of it back. The
cross-domain functions (receive_cash, pay_with_post_card, authorize_post_card,
capture_payment, void_payment, start_card_payment, refund) are idempotent on their
`idempotency_key`: the same key returns the first result and moves money once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

import stripe
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.audit import record_audit
from app.auth.models import PostOffice, Role, User
from app.database import db, savepoint, utcnow
from app.errors import Forbidden, NotFound, ValidationFailed
from app.events import publish
from app.i18n import BAGHDAD, current_locale
from app.money import EXPONENT, format_money
from app.overrides import current
from payments import cards, gateway, ledger, otp, payables
from payments.errors import (
    CardBusy,
    CardExpired,
    CardFrozen,
    CardLocked,
    CardNotFound,
    CardPaymentsUnavailable,
    CardRefused,
    IdempotencyConflict,
    InvalidAmount,
    PaymentStateError,
    RefundTooLarge,
    TopUpLimitExceeded,
    WrongOneTimeCode,
    WrongPin,
)
from payments.ledger import StatementLine, positive_amount
from payments.models import (
    TOPUP,
    Account,
    Dispute,
    Hold,
    HoldStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PaymentTransition,
    PostCard,
    Refund,
)
from payments.providers import destination_of, provider_for, share
from payments.rates import home_to_foreign, rate_at

S = PaymentStatus
CHARGE_CURRENCY = "USD"  # Stripe does not list IQD
# Stripe's smallest charge, in the minor units of the currency it is charged in: "The
# minimum amount is $0.50 US or equivalent in charge currency" (Stripe API reference,
# `amount`; docs.stripe.com/currencies, minimum and maximum charge amounts). Barid
# charges cards in USD, so an online top-up must come to at least 50 cents.
STRIPE_MINIMUM_CHARGE = {"USD": 50}

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
PAID = frozenset({S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED})


def payment_payload(p: Payment) -> dict[str, Any]:
    return {"payment_id": p.id, "reference_kind": p.reference_kind,
            "reference_id": p.reference_id, "purpose": p.purpose, "amount": p.amount,
            "currency": p.currency, "method": p.method, "status": p.status,
            "refunded_amount": p.refunded_amount}


def can_transition(payment: Payment, to: PaymentStatus) -> bool:
    """Whether the state machine allows `payment` to move to `to` now."""
    return to in TRANSITIONS[PaymentStatus(payment.status)]


def apply_transition(payment: Payment, to: PaymentStatus, *, actor_id: int | None = None,
                     reason: str = "") -> None:
    """The one way a payment changes status: lock the payment's row and re-read it, check
    the move against TRANSITIONS from the status it has now, record it (from, to, who,
    why, when) in payment_transitions and publish the matching event.

    Raises PaymentStateError for a move the table does not allow, also when another
    transaction moved the payment since this session loaded it (the caller's unit of
    work then rolls back whatever it did on the old status). Flushes.
    """
    # A status read before the lock may be old: two requests that both loaded "pending"
    # would otherwise both record pending -> succeeded and publish payment.succeeded
    # twice. The session's own changes are flushed first, so the re-read keeps them.
    db.flush()
    if getattr(payment, _INSERTED_IN, None) is not db().get_transaction():
        # A payment this transaction inserted needs no lock: no other transaction can
        # see its row until this one commits (one statement and its refunds' less).
        _lock_payment(payment.id)
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


def is_open_hold(payment: Payment) -> bool:
    """Whether `payment` is reserved money that capture_payment or void_payment resolves
    (a post-card hold still pending)."""
    return provider_for(payment).is_open_hold(payment)


def pays_on_card_page(payment: Payment) -> bool:
    """Whether the payer still has to pay `payment` on the bank-card page."""
    return provider_for(payment).confirms_in_browser and payment.status in (S.PENDING,
                                                                            S.FAILED)


# --- shared helpers --------------------------------------------------------------


_PURPOSE_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def _check_purpose(purpose: str) -> str:
    if not _PURPOSE_RE.match(purpose or ""):
        raise ValidationFailed(_l("Unknown payment purpose."))
    return purpose


def _check_currency(currency: str) -> str:
    if currency not in EXPONENT:
        raise ValidationFailed(_l("Unknown currency."))
    return currency


def _existing(idempotency_key: str, **expected: Any) -> Payment | None:
    """The payment made before with this key, if its values match; else IdempotencyConflict."""
    p = db.scalar(select(Payment).where(Payment.idempotency_key == idempotency_key))
    if p is None:
        return None
    for name, value in expected.items():
        if value is not None and getattr(p, name) != value:
            raise IdempotencyConflict()
    return p


# The attribute a payment inserted by _insert_payment carries: the transaction that
# inserted it (apply_transition skips the row lock within that same transaction).
_INSERTED_IN = "_barid_inserted_in"


def _insert_payment(p: Payment) -> Payment:
    """Insert `p`; when a concurrent request with the same key won, return its payment."""
    try:
        # Only the insert is undone when the key is taken; the caller's work goes on.
        with savepoint():
            db.add(p)
            db.flush()
    except IntegrityError:
        other = db.scalar(select(Payment).where(Payment.idempotency_key == p.idempotency_key))
        if other is None:
            raise
        return other
    setattr(p, _INSERTED_IN, db().get_transaction())
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
    # The limits in force now: an administrator may have changed them (app.overrides).
    limit = int(current("PAYMENTS_TOPUP_MAX"))
    cap = int(current("PAYMENTS_CARD_MAX_BALANCE"))
    if amount > limit:
        raise TopUpLimitExceeded(_l("A top-up can be at most %(max)s.",
                                    max=format_money(limit, card.currency)))
    if account_balance(card.account_id) + amount > cap:
        raise TopUpLimitExceeded(_l("A card can hold at most %(max)s.",
                                    max=format_money(cap, card.currency)))


def _after_topup_check(payment: Payment) -> None:
    if payment.purpose == TOPUP:
        card = cards.get_card(int(payment.reference_id))
        cap = int(current("PAYMENTS_CARD_MAX_BALANCE"))
        if account_balance(card.account_id) > cap:
            raise TopUpLimitExceeded(_l("A card can hold at most %(max)s.",
                                        max=format_money(cap, card.currency)))


def _receive(p: Payment, *, key: str, kind: str, description: str, actor_id: int | None,
             office_id: int | None = None) -> None:
    """Book the money of `p` coming in, by its provider's legs, to its destination."""
    entry, _ = ledger.post_entry(
        idempotency_key=key, kind=kind,
        legs=provider_for(p).receive_legs(p, destination_of(p)),
        description=description, actor_id=actor_id, office_id=office_id, payment_id=p.id)
    p.entry_id = entry.id


# --- cash at the counter ---------------------------------------------------------


def receive_cash(*, office_id: int, clerk_id: int, amount: int, currency: str,
                 reference_kind: str, reference_id: str, purpose: str,
                 idempotency_key: str) -> Payment:
    """Cash handed to a clerk: debit the office's drawer, credit the purpose's account.

    purpose="card_topup" with reference ("post_card", card id) tops up that card. The
    payment is succeeded at once and `payment.succeeded` is published. Flushes. Raises
    InvalidAmount, ValidationFailed, TopUpLimitExceeded, CardFrozen/CardExpired
    (top-ups), IdempotencyConflict.
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
    _receive(p, key=f"payment:{p.id}:received", kind="cash_in",
             description=f"cash {purpose} {reference_kind}:{reference_id}",
             actor_id=clerk_id, office_id=office_id)
    _after_topup_check(p)
    apply_transition(p, S.SUCCEEDED, actor_id=clerk_id, reason="cash received")
    record_audit("payment.cash_received", object_type="payment", object_id=p.id,
                 actor_id=clerk_id, details={"amount": amount, "currency": currency,
                                             "purpose": purpose, "office_id": office_id})
    return p


# --- the post card ---------------------------------------------------------------


# Who may hear why a card was refused: the clerk at the counter (who can look any card
# up in the back office anyway) and, for their own card, the holder's linked account.
_TOLD_WHY = (Role.CLERK, Role.SUPERVISOR, Role.ADMIN)
_REFUSALS = (CardNotFound, WrongPin, CardLocked, CardBusy, CardFrozen, CardExpired)


def _told_why(card: PostCard | None, actor_id: int | None) -> bool:
    if actor_id is None:
        return False
    if card is not None and card.user_id == actor_id:
        return True
    actor = db.get(User, actor_id)
    return actor is not None and actor.has_role(*_TOLD_WHY)


def _card_for_spending(card_number: str, pin: str, *, amount: int, currency: str,
                       purpose: str, actor_id: int | None, one_time_code: str = "",
                       at_counter: bool = False) -> PostCard:
    """The card, once usable, its PIN right and, when someone other than its holder uses
    it online, its one-time code right: the one place every page that takes a card
    number goes through.

    Online, the try is first counted per client and per account across cards
    (otp.count_try: TooManyCardTries past the limit, before any card is looked up),
    unless the signed-in account holds the card typed. At
    the counter (`at_counter`, only for a clerk) nothing is throttled and no code asked.
    Someone who is not the holder gives card and PIN first: the right PIN sends a code
    to the holder's mobile (otp.send_code raises OneTimeCodeSent, or TooManyCodes), and
    the next try gives the card number and that code, which stands for the PIN.

    Raises InvalidCardNumber (not a card number at all); then to the holder and the
    counter CardNotFound, CardFrozen, CardExpired, CardLocked, CardBusy or WrongPin, and
    to anyone else CardRefused for all of them (with a code given, WrongOneTimeCode for
    all of them and a wrong code), with no attempts count: one answer, so a stranger
    cannot tell which.
    """
    card: PostCard | None = None
    if at_counter:
        _require_counter(actor_id)
    else:
        # A holder paying with their own linked card is not walking card numbers (the
        # card's own PIN lock still holds); counting them would stop a regular buyer.
        # (The holder's card, found here, is not looked up a second time below.)
        card = cards.held_card(card_number, actor_id) if actor_id is not None else None
        if card is None:
            otp.count_try(actor_id)
    code = (one_time_code or "").strip()
    by_code = False
    try:
        if card is None:
            card = cards.find_card(card_number)
        by_code = bool(code) and otp.code_needed(card, actor_id, at_counter=at_counter)
        # With a code the PIN is not checked again (it was right when the code was
        # sent), so a locked card must be refused here.
        cards.check_usable(card, for_spending=by_code)
        if by_code:
            otp.check_code(card, code, actor_id=actor_id, amount=amount, currency=currency,
                           purpose=purpose)
        else:
            cards.verify_pin(card, pin, actor_id=actor_id)
    except (*_REFUSALS, WrongOneTimeCode) as exc:
        if _told_why(card, actor_id):
            raise
        if code:
            raise WrongOneTimeCode() from exc
        if not isinstance(exc, WrongPin):
            # No PIN was hashed for this refusal (no such card, a locked or frozen one):
            # spend the time a wrong PIN costs, so the answer's timing tells nothing.
            cards.hash_nothing()
        raise CardRefused() from exc
    if currency != card.currency:
        raise ValidationFailed(_l("This card pays in %(c)s only.", c=card.currency))
    if not by_code and otp.code_needed(card, actor_id, at_counter=at_counter):
        otp.send_code(card, actor_id=actor_id, amount=amount, currency=currency,
                      purpose=purpose)
    return card


def _require_counter(actor_id: int | None) -> None:
    """Only a clerk (or supervisor, admin) takes a card at the counter. Raises Forbidden."""
    actor = db.get(User, actor_id) if actor_id is not None else None
    if actor is None or not actor.has_role(*_TOLD_WHY):
        raise Forbidden()


def pay_with_post_card(*, card_number: str, pin: str, amount: int, currency: str,
                       reference_kind: str, reference_id: str, purpose: str,
                       idempotency_key: str, actor_id: int | None,
                       one_time_code: str = "", at_counter: bool = False) -> Payment:
    """Pay at once from a post card after checking its PIN (and, when someone other
    than its holder pays online, the one-time code sent to the holder).

    Locks the card's account row, checks the balance, debits the card and credits the
    purpose's account; publishes payment.succeeded. Flushes. Raises InvalidCardNumber,
    CardNotFound, WrongPin, CardLocked, CardFrozen, CardExpired, InsufficientFunds,
    InvalidAmount, IdempotencyConflict (to a stranger CardRefused instead of the card's
    refusals), OneTimeCodeSent (a code went to the holder: ask for it and try again with
    it), WrongOneTimeCode, TooManyCardTries, TooManyCodes, CodeNotSent; see
    _card_for_spending. A PIN or code try is counted even though the caller's unit of
    work rolls back (see cards.verify_pin). `at_counter` is for a clerk at the counter.
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
    card = _card_for_spending(card_number, pin, amount=amount, currency=currency,
                              purpose=purpose, actor_id=actor_id,
                              one_time_code=one_time_code, at_counter=at_counter)
    return _pay_from_card(card, amount=amount, currency=currency,
                          reference_kind=reference_kind, reference_id=reference_id,
                          purpose=purpose, idempotency_key=idempotency_key,
                          actor_id=actor_id)


def _pay_from_card(card: PostCard, *, amount: int, currency: str, reference_kind: str,
                   reference_id: str, purpose: str, idempotency_key: str,
                   actor_id: int | None) -> Payment:
    """The payment itself, once the card and PIN were checked: debit the card (balance
    checked under its account's lock), credit the purpose, succeeded at once."""
    p = _insert_payment(Payment(
        idempotency_key=idempotency_key, method=PaymentMethod.POST_CARD, amount=amount,
        currency=currency, purpose=purpose, reference_kind=reference_kind,
        reference_id=reference_id, card_id=card.id, payer_user_id=actor_id))
    if p.status != S.CREATED:
        return p
    _receive(p, key=f"payment:{p.id}:card", kind="card_payment",
             description=f"post card {purpose} {reference_kind}:{reference_id}",
             actor_id=actor_id)
    apply_transition(p, S.SUCCEEDED, actor_id=actor_id, reason="paid with post card")
    record_audit("payment.post_card", object_type="payment", object_id=p.id, actor_id=actor_id,
                 details={"card_id": card.id, "amount": amount, "purpose": purpose})
    return p


def authorize_post_card(*, card_number: str, pin: str, amount: int, currency: str,
                        reference_kind: str, reference_id: str, purpose: str,
                        idempotency_key: str, actor_id: int | None,
                        hold_minutes: int | None = None, one_time_code: str = "",
                        at_counter: bool = False) -> Payment:
    """Reserve `amount` on a post card for a checkout (the payment stays pending).

    Capture with capture_payment when the order is confirmed, void with void_payment on
    cancel; an unresolved hold is voided after `hold_minutes` by the expiry job.
    Flushes. Raises as pay_with_post_card (a one-time code too).
    """
    positive_amount(amount)
    _check_purpose(purpose)
    reference_id = str(reference_id)
    found = _existing(idempotency_key, method=PaymentMethod.POST_CARD, amount=amount,
                      currency=currency, reference_kind=reference_kind,
                      reference_id=reference_id, purpose=purpose)
    if found:
        return found
    card = _card_for_spending(card_number, pin, amount=amount, currency=currency,
                              purpose=purpose, actor_id=actor_id,
                              one_time_code=one_time_code, at_counter=at_counter)
    return hold_on_card(card, amount=amount, reference_kind=reference_kind,
                        reference_id=reference_id, purpose=purpose,
                        idempotency_key=idempotency_key, actor_id=actor_id,
                        hold_minutes=hold_minutes)


# --- the card checked first, the payment made later in the same transaction -------


_MINTED_HERE = object()  # only check_card_for_payment makes a VerifiedCard


@dataclass(eq=False)
class VerifiedCard:
    """A post card whose PIN (or one-time code) was found right for one payment: this
    amount, currency and purpose, by this actor, in this transaction. Made only by
    check_card_for_payment and spent once by hold_verified / pay_verified, which refuse
    it for anything else (another card, amount or transaction), so a check cannot be
    carried over to another payment or request."""

    card_id: int
    amount: int
    currency: str
    purpose: str
    actor_id: int | None
    _transaction: Any = field(repr=False)
    _minted: object = field(repr=False)
    spent: bool = False

    def __post_init__(self) -> None:
        if self._minted is not _MINTED_HERE:
            raise TypeError("a VerifiedCard is made by check_card_for_payment only")

    def _spend(self, *, amount: int, currency: str, purpose: str,
               actor_id: int | None) -> PostCard:
        """The card, once this check is found to be for exactly this payment, in the
        transaction it was made in and not spent before. Raises IdempotencyConflict
        otherwise (a programming error: nothing is paid), CardFrozen / CardExpired when
        the card was frozen or ran out since the check."""
        if (self.spent or self._transaction is not db().get_transaction()
                or (amount, currency, purpose, actor_id)
                != (self.amount, self.currency, self.purpose, self.actor_id)):
            raise IdempotencyConflict()
        self.spent = True
        card = cards.get_card(self.card_id)
        cards.check_usable(card, for_spending=False)
        return card


def check_card_for_payment(*, card_number: str, pin: str, amount: int, currency: str,
                           purpose: str, actor_id: int | None,
                           one_time_code: str = "") -> VerifiedCard:
    """Check a post card and its PIN (or the one-time code sent to its holder) online for
    one payment of `amount`, before the caller takes its own locks (a checkout's stock
    rows), so the slow PIN hash holds no lock anyone else waits for. Pays nothing: the
    payment is made with hold_verified or pay_verified in the same transaction.

    Everything _card_for_spending does is done here, with the same answers: the online
    throttle, the attempt counted apart before the hash and given back when right, the
    lock-out, one answer to strangers, the one-time code for this amount (sent, raising
    OneTimeCodeSent; or checked and spent in the caller's transaction, so a rollback
    gives it back). Raises as pay_with_post_card's card checks.
    """
    positive_amount(amount)
    _check_purpose(purpose)
    _check_currency(currency)
    card = _card_for_spending(card_number, pin, amount=amount, currency=currency,
                              purpose=purpose, actor_id=actor_id,
                              one_time_code=one_time_code)
    return VerifiedCard(card.id, amount, currency, purpose, actor_id,
                        db().get_transaction(), _MINTED_HERE)


def _retried_or_spent(verified: VerifiedCard, idempotency_key: str, *, amount: int,
                      currency: str, reference_kind: str, reference_id: str, purpose: str,
                      actor_id: int | None) -> Payment | PostCard:
    """The payment a retried key already made, or else the checked card, with the check
    spent. Raises IdempotencyConflict for a retried key that used another card,
    or a check for another payment or transaction, or spent."""
    found = _existing(idempotency_key, method=PaymentMethod.POST_CARD, amount=amount,
                      currency=currency, reference_kind=reference_kind,
                      reference_id=reference_id, purpose=purpose)
    if found:
        if found.card_id != verified.card_id:
            raise IdempotencyConflict()
        return found
    return verified._spend(amount=amount, currency=currency, purpose=purpose,
                                 actor_id=actor_id)


def hold_verified(verified: VerifiedCard, *, amount: int, currency: str,
                  reference_kind: str, reference_id: str, purpose: str,
                  idempotency_key: str, actor_id: int | None,
                  hold_minutes: int | None = None) -> Payment:
    """authorize_post_card for a card checked by check_card_for_payment: the hold of
    exactly the amount checked (balance checked under the card's account lock).
    Flushes. Raises IdempotencyConflict (a check for another payment or transaction, or
    spent), CardFrozen, CardExpired, InsufficientFunds."""
    reference_id = str(reference_id)
    card = _retried_or_spent(verified, idempotency_key, amount=amount, currency=currency,
                             reference_kind=reference_kind, reference_id=reference_id,
                             purpose=purpose, actor_id=actor_id)
    if isinstance(card, Payment):
        return card
    return hold_on_card(card, amount=amount, reference_kind=reference_kind,
                        reference_id=reference_id, purpose=purpose,
                        idempotency_key=idempotency_key, actor_id=actor_id,
                        hold_minutes=hold_minutes)


def pay_verified(verified: VerifiedCard, *, amount: int, currency: str,
                 reference_kind: str, reference_id: str, purpose: str,
                 idempotency_key: str, actor_id: int | None) -> Payment:
    """pay_with_post_card for a card checked by check_card_for_payment: pays exactly the
    amount checked at once. Flushes. Raises IdempotencyConflict (a check for another
    payment or transaction, or spent), CardFrozen, CardExpired, InsufficientFunds."""
    if purpose == TOPUP:
        raise ValidationFailed(_l("A post card cannot top itself up."))
    reference_id = str(reference_id)
    card = _retried_or_spent(verified, idempotency_key, amount=amount, currency=currency,
                             reference_kind=reference_kind, reference_id=reference_id,
                             purpose=purpose, actor_id=actor_id)
    if isinstance(card, Payment):
        return card
    return _pay_from_card(card, amount=amount, currency=currency,
                          reference_kind=reference_kind, reference_id=reference_id,
                          purpose=purpose, idempotency_key=idempotency_key,
                          actor_id=actor_id)


def hold_on_card(card: PostCard, *, amount: int, reference_kind: str, reference_id: str,
                 purpose: str, idempotency_key: str, actor_id: int | None,
                 hold_minutes: int | None = None) -> Payment:
    """The hold itself, once the card and PIN were checked: a pending post-card payment
    and the ledger hold behind it. Flushes. Raises InsufficientFunds."""
    p = _insert_payment(Payment(
        idempotency_key=idempotency_key, method=PaymentMethod.POST_CARD, amount=amount,
        currency=card.currency, purpose=purpose, reference_kind=reference_kind,
        reference_id=str(reference_id), card_id=card.id, payer_user_id=actor_id))
    if p.status != S.CREATED:
        return p
    reason = provider_for(p).authorize(p, actor_id=actor_id, hold_minutes=hold_minutes)
    apply_transition(p, S.PENDING, actor_id=actor_id, reason=reason)
    return p


def _lock_payment(payment_id: int) -> Payment:
    """The payment with its row locked, re-read from the database: what another
    transaction committed replaces what this session had loaded (populate_existing),
    so every check made after the lock sees the status as it is. Raises NotFound."""
    p = db.scalar(select(Payment).where(Payment.id == payment_id).with_for_update()
                  .execution_options(populate_existing=True))
    if p is None:
        raise NotFound()
    return p


def capture_payment(payment_id: int, *, amount: int | None = None,
                    actor_id: int | None = None) -> Payment:
    """Capture a held payment (all of it, or less: the rest goes back to the card).

    Capturing twice is a no-op. Flushes. Raises PaymentStateError (nothing held, or
    not waiting for capture), HoldResolved (already voided), InvalidAmount.
    """
    p = _lock_payment(payment_id)
    provider = provider_for(p)
    if provider.captured(p) and p.status in PAID:
        return p
    if p.status != S.PENDING:
        raise PaymentStateError(_l("This payment is not waiting for capture."))
    p.amount, p.entry_id = provider.capture(p, amount, destination_of(p), actor_id=actor_id)
    apply_transition(p, S.SUCCEEDED, actor_id=actor_id, reason="hold captured")
    return p


def void_payment(payment_id: int, *, actor_id: int | None = None,
                 reason: str = "cancelled") -> Payment:
    """Release a held payment back to the card; voiding twice is a no-op.

    Flushes. Raises PaymentStateError for a captured payment or one with no hold.
    """
    p = _lock_payment(payment_id)
    if p.status == S.CANCELLED:
        return p
    if p.status != S.PENDING:
        raise PaymentStateError(_l("Only a payment waiting for capture can be released."))
    provider_for(p).void(p, actor_id=actor_id)
    apply_transition(p, S.CANCELLED, actor_id=actor_id, reason=reason)
    return p


def expire_holds(now: datetime | None = None) -> list[int]:
    """Void every post-card hold past its expiry; returns the payment ids released.

    Changes the holds, their payments (cancelled) and the card balances. Flushes.
    """
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
    Flushes. Raises CardPaymentsUnavailable (no key or Stripe unreachable),
    NoExchangeRate, InvalidAmount, TopUpLimitExceeded, IdempotencyConflict.
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
    reason = provider_for(p).authorize(p, actor_id=payer_user_id)
    apply_transition(p, S.PENDING, actor_id=payer_user_id, reason=reason)
    return _start_info(p)


def confirm_card_payment(payment_id: int, *, payment_method: str,
                         payer_user_id: int | None) -> dict[str, Any]:
    """Attach the card the browser tokenised and confirm the payment with its provider.

    Returns {"status": "succeeded"|"processing"|"requires_action"|"failed",
    "client_secret", "message"}. A decline marks the payment failed (payment.failed);
    a later try with another card starts a new attempt. Success itself is booked from
    the webhook. Flushes. Raises NotFound for someone else's payment or one not paid on
    the card page, ValidationFailed, PaymentStateError, CardPaymentsUnavailable.
    """
    # Stripe is called under the payment's row lock on purpose: the lock makes one
    # confirmation at a time per payment (a double click, a second tab), so two
    # requests never start two new attempts or confirm a superseded PaymentIntent.
    # It holds one payment's row only, and every call carries an idempotency key.
    p = _lock_payment(payment_id)
    provider = provider_for(p)
    if not provider.confirms_in_browser or (p.payer_user_id and
                                            p.payer_user_id != payer_user_id):
        raise NotFound()
    # Before any call to Stripe: a bad token must not start a new attempt.
    provider.check_token(payment_method)
    if p.status == S.FAILED:
        provider.retry(p)
        apply_transition(p, S.PENDING, actor_id=payer_user_id, reason="new attempt")
    if p.status != S.PENDING:
        raise PaymentStateError(_l("This payment is already %(s)s.", s=p.status))
    outcome = provider.confirm(p, payment_method)
    if outcome.status == "failed":
        p.failure_message = outcome.message[:300]
        apply_transition(p, S.FAILED, actor_id=payer_user_id, reason="card declined")
    return {"status": outcome.status, "client_secret": p.stripe_client_secret,
            "message": outcome.message}


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
    _receive(p, key=f"stripe:{pi.id}:succeeded",
             kind="bank_topup" if p.purpose == TOPUP else "bank_card",
             description=f"stripe {p.purpose} {p.reference_kind}:{p.reference_id}",
             actor_id=None)
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


def payment_by_intent(pi_id: str | None) -> Payment | None:
    """The payment of PaymentIntent `pi_id`, its row locked and re-read (None when
    unknown): the result page loaded it before asking Stripe, and the status it saw may
    have been booked by the webhook's job since."""
    if not pi_id:
        return None
    return db.scalar(select(Payment).where(Payment.stripe_payment_intent == pi_id)
                     .with_for_update().execution_options(populate_existing=True))


def sync_payment_intent(pi_id: str | None) -> str:
    """Re-fetch the PaymentIntent from Stripe and apply it to its payment.

    Stripe is asked first and the payment locked after, so no row is locked while
    Stripe answers; applying is monotone (a stale answer changes nothing), see
    apply_payment_intent. Returns what happened, for the event's outcome. Changes the
    payment and the ledger; flushes. Raises stripe errors when Stripe cannot be reached.
    """
    if not pi_id or db.scalar(select(Payment.id).where(
            Payment.stripe_payment_intent == pi_id)) is None:
        return "unknown payment intent"
    pi = gateway.client().v1.payment_intents.retrieve(pi_id)
    p = payment_by_intent(pi_id)
    if p is None:
        return "unknown payment intent"
    try:
        changed = apply_payment_intent(p, pi)
    except ValueError as exc:  # an amount we did not ask for: left for reconciliation
        record_audit("payment.stripe_mismatch", object_type="payment", object_id=p.id,
                     details={"error": str(exc)})
        return "mismatch"
    return f"{pi.status}: {'changed' if changed else 'no change'}"


# --- refunds ---------------------------------------------------------------------


def refund(payment_id: int, amount: int, reason: str, actor_id: int | None,
           idempotency_key: str) -> Refund:
    """Give back `amount` of a payment to where it came from (its provider's legs).

    Checks no one's right to refund: the counter goes through payments.refunds, which
    decides who may. Post card: back onto the card. Cash: out of the drawer of the
    office that took it, whoever asks and wherever. Stripe: a Stripe refund
    (idempotency key from ours) in the charged currency, in proportion. Publishes
    refund.succeeded and moves the payment to partially_refunded / refunded. Flushes.
    Raises InvalidAmount, RefundTooLarge, PaymentStateError, IdempotencyConflict,
    CardPaymentsUnavailable, InsufficientFunds (a card top-up already spent).
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
    provider = provider_for(p)
    charged = provider.charged_share(p, amount)
    r = Refund(idempotency_key=idempotency_key, payment_id=p.id, amount=amount,
               currency=p.currency, reason=(reason or "")[:300], actor_id=actor_id,
               office_id=p.office_id, charged_amount=charged)
    db.add(r)
    db.flush()
    entry, _ = ledger.post_entry(idempotency_key=f"refund:{r.id}", kind="refund",
                                 legs=provider.refund_legs(p, amount, charged),
                                 description=f"refund of payment {p.id}", actor_id=actor_id,
                                 office_id=provider.refund_office(p, r), payment_id=p.id)
    r.entry_id = entry.id
    # A bank-card refund calls Stripe under the payment's row lock on purpose: the lock
    # makes "what is still refundable" and the refund in Stripe one step, so two clerks
    # refunding the same payment at once can never give back more in Stripe than the
    # ledger allows; if Stripe refuses, the ledger legs above roll back with the unit
    # of work. Only this payment's row waits, and the call's key makes a retry refund
    # once.
    provider.give_back(p, r, idempotency_key)
    _record_refund(p, r, actor_id)
    return r


def refund_made_with(idempotency_key: str) -> Refund | None:
    """The refund already made under `idempotency_key`, if any. Reads only."""
    return db.scalar(select(Refund).where(Refund.idempotency_key == idempotency_key))


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
    assert p.charged_amount is not None
    already = sum(r.charged_amount or 0 for r in p.refunds)
    charged = min(charged, p.charged_amount - already)
    if charged <= 0:
        return None
    amount = p.refundable if already + charged >= p.charged_amount else \
        min(p.refundable, share(p.amount, charged, p.charged_amount))
    if amount <= 0:
        return None
    r = Refund(idempotency_key=f"stripe:{stripe_refund_id}", payment_id=p.id, amount=amount,
               currency=p.currency, reason="refunded in Stripe", origin="stripe",
               stripe_refund_id=stripe_refund_id, charged_amount=charged)
    db.add(r)
    db.flush()
    entry, _ = ledger.post_entry(idempotency_key=f"refund:{r.id}", kind="refund",
                                 legs=provider_for(p).refund_legs(p, amount, charged),
                                 description=f"stripe refund {stripe_refund_id}", payment_id=p.id)
    r.entry_id = entry.id
    _record_refund(p, r, None)
    return r


# --- reading ---------------------------------------------------------------------


def get_payment(payment_id: int) -> Payment:
    """The payment; raises NotFound."""
    p = db.get(Payment, payment_id)
    if p is None:
        raise NotFound()
    return p


def payments_for(reference_kind: str, reference_id: str) -> list[Payment]:
    """Every payment made for one reference, oldest first."""
    return list(db.scalars(select(Payment).where(
        Payment.reference_kind == reference_kind, Payment.reference_id == str(reference_id)
    ).order_by(Payment.id)))


def paid_for(reference_kind: str, reference_id: str) -> list[Payment]:
    """The payments of one reference that took money (refunded ones included)."""
    return [p for p in payments_for(reference_kind, reference_id) if p.status in PAID]


def account_balance(account_id: int | None) -> int:
    """An account's balance (0 for none)."""
    acc = db.get(Account, account_id) if account_id is not None else None
    return acc.balance if acc is not None else 0


def card_balance_after(p: Payment) -> int | None:
    """The balance of the card a payment used or topped up, for its receipt."""
    return account_balance(p.card.account_id) if p.card is not None else None


# --- the pages' use cases --------------------------------------------------------
# Each is one use case of a payments page; the view opens the unit of work around it.


def cash_top_up(card_id: int, *, amount: int, clerk_id: int, office_id: int,
                idempotency_key: str) -> Payment:
    """A clerk takes cash and tops up a post card. Flushes.

    Raises InvalidAmount, TopUpLimitExceeded, CardFrozen, CardExpired, NotFound.
    """
    return receive_cash(office_id=office_id, clerk_id=clerk_id, amount=amount,
                        currency="IQD", reference_kind="post_card",
                        reference_id=str(card_id), purpose=TOPUP,
                        idempotency_key=f"counter-topup:{idempotency_key}")


def owned_card(card_id: int, user_id: int) -> PostCard:
    """The card if `user_id` holds it; NotFound otherwise (no hint that it exists)."""
    card = db.get(PostCard, card_id)
    if card is None or card.user_id != user_id:
        raise NotFound()
    return card


def owned_payment(payment_id: int, user_id: int) -> Payment:
    """The payment if `user_id` paid it or holds its card; NotFound otherwise."""
    p = db.get(Payment, payment_id)
    if p is None:
        raise NotFound()
    if p.payer_user_id != user_id and not (p.card is not None and p.card.user_id == user_id):
        raise NotFound()
    return p


def online_top_up_minimum() -> int:
    """The smallest online top-up in IQD: what comes to Stripe's minimum charge in
    CHARGE_CURRENCY at today's rate, rounded up to a whole dinar (655 IQD for 0.50 USD
    at 1,310). Raises NoExchangeRate. Reads only."""
    row = rate_at(CHARGE_CURRENCY, "IQD")
    minor = Decimal(10) ** EXPONENT.get(CHARGE_CURRENCY, 2)
    dinars = Decimal(STRIPE_MINIMUM_CHARGE[CHARGE_CURRENCY]) / minor * Decimal(row.rate)
    return int(dinars.to_integral_value(rounding=ROUND_CEILING))


def start_online_top_up(card_id: int, *, user_id: int, amount: int,
                        idempotency_key: str) -> CardPaymentStart:
    """The holder tops up their own card with a bank card: start the Stripe payment.

    Flushes. Raises NotFound (not their card), TopUpLimitExceeded, InvalidAmount (also
    below online_top_up_minimum, which the card processor would refuse), CardFrozen,
    CardExpired, CardPaymentsUnavailable, NoExchangeRate.
    """
    owned_card(card_id, user_id)
    if not gateway.card_payments_enabled():
        raise CardPaymentsUnavailable()
    minimum = online_top_up_minimum()
    if amount < minimum:
        raise InvalidAmount(_l("An online top-up is at least %(min)s: the bank does not "
                               "take smaller card payments.",
                               min=format_money(minimum, "IQD", current_locale())),
                            fields={"amount": _l("At least %(min)s.", min=format_money(
                                minimum, "IQD", current_locale()))})
    return start_card_payment(amount=amount, currency="IQD", reference_kind="post_card",
                              reference_id=str(card_id), purpose=TOPUP,
                              payer_user_id=user_id,
                              idempotency_key=f"online-topup:{user_id}:{idempotency_key}")


def start_bill_card_payment(kind: str, reference_id: str, *, user: Any,
                            idempotency_key: str) -> CardPaymentStart:
    """Start paying a registered reference with a bank card. Flushes.

    Raises NotFound (nothing due), CardPaymentsUnavailable, NoExchangeRate.
    """
    due = payables.resolve(kind, reference_id, user)
    return start_card_payment(amount=due.amount, currency=due.currency, reference_kind=kind,
                              reference_id=reference_id, purpose=due.purpose,
                              payer_user_id=user.id,
                              idempotency_key=f"bill:{kind}:{reference_id}:card:"
                                              f"{idempotency_key}")


def pay_bill_with_post_card(kind: str, reference_id: str, *, user: Any, card_number: str,
                            pin: str, idempotency_key: str,
                            one_time_code: str = "") -> Payment:
    """Pay a registered reference with a post card and its PIN (and the one-time code
    when the card is not the user's own). Flushes.

    Raises NotFound (nothing due) and the post card's errors (wrong PIN, locked,
    frozen, not enough balance, OneTimeCodeSent, WrongOneTimeCode; see
    pay_with_post_card).
    """
    due = payables.resolve(kind, reference_id, user)
    return pay_with_post_card(card_number=card_number, pin=pin, amount=due.amount,
                              currency=due.currency, reference_kind=kind,
                              reference_id=reference_id, purpose=due.purpose,
                              actor_id=user.id, one_time_code=one_time_code,
                              idempotency_key=f"bill:{kind}:{reference_id}:post:"
                                              f"{idempotency_key}")


def refresh_card_payment(payment_id: int, *, user_id: int) -> Payment:
    """Ask Stripe for a pending bank-card payment's state now (a server-side re-fetch)
    and apply it, as the webhook's job would. Flushes. Raises NotFound (not theirs).

    Stripe unreachable changes nothing: the webhook's job books the payment later.
    """
    p = owned_payment(payment_id, user_id)
    if provider_for(p).confirms_in_browser and p.status == S.PENDING:
        try:
            sync_payment_intent(p.stripe_payment_intent)
        except stripe.StripeError as exc:
            current_app.logger.info("re-fetch of payment %s failed: %s", p.id, exc)
    return get_payment(payment_id)


def card_statement(card: PostCard, *, days: int = 90) -> tuple[int, list[StatementLine]]:
    """(opening, lines) of the card's account over the last `days` days."""
    since = datetime.combine(date.today() - timedelta(days=days), time(), BAGHDAD)
    assert card.account_id is not None
    return ledger.statement_lines(card.account_id, since=since)


def statement_details(lines: list[StatementLine]) -> dict[int, tuple[str, str]]:
    """What each statement line paid or topped up, in (Arabic, English), by entry id:
    the order and its shop, the parcel whose duty it was, the top-up's channel (cash at
    which office, or online with which bank card). Lines with nothing more to say are
    left out. Two queries, whatever the number of lines; reads only."""
    payment_ids = {e.payment_id for e, _, _ in lines if e.payment_id}
    found = {p.id: p for p in db.scalars(select(Payment).where(Payment.id.in_(payment_ids)))
             } if payment_ids else {}
    office_ids = {e.office_id or (found[e.payment_id].office_id if e.payment_id in found
                                  else None) for e, _, _ in lines} - {None}
    offices = {o.id: o for o in db.scalars(
        select(PostOffice).where(PostOffice.id.in_(office_ids)))} if office_ids else {}
    out: dict[int, tuple[str, str]] = {}
    for entry, _amount, _running in lines:
        p = found.get(entry.payment_id) if entry.payment_id else None
        if p is not None and p.purpose == TOPUP:
            office = offices.get(entry.office_id or p.office_id or -1)
            if office is not None:
                out[entry.id] = (f"نقدًا في {office.name_ar}", f"in cash at {office.name_en}")
            else:  # online: by the provider's own name (a bank card), and its last 4
                label_ar, label_en = provider_for(p).label
                last4 = f" •••• {p.card_last4}" if p.card_last4 else ""
                out[entry.id] = (f"عبر الإنترنت، {label_ar}{last4}",
                                 f"online, {label_en.lower()}{last4}")
            continue
        described = payables.describe(p.reference_kind, p.reference_id) if p else None
        if described is not None:
            out[entry.id] = (described.ar, described.en)
    return out


def require_staff_office(user: Any) -> int:
    """The post office of a staff user; raises Forbidden for one attached to none."""
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
    """The office drawer's day (Baghdad time): opening, each movement, expected cash.

    Reads only: an office whose drawer never moved money has no drawer account yet,
    and its report is empty (the account is created when cash first moves).
    """
    start = datetime.combine(day, time(), BAGHDAD)
    end = start + timedelta(days=1)
    acc = ledger.find_drawer_account(office_id, currency)
    if acc is None:
        return DrawerReport(office_id=office_id, day=day, opening=0, closing=0)
    opening, lines = ledger.statement_lines(acc.id, since=start, until=end)
    report = DrawerReport(office_id=office_id, day=day, opening=opening,
                          closing=opening + sum(a for _, a, _ in lines))
    totals: dict[str, int] = defaultdict(int)
    clerks: dict[str, int] = defaultdict(int)
    for entry, amount, running in lines:
        payment = db.get(Payment, entry.payment_id) if entry.payment_id else None
        if entry.kind == "refund":
            kind = "refund"
        elif payment is not None and payment.purpose == TOPUP:
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
    return report


CARD_ACTIONS = {"freeze": cards.freeze_card, "unfreeze": cards.unfreeze_card,
                "unlock": cards.unlock_card}


def set_card_status(card_id: int, action: str, *, clerk_id: int) -> PostCard:
    """freeze | unfreeze | unlock a card (audited). Flushes. Raises NotFound."""
    fn = CARD_ACTIONS.get(action)
    if fn is None:
        raise NotFound()
    return fn(card_id, clerk_id=clerk_id)


def find_cards(q: str) -> list[PostCard]:
    """Cards whose number or holder's national ID is exactly `q` (spaces ignored)."""
    q = (q or "").replace(" ", "").strip()
    if not q:
        return []
    return list(db.scalars(select(PostCard).where(
        (PostCard.number == q) | (PostCard.national_id == q)).order_by(PostCard.id)))


def user_id_by_email(email: str | None) -> int | None:
    """The id of the Barid account with this e-mail; raises NotFound when there is none.
    None for no e-mail given."""
    if not email:
        return None
    user = db.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound()
    return user.id


def issue_card_at_counter(*, holder_name: str, national_id: str, mobile: str, pin: str,
                          account_email: str | None, clerk_id: int | None,
                          office_id: int | None) -> PostCard:
    """A clerk issues a post card at the counter, linked to the holder's Barid account
    when an e-mail is given. Flushes. Raises NotFound (no account has that e-mail),
    ValidationFailed, InvalidPin."""
    user_id = user_id_by_email(account_email)
    return cards.issue_card(holder_name=holder_name, national_id=national_id, mobile=mobile,
                           pin=pin, user_id=user_id, clerk_id=clerk_id, office_id=office_id)


def office_name(office_id: int | None, locale: str | None = None) -> str:
    """The office's name in `locale`, or both languages (for bilingual paper)."""
    office = db.get(PostOffice, office_id) if office_id else None
    if office is None:
        return "-"
    if locale:
        return f"{office.name(locale)} ({office.code})"
    return f"{office.name_ar} - {office.name_en} ({office.code})"


def user_name(user_id: int | None) -> str | None:
    """A user's full name (a clerk's, on a receipt); None for nobody."""
    user = db.get(User, user_id) if user_id else None
    return user.full_name if user else None


def recent_disputes(limit: int = 200) -> list[Dispute]:
    """The latest card disputes, newest first."""
    return list(db.scalars(select(Dispute).order_by(Dispute.id.desc()).limit(limit)))


def recent_card_payments(card_id: int, limit: int = 30) -> list[Payment]:
    """The card's latest payments, newest first."""
    return list(db.scalars(select(Payment).where(Payment.card_id == card_id)
                           .order_by(Payment.id.desc()).limit(limit)))
