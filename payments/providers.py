"""Payment methods behind one small protocol: the post card, Stripe, and cash at the counter.

A payment's `method` names its provider and `provider_for(payment)` finds it. What
differs by method lives in one provider class: where the money comes from when it is
received, how it is reserved (authorize), taken (capture) and released (void), the
ledger legs that give it back on a refund, and what a receipt calls it. The use cases
in payments.services never ask which method a payment used; they ask its provider.

Providers move money (ledger legs, holds, Stripe calls) and flush. The payment state
machine (which status may follow which, and the history of moves) stays in
payments.services, which calls a provider and then applies the transition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Protocol, cast

import stripe
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.database import db, utcnow
from app.errors import ValidationFailed
from payments import gateway, ledger
from payments.errors import CardPaymentsUnavailable, PaymentStateError
from payments.ledger import Leg, credit, debit
from payments.models import (
    TOPUP,
    Account,
    Hold,
    HoldStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    PostCard,
    Refund,
)


@dataclass(frozen=True)
class Confirmation:
    """What confirming a payment in the browser came to, for the page's script."""

    status: str  # succeeded | processing | requires_action | failed
    message: str = ""


def _account(account_id: int | None) -> Account:
    acc = db.get(Account, account_id) if account_id is not None else None
    assert acc is not None, f"ledger account {account_id} is missing"
    return acc


def _intent(p: Payment) -> str:
    assert p.stripe_payment_intent is not None, f"payment {p.id} has no PaymentIntent"
    return p.stripe_payment_intent


def share(total: int, part: int, whole: int) -> int:
    """`total * part / whole`, rounded half up, in integers."""
    return int((Decimal(total) * part / whole).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class PaymentProvider(Protocol):
    """One way to pay. Every method flushes; none commits."""

    method: ClassVar[PaymentMethod]
    # What a receipt prints for the method, in Arabic and English.
    label: ClassVar[tuple[str, str]]
    # Whether the payer finishes paying on the bank-card page (Stripe Elements).
    confirms_in_browser: ClassVar[bool]

    def receive_legs(self, p: Payment, destination: Account) -> list[Leg]:
        """The ledger legs that bring the payment's money in to `destination`."""
        ...

    def authorize(self, p: Payment, *, actor_id: int | None,
                  hold_minutes: int | None = None) -> str:
        """Reserve the money (a hold, a PaymentIntent); returns the reason recorded on
        the move to pending. Raises PaymentStateError where the method cannot reserve."""
        ...

    def captured(self, p: Payment) -> bool:
        """Whether the reserved money was already taken (capturing again is a no-op).
        Raises PaymentStateError when nothing was reserved."""
        ...

    def capture(self, p: Payment, amount: int | None, destination: Account, *,
                actor_id: int | None) -> tuple[int, int]:
        """Take `amount` (all when None) of what was reserved to `destination`; returns
        (amount taken, journal entry id). Raises PaymentStateError, HoldResolved,
        InvalidAmount."""
        ...

    def is_open_hold(self, p: Payment) -> bool:
        """Whether `p` is reserved money that capture or void will resolve."""
        ...

    def void(self, p: Payment, *, actor_id: int | None) -> None:
        """Release what was reserved. Raises PaymentStateError, HoldResolved."""
        ...

    def charged_share(self, p: Payment, amount: int) -> int | None:
        """The part of what the payer's bank was charged that refunding `amount` gives
        back (None when nothing was charged in another currency)."""
        ...

    def refund_legs(self, p: Payment, amount: int, charged: int | None) -> list[Leg]:
        """The ledger legs of a refund of `amount` back to where the money came from."""
        ...

    def refund_office(self, p: Payment, r: Refund) -> int | None:
        """The post office whose books the refund's entry belongs to, if any."""
        ...

    def give_back(self, p: Payment, r: Refund, idempotency_key: str) -> None:
        """Give the refund back outside the ledger (a Stripe refund); nothing for
        methods whose ledger legs are the whole refund. Raises CardPaymentsUnavailable."""
        ...

    def check_token(self, payment_method: str) -> None:
        """Refuse (ValidationFailed) a card token the browser sent that is not one
        (bank cards only)."""
        ...

    def retry(self, p: Payment) -> None:
        """Prepare a new attempt after a decline (bank cards only)."""
        ...

    def confirm(self, p: Payment, payment_method: str) -> Confirmation:
        """Confirm in the browser with a tokenised card (bank cards only)."""
        ...


def _no_hold() -> PaymentStateError:
    return PaymentStateError(_l("This payment has no hold."))


def _not_in_browser() -> PaymentStateError:
    return PaymentStateError(_l("This payment is not paid on the bank-card page."))


class _NoHold:
    """Shared by methods that reserve nothing: there is no hold to capture or void."""

    def captured(self, p: Payment) -> bool:
        raise _no_hold()

    def capture(self, p: Payment, amount: int | None, destination: Account, *,
                actor_id: int | None) -> tuple[int, int]:
        raise _no_hold()

    def is_open_hold(self, p: Payment) -> bool:
        return False

    def void(self, p: Payment, *, actor_id: int | None) -> None:
        raise _no_hold()


class _PaidAtOnce(_NoHold):
    """Shared by methods that take the money at once and reserve nothing."""

    confirms_in_browser: ClassVar[bool] = False

    def authorize(self, p: Payment, *, actor_id: int | None,
                  hold_minutes: int | None = None) -> str:
        raise _no_hold()

    def charged_share(self, p: Payment, amount: int) -> int | None:
        return None

    def give_back(self, p: Payment, r: Refund, idempotency_key: str) -> None:
        return None

    def check_token(self, payment_method: str) -> None:
        raise _not_in_browser()

    def retry(self, p: Payment) -> None:
        raise _not_in_browser()

    def confirm(self, p: Payment, payment_method: str) -> Confirmation:
        raise _not_in_browser()


class CashProvider(_PaidAtOnce):
    """Cash handed to a clerk: it goes into, and a refund comes out of, an office's drawer."""

    method: ClassVar[PaymentMethod] = PaymentMethod.CASH
    label: ClassVar[tuple[str, str]] = ("نقداً", "Cash")

    def receive_legs(self, p: Payment, destination: Account) -> list[Leg]:
        return [debit(ledger.drawer_account(p.office_id, p.currency), p.amount),
                credit(destination, p.amount)]

    def refund_legs(self, p: Payment, amount: int, charged: int | None) -> list[Leg]:
        return [debit(destination_of(p), amount),
                # The cash goes back out of the drawer it came into, whoever refunds it.
                credit(ledger.drawer_account(p.office_id, p.currency), amount)]

    def refund_office(self, p: Payment, r: Refund) -> int | None:
        # Cash leaves one drawer: the entry is that office's, for its end-of-day report.
        return r.office_id


class PostCardProvider(_PaidAtOnce):
    """The post card: paid at once from its account, or held and later captured or voided."""

    method: ClassVar[PaymentMethod] = PaymentMethod.POST_CARD
    label: ClassVar[tuple[str, str]] = ("بطاقة البريد", "Post card")

    def _card(self, p: Payment) -> PostCard:
        card = p.card
        assert card is not None, f"post-card payment {p.id} has no card"
        return card

    def receive_legs(self, p: Payment, destination: Account) -> list[Leg]:
        return [debit(_account(self._card(p).account_id), p.amount),
                credit(destination, p.amount)]

    def authorize(self, p: Payment, *, actor_id: int | None,
                  hold_minutes: int | None = None) -> str:
        minutes = hold_minutes or current_app.config["PAYMENTS_HOLD_MINUTES"]
        ledger.authorize(self._card(p), p.amount, idempotency_key=f"payment:{p.id}:hold",
                         expires_at=utcnow() + timedelta(minutes=minutes), payment_id=p.id,
                         actor_id=actor_id)
        return "held on post card"

    def _hold(self, p: Payment) -> Hold:
        hold = db.scalar(select(Hold).where(Hold.payment_id == p.id))
        if hold is None:
            raise _no_hold()
        return hold

    def captured(self, p: Payment) -> bool:
        return self._hold(p).status == HoldStatus.CAPTURED

    def capture(self, p: Payment, amount: int | None, destination: Account, *,
                actor_id: int | None) -> tuple[int, int]:
        hold = self._hold(p)
        take = hold.amount if amount is None else amount
        hold = ledger.capture(hold.id, take, destination, actor_id=actor_id)
        assert hold.resolve_entry_id is not None
        return take, hold.resolve_entry_id

    def is_open_hold(self, p: Payment) -> bool:
        # A pending post-card payment is always a hold: paying at once succeeds at once.
        return p.status == PaymentStatus.PENDING

    def void(self, p: Payment, *, actor_id: int | None) -> None:
        ledger.void(self._hold(p).id, actor_id=actor_id)

    def refund_legs(self, p: Payment, amount: int, charged: int | None) -> list[Leg]:
        return [debit(destination_of(p), amount),
                credit(_account(self._card(p).account_id), amount)]

    def refund_office(self, p: Payment, r: Refund) -> int | None:
        return None


_PM_RE = re.compile(r"^(pm|card|tok)_\w+$")


class StripeProvider(_NoHold):
    """Bank cards through Stripe, charged in the payment's `charged_currency` (USD).

    Money arrives in the Stripe clearing account, in the charged currency; when that is
    not the payment's currency, the fx accounts bridge the two at the payment's stored
    rate. Stripe captures by itself: success is booked from its verified webhook.
    """

    method: ClassVar[PaymentMethod] = PaymentMethod.STRIPE
    label: ClassVar[tuple[str, str]] = ("بطاقة مصرفية", "Bank card")
    confirms_in_browser: ClassVar[bool] = True

    def receive_legs(self, p: Payment, destination: Account) -> list[Leg]:
        assert p.charged_currency is not None and p.charged_amount is not None
        clearing = ledger.stripe_clearing_account(p.charged_currency)
        if p.charged_currency == p.currency:
            return [debit(clearing, p.amount), credit(destination, p.amount)]
        return [debit(clearing, p.charged_amount),
                credit(ledger.fx_account(p.charged_currency), p.charged_amount),
                debit(ledger.fx_account(p.currency), p.amount), credit(destination, p.amount)]

    def authorize(self, p: Payment, *, actor_id: int | None,
                  hold_minutes: int | None = None) -> str:
        """One PaymentIntent per attempt; its key makes a retried call return the same one.

        The payment row is new in this transaction (nobody else waits on it), so the
        call to Stripe holds no lock another request could need.
        """
        assert p.charged_currency is not None
        try:
            params: dict[str, Any] = {
                "amount": p.charged_amount, "currency": p.charged_currency.lower(),
                "payment_method_types": ["card"],
                "metadata": {"barid_payment_id": str(p.id), "reference_kind": p.reference_kind,
                             "reference_id": p.reference_id}}
            pi = gateway.client().v1.payment_intents.create(
                params=cast(Any, params),
                options={"idempotency_key": gateway.idempotency_key("pi", p.id, p.attempt,
                                                                    "create")},
            )
        except stripe.StripeError as exc:
            current_app.logger.warning("stripe create failed for payment %s: %s", p.id, exc)
            raise CardPaymentsUnavailable() from exc
        p.stripe_payment_intent = pi.id
        p.stripe_client_secret = pi.client_secret
        db.flush()
        return "payment intent created"

    def charged_share(self, p: Payment, amount: int) -> int | None:
        assert p.charged_amount is not None
        refunded_charged = sum(r.charged_amount or 0 for r in p.refunds)
        if amount == p.refundable:  # the last refund takes what is left, so totals match
            return p.charged_amount - refunded_charged
        return max(1, share(p.charged_amount, amount, p.amount))

    def refund_legs(self, p: Payment, amount: int, charged: int | None) -> list[Leg]:
        assert p.charged_currency is not None and charged is not None
        dest = destination_of(p)
        clearing = ledger.stripe_clearing_account(p.charged_currency)
        if p.charged_currency == p.currency:
            return [debit(dest, amount), credit(clearing, amount)]
        return [debit(dest, amount), credit(ledger.fx_account(p.currency), amount),
                debit(ledger.fx_account(p.charged_currency), charged),
                credit(clearing, charged)]

    def refund_office(self, p: Payment, r: Refund) -> int | None:
        return None

    def give_back(self, p: Payment, r: Refund, idempotency_key: str) -> None:
        """Refund the charged share in Stripe (the key comes from ours, so a retried
        request refunds once). Raises CardPaymentsUnavailable when Stripe refuses or
        cannot be reached, and the caller's unit of work then rolls the ledger back."""
        try:
            params: dict[str, Any] = {"payment_intent": _intent(p), "amount": r.charged_amount,
                                      "metadata": {"barid_refund_id": str(r.id)}}
            sr = gateway.client().v1.refunds.create(
                params=cast(Any, params),
                options={"idempotency_key": gateway.idempotency_key("refund", p.id,
                                                                    idempotency_key)})
        except stripe.StripeError as exc:
            raise CardPaymentsUnavailable() from exc
        r.stripe_refund_id = sr.id

    def check_token(self, payment_method: str) -> None:
        if not _PM_RE.match(payment_method or ""):
            raise ValidationFailed(_l("The card could not be read. Please try again."))

    def retry(self, p: Payment) -> None:
        """After a decline, a fresh PaymentIntent (the old one is cancelled)."""
        old = _intent(p)
        p.attempt += 1
        p.failure_message = None
        self.authorize(p, actor_id=None)
        try:
            gateway.client().v1.payment_intents.cancel(old, options={
                "idempotency_key": gateway.idempotency_key("pi", p.id, p.attempt - 1,
                                                           "cancel")})
        except stripe.StripeError:
            current_app.logger.info("could not cancel declined intent %s", old)

    def confirm(self, p: Payment, payment_method: str) -> Confirmation:
        """Attach the card the browser tokenised and confirm the PaymentIntent.

        A decline comes back as status "failed" with Stripe's message for the payer.
        Raises ValidationFailed for a token that is not one, CardPaymentsUnavailable.
        """
        self.check_token(payment_method)
        c = gateway.client()
        try:
            c.v1.payment_intents.update(
                _intent(p), params={"payment_method": payment_method},
                options={"idempotency_key": gateway.idempotency_key("pi", p.id, p.attempt,
                                                                    "attach")})
            # The card's last 4 digits (Stripe's own, never the number) for the receipt.
            card = getattr(c.v1.payment_methods.retrieve(payment_method), "card", None)
            last4 = str(getattr(card, "last4", "") or "")
            p.card_last4 = last4 if len(last4) == 4 and last4.isdigit() else None
            pi = c.v1.payment_intents.confirm(
                _intent(p),
                options={"idempotency_key": gateway.idempotency_key("pi", p.id, p.attempt,
                                                                    "confirm")})
        except stripe.CardError as exc:
            return Confirmation("failed", exc.user_message or str(_l("The card was declined.")))
        except stripe.StripeError as exc:
            raise CardPaymentsUnavailable() from exc
        if pi.status == "requires_action":
            return Confirmation("requires_action")
        return Confirmation("succeeded" if pi.status == "succeeded" else "processing")


def destination_of(p: Payment) -> Account:
    """The account credited when `p` succeeds: the card topped up, or the purpose's."""
    if p.purpose == TOPUP:
        card = db.get(PostCard, int(p.reference_id))
        assert card is not None
        return _account(card.account_id)
    return ledger.purpose_account(p.purpose, p.currency)


PROVIDERS: dict[str, PaymentProvider] = {
    str(provider.method): provider
    for provider in (PostCardProvider(), StripeProvider(), CashProvider())
}


def provider_for(p: Payment) -> PaymentProvider:
    """The provider of `p`'s method."""
    return PROVIDERS[p.method]
